//! A weighted graph in CSR form (rows = nodes). Undirected graphs store
//! every edge in both rows, as scanpy's symmetric obsp matrices do.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Csr {
    pub n: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Csr {
    /// Check the structure (lengths, monotone indptr, indices in range,
    /// finite weights) so that no later index can go out of bounds.
    pub fn validate(&self, what: &str) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m).at(what));
        if self.indptr.len() != self.n + 1 {
            return bad(format!(
                "indptr has {} entries, expected n + 1 = {}",
                self.indptr.len(),
                self.n + 1
            ));
        }
        if self.indptr[0] != 0 || self.indptr.windows(2).any(|w| w[0] > w[1]) {
            return bad("indptr must start at 0 and never decrease".into());
        }
        let nnz = self.indptr[self.n];
        if self.indices.len() != nnz || self.weights.len() != nnz {
            return bad(format!(
                "indptr ends at {nnz} but there are {} indices and {} weights",
                self.indices.len(),
                self.weights.len()
            ));
        }
        if let Some(&j) = self.indices.iter().find(|&&j| j as usize >= self.n) {
            return bad(format!("column {j} out of range for {} nodes", self.n));
        }
        if self.weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return bad("weights must be finite and non-negative".into());
        }
        Ok(())
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Neighbours of `i` with their weights.
    pub fn row(&self, i: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let r = self.indptr[i]..self.indptr[i + 1];
        self.indices[r.clone()]
            .iter()
            .zip(&self.weights[r])
            .map(|(&j, &w)| (j as usize, w))
    }
}
