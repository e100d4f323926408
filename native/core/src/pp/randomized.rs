//! Randomized PCA (Halko et al.) for many genes, where a p×p Gram matrix
//! would not fit: subspace iteration on the covariance operator
//! C = Zcᵀ·Zc (Zc: the scaled, clipped, centred selected genes), applied in
//! ONE pass per iteration as Σ_rows s_rowᵀ·(s_row·Ω) − s·(sᵀΩ)/n with the
//! same S decomposition as the exact path (gram.rs), then a Rayleigh–Ritz
//! step and one projection pass. Passes: 1 + n_iter + 1.
#![allow(clippy::needless_range_loop)] // index loops over k-vectors read clearest here

use super::plan::Scaling;
use super::runner::{RowAccumulator, RowPartial, RowValues};
use crate::error::{Error, Result};
use std::any::Any;
use std::sync::Arc;

/// Y = C·Ω for a p×k block Ω (row-major by gene), plus column sums of S
/// and of S² (for centring and the total variance).
pub struct CovApply {
    p: usize,
    k: usize,
    omega: Arc<Vec<f64>>,
    scaling: Option<Arc<Scaling>>,
    z0: Arc<Vec<f64>>,
    pub y: Vec<f64>,
    pub colsum: Vec<f64>,
    pub colsq: Vec<f64>,
    pub n: f64,
}

impl CovApply {
    pub fn new(p: usize, k: usize, omega: Vec<f64>, scaling: Option<Scaling>) -> Self {
        let z0 = (0..p)
            .map(|j| scaling.as_ref().map_or(0.0, |s| s.apply(j, 0.0)))
            .collect();
        CovApply {
            p,
            k,
            omega: Arc::new(omega),
            scaling: scaling.map(Arc::new),
            z0: Arc::new(z0),
            y: vec![],
            colsum: vec![],
            colsq: vec![],
            n: 0.0,
        }
    }

    /// C·Ω (divided by n − 1: the covariance) from the accumulated parts.
    pub fn covariance_times_omega(&self) -> Vec<f64> {
        let (p, k, n) = (self.p, self.k, self.n);
        let mut sto = vec![0.0; k]; // sᵀΩ
        for j in 0..p {
            for c in 0..k {
                sto[c] += self.colsum[j] * self.omega[j * k + c];
            }
        }
        let mut out = self.y.clone();
        for j in 0..p {
            for c in 0..k {
                out[j * k + c] = (out[j * k + c] - self.colsum[j] * sto[c] / n) / (n - 1.0);
            }
        }
        out
    }

    /// Σ_j var_j (ddof 1) of the scaled genes.
    pub fn total_variance(&self) -> f64 {
        let n = self.n;
        (0..self.p)
            .map(|j| (self.colsq[j] - self.colsum[j] * self.colsum[j] / n) / (n - 1.0))
            .sum()
    }
}

struct CovPartial {
    p: usize,
    k: usize,
    omega: Arc<Vec<f64>>,
    scaling: Option<Arc<Scaling>>,
    z0: Arc<Vec<f64>>,
    y: Vec<f64>,
    colsum: Vec<f64>,
    colsq: Vec<f64>,
    n: f64,
    t: Vec<f64>,
    s: Vec<(u32, f64)>,
}

impl RowPartial for CovPartial {
    fn add_row(&mut self, _row: usize, cols: &[u32], vals: &[f64]) {
        self.n += 1.0;
        super::gram::s_row(self.scaling.as_deref(), &self.z0, cols, vals, &mut self.s);
        let k = self.k;
        self.t.iter_mut().for_each(|t| *t = 0.0);
        for &(j, v) in &self.s {
            let om = &self.omega[j as usize * k..(j as usize + 1) * k];
            for c in 0..k {
                self.t[c] += v * om[c];
            }
            self.colsum[j as usize] += v;
            self.colsq[j as usize] += v * v;
        }
        for &(j, v) in &self.s {
            let y = &mut self.y[j as usize * k..(j as usize + 1) * k];
            for c in 0..k {
                y[c] += v * self.t[c];
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for CovApply {
    fn partial(&self) -> Box<dyn RowPartial> {
        Box::new(CovPartial {
            p: self.p,
            k: self.k,
            omega: self.omega.clone(),
            scaling: self.scaling.clone(),
            z0: self.z0.clone(),
            y: vec![0.0; self.p * self.k],
            colsum: vec![0.0; self.p],
            colsq: vec![0.0; self.p],
            n: 0.0,
            t: vec![0.0; self.k],
            s: Vec::new(),
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        self.y = vec![0.0; self.p * self.k];
        self.colsum = vec![0.0; self.p];
        self.colsq = vec![0.0; self.p];
        self.n = 0.0;
        for part in parts {
            let q = part.downcast::<CovPartial>().expect("cov partial");
            let _ = q.p;
            self.y.iter_mut().zip(&q.y).for_each(|(a, b)| *a += b);
            self.colsum
                .iter_mut()
                .zip(&q.colsum)
                .for_each(|(a, b)| *a += b);
            self.colsq
                .iter_mut()
                .zip(&q.colsq)
                .for_each(|(a, b)| *a += b);
            self.n += q.n;
        }
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        let w = self.covariance_times_omega();
        let n = self.n;
        vec![
            ("cov.w".into(), w),
            (
                "cov.colmean_s".into(),
                self.colsum.iter().map(|s| s / n).collect(),
            ),
            ("cov.total_variance".into(), vec![self.total_variance()]),
        ]
    }
}

/// Gaussian random p×k matrix from a seed (xorshift64* + Box–Muller):
/// deterministic for a seed, on every platform.
pub fn gaussian(p: usize, k: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        ((state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..p * k)
        .map(|_| {
            let (u1, u2) = (uniform(), uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}

/// Orthonormal basis of the columns of a p×k row-major matrix (thin QR).
pub fn orthonormalize(y: &[f64], p: usize, k: usize) -> Vec<f64> {
    let m = faer::MatRef::from_row_major_slice(y, p, k);
    let q = m.qr().compute_thin_Q();
    crate::simd_state::clear_all();
    let mut out = vec![0.0; p * k];
    for r in 0..p {
        for c in 0..k {
            out[r * k + c] = q[(r, c)];
        }
    }
    out
}

/// Rayleigh–Ritz: with Q orthonormal and W = C·Q, eigenpairs of QᵀW give
/// the top eigenvalues and (rotated back) eigenvectors of C. Returns
/// (components p×n_comps row-major, eigenvalues) in descending order.
pub fn rayleigh_ritz(
    q: &[f64],
    w: &[f64],
    p: usize,
    k: usize,
    n_comps: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let qm = faer::MatRef::from_row_major_slice(q, p, k);
    let wm = faer::MatRef::from_row_major_slice(w, p, k);
    let b = qm.transpose() * wm;
    let sym = faer::Mat::<f64>::from_fn(k, k, |i, j| 0.5 * (b[(i, j)] + b[(j, i)]));
    let evd = sym
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::internal(format!("eigendecomposition failed: {e:?}")))?;
    let v = qm * evd.U();
    crate::simd_state::clear_all();
    Ok(super::gram::largest_of_decomposition(
        evd.S().column_vector(),
        v.as_ref(),
        n_comps,
    ))
}

/// X_pca rows: (Z_row − m)·V, m the column means of Z.
pub struct Project {
    p: usize,
    k: usize,
    comps: Arc<Vec<f64>>,
    offset: Arc<Vec<f64>>,
    scaling: Option<Arc<Scaling>>,
    z0: Arc<Vec<f64>>,
    n_rows: usize,
    pub out: Vec<f32>,
}

impl Project {
    /// `colmean_s`: column means of S (s/n) from the first pass.
    pub fn new(
        p: usize,
        k: usize,
        comps: Vec<f64>,
        colmean_s: &[f64],
        scaling: Option<Scaling>,
        n_rows: usize,
    ) -> Self {
        let mut offset = vec![0.0; k];
        for j in 0..p {
            for c in 0..k {
                offset[c] -= colmean_s[j] * comps[j * k + c];
            }
        }
        let z0 = (0..p)
            .map(|j| scaling.as_ref().map_or(0.0, |s| s.apply(j, 0.0)))
            .collect();
        Project {
            p,
            k,
            comps: Arc::new(comps),
            offset: Arc::new(offset),
            scaling: scaling.map(Arc::new),
            z0: Arc::new(z0),
            n_rows,
            out: vec![],
        }
    }
}

/// What a projection partial shares with its parent.
type ProjectShared = (
    usize,
    Arc<Vec<f64>>,
    Arc<Vec<f64>>,
    Option<Arc<Scaling>>,
    Arc<Vec<f64>>,
);

struct ProjectPartial {
    parent: ProjectShared,
    rows: RowValues,
    acc: Vec<f64>,
}

impl RowPartial for ProjectPartial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        let (k, comps, offset, scaling, z0) = (
            &self.parent.0,
            &self.parent.1,
            &self.parent.2,
            &self.parent.3,
            &self.parent.4,
        );
        let k = *k;
        self.acc.copy_from_slice(offset);
        for (&j, &x) in cols.iter().zip(vals) {
            let z = scaling.as_ref().map_or(x, |sc| sc.apply(j as usize, x));
            let d = z - z0[j as usize];
            if d != 0.0 {
                let c = &comps[j as usize * k..(j as usize + 1) * k];
                for i in 0..k {
                    self.acc[i] += d * c[i];
                }
            }
        }
        self.rows.rows.push(row as u32);
        self.rows.values.extend_from_slice(&self.acc);
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for Project {
    fn partial(&self) -> Box<dyn RowPartial> {
        Box::new(ProjectPartial {
            parent: (
                self.k,
                self.comps.clone(),
                self.offset.clone(),
                self.scaling.clone(),
                self.z0.clone(),
            ),
            rows: RowValues::default(),
            acc: vec![0.0; self.k],
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        let k = self.k;
        let _ = self.p;
        self.out = vec![0.0; self.n_rows * k];
        for part in parts {
            let q = part.downcast::<ProjectPartial>().expect("project partial");
            for (i, &r) in q.rows.rows.iter().enumerate() {
                for c in 0..k {
                    self.out[r as usize * k + c] = q.rows.values[i * k + c] as f32;
                }
            }
        }
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        vec![]
    }

    fn outputs_f32(&mut self) -> Vec<(String, Vec<f32>)> {
        vec![("pca.X".into(), std::mem::take(&mut self.out))]
    }
}
