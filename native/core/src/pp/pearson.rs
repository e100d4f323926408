//! Pearson-residual variances (scanpy's experimental HVG flavor), stored-
//! entry part. For gene g and cell c, μ = f32(s_g·s_c)/total and the clipped
//! residual is r(x) = clip((x − μ)/√(μ + μ²/θ)). A zero entry's residual
//! r(0) depends only on (s_c, s_g), so the caller sums it over cells grouped
//! by their total; this pass adds, for every stored value, r(x) − r(0) and
//! r(x)² − r(0)², which turns those sums into the exact ones over all cells.

use super::runner::{RowAccumulator, RowPartial};
use crate::error::{Error, Result};
use std::any::Any;
use std::sync::Arc;

pub struct Params {
    /// n_batches × n_cols gene sums (float32 values, as scanpy keeps them).
    pub gene_sums: Vec<f64>,
    /// Per batch: the dataset total used in μ.
    pub totals: Vec<f64>,
    pub theta: f64,
    pub clip: f64,
    pub batches: Option<Vec<u32>>,
    pub n_cols: usize,
}

pub struct Pearson {
    params: Arc<Params>,
    d1: Vec<f64>,
    d2: Vec<f64>,
}

impl Pearson {
    pub fn new(params: Params) -> Result<Self> {
        let nb = params.totals.len();
        if params.gene_sums.len() != nb * params.n_cols {
            return Err(Error::invalid("pearson: gene sums must be batches × genes"));
        }
        Ok(Pearson {
            params: Arc::new(params),
            d1: vec![],
            d2: vec![],
        })
    }
}

/// The clipped residual of x given μ.
#[inline]
pub fn residual(x: f64, mu: f64, theta: f64, clip: f64) -> f64 {
    ((x - mu) / (mu + mu * mu / theta).sqrt()).clamp(-clip, clip)
}

struct Partial {
    p: Arc<Params>,
    d1: Vec<f64>,
    d2: Vec<f64>,
}

impl RowPartial for Partial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        let p = &self.p;
        let b = p.batches.as_ref().map_or(0, |v| v[row] as usize);
        // scanpy: float32 row sum; exact for integer counts below 2^24.
        let sc = vals.iter().sum::<f64>() as f32;
        let total = p.totals[b];
        for (&j, &x) in cols.iter().zip(vals) {
            let i = b * p.n_cols + j as usize;
            let sg = p.gene_sums[i] as f32;
            if sg == 0.0 {
                continue;
            }
            let mu = f64::from(sg * sc) / total;
            let r = residual(x, mu, p.theta, p.clip);
            let r0 = residual(0.0, mu, p.theta, p.clip);
            self.d1[i] += r - r0;
            self.d2[i] += r * r - r0 * r0;
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for Pearson {
    fn partial(&self) -> Box<dyn RowPartial> {
        let n = self.params.gene_sums.len();
        Box::new(Partial {
            p: self.params.clone(),
            d1: vec![0.0; n],
            d2: vec![0.0; n],
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        let n = self.params.gene_sums.len();
        self.d1 = vec![0.0; n];
        self.d2 = vec![0.0; n];
        for part in parts {
            let part = part.downcast::<Partial>().expect("pearson partial");
            for i in 0..n {
                self.d1[i] += part.d1[i];
                self.d2[i] += part.d2[i];
            }
        }
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        vec![
            ("pearson.d1".into(), std::mem::take(&mut self.d1)),
            ("pearson.d2".into(), std::mem::take(&mut self.d2)),
        ]
    }
}
