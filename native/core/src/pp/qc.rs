//! scanpy's calculate_qc_metrics in one pass. Per row: total, genes with
//! counts > 0, totals over each gene mask (qc_vars), and the summed top-N
//! values for every N in percent_top. Per gene: cells with counts > 0 and
//! the total. Percentages and log1p variants are derived by the caller.

use super::runner::{RowAccumulator, RowPartial, RowValues};
use crate::error::Result;
use std::any::Any;

pub struct Qc {
    masks: Vec<Vec<bool>>,
    /// Ascending.
    top: Vec<usize>,
    n_rows: usize,
    n_cols: usize,
    per_row: Vec<Vec<f64>>,
    n_cells: Vec<f64>,
    gene_total: Vec<f64>,
}

impl Qc {
    pub fn new(masks: Vec<Vec<bool>>, mut top: Vec<usize>, n_rows: usize, n_cols: usize) -> Self {
        top.sort_unstable();
        top.dedup();
        Qc {
            masks,
            top,
            n_rows,
            n_cols,
            per_row: vec![],
            n_cells: vec![],
            gene_total: vec![],
        }
    }

    fn width(&self) -> usize {
        2 + self.masks.len() + self.top.len()
    }
}

struct QcPartial {
    masks: Vec<Vec<bool>>,
    /// Bit m set for genes in mask m (when there are at most 8 masks: one
    /// byte per gene keeps the table in L1).
    mask_bits: Option<Vec<u8>>,
    top: Vec<usize>,
    rows: RowValues,
    /// (cells with counts > 0, total) per gene, interleaved: one cache
    /// line per stored value.
    per_gene: Vec<[f64; 2]>,
    /// The same for rows of small integer counts, packed in one u64 per
    /// gene (total << 32 | cells): one integer add per stored value into a
    /// table half the size. Folded into per_gene before either field could
    /// overflow (see add_counts) and when the pass ends.
    packed: Vec<u64>,
    /// Counts and rows added to `packed` since it was last folded.
    packed_total: f64,
    packed_rows: u64,
    scratch: Vec<f64>,
    histogram: Vec<u32>,
    mask_sums: Vec<f64>,
}

/// The per-gene scatter of one row: `add` updates gene j's slot of `table`
/// with its value x; with gene sets (`bits`, bit m for set m), x is also
/// added to the row's total of each set holding j (gene-set genes are rare,
/// so that branch is predicted). Slices are passed rather than `self`:
/// through `self`, every store made the loop reload each vector's pointer.
#[inline(always)]
fn scatter_row<T>(
    table: &mut [T],
    bits: Option<&[u8]>,
    mask_sums: &mut [f64],
    cols: &[u32],
    vals: &[f64],
    add: impl Fn(&mut T, f64),
) {
    match bits {
        Some(bits) => {
            let bits = &bits[..table.len()];
            for (&j, &x) in cols.iter().zip(vals) {
                add(&mut table[j as usize], x);
                let mut b = bits[j as usize];
                while b != 0 {
                    mask_sums[b.trailing_zeros() as usize] += x;
                    b &= b - 1;
                }
            }
        }
        None => {
            for (&j, &x) in cols.iter().zip(vals) {
                add(&mut table[j as usize], x);
            }
        }
    }
}

impl QcPartial {
    /// A row of any values, into the f64 table.
    fn add_values(&mut self, cols: &[u32], vals: &[f64]) {
        let add = |g: &mut [f64; 2], x: f64| {
            g[0] += f64::from(u8::from(x > 0.0));
            g[1] += x;
        };
        let bits = self.mask_bits.as_deref();
        scatter_row(
            &mut self.per_gene,
            bits,
            &mut self.mask_sums,
            cols,
            vals,
            add,
        );
    }

    /// A row that small_counts_max passed (every value an integer in
    /// 0..SMALL_COUNTS), into the packed table.
    fn add_counts(&mut self, cols: &[u32], vals: &[f64], total: f64) {
        // A gene's packed total is at most the counts added since the last
        // fold, and its cell count at most the rows: fold before either
        // could pass 32 bits.
        if self.packed_total + total > f64::from(u32::MAX)
            || self.packed_rows == u64::from(u32::MAX)
        {
            self.fold_packed();
        }
        self.packed_total += total;
        self.packed_rows += 1;
        let add = |g: &mut u64, x: f64| {
            // SAFETY: small_counts_max checked every value of the row.
            let c = u64::from(unsafe { x.to_int_unchecked::<u32>() });
            *g += (c << 32) | u64::from(c != 0);
        };
        let bits = self.mask_bits.as_deref();
        scatter_row(&mut self.packed, bits, &mut self.mask_sums, cols, vals, add);
    }

    /// Move the packed table's counts into per_gene (exact: integers).
    fn fold_packed(&mut self) {
        if self.packed_rows == 0 {
            return;
        }
        for (g, p) in self.per_gene.iter_mut().zip(self.packed.iter_mut()) {
            g[0] += (*p & 0xffff_ffff) as f64;
            g[1] += (*p >> 32) as f64;
            *p = 0;
        }
        self.packed_total = 0.0;
        self.packed_rows = 0;
    }
}

impl RowPartial for QcPartial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        let total = super::row_sum(vals);
        // Whether the row holds only small integer counts (for the packed
        // scatter and the top-N histogram).
        let small = super::small_counts_max(vals);
        let (counts, max) = (small.is_some(), small.unwrap_or(0));
        self.mask_sums.iter_mut().for_each(|s| *s = 0.0);
        if counts {
            self.add_counts(cols, vals, total);
        } else {
            self.add_values(cols, vals);
        }
        let n_genes = vals.iter().map(|&x| usize::from(x > 0.0)).sum::<usize>();
        self.rows.rows.push(row as u32);
        self.rows.values.push(total);
        self.rows.values.push(n_genes as f64);
        if self.mask_bits.is_some() {
            self.rows.values.extend_from_slice(&self.mask_sums);
        } else {
            for m in &self.masks {
                let s: f64 = cols
                    .iter()
                    .zip(vals)
                    .filter(|(&j, _)| m[j as usize])
                    .map(|(_, &x)| x)
                    .sum();
                self.rows.values.push(s);
            }
        }
        if !self.top.is_empty() {
            let sums = if counts {
                top_sums_of_counts(vals, max, &self.top, &mut self.histogram, &mut self.scratch)
            } else {
                top_sums_by_selection(vals, &self.top, &mut self.scratch)
            };
            self.rows.values.extend_from_slice(&sums);
        }
    }

    fn into_any(mut self: Box<Self>) -> Box<dyn Any> {
        self.fold_packed();
        self
    }
}

impl RowAccumulator for Qc {
    /// The packed table (rows of counts); other rows use per_gene, twice
    /// the size.
    fn hot_bytes(&self) -> usize {
        self.n_cols * std::mem::size_of::<u64>() + self.masks.len().min(1) * self.n_cols
    }

    fn partial(&self) -> Box<dyn RowPartial> {
        let n_masks = self.masks.len();
        let mask_bits = (n_masks > 0 && n_masks <= 8).then(|| {
            (0..self.n_cols)
                .map(|j| {
                    self.masks
                        .iter()
                        .enumerate()
                        .fold(0u8, |b, (i, m)| b | (u8::from(m[j]) << i))
                })
                .collect()
        });
        Box::new(QcPartial {
            masks: self.masks.clone(),
            mask_bits,
            mask_sums: vec![0.0; n_masks],
            histogram: Vec::new(),
            top: self.top.clone(),
            rows: RowValues::default(),
            per_gene: vec![[0.0; 2]; self.n_cols],
            packed: vec![0; self.n_cols],
            packed_total: 0.0,
            packed_rows: 0,
            scratch: Vec::new(),
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        self.n_cells = vec![0.0; self.n_cols];
        self.gene_total = vec![0.0; self.n_cols];
        let mut rows = Vec::new();
        for p in parts {
            let p = p.downcast::<QcPartial>().expect("qc partial");
            for j in 0..self.n_cols {
                self.n_cells[j] += p.per_gene[j][0];
                self.gene_total[j] += p.per_gene[j][1];
            }
            rows.push(p.rows);
        }
        self.per_row = RowValues::scatter(rows, self.n_rows, self.width());
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        let mut cols = std::mem::take(&mut self.per_row).into_iter();
        let mut out = vec![
            (
                "qc.total_counts".to_string(),
                cols.next().unwrap_or_default(),
            ),
            (
                "qc.n_genes_by_counts".to_string(),
                cols.next().unwrap_or_default(),
            ),
        ];
        for i in 0..self.masks.len() {
            out.push((
                format!("qc.mask_total.{i}"),
                cols.next().unwrap_or_default(),
            ));
        }
        for n in &self.top {
            out.push((format!("qc.top.{n}"), cols.next().unwrap_or_default()));
        }
        out.push((
            "qc.n_cells_by_counts".into(),
            std::mem::take(&mut self.n_cells),
        ));
        out.push((
            "qc.gene_total_counts".into(),
            std::mem::take(&mut self.gene_total),
        ));
        out
    }
}

/// Histogram slots: values at or above HIST_SLOTS - 1 share the last slot
/// and are listed exactly instead (a few per row), so a row's histogram
/// work does not grow with its largest count.
const HIST_SLOTS: usize = 256;

/// Sum of the N largest values for each N in `top` (ascending) of a row of
/// small integer counts (`max` its largest): a histogram walked from the
/// top down, O(row + HIST_SLOTS) instead of a selection per N. Integer
/// sums, so exactly the selection's result.
fn top_sums_of_counts(
    vals: &[f64],
    max: usize,
    top: &[usize],
    hist: &mut Vec<u32>,
    big: &mut Vec<f64>,
) -> Vec<f64> {
    let w = (max + 1).min(HIST_SLOTS);
    let last = (w - 1) as u32;
    // Four interleaved histograms: most counts are 1 or 2, and increments of
    // one slot in a row wait on each other.
    hist.clear();
    hist.resize(4 * w, 0);
    // SAFETY (to_int_unchecked): small_counts_max checked that every value
    // is an integer in 0..SMALL_COUNTS.
    let slot = |x: f64| unsafe { x.to_int_unchecked::<u32>() }.min(last) as usize;
    let mut quads = vals.chunks_exact(4);
    for q in &mut quads {
        for (lane, &x) in q.iter().enumerate() {
            hist[lane * w + slot(x)] += 1;
        }
    }
    for &x in quads.remainder() {
        hist[slot(x)] += 1;
    }
    for lane in 1..4 {
        for v in 0..w {
            hist[v] += hist[lane * w + v];
        }
    }
    // The last slot's values, exactly, largest first (when it is shared).
    big.clear();
    if max >= w {
        big.extend(vals.iter().copied().filter(|&x| x >= f64::from(last)));
        big.sort_unstable_by(|a, b| b.total_cmp(a));
        hist[w - 1] = 0;
    }
    let mut sums = vec![0.0; top.len()];
    let (mut next, mut taken, mut sum) = (0, 0usize, 0.0);
    let listed = big.iter().map(|&x| (x, 1usize));
    let binned = hist[..w]
        .iter()
        .enumerate()
        .rev()
        .map(|(value, &count)| (value as f64, count as usize));
    for (value, count) in listed.chain(binned) {
        while next < top.len() && taken + count >= top[next] {
            sums[next] = sum + (top[next] - taken) as f64 * value;
            next += 1;
        }
        taken += count;
        sum += count as f64 * value;
    }
    // N beyond the row's stored values: all of them.
    sums[next..].iter_mut().for_each(|s| *s = sum);
    sums
}

/// The same for any values. Only sums of the N largest are needed, not their
/// order: select the largest N for each N from the largest down, each
/// selection working inside the previous one's prefix (no sort).
fn top_sums_by_selection(vals: &[f64], top: &[usize], s: &mut Vec<f64>) -> Vec<f64> {
    s.clear();
    s.extend_from_slice(vals);
    let desc = |a: &f64, b: &f64| b.total_cmp(a);
    let mut sums = vec![0.0; top.len()];
    let mut end = s.len();
    for (i, &n) in top.iter().enumerate().rev() {
        if n < end {
            s[..end].select_nth_unstable_by(n - 1, desc);
            end = n;
        }
        sums[i] = s[..end.min(n)].iter().sum();
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qc_row(masks: Vec<Vec<bool>>, cols: &[u32], vals: &[f64]) -> Vec<f64> {
        let mut qc = Qc::new(masks, vec![1, 2, 3, 5, 50], 1, 6);
        let mut part = qc.partial();
        part.add_row(0, cols, vals);
        qc.merge(vec![part.into_any()]).unwrap();
        qc.outputs()
            .into_iter()
            .take(2 + 2 + 5)
            .map(|(_, v)| v[0])
            .collect()
    }

    #[test]
    fn top_sums_and_masks_equal_the_direct_computation() {
        let masks = vec![
            vec![true, false, false, true, false, false],
            vec![false, true, true, true, false, false],
        ];
        let cols = [0u32, 1, 2, 3, 4, 5];
        for vals in [
            [3.0, 1.0, 1.0, 7.0, 0.0, 2.0],
            [1.0; 6],
            [0.5, 2.25, 9.0, 1.0, 4.0, 4.0],
            [5000.0, 2.0, 1.0, 0.0, 0.0, 3.0],
            // Counts at and past the histogram's last slot (listed exactly).
            [300.0, 255.0, 1000.0, 2.0, 255.0, 1.0],
            [254.0, 255.0, 256.0, 0.0, 4095.0, 254.0],
        ] {
            let got = qc_row(masks.clone(), &cols, &vals);
            let mut sorted = vals.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let top = |n: usize| sorted.iter().take(n).sum::<f64>();
            let mask = |m: &[bool]| {
                cols.iter()
                    .zip(&vals)
                    .filter(|(&j, _)| m[j as usize])
                    .map(|(_, &x)| x)
                    .sum::<f64>()
            };
            let n_genes = vals.iter().filter(|&&x| x > 0.0).count() as f64;
            let want = [
                vals.iter().sum(),
                n_genes,
                mask(&masks[0]),
                mask(&masks[1]),
                top(1),
                top(2),
                top(3),
                top(5),
                top(50),
            ];
            assert_eq!(got, want, "row {vals:?}");
        }
    }

    #[test]
    fn packed_gene_counts_fold_before_they_overflow() {
        // Gene 0 takes 4095 per row: its total passes 2^32 after ~1.05M
        // rows, so the packed table must fold at least once. Rows of
        // non-integers (the f64 path) are mixed in.
        let rows = (1usize << 32) / 4095 + 1000;
        let mut qc = Qc::new(vec![vec![true, false, false]], vec![1], rows + 2, 3);
        let mut part = qc.partial();
        for r in 0..rows {
            part.add_row(r, &[0, 2], &[4095.0, 1.0]);
        }
        part.add_row(rows, &[0, 1], &[0.5, 2.0]);
        part.add_row(rows + 1, &[1, 2], &[0.0, 3.0]);
        qc.merge(vec![part.into_any()]).unwrap();
        let out: std::collections::HashMap<String, Vec<f64>> = qc.outputs().into_iter().collect();
        let total = out["qc.gene_total_counts"].clone();
        let cells = out["qc.n_cells_by_counts"].clone();
        assert!(4095.0 * rows as f64 > f64::from(u32::MAX));
        assert_eq!(total, [4095.0 * rows as f64 + 0.5, 2.0, rows as f64 + 3.0]);
        assert_eq!(cells, [rows as f64 + 1.0, 1.0, rows as f64 + 1.0]);
        assert_eq!(out["qc.mask_total.0"][rows - 1], 4095.0);
        assert_eq!(out["qc.mask_total.0"][rows], 0.5);
    }

    #[test]
    fn more_masks_than_the_bitset_holds_use_the_direct_sums() {
        // Nine masks: past the 8-bit table, so the per-mask loop runs.
        let masks: Vec<Vec<bool>> = (0..9)
            .map(|m| (0..6).map(|j| (j + m) % 3 == 0).collect())
            .collect();
        let cols = [0u32, 1, 2, 3, 4, 5];
        let vals = [3.0, -1.0, 1.5, 7.0, 0.0, 2.0];
        let mut qc = Qc::new(masks.clone(), vec![2], 1, 6);
        let mut part = qc.partial();
        part.add_row(0, &cols, &vals);
        qc.merge(vec![part.into_any()]).unwrap();
        let out = qc.outputs();
        for (m, mask) in masks.iter().enumerate() {
            let want: f64 = (0..6).filter(|&j| mask[j]).map(|j| vals[j]).sum();
            assert_eq!(out[2 + m].1[0], want, "mask {m}");
        }
        // Not all small integers: the top-2 sum comes from selection.
        assert_eq!(out[2 + 9].1[0], 10.0);
    }
}
