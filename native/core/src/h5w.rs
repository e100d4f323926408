//! Write helpers: anndata encoding attributes, string and typed datasets,
//! and appendable 1-d datasets for streamed matrices.

use crate::dtype::{DType, Values};
use crate::error::{Context, Error, Result};
use crate::strings::Strings;
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Group, Location};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip(u8),
    Lzf,
}

/// `s` as an HDF5 string stored at `at`. HDF5's strings end at a NUL, so
/// one inside `s` is refused (as h5py does) rather than changed.
pub fn vlen(s: &str, at: &str) -> Result<VarLenUnicode> {
    VarLenUnicode::from_str(s).map_err(|_| {
        let shown: String = s.chars().take(40).collect();
        Error::invalid(format!(
            "the string {:?} holds a NUL character (\\0), which HDF5 strings cannot store",
            shown
        ))
        .at(at)
    })
}

pub fn set_str_attr(loc: &Location, name: &str, value: &str) -> Result<()> {
    let where_ = format!("{}@{name}", loc.name());
    if loc.attr_names().at(&where_)?.iter().any(|a| a == name) {
        loc.delete_attr(name).at(&where_)?;
    }
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)
        .at(&where_)?
        .write_scalar(&vlen(value, &where_)?)
        .at(&where_)
}

pub fn set_encoding(loc: &Location, kind: &str, version: &str) -> Result<()> {
    set_str_attr(loc, "encoding-type", kind)?;
    set_str_attr(loc, "encoding-version", version)
}

pub fn set_strs_attr(loc: &Location, name: &str, values: &[String]) -> Result<()> {
    let where_ = format!("{}@{name}", loc.name());
    if values.is_empty() {
        // anndata writes an empty column-order as an empty float64 array.
        let empty: [f64; 0] = [];
        loc.new_attr_builder()
            .with_data(&empty[..])
            .create(name)
            .at(&where_)?;
        return Ok(());
    }
    let v: Vec<VarLenUnicode> = values
        .iter()
        .map(|s| vlen(s, &where_))
        .collect::<Result<_>>()?;
    loc.new_attr_builder()
        .with_data(&v[..])
        .create(name)
        .at(&where_)?;
    Ok(())
}

pub fn set_i64s_attr(loc: &Location, name: &str, values: &[i64]) -> Result<()> {
    loc.new_attr_builder()
        .with_data(values)
        .create(name)
        .at(&format!("{}@{name}", loc.name()))?;
    Ok(())
}

pub fn set_bool_attr(loc: &Location, name: &str, value: bool) -> Result<()> {
    let where_ = format!("{}@{name}", loc.name());
    loc.new_attr::<bool>()
        .shape(())
        .create(name)
        .at(&where_)?
        .write_scalar(&value)
        .at(&where_)
}

pub fn write_strings(g: &Group, name: &str, s: &Strings, encoding: bool) -> Result<Dataset> {
    let where_ = format!("{}/{name}", g.name());
    let v: Vec<VarLenUnicode> = (0..s.len())
        .map(|i| vlen(s.get(i).unwrap_or(""), &where_))
        .collect::<Result<_>>()?;
    let ds = g
        .new_dataset_builder()
        .with_data(&v[..])
        .create(name)
        .at(&where_)?;
    if encoding {
        set_encoding(&ds, "string-array", "0.2.0")?;
    }
    Ok(ds)
}

/// A numeric dataset with `shape`, holding `values` (row-major).
pub fn write_values(
    g: &Group,
    name: &str,
    values: &Values,
    shape: &[usize],
    c: Compression,
) -> Result<Dataset> {
    let where_ = format!("{}/{name}", g.name());
    macro_rules! w {
        ($v:expr, $t:ty) => {{
            let arr = ndarray::ArrayView::from_shape(ndarray::IxDyn(shape), &$v[..])
                .map_err(|e| Error::internal(format!("shape mismatch writing {where_}: {e}")))?;
            let b = g.new_dataset_builder();
            let b = match c {
                Compression::None => b,
                Compression::Gzip(l) if !arr.is_empty() => b.deflate(l),
                Compression::Lzf if !arr.is_empty() => b.lzf(),
                _ => b,
            };
            b.with_data(arr).create(name).at(&where_)?
        }};
    }
    let ds = match values {
        Values::Bool(v) => {
            let b: Vec<bool> = v.iter().map(|&x| x != 0).collect();
            w!(b, bool)
        }
        Values::Int8(v) => w!(v, i8),
        Values::Int16(v) => w!(v, i16),
        Values::Int32(v) => w!(v, i32),
        Values::Int64(v) => w!(v, i64),
        Values::Uint8(v) => w!(v, u8),
        Values::Uint16(v) => w!(v, u16),
        Values::Uint32(v) => w!(v, u32),
        Values::Uint64(v) => w!(v, u64),
        Values::Float32(v) => w!(v, f32),
        Values::Float64(v) => w!(v, f64),
    };
    Ok(ds)
}

/// `values` as a chunked 1-d dataset without a size limit: the arrays of a
/// sparse matrix, as anndata writes them, so that anndata's
/// `sparse_dataset(...).append` can grow them (it refused contiguous ones).
pub fn write_growable(g: &Group, name: &str, values: &Values, c: Compression) -> Result<()> {
    let mut out = Appendable::create(g, name, values.dtype(), c)?;
    if values.len() < APPEND_CHUNK {
        out.append(values)?;
        return out.finish();
    }
    // Written straight from `values` (append would hold a copy until a chunk is full).
    out.ds = Some(out.create_dataset(APPEND_CHUNK)?);
    out.len = values.len();
    out.write_at(0, values)
}

/// A chunked, growable 1-d dataset that blocks are appended to.
///
/// HDF5 allocates whole chunks, so a 64K-element chunk would make a matrix
/// of a few values cost ~0.5 MB per dataset. The first blocks are therefore
/// kept until a full chunk's worth has arrived; a dataset that ends smaller
/// is created at `finish` with one chunk of exactly its length.
pub struct Appendable {
    group: Group,
    name: String,
    dtype: DType,
    compression: Compression,
    ds: Option<Dataset>,
    /// Blocks not written yet (only before the dataset exists).
    pending: Vec<Values>,
    len: usize,
    element: String,
}

const APPEND_CHUNK: usize = 1 << 16;

impl Appendable {
    pub fn create(g: &Group, name: &str, dtype: DType, c: Compression) -> Result<Appendable> {
        if dtype == DType::String {
            return Err(Error::internal("cannot append strings"));
        }
        Ok(Appendable {
            group: g.clone(),
            name: name.to_string(),
            dtype,
            compression: c,
            ds: None,
            pending: Vec::new(),
            len: 0,
            element: format!("{}/{name}", g.name()),
        })
    }

    fn create_dataset(&self, chunk: usize) -> Result<Dataset> {
        macro_rules! mk {
            ($t:ty) => {{
                let b = self.group.new_dataset::<$t>().chunk(chunk).shape(0..);
                let b = match self.compression {
                    Compression::None => b,
                    Compression::Gzip(l) => b.deflate(l),
                    Compression::Lzf => b.lzf(),
                };
                b.create(self.name.as_str()).at(&self.element)?
            }};
        }
        Ok(match self.dtype {
            DType::Bool => mk!(bool),
            DType::Int8 => mk!(i8),
            DType::Int16 => mk!(i16),
            DType::Int32 => mk!(i32),
            DType::Int64 => mk!(i64),
            DType::Uint8 => mk!(u8),
            DType::Uint16 => mk!(u16),
            DType::Uint32 => mk!(u32),
            DType::Uint64 => mk!(u64),
            DType::Float32 => mk!(f32),
            DType::Float64 => mk!(f64),
            DType::String => return Err(Error::internal("cannot append strings")),
        })
    }

    pub fn append(&mut self, values: &Values) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        if self.ds.is_none() {
            // Copied only until the first full chunk.
            self.len += values.len();
            self.pending.push(values.clone());
            if self.len >= APPEND_CHUNK {
                self.ds = Some(self.create_dataset(APPEND_CHUNK)?);
                self.flush_pending()?;
            }
            return Ok(());
        }
        let lo = self.len;
        self.len += values.len();
        self.write_at(lo, values)
    }

    /// Create the dataset if no full chunk arrived (one chunk of its
    /// length), write what is pending. Call once, after the last append.
    pub fn finish(&mut self) -> Result<()> {
        if self.ds.is_none() {
            self.ds = Some(self.create_dataset(self.len.max(1))?);
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        let mut lo = 0;
        for values in std::mem::take(&mut self.pending) {
            self.write_at(lo, &values)?;
            lo += values.len();
        }
        Ok(())
    }

    fn write_at(&self, lo: usize, values: &Values) -> Result<()> {
        let ds = self
            .ds
            .as_ref()
            .ok_or_else(|| Error::internal("dataset not created"))?;
        let hi = lo + values.len();
        ds.resize(hi).at(&self.element)?;
        macro_rules! w {
            ($v:expr) => {
                ds.write_slice(&$v[..], lo..hi).at(&self.element)?
            };
        }
        match values {
            Values::Bool(v) => {
                let b: Vec<bool> = v.iter().map(|&x| x != 0).collect();
                w!(b)
            }
            Values::Int8(v) => w!(v),
            Values::Int16(v) => w!(v),
            Values::Int32(v) => w!(v),
            Values::Int64(v) => w!(v),
            Values::Uint8(v) => w!(v),
            Values::Uint16(v) => w!(v),
            Values::Uint32(v) => w!(v),
            Values::Uint64(v) => w!(v),
            Values::Float32(v) => w!(v),
            Values::Float64(v) => w!(v),
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Convert an i64 vector to the given integer dtype (for indices/indptr).
/// The dtype of a sparse matrix's index arrays for `nnz` stored entries, as
/// scipy picks it: int32 while it holds nnz, else int64.
pub fn sparse_index_dtype(nnz: u64) -> DType {
    if nnz <= i32::MAX as u64 {
        DType::Int32
    } else {
        DType::Int64
    }
}

/// indptr's dtype: the indices' dtype while that holds `nnz`, else int64.
/// scipy keeps the two alike, and its in-place routines (sort_indices,
/// sum_duplicates, eliminate_zeros: anndata's concat, scanpy's
/// rank_genes_groups) refuse an int64 indptr next to int32 indices.
pub fn indptr_dtype(indices: DType, nnz: u64) -> DType {
    let max = match indices {
        DType::Int8 => i8::MAX as u64,
        DType::Uint8 => u8::MAX as u64,
        DType::Int16 => i16::MAX as u64,
        DType::Uint16 => u16::MAX as u64,
        DType::Int32 => i32::MAX as u64,
        DType::Uint32 => u32::MAX as u64,
        DType::Uint64 => u64::MAX,
        _ => i64::MAX as u64,
    };
    if nnz <= max {
        indices
    } else {
        DType::Int64
    }
}

pub fn ints_as(values: Vec<i64>, dtype: DType) -> Values {
    match dtype {
        DType::Int32 => Values::Int32(values.into_iter().map(|x| x as i32).collect()),
        DType::Uint32 => Values::Uint32(values.into_iter().map(|x| x as u32).collect()),
        DType::Uint64 => Values::Uint64(values.into_iter().map(|x| x as u64).collect()),
        DType::Int16 => Values::Int16(values.into_iter().map(|x| x as i16).collect()),
        DType::Uint16 => Values::Uint16(values.into_iter().map(|x| x as u16).collect()),
        DType::Int8 => Values::Int8(values.into_iter().map(|x| x as i8).collect()),
        DType::Uint8 => Values::Uint8(values.into_iter().map(|x| x as u8).collect()),
        _ => Values::Int64(values),
    }
}
