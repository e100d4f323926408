//! UMAP's layout optimisation (umap-learn's `optimize_layout_euclidean`):
//! stochastic gradient descent over the graph's edges, each sampled in
//! proportion to its weight, with `negative_sample_rate` repulsive samples
//! per attractive one and a learning rate decaying linearly to 0.
//!
//! Parallel mode is Hogwild-style like umap-learn's `parallel=True`:
//! threads update the shared embedding without locks (relaxed atomics, so
//! no undefined behaviour), which makes results depend on timing. The
//! sequential mode is bit-for-bit reproducible for a seed.

use crate::error::{Error, Result};
use crate::graph::csr::Csr;
use crate::graph::rng::Rng;
use crate::pass::Control;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone)]
pub struct LayoutParams {
    pub n_epochs: usize,
    pub a: f64,
    pub b: f64,
    pub gamma: f64,
    pub initial_alpha: f64,
    pub negative_sample_rate: f64,
    pub seed: u64,
    pub parallel: bool,
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

/// Most embedding dimensions the layout supports (a stack buffer).
pub const MAX_DIM: usize = 16;

struct Shared(Vec<AtomicU32>);

impl Shared {
    #[inline]
    fn get(&self, i: usize) -> f32 {
        f32::from_bits(self.0[i].load(Ordering::Relaxed))
    }
    #[inline]
    fn set(&self, i: usize, v: f32) {
        self.0[i].store(v.to_bits(), Ordering::Relaxed)
    }
}

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
    let emb = Shared(
        embedding
            .iter()
            .map(|v| AtomicU32::new(v.to_bits()))
            .collect(),
    );
    let base = Rng::new(p.seed);
    // Fixed chunking (independent of the thread count) so that each chunk's
    // random stream is the same in both modes.
    const CHUNK: usize = 1 << 14;
    control.update(|s| {
        s.chunks_total = p.n_epochs;
        s.majors_total = n;
    });
    // f32 arithmetic as in umap-learn (its embedding is float32). The layout
    // is dominated by x^b (one per sample, 6 samples per edge): a bit-level
    // approximation (relative error < 5e-4, see fast_pow) is 3× cheaper
    // than powf and far below the noise of stochastic gradient descent.
    let (a, b, gamma) = (p.a as f32, p.b as f32, p.gamma as f32);
    let pow_b = |x: f32| fast_pow(x, b);
    for epoch in 0..p.n_epochs {
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
        let alpha = (p.initial_alpha * (1.0 - epoch as f64 / p.n_epochs as f64)) as f32;
        let nf = epoch as f32;
        let work = |(c, (ns, nn)): (usize, (&mut [f32], &mut [f32]))| {
            let mut rng = base.fork((epoch * m.div_ceil(CHUNK) + c) as u64);
            let off = c * CHUNK;
            // The moving point stays in registers while its edge is processed
            // (only this edge's samples change it), and is stored once.
            let mut cur = [0f32; MAX_DIM];
            for t in 0..ns.len() {
                if ns[t] > nf {
                    continue;
                }
                let i = off + t;
                let (j, k) = (e.head[i] as usize, e.tail[i] as usize);
                for (d, c) in cur[..dim].iter_mut().enumerate() {
                    *c = emb.get(j * dim + d);
                }
                let d2 = rdist(&cur[..dim], &emb, k);
                let coeff = if d2 > 0.0 {
                    let pb = pow_b(d2);
                    -2.0 * a * b * (pb / d2) / (a * pb + 1.0)
                } else {
                    0.0
                };
                for (d, c) in cur[..dim].iter_mut().enumerate() {
                    let ck = emb.get(k * dim + d);
                    let grad = clip(coeff * (*c - ck));
                    *c += grad * alpha;
                    emb.set(k * dim + d, ck - grad * alpha);
                }
                ns[t] += e.epochs_per_sample[i];
                let per_neg = e.epochs_per_sample[i] / rate;
                let n_neg = ((nf - nn[t]) / per_neg).max(0.0) as usize;
                // Repulsions are all taken at the position reached after the
                // attraction and applied together: umap-learn applies them one
                // after another, which makes each wait for the previous
                // (a ~100-cycle dependency chain of divisions per sample).
                // The difference is second order in the step size.
                let mut push = [0f32; MAX_DIM];
                for _ in 0..n_neg {
                    let k = rng.below(n);
                    if k == j {
                        continue;
                    }
                    let d2 = rdist(&cur[..dim], &emb, k);
                    if d2 > 0.0 {
                        let coeff = 2.0 * gamma * b / ((0.001 + d2) * (a * pow_b(d2) + 1.0));
                        for (d, (p, c)) in push.iter_mut().zip(&cur[..dim]).enumerate() {
                            *p += clip(coeff * (c - emb.get(k * dim + d)));
                        }
                    }
                }
                for (d, (c, p)) in cur[..dim].iter_mut().zip(&push).enumerate() {
                    *c += p * alpha;
                    emb.set(j * dim + d, *c);
                }
                nn[t] += n_neg as f32 * per_neg;
            }
        };
        let chunks = next_sample
            .chunks_mut(CHUNK)
            .zip(next_neg.chunks_mut(CHUNK))
            .enumerate();
        if p.parallel {
            chunks.collect::<Vec<_>>().into_par_iter().for_each(work);
        } else {
            chunks.for_each(work);
        }
        control.update(|s| {
            s.chunks_done = epoch + 1;
            s.majors_done = n;
        });
    }
    for (v, x) in embedding.iter_mut().zip(&emb.0) {
        *v = f32::from_bits(x.load(Ordering::Relaxed));
    }
    Ok(())
}

/// Squared distance between `cur` and point `k` of the embedding.
#[inline]
fn rdist(cur: &[f32], emb: &Shared, k: usize) -> f32 {
    let dim = cur.len();
    let mut s = 0f32;
    for (d, &c) in cur.iter().enumerate() {
        let t = c - emb.get(k * dim + d);
        s += t * t;
    }
    s
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

#[inline]
fn fast_pow2(p: f32) -> f32 {
    let offset = if p < 0.0 { 1.0 } else { 0.0 };
    let clipp = p.max(-126.0);
    let w = clipp as i32;
    let z = clipp - w as f32 + offset;
    let v = (1u32 << 23) as f32
        * (clipp + 121.274_06 + 27.728_023 / (4.842_525_7 - z) - 1.490_129_1 * z);
    f32::from_bits(v as u32)
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
}
