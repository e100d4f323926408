//! napi-rs binding over anndata-oom-core. Thin by design: argument
//! conversion, typed-array output, error mapping, panic containment. Every
//! export is `catch_unwind` (or wraps its worker in `guard`) so a Rust panic
//! becomes a JS error instead of killing the user's kernel.

mod convert;
mod error;
mod file;
mod gene_index;
pub mod graph;
mod pass;
mod pp;

pub use file::NativeH5ad;
pub use gene_index::NativeGeneIndex;

// Blocks are allocated on a pass's reader thread and freed on its consumer
// thread; glibc malloc keeps such memory in per-thread arenas (peak RSS grew
// with file size: 590 MB at 1M cells). mimalloc returns it promptly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub use pass::NativePass;
