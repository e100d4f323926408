//! Encoding detection for any element, following the anndata on-disk spec
//! (encoding-type / encoding-version attributes, anndata >= 0.8) with a
//! fallback for legacy files that carry no attributes.

use crate::dtype::DType;
use crate::error::{Context, Error, Result};
use crate::h5::{self, Node};
use hdf5::Group;
use serde::Serialize;

/// Encodings this reader understands. Anything else is reported as
/// unsupported when the element is read.
pub const SUPPORTED: &[&str] = &[
    "csr_matrix",
    "csc_matrix",
    "array",
    "dataframe",
    "categorical",
    "string-array",
    "nullable-integer",
    "nullable-boolean",
    "nullable-string-array",
    "string",
    "numeric-scalar",
    "dict",
    "null",
    "raw",
    "anndata",
    "rec-array",
];

#[derive(Debug, Clone, Serialize)]
pub struct ElementInfo {
    pub path: String,
    /// The encoding-type, or one inferred for legacy elements.
    pub encoding: String,
    pub version: Option<String>,
    pub supported: bool,
    pub shape: Vec<usize>,
    pub dtype: Option<DType>,
    /// Dict members in file order (uns and nested dicts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<(String, ElementInfo)>>,
}

/// How deeply dicts (uns) may nest. anndata's own recursive reader gives
/// up (Python's recursion limit) well before this; deeper files are
/// corrupt or hostile, and unbounded recursion would overflow the stack.
pub const MAX_DICT_DEPTH: usize = 256;
/// How many elements one dict tree may hold: bounds the work of a file
/// whose groups are hard-linked into a huge DAG (each level linking the
/// next twice doubles the paths).
const MAX_DICT_ELEMENTS: usize = 1_000_000;

/// The groups on the way down from the element being described (to detect
/// links back to an enclosing group) and the elements seen so far.
#[derive(Default)]
struct Walk {
    ancestors: Vec<(u64, hdf5::LocationToken)>,
    seen: usize,
}

/// Detect the encoding of `name` under `parent` without reading data.
pub fn describe(parent: &Group, name: &str, path: &str) -> Result<Option<ElementInfo>> {
    describe_in(parent, name, path, &mut Walk::default())
}

fn describe_in(
    parent: &Group,
    name: &str,
    path: &str,
    walk: &mut Walk,
) -> Result<Option<ElementInfo>> {
    let Some(node) = h5::node_at(parent, name, path)? else {
        return Ok(None);
    };
    walk.seen += 1;
    if walk.seen > MAX_DICT_ELEMENTS {
        return Err(Error::format(
            path,
            format!("more than {MAX_DICT_ELEMENTS} elements in one dict tree (groups linked many times over?)"),
        ));
    }
    Ok(Some(match node {
        Node::Group(g) => describe_group(&g, path, walk)?,
        Node::Dataset(ds) => {
            let enc = h5::attr_string(&ds, "encoding-type")?;
            let version = h5::attr_string(&ds, "encoding-version")?;
            let dtype = h5::dtype_of(&ds, path).ok();
            let shape = ds.shape();
            let is_scalar = shape.is_empty();
            let inferred = match (dtype, is_scalar) {
                (Some(DType::String), true) => "string",
                (Some(DType::String), false) => "string-array",
                (_, true) => "numeric-scalar",
                _ => "array",
            };
            // A compound dataset without attributes: a record array as
            // anndata ≤ 0.7 stored them (scanpy's rank_genes_groups).
            let inferred = if h5::is_compound(&ds) {
                "rec-array"
            } else if shape == [1] && h5::is_fixed_ascii(&ds) {
                // How anndata ≤ 0.6 stored a string: anndata reads a
                // one-element array of bytes back as that string.
                "string"
            } else {
                inferred
            };
            let encoding = enc.unwrap_or_else(|| inferred.to_string());
            // A dataset with an empty shape and no data type is anndata's None.
            let encoding = if ds.size() == 0 && is_scalar && dtype.is_none() {
                "null".to_string()
            } else {
                encoding
            };
            ElementInfo {
                path: path.to_string(),
                supported: SUPPORTED.contains(&encoding.as_str()),
                encoding,
                version,
                shape,
                dtype,
                children: None,
            }
        }
    }))
}

fn describe_group(g: &Group, path: &str, walk: &mut Walk) -> Result<ElementInfo> {
    let enc = h5::attr_string(g, "encoding-type")?;
    let version = h5::attr_string(g, "encoding-version")?;
    let encoding = match enc {
        Some(e) => e,
        None if h5::attr_string(g, "h5sparse_format")?.as_deref() == Some("csc") => {
            "csc_matrix".into()
        }
        None if h5::attr_exists(g, "h5sparse_format") => "csr_matrix".into(),
        None if h5::attr_exists(g, "_index") => "dataframe".into(),
        None => "dict".into(),
    };
    let mut info = ElementInfo {
        path: path.to_string(),
        supported: SUPPORTED.contains(&encoding.as_str()),
        encoding: encoding.clone(),
        version,
        shape: vec![],
        dtype: None,
        children: None,
    };
    match encoding.as_str() {
        "csr_matrix" | "csc_matrix" => {
            let shape = h5::attr_i64s(g, "shape")?
                .or(h5::attr_i64s(g, "h5sparse_shape")?)
                .unwrap_or_default();
            info.shape = shape.into_iter().map(|x| x.max(0) as usize).collect();
            info.dtype = g
                .dataset("data")
                .ok()
                .and_then(|d| h5::dtype_of(&d, path).ok());
        }
        "dict" | "raw" => {
            if walk.ancestors.len() >= MAX_DICT_DEPTH {
                return Err(Error::format(
                    path,
                    format!("dicts nested more than {MAX_DICT_DEPTH} levels deep"),
                ));
            }
            let here = g.loc_info().map(|i| (i.fileno, i.token)).at(path)?;
            if walk.ancestors.contains(&here) {
                return Err(Error::format(
                    path,
                    "this group is linked inside itself (a cycle of HDF5 links)",
                ));
            }
            walk.ancestors.push(here);
            let mut children = Vec::new();
            for name in g.member_names().unwrap_or_default() {
                let child_path = format!("{}/{name}", path.trim_end_matches('/'));
                if let Some(c) = describe_in(g, &name, &child_path, walk)? {
                    children.push((name, c));
                }
            }
            walk.ancestors.pop();
            info.children = Some(children);
        }
        "categorical" => {
            info.shape = g.dataset("codes").map(|d| d.shape()).unwrap_or_default();
            info.dtype = g
                .dataset("categories")
                .ok()
                .and_then(|d| h5::dtype_of(&d, path).ok());
        }
        "nullable-integer" | "nullable-boolean" | "nullable-string-array" => {
            if let Ok(d) = g.dataset("values") {
                info.shape = d.shape();
                info.dtype = h5::dtype_of(&d, path).ok();
            }
        }
        "dataframe" => {
            let index = h5::attr_string(g, "_index")?.unwrap_or_else(|| "_index".into());
            if let Some(Node::Dataset(d)) = h5::node(g, &index) {
                info.shape = vec![d.size()];
            } else if let Some(Node::Group(ig)) = h5::node(g, &index) {
                info.shape = ig
                    .dataset("values")
                    .map(|d| vec![d.size()])
                    .unwrap_or_default();
            }
        }
        _ => {}
    }
    Ok(info)
}
