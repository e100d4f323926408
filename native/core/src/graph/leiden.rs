//! Leiden community detection (Traag, Waltman & van Eck 2019) maximising
//! the RB configuration model, i.e. modularity with a resolution γ, as
//! scanpy's `tl.leiden` does through leidenalg.
//!
//! Written by hand because graphs of a million cells must be clustered
//! natively, deterministically for a seed and inside our cancellation and
//! progress machinery; no maintained Rust Leiden crate fits (the ones that
//! exist are unmaintained, hash-map based in the hot loop or do not take a
//! weighted CSR graph).
//!
//! One iteration, as in leidenalg's `Optimiser::optimise_partition`, runs
//! levels until the graph stops shrinking. Each level
//! 1. moves nodes fast: a queue in seeded random order; each node goes to
//!    the neighbouring (or an empty) community with the best strictly
//!    positive gain, and its neighbours outside that community are queued
//!    again;
//! 2. refines: inside each community, starting from singletons, a
//!    well-connected singleton joins a well-connected refined community of
//!    non-negative gain, chosen at random with probability ∝ exp(ΔQ/θ);
//! 3. aggregates the refined communities into nodes whose initial
//!    partition is the non-refined one.
//!
//! The refinement follows the paper and igraph's C Leiden (θ = 0.01, gains
//! in weight units, i.e. ΔQ · m, as igraph scales them); leidenalg instead
//! merges each singleton into one random neighbour's refined community
//! when the gain is ≥ 0, without the well-connectedness checks. Sums are
//! f64. The fast move is sequential (each move changes the next gains);
//! the refinement runs the communities in parallel, each with its own
//! random stream forked by its label, and the aggregation builds blocks of
//! rows in parallel, so the result depends only on the graph and the seed,
//! not on the number of threads. Node ids of a kNN graph have no
//! locality (cells in file order), so the walks over nodes prefetch the
//! rows and labels a few nodes ahead.

use crate::error::{Error, Result};
use crate::graph::csr::Csr;
use crate::graph::rng::Rng;
use crate::pass::Control;
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::Instant;

/// Randomness of the refinement (θ in the paper, as in igraph).
const THETA: f64 = 0.01;
/// Node visits between two looks at the cancellation flag.
const CHECK_EVERY: usize = 1 << 16;
/// A move must gain more than this fraction of the node's degree, so that
/// rounding in the community totals cannot make nodes move forever.
const REL_EPS: f64 = 1e-10;
/// Levels per iteration assumed by the first progress estimate.
const LEVELS_GUESS: usize = 4;
/// Aggregate rows built per parallel task (a fixed split: the result does
/// not depend on the number of threads).
const AGGREGATE_ROWS: usize = 4096;

/// Parameters of [`leiden`], named as in scanpy's `tl.leiden`.
///
/// ```
/// use anndata_oom_core::graph::leiden::LeidenParams;
/// let p = LeidenParams { resolution: 0.5, ..LeidenParams::default() };
/// assert_eq!(p.n_iterations, -1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LeidenParams {
    /// γ: higher values give more, smaller clusters. Must be finite and > 0.
    pub resolution: f64,
    /// Outer iterations: below 0, iterate until an iteration moves no node
    /// (leidenalg's `n_iterations=-1`); otherwise exactly that many (0
    /// leaves every node in its own cluster).
    pub n_iterations: i32,
    /// Seed of the random node orders and refinement choices.
    pub seed: u64,
}

impl Default for LeidenParams {
    fn default() -> Self {
        LeidenParams {
            resolution: 1.0,
            n_iterations: -1,
            seed: 0,
        }
    }
}

/// Cluster the undirected weighted graph `g` (every edge stored in both
/// rows, like obsp['connectivities']; self-loops, isolated nodes and zero
/// weights allowed). Returns one cluster per node, numbered 0.. by
/// decreasing size, ties broken by the smallest node index; isolated nodes
/// end up alone. Progress is one chunk per level (the total is an estimate
/// that grows when passed); cancellation is checked every 65536 node
/// visits and between levels.
///
/// ```
/// use anndata_oom_core::graph::csr::Csr;
/// use anndata_oom_core::graph::leiden::{leiden, quality, LeidenParams};
/// use anndata_oom_core::pass::Control;
/// // Two triangles {0,1,2} and {3,4,5} joined by the edge 2-3.
/// let rows: [&[u32]; 6] = [&[1, 2], &[0, 2], &[0, 1, 3], &[2, 4, 5], &[3, 5], &[3, 4]];
/// let mut g = Csr { n: 6, indptr: vec![0], ..Csr::default() };
/// for r in rows {
///     g.indices.extend_from_slice(r);
///     g.weights.extend(r.iter().map(|_| 1.0f32));
///     g.indptr.push(g.indices.len());
/// }
/// let m = leiden(&g, &LeidenParams::default(), &Control::default()).unwrap();
/// assert_eq!(m, vec![0, 0, 0, 1, 1, 1]);
/// assert!((quality(&g, &m, 1.0) - 5.0 / 14.0).abs() < 1e-12);
/// ```
pub fn leiden(g: &Csr, params: &LeidenParams, control: &Control) -> Result<Vec<u32>> {
    g.validate("connectivities")?;
    let canonical = g.canonical();
    let g: &Csr = &canonical;
    g.check_symmetric("connectivities")?;
    let gamma = params.resolution;
    // γ = 0 is allowed, as in leidenalg and scanpy: every edge then gains,
    // and the partition is the connected components.
    if !gamma.is_finite() || gamma < 0.0 {
        return Err(Error::invalid(format!(
            "resolution must be a finite number ≥ 0, got {gamma}"
        )));
    }
    let n = g.n;
    if u32::try_from(n).is_err() {
        return Err(Error::invalid(format!("{n} nodes do not fit u32 labels")));
    }
    let k: Vec<f64> = (0..n)
        .map(|v| g.row(v).map(|(_, w)| w as f64).sum())
        .collect();
    let two_m: f64 = k.iter().sum();
    let mut membership: Vec<u32> = (0..n as u32).collect();
    if n == 0 || two_m <= 0.0 || params.n_iterations == 0 {
        return Ok(by_size(&membership));
    }
    let iterations_guess = if params.n_iterations > 0 {
        params.n_iterations as usize
    } else {
        3
    };
    let mut cx = Ctx {
        g2m: gamma / two_m,
        rng: Rng::new(params.seed),
        control,
        visits: 0,
        levels_done: 0,
        levels_total: iterations_guess * LEVELS_GUESS,
        started: Instant::now(),
    };
    cx.report();
    let mut scratch = Scratch::new(n);
    let mut iteration = 0i64;
    while params.n_iterations < 0 || iteration < params.n_iterations as i64 {
        let moved = iterate(g, &k, &mut membership, &mut cx, &mut scratch)?;
        iteration += 1;
        if params.n_iterations < 0 && !moved {
            break;
        }
    }
    cx.levels_total = cx.levels_done;
    cx.report();
    Ok(by_size(&membership))
}

/// The quality [`leiden`] maximises: Q = (1/2m) Σ_ij (A_ij − γ k_i k_j / 2m)
/// δ(c_i, c_j) with 2m = Σ_ij A_ij and k_i = Σ_j A_ij over the stored
/// entries (a self-loop counts once, as stored). 0 for a graph without
/// weight. Computed in f64. `g` must be valid and `membership` must have
/// one entry per node (panics otherwise); labels may be any u32.
///
/// ```
/// use anndata_oom_core::graph::csr::Csr;
/// use anndata_oom_core::graph::leiden::quality;
/// // One edge 0-1 (2m = 2, k = 1, 1): together Q = 2/2 - 2²/2², apart
/// // Q = 0 - (1² + 1²)/2².
/// let g = Csr { n: 2, indptr: vec![0, 1, 2], indices: vec![1, 0], weights: vec![1.0, 1.0] };
/// assert_eq!(quality(&g, &[7, 7], 1.0), 0.0);
/// assert_eq!(quality(&g, &[0, 1], 1.0), -0.5);
/// ```
pub fn quality(g: &Csr, membership: &[u32], resolution: f64) -> f64 {
    assert_eq!(
        membership.len(),
        g.n,
        "quality: membership has {} entries for {} nodes",
        membership.len(),
        g.n
    );
    let mut internal = 0.0f64;
    let mut degree: Vec<(u32, f64)> = Vec::with_capacity(g.n);
    for (v, &c) in membership.iter().enumerate() {
        let mut kv = 0.0f64;
        for (u, w) in g.row(v) {
            kv += w as f64;
            if membership[u] == c {
                internal += w as f64;
            }
        }
        degree.push((c, kv));
    }
    let two_m: f64 = degree.iter().map(|d| d.1).sum();
    if two_m <= 0.0 {
        return 0.0;
    }
    degree.sort_unstable_by_key(|d| d.0);
    let mut squares = 0.0f64;
    for group in degree.chunk_by(|a, b| a.0 == b.0) {
        let total: f64 = group.iter().map(|d| d.1).sum();
        squares += total * total;
    }
    internal / two_m - resolution * squares / (two_m * two_m)
}

/// State shared by the steps of one run.
struct Ctx<'c> {
    /// γ / 2m: the gain of moving v into C is w(v, C) − g2m · k_v · K_C.
    g2m: f64,
    rng: Rng,
    control: &'c Control,
    visits: usize,
    levels_done: usize,
    levels_total: usize,
    started: Instant,
}

impl Ctx<'_> {
    /// Count one node visit; look at the cancellation flag now and then.
    #[inline]
    fn tick(&mut self) -> Result<()> {
        self.visits += 1;
        if self.visits.is_multiple_of(CHECK_EVERY) && self.control.is_cancelled() {
            return Err(Error::cancelled());
        }
        Ok(())
    }

    fn level_done(&mut self) {
        self.levels_done += 1;
        self.levels_total = self.levels_total.max(self.levels_done + 1);
        self.report();
    }

    fn report(&self) {
        let (done, total) = (self.levels_done, self.levels_total);
        let ms = self.started.elapsed().as_secs_f64() * 1e3;
        self.control.update(|p| {
            p.chunks_done = done;
            p.chunks_total = total;
            p.elapsed_ms = ms;
        });
    }
}

/// Dense per-label weight accumulator with a touched list, reused by every
/// node visit (no hashing in the hot loop). A negative entry means "not
/// touched" (weights are never negative).
struct Scratch {
    acc: Vec<f64>,
    touched: Vec<u32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            acc: vec![-1.0; n],
            touched: Vec::new(),
        }
    }

    #[inline]
    fn add(&mut self, c: usize, w: f64) {
        let a = &mut self.acc[c];
        if *a < 0.0 {
            *a = 0.0;
            self.touched.push(c as u32);
        }
        *a += w;
    }

    #[inline]
    fn get(&self, c: usize) -> f64 {
        self.acc[c].max(0.0)
    }

    #[inline]
    fn clear(&mut self) {
        for &c in &self.touched {
            self.acc[c as usize] = -1.0;
        }
        self.touched.clear();
    }
}

/// The adjacency of one level: the input graph (f32 weights) or an
/// aggregate (f64). Self-loops are skipped wherever they would matter.
struct Adj<'a, W> {
    indptr: &'a [usize],
    indices: &'a [u32],
    weights: &'a [W],
}

impl<W> Clone for Adj<'_, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W> Copy for Adj<'_, W> {}

impl<'a, W: Copy + Into<f64>> Adj<'a, W> {
    #[inline]
    fn row(self, v: usize) -> impl Iterator<Item = (usize, f64)> + 'a {
        let r = self.indptr[v]..self.indptr[v + 1];
        self.indices[r.clone()]
            .iter()
            .zip(&self.weights[r])
            .map(|(&u, &w)| (u as usize, w.into()))
    }

    /// Software pipelining for a walk over nodes: `ahead` are the three
    /// nodes after the one about to be visited. Asks the CPU for the
    /// `labels` of the first one's neighbours, the second one's row and
    /// the third one's row offsets, each of which would otherwise stall on
    /// a cache miss. Changes no result.
    #[inline]
    fn prefetch_ahead(self, ahead: [Option<u32>; 3], labels: &[&[u32]]) {
        if let Some(a) = ahead[2] {
            prefetch(self.indptr.as_ptr().wrapping_add(a as usize));
        }
        if let Some(b) = ahead[1] {
            let (from, to) = (self.indptr[b as usize], self.indptr[b as usize + 1]);
            prefetch(self.indices.as_ptr().wrapping_add(from));
            prefetch(self.indices.as_ptr().wrapping_add(to));
            prefetch(self.weights.as_ptr().wrapping_add(from));
            prefetch(self.weights.as_ptr().wrapping_add(to));
        }
        if let Some(c) = ahead[0] {
            let c = c as usize;
            for &u in &self.indices[self.indptr[c]..self.indptr[c + 1]] {
                for l in labels {
                    prefetch(l.as_ptr().wrapping_add(u as usize));
                }
            }
        }
    }
}

/// Hint the CPU to load the cache line holding `p` (no effect on results).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The three entries of `seq` after position `i` (for `prefetch_ahead`).
#[inline]
fn after(seq: &[u32], i: usize) -> [Option<u32>; 3] {
    [1, 2, 3].map(|j| seq.get(i + j).copied())
}

/// An aggregate graph: one node per refined community, no self-loops
/// (they change no gain), node weights = summed degrees.
struct Aggregate {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    weights: Vec<f64>,
    k: Vec<f64>,
}

impl Aggregate {
    fn adj(&self) -> Adj<'_, f64> {
        Adj {
            indptr: &self.indptr,
            indices: &self.indices,
            weights: &self.weights,
        }
    }
}

/// One outer iteration starting from `membership` (labels < n); returns
/// whether any node moved in a fast-local-moving phase. Leaves
/// `membership` relabelled 0.. by first node.
fn iterate(
    g: &Csr,
    k: &[f64],
    membership: &mut [u32],
    cx: &mut Ctx,
    s: &mut Scratch,
) -> Result<bool> {
    let n = g.n;
    let mut node_level: Vec<u32> = (0..n as u32).collect();
    let input = Adj {
        indptr: &g.indptr,
        indices: &g.indices,
        weights: &g.weights,
    };
    let mut part = membership.to_vec();
    let (mut moved, mut next) = level(input, k, &mut part, &mut node_level, membership, cx, s)?;
    while let Some((graph, mut part)) = next {
        let (m, nx) = level(
            graph.adj(),
            &graph.k,
            &mut part,
            &mut node_level,
            membership,
            cx,
            s,
        )?;
        moved |= m;
        next = nx;
    }
    compact(membership);
    Ok(moved)
}

/// Move, refine and aggregate one level. `node_level` maps input nodes to
/// this level's nodes. Returns whether a node moved and, unless this was
/// the last level, the aggregate graph with its initial partition
/// (`node_level` then maps to its nodes); after the last level,
/// `membership` holds the moved partition on the input nodes.
#[allow(clippy::type_complexity)]
fn level<W: Copy + Into<f64> + Sync>(
    g: Adj<'_, W>,
    k: &[f64],
    part: &mut [u32],
    node_level: &mut [u32],
    membership: &mut [u32],
    cx: &mut Ctx,
    s: &mut Scratch,
) -> Result<(bool, Option<(Aggregate, Vec<u32>)>)> {
    if cx.control.is_cancelled() {
        return Err(Error::cancelled());
    }
    let t0 = Instant::now();
    let moved = move_nodes(g, k, part, cx, s)?;
    let t1 = Instant::now();
    let mut refined = refine(g, k, part, cx)?;
    let t2 = Instant::now();
    let next = aggregate(g, k, &mut refined, part, cx)?;
    if std::env::var_os("AOOM_PROFILE").is_some() {
        eprintln!(
            "leiden level: {} nodes, {} entries: move {:.2?}, refine {:.2?}, aggregate {:.2?}",
            k.len(),
            g.indices.len(),
            t1 - t0,
            t2 - t1,
            t2.elapsed()
        );
    }
    if next.is_some() {
        for v in node_level.iter_mut() {
            *v = refined[*v as usize];
        }
    } else {
        for (m, &v) in membership.iter_mut().zip(node_level.iter()) {
            *m = part[v as usize];
        }
    }
    cx.level_done();
    Ok((moved, next))
}

/// Fast local moving (Leiden step 1). `part` holds labels < n.
fn move_nodes<W: Copy + Into<f64>>(
    g: Adj<'_, W>,
    k: &[f64],
    part: &mut [u32],
    cx: &mut Ctx,
    s: &mut Scratch,
) -> Result<bool> {
    let n = k.len();
    let mut total = vec![0.0f64; n];
    let mut size = vec![0u32; n];
    for (&c, &kv) in part.iter().zip(k) {
        total[c as usize] += kv;
        size[c as usize] += 1;
    }
    // Unused labels, the smallest on top.
    let mut empty: Vec<u32> = (0..n as u32)
        .rev()
        .filter(|&c| size[c as usize] == 0)
        .collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    cx.rng.shuffle(&mut order);
    let mut queue = VecDeque::from(order);
    let mut stable = vec![false; n];
    let mut moved = false;
    while let Some(v) = queue.pop_front() {
        cx.tick()?;
        let ahead = [1, 2, 3].map(|j| queue.get(j).copied());
        g.prefetch_ahead(ahead, &[part]);
        let v = v as usize;
        stable[v] = true;
        let (cv, kv) = (part[v] as usize, k[v]);
        for (u, w) in g.row(v) {
            if u != v {
                s.add(part[u] as usize, w);
            }
        }
        let mut best = cv;
        let mut best_gain = s.get(cv) - cx.g2m * kv * (total[cv] - kv) + REL_EPS * kv;
        for &c in &s.touched {
            let c = c as usize;
            if c != cv {
                let gain = s.acc[c] - cx.g2m * kv * total[c];
                if gain > best_gain {
                    best = c;
                    best_gain = gain;
                }
            }
        }
        s.clear();
        // An empty community gains 0: better only when staying loses.
        let mut to_empty = false;
        if size[cv] > 1 && 0.0 > best_gain {
            if let Some(&c) = empty.last() {
                best = c as usize;
                to_empty = true;
            }
        }
        if best == cv {
            continue;
        }
        if to_empty {
            empty.pop();
        }
        total[cv] -= kv;
        size[cv] -= 1;
        if size[cv] == 0 {
            empty.push(cv as u32);
        }
        total[best] += kv;
        size[best] += 1;
        part[v] = best as u32;
        moved = true;
        for (u, _) in g.row(v) {
            if u != v && stable[u] && part[u] as usize != best {
                stable[u] = false;
                queue.push_back(u as u32);
            }
        }
    }
    Ok(moved)
}

/// Refinement (Leiden step 2): returns refined labels (< n), each refined
/// community inside one community of `part`. Each community is refined on
/// its own, with its nodes in random order (as in the paper) and its own
/// random stream (forked from one draw of the run's generator by the
/// community's label), so communities are refined in parallel and the
/// result does not depend on the number of threads.
fn refine<W: Copy + Into<f64> + Sync>(
    g: Adj<'_, W>,
    k: &[f64],
    part: &[u32],
    cx: &mut Ctx,
) -> Result<Vec<u32>> {
    let n = k.len();
    let (start, nodes) = group(part);
    // Each node's position in its community's (sorted) member list: the
    // refinement indexes its state by it.
    let mut pos = vec![0u32; n];
    for c in 0..start.len() - 1 {
        for (i, &v) in nodes[start[c]..start[c + 1]].iter().enumerate() {
            pos[v as usize] = i as u32;
        }
    }
    let base = Rng::new(cx.rng.next_u64());
    let g2m = cx.g2m;
    let control = cx.control;
    let communities: Vec<usize> = (0..start.len() - 1)
        .filter(|&c| start[c + 1] - start[c] >= 2)
        .collect();
    let done: Vec<(usize, Vec<u32>)> = communities
        .into_par_iter()
        .map(|c| {
            let members = &nodes[start[c]..start[c + 1]];
            let mut rng = base.fork(c as u64);
            let local = refine_community(g, k, part, &pos, c, members, g2m, &mut rng, control);
            (c, local)
        })
        .collect();
    if control.is_cancelled() {
        return Err(Error::cancelled());
    }
    cx.visits += n;
    let mut refined: Vec<u32> = (0..n as u32).collect();
    for (c, local) in done {
        let members = &nodes[start[c]..start[c + 1]];
        for (&v, &l) in members.iter().zip(&local) {
            refined[v as usize] = members[l as usize];
        }
    }
    Ok(refined)
}

/// Refine community `c` (its `members`, sorted; `pos[v]` is v's index in
/// them): from singletons, a well-connected singleton joins a
/// well-connected refined community of non-negative gain, chosen at random
/// with probability ∝ exp(ΔQ/θ). Returns each member's refined label as a
/// member index. Stops early (any result) once the run is cancelled.
#[allow(clippy::too_many_arguments)]
fn refine_community<W: Copy + Into<f64>>(
    g: Adj<'_, W>,
    k: &[f64],
    part: &[u32],
    pos: &[u32],
    c: usize,
    members: &[u32],
    g2m: f64,
    rng: &mut Rng,
    control: &Control,
) -> Vec<u32> {
    let m = members.len();
    // State per refined community, indexed by member index (a refined
    // community starts as the singleton of the member with that index).
    let mut refined: Vec<u32> = (0..m as u32).collect();
    let mut total: Vec<f64> = members.iter().map(|&v| k[v as usize]).collect();
    let mut size = vec![1u32; m];
    // Weight from each refined community to the rest of its community;
    // for a singleton that is its node's own, self-loops excluded.
    let mut external = vec![0.0f64; m];
    let mut outer = 0.0f64;
    for (i, &v) in members.iter().enumerate() {
        g.prefetch_ahead(after(members, i), &[part]);
        let v = v as usize;
        outer += k[v];
        external[i] = g
            .row(v)
            .filter(|&(u, _)| u != v && part[u] as usize == c)
            .map(|(_, w)| w)
            .sum();
    }
    let mut order = members.to_vec();
    rng.shuffle(&mut order);
    let mut s = Scratch::new(m);
    let mut chosen: Vec<(u32, f64)> = Vec::new();
    for (i, &v) in order.iter().enumerate() {
        if i % CHECK_EVERY == CHECK_EVERY - 1 && control.is_cancelled() {
            break;
        }
        g.prefetch_ahead(after(&order, i), &[part, pos]);
        let v = v as usize;
        let lv = pos[v] as usize;
        let rv = refined[lv] as usize;
        let kv = k[v];
        if size[rv] != 1 || external[rv] < g2m * kv * (outer - kv) {
            continue;
        }
        for (u, w) in g.row(v) {
            if u != v && part[u] as usize == c {
                s.add(refined[pos[u] as usize] as usize, w);
            }
        }
        // Candidates: well-connected refined communities of gain >= 0;
        // staying alone (gain 0) is always one.
        chosen.clear();
        let mut max_gain = 0.0f64;
        for &t in &s.touched {
            let t = t as usize;
            let gain = s.acc[t] - g2m * kv * total[t];
            if gain >= 0.0 && external[t] >= g2m * total[t] * (outer - total[t]) {
                chosen.push((t as u32, gain));
                max_gain = max_gain.max(gain);
            }
        }
        if let Some(t) = draw(&mut chosen, max_gain, rng) {
            external[t] += external[rv] - 2.0 * s.acc[t];
            total[t] += kv;
            size[t] += 1;
            total[rv] = 0.0;
            size[rv] = 0;
            refined[lv] = t as u32;
        }
        s.clear();
    }
    refined
}

/// Pick among `candidates` (label, gain ≥ 0) and staying put (gain 0) with
/// probability ∝ exp(gain / θ); `None` means stay. Weights below e^-50 of
/// the best count as 0 (saves the exp; changes nothing measurable).
fn draw(candidates: &mut [(u32, f64)], max_gain: f64, rng: &mut Rng) -> Option<usize> {
    if candidates.is_empty() {
        return None;
    }
    let weight = |gain: f64| {
        let z = (gain - max_gain) / THETA;
        if z < -50.0 {
            0.0
        } else {
            z.exp()
        }
    };
    let stay = weight(0.0);
    let mut sum = stay;
    for cand in candidates.iter_mut() {
        cand.1 = weight(cand.1);
        sum += cand.1;
    }
    let mut x = rng.uniform() * sum - stay;
    if x < 0.0 {
        return None;
    }
    for &(t, p) in candidates.iter() {
        if x < p {
            return Some(t as usize);
        }
        x -= p;
    }
    // Rounding ran past the end: the last candidate with weight.
    candidates
        .iter()
        .rev()
        .find(|c| c.1 > 0.0)
        .map(|c| c.0 as usize)
}

/// Aggregation (Leiden step 3). Relabels `refined` in place 0.. by first
/// node; then, if the graph shrinks and `part` has fewer communities than
/// nodes (leidenalg's condition to aggregate further), returns the
/// aggregate graph and its initial partition (the communities of `part`,
/// relabelled 0..).
fn aggregate<W: Copy + Into<f64> + Sync>(
    g: Adj<'_, W>,
    k: &[f64],
    refined: &mut [u32],
    part: &[u32],
    cx: &mut Ctx,
) -> Result<Option<(Aggregate, Vec<u32>)>> {
    let n = k.len();
    let n_new = compact(refined);
    let mut community_label = vec![u32::MAX; n];
    let mut n_communities = 0u32;
    for &c in part {
        if community_label[c as usize] == u32::MAX {
            community_label[c as usize] = n_communities;
            n_communities += 1;
        }
    }
    if n_new >= n || n_communities as usize >= n {
        return Ok(None);
    }
    let (start, members) = group(refined);
    // Rows are independent (each sums its members' rows by label), so
    // blocks of them are built in parallel, each with its own scratch, and
    // joined in order: the same graph as row by row.
    let control = cx.control;
    let refined = &*refined;
    let blocks: Vec<AggregateRows> = (0..n_new.div_ceil(AGGREGATE_ROWS))
        .into_par_iter()
        .map_init(
            || Scratch::new(n_new),
            |s, blk| {
                let rows = blk * AGGREGATE_ROWS..((blk + 1) * AGGREGATE_ROWS).min(n_new);
                if control.is_cancelled() {
                    return AggregateRows::default();
                }
                let mut out = AggregateRows::default();
                for a in rows {
                    out.part
                        .push(community_label[part[members[start[a]] as usize] as usize]);
                    let mut ka = 0.0f64;
                    for i in start[a]..start[a + 1] {
                        g.prefetch_ahead(after(&members, i), &[refined]);
                        let v = members[i] as usize;
                        ka += k[v];
                        for (u, w) in g.row(v) {
                            let b = refined[u] as usize;
                            if b != a {
                                s.add(b, w);
                            }
                        }
                    }
                    out.k.push(ka);
                    for &b in &s.touched {
                        out.indices.push(b);
                        out.weights.push(s.acc[b as usize]);
                    }
                    s.clear();
                    out.len.push(out.indices.len());
                }
                out
            },
        )
        .collect();
    if control.is_cancelled() {
        return Err(Error::cancelled());
    }
    cx.visits += n;
    let nnz = blocks.iter().map(|b| b.indices.len()).sum();
    let mut graph = Aggregate {
        indptr: Vec::with_capacity(n_new + 1),
        indices: Vec::with_capacity(nnz),
        weights: Vec::with_capacity(nnz),
        k: Vec::with_capacity(n_new),
    };
    let mut new_part = Vec::with_capacity(n_new);
    graph.indptr.push(0);
    for b in blocks {
        let base = graph.indices.len();
        graph.indptr.extend(b.len.iter().map(|&l| base + l));
        graph.indices.extend_from_slice(&b.indices);
        graph.weights.extend_from_slice(&b.weights);
        graph.k.extend_from_slice(&b.k);
        new_part.extend_from_slice(&b.part);
    }
    Ok(Some((graph, new_part)))
}

/// A block of aggregate rows: their entries, each row's end in them, node
/// weights and initial communities.
#[derive(Default)]
struct AggregateRows {
    indices: Vec<u32>,
    weights: Vec<f64>,
    len: Vec<usize>,
    k: Vec<f64>,
    part: Vec<u32>,
}

/// Nodes grouped by label (labels < n): `nodes[start[c]..start[c + 1]]`
/// are the nodes labelled c, in increasing order.
fn group(labels: &[u32]) -> (Vec<usize>, Vec<u32>) {
    let n_labels = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut start = vec![0usize; n_labels + 1];
    for &l in labels {
        start[l as usize + 1] += 1;
    }
    for i in 0..n_labels {
        start[i + 1] += start[i];
    }
    let mut cursor = start.clone();
    let mut nodes = vec![0u32; labels.len()];
    for (v, &l) in labels.iter().enumerate() {
        nodes[cursor[l as usize]] = v as u32;
        cursor[l as usize] += 1;
    }
    (start, nodes)
}

/// Relabel 0.. in order of first appearance (labels < len); returns the
/// number of labels.
fn compact(labels: &mut [u32]) -> usize {
    let mut map = vec![u32::MAX; labels.len()];
    let mut next = 0u32;
    for l in labels.iter_mut() {
        let m = &mut map[*l as usize];
        if *m == u32::MAX {
            *m = next;
            next += 1;
        }
        *l = *m;
    }
    next as usize
}

/// Relabel clusters (labels < n) 0.. by decreasing size, ties by smallest
/// node index.
fn by_size(labels: &[u32]) -> Vec<u32> {
    let n = labels.len();
    let mut size = vec![0usize; n];
    let mut first = vec![usize::MAX; n];
    for (v, &c) in labels.iter().enumerate() {
        let c = c as usize;
        size[c] += 1;
        first[c] = first[c].min(v);
    }
    let mut clusters: Vec<usize> = (0..n).filter(|&c| size[c] > 0).collect();
    clusters.sort_unstable_by_key(|&c| (Reverse(size[c]), first[c]));
    let mut rank = vec![0u32; n];
    for (r, &c) in clusters.iter().enumerate() {
        rank[c] = r as u32;
    }
    labels.iter().map(|&c| rank[c as usize]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// A symmetric CSR from undirected edges (i, j, w), each stored in both
    /// rows (a self-loop once), rows sorted by column.
    fn from_edges(n: usize, edges: &[(u32, u32, f32)]) -> Csr {
        let mut indptr = vec![0usize; n + 1];
        for &(i, j, _) in edges {
            indptr[i as usize + 1] += 1;
            if i != j {
                indptr[j as usize + 1] += 1;
            }
        }
        for i in 0..n {
            indptr[i + 1] += indptr[i];
        }
        let mut cursor = indptr.clone();
        let mut entries = vec![(0u32, 0f32); indptr[n]];
        for &(i, j, w) in edges {
            entries[cursor[i as usize]] = (j, w);
            cursor[i as usize] += 1;
            if i != j {
                entries[cursor[j as usize]] = (i, w);
                cursor[j as usize] += 1;
            }
        }
        for i in 0..n {
            entries[indptr[i]..indptr[i + 1]].sort_unstable_by_key(|e| e.0);
        }
        Csr {
            n,
            indptr,
            indices: entries.iter().map(|e| e.0).collect(),
            weights: entries.iter().map(|e| e.1).collect(),
        }
    }

    /// `groups` × `size` nodes, node i in group i % groups; edges with
    /// probability `p_in` inside a group and `p_out` between groups.
    fn planted(groups: usize, size: usize, p_in: f64, p_out: f64, seed: u64) -> (Csr, Vec<u32>) {
        let n = groups * size;
        let truth: Vec<u32> = (0..n).map(|i| (i % groups) as u32).collect();
        let mut rng = Rng::new(seed);
        let mut edges = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let p = if truth[i] == truth[j] { p_in } else { p_out };
                if rng.uniform() < p {
                    edges.push((i as u32, j as u32, 1.0));
                }
            }
        }
        (from_edges(n, &edges), truth)
    }

    /// A kNN-like graph: nodes on a torus grid, each linked to 20 random
    /// nodes within radius 4 (weight falling with distance), symmetrised:
    /// about 31 stored entries per row.
    fn knn_like(n: usize, seed: u64) -> Csr {
        let side = (n as f64).sqrt().ceil() as i64;
        let mut rng = Rng::new(seed);
        let mut edges = Vec::with_capacity(n * 20);
        for i in 0..n as i64 {
            let (x, y) = (i % side, i / side);
            let mut picked = 0;
            while picked < 20 {
                let dx = rng.below(9) as i64 - 4;
                let dy = rng.below(9) as i64 - 4;
                let j = (y + dy).rem_euclid(side) * side + (x + dx).rem_euclid(side);
                if (dx == 0 && dy == 0) || j >= n as i64 {
                    continue;
                }
                let w = (1.0 / (1.0 + 0.2 * (dx * dx + dy * dy) as f64)) as f32;
                edges.push((i.min(j) as u32, i.max(j) as u32, w));
                picked += 1;
            }
        }
        edges.sort_unstable_by_key(|e| (e.0, e.1));
        edges.dedup_by_key(|e| (e.0, e.1));
        from_edges(n, &edges)
    }

    /// A kNN-like graph with cell types, nodes in random order (like cells
    /// in a file): 40 clusters of skewed sizes; each node links to 16
    /// others, mostly near it along its cluster's trajectory (a ring),
    /// some anywhere in its cluster, a few in the next cluster; weights in
    /// (0, 1]. About 30 stored entries per row.
    fn clustered(n: usize, seed: u64) -> Csr {
        let mut rng = Rng::new(seed);
        let n_clusters = 40;
        let raw: Vec<f64> = (0..n_clusters).map(|c| 1.0 / (c as f64 + 3.0)).collect();
        let sum: f64 = raw.iter().sum();
        let mut start = vec![0usize];
        for r in &raw {
            let next = start.last().unwrap() + ((r / sum) * n as f64) as usize;
            start.push(next.min(n));
        }
        *start.last_mut().unwrap() = n;
        let mut id: Vec<u32> = (0..n as u32).collect();
        rng.shuffle(&mut id);
        let mut edges = Vec::with_capacity(n * 16);
        for c in 0..n_clusters {
            let (a, b) = (start[c], start[c + 1]);
            let size = (b - a) as i64;
            let (na, nb) = (start[(c + 1) % n_clusters], start[(c + 1) % n_clusters + 1]);
            for i in a..b {
                for _ in 0..18 {
                    let x = rng.uniform();
                    let (j, w) = if x < 0.7 {
                        let d = rng.below(41) as i64 - 20;
                        let j = a as i64 + (i as i64 - a as i64 + d).rem_euclid(size);
                        (j as usize, 1.0 - d.abs() as f64 / 25.0)
                    } else if x < 0.97 {
                        (a + rng.below(b - a), 0.3 + 0.4 * rng.uniform())
                    } else {
                        (na + rng.below(nb - na), 0.1 + 0.3 * rng.uniform())
                    };
                    if j != i {
                        let (p, q) = (id[i], id[j]);
                        edges.push((p.min(q), p.max(q), w as f32));
                    }
                }
            }
        }
        edges.sort_unstable_by_key(|e| (e.0, e.1));
        edges.dedup_by_key(|e| (e.0, e.1));
        from_edges(n, &edges)
    }

    fn run(g: &Csr, resolution: f64, seed: u64) -> Vec<u32> {
        let params = LeidenParams {
            resolution,
            n_iterations: -1,
            seed,
        };
        leiden(g, &params, &Control::default()).unwrap()
    }

    fn n_clusters(m: &[u32]) -> usize {
        m.iter().max().map_or(0, |&c| c as usize + 1)
    }

    /// Same partition up to relabelling.
    fn same_partition(a: &[u32], b: &[u32]) -> bool {
        let mut ab = std::collections::HashMap::new();
        let mut ba = std::collections::HashMap::new();
        a.iter()
            .zip(b)
            .all(|(x, y)| *ab.entry(x).or_insert(y) == y && *ba.entry(y).or_insert(x) == x)
    }

    /// Labels are 0.. by decreasing size, ties by smallest node index.
    fn assert_ordered(m: &[u32]) {
        let k = n_clusters(m);
        let mut size = vec![0usize; k];
        let mut first = vec![usize::MAX; k];
        for (v, &c) in m.iter().enumerate() {
            size[c as usize] += 1;
            first[c as usize] = first[c as usize].min(v);
        }
        for c in 1..k {
            assert!(size[c] > 0);
            assert!((size[c - 1], Reverse(first[c - 1])) > (size[c], Reverse(first[c])));
        }
    }

    fn two_triangles() -> Csr {
        let e = [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (4, 5)];
        from_edges(6, &e.map(|(i, j)| (i, j, 1.0)))
    }

    #[test]
    fn quality_of_two_triangles() {
        let g = two_triangles();
        let q = quality(&g, &[0, 0, 0, 1, 1, 1], 1.0);
        assert!((q - 5.0 / 14.0).abs() < 1e-12, "{q}");
        // Labels are arbitrary u32s.
        let q2 = quality(&g, &[9, 9, 9, u32::MAX, u32::MAX, u32::MAX], 1.0);
        assert_eq!(q, q2);
        // One cluster: Q = 1 − γ.
        assert!((quality(&g, &[0; 6], 2.0) - (1.0 - 2.0)).abs() < 1e-12);
        // γ = 0.5: 12/14 − 0.5 · 98/196.
        let q3 = quality(&g, &[0, 0, 0, 1, 1, 1], 0.5);
        assert!((q3 - (12.0 / 14.0 - 0.25)).abs() < 1e-12);
        // A self-loop counts once: edge 0-1 (w 1) plus a loop on 0 (w 2):
        // 2m = 4, k = (3, 1), together Q = 4/4 − 16/16 = 0, apart
        // Q = 2/4 − (9 + 1)/16.
        let g = from_edges(2, &[(0, 1, 1.0), (0, 0, 2.0)]);
        assert!(quality(&g, &[0, 0], 1.0).abs() < 1e-12);
        assert!((quality(&g, &[0, 1], 1.0) - (0.5 - 10.0 / 16.0)).abs() < 1e-12);
        // No weight at all.
        assert_eq!(quality(&from_edges(3, &[]), &[0, 1, 2], 1.0), 0.0);
    }

    #[test]
    fn refuses_a_directed_graph() {
        // Edge 0 → 1 only (as the kNN distances store it): refused, not a hang.
        let mut g = two_triangles();
        let (a, b) = (g.indptr[1], g.indptr[2]);
        let back = (a..b).find(|&e| g.indices[e] == 0).unwrap();
        g.weights[back] = 0.5;
        let e = leiden(&g, &LeidenParams::default(), &Control::default()).unwrap_err();
        assert!(e.to_string().contains("not symmetric"), "{e}");
        // Rows out of order are fine.
        let mut g = two_triangles();
        g.indices[..2].reverse();
        g.weights[..2].reverse();
        assert!(g.check_symmetric("g").is_ok());
    }

    #[test]
    fn repeated_entries_are_summed_before_the_symmetry_check() {
        // Edge 0 → 1 stored twice (weights 1 + 1) against 1 → 0 of weight 1:
        // directed once summed, as scipy reads it. Refused, not a hang.
        let g = Csr {
            n: 2,
            indptr: vec![0, 2, 3],
            indices: vec![1, 1, 0],
            weights: vec![1.0, 1.0, 1.0],
        };
        let e = leiden(&g, &LeidenParams::default(), &Control::default()).unwrap_err();
        assert!(e.to_string().contains("not symmetric"), "{e}");
        // Repeated entries whose sums mirror each other: the summed graph's clusters.
        let g = two_triangles();
        let mut split = Csr {
            n: g.n,
            indptr: vec![0],
            ..Csr::default()
        };
        for i in 0..g.n {
            for (j, w) in g.row(i) {
                split.indices.extend([j as u32, j as u32]);
                split.weights.extend([w / 2.0, w / 2.0]);
            }
            split.indptr.push(split.indices.len());
        }
        assert_eq!(run(&split, 1.0, 0), run(&g, 1.0, 0));
    }

    #[test]
    fn resolution_zero_gives_the_connected_components() {
        // two triangles joined by an edge: one component
        assert_eq!(run(&two_triangles(), 0.0, 0), vec![0; 6]);
        // three components (a triangle, an edge, a lone node), largest first
        let g = from_edges(6, &[(0, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0), (3, 4, 0.5)]);
        assert_eq!(run(&g, 0.0, 3), vec![0, 0, 0, 1, 1, 2]);
    }

    #[test]
    fn splits_two_triangles() {
        let g = two_triangles();
        assert_eq!(run(&g, 1.0, 0), vec![0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn recovers_planted_partition() {
        let (g, truth) = planted(10, 100, 0.2, 0.005, 1);
        for seed in [0, 1, 2] {
            let m = run(&g, 1.0, seed);
            assert_eq!(n_clusters(&m), 10);
            assert!(same_partition(&m, &truth), "seed {seed}");
            assert!(quality(&g, &m, 1.0) >= quality(&g, &truth, 1.0) - 1e-9);
            assert_ordered(&m);
        }
    }

    #[test]
    fn beats_planted_quality_on_noisy_graph() {
        // Weak structure: the planted partition is no longer optimal, but
        // the result must be at least as good.
        let (g, truth) = planted(8, 60, 0.1, 0.03, 2);
        let m = run(&g, 1.0, 0);
        assert!(quality(&g, &m, 1.0) >= quality(&g, &truth, 1.0) - 1e-9);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let g = knn_like(3000, 3);
        let a = run(&g, 1.0, 42);
        assert_eq!(a, run(&g, 1.0, 42));
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(a, pool.install(|| run(&g, 1.0, 42)));
        }
        assert_ordered(&a);
    }

    #[test]
    fn higher_resolution_gives_more_clusters() {
        let g = knn_like(2000, 4);
        let counts: Vec<usize> = [0.3, 1.0, 3.0]
            .iter()
            .map(|&r| n_clusters(&run(&g, r, 0)))
            .collect();
        assert!(counts[0] < counts[1] && counts[1] < counts[2], "{counts:?}");
    }

    #[test]
    fn clusters_are_connected_and_nodes_locally_optimal() {
        let g = knn_like(4000, 5);
        let gamma = 1.0;
        let m = run(&g, gamma, 7);
        let n = g.n;
        // Connected: a BFS inside each cluster reaches all of it.
        let k = n_clusters(&m);
        let mut size = vec![0usize; k];
        for &c in &m {
            size[c as usize] += 1;
        }
        let mut seen = vec![false; n];
        let mut started = vec![false; k];
        for s in 0..n {
            let c = m[s] as usize;
            if started[c] {
                continue;
            }
            started[c] = true;
            let (mut stack, mut reached) = (vec![s], 0);
            seen[s] = true;
            while let Some(v) = stack.pop() {
                reached += 1;
                for (u, w) in g.row(v) {
                    if w > 0.0 && !seen[u] && m[u] as usize == c {
                        seen[u] = true;
                        stack.push(u);
                    }
                }
            }
            assert_eq!(reached, size[c], "cluster {c} is not connected");
        }
        // No single move (to a neighbouring or an empty cluster) gains.
        let deg: Vec<f64> = (0..n)
            .map(|v| g.row(v).map(|(_, w)| w as f64).sum())
            .collect();
        let two_m: f64 = deg.iter().sum();
        let mut total = vec![0.0f64; k];
        for v in 0..n {
            total[m[v] as usize] += deg[v];
        }
        for v in 0..n {
            let cv = m[v] as usize;
            let mut to = std::collections::HashMap::new();
            for (u, w) in g.row(v) {
                if u != v {
                    *to.entry(m[u] as usize).or_insert(0.0) += w as f64;
                }
            }
            let gain = |c: usize, rest: f64| {
                to.get(&c).copied().unwrap_or(0.0) - gamma * deg[v] * rest / two_m
            };
            let stay = gain(cv, total[cv] - deg[v]);
            assert!(stay >= -1e-9, "node {v} would rather be alone");
            for &c in to.keys() {
                if c != cv {
                    assert!(gain(c, total[c]) <= stay + 1e-9, "node {v} would move");
                }
            }
        }
    }

    #[test]
    fn isolated_nodes_and_empty_graphs() {
        // Planted graph plus 5 isolated nodes and 2 joined by a 0 weight.
        let (g0, truth) = planted(4, 30, 0.5, 0.01, 6);
        let mut edges = Vec::new();
        for v in 0..g0.n {
            for (u, w) in g0.row(v) {
                if v < u {
                    edges.push((v as u32, u as u32, w));
                }
            }
        }
        let n = g0.n + 7;
        edges.push((n as u32 - 2, n as u32 - 1, 0.0));
        let g = from_edges(n, &edges);
        let m = run(&g, 1.0, 0);
        assert!(same_partition(&m[..g0.n], &truth));
        // The 7 lone nodes are singletons, after the 4 groups, by index.
        assert_eq!(&m[g0.n..], &[4, 5, 6, 7, 8, 9, 10]);
        // No edges, or only zero weights: every node alone, in order.
        assert_eq!(run(&from_edges(5, &[]), 1.0, 0), vec![0, 1, 2, 3, 4]);
        let zero = from_edges(3, &[(0, 1, 0.0), (1, 2, 0.0)]);
        assert_eq!(run(&zero, 1.0, 0), vec![0, 1, 2]);
        assert_eq!(run(&from_edges(0, &[]), 1.0, 0), Vec::<u32>::new());
        // Self-loops only: still singletons.
        let loops = from_edges(3, &[(0, 0, 1.0), (1, 1, 2.0), (2, 2, 1.0)]);
        assert_eq!(run(&loops, 1.0, 0), vec![0, 1, 2]);
    }

    #[test]
    fn fixed_iteration_counts() {
        let (g, truth) = planted(5, 40, 0.4, 0.01, 8);
        let p = |n_iterations| LeidenParams {
            resolution: 1.0,
            n_iterations,
            seed: 3,
        };
        let c = Control::default();
        let zero = leiden(&g, &p(0), &c).unwrap();
        assert_eq!(zero, (0..g.n as u32).collect::<Vec<_>>());
        for its in [1, 2, 5] {
            assert!(same_partition(&leiden(&g, &p(its), &c).unwrap(), &truth));
        }
        let progress = c.snapshot();
        assert!(progress.chunks_done > 0);
        assert_eq!(progress.chunks_done, progress.chunks_total);
    }

    #[test]
    fn rejects_bad_input_and_stops_when_cancelled() {
        let g = two_triangles();
        let c = Control::default();
        for r in [-1.0, f64::NAN, f64::INFINITY] {
            let p = LeidenParams {
                resolution: r,
                ..LeidenParams::default()
            };
            let e = leiden(&g, &p, &c).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{r}");
        }
        let mut bad = g.clone();
        bad.indices[0] = 6;
        let e = leiden(&bad, &LeidenParams::default(), &c).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(e.element.as_deref(), Some("connectivities"));
        let mut bad = g.clone();
        bad.weights[1] = -1.0;
        assert!(leiden(&bad, &LeidenParams::default(), &c).is_err());
        c.cancel();
        let e = leiden(&g, &LeidenParams::default(), &c).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cancelled);
    }

    /// Print how long `leiden` takes on `g` for each iteration setting.
    fn time_graph(what: &str, g: &Csr, iterations: &[i32]) {
        for &n_iterations in iterations {
            let t = Instant::now();
            let c = Control::default();
            let params = LeidenParams {
                n_iterations,
                ..LeidenParams::default()
            };
            let m = leiden(g, &params, &c).unwrap();
            let took = t.elapsed();
            eprintln!(
                "leiden, {what}: {} nodes, {} stored entries, n_iterations {n_iterations}: \
                 {took:.2?}, {} clusters, Q = {:.6}, {} levels{}",
                g.n,
                g.nnz(),
                n_clusters(&m),
                quality(g, &m, 1.0),
                c.snapshot().chunks_done,
                if cfg!(debug_assertions) {
                    " (debug build: time is not meaningful)"
                } else {
                    ""
                }
            );
        }
    }

    /// Prints the time for 100k-node kNN-like graphs (`cargo test
    /// --release -- --ignored timing_100k`; run alone, as other tests share
    /// the cores): the clustered graph is the typical case, the torus (no
    /// cluster structure, so many iterations of small gains) the worst one
    /// seen. A debug build uses 20k nodes. A benchmark, so not in `npm test`.
    #[test]
    #[ignore]
    fn timing_100k() {
        let n = if cfg!(debug_assertions) {
            20_000
        } else {
            100_000
        };
        time_graph("clustered", &clustered(n, 11), &[-1, 2]);
        time_graph("torus", &knn_like(n, 11), &[-1, 2]);
    }

    /// A real graph exported as raw little-endian arrays in the directory
    /// $LEIDEN_GRAPH: indptr.u64, indices.u32, weights.f32 (e.g. scanpy's
    /// obsp['connectivities']). Run with `--ignored`; skipped without it.
    #[test]
    #[ignore]
    fn timing_real_graph() {
        let Some(dir) = std::env::var_os("LEIDEN_GRAPH") else {
            eprintln!("LEIDEN_GRAPH is not set: skipped");
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let indptr: Vec<usize> = read("indptr.u64")
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
            .collect();
        let indices = read("indices.u32")
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let weights = read("weights.f32")
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let g = Csr {
            n: indptr.len() - 1,
            indptr,
            indices,
            weights,
        };
        for n_iterations in [2, -1] {
            let t = Instant::now();
            let params = LeidenParams {
                n_iterations,
                ..LeidenParams::default()
            };
            let c = Control::default();
            let m = leiden(&g, &params, &c).unwrap();
            eprintln!(
                "leiden, {}: n_iterations {n_iterations}: {:.2?}, {} clusters, Q = {:.6}, {} levels",
                dir.display(),
                t.elapsed(),
                n_clusters(&m),
                quality(&g, &m, 1.0),
                c.snapshot().chunks_done
            );
            let out: Vec<u8> = m.iter().flat_map(|c| c.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("leiden_{n_iterations}.u32")), out).unwrap();
        }
    }

    /// 1M nodes, ~30M stored entries: run once with `--ignored`. The
    /// torus runs two iterations only (until convergence it takes ~150).
    #[test]
    #[ignore]
    fn timing_1m() {
        time_graph("clustered", &clustered(1_000_000, 11), &[-1, 2]);
        time_graph("torus", &knn_like(1_000_000, 11), &[2]);
    }
}
