//! UMAP's layout optimisation (umap-learn's `optimize_layout_euclidean`):
//! stochastic gradient descent over the graph's edges, each sampled in
//! proportion to its weight, with `negative_sample_rate` repulsive samples
//! per attractive one and a learning rate decaying linearly to 0.
//!
//! It runs on every core and gives the same bits for a seed on any number
//! of threads. (umap-learn is reproducible only on one thread; its
//! `parallel=True` lets threads update the embedding without locks.) The
//! edges are cut into PARTS ranges by their moving end: edges are stored in
//! both directions, so every point moves along its own edges, and each part
//! owns the points it moves. In an epoch an edge reads its moving end as it
//! is (the edges of a point follow one another, each moving it) and every
//! other point as it was at the start of the epoch (a snapshot), and moves
//! only its moving end. So a part's work depends on nothing another part
//! does during the epoch. As an edge no longer moves its other end, that
//! end's own copy of the edge pulls it, twice: in umap-learn each of the
//! two copies pulls both ends once.

use crate::error::{Error, Result};
use crate::graph::csr::Csr;
use crate::graph::rng::Rng;
use crate::pass::Control;
use rayon::prelude::*;

#[derive(Debug, Clone)]
pub struct LayoutParams {
    pub n_epochs: usize,
    pub a: f64,
    pub b: f64,
    pub gamma: f64,
    pub initial_alpha: f64,
    pub negative_sample_rate: f64,
    pub seed: u64,
}

/// Edges that take part, with their sampling schedules.
struct Edges {
    head: Vec<u32>,
    tail: Vec<u32>,
    /// f32 like the other per-edge arrays: at 1M cells there are ~24M
    /// edges, and each f64 array would cost 190 MB (values ≤ n_epochs).
    epochs_per_sample: Vec<f32>,
}

/// umap drops edges lighter than max / n_epochs (they would never be
/// sampled) and samples the rest every max/w epochs.
fn edges(g: &Csr, n_epochs: usize) -> Edges {
    let max = g.weights.iter().copied().fold(0f32, f32::max);
    let cut = max / n_epochs as f32;
    let mut e = Edges {
        head: Vec::new(),
        tail: Vec::new(),
        epochs_per_sample: Vec::new(),
    };
    for i in 0..g.n {
        for (j, w) in g.row(i) {
            if w >= cut && w > 0.0 {
                e.head.push(i as u32);
                e.tail.push(j as u32);
                let n_samples = n_epochs as f64 * (w as f64 / max as f64);
                e.epochs_per_sample
                    .push((n_epochs as f64 / n_samples) as f32);
            }
        }
    }
    e
}

/// Point ranges of the reproducible mode (fixed, so that the result does not
/// depend on the number of threads; enough for load balance on a few
/// cores).
const PARTS: usize = 16;

/// Negative samples drawn (and their points prefetched) at a time.
const NEG_BATCH: usize = 8;

/// Most embedding dimensions the layout supports (a stack buffer).
pub const MAX_DIM: usize = 16;

#[inline]
fn clip(v: f32) -> f32 {
    v.clamp(-4.0, 4.0)
}

/// Optimise `embedding` (n × dim, row-major) in place.
pub fn optimize(
    g: &Csr,
    embedding: &mut [f32],
    dim: usize,
    p: &LayoutParams,
    control: &Control,
) -> Result<()> {
    let n = g.n;
    if embedding.len() != n * dim {
        return Err(Error::invalid("initial embedding has the wrong shape"));
    }
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::invalid(format!(
            "the layout supports 1 to {MAX_DIM} components, not {dim}"
        )));
    }
    let e = edges(g, p.n_epochs);
    let m = e.head.len();
    // Every point index the layout uses is below n (the edges' ends,
    // checked here, and draws of rng.below(n)): the unchecked reads of the
    // n × dim snapshot in Chunk::point rely on it.
    if e.head.iter().chain(&e.tail).any(|&x| x as usize >= n) {
        return Err(Error::invalid("graph edge to a point beyond the embedding"));
    }
    if std::env::var_os("AOOM_PROFILE").is_some() {
        let per_epoch: f64 = e.epochs_per_sample.iter().map(|&x| 1.0 / x as f64).sum();
        eprintln!(
            "umap layout: {m} edges, {per_epoch:.0} positive samples per epoch (+{} negative)",
            per_epoch * p.negative_sample_rate
        );
    }
    let rate = p.negative_sample_rate as f32;
    let mut next_sample = e.epochs_per_sample.clone();
    let mut next_neg: Vec<f32> = e.epochs_per_sample.iter().map(|&x| x / rate).collect();
    let base = Rng::new(p.seed);
    control.update(|s| s.chunks_total = p.n_epochs);
    // f32 arithmetic as in umap-learn (its embedding is float32). The layout
    // is dominated by x^b (one per sample, 6 samples per edge): a bit-level
    // approximation (relative error < 5e-4, see fast_pow) is 3× cheaper
    // than powf and far below the noise of stochastic gradient descent.
    let (a, b, gamma) = (p.a as f32, p.b as f32, p.gamma as f32);
    // The negative samples' batch is evaluated in vector registers (see
    // repulsions): eight lanes at once with AVX2, where the baseline
    // x86-64 build has four. The same operations either way: the same bits.
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    // Part q moves the points lo[q]..lo[q + 1] along the edges
    // first[q]..first[q + 1] (`edges` lists them by moving end).
    let lo: Vec<usize> = (0..=PARTS).map(|q| q * n / PARTS).collect();
    let first: Vec<usize> = lo
        .iter()
        .map(|&l| e.head.partition_point(|&h| (h as usize) < l))
        .collect();
    let mut snapshot = vec![0f32; n * dim];
    for epoch in 0..p.n_epochs {
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
        snapshot.copy_from_slice(embedding);
        let chunk = Chunk {
            e: &e,
            snapshot: &snapshot,
            n,
            a,
            b,
            gamma,
            alpha: (p.initial_alpha * (1.0 - epoch as f64 / p.n_epochs as f64)) as f32,
            rate,
            epoch: epoch as f32,
            control,
        };
        // Each part's own points and edge schedules.
        let mut parts = Vec::with_capacity(PARTS);
        let (mut pts, mut ns, mut nn) =
            (&mut embedding[..], &mut next_sample[..], &mut next_neg[..]);
        for q in 0..PARTS {
            let (own, rest) = std::mem::take(&mut pts).split_at_mut((lo[q + 1] - lo[q]) * dim);
            let len = first[q + 1] - first[q];
            let (s, rest_s) = std::mem::take(&mut ns).split_at_mut(len);
            let (t, rest_n) = std::mem::take(&mut nn).split_at_mut(len);
            (pts, ns, nn) = (rest, rest_s, rest_n);
            parts.push((
                q,
                Part {
                    own,
                    lo: lo[q],
                    off: first[q],
                },
                s,
                t,
            ));
        }
        parts.into_par_iter().for_each(|(q, mut part, ns, nn)| {
            let mut rng = base.fork((epoch * PARTS + q) as u64);
            if avx2 {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX2 (checked above).
                unsafe {
                    chunk.run_avx2(dim, &mut part, ns, nn, &mut rng)
                }
            } else {
                chunk.run_any(dim, &mut part, ns, nn, &mut rng)
            }
        });
        // A cancel during this epoch left it half done: not counted, not used.
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
        control.update(|s| s.chunks_done = epoch + 1);
    }
    Ok(())
}

/// The points one part moves: `own` holds points lo.. (n_own × dim), and
/// the part's edges start at edge `off`.
struct Part<'a> {
    own: &'a mut [f32],
    lo: usize,
    off: usize,
}

/// One epoch's constants for processing a part's edges.
struct Chunk<'a> {
    e: &'a Edges,
    /// The embedding at the start of the epoch: every point but the moving
    /// one is read from here.
    snapshot: &'a [f32],
    n: usize,
    a: f32,
    b: f32,
    gamma: f32,
    alpha: f32,
    rate: f32,
    /// The epoch number, as a float (compared with the schedules).
    epoch: f32,
    /// Checked between edges: with many negative samples one epoch can
    /// take minutes, and the stop button must not wait for it.
    control: &'a Control,
}

impl Chunk<'_> {
    /// Coordinate `d` of point `x` at the start of the epoch.
    ///
    /// # Safety
    /// x < n and d < dim.
    #[inline(always)]
    unsafe fn point(&self, x: usize, dim: usize, d: usize) -> f32 {
        *self.snapshot.get_unchecked(x * dim + d)
    }

    /// `run` with the dimension a constant for the common 2-D and 3-D
    /// layouts: the compiler then keeps the moving point and its repulsion
    /// in registers and unrolls the per-dimension loops (the 2-D layout ran
    /// 1.1–1.3× slower with `dim` a run-time value). Same operations in the
    /// same order: the same bits either way.
    #[inline(always)]
    fn run_any(&self, dim: usize, part: &mut Part, ns: &mut [f32], nn: &mut [f32], rng: &mut Rng) {
        match dim {
            2 => self.run(2, part, ns, nn, rng),
            3 => self.run(3, part, ns, nn, rng),
            d => self.run(d, part, ns, nn, rng),
        }
    }

    /// `run_any` compiled for AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(
        &self,
        dim: usize,
        part: &mut Part,
        ns: &mut [f32],
        nn: &mut [f32],
        rng: &mut Rng,
    ) {
        self.run_any(dim, part, ns, nn, rng)
    }

    /// Process a part's edges (their schedules `ns`, `nn`) in a
    /// `dim`-dimensional embedding. Always inlined, so that each call site
    /// with a constant `dim` gets its own unrolled copy.
    #[inline(always)]
    fn run(&self, dim: usize, part: &mut Part, ns: &mut [f32], nn: &mut [f32], rng: &mut Rng) {
        // An edge costs ~rate samples: check about every thousand samples.
        let every = (1024.0 / self.rate.max(1.0)).clamp(1.0, 256.0) as usize;
        for t in 0..ns.len() {
            // A cancelled epoch is left half done: the caller discards the layout.
            if t % every == 0 && self.control.is_cancelled() {
                return;
            }
            self.edge(dim, part, t, ns, nn, rng);
        }
    }

    /// One edge's attraction and its negative samples, if it is due.
    #[inline(always)]
    fn edge(
        &self,
        dim: usize,
        part: &mut Part,
        t: usize,
        ns: &mut [f32],
        nn: &mut [f32],
        rng: &mut Rng,
    ) {
        let (e, n) = (self.e, self.n);
        let (a, b, gamma, alpha, rate, nf) = (
            self.a, self.b, self.gamma, self.alpha, self.rate, self.epoch,
        );
        let pow_b = |x: f32| fast_pow(x, b);
        if ns[t] > nf {
            return;
        }
        // The moving point stays in registers while its edge is processed
        // (only this edge's samples change it), and is stored once.
        let mut cur = [0f32; MAX_DIM];
        let i = part.off + t;
        let (j, k) = (e.head[i] as usize, e.tail[i] as usize);
        // The moving point's row in the part's own points: its edges are
        // the part's, so j - lo < the part's point count.
        let row = &mut part.own[(j - part.lo) * dim..(j - part.lo + 1) * dim];
        cur[..dim].copy_from_slice(row);
        // SAFETY (every snapshot read in this function): k and the samples
        // are < n (checked in optimize, or drawn below n) and d < dim, so
        // the index < n · dim, the snapshot's length.
        let mut d2 = 0f32;
        for (d, &c) in cur[..dim].iter().enumerate() {
            let t = c - unsafe { self.point(k, dim, d) };
            d2 += t * t;
        }
        let coeff = if d2 > 0.0 {
            let pb = pow_b(d2);
            -2.0 * a * b * (pb / d2) / (a * pb + 1.0)
        } else {
            0.0
        };
        let mut pull = [0f32; MAX_DIM];
        for (d, (g, c)) in pull.iter_mut().zip(&cur[..dim]).enumerate() {
            *g = clip(coeff * (c - unsafe { self.point(k, dim, d) }));
        }
        ns[t] += e.epochs_per_sample[i];
        let per_neg = e.epochs_per_sample[i] / rate;
        let n_neg = ((nf - nn[t]) / per_neg).max(0.0) as usize;
        // The attraction and the repulsions are all taken at the point's
        // position before this edge and applied together: umap-learn applies
        // each after the previous one, which chains them (a ~130-cycle chain
        // of divisions per sample, and the next edge of the same head waits
        // for the whole chain). Taken at one position they overlap in the
        // CPU (1.2× faster than repulsions taken after the attraction, which
        // was 1.8× faster than one after another). The difference is second
        // order in the step size; trustworthiness on the oracle data is
        // unchanged (0.9434 → 0.9436 and 0.8374 → 0.8397; umap-learn 0.9431
        // and 0.8435).
        let mut push = [0f32; MAX_DIM];
        // The samples' points are drawn a batch ahead and their cache lines
        // requested at once: a sample's ~100 instructions fill the reorder
        // window, so otherwise each point's load (an L2 or L3 miss: the edge
        // arrays stream through the caches) waited for the samples before
        // it. The same draws in the same order: the same layout.
        let mut ks = [0usize; NEG_BATCH];
        // The batch's points, dimension by dimension (lane l = sample l).
        let mut pk = [[0f32; NEG_BATCH]; MAX_DIM];
        let mut left = n_neg;
        while left > 0 {
            let batch = left.min(NEG_BATCH);
            for k in &mut ks[..batch] {
                *k = rng.below(n);
                crate::prefetch::line(self.snapshot.as_ptr().wrapping_add(*k * dim));
            }
            for (l, &k) in ks[..batch].iter().enumerate() {
                for (d, lanes) in pk[..dim].iter_mut().enumerate() {
                    lanes[l] = unsafe { self.point(k, dim, d) };
                }
            }
            // Squared distances, summed over dimensions in order (as
            // the attraction does).
            let mut d2 = [0f32; NEG_BATCH];
            for (lanes, &c) in pk[..dim].iter().zip(&cur[..dim]) {
                for (s, &x) in d2.iter_mut().zip(lanes) {
                    let t = c - x;
                    *s += t * t;
                }
            }
            let mut valid = [false; NEG_BATCH];
            for (l, v) in valid[..batch].iter_mut().enumerate() {
                *v = ks[l] != j && d2[l] > 0.0;
            }
            let coeff = repulsions(&d2, &valid, a, b, gamma);
            // Each dimension takes the samples' pushes in draw order; an
            // invalid lane adds −0.0, which leaves every float unchanged.
            for (d, lanes) in pk[..dim].iter().enumerate() {
                let mut g = [-0f32; NEG_BATCH];
                for l in 0..NEG_BATCH {
                    let v = clip(coeff[l] * (cur[d] - lanes[l]));
                    g[l] = if valid[l] { v } else { -0.0 };
                }
                for &v in &g[..batch] {
                    push[d] += v;
                }
            }
            left -= batch;
        }
        for (((c, g), p), out) in cur[..dim].iter_mut().zip(&pull).zip(&push).zip(row) {
            // Pulled twice: once for the edge's other copy (module doc).
            *c += g * alpha;
            *c += g * alpha;
            *c += p * alpha;
            *out = *c;
        }
        nn[t] += n_neg as f32 * per_neg;
    }
}

/// The repulsion coefficients 2γb / ((0.001 + d²)(a·d^2b + 1)) of a batch
/// of negative samples (`d2` holds their squared distances d²).
///
/// Written lane by lane over fixed-size arrays, so the compiler evaluates
/// the batch in vector registers: one sample alone is a chain of three
/// divisions (two in x^b), and the samples of an edge were the layout's
/// cost. Each lane performs the same operations as the scalar formula, so
/// the bits are the same. Invalid lanes compute on d² = 1 (their result is
/// ignored), so that no lane feeds garbage to fast_pow's unchecked casts.
#[inline(always)]
fn repulsions(
    d2: &[f32; NEG_BATCH],
    valid: &[bool; NEG_BATCH],
    a: f32,
    b: f32,
    gamma: f32,
) -> [f32; NEG_BATCH] {
    let mut x = [1f32; NEG_BATCH];
    for l in 0..NEG_BATCH {
        if valid[l] {
            x[l] = d2[l];
        }
    }
    let mut out = [0f32; NEG_BATCH];
    for l in 0..NEG_BATCH {
        out[l] = 2.0 * gamma * b / ((0.001 + x[l]) * (a * fast_pow_lane(x[l], b) + 1.0));
    }
    out
}

/// fast_pow for x > 0 (finite): the same operations, with the bits → float
/// conversion signed (equal for x > 0, whose sign bit is clear), which
/// vector units convert directly.
#[inline(always)]
fn fast_pow_lane(x: f32, p: f32) -> f32 {
    let bits = x.to_bits();
    let mx = f32::from_bits((bits & 0x007F_FFFF) | 0x3f00_0000);
    let y = (bits as i32) as f32 * 1.192_092_9e-7;
    let log2 = y - 124.225_52 - 1.498_030_3 * mx - 1.725_88 / (0.352_088_7 + mx);
    fast_pow2(p * log2)
}

/// x^p for x > 0 as 2^(p·log2 x), both factors from the float's bits with a
/// rational correction (P. Mineiro's "fastapprox"); relative error < 5e-4
/// for the exponents the layout sees (tested below).
#[inline]
pub fn fast_pow(x: f32, p: f32) -> f32 {
    fast_pow2(p * fast_log2(x))
}

#[inline]
fn fast_log2(x: f32) -> f32 {
    let bits = x.to_bits();
    let mx = f32::from_bits((bits & 0x007F_FFFF) | 0x3f00_0000);
    let y = bits as f32 * 1.192_092_9e-7;
    y - 124.225_52 - 1.498_030_3 * mx - 1.725_88 / (0.352_088_7 + mx)
}

#[inline(always)]
fn fast_pow2(p: f32) -> f32 {
    let offset = if p < 0.0 { 1.0 } else { 0.0 };
    // Clamped to the exponents of f32. Not `clamp`, which keeps NaN: here
    // NaN becomes -126, as before. Above 128 the result used to be garbage
    // (the bits overflowed); now it is that of 128, +inf.
    #[allow(clippy::manual_clamp)]
    let clipp = p.max(-126.0).min(128.0);
    // SAFETY: clipp is in [-126, 128], so it fits an i32.
    let w = unsafe { clipp.to_int_unchecked::<i32>() };
    let z = clipp - w as f32 + offset;
    let v = (1u32 << 23) as f32
        * (clipp + 121.274_06 + 27.728_023 / (4.842_525_7 - z) - 1.490_129_1 * z);
    // SAFETY: for clipp in [-126, 128] and z in [0, 1], v is in
    // (2^23 / 2, 255 · 2^23]: positive and below 2^31. The unchecked casts
    // spare the saturation tests of `as` (a dozen instructions per sample).
    f32::from_bits(unsafe { v.to_int_unchecked::<i32>() } as u32)
}

#[cfg(test)]
mod tests {
    use super::fast_pow;

    #[test]
    fn fast_pow_is_accurate_where_the_layout_uses_it() {
        let mut worst = 0f64;
        for &b in &[0.79f32, 0.895, 1.334, 1.93] {
            let mut x = 1e-6f32;
            while x < 1e4 {
                let exact = (x as f64).powf(b as f64);
                let rel = ((fast_pow(x, b) as f64 - exact) / exact).abs();
                worst = worst.max(rel);
                x *= 1.013;
            }
        }
        assert!(worst < 5e-4, "worst relative error {worst}");
    }

    /// fast_pow2 with the saturating casts it had before the unchecked
    /// ones.
    fn fast_pow2_saturating(p: f32) -> f32 {
        let offset = if p < 0.0 { 1.0 } else { 0.0 };
        let clipp = p.max(-126.0);
        let w = clipp as i32;
        let z = clipp - w as f32 + offset;
        let v = (1u32 << 23) as f32
            * (clipp + 121.274_06 + 27.728_023 / (4.842_525_7 - z) - 1.490_129_1 * z);
        f32::from_bits(v as u32)
    }

    #[test]
    fn unchecked_casts_give_the_same_bits_on_the_whole_range() {
        // Every f32 exponent in [-126, 128] at a fine step, both ends and
        // the integers (where z is 0 or 1), plus NaN and -inf.
        let mut ps: Vec<f32> = (-126_000..=128_000).map(|i| i as f32 / 1000.0).collect();
        ps.extend((-126..=128).map(|i| i as f32));
        ps.extend([f32::NAN, f32::NEG_INFINITY, -1e30, -126.000_01, 127.999_99]);
        for p in ps {
            let (got, want) = (super::fast_pow2(p), fast_pow2_saturating(p));
            assert_eq!(got.to_bits(), want.to_bits(), "p = {p}");
            assert!(got > 0.0, "p = {p}: {got}");
        }
        // Beyond 128 the old bits overflowed into garbage; now the result
        // is that of 128, +inf.
        for p in [128.5f32, 1e6, f32::INFINITY] {
            assert_eq!(super::fast_pow2(p), f32::INFINITY, "p = {p}");
        }
    }

    #[test]
    fn batched_repulsions_give_the_scalar_bits() {
        use super::{fast_pow, repulsions, NEG_BATCH};
        let (a, b, gamma) = (1.577f32, 0.895f32, 1.0f32);
        let mut x = 1e-7f32;
        while x < 1e5 {
            // Lanes of varied distances, some of them invalid.
            let mut d2 = [0f32; NEG_BATCH];
            let mut valid = [false; NEG_BATCH];
            for l in 0..NEG_BATCH {
                d2[l] = x * (1.0 + l as f32 * 0.37);
                valid[l] = l % 3 != 2;
            }
            d2[2] = f32::NAN;
            let mut results = vec![repulsions(&d2, &valid, a, b, gamma)];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                fn avx2(d2: &[f32; 8], v: &[bool; 8], a: f32, b: f32, g: f32) -> [f32; 8] {
                    repulsions(d2, v, a, b, g)
                }
                // SAFETY: the CPU has AVX2.
                results.push(unsafe { avx2(&d2, &valid, a, b, gamma) });
            }
            for got in results {
                for l in (0..NEG_BATCH).filter(|&l| valid[l]) {
                    let want = 2.0 * gamma * b / ((0.001 + d2[l]) * (a * fast_pow(d2[l], b) + 1.0));
                    assert_eq!(got[l].to_bits(), want.to_bits(), "d2 = {}", d2[l]);
                }
            }
            x *= 1.07;
        }
    }

    /// A ring of `n` points, each joined to its 4 nearest on the ring
    /// (both directions stored), with a deterministic start.
    fn ring(n: usize) -> (crate::graph::csr::Csr, Vec<f32>) {
        let mut g = crate::graph::csr::Csr {
            n,
            indptr: vec![0],
            ..Default::default()
        };
        for i in 0..n {
            for o in [n - 2, n - 1, 1, 2] {
                g.indices.push(((i + o) % n) as u32);
                g.weights.push(if o == 1 || o == n - 1 { 1.0 } else { 0.5 });
            }
            g.indptr.push(g.indices.len());
        }
        let start = (0..2 * n)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
            .collect();
        (g, start)
    }

    fn params() -> super::LayoutParams {
        super::LayoutParams {
            n_epochs: 50,
            a: 1.58,
            b: 0.9,
            gamma: 1.0,
            initial_alpha: 1.0,
            negative_sample_rate: 5.0,
            seed: 7,
        }
    }

    #[test]
    fn same_bits_for_a_seed_on_any_number_of_threads() {
        use crate::pass::Control;
        let (g, start) = ring(1000);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut emb = start.clone();
            pool.install(|| super::optimize(&g, &mut emb, 2, &params(), &Control::default()))
                .unwrap();
            emb
        };
        let one = run(1);
        assert_ne!(one, start, "the layout moved the points");
        assert!(one.iter().all(|v| v.is_finite()));
        for threads in [2, 3, 5] {
            let got = run(threads);
            assert!(
                got.iter()
                    .zip(&one)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn ring_neighbours_end_close_together() {
        use crate::pass::Control;
        // On a ring, neighbours on the ring must end closer to each other
        // than random pairs, from a scrambled start.
        let n = 1000;
        let (g, start) = ring(n);
        let mut emb = start.clone();
        super::optimize(&g, &mut emb, 2, &params(), &Control::default()).unwrap();
        let dist = |e: &[f32], i: usize, j: usize| {
            ((e[2 * i] - e[2 * j]).powi(2) + (e[2 * i + 1] - e[2 * j + 1]).powi(2)).sqrt()
        };
        let mean = |e: &[f32], step: usize| {
            (0..n).map(|i| dist(e, i, (i + step) % n)).sum::<f32>() / n as f32
        };
        let (near, far) = (mean(&emb, 1), mean(&emb, n / 3));
        assert!(
            near * 5.0 < far,
            "ring neighbours {near}, a third apart {far}"
        );
        let (near0, far0) = (mean(&start, 1), mean(&start, n / 3));
        assert!(
            near0 * 1.5 > far0,
            "the start is scrambled: {near0} vs {far0}"
        );
    }

    #[test]
    fn edges_beyond_the_embedding_are_an_error() {
        use crate::graph::csr::Csr;
        use crate::pass::Control;
        // Three points; the edge 0 → 5 points outside the embedding.
        let g = Csr {
            n: 3,
            indptr: vec![0, 2, 3, 4],
            indices: vec![1, 5, 0, 0],
            weights: vec![1.0; 4],
        };
        let p = super::LayoutParams {
            n_epochs: 5,
            a: 1.58,
            b: 0.9,
            gamma: 1.0,
            initial_alpha: 1.0,
            negative_sample_rate: 5.0,
            seed: 0,
        };
        let mut emb = vec![0.5f32; 6];
        let err = super::optimize(&g, &mut emb, 2, &p, &Control::default()).unwrap_err();
        assert!(err.to_string().contains("beyond the embedding"), "{err}");
        assert_eq!(emb, vec![0.5f32; 6], "the embedding is left as it was");
    }
}
