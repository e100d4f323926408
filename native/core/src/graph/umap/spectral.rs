//! Spectral initialisation (umap-learn's `spectral_layout`): the
//! eigenvectors of the normalised Laplacian L = I − D^{-1/2} A D^{-1/2}
//! with the smallest non-zero eigenvalues. umap-learn asks ARPACK for them
//! with a loose tolerance (1e-4); we run a block subspace iteration on
//! (I + D^{-1/2} A D^{-1/2}) / 2 — the same eigenvectors, largest first —
//! with the trivial vector D^{1/2}·1 projected out, and a Rayleigh–Ritz
//! step (faer) at the end. Disconnected graphs are laid out per component
//! and the components placed by the PCA of their centroids in the data,
//! as umap-learn's `multi_component_layout` does in spirit.

use crate::error::{Error, Result};
use crate::graph::csr::Csr;
use crate::graph::rng::Rng;
use crate::pass::Control;
use rayon::prelude::*;

const EXTRA: usize = 4;
// ARPACK in umap-learn stops at a loose tolerance too (1e-4): an initial
// layout needs the leading directions, not converged eigenvectors.
const MAX_ITERS: usize = 60;
const TOL: f64 = 1e-4;

/// n × dim initial coordinates (not yet rescaled).
pub fn spectral_layout(
    g: &Csr,
    data: &[f32],
    d: usize,
    dim: usize,
    seed: u64,
    control: &Control,
) -> Result<Vec<f64>> {
    let n = g.n;
    // x, y (f64) and the gathered f32 rows: ~28 bytes per cell and vector.
    crate::limits::check_work(
        &format!("UMAP's spectral initialisation of {n} cells in {dim} components"),
        (n as u64).saturating_mul((dim + EXTRA) as u64),
        28,
    )?;
    let comps = components(g);
    let n_comp = comps.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut rng = Rng::new(seed);
    if n_comp <= 1 {
        let all: Vec<usize> = (0..n).collect();
        return component_layout(g, &all, dim, &mut rng, control);
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_comp];
    for (i, &c) in comps.iter().enumerate() {
        members[c as usize].push(i);
    }
    let meta = meta_positions(&members, data, d, dim);
    let radius = 1.0 / (2.0 * (n_comp as f64).sqrt());
    let mut out = vec![0f64; n * dim];
    for (c, nodes) in members.iter().enumerate() {
        let local = if nodes.len() > 2 * (dim + 1) {
            component_layout(g, nodes, dim, &mut rng, control)?
        } else {
            (0..nodes.len() * dim)
                .map(|_| rng.uniform() * 2.0 - 1.0)
                .collect()
        };
        let scale = local.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
        for (t, &i) in nodes.iter().enumerate() {
            for k in 0..dim {
                out[i * dim + k] = meta[c * dim + k] + radius * local[t * dim + k] / scale;
            }
        }
    }
    Ok(out)
}

/// Component id of each node (union–find).
fn components(g: &Csr) -> Vec<u32> {
    let mut parent: Vec<usize> = (0..g.n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for i in 0..g.n {
        for (j, w) in g.row(i) {
            if w > 0.0 {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut id = vec![u32::MAX; g.n];
    let mut next = 0u32;
    (0..g.n)
        .map(|i| {
            let r = find(&mut parent, i);
            if id[r] == u32::MAX {
                id[r] = next;
                next += 1;
            }
            id[r]
        })
        .collect()
}

/// Component centres: PCA of the centroids, scaled to [-1, 1].
fn meta_positions(members: &[Vec<usize>], data: &[f32], d: usize, dim: usize) -> Vec<f64> {
    let c = members.len();
    let mut cent = vec![0f64; c * d];
    for (k, nodes) in members.iter().enumerate() {
        for &i in nodes {
            for t in 0..d {
                cent[k * d + t] += data[i * d + t] as f64 / nodes.len() as f64;
            }
        }
    }
    let mean: Vec<f64> = (0..d)
        .map(|t| (0..c).map(|k| cent[k * d + t]).sum::<f64>() / c as f64)
        .collect();
    let cov = faer::Mat::<f64>::from_fn(d, d, |a, b| {
        (0..c)
            .map(|k| (cent[k * d + a] - mean[a]) * (cent[k * d + b] - mean[b]))
            .sum::<f64>()
    });
    let mut out = vec![0f64; c * dim];
    if let Ok(eig) = cov.self_adjoint_eigen(faer::Side::Lower) {
        crate::simd_state::clear_all();
        let u = eig.U();
        for k in 0..c {
            for s in 0..dim.min(d) {
                let col = d - 1 - s; // ascending order: largest last
                out[k * dim + s] = (0..d)
                    .map(|t| (cent[k * d + t] - mean[t]) * u[(t, col)])
                    .sum();
            }
        }
    }
    let scale = out.iter().fold(0f64, |m, v| m.max(v.abs()));
    if scale > 0.0 {
        out.iter_mut().for_each(|v| *v /= scale);
    }
    out
}

/// Spectral coordinates of one connected component.
fn component_layout(
    g: &Csr,
    nodes: &[usize],
    dim: usize,
    rng: &mut Rng,
    control: &Control,
) -> Result<Vec<f64>> {
    let m = nodes.len();
    let mut local = vec![u32::MAX; g.n];
    for (t, &i) in nodes.iter().enumerate() {
        local[i] = t as u32;
    }
    let deg: Vec<f64> = nodes
        .iter()
        .map(|&i| g.row(i).map(|(_, w)| w as f64).sum::<f64>())
        .collect();
    let dinv: Vec<f64> = deg
        .iter()
        .map(|&x| if x > 0.0 { 1.0 / x.sqrt() } else { 0.0 })
        .collect();
    let mut trivial: Vec<f64> = deg.iter().map(|x| x.sqrt()).collect();
    normalize(&mut trivial);
    let b = (dim + EXTRA).min(m.saturating_sub(1)).max(1);
    // The block is m × b, row-major, so one sweep over the graph (parallel
    // over rows) applies the operator to every vector:
    // Y = (X + D^-1/2 A D^-1/2 X) / 2.
    //
    // The sweep gathers one row of D^-1/2 X per edge, in random order: at
    // 1M cells it waits on memory. So the gathered rows are first scaled
    // and stored as f32 (`xs`, 24 MB at 1M cells instead of 48 MB of x and
    // 8 MB of dinv, both read at random), the next row's neighbours are
    // prefetched, and a graph of one component skips the `local` lookup.
    // f32 rounding of an initial layout's power iteration is far below
    // what the layout changes.
    let whole = m == g.n;
    let mut xs = vec![0f32; m * b];
    let mut apply = |x: &[f64], y: &mut [f64]| {
        xs.par_chunks_mut(b)
            .zip(x.par_chunks(b))
            .zip(dinv.par_iter())
            .for_each(|((s, x), &dv)| s.iter_mut().zip(x).for_each(|(s, x)| *s = (dv * x) as f32));
        let xs = &xs;
        let slot = |j: usize| if whole { j as u32 } else { local[j] };
        y.par_chunks_mut(b).enumerate().for_each(|(t, yr)| {
            if let Some(&next) = nodes.get(t + 1) {
                for (j, _) in g.row(next) {
                    let u = slot(j);
                    if u != u32::MAX {
                        crate::prefetch::line(xs.as_ptr().wrapping_add(u as usize * b));
                    }
                }
            }
            yr.fill(0.0);
            for (j, w) in g.row(nodes[t]) {
                let u = slot(j);
                if u != u32::MAX {
                    let xr = &xs[u as usize * b..(u as usize + 1) * b];
                    let w = w as f64;
                    yr.iter_mut().zip(xr).for_each(|(y, &x)| *y += w * x as f64);
                }
            }
            let xt = &x[t * b..(t + 1) * b];
            yr.iter_mut()
                .zip(xt)
                .for_each(|(y, x)| *y = 0.5 * (x + dinv[t] * *y));
        });
    };
    let mut x: Vec<f64> = (0..m * b).map(|_| rng.normal()).collect();
    orthonormalize(&mut x, b, &trivial);
    let mut y = vec![0f64; m * b];
    let mut prev = vec![0f64; b];
    control.update(|p| {
        p.chunks_total = MAX_ITERS;
        p.chunks_done = 0;
    });
    for iter in 0..MAX_ITERS {
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
        control.update(|p| p.chunks_done = iter);
        apply(&x, &mut y);
        std::mem::swap(&mut x, &mut y);
        // Re-orthonormalising (sequential, b² dot products) every few steps
        // is enough: the operator's eigenvalues lie in [0, 1], so columns
        // neither blow up nor collapse onto one vector in four steps.
        if iter % 4 != 3 {
            continue;
        }
        orthonormalize(&mut x, b, &trivial);
        if iter % 20 == 19 {
            apply(&x, &mut y);
            let mut ritz: Vec<f64> = (0..b)
                .map(|c| (0..m).map(|t| x[t * b + c] * y[t * b + c]).sum())
                .collect();
            ritz.sort_by(|p, q| q.total_cmp(p));
            let done = ritz
                .iter()
                .zip(&prev)
                .take(dim)
                .all(|(p, q)| (p - q).abs() < TOL);
            prev = ritz;
            if done {
                break;
            }
        }
    }
    // Rayleigh–Ritz: rotate the block to the top `dim` eigenvectors.
    apply(&x, &mut y);
    let small = faer::Mat::<f64>::from_fn(b, b, |r, c| {
        (0..m).map(|t| x[t * b + r] * y[t * b + c]).sum()
    });
    let mut out = vec![0f64; m * dim];
    if let Ok(eig) = small.self_adjoint_eigen(faer::Side::Lower) {
        crate::simd_state::clear_all();
        let u = eig.U();
        for s in 0..dim.min(b) {
            let col = b - 1 - s;
            for t in 0..m {
                out[t * dim + s] = (0..b).map(|r| x[t * b + r] * u[(r, col)]).sum();
            }
        }
    }
    Ok(out)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalize(v: &mut [f64]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Orthonormalise the b columns of the row-major m × b block `x` against
/// the trivial vector and each other (Gram–Schmidt, twice for accuracy).
fn orthonormalize(x: &mut [f64], b: usize, trivial: &[f64]) {
    let m = trivial.len();
    for c in 0..b {
        for _ in 0..2 {
            let p: f64 = (0..m).map(|t| x[t * b + c] * trivial[t]).sum();
            (0..m).for_each(|t| x[t * b + c] -= p * trivial[t]);
            for o in 0..c {
                let p: f64 = (0..m).map(|t| x[t * b + c] * x[t * b + o]).sum();
                (0..m).for_each(|t| x[t * b + c] -= p * x[t * b + o]);
            }
        }
        let nrm: f64 = (0..m)
            .map(|t| x[t * b + c] * x[t * b + c])
            .sum::<f64>()
            .sqrt();
        if nrm > 0.0 {
            (0..m).for_each(|t| x[t * b + c] /= nrm);
        }
    }
}
