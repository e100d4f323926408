//! Sum, sum of squares and non-zero count per row and per column of a
//! transformed matrix (`adata.X.sum(1)` after normalize, `X.var(0)` after
//! scale), in one plan pass.
//!
//! With scaling, every gene's zero becomes z0_j = f_j(0), so a row's values
//! are z0 plus a difference at its stored entries only (as in gram.rs):
//!     Σ_j z_ij   = Σ_j z0_j   + Σ_stored (z_ij − z0_j)
//!     Σ_j z_ij²  = Σ_j z0_j²  + Σ_stored (z_ij² − z0_j²)
//!     #(z_ij ≠ 0) = #(z0_j ≠ 0) + Σ_stored ([z_ij ≠ 0] − [z0_j ≠ 0])
//! and a column's sums are n·z0_j plus the same differences, so the pass
//! stays O(stored values) with the implicit zeros counted exactly.

use super::plan::Scaling;
use super::runner::{RowAccumulator, RowPartial, RowValues};
use crate::error::{Error, Result};
use std::any::Any;

pub struct ChainStats {
    rows: bool,
    cols: bool,
    n_rows: usize,
    n_cols: usize,
    scaling: Option<Scaling>,
    per_row: Vec<Vec<f64>>,
    /// Per column: Σ (z − z0), Σ (z² − z0²), Σ ([z ≠ 0] − [z0 ≠ 0]).
    per_col: Vec<[f64; 3]>,
    n: f64,
}

impl ChainStats {
    pub fn new(
        rows: bool,
        cols: bool,
        n_rows: usize,
        n_cols: usize,
        scaling: Option<Scaling>,
    ) -> Self {
        ChainStats {
            rows,
            cols,
            n_rows,
            n_cols,
            scaling,
            per_row: vec![],
            per_col: vec![],
            n: 0.0,
        }
    }

    fn z0(&self) -> Vec<f64> {
        (0..self.n_cols)
            .map(|j| self.scaling.as_ref().map_or(0.0, |s| s.apply(j, 0.0)))
            .collect()
    }
}

struct Partial {
    rows: bool,
    cols: bool,
    scaling: Option<Scaling>,
    z0: Vec<f64>,
    /// Row sums of z0, z0² and [z0 ≠ 0]: every row's base.
    base: [f64; 3],
    per_row: RowValues,
    per_col: Vec<[f64; 3]>,
    n: f64,
}

impl RowPartial for Partial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        self.n += 1.0;
        let mut d = [0.0; 3];
        for (&j, &x) in cols.iter().zip(vals) {
            let j = j as usize;
            let z = self.scaling.as_ref().map_or(x, |s| s.apply(j, x));
            let z0 = self.z0[j];
            let e = [
                z - z0,
                z * z - z0 * z0,
                f64::from(u8::from(z != 0.0)) - f64::from(u8::from(z0 != 0.0)),
            ];
            if self.cols {
                let c = &mut self.per_col[j];
                (0..3).for_each(|q| c[q] += e[q]);
            }
            (0..3).for_each(|q| d[q] += e[q]);
        }
        if self.rows {
            self.per_row.rows.push(row as u32);
            self.per_row
                .values
                .extend((0..3).map(|q| self.base[q] + d[q]));
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for ChainStats {
    fn partial(&self) -> Box<dyn RowPartial> {
        let z0 = self.z0();
        let base = z0.iter().fold([0.0; 3], |b, &z| {
            [b[0] + z, b[1] + z * z, b[2] + f64::from(u8::from(z != 0.0))]
        });
        Box::new(Partial {
            rows: self.rows,
            cols: self.cols,
            scaling: self.scaling.clone(),
            z0,
            base,
            per_row: RowValues::default(),
            per_col: if self.cols {
                vec![[0.0; 3]; self.n_cols]
            } else {
                vec![]
            },
            n: 0.0,
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        self.per_col = vec![[0.0; 3]; if self.cols { self.n_cols } else { 0 }];
        let mut rows = Vec::new();
        for p in parts {
            let p = p
                .downcast::<Partial>()
                .map_err(|_| Error::internal("chain stats partial"))?;
            self.n += p.n;
            for (a, b) in self.per_col.iter_mut().zip(&p.per_col) {
                (0..3).for_each(|q| a[q] += b[q]);
            }
            rows.push(p.per_row);
        }
        if self.rows {
            self.per_row = RowValues::scatter(rows, self.n_rows, 3);
        }
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        let mut out = Vec::new();
        let names = ["sum", "sumsq", "nnz"];
        for (name, col) in names.iter().zip(std::mem::take(&mut self.per_row)) {
            out.push((format!("stats.row_{name}"), col));
        }
        if self.cols {
            let z0 = self.z0();
            let n = self.n;
            let base = |j: usize, q: usize| match q {
                0 => n * z0[j],
                1 => n * z0[j] * z0[j],
                _ => n * f64::from(u8::from(z0[j] != 0.0)),
            };
            for (q, name) in names.iter().enumerate() {
                let col = (0..self.n_cols)
                    .map(|j| base(j, q) + self.per_col[j][q])
                    .collect();
                out.push((format!("stats.col_{name}"), col));
            }
        }
        out
    }

    fn hot_bytes(&self) -> usize {
        if self.cols {
            self.n_cols * 24
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_zeros_of_a_scaled_matrix_are_counted() {
        // Two genes, means 1 and 2, std 1 and 2, clipped at 10; rows
        // [0, 4] and [3, 0] stored sparsely.
        let scaling = Scaling {
            mean: vec![1.0, 2.0],
            std: vec![1.0, 2.0],
            max_value: Some(10.0),
            zero_center: true,
        };
        let mut acc = ChainStats::new(true, true, 2, 2, Some(scaling));
        let mut p = acc.partial();
        p.add_row(1, &[0], &[3.0]);
        p.add_row(0, &[1], &[4.0]);
        acc.merge(vec![p.into_any()]).unwrap();
        let out: std::collections::HashMap<_, _> = acc.outputs().into_iter().collect();
        // Dense scaled rows: row 0 = [-1, 1], row 1 = [2, -1].
        assert_eq!(out["stats.row_sum"], vec![0.0, 1.0]);
        assert_eq!(out["stats.row_sumsq"], vec![2.0, 5.0]);
        assert_eq!(out["stats.row_nnz"], vec![2.0, 2.0]);
        assert_eq!(out["stats.col_sum"], vec![1.0, 0.0]);
        assert_eq!(out["stats.col_sumsq"], vec![5.0, 2.0]);
        assert_eq!(out["stats.col_nnz"], vec![2.0, 2.0]);
    }
}
