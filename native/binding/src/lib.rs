//! napi-rs binding over anndata-oom-core. Thin by design: argument
//! conversion, typed-array output, error mapping, panic containment. Every
//! export is `catch_unwind` (or wraps its worker in `guard`) so a Rust panic
//! becomes a JS error instead of killing the user's kernel.

mod convert;
mod error;
mod file;
mod pass;

pub use file::NativeH5ad;
pub use pass::NativePass;
