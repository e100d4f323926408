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
