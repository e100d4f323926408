//! Approximate k-nearest neighbours: a random-projection forest gives
//! every point candidates from its leaves, then NN-descent (Dong et al.
//! 2011, as in pynndescent) refines them with local joins — "a neighbour
//! of my neighbour is likely my neighbour" — until few lists change.
//!
//! Written here rather than taken from a crate because the all-kNN graph
//! (not a query index) is what we need, in parallel, deterministically for
//! a seed, with cancellation, and with memory bounded by n·k.

use super::dist::sq_dist;
use super::lists::{push_row, NeighborLists, EMPTY};
use crate::error::{Error, Result};
use crate::graph::rng::Rng;
use crate::pass::Control;
use rayon::prelude::*;

/// Tuning knobs (defaults follow pynndescent where it matters for recall).
#[derive(Debug, Clone)]
pub struct NnDescentParams {
    pub n_trees: usize,
    pub leaf_size: usize,
    pub max_candidates: usize,
    pub max_iters: usize,
    /// Stop when fewer than delta · n · k list entries changed.
    pub delta: f64,
    pub seed: u64,
}

impl NnDescentParams {
    pub fn for_size(n: usize, k: usize, seed: u64) -> Self {
        let nf = n as f64;
        // Tuning hook: ANNDATA_OOM_NND="trees,leaf,candidates,iters".
        if let Ok(v) = std::env::var("ANNDATA_OOM_NND") {
            let f: Vec<usize> = v.split(',').filter_map(|x| x.parse().ok()).collect();
            if f.len() == 4 {
                return NnDescentParams {
                    n_trees: f[0],
                    leaf_size: f[1],
                    max_candidates: f[2],
                    max_iters: f[3],
                    delta: 0.001,
                    seed,
                };
            }
        }
        // Measured on 100k cells × 50 PCs (bench/graph.ts --recall): with
        // lists twice as long as kept (see knn::search_width), 8 trees and
        // candidates = list length reach recall@15 ≈ 0.98.
        NnDescentParams {
            n_trees: 8,
            leaf_size: (k + 2).max(30),
            max_candidates: k.clamp(16, 40),
            max_iters: (nf.log2().round() as usize).max(5),
            delta: 0.001,
            seed,
        }
    }
}

/// Floats of leaf distance matrices held at once while the forest seeds the
/// lists (64 MB).
const LEAF_MATRIX_BUDGET: usize = 1 << 24;

/// Points per local-join batch: bounds the memory of pending updates.
const JOIN_BATCH: usize = 16_384;

pub fn nn_descent(
    data: &[f32],
    n: usize,
    d: usize,
    k: usize,
    params: &NnDescentParams,
    control: &Control,
) -> Result<NeighborLists> {
    let total_chunks = 1 + params.max_iters;
    control.update(|p| p.chunks_total = total_chunks);
    let rng = Rng::new(params.seed);
    let point = |i: usize| &data[i * d..(i + 1) * d];
    let profile = std::env::var_os("AOOM_PROFILE").is_some();
    let t0 = std::time::Instant::now();
    let mut lists = forest_init(data, n, d, k, params, &rng, control)?;
    control.update(|p| p.chunks_done = 1);
    if profile {
        eprintln!("nndescent: forest {:?}", t0.elapsed());
    }

    for iter in 0..params.max_iters {
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
        let (new_c, old_c) = candidates(
            &mut lists,
            params.max_candidates,
            &mut rng.fork(1000 + iter as u64),
        );
        let c = params.max_candidates;
        let mut changed = 0usize;
        for start in (0..n).step_by(JOIN_BATCH) {
            if control.is_cancelled() {
                return Err(Error::cancelled());
            }
            let end = (start + JOIN_BATCH).min(n);
            let worst: &NeighborLists = &lists;
            // Local joins of this batch (parallel, read-only), then the
            // updates applied row-parallel, sorted so results do not
            // depend on thread timing.
            let mut updates: Vec<(u32, u32, f32)> = (start..end)
                .into_par_iter()
                .flat_map_iter(|v| {
                    let news: Vec<u32> = new_c[v * c..(v + 1) * c]
                        .iter()
                        .copied()
                        .filter(|&x| x != EMPTY)
                        .collect();
                    let olds: Vec<u32> = old_c[v * c..(v + 1) * c]
                        .iter()
                        .copied()
                        .filter(|&x| x != EMPTY)
                        .collect();
                    let mut out = Vec::new();
                    for (a, &p) in news.iter().enumerate() {
                        let pp = p as usize;
                        for &q in news[a + 1..].iter().chain(olds.iter()) {
                            if p == q {
                                continue;
                            }
                            let qq = q as usize;
                            let dd = sq_dist(point(pp), point(qq));
                            if dd < worst.worst(pp) {
                                out.push((p, q, dd));
                            }
                            if dd < worst.worst(qq) {
                                out.push((q, p, dd));
                            }
                        }
                    }
                    out.into_iter()
                })
                .collect();
            updates.par_sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then(a.2.total_cmp(&b.2)).then(a.1.cmp(&b.1))
            });
            changed += apply(&mut lists, &updates);
        }
        control.update(|p| p.chunks_done = 2 + iter);
        if profile {
            eprintln!(
                "nndescent: iteration {iter}: {changed} changes, {:?}",
                t0.elapsed()
            );
        }
        if (changed as f64) <= params.delta * n as f64 * k as f64 {
            break;
        }
    }
    control.update(|p| p.chunks_done = total_chunks);
    Ok(lists)
}

/// Apply sorted (target, other, dist) updates, one row block per task.
fn apply(lists: &mut NeighborLists, updates: &[(u32, u32, f32)]) -> usize {
    const ROWS: usize = 4096;
    let k = lists.k;
    lists
        .idx
        .par_chunks_mut(ROWS * k)
        .zip(lists.dist.par_chunks_mut(ROWS * k))
        .zip(lists.new.par_chunks_mut(ROWS * k))
        .enumerate()
        .map(|(b, ((idx, dist), new))| {
            let lo = (b * ROWS) as u32;
            let hi = lo + (idx.len() / k) as u32;
            let s = updates.partition_point(|u| u.0 < lo);
            let e = updates.partition_point(|u| u.0 < hi);
            let mut n = 0;
            for &(t, o, dd) in &updates[s..e] {
                let r = (t - lo) as usize * k;
                if push_row(
                    &mut idx[r..r + k],
                    &mut dist[r..r + k],
                    &mut new[r..r + k],
                    o,
                    dd,
                    true,
                ) {
                    n += 1;
                }
            }
            n
        })
        .sum()
}

/// Sample each point's new and old candidates (its own list plus reverse
/// neighbours), at most `c` each with random priorities, and mark the
/// sampled new entries old. Returns (new, old), n × c each, EMPTY-padded.
fn candidates(lists: &mut NeighborLists, c: usize, rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
    let (n, k) = (lists.n, lists.k);
    let mut new_c = vec![EMPTY; n * c];
    let mut old_c = vec![EMPTY; n * c];
    let mut new_p = vec![f32::INFINITY; n * c];
    let mut old_p = vec![f32::INFINITY; n * c];
    // Each row's current maximum priority and its first position: an offer
    // above it changes nothing, so most offers end after one comparison
    // instead of a scan of the row.
    let mut new_max = vec![(0u32, f32::INFINITY); n];
    let mut old_max = vec![(0u32, f32::INFINITY); n];
    // Keep the c lowest priorities per row (replace the current maximum).
    let offer = |cand: &mut [u32],
                 prio: &mut [f32],
                 max: &mut [(u32, f32)],
                 row: usize,
                 x: u32,
                 pr: f32| {
        let (m, mv) = max[row];
        if pr >= mv {
            return;
        }
        let (cs, ps) = (
            &mut cand[row * c..(row + 1) * c],
            &mut prio[row * c..(row + 1) * c],
        );
        if cs.contains(&x) {
            return;
        }
        cs[m as usize] = x;
        ps[m as usize] = pr;
        let (mut m, mut mv) = (0, ps[0]);
        for (t, &v) in ps.iter().enumerate().skip(1) {
            if v > mv {
                m = t;
                mv = v;
            }
        }
        max[row] = (m as u32, mv);
    };
    // Each thread owns a range of rows and takes, in the sequential order,
    // the offers made to its rows (its own entries' and the reverse ones),
    // replaying the same priorities from a copy of the generator: the same
    // candidates as one thread, on all cores. (The offers' random rows wait
    // on memory; this was a fifth of the neighbors step on one thread.)
    let per = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let lists_ref = &*lists;
    let ends: Vec<Rng> = new_c
        .par_chunks_mut(per * c)
        .zip(old_c.par_chunks_mut(per * c))
        .zip(new_p.par_chunks_mut(per * c))
        .zip(old_p.par_chunks_mut(per * c))
        .zip(new_max.par_chunks_mut(per))
        .zip(old_max.par_chunks_mut(per))
        .enumerate()
        .map(|(t, (((((nc, oc), np), op), nm), om))| {
            let (lo, hi) = (t * per, t * per + nm.len());
            let own = lo..hi;
            // Two sweeps over the entries, each replaying the same
            // priorities: first the offers of new entries, then those of
            // old ones, but only to rows that got new candidates. A row's
            // old candidates are joined with its new ones only, so a row
            // without new candidates needs none (late iterations have few
            // new entries, and most offers were such wasted old ones).
            let mut sweep = |new_sweep: bool| {
                let mut rng = rng.clone();
                for i in 0..n {
                    for s in 0..k {
                        let j = lists_ref.idx[i * k + s];
                        if j == EMPTY {
                            continue;
                        }
                        let pr = rng.uniform() as f32;
                        if lists_ref.new[i * k + s] != new_sweep {
                            continue;
                        }
                        let j = j as usize;
                        for (row, x) in [(i, j as u32), (j, i as u32)] {
                            if !own.contains(&row) {
                                continue;
                            }
                            let r = row - lo;
                            if new_sweep {
                                offer(nc, np, nm, r, x, pr);
                            } else if nc[r * c] != EMPTY {
                                // (a row's new candidates fill it from slot 0)
                                offer(oc, op, om, r, x, pr);
                            }
                        }
                    }
                }
                rng
            };
            sweep(true);
            sweep(false)
        })
        .collect();
    if let Some(end) = ends.into_iter().next() {
        *rng = end;
    }
    for i in 0..n {
        for s in 0..k {
            if lists.new[i * k + s] && new_c[i * c..(i + 1) * c].contains(&lists.idx[i * k + s]) {
                lists.new[i * k + s] = false;
            }
        }
    }
    (new_c, old_c)
}

/// Random-projection trees: split on the hyperplane halfway between two
/// random points until leaves are small; every point then takes its
/// nearest leaf-mates over all trees as initial neighbours.
fn forest_init(
    data: &[f32],
    n: usize,
    d: usize,
    k: usize,
    params: &NnDescentParams,
    rng: &Rng,
    control: &Control,
) -> Result<NeighborLists> {
    // leaf_of[t][i] = leaf id; leaves[t] = (order, starts).
    let trees: Vec<(Vec<u32>, Vec<usize>)> = (0..params.n_trees)
        .into_par_iter()
        .map(|t| build_tree(data, n, d, params.leaf_size, &mut rng.fork(t as u64)))
        .collect();
    if control.is_cancelled() {
        return Err(Error::cancelled());
    }
    let mut lists = NeighborLists::new(n, k);
    // Tree by tree, each point takes its leaf-mates in leaf order (so every
    // list sees the same pushes in the same order as a point-by-point
    // loop). The distances are computed per leaf, among its members copied
    // next to each other, and stored as the leaf's square matrix: a point's
    // leaf-mates are random rows of `data`, so computing them per point
    // cost a cache miss per pair (at 1M cells most of the forest's time).
    // sq_dist is symmetric bit for bit, so each pair is computed once.
    for (order, starts) in &trees {
        let n_leaves = starts.len() - 1;
        let mut leaf_of = vec![(0u32, 0u32); n];
        for l in 0..n_leaves {
            for (slot, &i) in order[starts[l]..starts[l + 1]].iter().enumerate() {
                leaf_of[i as usize] = (l as u32, slot as u32);
            }
        }
        // Leaves in groups whose matrices fit LEAF_MATRIX_BUDGET: the
        // matrices of a whole tree take n · leaf_size floats (120 MB at 1M
        // cells and leaves of 30, more with a larger leaf size).
        let mut first = 0;
        while first < n_leaves {
            let mut offset = vec![0usize];
            let mut end = first;
            while end < n_leaves && (end == first || offset[end - first] < LEAF_MATRIX_BUDGET) {
                let size = starts[end + 1] - starts[end];
                offset.push(offset[end - first] + size * size);
                end += 1;
            }
            let mut dists = vec![0f32; offset[end - first]];
            let mut blocks: Vec<&mut [f32]> = Vec::with_capacity(end - first);
            let mut rest = &mut dists[..];
            for g in 0..end - first {
                let (block, tail) = rest.split_at_mut(offset[g + 1] - offset[g]);
                blocks.push(block);
                rest = tail;
            }
            blocks
                .into_par_iter()
                .enumerate()
                .for_each_init(Vec::new, |points, (g, m)| {
                    let members = &order[starts[first + g]..starts[first + g + 1]];
                    let size = members.len();
                    points.clear();
                    for &i in members {
                        points.extend_from_slice(&data[i as usize * d..(i as usize + 1) * d]);
                    }
                    for p in 0..size {
                        for q in p + 1..size {
                            let dd =
                                sq_dist(&points[p * d..(p + 1) * d], &points[q * d..(q + 1) * d]);
                            m[p * size + q] = dd;
                            m[q * size + p] = dd;
                        }
                    }
                });
            lists
                .idx
                .par_chunks_mut(k)
                .zip(lists.dist.par_chunks_mut(k))
                .zip(lists.new.par_chunks_mut(k))
                .enumerate()
                .for_each(|(i, ((idx, dist), new))| {
                    let (l, slot) = (leaf_of[i].0 as usize, leaf_of[i].1 as usize);
                    if !(first..end).contains(&l) {
                        return;
                    }
                    let members = &order[starts[l]..starts[l + 1]];
                    let row = &dists[offset[l - first] + slot * members.len()..][..members.len()];
                    for (&j, &dd) in members.iter().zip(row) {
                        if j as usize != i {
                            push_row(idx, dist, new, j, dd, true);
                        }
                    }
                });
            first = end;
        }
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
    }
    // Points in tiny trees may still have empty slots: fill them with
    // random points so every list is full before the descent.
    let mut fill = rng.fork(u64::MAX);
    for i in 0..n {
        let mut guard = 0;
        while lists.idx[i * k + k - 1] == EMPTY && guard < 16 * k {
            let j = fill.below(n);
            if j != i {
                let dd = sq_dist(&data[i * d..(i + 1) * d], &data[j * d..(j + 1) * d]);
                lists.push(i, j as u32, dd, true);
            }
            guard += 1;
        }
    }
    Ok(lists)
}

/// One RP tree: returns the points reordered so that each leaf is a
/// contiguous range, and the leaf boundaries.
fn build_tree(
    data: &[f32],
    n: usize,
    d: usize,
    leaf: usize,
    rng: &mut Rng,
) -> (Vec<u32>, Vec<usize>) {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut starts = vec![0usize];
    let mut stack = vec![(0usize, n)];
    let mut side = Vec::new();
    let mut normal = vec![0f32; d];
    // Depth-first, right child last so leaves come out in order.
    while let Some((s, e)) = stack.pop() {
        if e - s <= leaf {
            starts.push(e);
            continue;
        }
        let seg = &mut order[s..e];
        let ia = rng.below(seg.len());
        let mut ib = rng.below(seg.len() - 1);
        if ib >= ia {
            ib += 1;
        }
        let (a, b) = (seg[ia] as usize, seg[ib] as usize);
        let (pa, pb) = (&data[a * d..(a + 1) * d], &data[b * d..(b + 1) * d]);
        let mut offset = 0f32;
        for t in 0..d {
            normal[t] = pa[t] - pb[t];
            offset -= normal[t] * (pa[t] + pb[t]) / 2.0;
        }
        side.clear();
        for &i in seg.iter() {
            let p = &data[i as usize * d..(i as usize + 1) * d];
            let m: f32 = p.iter().zip(&normal).map(|(x, w)| x * w).sum::<f32>() + offset;
            side.push(if m.abs() < 1e-8 {
                rng.below(2) == 0
            } else {
                m > 0.0
            });
        }
        let left = side.iter().filter(|&&x| x).count();
        let mid = if left == 0 || left == seg.len() {
            // Degenerate split (duplicates): halve at random.
            rng.shuffle(seg);
            seg.len() / 2
        } else {
            let (mut l, mut r): (Vec<u32>, Vec<u32>) = (
                Vec::with_capacity(left),
                Vec::with_capacity(seg.len() - left),
            );
            for (&i, &sd) in seg.iter().zip(&side) {
                if sd {
                    l.push(i)
                } else {
                    r.push(i)
                }
            }
            seg[..left].copy_from_slice(&l);
            seg[left..].copy_from_slice(&r);
            left
        };
        stack.push((s + mid, e));
        stack.push((s, s + mid));
    }
    (order, starts)
}
