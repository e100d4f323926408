//! Runs a compiled plan over blocks and feeds row accumulators. A block's
//! rows are split evenly into parts, part i feeding persistent partial i of
//! every accumulator (see PlanPass::new for how many); partials merge once
//! when the pass ends.

use super::plan::Compiled;
use super::select::select_row;
use crate::dtype::Values;
use crate::error::{Error, Result};
use crate::matrix::{Block, BlockData};
use crate::pass::{Accumulator, Rows};
use crate::with_values;
use rayon::prelude::*;
use std::any::Any;

/// Per-thread state of an accumulator.
pub trait RowPartial: Send {
    /// One transformed row: `row` is its position in the selection, `cols`
    /// the gene positions of its stored values `vals`.
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]);
    /// With the row's values before the chain's last log1p as well (for
    /// statistics scanpy takes on expm1 of log data). Defaults to add_row.
    fn add_row_pre(&mut self, row: usize, cols: &[u32], vals: &[f64], _pre_log: &[f64]) {
        self.add_row(row, cols, vals)
    }
    /// Called on each partial after its part of every block.
    fn end_block(&mut self) {}
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// A statistic taken in a plan pass.
pub trait RowAccumulator: Send {
    fn partial(&self) -> Box<dyn RowPartial>;
    /// Fold the partials in (in order) at the end of the pass.
    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()>;
    /// Named output arrays.
    fn outputs(&mut self) -> Vec<(String, Vec<f64>)>;
    /// Large outputs kept in single precision (e.g. X_pca).
    fn outputs_f32(&mut self) -> Vec<(String, Vec<f32>)> {
        vec![]
    }
    /// Bytes of the table a partial scatters into for every row (what must
    /// stay in a core's cache); unknown by default.
    fn hot_bytes(&self) -> usize {
        usize::MAX
    }
}

/// Partials per thread when a pass's tables are small (see PlanPass::new).
const SPLIT: usize = 4;
/// "Small": well inside a core's L2 cache (1 MB here), as a thread
/// alternates between its partials' tables. QC's 270 KB table gained from
/// the split; HVG's 960 KB moments table lost (1M cells: 4.1 → 4.3-5.5 s).
const SMALL_TABLE_BYTES: usize = 512 << 10;

/// Per-row values written by thread partials, scattered at the end.
#[derive(Default)]
pub struct RowValues {
    pub rows: Vec<u32>,
    pub values: Vec<f64>,
}

impl RowValues {
    pub fn scatter(
        parts: impl IntoIterator<Item = RowValues>,
        n_rows: usize,
        width: usize,
    ) -> Vec<Vec<f64>> {
        let mut out = vec![vec![f64::NAN; n_rows]; width];
        for p in parts {
            for (k, &r) in p.rows.iter().enumerate() {
                for (w, col) in out.iter_mut().enumerate() {
                    col[r as usize] = p.values[k * width + w];
                }
            }
        }
        out
    }
}

/// Named outputs of a plan pass.
#[derive(Default)]
pub struct PassOutputs {
    pub f64: Vec<(String, Vec<f64>)>,
    pub f32: Vec<(String, Vec<f32>)>,
}

pub struct PlanPass {
    plan: Compiled,
    /// Some accumulator reads pre-log values (see add_row_pre).
    pub want_pre_log: bool,
    pub accumulators: Vec<Box<dyn RowAccumulator>>,
    partials: Vec<Vec<Box<dyn RowPartial>>>,
    sizes: Vec<f64>,
}

impl PlanPass {
    /// One partial per part of a block: a block's rows are split into as
    /// many parts as there are partials, part i always going to partial i,
    /// so every sum is taken in the same order whatever thread runs it
    /// (results do not depend on scheduling).
    ///
    /// With small tables there are SPLIT partials per thread. The reader
    /// thread shares the cores with the workers: with one part per thread,
    /// a worker whose core ran the reader finished its part late while the
    /// other waited idle at the block's end. Smaller parts let rayon move
    /// the late worker's remaining parts to the idle one (1M-cell QC pass
    /// ~10 % faster). Large tables (HVG moments of all genes, the Gram
    /// triangle) keep one partial per thread: alternating between several
    /// evicts them from cache, which cost more than the idle time saved.
    pub fn new(plan: Compiled, accumulators: Vec<Box<dyn RowAccumulator>>, n_rows: usize) -> Self {
        let hot = accumulators
            .iter()
            .map(|a| a.hot_bytes())
            .fold(0usize, usize::saturating_add);
        let split = if hot <= SMALL_TABLE_BYTES { SPLIT } else { 1 };
        let parts = rayon::current_num_threads().max(1) * split;
        let partials = (0..parts)
            .map(|_| accumulators.iter().map(|a| a.partial()).collect())
            .collect();
        PlanPass {
            plan,
            accumulators,
            partials,
            sizes: vec![f64::NAN; n_rows],
            want_pre_log: false,
        }
    }

    /// Merge partials and collect every accumulator's outputs, plus the
    /// per-row size factors of the normalize step ("size_factors").
    pub fn finish(mut self) -> Result<PassOutputs> {
        let mut by_acc: Vec<Vec<Box<dyn Any>>> =
            (0..self.accumulators.len()).map(|_| Vec::new()).collect();
        for thread in self.partials.drain(..) {
            for (i, p) in thread.into_iter().enumerate() {
                by_acc[i].push(p.into_any());
            }
        }
        let mut out = PassOutputs {
            f64: vec![("size_factors".to_string(), std::mem::take(&mut self.sizes))],
            f32: vec![],
        };
        for (acc, parts) in self.accumulators.iter_mut().zip(by_acc) {
            acc.merge(parts)?;
            out.f64.extend(acc.outputs());
            out.f32.extend(acc.outputs_f32());
        }
        Ok(out)
    }
}

/// A block's rows as (indptr, indices, values); dense blocks have neither
/// indptr nor indices (row k spans k·width..(k+1)·width).
pub(crate) fn block_view(block: &Block) -> (Option<&[i64]>, Option<&[i32]>, &Values) {
    match &block.data {
        BlockData::Compressed {
            indptr,
            indices,
            values,
        } => (Some(indptr), Some(indices), values),
        BlockData::Dense { values } => (None, None, values),
    }
}

/// Stored-value range of row `k` of a block viewed by block_view.
#[inline]
pub(crate) fn row_range(indptr: Option<&[i64]>, width: usize, k: usize) -> std::ops::Range<usize> {
    match indptr {
        Some(p) => p[k] as usize..p[k + 1] as usize,
        None => k * width..(k + 1) * width,
    }
}

#[allow(clippy::unnecessary_cast)]
pub(crate) fn row_to_f64(values: &Values, range: std::ops::Range<usize>, out: &mut Vec<f64>) {
    out.clear();
    with_values!(values, v => out.extend(v[range].iter().map(|&x| x as f64)));
}

impl Accumulator for PlanPass {
    #[allow(clippy::unnecessary_cast)]
    fn consume(&mut self, block: &Block, rows: Rows<'_>) -> Result<()> {
        let n_b = block.n_major;
        let width = block.n_minor;
        let (indptr, indices, values) = block_view(block);
        let all_cols: Vec<u32> = if indices.is_none() {
            (0..width as u32).collect()
        } else {
            vec![]
        };
        let parts = self.partials.len();
        let per = n_b.div_ceil(parts).max(1);
        let plan = &self.plan;
        let want_pre = self.want_pre_log && plan.has_log1p();
        // Narrow a row to the output genes while converting it, when the
        // chain does not need the whole row for its totals.
        let select_first = plan.output.is_some() && !plan.needs_row_totals() && indices.is_some();
        // select_row indexes the map by column unchecked.
        if plan.output.as_ref().is_some_and(|m| m.len() < width) {
            return Err(Error::internal("plan output map narrower than the block"));
        }
        let sizes: Vec<Vec<f64>> = self
            .partials
            .par_iter_mut()
            .enumerate()
            .map(|(t, accs)| {
                let (a, b) = ((t * per).min(n_b), ((t + 1) * per).min(n_b));
                let mut vals = Vec::new();
                let mut out_cols: Vec<u32> = Vec::new();
                let (mut sel_cols, mut sel_vals): (Vec<u32>, Vec<f64>) = (vec![], vec![]);
                let mut pre: Vec<f64> = Vec::new();
                let mut sizes = Vec::with_capacity(b - a);
                for k in a..b {
                    let range = row_range(indptr, width, k);
                    let row = rows.at(k);
                    if let (true, Some(map), Some(ix)) = (select_first, &plan.output, indices) {
                        let n = select_row(
                            map,
                            &ix[range.clone()],
                            values,
                            range,
                            &mut sel_cols,
                            &mut sel_vals,
                        );
                        let (cols, vals) = (&sel_cols[..n], &mut sel_vals[..n]);
                        let capture = want_pre.then_some(&mut pre);
                        let total = plan.row_total(row, &[], &[]);
                        sizes.push(plan.eval_row_with(row, cols, vals, total, capture));
                        for acc in accs.iter_mut() {
                            if want_pre {
                                acc.add_row_pre(row, cols, vals, &pre);
                            } else {
                                acc.add_row(row, cols, vals);
                            }
                        }
                        continue;
                    }
                    row_to_f64(values, range.clone(), &mut vals);
                    let cols_ref: &[u32] = match indices {
                        // Validated to 0..n_minor when the block was read,
                        // so the same bits as u32: no copy.
                        Some(ix) => bytemuck::cast_slice(&ix[range]),
                        None => &all_cols,
                    };
                    let cols_out: &[u32] = if plan.output.is_some() {
                        // Total over the whole row first, then narrow to the
                        // output genes, then transform only those.
                        let total = plan.row_total(row, cols_ref, &vals);
                        out_cols.clear();
                        out_cols.extend_from_slice(cols_ref);
                        plan.select(&mut out_cols, &mut vals, None);
                        let capture = want_pre.then_some(&mut pre);
                        sizes.push(plan.eval_row_with(row, &out_cols, &mut vals, total, capture));
                        &out_cols
                    } else {
                        let capture = want_pre.then_some(&mut pre);
                        sizes.push(plan.eval_row_capture(row, cols_ref, &mut vals, capture));
                        cols_ref
                    };
                    for acc in accs.iter_mut() {
                        if want_pre {
                            acc.add_row_pre(row, cols_out, &vals, &pre);
                        } else {
                            acc.add_row(row, cols_out, &vals);
                        }
                    }
                }
                for acc in accs.iter_mut() {
                    acc.end_block();
                }
                sizes
            })
            .collect();
        let mut k = 0;
        for size in sizes.iter().flatten() {
            self.sizes[rows.at(k)] = *size;
            k += 1;
        }
        if k != n_b {
            return Err(Error::internal("plan pass lost rows"));
        }
        Ok(())
    }

    /// Every statistic lands by row position or is a sum over rows.
    fn any_order(&self) -> bool {
        true
    }
}
