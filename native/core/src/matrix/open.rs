//! Opening a matrix element: encoding detection (anndata >= 0.8 attributes
//! or the legacy h5sparse attributes) and validation of shape and indptr,
//! so that later block reads can trust the metadata.

use crate::dtype::DType;
use crate::error::{Error, ErrorKind, Result};
use crate::h5;
use crate::limits::check_load;
use hdf5::{Dataset, Group};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csr,
    Csc,
    Dense,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixMeta {
    pub path: String,
    pub format: Format,
    pub shape: [usize; 2],
    pub dtype: DType,
    /// Stored entries (explicit zeros included); n_obs*n_vars for dense.
    pub nnz: u64,
    pub index_dtype: Option<DType>,
    pub indptr_dtype: Option<DType>,
    /// Bytes the element occupies in the file (compressed).
    pub storage_bytes: u64,
    pub compression: Option<String>,
    pub chunks: Option<Vec<usize>>,
}

pub struct Matrix {
    pub meta: MatrixMeta,
    pub(crate) data: Dataset,
    pub(crate) indices: Option<Dataset>,
    /// Whole indptr (n_major + 1 values), validated monotonic.
    pub(crate) indptr: Vec<i64>,
}

impl Matrix {
    pub fn open(root: &Group, path: &str) -> Result<Matrix> {
        match h5::node(root, path) {
            None => Err(Error::format(path, "element is missing")),
            Some(h5::Node::Dataset(ds)) => open_dense(ds, path),
            Some(h5::Node::Group(g)) => open_sparse(g, path),
        }
    }

    /// Length of the stored major axis (rows for CSR/dense, columns for CSC).
    pub fn n_major(&self) -> usize {
        match self.meta.format {
            Format::Csc => self.meta.shape[1],
            _ => self.meta.shape[0],
        }
    }

    pub fn n_minor(&self) -> usize {
        match self.meta.format {
            Format::Csc => self.meta.shape[0],
            _ => self.meta.shape[1],
        }
    }

    /// Stored entries in majors [a, b).
    pub fn nnz_between(&self, a: usize, b: usize) -> u64 {
        match self.meta.format {
            Format::Dense => ((b - a) * self.meta.shape[1]) as u64,
            _ => (self.indptr[b] - self.indptr[a]) as u64,
        }
    }
}

fn compression_of(ds: &Dataset) -> Option<String> {
    use hdf5::filters::Filter;
    ds.filters().iter().find_map(|f| match f {
        Filter::Deflate(l) => Some(format!("gzip({l})")),
        Filter::LZF => Some("lzf".into()),
        Filter::Blosc(c, l, _) => Some(format!("blosc-{c:?}({l})").to_lowercase()),
        Filter::User(id, _) => Some(format!("filter {id}")),
        _ => None,
    })
}

fn open_dense(ds: Dataset, path: &str) -> Result<Matrix> {
    let dtype = h5::dtype_of(&ds, path)?;
    if !dtype.is_numeric() {
        return Err(Error::format(
            path,
            format!("expected a numeric matrix, found {}", dtype.name()),
        ));
    }
    let shape = ds.shape();
    let shape = match shape.len() {
        2 => [shape[0], shape[1]],
        1 => [shape[0], 1],
        // Valid in obsm/varm/uns (anndata allows any leading-axis array),
        // not something the matrix reader does: unsupported, not malformed.
        n => {
            return Err(Error::new(
                ErrorKind::UnsupportedEncoding,
                format!(
                    "{n}-d arrays are not read (1-d and 2-d are); write() copies them \
                     unchanged unless their axis is subset"
                ),
            )
            .at(path))
        }
    };
    let meta = MatrixMeta {
        path: path.to_string(),
        format: Format::Dense,
        shape,
        dtype,
        nnz: (shape[0] as u64) * (shape[1] as u64),
        index_dtype: None,
        indptr_dtype: None,
        storage_bytes: ds.storage_size(),
        compression: compression_of(&ds),
        chunks: ds.chunk(),
    };
    Ok(Matrix {
        meta,
        data: ds,
        indices: None,
        indptr: vec![],
    })
}

fn open_sparse(g: Group, path: &str) -> Result<Matrix> {
    let enc = h5::attr_string(&g, "encoding-type")?;
    let legacy = h5::attr_string(&g, "h5sparse_format")?;
    let format = match (enc.as_deref(), legacy.as_deref()) {
        (Some("csr_matrix"), _) | (None, Some("csr")) => Format::Csr,
        (Some("csc_matrix"), _) | (None, Some("csc")) => Format::Csc,
        (Some(other), _) => {
            return Err(Error::new(
                ErrorKind::UnsupportedEncoding,
                format!("encoding-type '{other}' is not a matrix encoding this reader supports"),
            )
            .at(path))
        }
        (None, _) => {
            return Err(Error::format(
                path,
                "group has no encoding-type attribute and is not a legacy h5sparse matrix",
            ))
        }
    };
    let shape = match h5::attr_i64s(&g, "shape")?.or(h5::attr_i64s(&g, "h5sparse_shape")?) {
        Some(s) if s.len() == 2 && s[0] >= 0 && s[1] >= 0 => [s[0] as usize, s[1] as usize],
        Some(s) => return Err(Error::format(path, format!("bad shape attribute {s:?}"))),
        None => return Err(Error::format(path, "sparse matrix has no shape attribute")),
    };
    let child = |name: &str| -> Result<Dataset> {
        let p = format!("{path}/{name}");
        g.dataset(name)
            .map_err(|_| Error::format(&p, "dataset is missing"))
    };
    let data = child("data")?;
    let indices = child("indices")?;
    let indptr_ds = child("indptr")?;
    let (p_data, p_indices, p_indptr) = (
        format!("{path}/data"),
        format!("{path}/indices"),
        format!("{path}/indptr"),
    );
    let dtype = h5::dtype_of(&data, &p_data)?;
    if !dtype.is_numeric() {
        return Err(Error::format(
            &p_data,
            format!("expected numeric values, found {}", dtype.name()),
        ));
    }
    let index_dtype = h5::dtype_of(&indices, &p_indices)?;
    let indptr_dtype = h5::dtype_of(&indptr_ds, &p_indptr)?;
    for (d, p) in [(index_dtype, &p_indices), (indptr_dtype, &p_indptr)] {
        if matches!(
            d,
            DType::Float32 | DType::Float64 | DType::String | DType::Bool
        ) {
            return Err(Error::format(
                p,
                format!("expected integers, found {}", d.name()),
            ));
        }
    }
    let n_major = if format == Format::Csc {
        shape[1]
    } else {
        shape[0]
    };
    let n_ptr = indptr_ds.size();
    if n_ptr != n_major + 1 {
        return Err(Error::format(
            &p_indptr,
            format!(
                "shape attribute {:?} disagrees with indptr length {n_ptr} (expected {})",
                shape,
                n_major + 1
            ),
        ));
    }
    check_load(&p_indptr, n_ptr as u64, 8)?;
    let indptr = h5::read_ints(&indptr_ds, &p_indptr, None)?;
    let nnz = indices.size() as u64;
    if data.size() as u64 != nnz {
        return Err(Error::format(
            path,
            format!("data has {} entries but indices has {nnz}", data.size()),
        ));
    }
    if indptr.first().copied().unwrap_or(0) != 0 {
        return Err(Error::format(&p_indptr, "indptr does not start at 0"));
    }
    if let Some(bad) = indptr.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::format(
            &p_indptr,
            format!("indptr is not monotonic at position {}", bad + 1),
        ));
    }
    // A major cannot hold more entries than there are minors: this also
    // bounds the memory of any block of majors by its count times n_minor.
    let n_minor = if format == Format::Csc {
        shape[0]
    } else {
        shape[1]
    };
    if let Some(bad) = indptr
        .windows(2)
        .position(|w| (w[1] - w[0]) as u64 > n_minor as u64)
    {
        return Err(Error::format(
            &p_indptr,
            format!(
                "major {bad} holds {} entries, more than the {n_minor} minors of shape {:?}",
                indptr[bad + 1] - indptr[bad],
                shape
            ),
        ));
    }
    if *indptr.last().unwrap_or(&0) as u64 != nnz {
        return Err(Error::format(
            &p_indptr,
            format!(
                "indptr ends at {} but there are {nnz} stored entries",
                indptr.last().unwrap_or(&0)
            ),
        ));
    }
    let storage_bytes = data.storage_size() + indices.storage_size() + indptr_ds.storage_size();
    let meta = MatrixMeta {
        path: path.to_string(),
        format,
        shape,
        dtype,
        nnz,
        index_dtype: Some(index_dtype),
        indptr_dtype: Some(indptr_dtype),
        storage_bytes,
        compression: compression_of(&data),
        chunks: data.chunk(),
    };
    Ok(Matrix {
        meta,
        data,
        indices: Some(indices),
        indptr,
    })
}
