//! Row reads for any stored format. CSR and dense read rows directly; a CSC
//! matrix has no row access, so its selected columns are scanned in blocks
//! and the matching entries regrouped by row (a counting sort). That costs a
//! read of the whole matrix per call: iterate CSC by columns when possible.

use super::{Block, BlockData, Format, Matrix, MinorMap};
use crate::dtype::Values;
use crate::error::Result;

const CSC_SCAN_BYTES: usize = 64 << 20;

impl Matrix {
    #[allow(clippy::needless_range_loop)]
    pub fn read_rows(&self, rows: &[usize], cols: &MinorMap) -> Result<Block> {
        if self.meta.format != Format::Csc {
            return self.read_block(rows, cols);
        }
        let row_map = MinorMap::select(self.n_minor(), rows.to_vec());
        let majors: Vec<usize> = cols
            .selection
            .clone()
            .unwrap_or_else(|| (0..self.n_major()).collect());
        let plan = crate::pass::plan_blocks(self, &majors, CSC_SCAN_BYTES);
        let mut all = Values::empty(self.meta.dtype);
        let mut entry_row: Vec<u32> = Vec::new();
        let mut entry_col: Vec<u32> = Vec::new();
        for r in plan {
            let b = self.read_block(&majors[r.clone()], &row_map)?;
            let BlockData::Compressed {
                indptr,
                indices,
                values,
            } = b.data
            else {
                unreachable!("csc blocks are compressed")
            };
            for k in 0..b.n_major {
                for p in indptr[k] as usize..indptr[k + 1] as usize {
                    entry_row.push(indices[p] as u32);
                    entry_col.push((r.start + k) as u32);
                }
            }
            all.extend_from(&values, 0..values.len());
        }
        let n_rows = rows.len();
        let mut indptr = vec![0i64; n_rows + 1];
        for &r in &entry_row {
            indptr[r as usize + 1] += 1;
        }
        for i in 0..n_rows {
            indptr[i + 1] += indptr[i];
        }
        let mut fill: Vec<i64> = indptr[..n_rows].to_vec();
        let mut order = vec![0usize; entry_row.len()];
        let mut indices = vec![0i32; entry_row.len()];
        for (e, (&r, &c)) in entry_row.iter().zip(&entry_col).enumerate() {
            let at = fill[r as usize] as usize;
            fill[r as usize] += 1;
            order[at] = e;
            indices[at] = c as i32;
        }
        Ok(Block {
            n_major: n_rows,
            n_minor: majors.len(),
            data: BlockData::Compressed {
                indptr,
                indices,
                values: all.take(&order),
            },
        })
    }
}
