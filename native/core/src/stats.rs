//! Per-row and per-column sum / mean / variance / nnz of a (selected)
//! matrix in one pass. Statistics along the stored major axis are exact
//! two-pass sums within each major; along the minor axis each block gives
//! (n, mean, M2) partials merged with Chan et al.'s pairwise update, so
//! large means do not cancel the variance. Everything accumulates in f64.

use crate::dtype::Values;
use crate::error::Result;
use crate::matrix::{Block, BlockData};
use crate::pass::Accumulator;
use crate::with_values;
use rayon::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct AxisStats {
    pub sum: Vec<f64>,
    pub mean: Vec<f64>,
    /// Population variance (ddof = 0); callers rescale for other ddof.
    pub var: Vec<f64>,
    pub nnz: Vec<f64>,
}

impl AxisStats {
    fn zeros(n: usize) -> Self {
        AxisStats {
            sum: vec![0.0; n],
            mean: vec![0.0; n],
            var: vec![0.0; n],
            nnz: vec![0.0; n],
        }
    }
}

/// Accumulates both axes. `major` is the stored major axis.
pub struct StatsAccumulator {
    pub major: AxisStats,
    pub minor: AxisStats,
    n_minor_seen: f64,
    minor_m2: Vec<f64>,
}

impl StatsAccumulator {
    pub fn new(n_major: usize, n_minor: usize) -> Self {
        StatsAccumulator {
            major: AxisStats::zeros(n_major),
            minor: AxisStats::zeros(n_minor),
            n_minor_seen: 0.0,
            minor_m2: vec![0.0; n_minor],
        }
    }

    /// Finish: minor variance from the merged M2.
    pub fn finish(mut self) -> (AxisStats, AxisStats) {
        let n = self.n_minor_seen;
        for (v, m2) in self.minor.var.iter_mut().zip(&self.minor_m2) {
            *v = if n > 0.0 { m2 / n } else { f64::NAN };
        }
        if n == 0.0 {
            self.minor.mean.iter_mut().for_each(|m| *m = f64::NAN);
        }
        (self.major, self.minor)
    }
}

/// (sum, nnz, M2) over one major's stored values, `width` entries in all.
fn major_moments(values: &[f64], width: usize) -> (f64, f64, f64) {
    let sum: f64 = values.iter().sum();
    let nnz = values.iter().filter(|&&x| x != 0.0).count() as f64;
    if width == 0 {
        return (0.0, 0.0, f64::NAN);
    }
    let mean = sum / width as f64;
    let implicit = (width - values.len()) as f64;
    let m2: f64 =
        values.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>() + implicit * mean * mean;
    (sum, nnz, m2)
}

impl Accumulator for StatsAccumulator {
    fn consume(&mut self, block: &Block, first: usize) -> Result<()> {
        let width = block.n_minor;
        let n_b = block.n_major;
        let (vals, indptr, indices): (Vec<f64>, Option<&Vec<i64>>, Option<&Vec<i32>>) =
            match &block.data {
                BlockData::Compressed {
                    indptr,
                    indices,
                    values,
                } => (to_f64(values), Some(indptr), Some(indices)),
                BlockData::Dense { values } => (to_f64(values), None, None),
            };
        let seg = |k: usize| -> std::ops::Range<usize> {
            match indptr {
                Some(p) => p[k] as usize..p[k + 1] as usize,
                None => k * width..(k + 1) * width,
            }
        };
        // Major axis: exact per major, in parallel.
        let moments: Vec<(f64, f64, f64)> = (0..n_b)
            .into_par_iter()
            .map(|k| major_moments(&vals[seg(k)], width))
            .collect();
        for (k, (s, z, m2)) in moments.into_iter().enumerate() {
            let i = first + k;
            self.major.sum[i] = s;
            self.major.nnz[i] = z;
            self.major.mean[i] = if width > 0 {
                s / width as f64
            } else {
                f64::NAN
            };
            self.major.var[i] = if width > 0 {
                m2 / width as f64
            } else {
                f64::NAN
            };
        }
        if n_b == 0 {
            return Ok(());
        }
        // Minor axis: block partials, then a pairwise merge.
        let mut s = vec![0.0f64; width];
        let mut z = vec![0.0f64; width];
        let col = |p: usize| -> usize {
            match indices {
                Some(ix) => ix[p] as usize,
                None => p % width.max(1),
            }
        };
        for (p, &x) in vals.iter().enumerate() {
            let j = col(p);
            s[j] += x;
            if x != 0.0 {
                z[j] += 1.0;
            }
        }
        let nb = n_b as f64;
        let mut m2 = vec![0.0f64; width];
        let mut stored = vec![0.0f64; width];
        for (p, &x) in vals.iter().enumerate() {
            let j = col(p);
            let d = x - s[j] / nb;
            m2[j] += d * d;
            stored[j] += 1.0;
        }
        let na = self.n_minor_seen;
        let n = na + nb;
        for j in 0..width {
            let mean_b = s[j] / nb;
            let m2_b = m2[j] + (nb - stored[j]) * mean_b * mean_b;
            let delta = mean_b - self.minor.mean[j];
            self.minor.mean[j] += delta * nb / n;
            self.minor_m2[j] += m2_b + delta * delta * na * nb / n;
            self.minor.sum[j] += s[j];
            self.minor.nnz[j] += z[j];
        }
        self.n_minor_seen = n;
        Ok(())
    }
}

#[allow(clippy::unnecessary_cast)]
fn to_f64(v: &Values) -> Vec<f64> {
    with_values!(v, x => x.iter().map(|&a| a as f64).collect())
}
