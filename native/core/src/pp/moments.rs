//! Per-gene sums and sums of squares of transformed values, optionally per
//! batch (scanpy's HVG statistics and scale's mean/std). `expm1` undoes a
//! trailing log1p, as scanpy's seurat / cell_ranger flavors do. Values are
//! summed in f64 per partial and merged at the end; scanpy's own
//! `_get_mean_var` uses the same E[x^2] - E[x]^2 form, so results match.
//!
//! One accumulator takes one or two sets of statistics over the same rows
//! and batches (HVG asks for the expm1 moments and the log moments in the
//! same pass): both sets of a gene sit side by side, so a stored value
//! costs one scatter instead of two. Non-zero counts are kept only when
//! asked for: without them a gene's two sets fill half a cache line, and
//! the table (30,000 genes) fits in a core's L2 cache.

use super::runner::{RowAccumulator, RowPartial};
use crate::error::{Error, Result};
use std::any::Any;

/// One set of statistics: its output name and value transform.
#[derive(Clone)]
pub struct MomentSet {
    pub name: String,
    pub expm1: bool,
    pub pre_scale: f64,
    /// Also count non-zero values (`<name>.nnz`).
    pub nnz: bool,
}

/// Sets one accumulator holds at most (the fused loop is written for 1 or 2).
pub const MAX_SETS: usize = 2;

pub struct Moments {
    sets: Vec<MomentSet>,
    /// Batch code per selected row (None: one batch).
    batches: Option<Vec<u32>>,
    n_batches: usize,
    n_cols: usize,
    /// Per set: (Σx, Σx², nnz) per batch × gene (nnz empty unless asked).
    sums: Vec<[Vec<f64>; 3]>,
    rows_per_batch: Vec<f64>,
}

impl Moments {
    pub fn new(sets: Vec<MomentSet>, batches: Option<Vec<u32>>, n_cols: usize) -> Result<Self> {
        if sets.is_empty() || sets.len() > MAX_SETS {
            return Err(Error::internal("moments take one or two sets"));
        }
        if sets.iter().any(|s| s.nnz != sets[0].nnz) {
            return Err(Error::internal("fused moment sets differ in nnz"));
        }
        let n_batches = batches
            .as_ref()
            .map_or(1, |b| b.iter().max().map_or(1, |&m| m as usize + 1));
        if n_batches.saturating_mul(n_cols) > 1 << 28 {
            return Err(Error::invalid(
                "too many batches × genes for per-batch statistics",
            ));
        }
        Ok(Moments {
            sets,
            batches,
            n_batches,
            n_cols,
            sums: vec![],
            rows_per_batch: vec![],
        })
    }

    /// Table entries per gene: (Σx, Σx²[, nnz]) per set.
    fn width(&self) -> usize {
        self.sets.len() * (2 + usize::from(self.sets[0].nnz))
    }
}

struct MomentsPartial {
    sets: Vec<MomentSet>,
    batches: Option<Vec<u32>>,
    n_cols: usize,
    /// (Σx, Σx²[, nnz]) of each set, per batch × gene, interleaved from
    /// `base` (64-byte aligned): a stored value then touches one cache
    /// line, not 2–3 × sets arrays (which together outgrow the L2 cache at
    /// 30,000 genes).
    acc: Vec<f64>,
    base: usize,
    rows_per_batch: Vec<f64>,
    /// Transformed values of the current row, per set that needs them.
    scratch: [Vec<f64>; MAX_SETS],
}

impl MomentsPartial {
    fn batch_offset(&mut self, row: usize) -> usize {
        let b = self.batches.as_ref().map_or(0, |v| v[row] as usize);
        self.rows_per_batch[b] += 1.0;
        b * self.n_cols
    }

    /// Add a row whose stored values are `vals` (after the chain) and
    /// `pre_log` (before its last log1p, when captured).
    fn add(&mut self, row: usize, cols: &[u32], vals: &[f64], pre_log: Option<&[f64]>) {
        let off = self.batch_offset(row);
        // The values each set sums: as given, the captured pre-log values
        // (expm1(log1p(x)) is x up to rounding: no transcendental calls), or
        // expm1 computed here.
        let mut sources: [&[f64]; MAX_SETS] = [vals; MAX_SETS];
        for (s, set) in self.sets.iter().enumerate() {
            if set.expm1 && pre_log.is_none() {
                let k = set.pre_scale;
                self.scratch[s].clear();
                self.scratch[s].extend(vals.iter().map(|&x| (x * k).exp_m1()));
            }
        }
        for (s, set) in self.sets.iter().enumerate() {
            if set.expm1 {
                sources[s] = pre_log.unwrap_or(&self.scratch[s]);
            }
        }
        let acc = &mut self.acc[self.base..];
        match (self.sets.len(), self.sets[0].nnz) {
            (1, false) => scatter::<1, false>(acc, off, cols, [sources[0]]),
            (1, true) => scatter::<1, true>(acc, off, cols, [sources[0]]),
            (_, false) => scatter::<2, false>(acc, off, cols, sources),
            (_, true) => scatter::<2, true>(acc, off, cols, sources),
        }
    }
}

/// Add one row's values to the interleaved table: for gene j, set s sits at
/// `(off + j) · width + s · (2 + NNZ)`.
#[inline(always)]
fn scatter<const SETS: usize, const NNZ: bool>(
    acc: &mut [f64],
    off: usize,
    cols: &[u32],
    sources: [&[f64]; SETS],
) {
    let per_set = 2 + usize::from(NNZ);
    let width = SETS * per_set;
    let n = cols.len();
    let sources = sources.map(|x| &x[..n]);
    for (i, &j) in cols.iter().enumerate() {
        let e = &mut acc[(off + j as usize) * width..][..width];
        for (s, x) in sources.iter().enumerate() {
            let a = x[i];
            let e = &mut e[s * per_set..];
            e[0] += a;
            e[1] += a * a;
            if NNZ {
                e[2] += f64::from(u8::from(a != 0.0));
            }
        }
    }
}

impl RowPartial for MomentsPartial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        self.add(row, cols, vals, None);
    }

    fn add_row_pre(&mut self, row: usize, cols: &[u32], vals: &[f64], pre_log: &[f64]) {
        self.add(row, cols, vals, Some(pre_log));
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for Moments {
    fn hot_bytes(&self) -> usize {
        self.n_batches * self.n_cols * self.width() * std::mem::size_of::<f64>()
    }

    fn partial(&self) -> Box<dyn RowPartial> {
        let n = self.n_batches * self.n_cols;
        // Room to start the table on a cache line.
        let acc = vec![0.0; n * self.width() + 8];
        let base = acc.as_ptr().align_offset(64).min(8);
        Box::new(MomentsPartial {
            sets: self.sets.clone(),
            batches: self.batches.clone(),
            n_cols: self.n_cols,
            acc,
            base,
            rows_per_batch: vec![0.0; self.n_batches],
            scratch: Default::default(),
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        let n = self.n_batches * self.n_cols;
        let width = self.width();
        let per_set = width / self.sets.len();
        let n_nnz = if self.sets[0].nnz { n } else { 0 };
        self.sums = vec![[vec![0.0; n], vec![0.0; n], vec![0.0; n_nnz]]; self.sets.len()];
        self.rows_per_batch = vec![0.0; self.n_batches];
        for p in parts {
            let p = p.downcast::<MomentsPartial>().expect("moments partial");
            for (i, e) in p.acc[p.base..].chunks_exact(width).take(n).enumerate() {
                for (s, sums) in self.sums.iter_mut().enumerate() {
                    for (t, sum) in sums.iter_mut().enumerate().take(per_set) {
                        sum[i] += e[per_set * s + t];
                    }
                }
            }
            for b in 0..self.n_batches {
                self.rows_per_batch[b] += p.rows_per_batch[b];
            }
        }
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        let mut out = Vec::new();
        for (set, sums) in self.sets.iter().zip(std::mem::take(&mut self.sums)) {
            let k = &set.name;
            let [sum, sumsq, nnz] = sums;
            out.push((format!("{k}.sum"), sum));
            out.push((format!("{k}.sumsq"), sumsq));
            if set.nnz {
                out.push((format!("{k}.nnz"), nnz));
            }
            out.push((format!("{k}.rows"), self.rows_per_batch.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, expm1: bool) -> MomentSet {
        MomentSet {
            name: name.into(),
            expm1,
            pre_scale: 1.0,
            nnz: true,
        }
    }

    fn run(sets: Vec<MomentSet>, with_pre: bool) -> Vec<(String, Vec<f64>)> {
        let rows: [(&[u32], &[f64]); 3] = [
            (&[0, 2], &[0.5, 1.5]),
            (&[1, 2], &[2.0, 0.25]),
            (&[0], &[1.0]),
        ];
        let mut m = Moments::new(sets, Some(vec![0, 1, 0]), 3).unwrap();
        let mut part = m.partial();
        for (r, (cols, vals)) in rows.iter().enumerate() {
            if with_pre {
                let pre: Vec<f64> = vals.iter().map(|x| x.exp_m1()).collect();
                part.add_row_pre(r, cols, vals, &pre);
            } else {
                part.add_row(r, cols, vals);
            }
        }
        m.merge(vec![part.into_any()]).unwrap();
        m.outputs()
    }

    #[test]
    fn a_fused_pair_equals_each_set_alone() {
        for with_pre in [false, true] {
            let pair = run(vec![set("e", true), set("l", false)], with_pre);
            let mut alone = run(vec![set("e", true)], with_pre);
            alone.extend(run(vec![set("l", false)], with_pre));
            for (name, want) in &alone {
                let got = &pair.iter().find(|(n, _)| n == name).unwrap().1;
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{name}");
                }
            }
            // Batch 0 holds rows 0 and 2; gene 0: log values 0.5 and 1.0.
            let l_sum = &pair.iter().find(|(n, _)| n == "l.sum").unwrap().1;
            assert_eq!(l_sum[0], 1.5);
            let e_sumsq = &pair.iter().find(|(n, _)| n == "e.sumsq").unwrap().1;
            let want = 0.5f64.exp_m1().powi(2) + 1.0f64.exp_m1().powi(2);
            assert!((e_sumsq[0] - want).abs() < 1e-12);
            let rows = &pair.iter().find(|(n, _)| n == "e.rows").unwrap().1;
            assert_eq!(rows, &vec![2.0, 1.0]);
            // Without non-zero counts: the same sums, and no nnz outputs.
            let lean = |s: MomentSet| MomentSet { nnz: false, ..s };
            let pair_lean = run(vec![lean(set("e", true)), lean(set("l", false))], with_pre);
            assert!(pair_lean.iter().all(|(n, _)| !n.ends_with(".nnz")));
            for (name, got) in &pair_lean {
                let want = &pair.iter().find(|(n, _)| n == name).unwrap().1;
                assert_eq!(got, want, "{name}");
            }
            let nnz = &pair.iter().find(|(n, _)| n == "l.nnz").unwrap().1;
            assert_eq!(nnz, &vec![2.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
        }
    }
}
