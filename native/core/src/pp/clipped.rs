//! seurat_v3's second statistic: per gene (× batch), the sum and sum of
//! squares of the stored values clipped at a per-gene ceiling
//! (reg_std·√n + mean, from the loess fit of the first pass). Zeros never
//! clip, so only stored values are visited.

use super::runner::{RowAccumulator, RowPartial};
use crate::error::{Error, Result};
use std::any::Any;
use std::sync::Arc;

pub struct Clipped {
    /// n_batches × n_cols ceilings.
    clip: Arc<Vec<f64>>,
    batches: Option<Arc<Vec<u32>>>,
    n_cols: usize,
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl Clipped {
    pub fn new(clip: Vec<f64>, batches: Option<Vec<u32>>, n_cols: usize) -> Result<Self> {
        let n_batches = batches
            .as_ref()
            .map_or(1, |b| b.iter().max().map_or(1, |&m| m as usize + 1));
        if clip.len() != n_batches * n_cols {
            return Err(Error::invalid(format!(
                "clip values: expected {} (batches × genes), got {}",
                n_batches * n_cols,
                clip.len()
            )));
        }
        Ok(Clipped {
            clip: Arc::new(clip),
            batches: batches.map(Arc::new),
            n_cols,
            s1: vec![],
            s2: vec![],
        })
    }
}

struct Partial {
    clip: Arc<Vec<f64>>,
    batches: Option<Arc<Vec<u32>>>,
    n_cols: usize,
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl RowPartial for Partial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        let off = self.batches.as_ref().map_or(0, |b| b[row] as usize) * self.n_cols;
        for (&j, &x) in cols.iter().zip(vals) {
            let i = off + j as usize;
            let e = x.min(self.clip[i]);
            self.s1[i] += e;
            self.s2[i] += e * e;
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for Clipped {
    fn partial(&self) -> Box<dyn RowPartial> {
        let n = self.clip.len();
        Box::new(Partial {
            clip: self.clip.clone(),
            batches: self.batches.clone(),
            n_cols: self.n_cols,
            s1: vec![0.0; n],
            s2: vec![0.0; n],
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        let n = self.clip.len();
        self.s1 = vec![0.0; n];
        self.s2 = vec![0.0; n];
        for p in parts {
            let p = p.downcast::<Partial>().expect("clipped partial");
            for i in 0..n {
                self.s1[i] += p.s1[i];
                self.s2[i] += p.s2[i];
            }
        }
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        vec![
            ("clipped.s1".into(), std::mem::take(&mut self.s1)),
            ("clipped.s2".into(), std::mem::take(&mut self.s2)),
        ]
    }
}
