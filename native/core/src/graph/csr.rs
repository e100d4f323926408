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

    /// Undirected: every edge (i, j, w) has its mirror (j, i, w), weights
    /// equal to 1e-5 relative. Leiden's moves assume it; on a directed graph
    /// (such as the kNN "distances") nodes could move back and forth
    /// forever. One binary search per edge, no extra memory for sorted rows.
    pub fn check_symmetric(&self, what: &str) -> Result<()> {
        use rayon::prelude::*;
        let sorted = (0..self.n).into_par_iter().all(|i| {
            self.indices[self.indptr[i]..self.indptr[i + 1]]
                .windows(2)
                .all(|w| w[0] <= w[1])
        });
        if !sorted {
            let mut copy = self.clone();
            copy.sort_rows();
            return copy.check_symmetric(what);
        }
        let mirror_of = |i: usize, j: usize, w: f32| -> bool {
            let (a, b) = (self.indptr[j], self.indptr[j + 1]);
            match self.indices[a..b].binary_search(&(i as u32)) {
                Ok(p) => {
                    let m = self.weights[a + p];
                    (w - m).abs() <= 1e-5 * w.abs().max(m.abs())
                }
                // An explicit zero needs no mirror.
                Err(_) => w == 0.0,
            }
        };
        let bad = (0..self.n)
            .into_par_iter()
            .find_first(|&i| self.row(i).any(|(j, w)| !mirror_of(i, j, w)));
        if let Some(i) = bad {
            let (j, w) = self
                .row(i)
                .find(|&(j, w)| !mirror_of(i, j, w))
                .unwrap_or((0, 0.0));
            return Err(Error::invalid(format!(
                "the graph is not symmetric: edge {i} → {j} (weight {w}) has no mirror {j} → {i} of the same weight. \
                 Leiden needs an undirected graph, such as obsp \"connectivities\" (the kNN \"distances\" are directed)"
            ))
            .at(what));
        }
        Ok(())
    }

    /// This graph with each row sorted by column and repeated entries
    /// summed, as scipy's `sum_duplicates` (and so scanpy) reads them;
    /// borrowed when it already is. A repeated entry counted once by the
    /// symmetry check but twice by Leiden made a directed graph look
    /// undirected, and Leiden looped forever.
    pub fn canonical(&self) -> std::borrow::Cow<'_, Csr> {
        let strictly_sorted = (0..self.n).all(|i| {
            self.indices[self.indptr[i]..self.indptr[i + 1]]
                .windows(2)
                .all(|w| w[0] < w[1])
        });
        if strictly_sorted {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut sorted = self.clone();
        sorted.sort_rows();
        let mut out = Csr {
            n: self.n,
            indptr: Vec::with_capacity(self.n + 1),
            indices: Vec::with_capacity(self.nnz()),
            weights: Vec::with_capacity(self.nnz()),
        };
        out.indptr.push(0);
        for i in 0..self.n {
            let start = out.indices.len();
            for (j, w) in sorted.row(i) {
                if out.indices.len() > start && out.indices.last() == Some(&(j as u32)) {
                    *out.weights.last_mut().expect("an entry was pushed") += w;
                } else {
                    out.indices.push(j as u32);
                    out.weights.push(w);
                }
            }
            out.indptr.push(out.indices.len());
        }
        std::borrow::Cow::Owned(out)
    }

    /// Sort each row's entries by column (weights follow).
    fn sort_rows(&mut self) {
        for i in 0..self.n {
            let r = self.indptr[i]..self.indptr[i + 1];
            let mut row: Vec<(u32, f32)> = self.indices[r.clone()]
                .iter()
                .copied()
                .zip(self.weights[r.clone()].iter().copied())
                .collect();
            row.sort_unstable_by_key(|e| e.0);
            for (k, (j, w)) in row.into_iter().enumerate() {
                self.indices[r.start + k] = j;
                self.weights[r.start + k] = w;
            }
        }
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
