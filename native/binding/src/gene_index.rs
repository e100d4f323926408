//! The gene-major sidecar index (see core gene_index): building it is a
//! NativePass job; an opened index reads genes on the libuv pool (one
//! pread per gene, genes in parallel).

use crate::error::{guard, to_napi};
use crate::pass::{NativePass, Output};
use anndata_oom_core::error::Error;
use anndata_oom_core::file::H5ad;
use anndata_oom_core::gene_index::{self, BuildOptions, GeneIndex};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

impl NativePass {
    pub(crate) fn gene_index(
        file: Arc<H5ad>,
        element: String,
        dest: String,
        fingerprint: String,
        budget_bytes: Option<f64>,
    ) -> Self {
        Self::spawn(move |control| {
            let opts = BuildOptions {
                fingerprint,
                budget_bytes: budget_bytes
                    .filter(|b| *b > 0.0)
                    .map_or(gene_index::DEFAULT_BUDGET_BYTES, |b| b as usize),
            };
            let header = gene_index::build(&file, &element, &PathBuf::from(dest), &opts, control)?;
            serde_json::to_string(&header)
                .map(Output::GeneIndex)
                .map_err(|e| Error::internal(e.to_string()))
        })
    }
}

/// An open sidecar. `close()` releases the file; later use throws Closed.
#[napi]
pub struct NativeGeneIndex {
    inner: Arc<Mutex<Option<Arc<GeneIndex>>>>,
}

fn closed() -> Error {
    Error::new(
        anndata_oom_core::ErrorKind::Closed,
        "the gene index is closed",
    )
}

#[napi]
impl NativeGeneIndex {
    /// Open `path`, checking that it indexes `fingerprint`.
    #[napi(factory, catch_unwind)]
    pub fn open(path: String, fingerprint: String) -> Result<NativeGeneIndex> {
        guard(|| {
            Ok(NativeGeneIndex {
                inner: Arc::new(Mutex::new(Some(Arc::new(GeneIndex::open(
                    &path,
                    &fingerprint,
                )?)))),
            })
        })
    }

    fn get(&self) -> anndata_oom_core::Result<Arc<GeneIndex>> {
        self.inner
            .lock()
            .map_err(|_| Error::internal("gene index lock poisoned"))?
            .clone()
            .ok_or_else(closed)
    }

    /// The header as JSON (fingerprint, shape, nnz, value kind, sizes).
    #[napi(catch_unwind)]
    pub fn header(&self) -> Result<String> {
        guard(|| {
            serde_json::to_string(&self.get()?.header).map_err(|e| Error::internal(e.to_string()))
        })
    }

    /// Values of `genes` at `rows` (all rows when absent), one array per gene.
    #[napi(catch_unwind)]
    pub fn read_genes(
        &self,
        genes: Uint32Array,
        rows: Option<Uint32Array>,
    ) -> AsyncTask<ReadGenes> {
        AsyncTask::new(ReadGenes {
            index: self.get(),
            genes: genes.iter().map(|&g| g as usize).collect(),
            rows: rows.map(|r| r.to_vec()),
        })
    }

    /// Each row's sum over all genes, at `rows` (all rows when absent).
    #[napi(catch_unwind)]
    pub fn row_totals(&self, rows: Option<Uint32Array>) -> Result<Float64Array> {
        guard(|| {
            self.get()?
                .row_totals(rows.as_deref())
                .map(Float64Array::new)
        })
    }

    #[napi]
    pub fn close(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.take();
        }
    }
}

pub struct ReadGenes {
    index: anndata_oom_core::Result<Arc<GeneIndex>>,
    genes: Vec<usize>,
    rows: Option<Vec<u32>>,
}

impl Task for ReadGenes {
    type Output = Vec<Vec<f64>>;
    type JsValue = Vec<Float64Array>;

    fn compute(&mut self) -> Result<Self::Output> {
        let index = self.index.clone().map_err(to_napi)?;
        guard(|| index.read_genes(&self.genes, self.rows.as_deref()))
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(out.into_iter().map(Float64Array::new).collect())
    }
}
