//! Core values to JS objects. Typed buffers move into JS typed arrays
//! without copying element by element; int64/uint64 become Float64Array
//! (exact up to 2^53) since BigInt arrays are unusable for arithmetic.

use anndata_oom_core::dataframe::Column;
use anndata_oom_core::dtype::Values;
use anndata_oom_core::matrix::{Block, BlockData};
use anndata_oom_core::strings::Strings;
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// One typed array; exactly one field is set, chosen by `dtype`.
#[napi(object)]
pub struct TypedOut {
    pub dtype: String,
    pub f32: Option<Float32Array>,
    pub f64: Option<Float64Array>,
    pub i8: Option<Int8Array>,
    pub i16: Option<Int16Array>,
    pub i32: Option<Int32Array>,
    pub u8: Option<Uint8Array>,
    pub u16: Option<Uint16Array>,
    pub u32: Option<Uint32Array>,
}

pub fn typed(v: Values) -> TypedOut {
    let mut out = TypedOut {
        dtype: v.dtype().name().to_string(),
        f32: None,
        f64: None,
        i8: None,
        i16: None,
        i32: None,
        u8: None,
        u16: None,
        u32: None,
    };
    match v {
        Values::Bool(x) | Values::Uint8(x) => out.u8 = Some(Uint8Array::new(x)),
        Values::Int8(x) => out.i8 = Some(Int8Array::new(x)),
        Values::Int16(x) => out.i16 = Some(Int16Array::new(x)),
        Values::Int32(x) => out.i32 = Some(Int32Array::new(x)),
        Values::Uint16(x) => out.u16 = Some(Uint16Array::new(x)),
        Values::Uint32(x) => out.u32 = Some(Uint32Array::new(x)),
        Values::Float32(x) => out.f32 = Some(Float32Array::new(x)),
        Values::Float64(x) => out.f64 = Some(Float64Array::new(x)),
        Values::Int64(x) => {
            out.f64 = Some(Float64Array::new(x.into_iter().map(|a| a as f64).collect()))
        }
        Values::Uint64(x) => {
            out.f64 = Some(Float64Array::new(x.into_iter().map(|a| a as f64).collect()))
        }
    }
    out
}

/// Strings in Arrow Utf8 layout.
#[napi(object)]
pub struct StringsOut {
    pub offsets: Int32Array,
    pub data: Uint8Array,
}

pub fn strings(s: Strings) -> StringsOut {
    let offsets = if s.offsets.is_empty() {
        vec![0]
    } else {
        s.offsets
    };
    StringsOut {
        offsets: Int32Array::new(offsets),
        data: Uint8Array::new(s.data),
    }
}

/// A decoded dataframe column or 1-d element. `kind` is one of numeric,
/// strings, nullable, categorical; masks use 1 = missing.
#[napi(object)]
pub struct ColumnOut {
    pub kind: String,
    pub values: Option<TypedOut>,
    pub strings: Option<StringsOut>,
    pub mask: Option<Uint8Array>,
    pub boolean: Option<bool>,
    pub codes: Option<Int32Array>,
    pub categories: Option<CategoriesOut>,
    pub ordered: Option<bool>,
}

impl ColumnOut {
    fn empty(kind: &str) -> Self {
        ColumnOut {
            kind: kind.into(),
            values: None,
            strings: None,
            mask: None,
            boolean: None,
            codes: None,
            categories: None,
            ordered: None,
        }
    }
}

pub fn column(c: Column) -> ColumnOut {
    match c {
        Column::Numeric(v) => ColumnOut {
            values: Some(typed(v)),
            ..ColumnOut::empty("numeric")
        },
        Column::Strings { strings: s, mask } => ColumnOut {
            strings: Some(strings(s)),
            mask: mask.map(Uint8Array::new),
            ..ColumnOut::empty("strings")
        },
        Column::Nullable {
            values,
            mask,
            boolean,
        } => ColumnOut {
            values: Some(typed(values)),
            mask: Some(Uint8Array::new(mask)),
            boolean: Some(boolean),
            ..ColumnOut::empty("nullable")
        },
        Column::Categorical {
            codes,
            categories,
            ordered,
        } => ColumnOut {
            codes: Some(Int32Array::new(codes)),
            categories: Some(categories_out(*categories)),
            ordered: Some(ordered),
            ..ColumnOut::empty("categorical")
        },
    }
}

/// Categories of a categorical: strings or numbers.
#[napi(object)]
pub struct CategoriesOut {
    pub values: Option<TypedOut>,
    pub strings: Option<StringsOut>,
}

fn categories_out(c: Column) -> CategoriesOut {
    match c {
        Column::Strings { strings: s, .. } => CategoriesOut {
            values: None,
            strings: Some(strings(s)),
        },
        Column::Numeric(v) | Column::Nullable { values: v, .. } => CategoriesOut {
            values: Some(typed(v)),
            strings: None,
        },
        Column::Categorical { .. } => CategoriesOut {
            values: None,
            strings: Some(strings(Strings::default())),
        },
    }
}

/// A block of rows: CSR (indptr local to the block) or row-major dense.
#[napi(object)]
pub struct BlockOut {
    pub format: String,
    pub n_rows: u32,
    pub n_cols: u32,
    pub indptr: Option<Float64Array>,
    pub indices: Option<Int32Array>,
    pub data: TypedOut,
}

pub fn block(b: Block, format: &str) -> BlockOut {
    match b.data {
        BlockData::Compressed {
            indptr,
            indices,
            values,
        } => BlockOut {
            format: format.into(),
            n_rows: b.n_major as u32,
            n_cols: b.n_minor as u32,
            indptr: Some(Float64Array::new(
                indptr.into_iter().map(|x| x as f64).collect(),
            )),
            indices: Some(Int32Array::new(indices)),
            data: typed(values),
        },
        BlockData::Dense { values } => BlockOut {
            format: "dense".into(),
            n_rows: b.n_major as u32,
            n_cols: b.n_minor as u32,
            indptr: None,
            indices: None,
            data: typed(values),
        },
    }
}

/// A typed array from JS back into core values (`dtype` says how to read it).
pub fn values_in(t: &TypedOut) -> napi::Result<Values> {
    let bad = || napi::Error::from_reason(format!("array data does not match dtype {}", t.dtype));
    Ok(match t.dtype.as_str() {
        "bool" => Values::Bool(t.u8.as_ref().ok_or_else(bad)?.to_vec()),
        "uint8" => Values::Uint8(t.u8.as_ref().ok_or_else(bad)?.to_vec()),
        "int8" => Values::Int8(t.i8.as_ref().ok_or_else(bad)?.to_vec()),
        "int16" => Values::Int16(t.i16.as_ref().ok_or_else(bad)?.to_vec()),
        "int32" => Values::Int32(t.i32.as_ref().ok_or_else(bad)?.to_vec()),
        "uint16" => Values::Uint16(t.u16.as_ref().ok_or_else(bad)?.to_vec()),
        "uint32" => Values::Uint32(t.u32.as_ref().ok_or_else(bad)?.to_vec()),
        "float32" => Values::Float32(t.f32.as_ref().ok_or_else(bad)?.to_vec()),
        "float64" => Values::Float64(t.f64.as_ref().ok_or_else(bad)?.to_vec()),
        "int64" => Values::Int64(
            t.f64
                .as_ref()
                .ok_or_else(bad)?
                .iter()
                .map(|&x| x as i64)
                .collect(),
        ),
        "uint64" => Values::Uint64(
            t.f64
                .as_ref()
                .ok_or_else(bad)?
                .iter()
                .map(|&x| x as u64)
                .collect(),
        ),
        other => {
            return Err(napi::Error::from_reason(format!(
                "unsupported dtype {other}"
            )))
        }
    })
}

fn strings_in(s: &StringsOut) -> Strings {
    Strings {
        offsets: s.offsets.to_vec(),
        data: s.data.to_vec(),
    }
}

/// A column from JS (the same shape as ColumnOut) into a core column.
pub fn column_in(c: &ColumnOut) -> napi::Result<Column> {
    let missing =
        |what: &str| napi::Error::from_reason(format!("column of kind {} has no {what}", c.kind));
    Ok(match c.kind.as_str() {
        "numeric" => Column::Numeric(values_in(
            c.values.as_ref().ok_or_else(|| missing("values"))?,
        )?),
        "strings" => Column::Strings {
            strings: strings_in(c.strings.as_ref().ok_or_else(|| missing("strings"))?),
            mask: c.mask.as_ref().map(|m| m.to_vec()),
        },
        "nullable" => Column::Nullable {
            values: values_in(c.values.as_ref().ok_or_else(|| missing("values"))?)?,
            mask: c.mask.as_ref().ok_or_else(|| missing("mask"))?.to_vec(),
            boolean: c.boolean.unwrap_or(false),
        },
        "categorical" => {
            let cats = c.categories.as_ref().ok_or_else(|| missing("categories"))?;
            let categories = match (&cats.strings, &cats.values) {
                (Some(s), _) => Column::Strings {
                    strings: strings_in(s),
                    mask: None,
                },
                (None, Some(v)) => Column::Numeric(values_in(v)?),
                _ => return Err(missing("category values")),
            };
            Column::Categorical {
                codes: c.codes.as_ref().ok_or_else(|| missing("codes"))?.to_vec(),
                categories: Box::new(categories),
                ordered: c.ordered.unwrap_or(false),
            }
        }
        other => {
            return Err(napi::Error::from_reason(format!(
                "unknown column kind {other}"
            )))
        }
    })
}
