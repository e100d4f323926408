//! Thin helpers over hdf5-metno: typed attribute and dataset reads that keep
//! the stored dtype, and string reads for every string layout h5py writes.

use crate::dtype::{DType, Values};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::strings::Strings;
use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Container, Dataset, Group, Location};
use std::ops::Range;

/// Open an HDF5 file, mapping failures onto access vs format errors.
pub fn open_file(path: &str, writable: bool) -> Result<hdf5::File> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::new(ErrorKind::FileAccess, format!("cannot open {path}: {e}")).in_file(path)
    })?;
    if meta.is_dir() {
        return Err(
            Error::new(ErrorKind::FileAccess, format!("{path} is a directory")).in_file(path),
        );
    }
    if !meta.is_file() {
        // Opening a FIFO would block until a writer comes; a device is no file.
        return Err(Error::new(
            ErrorKind::FileAccess,
            format!("{path} is not a regular file (a pipe, socket or device)"),
        )
        .in_file(path));
    }
    if meta.len() == 0 {
        return Err(
            Error::format("/", "the file is empty (0 bytes), not an HDF5 file").in_file(path),
        );
    }
    if let Err(e) = std::fs::File::open(path) {
        return Err(
            Error::new(ErrorKind::FileAccess, format!("cannot read {path}: {e}")).in_file(path),
        );
    }
    if !is_hdf5(path) {
        return Err(Error::format("/", "not an HDF5 file (no HDF5 signature)").in_file(path));
    }
    // No chunk cache: passes read each chunk once, straight into our
    // buffers; the cache would only add a copy (measured: ~8% of a pass).
    let fapl = hdf5::plist::FileAccess::build()
        .chunk_cache(521, 0, 1.0)
        .finish()
        .map_err(|e| Error::internal(e.to_string()))?;
    crate::h5vfd::open(path, writable, &fapl).map_err(|text| {
        // HDF5's own wording when another process holds the file lock, or
        // when this process has the file open in another mode.
        let locked = text.contains("unable to lock file");
        let open_here = text.contains("file is already open");
        let kind = if locked || open_here {
            ErrorKind::FileAccess
        } else {
            ErrorKind::Format
        };
        let why = if locked {
            "the file is locked: another process has it open for writing".to_string()
        } else if open_here {
            "the file is already open in this process in another mode (read-only or writable); close() the other AnnData first".to_string()
        } else {
            format!("cannot open as HDF5 (truncated or corrupt?): {text}")
        };
        Error::new(kind, why).at("/").in_file(path)
    })
}

/// HDF5 signature at offset 0, 512, 1024, ... (user blocks) per the spec.
fn is_hdf5(path: &str) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    const SIG: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut offset = 0u64;
    while offset + 8 <= len {
        let mut buf = [0u8; 8];
        if f.seek(SeekFrom::Start(offset)).is_err() || f.read_exact(&mut buf).is_err() {
            return false;
        }
        if &buf == SIG {
            return true;
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    false
}

/// Like `node`, but a link that exists and cannot be followed (an
/// external link to a missing file, or to one that is not a regular file)
/// is an error naming it, not a missing element.
pub fn node_at(group: &Group, name: &str, path: &str) -> Result<Option<Node>> {
    match node(group, name) {
        Some(n) => Ok(Some(n)),
        None if group.link_exists(name) => {
            let target = external_target(group, name)
                .map(|(file, object)| format!(": an external link to {object} in {file}, which cannot be opened (missing, or not a regular HDF5 file)"))
                .unwrap_or_else(|| {
                    ": a link to no group or dataset (a dangling soft link, or a named datatype)"
                        .to_string()
                });
            Err(Error::format(
                path,
                format!("the element cannot be read{target}"),
            ))
        }
        None => Ok(None),
    }
}

/// The (file, object) an external link points to, if `name` is one.
fn external_target(group: &Group, name: &str) -> Option<(String, String)> {
    use hdf5_sys::h5l::{H5L_info2_t, H5L_type_t, H5Lget_info2, H5Lget_val, H5Lunpack_elink_val};
    let cname = std::ffi::CString::new(name).ok()?;
    hdf5::sync::sync(|| {
        // SAFETY: plain HDF5 calls on a live group id; the buffers outlive
        // them, and the unpacked strings point into `buf`.
        unsafe {
            let mut info: H5L_info2_t = std::mem::zeroed();
            if H5Lget_info2(
                group.id(),
                cname.as_ptr(),
                &mut info,
                hdf5_sys::h5p::H5P_DEFAULT,
            ) < 0
                || info.type_ != H5L_type_t::H5L_TYPE_EXTERNAL
            {
                return None;
            }
            let size = *info.u.val_size();
            let mut buf = vec![0u8; size.max(1)];
            if H5Lget_val(
                group.id(),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                size,
                hdf5_sys::h5p::H5P_DEFAULT,
            ) < 0
            {
                return None;
            }
            let (mut file, mut object) = (std::ptr::null(), std::ptr::null());
            if H5Lunpack_elink_val(
                buf.as_ptr().cast(),
                size,
                std::ptr::null_mut(),
                &mut file,
                &mut object,
            ) < 0
                || file.is_null()
                || object.is_null()
            {
                return None;
            }
            let text = |p| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
            Some((text(file), text(object)))
        }
    })
}

/// What kind of object lives at `name` under `group` (None if missing).
pub enum Node {
    Group(Group),
    Dataset(Dataset),
}

pub fn node(group: &Group, name: &str) -> Option<Node> {
    if !group.link_exists(name) {
        return None;
    }
    if let Ok(g) = group.group(name) {
        return Some(Node::Group(g));
    }
    group.dataset(name).ok().map(Node::Dataset)
}

pub fn attr_exists(loc: &Location, name: &str) -> bool {
    loc.attr_names()
        .map(|n| n.iter().any(|a| a == name))
        .unwrap_or(false)
}

/// A scalar string attribute (vlen or fixed, ascii or utf-8).
pub fn attr_string(loc: &Location, name: &str) -> Result<Option<String>> {
    if !attr_exists(loc, name) {
        return Ok(None);
    }
    let attr = loc.attr(name).at(&loc.name())?;
    let strings =
        read_strings_container(&attr).map_err(|e| e.at(&format!("{}@{name}", loc.name())))?;
    Ok(strings.get(0).map(|s| s.to_string()))
}

/// A string-array attribute (e.g. column-order). A numeric (empty) array
/// reads as no strings: anndata writes an empty column-order as float64.
pub fn attr_strings(loc: &Location, name: &str) -> Result<Option<Vec<String>>> {
    if !attr_exists(loc, name) {
        return Ok(None);
    }
    let attr = loc.attr(name).at(&loc.name())?;
    let td = attr
        .dtype()
        .and_then(|t| t.to_descriptor())
        .at(&loc.name())?;
    if DType::from_descriptor(&td) != Some(DType::String) {
        if attr.size() == 0 {
            return Ok(Some(vec![]));
        }
        return Err(Error::format(
            &format!("{}@{name}", loc.name()),
            "expected a string array attribute",
        ));
    }
    let s = read_strings_container(&attr).map_err(|e| e.at(&format!("{}@{name}", loc.name())))?;
    Ok(Some(s.to_vec()))
}

/// An integer array attribute (e.g. shape, h5sparse_shape).
pub fn attr_i64s(loc: &Location, name: &str) -> Result<Option<Vec<i64>>> {
    if !attr_exists(loc, name) {
        return Ok(None);
    }
    let where_ = format!("{}@{name}", loc.name());
    let attr = loc.attr(name).at(&where_)?;
    let td = attr.dtype().and_then(|t| t.to_descriptor()).at(&where_)?;
    match DType::from_descriptor(&td) {
        Some(d) if d.is_numeric() => {}
        _ => return Err(Error::format(&where_, "expected an integer attribute")),
    }
    let v: Vec<f64> = attr.read_raw::<f64>().at(&where_)?;
    if v.iter().any(|x| x.fract() != 0.0 || !x.is_finite()) {
        return Err(Error::format(&where_, "expected integer values"));
    }
    Ok(Some(v.into_iter().map(|x| x as i64).collect()))
}

pub fn attr_bool(loc: &Location, name: &str) -> Result<Option<bool>> {
    if !attr_exists(loc, name) {
        return Ok(None);
    }
    let where_ = format!("{}@{name}", loc.name());
    let attr = loc.attr(name).at(&where_)?;
    let td = attr.dtype().and_then(|t| t.to_descriptor()).at(&where_)?;
    Ok(Some(match DType::from_descriptor(&td) {
        Some(DType::Bool) => attr
            .read_raw::<bool>()
            .at(&where_)?
            .first()
            .copied()
            .unwrap_or(false),
        Some(d) if d.is_numeric() => {
            attr.read_raw::<f64>()
                .at(&where_)?
                .first()
                .copied()
                .unwrap_or(0.0)
                != 0.0
        }
        _ => return Err(Error::format(&where_, "expected a boolean attribute")),
    }))
}

/// Stored dtype of a dataset (or attribute).
pub fn dtype_of(c: &Container, element: &str) -> Result<DType> {
    let dt = c.dtype().at(element)?;
    // float16 (numpy's half; anndata reads it) has no descriptor in
    // hdf5-metno: it is read as float32, HDF5 converting each value exactly.
    if is_half_float(&dt) {
        return Ok(DType::Float32);
    }
    // Another type hdf5-metno cannot describe is valid HDF5 that this
    // reader does not support, not a broken file.
    let td = dt.to_descriptor().map_err(|e| {
        Error::new(
            ErrorKind::UnsupportedEncoding,
            format!("unsupported HDF5 datatype ({e})"),
        )
        .at(element)
    })?;
    DType::from_descriptor(&td).ok_or_else(|| {
        Error::new(
            ErrorKind::UnsupportedEncoding,
            format!("unsupported HDF5 datatype {td}"),
        )
        .at(element)
    })
}

/// The HDF5 class of a datatype (also of types hdf5-metno cannot describe).
fn type_class(dt: &hdf5::Datatype) -> hdf5_sys::h5t::H5T_class_t {
    // SAFETY: a class query on a valid, open datatype id, under HDF5's lock.
    hdf5::sync::sync(|| unsafe { hdf5_sys::h5t::H5Tget_class(dt.id()) })
}

/// A dataset of compound (record) type.
pub fn is_compound(ds: &Dataset) -> bool {
    ds.dtype()
        .is_ok_and(|dt| type_class(&dt) == hdf5_sys::h5t::H5T_class_t::H5T_COMPOUND)
}

/// A dataset of fixed-length ASCII strings (numpy's bytes, `S<n>`).
pub fn is_fixed_ascii(ds: &Dataset) -> bool {
    ds.dtype()
        .and_then(|t| t.to_descriptor())
        .is_ok_and(|td| matches!(td, TypeDescriptor::FixedAscii(_)))
}

/// An HDF5 enum dataset other than numpy's bool: its members and each
/// element's value (R's logical with NA, a factor written by hdf5r).
pub struct EnumValues {
    /// (name, value) in the order the type declares them.
    pub members: Vec<(String, i64)>,
    pub values: Vec<i64>,
}

/// The enum's members and values, or None when `ds` is not such an enum.
pub fn read_enum(ds: &Dataset, element: &str) -> Result<Option<EnumValues>> {
    let dt = ds.dtype().at(element)?;
    if type_class(&dt) != hdf5_sys::h5t::H5T_class_t::H5T_ENUM {
        return Ok(None);
    }
    let Ok(td) = dt.to_descriptor() else {
        return Ok(None);
    };
    // numpy's bool (FALSE/TRUE) is a plain bool column (dtype_of).
    if DType::from_descriptor(&td).is_some() {
        return Ok(None);
    }
    let TypeDescriptor::Enum(e) = td else {
        return Ok(None);
    };
    let width = e.size as usize;
    // SAFETY: an order query on a valid datatype id, under HDF5's lock.
    let big_endian = hdf5::sync::sync(|| unsafe { hdf5_sys::h5t::H5Tget_order(dt.id()) })
        == hdf5_sys::h5t::H5T_order_t::H5T_ORDER_BE;
    // Elements are read as stored (HDF5 converts no enum to an integer), and
    // hdf5-metno gives member values the same way: the stored bytes at the
    // start of a u64. This turns such bits into the integer they store.
    let as_int = |bits: u64| -> i64 {
        let shift = 64 - 8 * width as u32;
        let ordered = if big_endian == cfg!(target_endian = "big") {
            bits
        } else {
            bits.swap_bytes() >> shift
        };
        if e.signed {
            ((ordered << shift) as i64) >> shift
        } else {
            ordered as i64
        }
    };
    crate::limits::check_load(element, ds.size() as u64, width as u64)?;
    let buf = read_as_stored(ds, width)
        .map_err(|_| Error::format(element, "cannot read the enum's values"))?;
    let values = buf
        .chunks_exact(width)
        .map(|b| {
            let mut raw = [0u8; 8];
            raw[..width].copy_from_slice(b);
            as_int(u64::from_ne_bytes(raw))
        })
        .collect();
    // Members in the order of their values (R's factor levels); HDF5 keeps them sorted by name.
    let mut members: Vec<(String, i64)> = e
        .members
        .iter()
        .map(|m| (m.name.clone(), as_int(m.value)))
        .collect();
    members.sort_by_key(|(_, v)| *v);
    Ok(Some(EnumValues { members, values }))
}

/// An IEEE binary16 float datatype.
fn is_half_float(dt: &hdf5::Datatype) -> bool {
    type_class(dt) == hdf5_sys::h5t::H5T_class_t::H5T_FLOAT && dt.size() == 2
}

/// Read a whole numeric dataset keeping its dtype.
pub fn read_values(ds: &Dataset, element: &str) -> Result<Values> {
    read_values_sel(ds, element, None)
}

/// Read `range` of a 1-d numeric dataset keeping its dtype.
pub fn read_values_range(ds: &Dataset, element: &str, range: Range<usize>) -> Result<Values> {
    read_values_sel(ds, element, Some(range))
}

fn read_values_sel(ds: &Dataset, element: &str, range: Option<Range<usize>>) -> Result<Values> {
    let dtype = dtype_of(ds, element)?;
    macro_rules! rd {
        ($t:ty, $variant:ident) => {{
            let v: Vec<$t> = match &range {
                None => ds.read_raw::<$t>().at(element)?,
                Some(r) => {
                    ds.read_slice_1d::<$t, _>(r.clone())
                        .at(element)?
                        .into_raw_vec_and_offset()
                        .0
                }
            };
            Values::$variant(v)
        }};
    }
    Ok(match dtype {
        DType::Bool => {
            let v: Vec<bool> = match &range {
                None => ds.read_raw::<bool>().at(element)?,
                Some(r) => ds.read_slice_1d::<bool, _>(r.clone()).at(element)?.to_vec(),
            };
            Values::Bool(v.into_iter().map(u8::from).collect())
        }
        DType::Int8 => rd!(i8, Int8),
        DType::Int16 => rd!(i16, Int16),
        DType::Int32 => rd!(i32, Int32),
        DType::Int64 => rd!(i64, Int64),
        DType::Uint8 => rd!(u8, Uint8),
        DType::Uint16 => rd!(u16, Uint16),
        DType::Uint32 => rd!(u32, Uint32),
        DType::Uint64 => rd!(u64, Uint64),
        DType::Float32 => rd!(f32, Float32),
        DType::Float64 => rd!(f64, Float64),
        DType::String => {
            return Err(Error::format(
                element,
                "expected a numeric dataset, found strings",
            ))
        }
    })
}

/// Read an integer dataset (indptr, indices, codes) as i64, refusing floats.
pub fn read_ints(ds: &Dataset, element: &str, range: Option<Range<usize>>) -> Result<Vec<i64>> {
    let dtype = dtype_of(ds, element)?;
    match dtype {
        DType::Float32 | DType::Float64 | DType::String | DType::Bool => {
            return Err(Error::format(
                element,
                format!("expected an integer dataset, found {}", dtype.name()),
            ))
        }
        _ => {}
    }
    Ok(match range {
        None => ds.read_raw::<i64>().at(element)?,
        Some(r) => {
            ds.read_slice_1d::<i64, _>(r)
                .at(element)?
                .into_raw_vec_and_offset()
                .0
        }
    })
}

/// Read a string dataset of any layout (vlen/fixed, ascii/utf-8).
pub fn read_strings(ds: &Dataset, element: &str) -> Result<Strings> {
    read_strings_container(ds).map_err(|e| e.at(element))
}

fn read_strings_container(c: &Container) -> Result<Strings> {
    let td = c.dtype().and_then(|t| t.to_descriptor())?;
    let strings = match td {
        TypeDescriptor::VarLenUnicode => read_vlen::<VarLenUnicode>(c, |s| s.as_str()),
        TypeDescriptor::VarLenAscii => read_vlen::<VarLenAscii>(c, |s| s.as_str()),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => read_fixed_strings(c, n),
        other => Err(Error::format(
            "",
            format!("expected strings, found {other}"),
        )),
    }?;
    // Arrow's Utf8 (what JS receives) has int32 offsets: past 2 GiB of
    // text they would wrap and silently garble the column.
    if strings.data.len() > i32::MAX as usize {
        return Err(Error::new(
            ErrorKind::UnsupportedEncoding,
            format!(
                "{} bytes of strings in one element; at most {} (2 GiB) are supported",
                strings.data.len(),
                i32::MAX
            ),
        ));
    }
    Ok(strings)
}

/// Variable-length strings in batches: HDF5 mallocs every string of a read,
/// so reading a million names at once would hold them all twice.
fn read_vlen<T: hdf5::H5Type>(c: &Container, as_str: impl Fn(&T) -> &str) -> Result<Strings> {
    const BATCH: usize = 1 << 16;
    let n = c.size();
    if c.ndim() != 1 || c.id_type() == hdf5_sys::h5i::H5I_ATTR || n <= BATCH {
        let v = c.read_raw::<T>()?;
        return Ok(Strings::from_iter(v.iter().map(&as_str)));
    }
    let mut out = Strings::with_capacity(n, n * 8);
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let v = c.read_slice_1d::<T, _>(start..end)?;
        v.iter().for_each(|s| out.push(as_str(s)));
        start = end;
    }
    Ok(out)
}

/// Fixed-length strings: read the raw bytes with the file's own type and
/// split them; trailing NULs and spaces (nullpad / spacepad) are dropped.
fn read_fixed_strings(c: &Container, n: usize) -> Result<Strings> {
    let count = c.size();
    crate::limits::check_load("", count as u64, n as u64)?;
    let buf =
        read_as_stored(c, n).map_err(|_| Error::format("", "cannot read fixed-length strings"))?;
    let mut out = Strings::with_capacity(count, count * n);
    for i in 0..count {
        let raw = &buf[i * n..(i + 1) * n];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(n);
        out.push(String::from_utf8_lossy(&raw[..end]).trim_end_matches(' '));
    }
    Ok(out)
}

/// Every element of a dataset or attribute as its bytes, read with the
/// file's own type (no conversion): `width` bytes per element.
fn read_as_stored(c: &Container, width: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; c.size() * width];
    let dtype = c.dtype()?;
    if dtype.size() != width {
        return Err(Error::format("", "unexpected element size"));
    }
    // SAFETY: the buffer holds every element at the file type's size (checked
    // above); ids are valid, under HDF5's lock.
    let rc = hdf5::sync::sync(|| unsafe {
        if c.id_type() == hdf5_sys::h5i::H5I_ATTR {
            hdf5_sys::h5a::H5Aread(c.id(), dtype.id(), buf.as_mut_ptr().cast())
        } else {
            hdf5_sys::h5d::H5Dread(
                c.id(),
                dtype.id(),
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5p::H5P_DEFAULT,
                buf.as_mut_ptr().cast(),
            )
        }
    });
    if rc < 0 {
        return Err(Error::format("", "HDF5 read failed"));
    }
    Ok(buf)
}

/// Read rows [a, b) of a 1-d or 2-d numeric dataset as row-major values.
pub fn read_rows(ds: &Dataset, element: &str, rows: Range<usize>) -> Result<Values> {
    if ds.ndim() == 1 {
        return read_values_range(ds, element, rows);
    }
    let dtype = dtype_of(ds, element)?;
    let sel = ndarray::s![rows.start..rows.end, ..];
    macro_rules! rd {
        ($t:ty, $variant:ident) => {{
            let a = ds.read_slice_2d::<$t, _>(sel).at(element)?;
            // A fresh read is row-major from its first element: its buffer
            // is the values (a copy would double the peak of a large read).
            let v = if a.is_standard_layout() {
                let (v, offset) = a.into_raw_vec_and_offset();
                match offset {
                    Some(0) | None => v,
                    Some(o) => v[o..].to_vec(),
                }
            } else {
                a.iter().copied().collect()
            };
            Values::$variant(v)
        }};
    }
    Ok(match dtype {
        DType::Bool => {
            let a = ds.read_slice_2d::<bool, _>(sel).at(element)?;
            Values::Bool(a.iter().map(|&b| u8::from(b)).collect())
        }
        DType::Int8 => rd!(i8, Int8),
        DType::Int16 => rd!(i16, Int16),
        DType::Int32 => rd!(i32, Int32),
        DType::Int64 => rd!(i64, Int64),
        DType::Uint8 => rd!(u8, Uint8),
        DType::Uint16 => rd!(u16, Uint16),
        DType::Uint32 => rd!(u32, Uint32),
        DType::Uint64 => rd!(u64, Uint64),
        DType::Float32 => rd!(f32, Float32),
        DType::Float64 => rd!(f64, Float64),
        DType::String => return Err(Error::format(element, "expected numbers, found strings")),
    })
}

/// Read a range of column/row indices as i32 (what blocks carry). int32
/// storage is read without conversion; wider types are narrowed, checking
/// that every value fits (the caller checks the axis bound).
pub fn read_indices(ds: &Dataset, element: &str, range: Range<usize>) -> Result<Vec<i32>> {
    match dtype_of(ds, element)? {
        DType::Int32 | DType::Int16 | DType::Int8 | DType::Uint8 | DType::Uint16 => Ok(ds
            .read_slice_1d::<i32, _>(range)
            .at(element)?
            .into_raw_vec_and_offset()
            .0),
        _ => {
            let wide = read_ints(ds, element, Some(range))?;
            wide.into_iter()
                .map(|x| {
                    i32::try_from(x)
                        .map_err(|_| Error::format(element, format!("index {x} out of range")))
                })
                .collect()
        }
    }
}
