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
    // The expansion ‖q‖² + ‖r‖² − 2·q·r cancels most digits for points far
    // from the origin relative to their spread: clusters 1,000 apart with a
    // spread of ~1 lost the true neighbours of a third of the cells in
    // float32. So it runs centred and in float64 (twice the float32 matmul
    // time; exact search is for up to ~20k cells), and the kept candidates
    // are ranked again by directly computed distances.
    let centred = centre_columns(data, n, d);
    let norms: Vec<f64> = centred
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
            let queries = MatRef::from_row_major_slice(&centred[q0 * d..(q0 + nq) * d], nq, d);
            let mut tile = vec![0f64; nq * REF_TILE];
            // Large k: candidates go to a buffer per query, cut back to the best k
            // when it doubles (push_row's sorted insertion is O(k) per candidate:
            // k = n_obs took 40 s on 3,000 cells).
            let mut buffers: Vec<Candidates> = if k > SORTED_INSERT_MAX_K {
                (0..nq).map(|_| Candidates::new(k)).collect()
            } else {
                Vec::new()
            };
            for r0 in (0..n).step_by(REF_TILE) {
                // A block with a large k takes a while: stop within one tile.
                if control.is_cancelled() {
                    return Err(Error::cancelled());
                }
                let nr = REF_TILE.min(n - r0);
                let refs = MatRef::from_row_major_slice(&centred[r0 * d..(r0 + nr) * d], nr, d);
                let dots = MatMut::from_row_major_slice_mut(&mut tile[..nq * nr], nq, nr);
                faer::linalg::matmul::matmul(
                    dots,
                    Accum::Replace,
                    queries,
                    refs.transpose(),
                    1.0f64,
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
                    if let Some(buf) = buffers.get_mut(qi) {
                        for (t, &dot) in row.iter().enumerate() {
                            let r = r0 + t;
                            if r != q {
                                buf.offer(
                                    (norms[q] + norms[r] - 2.0 * dot).max(0.0) as f32,
                                    r as u32,
                                );
                            }
                        }
                        continue;
                    }
                    for (t, &dot) in row.iter().enumerate() {
                        let r = r0 + t;
                        let sd = (norms[q] + norms[r] - 2.0 * dot).max(0.0) as f32;
                        if sd < rd[k - 1] && r != q {
                            push_row(ri, rd, rn, r as u32, sd, false);
                        }
                    }
                }
            }
            for (qi, buf) in buffers.into_iter().enumerate() {
                if qi % 16 == 0 && control.is_cancelled() {
                    return Err(Error::cancelled());
                }
                for (s, (dd, j)) in buf.best().into_iter().enumerate() {
                    idx[qi * k + s] = j;
                    dist[qi * k + s] = dd;
                }
            }
            // The expansion above loses precision for close pairs: rank the
            // kept candidates again by directly computed distances.
            for qi in 0..nq {
                if qi % 16 == 0 && control.is_cancelled() {
                    return Err(Error::cancelled());
                }
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

/// Above this k, candidates are collected in a `Candidates` buffer instead
/// of inserted into the sorted list one by one.
const SORTED_INSERT_MAX_K: usize = 48;

/// The k smallest (distance, index) pairs offered, in the order sorted
/// insertion keeps them: by distance, and among equal distances the first
/// offered (the smaller index, as references are offered in order).
struct Candidates {
    k: usize,
    pairs: Vec<(f32, u32)>,
    /// The k-th smallest distance once k pairs have been kept: larger ones cannot enter.
    bound: f32,
}

impl Candidates {
    fn new(k: usize) -> Self {
        Candidates {
            k,
            pairs: Vec::with_capacity(2 * k),
            bound: f32::INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, d: f32, j: u32) {
        // Equal to the bound: an earlier pair at that distance already wins (as `push_row`).
        if d >= self.bound {
            return;
        }
        self.pairs.push((d, j));
        if self.pairs.len() == 2 * self.k {
            self.cut();
        }
    }

    /// Keep the k smallest by (distance, index); the bound becomes the k-th distance.
    fn cut(&mut self) {
        let k = self.k;
        self.pairs
            .select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.pairs.truncate(k);
        self.bound = self
            .pairs
            .iter()
            .map(|p| p.0)
            .fold(f32::NEG_INFINITY, f32::max);
    }

    /// The kept pairs, sorted by (distance, index); at most k.
    fn best(mut self) -> Vec<(f32, u32)> {
        if self.pairs.len() > self.k {
            self.cut();
        }
        self.pairs
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.pairs
    }
}

/// `data` (n × d, row-major) minus its column means, in f64.
fn centre_columns(data: &[f32], n: usize, d: usize) -> Vec<f64> {
    let mut mean = vec![0f64; d];
    for row in data.chunks_exact(d) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f64;
    }
    data.chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).map(|(&x, &m)| f64::from(x) - m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The candidate buffer keeps what sorted insertion keeps, in the same
    /// order, also with many tied distances (small integers).
    #[test]
    fn candidates_keep_what_sorted_insertion_keeps() {
        let mut state = 99u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        for (k, n, levels) in [(50, 3000, 7), (60, 61, 3), (100, 5000, 1000), (49, 200, 2)] {
            let offered: Vec<(f32, u32)> =
                (0..n).map(|j| (next(levels) as f32, j as u32)).collect();
            let mut buf = Candidates::new(k);
            let (mut idx, mut dist, mut new) = (
                vec![crate::graph::knn::lists::EMPTY; k],
                vec![f32::INFINITY; k],
                vec![false; k],
            );
            for &(d, j) in &offered {
                buf.offer(d, j);
                if d < dist[k - 1] {
                    push_row(&mut idx, &mut dist, &mut new, j, d, false);
                }
            }
            let want: Vec<(f32, u32)> = dist
                .iter()
                .zip(&idx)
                .filter(|p| *p.1 != crate::graph::knn::lists::EMPTY)
                .map(|(&d, &j)| (d, j))
                .collect();
            assert_eq!(
                buf.best(),
                want,
                "k {k}, n {n}, {levels} distinct distances"
            );
        }
    }

    /// Points far from the origin relative to their spread: the candidate
    /// search must still find the true nearest neighbours.
    #[test]
    fn offset_points_keep_their_true_neighbours() {
        let (n, d, k) = (400, 8, 5);
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) as f32
        };
        // Ten clusters 1,000 apart, each with a spread of ~1.
        let data: Vec<f32> = (0..n * d)
            .map(|i| ((i / d) % 10) as f32 * 1000.0 + next())
            .collect();
        let lists = exact(&data, n, d, k, &Control::default()).unwrap();
        for q in 0..n {
            let mut all: Vec<(f64, usize)> = (0..n)
                .filter(|&r| r != q)
                .map(|r| {
                    (
                        super::super::dist::sq_dist_f64(
                            &data[q * d..(q + 1) * d],
                            &data[r * d..(r + 1) * d],
                        ),
                        r,
                    )
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let kth = all[k - 1].0;
            for s in 0..k {
                let j = lists.idx[q * k + s] as usize;
                let dj = super::super::dist::sq_dist_f64(
                    &data[q * d..(q + 1) * d],
                    &data[j * d..(j + 1) * d],
                );
                assert!(
                    dj <= kth * (1.0 + 1e-5),
                    "query {q}: neighbour {j} at {dj} beyond the true k-th {kth}"
                );
            }
        }
    }
}
