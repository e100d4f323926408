//! Densify a (small) selected submatrix in one pass: used for a gene's
//! values across all cells (obsVector) or a cell's across genes (varVector).

use crate::error::Result;
use crate::matrix::{Block, BlockData};
use crate::pass::{Accumulator, Rows};

/// Output is row-major over (rows, cols) of the selection. `transposed`
/// says the stored majors are the selection's columns (CSC).
pub struct Gather {
    pub values: Vec<f64>,
    pub n_rows: usize,
    pub n_cols: usize,
    transposed: bool,
}

impl Gather {
    pub fn new(n_rows: usize, n_cols: usize, transposed: bool) -> Result<Self> {
        crate::limits::check_work(
            &format!("gathering {n_cols} columns of {n_rows} rows"),
            (n_rows as u64).saturating_mul(n_cols as u64),
            8,
        )?;
        Ok(Gather {
            values: vec![0.0; n_rows * n_cols],
            n_rows,
            n_cols,
            transposed,
        })
    }

    #[inline]
    fn put(&mut self, major: usize, minor: usize, v: f64) {
        let (r, c) = if self.transposed {
            (minor, major)
        } else {
            (major, minor)
        };
        self.values[r * self.n_cols + c] = v;
    }
}

impl Accumulator for Gather {
    #[allow(clippy::needless_range_loop)]
    fn consume(&mut self, block: &Block, rows: Rows<'_>) -> Result<()> {
        match &block.data {
            BlockData::Compressed {
                indptr,
                indices,
                values,
            } => {
                for k in 0..block.n_major {
                    for p in indptr[k] as usize..indptr[k + 1] as usize {
                        self.put(rows.at(k), indices[p] as usize, values.get_f64(p));
                    }
                }
            }
            BlockData::Dense { values } => {
                for k in 0..block.n_major {
                    for j in 0..block.n_minor {
                        self.put(rows.at(k), j, values.get_f64(k * block.n_minor + j));
                    }
                }
            }
        }
        Ok(())
    }

    fn any_order(&self) -> bool {
        true
    }
}
