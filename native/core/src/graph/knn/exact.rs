//! Exact k-nearest neighbours by blocks: a block of queries against a tile
//! of reference points is one matrix product (faer), ‖q−r‖² = ‖q‖² + ‖r‖²
//! − 2·q·r, and each query keeps its k best. Query blocks run in parallel
//! on rayon; memory is one QB × RB tile per worker.

use super::dist::sq_dist;
use super::lists::{push_row, NeighborLists};
use crate::error::{Error, Result};
use crate::pass::Control;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

const QUERY_BLOCK: usize = 256;
const REF_TILE: usize = 2048;

/// The `k` nearest other points of every point (self excluded), ranked by
/// squared Euclidean distance of `data` (n × d, row-major).
pub fn exact(
    data: &[f32],
    n: usize,
    d: usize,
    k: usize,
    control: &Control,
) -> Result<NeighborLists> {
    let norms: Vec<f32> = data
        .chunks_exact(d)
        .map(|r| r.iter().map(|x| x * x).sum())
        .collect();
    let mut lists = NeighborLists::new(n, k);
    let blocks = n.div_ceil(QUERY_BLOCK);
    control.update(|p| {
        p.chunks_total = blocks;
        p.majors_total = n;
    });
    let done = AtomicUsize::new(0);
    let rows = QUERY_BLOCK * k;
    lists
        .idx
        .par_chunks_mut(rows)
        .zip(lists.dist.par_chunks_mut(rows))
        .zip(lists.new.par_chunks_mut(rows))
        .enumerate()
        .try_for_each(|(b, ((idx, dist), new))| -> Result<()> {
            if control.is_cancelled() {
                return Err(Error::cancelled());
            }
            let q0 = b * QUERY_BLOCK;
            let nq = idx.len() / k;
            let queries = MatRef::from_row_major_slice(&data[q0 * d..(q0 + nq) * d], nq, d);
            let mut tile = vec![0f32; nq * REF_TILE];
            for r0 in (0..n).step_by(REF_TILE) {
                let nr = REF_TILE.min(n - r0);
                let refs = MatRef::from_row_major_slice(&data[r0 * d..(r0 + nr) * d], nr, d);
                let dots = MatMut::from_row_major_slice_mut(&mut tile[..nq * nr], nq, nr);
                faer::linalg::matmul::matmul(
                    dots,
                    Accum::Replace,
                    queries,
                    refs.transpose(),
                    1.0f32,
                    Par::Seq,
                );
                // The scalar loop below runs ~3× slower with the AVX-512
                // state the kernel leaves behind (see simd_state).
                crate::simd_state::clear_here();
                for qi in 0..nq {
                    let q = q0 + qi;
                    let row = &tile[qi * nr..(qi + 1) * nr];
                    let (ri, rd, rn) = (
                        &mut idx[qi * k..(qi + 1) * k],
                        &mut dist[qi * k..(qi + 1) * k],
                        &mut new[qi * k..(qi + 1) * k],
                    );
                    for (t, &dot) in row.iter().enumerate() {
                        let r = r0 + t;
                        let sd = (norms[q] + norms[r] - 2.0 * dot).max(0.0);
                        if sd < rd[k - 1] && r != q {
                            push_row(ri, rd, rn, r as u32, sd, false);
                        }
                    }
                }
            }
            // The expansion above loses precision for close pairs: rank the
            // kept candidates again by directly computed distances.
            for qi in 0..nq {
                let q = q0 + qi;
                let mut pairs: Vec<(f32, u32)> = idx[qi * k..(qi + 1) * k]
                    .iter()
                    .filter(|&&j| j != super::lists::EMPTY)
                    .map(|&j| {
                        (
                            sq_dist(
                                &data[q * d..(q + 1) * d],
                                &data[j as usize * d..(j as usize + 1) * d],
                            ),
                            j,
                        )
                    })
                    .collect();
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                for (s, (dd, j)) in pairs.into_iter().enumerate() {
                    idx[qi * k + s] = j;
                    dist[qi * k + s] = dd;
                }
            }
            let c = done.fetch_add(1, Ordering::Relaxed) + 1;
            control.update(|p| {
                p.chunks_done = c;
                p.majors_done = (c * QUERY_BLOCK).min(n);
            });
            Ok(())
        })?;
    Ok(lists)
}
