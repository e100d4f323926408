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
    top: Vec<usize>,
    rows: RowValues,
    n_cells: Vec<f64>,
    gene_total: Vec<f64>,
    scratch: Vec<f64>,
}

impl RowPartial for QcPartial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        let mut total = 0.0;
        let mut n_genes = 0.0;
        for (&j, &x) in cols.iter().zip(vals) {
            total += x;
            if x > 0.0 {
                n_genes += 1.0;
                self.n_cells[j as usize] += 1.0;
            }
            self.gene_total[j as usize] += x;
        }
        self.rows.rows.push(row as u32);
        self.rows.values.push(total);
        self.rows.values.push(n_genes);
        for m in &self.masks {
            let s: f64 = cols
                .iter()
                .zip(vals)
                .filter(|(&j, _)| m[j as usize])
                .map(|(_, &x)| x)
                .sum();
            self.rows.values.push(s);
        }
        if !self.top.is_empty() {
            // Only sums of the N largest are needed, not their order: select
            // the largest N for each N from the largest down, each selection
            // working inside the previous one's prefix (O(row) overall, no sort).
            let s = &mut self.scratch;
            s.clear();
            s.extend_from_slice(vals);
            let desc = |a: &f64, b: &f64| b.total_cmp(a);
            let mut sums = vec![0.0; self.top.len()];
            let mut end = s.len();
            for (i, &n) in self.top.iter().enumerate().rev() {
                if n < end {
                    s[..end].select_nth_unstable_by(n - 1, desc);
                    end = n;
                }
                sums[i] = s[..end.min(n)].iter().sum();
            }
            self.rows.values.extend_from_slice(&sums);
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for Qc {
    fn partial(&self) -> Box<dyn RowPartial> {
        Box::new(QcPartial {
            masks: self.masks.clone(),
            top: self.top.clone(),
            rows: RowValues::default(),
            n_cells: vec![0.0; self.n_cols],
            gene_total: vec![0.0; self.n_cols],
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
                self.n_cells[j] += p.n_cells[j];
                self.gene_total[j] += p.gene_total[j];
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
