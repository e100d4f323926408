//! Per-row and per-column sum / mean / variance / nnz of a (selected)
//! matrix in one pass. Statistics along the stored major axis are exact
//! two-pass sums within each major; along the minor axis each block gives
//! (n, mean, M2) partials merged with Chan et al.'s pairwise update, so
//! large means do not cancel the variance. Everything accumulates in f64.

use crate::dtype::AsF64;
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
    /// False: only sums and non-zero counts (one cheap read of each value);
    /// true: also variances.
    moments: bool,
    pub major: AxisStats,
    pub minor: AxisStats,
    n_minor_seen: f64,
    minor_m2: Vec<f64>,
}

impl StatsAccumulator {
    pub fn new(n_major: usize, n_minor: usize, moments: bool) -> Self {
        StatsAccumulator {
            moments,
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
/// Two passes over the major (it is contiguous, so the second is cheap):
/// exact even when the mean dwarfs the variance. M2 is NaN unless `moments`.
fn major_moments<T: AsF64>(values: &[T], width: usize, moments: bool) -> (f64, f64, f64) {
    let mut sum = 0.0;
    let mut nnz = 0.0;
    for &x in values {
        let x = x.as_f64();
        sum += x;
        nnz += f64::from(u8::from(x != 0.0));
    }
    if width == 0 || !moments {
        return (sum, nnz, f64::NAN);
    }
    let mean = sum / width as f64;
    let implicit = (width - values.len()) as f64;
    let m2: f64 = values
        .iter()
        .map(|&x| (x.as_f64() - mean) * (x.as_f64() - mean))
        .sum::<f64>()
        + implicit * mean * mean;
    (sum, nnz, m2)
}

/// Per-minor partial moments of some rows of a block, shifted by the
/// running means K so sums of squares do not cancel. For minor j:
/// [sum(x - K), sum((x - K)^2), nonzeros, stored entries] — packed so one
/// entry touches one cache line.
type Partial = Vec<[f64; 4]>;

fn minor_partial<T: AsF64>(
    values: &[T],
    cols: Option<&[i32]>,
    width: usize,
    shift: &[f64],
    moments: bool,
) -> Partial {
    let mut p = vec![[0.0f64; 4]; width];
    // Without moments only the sums and counts are kept (shift = 0 then).
    let mut add = |j: usize, x: f64| {
        let a = &mut p[j];
        if moments {
            let d = x - shift[j];
            a[0] += d;
            a[1] += d * d;
        } else {
            a[0] += x;
        }
        a[2] += f64::from(u8::from(x != 0.0));
        a[3] += 1.0;
    };
    match cols {
        Some(ix) => values
            .iter()
            .zip(ix)
            .for_each(|(&x, &j)| add(j as usize, x.as_f64())),
        None => values.chunks(width.max(1)).for_each(|row| {
            row.iter()
                .enumerate()
                .for_each(|(j, &x)| add(j, x.as_f64()))
        }),
    }
    p
}

impl StatsAccumulator {
    #[allow(clippy::too_many_arguments)]
    fn consume_typed<T: AsF64>(
        &mut self,
        vals: &[T],
        indptr: Option<&[i64]>,
        indices: Option<&[i32]>,
        n_b: usize,
        width: usize,
        first: usize,
    ) {
        let seg = |k: usize| -> std::ops::Range<usize> {
            match indptr {
                Some(p) => p[k] as usize..p[k + 1] as usize,
                None => k * width..(k + 1) * width,
            }
        };
        let moments = self.moments;
        let shift = if moments {
            self.minor.mean.clone()
        } else {
            vec![0.0; width]
        };
        // Split the block's majors into one part per thread; each part gives
        // its majors' moments and a minor partial, and partials add up.
        let parts = rayon::current_num_threads().max(1).min(n_b.max(1));
        let per = n_b.div_ceil(parts).max(1);
        let results: Vec<(Vec<(f64, f64, f64)>, Partial)> = (0..parts)
            .into_par_iter()
            .map(|t| {
                let (a, b) = ((t * per).min(n_b), ((t + 1) * per).min(n_b));
                let per_major = (a..b)
                    .map(|k| major_moments(&vals[seg(k)], width, moments))
                    .collect();
                let (lo, hi) = if a < b {
                    (seg(a).start, seg(b - 1).end)
                } else {
                    (0, 0)
                };
                let part = minor_partial(
                    &vals[lo..hi],
                    indices.map(|ix| &ix[lo..hi]),
                    width,
                    &shift,
                    moments,
                );
                (per_major, part)
            })
            .collect();
        let mut part: Partial = vec![[0.0; 4]; width];
        let mut k = first;
        for (moments, p) in results {
            for (s, z, m2) in moments {
                self.major.sum[k] = s;
                self.major.nnz[k] = z;
                self.major.mean[k] = if width > 0 {
                    s / width as f64
                } else {
                    f64::NAN
                };
                self.major.var[k] = if width > 0 {
                    m2 / width as f64
                } else {
                    f64::NAN
                };
                k += 1;
            }
            for (acc, x) in part.iter_mut().zip(p) {
                for q in 0..4 {
                    acc[q] += x[q];
                }
            }
        }
        if n_b == 0 {
            return;
        }
        let nb = n_b as f64;
        let na = self.n_minor_seen;
        let n = na + nb;
        for (j, &[s1, s2, nnz, stored]) in part.iter().enumerate() {
            // Add the implicit zeros: each contributes (0 - K).
            let zeros = nb - stored;
            let k = shift[j];
            let s1 = s1 - zeros * k;
            let s2 = s2 + zeros * k * k;
            let mean_b = k + s1 / nb;
            let m2_b = if moments {
                (s2 - s1 * s1 / nb).max(0.0)
            } else {
                f64::NAN
            };
            let delta = mean_b - self.minor.mean[j];
            self.minor.mean[j] += delta * nb / n;
            self.minor_m2[j] += m2_b + delta * delta * na * nb / n;
            self.minor.sum[j] += s1 + nb * k;
            self.minor.nnz[j] += nnz;
        }
        self.n_minor_seen = n;
    }
}

impl Accumulator for StatsAccumulator {
    fn consume(&mut self, block: &Block, first: usize) -> Result<()> {
        let (width, n_b) = (block.n_minor, block.n_major);
        match &block.data {
            BlockData::Compressed {
                indptr,
                indices,
                values,
            } => {
                with_values!(values, v => self.consume_typed(v, Some(indptr), Some(indices), n_b, width, first))
            }
            BlockData::Dense { values } => {
                with_values!(values, v => self.consume_typed(v, None, None, n_b, width, first))
            }
        }
        Ok(())
    }
}
