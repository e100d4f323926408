//! anndata ≤ 0.6 files, opened through an overlay.
//!
//! Those files store obs, var, obsm, varm, raw.var and raw.varm as compound
//! datasets (numpy record arrays), keep a categorical column's categories
//! in `uns/<column>_categories`, put raw at the top level (`raw.X`,
//! `raw.var`, `raw.varm`) and the neighbors graph in `uns/neighbors` (which
//! `file::graphs_in_uns` moves to obsp for files of any version).
//! Rather than teach every reader those layouts, the file is opened through
//! a small HDF5 file in the current layout: the record arrays converted
//! (they are per-cell and per-gene vectors, small next to X), and external
//! links to everything else in the source (X, raw.X, layers, uns entries),
//! so matrices are still read from the source, in place. The conversion
//! follows anndata's own reading of these files (`read_dataframe_legacy`,
//! `_clean_uns`, `_read_legacy_raw`).

use crate::dataframe::{self, Column};
use crate::dtype::{DType, Values};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::h5::{self, Node};
use crate::h5w::{self, Compression};
use crate::records::{fields, read_field};
use crate::strings::Strings;
use hdf5::types::CompoundField;
use hdf5::{Dataset, Group};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file in anndata ≤ 0.6's layout: obs is a record array.
pub fn is_legacy(root: &Group) -> bool {
    matches!(h5::node(root, "obs"), Some(Node::Dataset(ds)) if h5::is_compound(&ds))
}

/// Open `source` (already open as `root`) through a converted overlay.
/// The overlay is written to a temporary file, reopened read-only and
/// unlinked at once, so nothing is left behind on disk.
pub fn open_overlay(source: &str, root: &Group) -> Result<hdf5::File> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let tmp = std::env::temp_dir().join(format!(
        "anndata-oom-legacy-{}-{}.h5",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = build(source, root, &tmp).and_then(|()| reopen(&tmp));
    let _ = std::fs::remove_file(&tmp);
    result
}

fn reopen(tmp: &Path) -> Result<hdf5::File> {
    // The external-file cache keeps the source open once its first link is
    // followed, so a file later moved over the source's path is not read.
    // The source, reached through external links, is opened with this
    // file's access list, so its global heaps are checked too (h5vfd).
    let fapl = hdf5::plist::FileAccess::build()
        .chunk_cache(521, 0, 1.0)
        .elink_file_cache_size(8)
        .finish()
        .map_err(|e| temp_error(tmp, e))?;
    let path = tmp
        .to_str()
        .ok_or_else(|| temp_error(tmp, "not a UTF-8 path"))?;
    crate::h5vfd::open(path, false, &fapl).map_err(|e| temp_error(tmp, e))
}

fn temp_error(tmp: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::FileAccess,
        format!(
            "cannot write the converted copy of this anndata ≤ 0.6 file's metadata to {} ({e}); \
             set TMPDIR to a writable directory",
            tmp.display()
        ),
    )
}

fn build(source: &str, root: &Group, tmp: &Path) -> Result<()> {
    let source_abs: PathBuf = Path::new(source)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(source));
    let src = source_abs.to_string_lossy().into_owned();
    let out = hdf5::File::create(tmp).map_err(|e| temp_error(tmp, e))?;
    let link = |g: &Group, target: &str, name: &str| -> Result<()> {
        g.link_external(&src, target, name).at(target)
    };
    let uns = UnsCategories::read(root)?;
    let mut used = BTreeSet::new();
    h5w::set_encoding(&out, "anndata", "0.1.0")?;
    let n_obs = convert_frame(root, "obs", &out, "obs", &uns, &mut used)?;
    let n_vars = convert_frame(root, "var", &out, "var", &uns, &mut used)?;
    convert_mapping(root, "obsm", &out, "obsm", n_obs)?;
    convert_mapping(root, "varm", &out, "varm", n_vars)?;
    if root.link_exists("raw.X") || root.link_exists("raw.var") {
        let raw = out.create_group("raw").at("/raw")?;
        h5w::set_encoding(&raw, "raw", "0.1.0")?;
        if root.link_exists("raw.X") {
            link(&raw, "/raw.X", "X")?;
        }
        if root.link_exists("raw.var") {
            // Categories in uns apply to obs and var only (anndata's _clean_uns).
            convert_frame(
                root,
                "raw.var",
                &raw,
                "var",
                &UnsCategories::default(),
                &mut used,
            )?;
        } else {
            // raw.X without raw.var: genes named by position, as anndata does.
            let n = crate::file::matrix_meta(root, "/raw.X").map_or(0, |m| m.shape[1]);
            numbered_frame(&raw, "var", n)?;
        }
        convert_mapping(root, "raw.varm", &raw, "varm", usize::MAX)?;
    }
    let out_uns = out.create_group("uns").at("/uns")?;
    h5w::set_encoding(&out_uns, "dict", "0.1.0")?;
    if let Some(Node::Group(u)) = h5::node(root, "uns") {
        for name in u.member_names().at("/uns")? {
            if used.contains(&name) {
                continue;
            }
            link(&out_uns, &format!("/uns/{name}"), &name)?;
        }
    }
    for name in root.member_names().at("/")? {
        let handled = matches!(
            name.as_str(),
            "obs" | "var" | "obsm" | "varm" | "uns" | "raw.X" | "raw.var" | "raw.varm"
        );
        // (A current-layout element that already exists in the overlay,
        // such as a `raw` group next to `raw.X`, is left out.)
        if handled || out.link_exists(&name) {
            continue;
        }
        link(&out, &format!("/{name}"), &name)?;
    }
    out.close().map_err(|e| temp_error(tmp, e))
}

/// `uns/<name>_categories` entries, by column name.
#[derive(Default)]
struct UnsCategories(Vec<(String, Column)>);

impl UnsCategories {
    fn read(root: &Group) -> Result<UnsCategories> {
        let Some(Node::Group(u)) = h5::node(root, "uns") else {
            return Ok(UnsCategories::default());
        };
        let mut out = Vec::new();
        for key in u.member_names().at("/uns")? {
            let Some(column) = key.strip_suffix("_categories") else {
                continue;
            };
            let Some(Node::Dataset(ds)) = h5::node(&u, &key) else {
                continue;
            };
            let cats = dataframe::read_plain(&ds, &format!("/uns/{key}"))?;
            out.push((column.to_string(), cats));
        }
        Ok(UnsCategories(out))
    }

    fn get(&self, column: &str) -> Option<&Column> {
        self.0.iter().find(|(c, _)| c == column).map(|(_, v)| v)
    }
}

/// The record array at `name` in `root`, or None when absent.
fn record_array(root: &Group, name: &str) -> Result<Option<Dataset>> {
    let path = format!("/{name}");
    match h5::node(root, name) {
        None => Ok(None),
        Some(Node::Dataset(ds)) if h5::is_compound(&ds) => Ok(Some(ds)),
        Some(_) => Err(Error::format(
            &path,
            "expected a record array (anndata ≤ 0.6 layout)",
        )),
    }
}

/// A record-array dataframe as a dataframe group: the first field is the
/// index; an integer column with `uns/<column>_categories` whose codes all
/// fit is categorical (anndata's `_clean_uns`). Returns the row count.
fn convert_frame(
    root: &Group,
    name: &str,
    out: &Group,
    out_name: &str,
    cats: &UnsCategories,
    used: &mut BTreeSet<String>,
) -> Result<usize> {
    let path = format!("/{name}");
    let ds =
        record_array(root, name)?.ok_or_else(|| Error::format(&path, "dataframe is missing"))?;
    if ds.ndim() != 1 {
        return Err(Error::format(&path, "a record-array dataframe must be 1-d"));
    }
    let fields = fields(&ds, &path)?;
    let Some((index_field, columns)) = fields.split_first() else {
        return Err(Error::format(
            &path,
            "record array without fields (no index)",
        ));
    };
    let g = out.create_group(out_name).at(&path)?;
    h5w::set_encoding(&g, "dataframe", "0.2.0")?;
    h5w::set_str_attr(&g, "_index", &index_field.name)?;
    let names: Vec<String> = columns.iter().map(|f| f.name.clone()).collect();
    h5w::set_strs_attr(&g, "column-order", &names)?;
    let scalar = |f: &CompoundField| -> Result<Column> {
        let field = read_field(&ds, f, &path)?;
        if !field.row_shape.is_empty() {
            return Err(Error::new(
                ErrorKind::UnsupportedEncoding,
                "a dataframe column holding a vector per row is not supported",
            )
            .at(&format!("{path}/{}", f.name)));
        }
        Ok(field.column)
    };
    crate::writer::write_column(&g, &index_field.name, &scalar(index_field)?)?;
    for f in columns {
        let mut column = scalar(f)?;
        if let (Column::Numeric(codes), Some(categories)) = (&column, cats.get(&f.name)) {
            if let Some(codes) = codes_within(codes, categories.len()) {
                used.insert(format!("{}_categories", f.name));
                column = Column::Categorical {
                    codes,
                    categories: Box::new(categories.clone()),
                    ordered: false,
                };
            }
        }
        crate::writer::write_column(&g, &f.name, &column)?;
    }
    Ok(ds.size())
}

/// Integer codes when all are below `n` (−1 is missing, as in pandas);
/// None otherwise, and then the column stays as it is (as in anndata).
fn codes_within(codes: &Values, n: usize) -> Option<Vec<i32>> {
    if codes.dtype() == DType::Float32 || codes.dtype() == DType::Float64 {
        return None;
    }
    let v = codes.to_f64();
    v.iter()
        .all(|&c| c >= -1.0 && c < n as f64)
        .then(|| v.iter().map(|&c| c as i32).collect())
}

/// A record array of per-row vectors (obsm, varm) as a dict of arrays.
fn convert_mapping(
    root: &Group,
    name: &str,
    out: &Group,
    out_name: &str,
    n_rows: usize,
) -> Result<()> {
    let path = format!("/{name}");
    let g = out.create_group(out_name).at(&path)?;
    h5w::set_encoding(&g, "dict", "0.1.0")?;
    let Some(ds) = record_array(root, name)? else {
        return Ok(());
    };
    if n_rows != usize::MAX && ds.size() != n_rows {
        return Err(Error::format(
            &path,
            format!(
                "{name} has {} rows but the axis it is aligned to has {n_rows}",
                ds.size()
            ),
        ));
    }
    for f in fields(&ds, &path)? {
        let field = read_field(&ds, &f, &path)?;
        let Column::Numeric(values) = field.column else {
            return Err(Error::new(
                ErrorKind::UnsupportedEncoding,
                "a string field is not supported here",
            )
            .at(&format!("{path}/{}", f.name)));
        };
        let mut shape = vec![ds.size()];
        shape.extend(&field.row_shape);
        let out_ds = h5w::write_values(&g, &f.name, &values, &shape, Compression::None)?;
        h5w::set_encoding(&out_ds, "array", "0.2.0")?;
    }
    Ok(())
}

/// A dataframe of `n` rows named "0", "1", … and no columns.
fn numbered_frame(out: &Group, name: &str, n: usize) -> Result<()> {
    let g = out.create_group(name).at(&format!("/raw/{name}"))?;
    h5w::set_encoding(&g, "dataframe", "0.2.0")?;
    h5w::set_str_attr(&g, "_index", "_index")?;
    h5w::set_strs_attr(&g, "column-order", &[])?;
    let names: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let names = Strings::from_iter(names.iter().map(|s| s.as_str()));
    h5w::write_strings(&g, "_index", &names, true)?;
    Ok(())
}
