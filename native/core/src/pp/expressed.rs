//! scanpy's exclude_highly_expressed: flag genes that make up more than
//! `max_fraction` of some cell's total. Needs each row's total first, which
//! a CSR row has in full, so one pass suffices.

use super::runner::{RowAccumulator, RowPartial};
use crate::error::Result;
use std::any::Any;

pub struct HighlyExpressed {
    max_fraction: f64,
    n_cols: usize,
    flags: Vec<f64>,
}

impl HighlyExpressed {
    pub fn new(max_fraction: f64, n_cols: usize) -> Self {
        HighlyExpressed {
            max_fraction,
            n_cols,
            flags: vec![],
        }
    }
}

struct Partial {
    max_fraction: f64,
    flags: Vec<f64>,
}

impl RowPartial for Partial {
    fn add_row(&mut self, _row: usize, cols: &[u32], vals: &[f64]) {
        let total: f64 = vals.iter().sum();
        let limit = total * self.max_fraction;
        for (&j, &x) in cols.iter().zip(vals) {
            if x > limit {
                self.flags[j as usize] = 1.0;
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl RowAccumulator for HighlyExpressed {
    fn partial(&self) -> Box<dyn RowPartial> {
        Box::new(Partial {
            max_fraction: self.max_fraction,
            flags: vec![0.0; self.n_cols],
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        self.flags = vec![0.0; self.n_cols];
        for p in parts {
            let p = p.downcast::<Partial>().expect("highly-expressed partial");
            for (a, b) in self.flags.iter_mut().zip(&p.flags) {
                *a = a.max(*b);
            }
        }
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        vec![("he.flags".into(), std::mem::take(&mut self.flags))]
    }
}
