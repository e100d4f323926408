//! The transform chain as data: normalize → log1p → scale, in order, with
//! per-row / per-gene vectors referenced by index into a vector table that
//! travels next to the JSON descriptor.

use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// x * target / t_row (rows with t_row = 0 unchanged). `size_factors` (a vector of per-row totals)
    /// when known; otherwise t_row is the row's sum over genes not flagged
    /// in `exclude` (scanpy's exclude_highly_expressed), computed on the fly
    /// since a CSR row is complete in its block. A zero total counts as 1.
    Normalize {
        target: f64,
        size_factors: Option<usize>,
        exclude: Option<usize>,
    },
    /// ln(1 + x) / ln(base), in float32 (as scanpy computes it on float32
    /// data) unless `float64` (a float64 source, which scanpy keeps float64).
    Log1p {
        base: Option<f64>,
        #[serde(default)]
        float64: bool,
    },
    /// (x - mean) / std, clipped to ±max_value (to max_value only without
    /// zero_center). Densifying: accumulators apply it implicitly.
    Scale {
        mean: usize,
        std: usize,
        max_value: Option<f64>,
        zero_center: bool,
    },
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Vector index: for each read column, its output position or -1.
    /// Normalize needs whole rows (over the genes it was defined on), so a
    /// gene subset after normalize reads the wider rows and keeps only the
    /// selected genes once the row is transformed.
    #[serde(default)]
    pub output: Option<usize>,
}

/// Implicit scaling parameters (per selected gene).
#[derive(Debug, Clone)]
pub struct Scaling {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub max_value: Option<f64>,
    pub zero_center: bool,
}

impl Scaling {
    /// The scaled value of x for gene j (scanpy: std 0 is treated as 1).
    #[inline]
    pub fn apply(&self, j: usize, x: f64) -> f64 {
        let sd = if self.std[j] == 0.0 { 1.0 } else { self.std[j] };
        let z = if self.zero_center {
            (x - self.mean[j]) / sd
        } else {
            x / sd
        };
        match self.max_value {
            Some(m) if self.zero_center => z.clamp(-m, m),
            Some(m) => z.min(m),
            None => z,
        }
    }
}

/// A plan resolved against its vectors, ready to evaluate rows.
#[derive(Debug, Clone)]
pub struct Compiled {
    sparse_steps: Vec<Sparse>,
    pub scaling: Option<Scaling>,
    /// Read column → output column (None: identity).
    pub output: Option<Vec<i32>>,
    /// Number of output columns.
    pub n_out: usize,
}

#[derive(Debug, Clone)]
enum Sparse {
    Normalize {
        target: f64,
        size_factors: Option<Vec<f64>>,
        exclude: Option<Vec<bool>>,
    },
    Log1p(Log1p),
}

/// One log1p step: ln(1 + x) / ln(base) in the precision scanpy would use.
#[derive(Debug, Clone, Copy)]
struct Log1p {
    inv_ln_base: f64,
    float64: bool,
}

impl Log1p {
    #[inline]
    fn of(self, v: f64) -> f64 {
        if self.float64 {
            v.ln_1p() * self.inv_ln_base
        } else {
            log1p_value(v, self.inv_ln_base)
        }
    }
}

impl Plan {
    pub fn parse(json: &str) -> Result<Plan> {
        serde_json::from_str(json).map_err(|e| Error::invalid(format!("bad plan: {e}")))
    }

    pub fn compile(&self, vectors: &[Vec<f64>], n_rows: usize, n_cols: usize) -> Result<Compiled> {
        let vec_of = |i: usize, len: usize, what: &str| -> Result<Vec<f64>> {
            let v = vectors
                .get(i)
                .ok_or_else(|| Error::invalid(format!("plan refers to missing vector {i}")))?;
            if v.len() != len {
                return Err(Error::invalid(format!(
                    "{what} has {} values, expected {len}",
                    v.len()
                )));
            }
            Ok(v.clone())
        };
        let output: Option<Vec<i32>> = match self.output {
            Some(i) => Some(
                vec_of(i, n_cols, "output map")?
                    .iter()
                    .map(|&x| x as i32)
                    .collect(),
            ),
            None => None,
        };
        let n_out = output.as_ref().map_or(n_cols, |o| {
            o.iter()
                .copied()
                .max()
                .map_or(0, |m| (m + 1).max(0) as usize)
        });
        let mut sparse_steps = Vec::new();
        let mut scaling = None;
        for step in &self.steps {
            if scaling.is_some() {
                return Err(Error::invalid("scale must be the last step of a chain"));
            }
            match step {
                Step::Normalize {
                    target,
                    size_factors,
                    exclude,
                } => sparse_steps.push(Sparse::Normalize {
                    target: *target,
                    size_factors: size_factors
                        .map(|i| vec_of(i, n_rows, "size factors"))
                        .transpose()?,
                    exclude: exclude
                        .map(|i| vec_of(i, n_cols, "exclude mask"))
                        .transpose()?
                        .map(|v| v.iter().map(|&x| x != 0.0).collect()),
                }),
                Step::Log1p { base, float64 } => {
                    let inv = match base {
                        Some(b) if *b > 0.0 && *b != 1.0 => 1.0 / b.ln(),
                        Some(b) => {
                            return Err(Error::invalid(format!(
                                "log1p base must be positive and not 1, got {b}"
                            )))
                        }
                        None => 1.0,
                    };
                    sparse_steps.push(Sparse::Log1p(Log1p {
                        inv_ln_base: inv,
                        float64: *float64,
                    }))
                }
                Step::Scale {
                    mean,
                    std,
                    max_value,
                    zero_center,
                } => {
                    scaling = Some(Scaling {
                        mean: vec_of(*mean, n_out, "scale mean")?,
                        std: vec_of(*std, n_out, "scale std")?,
                        max_value: *max_value,
                        zero_center: *zero_center,
                    })
                }
            }
        }
        Ok(Compiled {
            sparse_steps,
            scaling,
            output,
            n_out,
        })
    }
}

impl Compiled {
    /// True when the chain ends in log1p (so pre-log values exist).
    pub fn has_log1p(&self) -> bool {
        self.sparse_steps
            .iter()
            .any(|s| matches!(s, Sparse::Log1p(_)))
    }

    /// True when a normalize step takes row totals from the row itself:
    /// the pass must then see whole rows (over the normalize basis).
    pub fn needs_row_totals(&self) -> bool {
        self.sparse_steps.iter().any(|s| {
            matches!(
                s,
                Sparse::Normalize {
                    size_factors: None,
                    ..
                }
            )
        })
    }

    /// Read all `n_source` columns instead of `selection` (no repeats) and
    /// keep the selected ones in the pass's worker threads, in parallel,
    /// rather than gathering them on the reader thread: the output map
    /// becomes source column → output column. Only valid when
    /// `!needs_row_totals()` (per-read-column exclude masks go stale).
    pub fn fold_selection(&mut self, selection: &[usize], n_source: usize) {
        let mut map = vec![-1i32; n_source];
        for (q, &j) in selection.iter().enumerate() {
            map[j] = match &self.output {
                Some(o) => o[q],
                None => q as i32,
            };
        }
        self.output = Some(map);
    }

    /// Keep the selected columns of a transformed row, renumbered (and the
    /// same entries of `pre`, when given).
    pub fn select(&self, cols: &mut Vec<u32>, vals: &mut Vec<f64>, mut pre: Option<&mut Vec<f64>>) {
        let Some(map) = &self.output else { return };
        let mut k = 0;
        for i in 0..cols.len() {
            let o = map[cols[i] as usize];
            if o >= 0 {
                cols[k] = o as u32;
                vals[k] = vals[i];
                if let Some(p) = pre.as_deref_mut() {
                    p[k] = p[i];
                }
                k += 1;
            }
        }
        cols.truncate(k);
        vals.truncate(k);
        if let Some(p) = pre {
            p.truncate(k);
        }
    }

    /// Transform one row's stored values in place (all steps but scale).
    /// Returns the size factor used by the last normalize step (or NaN).
    #[inline]
    pub fn eval_row(&self, row: usize, cols: &[u32], vals: &mut [f64]) -> f64 {
        self.eval_row_capture(row, cols, vals, None)
    }

    /// Like eval_row; when `pre_log` is given, it receives the values as
    /// they were before the last log1p (what expm1 would give back).
    pub fn eval_row_capture(
        &self,
        row: usize,
        cols: &[u32],
        vals: &mut [f64],
        pre_log: Option<&mut Vec<f64>>,
    ) -> f64 {
        self.eval_row_with(row, cols, vals, None, pre_log)
    }

    /// The row total a normalize step without stored size factors would use
    /// (over all the row's genes except excluded ones); None if not needed.
    pub fn row_total(&self, row: usize, cols: &[u32], vals: &[f64]) -> Option<f64> {
        self.sparse_steps.iter().find_map(|s| match s {
            Sparse::Normalize {
                size_factors: Some(sf),
                ..
            } => Some(sf[row]),
            Sparse::Normalize {
                exclude: Some(ex), ..
            } => Some(
                cols.iter()
                    .zip(vals)
                    .filter(|(&j, _)| !ex[j as usize])
                    .map(|(_, &v)| v)
                    .sum(),
            ),
            Sparse::Normalize { .. } => Some(super::row_sum(vals)),
            _ => None,
        })
    }

    /// Evaluate with a known normalize total (when the row was narrowed to
    /// the output genes after taking its total over all genes).
    pub fn eval_row_with(
        &self,
        row: usize,
        cols: &[u32],
        vals: &mut [f64],
        total: Option<f64>,
        mut pre_log: Option<&mut Vec<f64>>,
    ) -> f64 {
        if let [Sparse::Normalize { target, .. }, Sparse::Log1p(log1p)] =
            self.sparse_steps.as_slice()
        {
            // The usual chain (normalize → log1p), fused.
            let t = total
                .or_else(|| self.row_total(row, cols, vals))
                .unwrap_or(0.0);
            // A row with no counts over the genes used stays as it is, as
            // scanpy divides only by non-zero totals (excluded genes can
            // hold all of a cell's counts).
            let f = if t == 0.0 { 1.0 } else { target / t };
            if let Some(p) = pre_log {
                p.clear();
                p.extend(vals.iter().map(|v| v * f));
            }
            LOG1P_MEMO.with(|m| m.borrow_mut().apply(vals, f, *log1p));
            return t;
        }
        let mut size = f64::NAN;
        let last_log = self
            .sparse_steps
            .iter()
            .rposition(|s| matches!(s, Sparse::Log1p(_)));
        for (i, s) in self.sparse_steps.iter().enumerate() {
            if Some(i) == last_log {
                if let Some(p) = pre_log.as_deref_mut() {
                    p.clear();
                    p.extend_from_slice(vals);
                }
            }
            match s {
                Sparse::Normalize { target, .. } => {
                    let t = total
                        .or_else(|| self.row_total(row, cols, vals))
                        .unwrap_or(0.0);
                    size = t;
                    let f = if t == 0.0 { 1.0 } else { target / t };
                    vals.iter_mut().for_each(|v| *v *= f);
                }
                Sparse::Log1p(log1p) => vals.iter_mut().for_each(|v| *v = log1p.of(*v)),
            }
        }
        size
    }
}

/// log1p of a transformed value: in float32, as scanpy computes it on
/// float32 data (and about twice as fast as the f64 one).
#[inline]
fn log1p_value(v: f64, inv_ln_base: f64) -> f64 {
    f64::from((v as f32).ln_1p()) * inv_ln_base
}

thread_local! {
    static LOG1P_MEMO: std::cell::RefCell<Log1pMemo> = std::cell::RefCell::new(Log1pMemo::new());
}

/// log1p(x · f) for one row's values, computed once per distinct count x.
/// Counts are small integers that repeat many times within a row (most are
/// 1, 2, 3; ~50 distinct values in a row of ~1,800), so this replaces most
/// log1p calls — the costliest part of a normalize → log1p pass — by a
/// lookup of the identical value.
struct Log1pMemo {
    /// log1p(k · f) for the counts k of the current row.
    values: Vec<f64>,
    /// Counts present in the current row; all zero between rows.
    seen: Vec<u8>,
    /// The current row's counts as slots of `values`.
    slots: Vec<i32>,
    /// For rows that are not all small counts: the row generation each of
    /// the first STAMPED slots of `values` was computed for.
    stamps: Vec<u64>,
    generation: u64,
}

impl Log1pMemo {
    const STAMPED: usize = 256;

    fn new() -> Self {
        Log1pMemo {
            values: vec![0.0; super::SMALL_COUNTS],
            seen: vec![0; super::SMALL_COUNTS],
            slots: Vec::new(),
            stamps: vec![0; Self::STAMPED],
            generation: 0,
        }
    }

    fn apply(&mut self, vals: &mut [f64], f: f64, log1p: Log1p) {
        match super::small_counts_max(vals) {
            Some(max) => self.apply_counts(vals, max, f, log1p),
            None => self.apply_any(vals, f, log1p),
        }
    }

    /// A row of counts below SMALL_COUNTS (`max` the largest) in three
    /// branch-free sweeps: flag the counts present, compute each flagged
    /// one, look every value up. (Testing each value against a per-slot
    /// stamp instead cost ~5 cycles per value: most of an HVG pass's log1p
    /// time.) The same bits as computing each value, except that a stored
    /// −0.0 gives log1p of +0.0.
    fn apply_counts(&mut self, vals: &mut [f64], max: usize, f: f64, log1p: Log1p) {
        // The counts as table slots, converted once, two at a time (SSE2).
        // SAFETY (to_int_unchecked): small_counts_max checked that every
        // value is an integer in 0..SMALL_COUNTS = seen.len() = values.len().
        self.slots.clear();
        self.slots
            .extend(vals.iter().map(|&x| unsafe { x.to_int_unchecked::<i32>() }));
        let (seen, values) = (&mut self.seen[..], &mut self.values[..]);
        for &k in &self.slots {
            seen[k as usize] = 1;
        }
        // The flags of 0..=max, eight at a time; cleared for the next row.
        for (w, flags) in seen[..=max].chunks_mut(8).enumerate() {
            if flags.iter().all(|&b| b == 0) {
                continue;
            }
            for (i, b) in flags.iter_mut().enumerate() {
                if *b != 0 {
                    let k = w * 8 + i;
                    values[k] = log1p.of(k as f64 * f);
                    *b = 0;
                }
            }
        }
        for (v, &k) in vals.iter_mut().zip(&self.slots) {
            *v = values[k as usize];
        }
    }

    /// Any values: small integers memoized per row by stamps, the rest
    /// computed.
    fn apply_any(&mut self, vals: &mut [f64], f: f64, log1p: Log1p) {
        self.generation += 1;
        let g = self.generation;
        for v in vals.iter_mut() {
            let x = *v;
            // The range test (false for NaN) makes the unchecked cast
            // sound; the checked `as` cast costs a dozen instructions.
            let k = if x >= 0.0 && x < Self::STAMPED as f64 {
                // SAFETY: x is finite and in 0..STAMPED.
                unsafe { x.to_int_unchecked::<u32>() as usize }
            } else {
                usize::MAX
            };
            if k != usize::MAX && k as f64 == x {
                if self.stamps[k] != g {
                    self.stamps[k] = g;
                    self.values[k] = log1p.of(x * f);
                }
                *v = self.values[k];
            } else {
                *v = log1p.of(x * f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memoized_log1p_equals_direct() {
        let row = [
            1.0,
            2.0,
            1.0,
            255.0,
            256.0,
            3.5,
            0.0,
            1e9,
            2.0,
            7.0,
            -2.0,
            f64::NAN,
            254.999,
        ];
        let (f, inv) = (1e4 / 12_345.0, 1.0 / 2f64.ln());
        let lg = Log1p {
            inv_ln_base: inv,
            float64: false,
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let direct: Vec<f64> = row.iter().map(|&x| log1p_value(x * f, inv)).collect();
        let mut memo = Log1pMemo::new();
        for scale in [f, 2.0 * f] {
            let mut v = row.to_vec();
            memo.apply(&mut v, scale, lg);
            let want: Vec<f64> = row.iter().map(|&x| log1p_value(x * scale, inv)).collect();
            assert_eq!(bits(&v), bits(&want));
        }
        // A row with a new scale after rows that filled the table: no
        // stale values.
        let mut v = vec![7.0, 1.0];
        memo.apply(&mut v, 3.0 * f, lg);
        assert_eq!(v, [log1p_value(21.0 * f, inv), log1p_value(3.0 * f, inv)]);
        let mut v = row.to_vec();
        memo.apply(&mut v, f, lg);
        assert_eq!(bits(&v), bits(&direct));
        // Rows of counts only (the flag-and-look-up path), alternating with
        // rows of any values: the paths share the table, and no value
        // computed for one row is used for another.
        let counts = [
            1.0, 2.0, 1.0, 0.0, 7.0, 8.0, 9.0, 4095.0, 255.0, 256.0, 2.0, 63.0, 64.0, 1.0,
        ];
        for (i, scale) in [f, 3.0 * f, 0.5 * f, f].into_iter().enumerate() {
            let mut v = counts.to_vec();
            memo.apply(&mut v, scale, lg);
            let want: Vec<f64> = counts
                .iter()
                .map(|&x| log1p_value(x * scale, inv))
                .collect();
            assert_eq!(bits(&v), bits(&want), "counts row {i}");
            let mut v = row.to_vec();
            memo.apply(&mut v, scale, lg);
            let want: Vec<f64> = row.iter().map(|&x| log1p_value(x * scale, inv)).collect();
            assert_eq!(bits(&v), bits(&want), "any row {i}");
        }
        // 4096 leaves the counts path; −0.0 stays on it, as a count of 0.
        for odd in [4096.0, -0.0] {
            let mut v = vec![1.0, odd, 0.0, 2.0];
            memo.apply(&mut v, f, lg);
            let want: Vec<f64> = [1.0, odd.abs(), 0.0, 2.0]
                .iter()
                .map(|&x| log1p_value(x * f, inv))
                .collect();
            assert_eq!(bits(&v), bits(&want), "row with {odd}");
        }
    }

    #[test]
    fn float64_log1p_is_computed_in_float64_through_the_memo() {
        let lg = Log1p {
            inv_ln_base: 1.0,
            float64: true,
        };
        let f = 1e4 / 777.0;
        let mut memo = Log1pMemo::new();
        for row in [vec![1.0, 2.0, 1.0, 0.0, 9.0], vec![1.0, 2.5, 300.0, 1.0]] {
            let mut v = row.clone();
            memo.apply(&mut v, f, lg);
            let want: Vec<f64> = row.iter().map(|&x| (x * f).ln_1p()).collect();
            assert_eq!(v, want);
            // Not the float32 value scanpy gives float32 data.
            assert_ne!(v[0], log1p_value(f, 1.0));
        }
    }
}
