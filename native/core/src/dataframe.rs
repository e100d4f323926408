//! Dataframes (obs, var, dataframes inside obsm/uns) and their column
//! encodings: numeric/bool arrays, string-array, categorical (with the
//! legacy `__categories` layout), nullable-integer/-boolean/-string-array.

use crate::dtype::{DType, Values};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::h5::{self, Node};
use crate::limits::check_load;
use crate::strings::Strings;
use hdf5::{Dataset, Group};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub path: String,
    pub encoding: String,
    pub dtype: Option<DType>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataFrameInfo {
    pub path: String,
    /// Name of the index column (anndata's `_index` attribute).
    pub index_name: String,
    pub n_rows: usize,
    pub columns: Vec<ColumnInfo>,
    /// True for anndata < 0.8 files (no encoding attributes).
    pub legacy: bool,
}

/// A decoded column. Masks use 1 = missing.
#[derive(Debug, Clone)]
pub enum Column {
    Numeric(Values),
    Strings {
        strings: Strings,
        mask: Option<Vec<u8>>,
    },
    Nullable {
        values: Values,
        mask: Vec<u8>,
        boolean: bool,
    },
    Categorical {
        codes: Vec<i32>,
        categories: Box<Column>,
        ordered: bool,
    },
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Strings { strings, .. } => strings.len(),
            Column::Nullable { values, .. } => values.len(),
            Column::Categorical { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn open_group(root: &Group, path: &str) -> Result<Group> {
    match h5::node_at(root, path, path)? {
        Some(Node::Group(g)) => Ok(g),
        // anndata ≤ 0.6 stored obs/var as record arrays (compound datasets);
        // any other dataset here is simply not a dataframe.
        Some(Node::Dataset(ds)) => Err(if h5::is_compound(&ds) {
            Error::new(
                ErrorKind::UnsupportedEncoding,
                "dataframe stored as a compound dataset (anndata ≤ 0.6) is not supported; \
                 anndata.read_h5ad(f).write_h5ad(g) converts the file",
            )
            .at(path)
        } else {
            Error::format(path, "expected a dataframe group, found a plain dataset")
        }),
        None => Err(Error::format(path, "dataframe is missing")),
    }
}

/// Describe a dataframe group: index name, column order and encodings.
pub fn describe(root: &Group, path: &str) -> Result<DataFrameInfo> {
    let g = open_group(root, path)?;
    let enc = h5::attr_string(&g, "encoding-type")?;
    if let Some(e) = &enc {
        if e != "dataframe" {
            return Err(Error::format(
                path,
                format!("expected a dataframe, found encoding-type '{e}'"),
            ));
        }
    }
    // anndata < 0.8 keeps categories in a `__categories` subgroup.
    let legacy = enc.is_none() || g.link_exists("__categories");
    let index_name = h5::attr_string(&g, "_index")?.unwrap_or_else(|| "_index".into());
    let n_rows = index_len(&g, path, &index_name)?;
    let order = match h5::attr_strings(&g, "column-order")? {
        Some(o) => o,
        None => g
            .member_names()
            .at(path)?
            .into_iter()
            .filter(|n| n != &index_name && n != "__categories")
            .collect(),
    };
    let mut columns: Vec<ColumnInfo> = Vec::with_capacity(order.len());
    for name in order {
        // A name listed twice is one column (pandas would show it twice;
        // a table keyed by name, and a writer, cannot), and the index is
        // not a column.
        if name == index_name || columns.iter().any(|c| c.name == name) {
            continue;
        }
        let cpath = format!("{path}/{name}");
        let info = crate::element::describe(&g, &name, &cpath)?
            .ok_or_else(|| Error::format(&cpath, "column listed in column-order is missing"))?;
        let encoding = if legacy && has_legacy_categories(&g, &name) {
            "categorical".into()
        } else {
            info.encoding
        };
        columns.push(ColumnInfo {
            name,
            path: cpath,
            encoding,
            dtype: info.dtype,
        });
    }
    Ok(DataFrameInfo {
        path: path.to_string(),
        index_name,
        n_rows,
        columns,
        legacy,
    })
}

/// Rows of a dataframe from its index's shape (without reading it).
fn index_len(g: &Group, path: &str, index_name: &str) -> Result<usize> {
    let ipath = format!("{path}/{index_name}");
    match h5::node(g, index_name) {
        Some(Node::Dataset(d)) => Ok(d.size()),
        Some(Node::Group(ig)) => ig
            .dataset("values")
            .or_else(|_| ig.dataset("codes"))
            .map(|d| d.size())
            .map_err(|_| Error::format(&ipath, "index group has no values")),
        None => Err(Error::format(&ipath, "dataframe index is missing")),
    }
}

fn has_legacy_categories(g: &Group, name: &str) -> bool {
    g.group("__categories")
        .map(|c| c.link_exists(name))
        .unwrap_or(false)
}

/// The dataframe's index as strings (numeric legacy indexes are formatted).
pub fn read_index(root: &Group, path: &str) -> Result<Strings> {
    let g = open_group(root, path)?;
    let index_name = h5::attr_string(&g, "_index")?.unwrap_or_else(|| "_index".into());
    read_index_strings(&g, path, &index_name)
}

/// The index column as stored (keeps nullable-string-array for writing).
pub fn read_index_column(root: &Group, path: &str) -> Result<(String, Column)> {
    let g = open_group(root, path)?;
    let index_name = h5::attr_string(&g, "_index")?.unwrap_or_else(|| "_index".into());
    let col = read_column_in(&g, &index_name, &format!("{path}/{index_name}"), false)?;
    Ok((index_name, col))
}

fn read_index_strings(g: &Group, path: &str, index_name: &str) -> Result<Strings> {
    let ipath = format!("{path}/{index_name}");
    match read_column_in(g, index_name, &ipath, false)? {
        Column::Strings { strings, .. } => Ok(strings),
        Column::Numeric(v) => Ok(Strings::from_iter(v.labels().iter().map(|s| s.as_str()))),
        Column::Categorical {
            codes, categories, ..
        } => match *categories {
            Column::Strings { strings, .. } => {
                // Code -1 is a missing name: anndata reads it as NaN, which
                // becomes the name "nan" once the index is made strings.
                let mut names = Strings::with_capacity(codes.len(), 0);
                for &c in &codes {
                    names.push(if c < 0 {
                        "nan"
                    } else {
                        strings.get(c as usize).unwrap_or("")
                    });
                }
                Ok(names)
            }
            _ => Err(Error::format(&ipath, "unsupported index encoding")),
        },
        _ => Err(Error::format(&ipath, "unsupported index encoding")),
    }
}

/// Read one column of a dataframe by name, checking its length.
pub fn read_column(root: &Group, path: &str, name: &str) -> Result<Column> {
    let g = open_group(root, path)?;
    let legacy = g.link_exists("__categories");
    let index_name = h5::attr_string(&g, "_index")?.unwrap_or_else(|| "_index".into());
    let n_rows = crate::element::describe(&g, &index_name, path)?
        .map(|i| i.shape.first().copied().unwrap_or(0));
    let cpath = format!("{path}/{name}");
    // Check the declared length first: a corrupt column of billions of
    // rows must not be loaded just to find out it is too long.
    if let (Some(n), Some(info)) = (n_rows, crate::element::describe(&g, name, &cpath)?) {
        if let Some(&len) = info.shape.first() {
            if len != n {
                return Err(Error::format(
                    &cpath,
                    format!("column has {len} rows but the index has {n}"),
                ));
            }
        }
    }
    let col = read_column_in(&g, name, &cpath, legacy)?;
    if let Some(n) = n_rows {
        if col.len() != n {
            return Err(Error::format(
                &cpath,
                format!("column has {} rows but the index has {n}", col.len()),
            ));
        }
    }
    Ok(col)
}

/// Read any 1-d column-like element (also used for uns arrays and indexes).
pub fn read_column_in(g: &Group, name: &str, path: &str, legacy: bool) -> Result<Column> {
    match h5::node(g, name) {
        None => Err(Error::format(path, "element is missing")),
        Some(Node::Dataset(ds)) => {
            if legacy && has_legacy_categories(g, name) {
                let cats_ds = g
                    .group("__categories")
                    .and_then(|c| c.dataset(name))
                    .at(path)?;
                let ordered = h5::attr_bool(&cats_ds, "ordered")?.unwrap_or(false);
                let categories =
                    read_plain(&cats_ds, &format!("{}/__categories/{name}", g.name()))?;
                return categorical(&ds, categories, ordered, path);
            }
            let enc = h5::attr_string(&ds, "encoding-type")?;
            match enc.as_deref() {
                None | Some("array") | Some("string-array") => read_plain(&ds, path),
                Some(other) => Err(unsupported(other, path)),
            }
        }
        Some(Node::Group(cg)) => {
            let enc = h5::attr_string(&cg, "encoding-type")?.unwrap_or_default();
            let child = |n: &str| -> Result<Dataset> {
                cg.dataset(n)
                    .map_err(|_| Error::format(&format!("{path}/{n}"), "dataset is missing"))
            };
            match enc.as_str() {
                "categorical" => {
                    let ordered = h5::attr_bool(&cg, "ordered")?.unwrap_or(false);
                    let categories =
                        read_plain(&child("categories")?, &format!("{path}/categories"))?;
                    categorical(
                        &child("codes")?,
                        categories,
                        ordered,
                        &format!("{path}/codes"),
                    )
                }
                "nullable-integer" | "nullable-boolean" | "nullable-string-array" => {
                    let mask_ds = child("mask")?;
                    let values_ds = child("values")?;
                    // Compare the declared lengths before loading either.
                    if values_ds.size() != mask_ds.size() {
                        return Err(Error::format(path, "values and mask lengths differ"));
                    }
                    let mask_path = format!("{path}/mask");
                    check_load(&mask_path, mask_ds.size() as u64, 8)?;
                    let mask = h5::read_values(&mask_ds, &mask_path)?;
                    let mask: Vec<u8> = mask.to_f64().iter().map(|&m| u8::from(m != 0.0)).collect();
                    let vpath = format!("{path}/values");
                    let values = read_plain(&values_ds, &vpath)?;
                    if values.len() != mask.len() {
                        return Err(Error::format(path, "values and mask lengths differ"));
                    }
                    match values {
                        Column::Strings { strings, .. } => Ok(Column::Strings {
                            strings,
                            mask: Some(mask),
                        }),
                        Column::Numeric(values) => Ok(Column::Nullable {
                            values,
                            mask,
                            boolean: enc == "nullable-boolean",
                        }),
                        _ => Err(Error::format(&vpath, "unexpected values")),
                    }
                }
                "" => Err(Error::format(path, "group has no encoding-type")),
                other => Err(unsupported(other, path)),
            }
        }
    }
}

fn unsupported(enc: &str, path: &str) -> Error {
    Error::new(
        ErrorKind::UnsupportedEncoding,
        format!("encoding-type '{enc}' is not supported as a column"),
    )
    .at(path)
}

/// A plain dataset: numbers/bools or strings.
pub fn read_plain(ds: &Dataset, path: &str) -> Result<Column> {
    if let Some(e) = h5::read_enum(ds, path)? {
        return Ok(enum_column(e));
    }
    let dtype = h5::dtype_of(ds, path)?;
    check_load(path, ds.size() as u64, dtype.size() as u64)?;
    if dtype == DType::String {
        Ok(Column::Strings {
            strings: h5::read_strings(ds, path)?,
            mask: None,
        })
    } else {
        Ok(Column::Numeric(h5::read_values(ds, path)?))
    }
}

/// An HDF5 enum column (h5py reads the bare integers; anndata keeps them):
/// R's logical (FALSE / TRUE / NA members) becomes a nullable boolean, any
/// other enum a categorical of its member names in declared order. A value
/// that is no member is missing.
fn enum_column(e: h5::EnumValues) -> Column {
    let logical = |name: &str| -> Option<Option<u8>> {
        match name.to_ascii_lowercase().as_str() {
            "true" => Some(Some(1)),
            "false" => Some(Some(0)),
            "na" => Some(None),
            _ => None,
        }
    };
    let member = |v: i64| e.members.iter().position(|(_, m)| *m == v);
    if e.members.iter().all(|(n, _)| logical(n).is_some()) {
        let mut values = Vec::with_capacity(e.values.len());
        let mut mask = Vec::with_capacity(e.values.len());
        for &v in &e.values {
            let b = member(v).and_then(|i| logical(&e.members[i].0).flatten());
            values.push(b.unwrap_or(0));
            mask.push(u8::from(b.is_none()));
        }
        return Column::Nullable {
            values: Values::Bool(values),
            mask,
            boolean: true,
        };
    }
    let codes = e
        .values
        .iter()
        .map(|&v| member(v).map_or(-1, |i| i as i32))
        .collect();
    let names = Strings::from_iter(e.members.iter().map(|(n, _)| n.as_str()));
    Column::Categorical {
        codes,
        categories: Box::new(Column::Strings {
            strings: names,
            mask: None,
        }),
        ordered: false,
    }
}

fn categorical(
    codes_ds: &Dataset,
    categories: Column,
    ordered: bool,
    codes_path: &str,
) -> Result<Column> {
    check_load(codes_path, codes_ds.size() as u64, 8)?;
    let codes = h5::read_ints(codes_ds, codes_path, None)?;
    let n = categories.len() as i64;
    if let Some(&bad) = codes.iter().find(|&&c| c < -1 || c >= n) {
        return Err(Error::format(
            codes_path,
            format!("categorical code {bad} out of range for {n} categories"),
        ));
    }
    Ok(Column::Categorical {
        codes: codes.into_iter().map(|c| c as i32).collect(),
        categories: Box::new(categories),
        ordered,
    })
}
