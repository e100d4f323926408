//! Per-row and per-column sum / mean / variance / nnz of a (selected)
//! matrix in one pass. Statistics along the stored major axis are exact
//! two-pass sums within each major; along the minor axis each block gives
//! shifted partial moments merged with Chan et al.'s pairwise update, so
//! large means do not cancel the variance. Everything accumulates in f64.
//! Only the requested axes and levels are computed: a sums-only pass along
//! the major axis reads each value once and scatters nothing.

use crate::dtype::AsF64;
use crate::error::Result;
use crate::matrix::{Block, BlockData};
use crate::pass::{Accumulator, Rows};
use crate::with_values;
use rayon::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct AxisStats {
    pub sum: Vec<f64>,
    pub mean: Vec<f64>,
    /// Population variance (ddof = 0); NaN when moments were not requested.
    pub var: Vec<f64>,
    pub nnz: Vec<f64>,
}

impl AxisStats {
    fn zeros(n: usize) -> Self {
        AxisStats {
            sum: vec![0.0; n],
            mean: vec![0.0; n],
            var: vec![f64::NAN; n],
            nnz: vec![0.0; n],
        }
    }
}

/// What a stats pass computes.
#[derive(Debug, Clone, Copy)]
pub struct StatsRequest {
    pub major: bool,
    pub minor: bool,
    /// Also variances (needs a second look at each major's values and
    /// squared sums along the minor axis).
    pub moments: bool,
}

pub struct StatsAccumulator {
    req: StatsRequest,
    pub major: AxisStats,
    pub minor: AxisStats,
    n_minor_seen: f64,
    minor_m2: Vec<f64>,
}

impl StatsAccumulator {
    pub fn new(n_major: usize, n_minor: usize, req: StatsRequest) -> Self {
        let (nm, nn) = (
            if req.major { n_major } else { 0 },
            if req.minor { n_minor } else { 0 },
        );
        StatsAccumulator {
            req,
            major: AxisStats::zeros(nm),
            minor: AxisStats::zeros(nn),
            n_minor_seen: 0.0,
            minor_m2: vec![0.0; if req.moments { nn } else { 0 }],
        }
    }

    /// Finish: minor means and variances from the merged partials.
    pub fn finish(mut self) -> (AxisStats, AxisStats) {
        let n = self.n_minor_seen;
        for (m, s) in self.minor.mean.iter_mut().zip(&self.minor.sum) {
            *m = if n > 0.0 { s / n } else { f64::NAN };
        }
        for (v, m2) in self.minor.var.iter_mut().zip(&self.minor_m2) {
            *v = if n > 0.0 { m2 / n } else { f64::NAN };
        }
        (self.major, self.minor)
    }
}

/// (sum, nnz, M2) of one major's stored values, `width` entries in all
/// (the rest are implicit zeros). M2 uses a second look at the values —
/// exact even when the mean dwarfs the variance — and is NaN without moments.
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
        .map(|&x| (x.as_f64() - mean).powi(2))
        .sum::<f64>()
        + implicit * mean * mean;
    (sum, nnz, m2)
}

/// Minor-axis partials of some rows of a block. Sums only: [sum, nnz] per
/// minor (16 bytes). With moments: [sum(x-K), sum((x-K)^2), nnz, stored]
/// shifted by the running means K so sums of squares do not cancel.
/// Per-major (sum, nnz, M2) of a part's rows, and its minor partial.
type PartResult = (Vec<(f64, f64, f64)>, Option<Partial>);

enum Partial {
    Sums(Vec<[f64; 2]>),
    Moments(Vec<[f64; 4]>),
}

fn for_each_entry<T: AsF64>(
    values: &[T],
    cols: Option<&[i32]>,
    width: usize,
    mut f: impl FnMut(usize, f64),
) {
    match cols {
        Some(ix) => values
            .iter()
            .zip(ix)
            .for_each(|(&x, &j)| f(j as usize, x.as_f64())),
        None => values
            .chunks(width.max(1))
            .for_each(|row| row.iter().enumerate().for_each(|(j, &x)| f(j, x.as_f64()))),
    }
}

fn minor_partial<T: AsF64>(
    values: &[T],
    cols: Option<&[i32]>,
    width: usize,
    shift: Option<&[f64]>,
) -> Partial {
    match shift {
        None => {
            let mut p = vec![[0.0f64; 2]; width];
            for_each_entry(values, cols, width, |j, x| {
                p[j][0] += x;
                p[j][1] += f64::from(u8::from(x != 0.0));
            });
            Partial::Sums(p)
        }
        Some(k) => {
            let mut p = vec![[0.0f64; 4]; width];
            for_each_entry(values, cols, width, |j, x| {
                let d = x - k[j];
                let a = &mut p[j];
                a[0] += d;
                a[1] += d * d;
                a[2] += f64::from(u8::from(x != 0.0));
                a[3] += 1.0;
            });
            Partial::Moments(p)
        }
    }
}

fn add_partial(acc: &mut Partial, p: Partial) {
    match (acc, p) {
        (Partial::Sums(a), Partial::Sums(b)) => a
            .iter_mut()
            .zip(b)
            .for_each(|(x, y)| (0..2).for_each(|q| x[q] += y[q])),
        (Partial::Moments(a), Partial::Moments(b)) => a
            .iter_mut()
            .zip(b)
            .for_each(|(x, y)| (0..4).for_each(|q| x[q] += y[q])),
        _ => unreachable!("partials of one pass have one kind"),
    }
}

impl StatsAccumulator {
    fn consume_typed<T: AsF64>(
        &mut self,
        vals: &[T],
        indptr: Option<&[i64]>,
        indices: Option<&[i32]>,
        (n_b, width, rows): (usize, usize, Rows<'_>),
    ) {
        let req = self.req;
        let seg = |k: usize| -> std::ops::Range<usize> {
            match indptr {
                Some(p) => p[k] as usize..p[k + 1] as usize,
                None => k * width..(k + 1) * width,
            }
        };
        let shift = req.moments.then(|| self.minor.mean.clone());
        // One part per thread: each gives its majors' moments and a minor
        // partial; partials add up.
        let parts = rayon::current_num_threads().max(1).min(n_b.max(1));
        let per = n_b.div_ceil(parts).max(1);
        let results: Vec<PartResult> = (0..parts)
            .into_par_iter()
            .map(|t| {
                let (a, b) = ((t * per).min(n_b), ((t + 1) * per).min(n_b));
                let per_major = if req.major {
                    (a..b)
                        .map(|k| major_moments(&vals[seg(k)], width, req.moments))
                        .collect()
                } else {
                    vec![]
                };
                let part = req.minor.then(|| {
                    let (lo, hi) = if a < b {
                        (seg(a).start, seg(b - 1).end)
                    } else {
                        (0, 0)
                    };
                    minor_partial(
                        &vals[lo..hi],
                        indices.map(|ix| &ix[lo..hi]),
                        width,
                        shift.as_deref(),
                    )
                });
                (per_major, part)
            })
            .collect();
        let mut merged: Option<Partial> = None;
        let mut i = 0;
        for (per_major, part) in results {
            for (s, z, m2) in per_major {
                let k = rows.at(i);
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
                i += 1;
            }
            match (&mut merged, part) {
                (None, p) => merged = p,
                (Some(m), Some(p)) => add_partial(m, p),
                (Some(_), None) => {}
            }
        }
        if n_b == 0 {
            return;
        }
        let nb = n_b as f64;
        match merged {
            Some(Partial::Sums(p)) => {
                for (j, [s, z]) in p.into_iter().enumerate() {
                    self.minor.sum[j] += s;
                    self.minor.nnz[j] += z;
                }
            }
            Some(Partial::Moments(mut p)) => {
                let mut shift = shift.expect("moments have a shift");
                refine_cancelled(&mut p, &mut shift, nb, |f| {
                    for_each_entry(vals, indices, width, f)
                });
                let na = self.n_minor_seen;
                let n = na + nb;
                for (j, [s1, s2, nnz, stored]) in p.into_iter().enumerate() {
                    // Add the implicit zeros: each contributes (0 - K).
                    let zeros = nb - stored;
                    let kj = shift[j];
                    let s1 = s1 - zeros * kj;
                    let s2 = s2 + zeros * kj * kj;
                    let mean_b = kj + s1 / nb;
                    let m2_b = (s2 - s1 * s1 / nb).max(0.0);
                    let delta = mean_b - self.minor.mean[j];
                    self.minor.mean[j] += delta * nb / n;
                    self.minor_m2[j] += m2_b + delta * delta * na * nb / n;
                    self.minor.sum[j] += s1 + nb * kj;
                    self.minor.nnz[j] += nnz;
                }
            }
            None => {}
        }
        self.n_minor_seen += nb;
    }
}

/// A block's squares around a shift K cancel when K is far from the
/// block's mean: M2 = Σ(x−K)² − (Σ(x−K))²/n loses about log10(Σ(x−K)² / M2)
/// digits. K is the running mean of earlier blocks (0 for the first), so a
/// column of 1e7 ± 1 lost its whole variance in the first block. Columns
/// past this ratio get a second look at their entries around the block's
/// own mean; counts data (mean² ~ variance) never reaches it.
const CANCELLING: f64 = 1e4;

/// Redo the moments of the cancelling columns of `p` (partials around
/// `shift`, a block of `nb` rows) around their block means, which become
/// their shift. `entries` visits the block's stored (column, value) pairs.
fn refine_cancelled(
    p: &mut [[f64; 4]],
    shift: &mut [f64],
    nb: f64,
    entries: impl FnOnce(&mut dyn FnMut(usize, f64)),
) {
    let mut redo = vec![false; p.len()];
    let mut any = false;
    for (j, a) in p.iter_mut().enumerate() {
        let (zeros, k) = (nb - a[3], shift[j]);
        let (s1, s2) = (a[0] - zeros * k, a[1] + zeros * k * k);
        let m2 = (s2 - s1 * s1 / nb).max(0.0);
        // A column with no stored value in the block has M2 = 0 exactly,
        // whatever the shift (most genes of a sparse block).
        if a[3] > 0.0 && s2 > CANCELLING * m2 {
            redo[j] = true;
            any = true;
            shift[j] = k + s1 / nb;
            a[0] = 0.0;
            a[1] = 0.0;
        }
    }
    if !any {
        return;
    }
    entries(&mut |j, x| {
        if redo[j] {
            let d = x - shift[j];
            p[j][0] += d;
            p[j][1] += d * d;
        }
    });
}

impl Accumulator for StatsAccumulator {
    fn consume(&mut self, block: &Block, rows: Rows<'_>) -> Result<()> {
        let dims = (block.n_major, block.n_minor, rows);
        match &block.data {
            BlockData::Compressed {
                indptr,
                indices,
                values,
            } => {
                with_values!(values, v => self.consume_typed(v, Some(indptr), Some(indices), dims))
            }
            BlockData::Dense { values } => {
                with_values!(values, v => self.consume_typed(v, None, None, dims))
            }
        }
        Ok(())
    }

    fn any_order(&self) -> bool {
        true
    }
}
