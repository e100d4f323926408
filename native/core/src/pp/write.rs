//! Writing a matrix through its transform chain: each block's rows are
//! evaluated like in a plan pass (normalize totals over the whole row, then
//! the view's genes) and appended to the output in the format scanpy leaves:
//! - a sparse source: CSR float32 while the chain stays sparse (scanpy keeps
//!   float32 data after normalize/log1p; a scale without centring keeps
//!   zeros zero), dense float64 once it ends in a centring scale (scanpy
//!   densifies there, in float64);
//! - a dense source: dense float32 whatever the chain (scanpy keeps a dense
//!   float32 array float32 through scale too);
//! - a float64 source: the same formats in float64 (scanpy keeps float64
//!   data float64).
//!
//! The caller says whether the values are float64 (PlannedMatrix::float64,
//! the chain's dtype in scanpy: also counts log-transformed without
//! normalize); the rules above decide when it does not.

use super::plan::{Compiled, Plan};
use super::runner::{block_view, row_range, row_to_f64};
use crate::dtype::{DType, Values};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::h5w::{self, Appendable, Compression};
use crate::matrix::{Block, Format, Matrix, MinorMap};
use crate::pass::{self, Accumulator, Control, Rows as BlockRows};
use crate::reorder;
use hdf5::Group;
use rayon::prelude::*;

/// One matrix of the written file that comes from a chain.
#[derive(Debug, Clone)]
pub struct PlannedMatrix {
    /// Destination under the file root: "X" or "layers/<key>".
    pub dest: String,
    /// Source element in the read file (e.g. "/X").
    pub source: String,
    pub rows: Option<Vec<usize>>,
    /// Columns to read (the normalize basis) — the plan's output map narrows them.
    pub cols: Option<Vec<usize>>,
    pub plan_json: String,
    pub vectors: Vec<Vec<f64>>,
    /// Whether the values are written as float64: scanpy's dtype for the
    /// chain's values (JS decides, see BackedMatrix.valueDtype); a float64
    /// source when absent.
    pub float64: Option<bool>,
}

// One sink per written matrix: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Sink {
    Csr {
        data: Appendable,
        /// float64 values (PlannedMatrix::float64); float32 otherwise.
        double: bool,
        indices: Appendable,
        /// int32 unless the rows written could hold more entries.
        index_dtype: DType,
        indptr: Vec<i64>,
        group: Group,
    },
    Dense {
        ds: hdf5::Dataset,
        n_cols: usize,
        element: String,
        /// float32 values unless PlannedMatrix::float64.
        single: bool,
    },
}

struct PlanWriter<'a> {
    plan: &'a Compiled,
    sink: Sink,
}

/// Transformed rows of a block: (per-row lengths, columns, values).
type Rows = (Vec<usize>, Vec<u32>, Vec<f64>);

#[allow(clippy::unnecessary_cast)]
fn eval_rows(plan: &Compiled, block: &Block, first: usize, a: usize, b: usize) -> Rows {
    let width = block.n_minor;
    let (indptr, indices, values) = block_view(block);
    let (mut lens, mut cols_out, mut vals_out) = (Vec::new(), Vec::new(), Vec::new());
    let mut cols: Vec<u32> = Vec::new();
    let mut vals: Vec<f64> = Vec::new();
    for k in a..b {
        let range = row_range(indptr, width, k);
        row_to_f64(values, range.clone(), &mut vals);
        cols.clear();
        match indices {
            Some(ix) => cols.extend(ix[range].iter().map(|&j| j as u32)),
            None => cols.extend(0..width as u32),
        }
        let total = plan.row_total(first + k, &cols, &vals);
        plan.select(&mut cols, &mut vals, None);
        plan.eval_row_with(first + k, &cols, &mut vals, total, None);
        lens.push(cols.len());
        cols_out.extend_from_slice(&cols);
        vals_out.extend_from_slice(&vals);
    }
    (lens, cols_out, vals_out)
}

impl Accumulator for PlanWriter<'_> {
    fn consume(&mut self, block: &Block, rows: BlockRows<'_>) -> Result<()> {
        let first = rows.first()?;
        let n = block.n_major;
        let parts = rayon::current_num_threads().max(1).min(n.max(1));
        let per = n.div_ceil(parts).max(1);
        let plan = self.plan;
        let results: Vec<Rows> = (0..parts)
            .into_par_iter()
            .map(|t| eval_rows(plan, block, first, (t * per).min(n), ((t + 1) * per).min(n)))
            .collect();
        match &mut self.sink {
            Sink::Csr {
                data,
                double,
                indices,
                index_dtype,
                indptr,
                ..
            } => {
                for (lens, cols, vals) in results {
                    for l in lens {
                        let last = *indptr.last().unwrap_or(&0);
                        indptr.push(last + l as i64);
                    }
                    // A scale without centring keeps zeros zero: stored
                    // values are scaled in place and X stays sparse.
                    let mut scaled = vals;
                    if let Some(sc) = &plan.scaling {
                        for (v, &j) in scaled.iter_mut().zip(&cols) {
                            *v = sc.apply(j as usize, *v);
                        }
                    }
                    let cols: Vec<i64> = cols.into_iter().map(i64::from).collect();
                    indices.append(&h5w::ints_as(cols, *index_dtype))?;
                    data.append(&if *double {
                        Values::Float64(scaled)
                    } else {
                        Values::Float32(scaled.into_iter().map(|v| v as f32).collect())
                    })?;
                }
            }
            Sink::Dense {
                ds,
                n_cols,
                element,
                single,
            } => {
                // A value as stored: scaled when the chain ends in a scale
                // (an unstored zero then becomes −μ/σ with centring).
                let scaling = plan.scaling.as_ref();
                let value = |j: usize, v: f64| scaling.map_or(v, |sc| sc.apply(j, v));
                let nc = *n_cols;
                let mut row0 = first;
                for (lens, cols, vals) in results {
                    let r = lens.len();
                    let mut out = vec![0.0f64; r * nc];
                    let mut at = 0;
                    for (i, l) in lens.into_iter().enumerate() {
                        let row = &mut out[i * nc..(i + 1) * nc];
                        for (j, x) in row.iter_mut().enumerate() {
                            *x = value(j, 0.0);
                        }
                        for p in at..at + l {
                            row[cols[p] as usize] = value(cols[p] as usize, vals[p]);
                        }
                        at += l;
                    }
                    if r > 0 {
                        let rows = ndarray::s![row0..row0 + r, ..];
                        if *single {
                            let out: Vec<f32> = out.into_iter().map(|x| x as f32).collect();
                            let arr = ndarray::ArrayView2::from_shape((r, nc), &out[..])
                                .map_err(|e| Error::internal(e.to_string()))?;
                            ds.write_slice(arr, rows).at(element)?;
                        } else {
                            let arr = ndarray::ArrayView2::from_shape((r, nc), &out[..])
                                .map_err(|e| Error::internal(e.to_string()))?;
                            ds.write_slice(arr, rows).at(element)?;
                        }
                    }
                    row0 += r;
                }
            }
        }
        Ok(())
    }
}

/// Write one planned matrix into `out` (the new file's root).
pub fn write_planned(
    root: &Group,
    out: &Group,
    pm: &PlannedMatrix,
    c: Compression,
    control: &Control,
) -> Result<()> {
    let m = Matrix::open(root, &pm.source)?;
    if m.meta.format == Format::Csc {
        return Err(Error::new(
            ErrorKind::UnsupportedEncoding,
            "a transformed CSC matrix cannot be written yet",
        )
        .at(&pm.source));
    }
    let [nr, nc] = m.meta.shape;
    let majors: Vec<usize> = pm.rows.clone().unwrap_or_else(|| (0..nr).collect());
    let minor = pm
        .cols
        .clone()
        .map_or_else(|| MinorMap::identity(nc), |s| MinorMap::select(nc, s));
    let plan = Plan::parse(&pm.plan_json)?.compile(&pm.vectors, majors.len(), minor.n_out())?;
    let (parent, name) = match pm.dest.rsplit_once('/') {
        Some((p, n)) => (out.group(p).at(&format!("/{p}"))?, n.to_string()),
        None => (out.clone(), pm.dest.clone()),
    };
    if parent.link_exists(&name) {
        parent.unlink(&name).at(&pm.dest)?;
    }
    let element = format!("/{}", pm.dest);
    let shape = [majors.len(), plan.n_out];
    let dense =
        m.meta.format == Format::Dense || plan.scaling.as_ref().is_some_and(|sc| sc.zero_center);
    let double = pm
        .float64
        .unwrap_or(m.meta.dtype == DType::Float64 || (dense && m.meta.format != Format::Dense));
    let single = !double;
    let sink = if dense {
        let ds = if single {
            parent.new_dataset::<f32>()
        } else {
            parent.new_dataset::<f64>()
        }
        .shape(shape)
        .create(name.as_str())
        .at(&element)?;
        h5w::set_encoding(&ds, "array", "0.2.0")?;
        Sink::Dense {
            ds,
            n_cols: shape[1],
            element,
            single,
        }
    } else {
        // A transform never adds entries: the rows' stored entries bound
        // the output's (repeated rows counted each time).
        let bound: u64 = majors.iter().map(|&r| m.nnz_between(r, r + 1)).sum();
        let index_dtype = h5w::sparse_index_dtype(bound);
        let group = parent.create_group(&name).at(&element)?;
        h5w::set_encoding(&group, "csr_matrix", "0.1.0")?;
        h5w::set_i64s_attr(&group, "shape", &[shape[0] as i64, shape[1] as i64])?;
        Sink::Csr {
            data: Appendable::create(
                &group,
                "data",
                if double {
                    DType::Float64
                } else {
                    DType::Float32
                },
                c,
            )?,
            double,
            indices: Appendable::create(&group, "indices", index_dtype, c)?,
            index_dtype,
            indptr: vec![0],
            group,
        }
    };
    let mut writer = PlanWriter { plan: &plan, sink };
    if m.meta.format == Format::Dense {
        pass::run(
            &m,
            &majors,
            &minor,
            pass::block_bytes(),
            control,
            &mut writer,
        )?;
    } else {
        // A view in another order than the file's is read in file order,
        // evaluated and appended in the view's (see reorder.rs).
        reorder::run_in_view_order(&m, &majors, &minor, control, &mut writer)?;
    }
    if let Sink::Csr {
        indptr,
        group,
        mut data,
        mut indices,
        index_dtype,
        ..
    } = writer.sink
    {
        data.finish()?;
        indices.finish()?;
        let nnz = *indptr.last().unwrap_or(&0) as u64;
        let ptr = h5w::ints_as(indptr, h5w::indptr_dtype(index_dtype, nnz));
        h5w::write_growable(&group, "indptr", &ptr, Compression::None)?;
    }
    Ok(())
}
