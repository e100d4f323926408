//! Core errors cross into JS as a JSON reason that src/engine/errors.ts
//! turns into the matching typed error class.

use anndata_oom_core::{Error, ErrorKind};

pub const PREFIX: &str = "AOOM_ERROR:";

pub fn to_napi(e: Error) -> napi::Error {
    let json = serde_json::json!({
        "code": e.kind.code(),
        "message": e.message,
        "path": e.path,
        "element": e.element,
    });
    napi::Error::new(napi::Status::GenericFailure, format!("{PREFIX}{json}"))
}

/// Run `f`, turning a panic into an Internal error.
pub fn guard<T>(f: impl FnOnce() -> anndata_oom_core::Result<T>) -> napi::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(to_napi),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(to_napi(Error::new(
                ErrorKind::Internal,
                format!("internal error (a bug): {msg}"),
            )))
        }
    }
}
