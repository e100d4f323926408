//! `NativeH5ad`: an open h5ad file. Metadata calls are synchronous (they
//! touch only small elements); matrix reads are AsyncTasks on the libuv
//! pool and full passes run on their own thread (see pass.rs).

use crate::convert::{self, BlockOut, ColumnOut, StringsOut, TypedOut};
use crate::error::guard;
use crate::pass::NativePass;
use anndata_oom_core::dataframe;
use anndata_oom_core::error::{Context, Error};
use anndata_oom_core::file::H5ad;
use anndata_oom_core::h5::{self, Node};
use anndata_oom_core::limits::check_load;
use anndata_oom_core::matrix::{Block, Format, Matrix, MinorMap};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;

#[napi]
pub struct NativeH5ad {
    pub(crate) inner: Arc<H5ad>,
}

#[napi(object)]
pub struct ArrayOut {
    pub shape: Vec<f64>,
    pub data: TypedOut,
}

fn split(path: &str) -> (&str, &str) {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some((parent, name)) => (if parent.is_empty() { "/" } else { parent }, name),
        None => ("/", path),
    }
}

pub(crate) fn selection(v: Option<Uint32Array>) -> Option<Vec<usize>> {
    v.map(|a| a.iter().map(|&x| x as usize).collect())
}

#[napi]
impl NativeH5ad {
    /// Open a file ('r' or 'r+'); validates that it is HDF5.
    #[napi(factory, catch_unwind)]
    pub fn open(path: String, writable: bool) -> Result<NativeH5ad> {
        guard(|| {
            Ok(NativeH5ad {
                inner: Arc::new(H5ad::open(&path, writable)?),
            })
        })
    }

    /// The whole file's layout as JSON (no matrix data read).
    #[napi(catch_unwind)]
    pub fn describe(&self) -> Result<String> {
        guard(|| {
            let info = self.inner.describe()?;
            serde_json::to_string(&info).map_err(|e| Error::internal(e.to_string()))
        })
    }

    /// Layout of one dataframe element as JSON.
    #[napi(catch_unwind)]
    pub fn describe_frame(&self, path: String) -> Result<String> {
        guard(|| {
            let info = self
                .inner
                .with_root(|root| dataframe::describe(root, &path))?;
            serde_json::to_string(&info).map_err(|e| Error::internal(e.to_string()))
        })
    }

    /// Metadata of one matrix element as JSON (validates shape and indptr).
    #[napi(catch_unwind)]
    pub fn matrix_meta(&self, path: String) -> Result<String> {
        guard(|| {
            let m = self.inner.open_matrix(&path)?;
            serde_json::to_string(&m.meta).map_err(|e| Error::internal(e.to_string()))
        })
    }

    #[napi(catch_unwind)]
    pub fn read_index(&self, df_path: String) -> Result<StringsOut> {
        guard(|| {
            self.inner
                .with_root(|root| dataframe::read_index(root, &df_path))
                .map(convert::strings)
        })
    }

    #[napi(catch_unwind)]
    pub fn read_column(&self, df_path: String, name: String) -> Result<ColumnOut> {
        guard(|| {
            self.inner
                .with_root(|root| dataframe::read_column(root, &df_path, &name))
                .map(convert::column)
        })
    }

    /// Any 1-d element outside a dataframe (uns arrays, categoricals, ...).
    #[napi(catch_unwind)]
    pub fn read_element_column(&self, path: String) -> Result<ColumnOut> {
        guard(|| {
            self.inner
                .with_root(|root| {
                    let (parent, name) = split(&path);
                    let g = root.group(parent).at(parent)?;
                    dataframe::read_column_in(&g, name, &path, false)
                })
                .map(convert::column)
        })
    }

    /// A record array (`rec-array`): each field as a column, in order.
    #[napi(catch_unwind)]
    pub fn read_records(&self, path: String) -> Result<Vec<NamedColumnOut>> {
        guard(|| {
            self.inner.with_root(|root| {
                let Some(Node::Dataset(ds)) = h5::node(root, &path) else {
                    return Err(Error::format(&path, "expected a dataset"));
                };
                let fields = anndata_oom_core::records::read_records(&ds, &path)?;
                Ok(fields
                    .into_iter()
                    .map(|(name, c)| NamedColumnOut {
                        name,
                        column: convert::column(c),
                    })
                    .collect())
            })
        })
    }

    /// A dense numeric array of any dimension.
    #[napi(catch_unwind)]
    pub fn read_array(&self, path: String) -> Result<ArrayOut> {
        guard(|| {
            self.inner.with_root(|root| {
                let Some(Node::Dataset(ds)) = h5::node(root, &path) else {
                    return Err(Error::format(&path, "expected a dataset"));
                };
                let dtype = h5::dtype_of(&ds, &path)?;
                check_load(&path, ds.size() as u64, dtype.size() as u64)?;
                let values = h5::read_values(&ds, &path)?;
                Ok(ArrayOut {
                    shape: ds.shape().iter().map(|&d| d as f64).collect(),
                    data: convert::typed(values),
                })
            })
        })
    }

    /// A scalar (string, number or bool) as JSON.
    #[napi(catch_unwind)]
    pub fn read_scalar(&self, path: String) -> Result<String> {
        guard(|| {
            self.inner.with_root(|root| {
                let Some(Node::Dataset(ds)) = h5::node(root, &path) else {
                    return Err(Error::format(&path, "expected a dataset"));
                };
                // anndata's numeric-scalar / string hold exactly one value;
                // an empty one (h5py.Empty, a null dataspace) reads as None,
                // several are refused.
                let one = |n: usize| match n {
                    0 => Ok(false),
                    1 => Ok(true),
                    n => Err(Error::format(
                        &path,
                        format!("a scalar must hold one value, this dataset holds {n}"),
                    )),
                };
                let dtype = h5::dtype_of(&ds, &path)?;
                let v = if dtype == anndata_oom_core::dtype::DType::String {
                    let s = h5::read_strings(&ds, &path)?;
                    if !one(s.len())? {
                        return Ok("null".to_string());
                    }
                    serde_json::Value::from(s.get(0).unwrap_or(""))
                } else {
                    let values = h5::read_values(&ds, &path)?;
                    if !one(values.len())? {
                        return Ok("null".to_string());
                    }
                    let x = values.get_f64(0);
                    if dtype == anndata_oom_core::dtype::DType::Bool {
                        serde_json::Value::from(x != 0.0)
                    } else if x.is_finite() {
                        serde_json::Value::from(x)
                    } else {
                        serde_json::Value::from(format!("__float__:{x}"))
                    }
                };
                Ok(v.to_string())
            })
        })
    }

    /// Rows (in this order) of a matrix element, with optional columns.
    #[napi(catch_unwind)]
    pub fn read_rows(
        &self,
        path: String,
        rows: Uint32Array,
        cols: Option<Uint32Array>,
    ) -> AsyncTask<ReadRows> {
        AsyncTask::new(ReadRows {
            file: self.inner.clone(),
            path,
            rows: rows.iter().map(|&x| x as usize).collect(),
            cols: selection(cols),
        })
    }

    /// A whole matrix element as stored (CSR, CSC or dense).
    #[napi(catch_unwind)]
    pub fn read_matrix(&self, path: String) -> AsyncTask<ReadMatrix> {
        AsyncTask::new(ReadMatrix {
            file: self.inner.clone(),
            path,
        })
    }

    /// Start a one-pass sum/nnz (with `moments`, also mean/var) along
    /// `axes` ("obs", "var" or "both").
    #[napi(catch_unwind)]
    pub fn start_stats(
        &self,
        path: String,
        rows: Option<Uint32Array>,
        cols: Option<Uint32Array>,
        moments: bool,
        axes: String,
        block_bytes: Option<u32>,
    ) -> Result<NativePass> {
        let sel = (selection(rows), selection(cols));
        Ok(NativePass::stats(
            self.inner.clone(),
            path,
            sel,
            moments,
            axes,
            block_bytes,
        ))
    }

    /// Start a plan pass: evaluate the transform chain `plan` (JSON, with
    /// `vectors` it refers to) and take the statistics in `request` (JSON).
    #[napi(catch_unwind)]
    pub fn start_plan(
        &self,
        path: String,
        rows: Option<Uint32Array>,
        cols: Option<Uint32Array>,
        plan: String,
        vectors: Vec<Float64Array>,
        request: String,
    ) -> Result<NativePass> {
        let sel = (selection(rows), selection(cols));
        Ok(NativePass::plan(
            self.inner.clone(),
            path,
            sel,
            plan,
            crate::pp::vectors(vectors),
            request,
        ))
    }

    /// Start a pass that densifies a small selection (e.g. one gene).
    #[napi(catch_unwind)]
    pub fn start_gather(
        &self,
        path: String,
        rows: Option<Uint32Array>,
        cols: Option<Uint32Array>,
    ) -> Result<NativePass> {
        Ok(NativePass::gather(
            self.inner.clone(),
            path,
            selection(rows),
            selection(cols),
        ))
    }

    /// Start building the gene-major sidecar of matrix `path` at `dest`
    /// (header records `fingerprint`), within `budget_bytes` of memory.
    #[napi(catch_unwind)]
    pub fn start_gene_index(
        &self,
        path: String,
        dest: String,
        fingerprint: String,
        budget_bytes: Option<f64>,
    ) -> Result<NativePass> {
        Ok(NativePass::gene_index(
            self.inner.clone(),
            path,
            dest,
            fingerprint,
            budget_bytes,
        ))
    }

    /// Start writing (a subset of) this file to `dest`, with the session's
    /// results (`session`) added.
    #[napi(catch_unwind)]
    pub fn start_write(
        &self,
        dest: String,
        obs: Option<Uint32Array>,
        vars: Option<Uint32Array>,
        compression: Option<String>,
        session: Option<SessionIn>,
    ) -> Result<NativePass> {
        let session = match session {
            Some(s) => s.into_core()?,
            None => anndata_oom_core::writer::Session::default(),
        };
        Ok(NativePass::write(
            self.inner.clone(),
            dest,
            selection(obs),
            selection(vars),
            compression,
            session,
        ))
    }

    /// Fails (FileAccess) when the file was written in place since it was opened.
    #[napi(catch_unwind)]
    pub fn check_unchanged(&self) -> Result<()> {
        guard(|| self.inner.check_unchanged())
    }

    #[napi]
    pub fn close(&self) {
        self.inner.close();
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }
}

fn check_range(sel: &[usize], n: usize, path: &str) -> anndata_oom_core::Result<()> {
    match sel.iter().find(|&&i| i >= n) {
        Some(bad) => {
            Err(Error::invalid(format!("index {bad} out of range for length {n}")).at(path))
        }
        None => Ok(()),
    }
}

pub struct ReadRows {
    file: Arc<H5ad>,
    path: String,
    rows: Vec<usize>,
    cols: Option<Vec<usize>>,
}

impl Task for ReadRows {
    type Output = (Block, String);
    type JsValue = BlockOut;

    fn compute(&mut self) -> Result<Self::Output> {
        guard(|| {
            let read = || -> anndata_oom_core::error::Result<Block> {
                let m = self.file.open_matrix(&self.path)?;
                check_range(&self.rows, m.meta.shape[0], &self.path)?;
                let cols = match &self.cols {
                    Some(c) => {
                        check_range(c, m.meta.shape[1], &self.path)?;
                        MinorMap::select(m.meta.shape[1], c.clone())
                    }
                    None => MinorMap::identity(m.meta.shape[1]),
                };
                m.read_rows(&self.rows, &cols)
                    .map_err(|e| e.in_file(&self.file.path))
            };
            let b = read();
            // As after a pass: rows of a file written in place since it was
            // opened may mix old and new data (and a truncated one reads as
            // a format error, which would blame the file's writer).
            self.file.check_unchanged()?;
            Ok((b?, "csr".to_string()))
        })
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<BlockOut> {
        Ok(convert::block(out.0, &out.1))
    }
}

pub struct ReadMatrix {
    file: Arc<H5ad>,
    path: String,
}

impl Task for ReadMatrix {
    type Output = (Block, String);
    type JsValue = BlockOut;

    fn compute(&mut self) -> Result<Self::Output> {
        guard(|| {
            let read = || -> anndata_oom_core::error::Result<(Block, &'static str)> {
                let m: Matrix = self.file.open_matrix(&self.path)?;
                let item = (m.meta.dtype.size() + 4) as u64;
                check_load(&self.path, m.meta.nnz, item).map_err(|e| e.in_file(&self.file.path))?;
                let majors: Vec<usize> = (0..m.n_major()).collect();
                let b = m
                    .read_block(&majors, &MinorMap::identity(m.n_minor()))
                    .map_err(|e| e.in_file(&self.file.path))?;
                let fmt = match m.meta.format {
                    Format::Csr => "csr",
                    Format::Csc => "csc",
                    Format::Dense => "dense",
                };
                Ok((b, fmt))
            };
            let r = read();
            // As for rows: a file written in place is said so, not misread.
            self.file.check_unchanged()?;
            let (b, fmt) = r?;
            Ok((b, fmt.to_string()))
        })
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<BlockOut> {
        Ok(convert::block(out.0, &out.1))
    }
}

/// One field of a record array.
#[napi(object)]
pub struct NamedColumnOut {
    pub name: String,
    pub column: ColumnOut,
}

/// A named column added to obs / var.
#[napi(object)]
pub struct NamedColumnIn {
    pub name: String,
    pub column: ColumnOut,
}

/// A named in-memory element of obsm / varm / obsp / varp / raw.varm:
/// `encoding` is "array" (shape, data), "csr_matrix" or "csc_matrix"
/// (shape, indptr, indices, data) or "dataframe" (frame).
#[napi(object)]
pub struct NamedElementIn {
    pub name: String,
    pub encoding: String,
    pub shape: Vec<f64>,
    pub data: Option<TypedOut>,
    pub indptr: Option<Float64Array>,
    pub indices: Option<Int32Array>,
    pub frame: Option<FrameIn>,
}

/// Results computed in the session, to write next to the file's contents.
#[napi(object)]
pub struct SessionIn {
    pub obs: Vec<NamedColumnIn>,
    pub var: Vec<NamedColumnIn>,
    pub obsm: Vec<NamedElementIn>,
    pub varm: Vec<NamedElementIn>,
    pub obsp: Vec<NamedElementIn>,
    pub varp: Vec<NamedElementIn>,
    pub uns_json: Option<String>,
    pub uns_vectors: Vec<TypedOut>,
    /// Matrices to write through their transform chain.
    pub planned: Vec<PlannedIn>,
    /// raw's var when the session set raw (raw/X is in `planned`).
    pub raw_var: Option<FrameIn>,
    /// raw's varm when the session set raw (rows = raw's vars).
    pub raw_varm: Option<Vec<NamedElementIn>>,
}

/// A whole dataframe: index name and values, columns in order.
#[napi(object)]
pub struct FrameIn {
    pub index_name: String,
    pub index: ColumnOut,
    pub columns: Vec<NamedColumnIn>,
}

/// A matrix written through a chain: destination, source element, the
/// rows and (basis) columns to read, and the plan with its vectors.
#[napi(object)]
pub struct PlannedIn {
    pub dest: String,
    pub source: String,
    pub rows: Option<Uint32Array>,
    pub cols: Option<Uint32Array>,
    pub plan_json: String,
    pub vectors: Vec<Float64Array>,
    /// Write float64 values (the chain's values are float64 in scanpy); the
    /// source's dtype decides when absent.
    pub float64: Option<bool>,
}

impl FrameIn {
    fn to_core(&self) -> Result<anndata_oom_core::writer::Frame> {
        Ok(anndata_oom_core::writer::Frame {
            index_name: self.index_name.clone(),
            index: convert::column_in(&self.index)?,
            columns: self
                .columns
                .iter()
                .map(|c| Ok((c.name.clone(), convert::column_in(&c.column)?)))
                .collect::<Result<_>>()?,
        })
    }
}

impl NamedElementIn {
    fn to_core(&self) -> Result<anndata_oom_core::writer::ElementIn> {
        let missing = |what: &str| {
            crate::error::to_napi(Error::invalid(format!(
                "{}: a {} element needs {what}",
                self.name, self.encoding
            )))
        };
        let shape: Vec<usize> = self.shape.iter().map(|&d| d as usize).collect();
        let data = || -> Result<anndata_oom_core::dtype::Values> {
            convert::values_in(self.data.as_ref().ok_or_else(|| missing("data"))?)
        };
        match self.encoding.as_str() {
            "array" => Ok(anndata_oom_core::writer::ElementIn::Array {
                values: data()?,
                shape,
            }),
            "csr_matrix" | "csc_matrix" => {
                let [rows, cols] = shape[..] else {
                    return Err(missing("a 2-d shape"));
                };
                let indptr = self.indptr.as_ref().ok_or_else(|| missing("indptr"))?;
                let indices = self.indices.as_ref().ok_or_else(|| missing("indices"))?;
                Ok(anndata_oom_core::writer::ElementIn::Sparse(
                    anndata_oom_core::writer::SparseIn {
                        csc: self.encoding == "csc_matrix",
                        shape: [rows, cols],
                        indptr: indptr.iter().map(|&p| p as i64).collect(),
                        indices: indices.to_vec(),
                        data: data()?,
                    },
                ))
            }
            "dataframe" => Ok(anndata_oom_core::writer::ElementIn::Frame(
                self.frame
                    .as_ref()
                    .ok_or_else(|| missing("frame"))?
                    .to_core()?,
            )),
            other => Err(crate::error::to_napi(Error::invalid(format!(
                "{}: cannot write an element with encoding {other:?}",
                self.name
            )))),
        }
    }
}

impl SessionIn {
    fn into_core(self) -> Result<anndata_oom_core::writer::Session> {
        let raw_var = self.raw_var.as_ref().map(FrameIn::to_core).transpose()?;
        let cols =
            |v: &[NamedColumnIn]| -> Result<Vec<(String, anndata_oom_core::dataframe::Column)>> {
                v.iter()
                    .map(|c| Ok((c.name.clone(), convert::column_in(&c.column)?)))
                    .collect()
            };
        let elements =
            |v: &[NamedElementIn]| -> Result<Vec<(String, anndata_oom_core::writer::ElementIn)>> {
                v.iter()
                    .map(|e| Ok((e.name.clone(), e.to_core()?)))
                    .collect()
            };
        Ok(anndata_oom_core::writer::Session {
            obs: cols(&self.obs)?,
            var: cols(&self.var)?,
            obsm: elements(&self.obsm)?,
            varm: elements(&self.varm)?,
            obsp: elements(&self.obsp)?,
            varp: elements(&self.varp)?,
            raw_varm: elements(self.raw_varm.as_deref().unwrap_or_default())?,
            uns_json: self.uns_json,
            uns_vectors: self
                .uns_vectors
                .iter()
                .map(convert::values_in)
                .collect::<Result<_>>()?,
            raw_var,
            planned: self
                .planned
                .into_iter()
                .map(|p| anndata_oom_core::pp::write::PlannedMatrix {
                    dest: p.dest,
                    source: p.source,
                    rows: selection(p.rows),
                    cols: selection(p.cols),
                    plan_json: p.plan_json,
                    vectors: p.vectors.iter().map(|v| v.to_vec()).collect(),
                    float64: p.float64,
                })
                .collect(),
        })
    }
}
