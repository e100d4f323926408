//! The HDF5 file driver every source file is opened with: POSIX `pread` /
//! `pwrite`, like HDF5's default "sec2" driver, plus one check on the bytes
//! it hands HDF5.
//!
//! Why a driver of our own: HDF5 (2.2, and h5py's 2.0) decodes a global
//! heap collection — where variable-length strings live: string columns,
//! indexes, h5py's string attributes — in a loop that never ends when the
//! collection's free-space object (index 0) has size 0. The loop runs inside
//! HDF5's global lock, so one damaged byte in a file would hang the user's
//! kernel for good (anndata hangs on the same file). HDF5 exposes no hook
//! between reading those bytes and decoding them except the driver's `read`,
//! so the driver walks each collection the way HDF5 will and fails the read
//! when the walk would not end; HDF5 then reports a read error, which the
//! caller turns into a typed format error naming the element.
//!
//! HDF5 reads a collection speculatively: its first 4,096 bytes, then the
//! rest from `addr + 4096`. The first read carries the header, so that is
//! where the whole collection (read again here if larger) is checked.
//! Global heap reads reach a driver typed as raw data (H5Fio.c maps them),
//! so they are recognised by their signature instead.

use crate::error::{Error, Result};
use hdf5_sys::h5::{haddr_t, herr_t, hsize_t};
use hdf5_sys::h5f::{H5F_close_degree_t, H5F_mem_t};
use hdf5_sys::h5i::hid_t;
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::sync::OnceLock;

// Values from HDF5 2.2's H5FDdevelop.h / H5FDpublic.h / H5Fpublic.h.
const H5FD_CLASS_VERSION: c_uint = 1;
const H5F_ACC_RDWR: c_uint = 0x0001;
const H5F_ACC_TRUNC: c_uint = 0x0002;
const H5F_ACC_EXCL: c_uint = 0x0004;
const H5F_ACC_CREAT: c_uint = 0x0010;
const FEATURES: c_ulong = 0x0001 // aggregate metadata
    | 0x0002 | 0x0004 // accumulate metadata (writes, reads)
    | 0x0008 // data sieve
    | 0x0010 // aggregate small raw data
    | 0x0080 // get_handle returns a POSIX file descriptor
    | 0x8000; // files it makes open with the default driver
/// sec2's largest address: the largest `off_t`.
const MAX_ADDR: haddr_t = (1 << 63) - 1;
/// A value outside HDF5's reserved range (0..256) and its registered ones.
const DRIVER_VALUE: c_int = 0x4f4f; // "OO"

/// `H5FD_t` of HDF5 2.x: the part of every open file HDF5 fills in after
/// `open` returns. It must come first in [`GuardedFile`].
#[repr(C)]
struct H5fdPublic {
    driver_id: hid_t,
    cls: *const DriverClass,
    fileno: c_ulong,
    access_flags: c_uint,
    feature_flags: c_ulong,
    maxaddr: haddr_t,
    base_addr: haddr_t,
    threshold: hsize_t,
    alignment: hsize_t,
    paged_aggr: bool,
}

#[repr(C)]
struct GuardedFile {
    public: H5fdPublic,
    file: File,
    /// The descriptor `get_handle` points at (it needs a stable address).
    fd: c_int,
    eoa: haddr_t,
    eof: haddr_t,
    device: u64,
    inode: u64,
    /// Bytes in a "length" field of this file (from the superblock).
    size_of_lengths: usize,
}

type Opt<T> = Option<T>;

/// `H5FD_class_t`, version 1 (HDF5 1.14 / 2.x layout).
#[repr(C)]
struct DriverClass {
    version: c_uint,
    value: c_int,
    name: *const c_char,
    maxaddr: haddr_t,
    fc_degree: H5F_close_degree_t,
    terminate: Opt<unsafe extern "C" fn() -> herr_t>,
    sb_size: Opt<unsafe extern "C" fn(*mut c_void) -> hsize_t>,
    sb_encode: Opt<unsafe extern "C" fn(*mut c_void, *mut c_char, *mut u8) -> herr_t>,
    sb_decode: Opt<unsafe extern "C" fn(*mut c_void, *const c_char, *const u8) -> herr_t>,
    fapl_size: usize,
    fapl_get: Opt<unsafe extern "C" fn(*mut c_void) -> *mut c_void>,
    fapl_copy: Opt<unsafe extern "C" fn(*const c_void) -> *mut c_void>,
    fapl_free: Opt<unsafe extern "C" fn(*mut c_void) -> herr_t>,
    dxpl_size: usize,
    dxpl_copy: Opt<unsafe extern "C" fn(*const c_void) -> *mut c_void>,
    dxpl_free: Opt<unsafe extern "C" fn(*mut c_void) -> herr_t>,
    open: Opt<unsafe extern "C" fn(*const c_char, c_uint, hid_t, haddr_t) -> *mut GuardedFile>,
    close: Opt<unsafe extern "C" fn(*mut GuardedFile) -> herr_t>,
    cmp: Opt<unsafe extern "C" fn(*const GuardedFile, *const GuardedFile) -> c_int>,
    query: Opt<unsafe extern "C" fn(*const GuardedFile, *mut c_ulong) -> herr_t>,
    get_type_map: Opt<unsafe extern "C" fn(*const c_void, *mut H5F_mem_t) -> herr_t>,
    alloc: Opt<unsafe extern "C" fn(*mut c_void, H5F_mem_t, hid_t, hsize_t) -> haddr_t>,
    free: Opt<unsafe extern "C" fn(*mut c_void, H5F_mem_t, hid_t, haddr_t, hsize_t) -> herr_t>,
    get_eoa: Opt<unsafe extern "C" fn(*const GuardedFile, H5F_mem_t) -> haddr_t>,
    set_eoa: Opt<unsafe extern "C" fn(*mut GuardedFile, H5F_mem_t, haddr_t) -> herr_t>,
    get_eof: Opt<unsafe extern "C" fn(*const GuardedFile, H5F_mem_t) -> haddr_t>,
    get_handle: Opt<unsafe extern "C" fn(*mut GuardedFile, hid_t, *mut *mut c_void) -> herr_t>,
    read: Opt<
        unsafe extern "C" fn(
            *mut GuardedFile,
            H5F_mem_t,
            hid_t,
            haddr_t,
            usize,
            *mut c_void,
        ) -> herr_t,
    >,
    write: Opt<
        unsafe extern "C" fn(
            *mut GuardedFile,
            H5F_mem_t,
            hid_t,
            haddr_t,
            usize,
            *const c_void,
        ) -> herr_t,
    >,
    // Vector and selection I/O: left out, HDF5 falls back to read / write.
    read_vector: Opt<unsafe extern "C" fn()>,
    write_vector: Opt<unsafe extern "C" fn()>,
    read_selection: Opt<unsafe extern "C" fn()>,
    write_selection: Opt<unsafe extern "C" fn()>,
    flush: Opt<unsafe extern "C" fn(*mut GuardedFile, hid_t, bool) -> herr_t>,
    truncate: Opt<unsafe extern "C" fn(*mut GuardedFile, hid_t, bool) -> herr_t>,
    lock: Opt<unsafe extern "C" fn(*mut GuardedFile, bool) -> herr_t>,
    unlock: Opt<unsafe extern "C" fn(*mut GuardedFile) -> herr_t>,
    del: Opt<unsafe extern "C" fn(*const c_char, hid_t) -> herr_t>,
    ctl: Opt<unsafe extern "C" fn()>,
    fl_map: [H5F_mem_t; 7],
}

// SAFETY: the class is immutable and its only pointer is to a static string.
unsafe impl Sync for DriverClass {}

use H5F_mem_t::{H5FD_MEM_DRAW as DRAW, H5FD_MEM_SUPER as SUPER};

/// open(2)'s O_NONBLOCK on Linux (the platforms this addon is built for).
const O_NONBLOCK: i32 = 0o4000;

static CLASS: DriverClass = DriverClass {
    version: H5FD_CLASS_VERSION,
    value: DRIVER_VALUE,
    name: c"anndata_oom_guarded".as_ptr(),
    maxaddr: MAX_ADDR,
    fc_degree: H5F_close_degree_t::H5F_CLOSE_WEAK,
    terminate: None,
    sb_size: None,
    sb_encode: None,
    sb_decode: None,
    fapl_size: 0,
    fapl_get: None,
    fapl_copy: None,
    fapl_free: None,
    dxpl_size: 0,
    dxpl_copy: None,
    dxpl_free: None,
    open: Some(open_file),
    close: Some(close),
    cmp: Some(cmp),
    query: Some(query),
    get_type_map: None,
    alloc: None,
    free: None,
    get_eoa: Some(get_eoa),
    set_eoa: Some(set_eoa),
    get_eof: Some(get_eof),
    get_handle: Some(get_handle),
    read: Some(read),
    write: Some(write),
    read_vector: None,
    write_vector: None,
    read_selection: None,
    write_selection: None,
    flush: None,
    truncate: Some(truncate),
    lock: Some(lock),
    unlock: Some(unlock),
    del: None,
    ctl: None,
    // sec2's "dichotomy" free-list map: raw data and global heaps apart
    // from the rest.
    fl_map: [SUPER, SUPER, SUPER, DRAW, DRAW, SUPER, SUPER],
};

/// The driver's id, registered with HDF5 on first use.
fn driver_id() -> Result<hid_t> {
    static ID: OnceLock<hid_t> = OnceLock::new();
    if let Some(&id) = ID.get() {
        return Ok(id);
    }
    let id = hdf5::sync::sync(|| {
        // SAFETY: CLASS has HDF5 2.x's H5FD_class_t layout (HDF5 checks its
        // version field) and lives for the whole process.
        unsafe { hdf5_sys::h5fd::H5FDregister((&CLASS as *const DriverClass).cast()) }
    });
    if id < 0 {
        return Err(Error::internal("cannot register the HDF5 file driver"));
    }
    Ok(*ID.get_or_init(|| id))
}

/// Open `path` with this driver and the access settings `fapl` already has.
pub fn open(
    path: &str,
    writable: bool,
    fapl: &hdf5::plist::FileAccess,
) -> std::result::Result<hdf5::File, String> {
    let driver = driver_id().map_err(|e| e.to_string())?;
    let name = CString::new(path).map_err(|_| format!("{path}: the path holds a NUL byte"))?;
    let flags = if writable { H5F_ACC_RDWR } else { 0 };
    hdf5::sync::sync(|| {
        // SAFETY: plain HDF5 calls on a live property list and a C string.
        let id = unsafe {
            if hdf5_sys::h5p::H5Pset_driver(fapl.id(), driver, std::ptr::null()) < 0 {
                return Err("cannot select the HDF5 file driver".to_string());
            }
            hdf5_sys::h5f::H5Fopen(name.as_ptr(), flags, fapl.id())
        };
        let id = hdf5::h5check(id).map_err(|e| e.to_string())?;
        // SAFETY: `id` is a new file id from H5Fopen, owned by the handle.
        unsafe { hdf5::from_id::<hdf5::File>(id) }.map_err(|e| e.to_string())
    })
}

/// HDF5 error ids are process globals; report through them so the message
/// is in the error stack the caller reads.
fn push_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the ids are HDF5's own globals; "%s" takes the one C string.
    unsafe {
        hdf5_sys::h5e::H5Epush2(
            hdf5_sys::h5e::H5E_DEFAULT,
            c"h5vfd.rs".as_ptr(),
            c"anndata_oom_guarded".as_ptr(),
            line!(),
            *hdf5_sys::h5e::H5E_ERR_CLS,
            *hdf5_sys::h5e::H5E_VFL,
            *hdf5_sys::h5e::H5E_READERROR,
            c"%s".as_ptr(),
            text.as_ptr(),
        );
    }
}

unsafe extern "C" fn open_file(
    name: *const c_char,
    flags: c_uint,
    _fapl: hid_t,
    maxaddr: haddr_t,
) -> *mut GuardedFile {
    if name.is_null() || maxaddr == 0 || maxaddr > MAX_ADDR {
        push_error("invalid file name or maximum address");
        return std::ptr::null_mut();
    }
    // SAFETY: HDF5 passes a NUL-terminated file name.
    let path = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(flags & H5F_ACC_RDWR != 0);
    if flags & H5F_ACC_TRUNC != 0 {
        options.truncate(true);
    }
    if flags & H5F_ACC_CREAT != 0 {
        options.create(true);
    }
    if flags & H5F_ACC_EXCL != 0 {
        options.create_new(true);
    }
    // Non-blocking: an external link may name a FIFO, whose open would wait
    // for a writer forever (regular files ignore the flag).
    options.custom_flags(O_NONBLOCK);
    let opened = options
        .open(&path)
        .and_then(|f| f.metadata().map(|m| (f, m)));
    let (file, meta) = match opened {
        Ok(x) => x,
        Err(e) => {
            push_error(&format!("unable to open file: name = '{path}': {e}"));
            return std::ptr::null_mut();
        }
    };
    if !meta.is_file() {
        push_error(&format!(
            "unable to open file: name = '{path}': not a regular file"
        ));
        return std::ptr::null_mut();
    }
    let size_of_lengths = superblock_size_of_lengths(&file, meta.len()).unwrap_or(8);
    let fd = file.as_raw_fd();
    let guarded = GuardedFile {
        // SAFETY: all-zero is a valid H5fdPublic (null pointer, zero ids);
        // HDF5 fills it in after open returns.
        public: unsafe { std::mem::zeroed() },
        file,
        fd,
        eoa: 0,
        eof: meta.len(),
        device: meta.dev(),
        inode: meta.ino(),
        size_of_lengths,
    };
    Box::into_raw(Box::new(guarded))
}

unsafe extern "C" fn close(file: *mut GuardedFile) -> herr_t {
    if !file.is_null() {
        // SAFETY: `file` came from Box::into_raw in `open`, closed once.
        drop(unsafe { Box::from_raw(file) });
    }
    0
}

unsafe extern "C" fn cmp(a: *const GuardedFile, b: *const GuardedFile) -> c_int {
    // SAFETY: HDF5 passes two open files of this driver.
    let (a, b) = unsafe { (&*a, &*b) };
    match (a.device, a.inode).cmp(&(b.device, b.inode)) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }
}

unsafe extern "C" fn query(_file: *const GuardedFile, flags: *mut c_ulong) -> herr_t {
    if !flags.is_null() {
        // SAFETY: HDF5 passes a writable flags word.
        unsafe { *flags = FEATURES };
    }
    0
}

unsafe extern "C" fn get_eoa(file: *const GuardedFile, _type: H5F_mem_t) -> haddr_t {
    // SAFETY: an open file of this driver.
    unsafe { (*file).eoa }
}

unsafe extern "C" fn set_eoa(file: *mut GuardedFile, _type: H5F_mem_t, addr: haddr_t) -> herr_t {
    if addr > MAX_ADDR {
        push_error("address overflow");
        return -1;
    }
    // SAFETY: an open file of this driver.
    unsafe { (*file).eoa = addr };
    0
}

unsafe extern "C" fn get_eof(file: *const GuardedFile, _type: H5F_mem_t) -> haddr_t {
    // SAFETY: an open file of this driver.
    unsafe { (*file).eof }
}

unsafe extern "C" fn get_handle(
    file: *mut GuardedFile,
    _fapl: hid_t,
    handle: *mut *mut c_void,
) -> herr_t {
    if handle.is_null() {
        return -1;
    }
    // SAFETY: an open file of this driver; `fd` lives as long as it does.
    unsafe { *handle = (&raw mut (*file).fd).cast() };
    0
}

unsafe extern "C" fn read(
    file: *mut GuardedFile,
    _type: H5F_mem_t,
    _dxpl: hid_t,
    addr: haddr_t,
    size: usize,
    buf: *mut c_void,
) -> herr_t {
    // SAFETY: an open file of this driver, and a buffer of `size` bytes.
    let (file, out) = unsafe {
        (
            &*file,
            std::slice::from_raw_parts_mut(buf.cast::<u8>(), size),
        )
    };
    if addr
        .checked_add(size as u64)
        .is_none_or(|end| end > MAX_ADDR)
    {
        push_error("addr overflow");
        return -1;
    }
    if let Err(e) = read_at_zero_filled(&file.file, addr, out) {
        push_error(&format!(
            "file read failed at byte {addr} ({size} bytes): {e}"
        ));
        return -1;
    }
    if out.starts_with(GCOL) {
        if let Err(why) = check_collection(file, addr, out) {
            push_error(&why);
            return -1;
        }
    }
    0
}

/// Read `out.len()` bytes at `addr`; bytes past the end of the file read as
/// zeros, as in sec2 (HDF5 relies on it for space it allocated but never
/// wrote).
fn read_at_zero_filled(file: &File, addr: u64, out: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < out.len() {
        match file.read_at(&mut out[done..], addr + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out[done..].fill(0);
    Ok(())
}

unsafe extern "C" fn write(
    file: *mut GuardedFile,
    _type: H5F_mem_t,
    _dxpl: hid_t,
    addr: haddr_t,
    size: usize,
    buf: *const c_void,
) -> herr_t {
    // SAFETY: an open file of this driver, and a buffer of `size` bytes.
    let (file, data) = unsafe {
        (
            &mut *file,
            std::slice::from_raw_parts(buf.cast::<u8>(), size),
        )
    };
    let Some(end) = addr.checked_add(size as u64).filter(|&e| e <= MAX_ADDR) else {
        push_error("addr overflow");
        return -1;
    };
    if let Err(e) = file.file.write_all_at(data, addr) {
        push_error(&format!(
            "file write failed at byte {addr} ({size} bytes): {e}"
        ));
        return -1;
    }
    file.eof = file.eof.max(end);
    0
}

unsafe extern "C" fn truncate(file: *mut GuardedFile, _dxpl: hid_t, _closing: bool) -> herr_t {
    // SAFETY: an open file of this driver.
    let file = unsafe { &mut *file };
    if file.eoa != file.eof {
        if let Err(e) = file.file.set_len(file.eoa) {
            push_error(&format!("unable to extend file properly: {e}"));
            return -1;
        }
        file.eof = file.eoa;
    }
    0
}

unsafe extern "C" fn lock(file: *mut GuardedFile, rw: bool) -> herr_t {
    // SAFETY: an open file of this driver.
    let file = unsafe { &(*file).file };
    let locked = if rw {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match locked {
        Ok(()) => 0,
        // A file system without locks: go on unlocked, as HDF5 does with
        // HDF5_USE_FILE_LOCKING=BEST_EFFORT.
        Err(std::fs::TryLockError::Error(e)) if e.raw_os_error() == Some(38) => 0,
        Err(e) => {
            push_error(&format!("unable to lock file: {e}"));
            -1
        }
    }
}

unsafe extern "C" fn unlock(file: *mut GuardedFile) -> herr_t {
    // SAFETY: an open file of this driver.
    match unsafe { &(*file).file }.unlock() {
        Ok(()) => 0,
        Err(e) if e.raw_os_error() == Some(38) => 0,
        Err(e) => {
            push_error(&format!("unable to unlock file: {e}"));
            -1
        }
    }
}

const GCOL: &[u8] = b"GCOL";
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// The superblock's "size of lengths" (bytes), found at offset 0, 512, 1024,
/// … as the format allows (a user block may come first).
fn superblock_size_of_lengths(file: &File, len: u64) -> Option<usize> {
    let mut offset = 0u64;
    while offset + 16 <= len {
        let mut head = [0u8; 16];
        file.read_exact_at(&mut head, offset).ok()?;
        if &head[..8] == SIGNATURE {
            let at = match head[8] {
                0 | 1 => 14,
                _ => 10,
            };
            return Some(head[at] as usize).filter(|n| matches!(n, 2 | 4 | 8));
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    None
}

/// Walk the global heap collection whose first bytes are `head` (read at
/// `addr`) the way HDF5's `H5HG__cache_heap_deserialize` will, and refuse
/// an object that would not move the walk forward or would move it past the
/// collection's end. HDF5 refuses the latter itself; the former (a
/// free-space object of size 0) makes it loop forever. Bytes that only look
/// like a collection (raw data starting "GCOL") pass unless they parse as
/// one.
fn check_collection(file: &GuardedFile, addr: u64, head: &[u8]) -> std::result::Result<(), String> {
    let n = file.size_of_lengths;
    let header = 8 + n;
    if head.len() < header || head[4] != 1 {
        return Ok(());
    }
    let size = read_length(&head[8..8 + n]);
    if size < 4096 || size > file.eof.saturating_sub(addr) {
        return Ok(()); // HDF5 refuses these itself
    }
    let whole;
    let bytes = if size as usize <= head.len() {
        &head[..size as usize]
    } else {
        let mut buf = vec![0u8; size as usize];
        if read_at_zero_filled(&file.file, addr, &mut buf).is_err() {
            return Ok(()); // HDF5's own read of the rest will fail
        }
        whole = buf;
        &whole[..]
    };
    walk_collection(bytes, n).map_err(|(offset, index, object_size)| {
        format!(
            "damaged global heap collection (where variable-length strings are stored) at byte \
             {addr}: object {index} at offset {offset} has size {object_size}"
        )
    })
}

/// The walk of [`check_collection`] over a whole collection; an error gives
/// the offending object's offset, index and stored size.
fn walk_collection(bytes: &[u8], n: usize) -> std::result::Result<(), (usize, u16, u64)> {
    let object_header = 8 + n;
    let end = bytes.len();
    let mut p = 8 + n;
    while p < end {
        if p + object_header > end {
            break; // a tail too small for a header is free space
        }
        let index = u16::from_le_bytes([bytes[p], bytes[p + 1]]);
        let object_size = read_length(&bytes[p + 8..p + 8 + n]);
        let need = if index > 0 {
            object_size
                .checked_add(7)
                .map(|s| s / 8 * 8 + object_header as u64)
        } else {
            Some(object_size)
        };
        match need {
            Some(need) if need > 0 && need <= (end - p) as u64 => p += need as usize,
            _ => return Err((p, index, object_size)),
        }
    }
    Ok(())
}

fn read_length(field: &[u8]) -> u64 {
    field
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::walk_collection;

    fn collection(objects: &[(u16, u64, usize)], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[..4].copy_from_slice(b"GCOL");
        b[4] = 1;
        b[8..16].copy_from_slice(&(size as u64).to_le_bytes());
        let mut p = 16;
        for &(index, object_size, advance) in objects {
            b[p..p + 2].copy_from_slice(&index.to_le_bytes());
            b[p + 8..p + 16].copy_from_slice(&object_size.to_le_bytes());
            p += advance;
        }
        b
    }

    #[test]
    fn a_well_formed_collection_passes() {
        // Two 5-byte strings (16 + 8 bytes each), then free space to the end.
        let free = 4096 - 16 - 48;
        let b = collection(&[(1, 5, 24), (2, 5, 24), (0, free as u64, free)], 4096);
        assert_eq!(walk_collection(&b, 8), Ok(()));
    }

    #[test]
    fn a_free_space_object_of_size_zero_is_refused() {
        let b = collection(&[(1, 5, 24), (0, 0, 0)], 4096);
        assert_eq!(walk_collection(&b, 8), Err((40, 0, 0)));
    }

    #[test]
    fn an_object_past_the_end_is_refused() {
        let b = collection(&[(1, 1 << 40, 0)], 4096);
        assert!(walk_collection(&b, 8).is_err());
        // The size that would wrap HDF5's pointer arithmetic round.
        let b = collection(&[(0, u64::MAX - 15, 0)], 4096);
        assert!(walk_collection(&b, 8).is_err());
    }
}
