//! Guards against allocations a corrupt or absurd file could request: Rust
//! aborts the whole process (the user's kernel) on allocation failure, so
//! every whole-element read is checked against a budget first.

use crate::error::{Error, ErrorKind, Result};

/// Largest single element we will load into memory (bytes). Overridable by
/// ANNDATA_OOM_MAX_LOAD_BYTES. The default is 4 GiB: larger elements could
/// not cross into JS anyway (a Node Buffer holds at most 4 GiB).
pub fn max_load_bytes() -> u64 {
    std::env::var("ANNDATA_OOM_MAX_LOAD_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4 << 30)
}

pub fn check_load(element: &str, count: u64, item_bytes: u64) -> Result<()> {
    let bytes = count.saturating_mul(item_bytes);
    if bytes > max_load_bytes() {
        return Err(Error::new(
            ErrorKind::Format,
            format!(
                "element needs {bytes} bytes in memory, over the {} byte limit (absurd shape? set ANNDATA_OOM_MAX_LOAD_BYTES to raise it)",
                max_load_bytes()
            ),
        )
        .at(element));
    }
    Ok(())
}

/// The same budget for memory a computation needs for the options it was
/// given (not an element of the file): an InvalidArgument naming `what`.
pub fn check_work(what: &str, count: u64, item_bytes: u64) -> Result<()> {
    let bytes = count.saturating_mul(item_bytes);
    if bytes > max_load_bytes() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{what} needs {:.1} GB of memory, over the {:.1} GB limit (set ANNDATA_OOM_MAX_LOAD_BYTES to raise it)",
                bytes as f64 / 1e9,
                max_load_bytes() as f64 / 1e9
            ),
        ));
    }
    Ok(())
}
