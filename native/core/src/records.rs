//! Record arrays (HDF5 compound datasets, numpy structured arrays): anndata
//! writes them as `rec-array` (scanpy's rank_genes_groups names and scores),
//! and anndata ≤ 0.6 stored whole dataframes and obsm/varm that way. A field
//! is read on its own: HDF5 picks it out by name when the memory type is a
//! one-member compound, converting byte order and width as it goes.

use crate::dataframe::Column;
use crate::dtype::Values;
use crate::error::{Error, ErrorKind, Result};
use crate::limits::check_load;
use crate::strings::Strings;
use hdf5::types::{
    CompoundField, CompoundType, FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode,
};
use hdf5::Dataset;

/// The fields of a record-array dataset, in order.
pub fn fields(ds: &Dataset, path: &str) -> Result<Vec<CompoundField>> {
    let td = ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| {
        Error::new(
            ErrorKind::UnsupportedEncoding,
            format!("record array with a field type this reader cannot describe ({e})"),
        )
        .at(path)
    })?;
    match td {
        TypeDescriptor::Compound(c) => {
            let mut f = c.fields;
            f.sort_by_key(|f| f.index);
            Ok(f)
        }
        other => Err(Error::format(
            path,
            format!("expected a record array, found {other}"),
        )),
    }
}

/// One field of a record array: its values and the shape of each row's
/// part (empty for a scalar field, [k] for a k-vector such as X_pca).
pub struct Field {
    pub column: Column,
    pub row_shape: Vec<usize>,
}

/// Read field `f` of every record. HDF5 picks the field out by name when
/// the memory type is a one-member compound.
pub fn read_field(ds: &Dataset, f: &CompoundField, path: &str) -> Result<Field> {
    let fpath = format!("{path}/{}", f.name);
    let (item, row_shape) = match &f.ty {
        TypeDescriptor::FixedArray(base, len) => (base.as_ref().clone(), vec![*len]),
        t => (t.clone(), vec![]),
    };
    let per_row: usize = row_shape.iter().product::<usize>().max(1);
    let n = ds.size();
    check_load(&fpath, (n * per_row) as u64, item.size() as u64)?;
    let mem = TypeDescriptor::Compound(CompoundType {
        fields: vec![CompoundField {
            name: f.name.clone(),
            ty: f.ty.clone(),
            offset: 0,
            index: 0,
        }],
        size: f.ty.size(),
    });
    let unsupported = || {
        Error::new(
            ErrorKind::UnsupportedEncoding,
            format!("record-array field of type {} is not supported", f.ty),
        )
        .at(&fpath)
    };
    let vlen_string = matches!(
        item,
        TypeDescriptor::VarLenAscii | TypeDescriptor::VarLenUnicode
    );
    if matches!(
        item,
        TypeDescriptor::VarLenArray(_)
            | TypeDescriptor::Reference(_)
            | TypeDescriptor::Compound(_)
            | TypeDescriptor::Enum(_)
    ) || (vlen_string && !row_shape.is_empty())
    {
        return Err(unsupported());
    }
    let mem = hdf5::Datatype::from_descriptor(&mem).map_err(|_| unsupported())?;
    if vlen_string {
        // anndata ≥ 0.8 writes rec-array strings as variable-length UTF-8.
        let strings = match item {
            TypeDescriptor::VarLenAscii => {
                read_vlen_field::<VarLenAscii>(ds, &mem, n, |s| s.as_bytes())
            }
            _ => read_vlen_field::<VarLenUnicode>(ds, &mem, n, |s| s.as_bytes()),
        }
        .ok_or_else(|| Error::format(&fpath, "cannot read this record-array field"))?;
        return Ok(Field {
            column: Column::Strings {
                strings,
                mask: None,
            },
            row_shape,
        });
    }
    let column = match item {
        TypeDescriptor::FixedAscii(w) | TypeDescriptor::FixedUnicode(w) if row_shape.is_empty() => {
            let mut buf = vec![0u8; n * w];
            // SAFETY: n records of the one-member memory type (w bytes each).
            unsafe { read_all(ds, &mem, buf.as_mut_ptr().cast(), &fpath)? };
            let mut s = Strings::with_capacity(n, buf.len());
            for raw in buf.chunks_exact(w.max(1)).take(n) {
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                s.push(String::from_utf8_lossy(&raw[..end]).trim_end_matches(' '));
            }
            Column::Strings {
                strings: s,
                mask: None,
            }
        }
        t => Column::Numeric(
            read_numbers(ds, &mem, &t, n * per_row, &fpath)?.ok_or_else(unsupported)?,
        ),
    };
    Ok(Field { column, row_shape })
}

/// Read every record of `ds` as the memory type `mem` into `buf`.
///
/// # Safety
/// `buf` must hold `ds.size()` elements of `mem`'s size.
unsafe fn read_all(
    ds: &Dataset,
    mem: &hdf5::Datatype,
    buf: *mut std::ffi::c_void,
    fpath: &str,
) -> Result<()> {
    // SAFETY: per the contract; ids are valid, under HDF5's lock.
    let rc = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5d::H5Dread(
            ds.id(),
            mem.id(),
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5s::H5S_ALL,
            hdf5_sys::h5p::H5P_DEFAULT,
            buf,
        )
    });
    if rc < 0 {
        return Err(Error::format(fpath, "cannot read this record-array field"));
    }
    Ok(())
}

/// `len` numbers of type `t` (a field's items; len = records × items per
/// record), read straight into typed values; None for a non-numeric `t`.
fn read_numbers(
    ds: &Dataset,
    mem: &hdf5::Datatype,
    t: &TypeDescriptor,
    len: usize,
    fpath: &str,
) -> Result<Option<Values>> {
    macro_rules! typed {
        ($ty:ty, $variant:ident) => {{
            let mut v = vec![<$ty>::default(); len];
            // SAFETY: the one-member memory type is this field's items, so
            // each record is (len / records) values of $ty, laid out in v.
            unsafe { read_all(ds, mem, v.as_mut_ptr().cast(), fpath)? };
            Values::$variant(v)
        }};
    }
    Ok(Some(match t {
        // hdf5-metno's bool is a one-byte enum FALSE = 0 / TRUE = 1.
        TypeDescriptor::Boolean => typed!(u8, Bool),
        TypeDescriptor::Integer(IntSize::U1) => typed!(i8, Int8),
        TypeDescriptor::Integer(IntSize::U2) => typed!(i16, Int16),
        TypeDescriptor::Integer(IntSize::U4) => typed!(i32, Int32),
        TypeDescriptor::Integer(IntSize::U8) => typed!(i64, Int64),
        TypeDescriptor::Unsigned(IntSize::U1) => typed!(u8, Uint8),
        TypeDescriptor::Unsigned(IntSize::U2) => typed!(u16, Uint16),
        TypeDescriptor::Unsigned(IntSize::U4) => typed!(u32, Uint32),
        TypeDescriptor::Unsigned(IntSize::U8) => typed!(u64, Uint64),
        TypeDescriptor::Float(FloatSize::U4) => typed!(f32, Float32),
        TypeDescriptor::Float(FloatSize::U8) => typed!(f64, Float64),
        _ => return Ok(None),
    }))
}

/// A variable-length string field of `n` records, read into HDF5's own
/// string handles (which free what HDF5 allocated when dropped).
fn read_vlen_field<T>(
    ds: &Dataset,
    mem: &hdf5::Datatype,
    n: usize,
    bytes: impl Fn(&T) -> &[u8],
) -> Option<Strings> {
    if mem.size() != std::mem::size_of::<T>() {
        return None;
    }
    let mut v: Vec<T> = Vec::with_capacity(n);
    // SAFETY: T is one pointer (hdf5-types' repr(C) string handle), the
    // layout of the one-member memory type (sizes checked above); HDF5
    // fills all n on success, and only then is the length set.
    unsafe { read_all(ds, mem, v.as_mut_ptr().cast(), "") }.ok()?;
    // SAFETY: see above.
    unsafe { v.set_len(n) };
    let mut out = Strings::with_capacity(n, n * 8);
    for s in &v {
        out.push(&String::from_utf8_lossy(bytes(s)));
    }
    Some(out)
}

/// Every field of a 1-d record array as a column, in field order; fields
/// holding a vector per record are not supported.
pub fn read_records(ds: &Dataset, path: &str) -> Result<Vec<(String, Column)>> {
    if ds.ndim() != 1 {
        return Err(Error::new(
            ErrorKind::UnsupportedEncoding,
            format!("a {}-d record array is not supported", ds.ndim()),
        )
        .at(path));
    }
    let mut out = Vec::new();
    for f in fields(ds, path)? {
        let field = read_field(ds, &f, path)?;
        if !field.row_shape.is_empty() {
            return Err(Error::new(
                ErrorKind::UnsupportedEncoding,
                "a record-array field holding a vector per record is not supported",
            )
            .at(&format!("{path}/{}", f.name)));
        }
        out.push((f.name, field.column));
    }
    Ok(out)
}
