//! The gene-major sidecar index: a column-major copy of a matrix element
//! (X or a layer) in a file of its own, so that one gene's values across
//! all cells are one contiguous read of that gene's bytes instead of a
//! full pass over X. Built once per file out of core (see `build`), read
//! with positioned reads (see `read`).
//!
//! Why our own format: the point is that reading a gene costs exactly its
//! bytes. HDF5 (or Zarr) chunked CSC would decode whole chunks and needs
//! the HDF5 lock per read; Arrow/Parquet columns would cost one column per
//! gene (30k columns) or a row group per gene; none compresses counts to
//! ~2 bytes per entry while keeping a single pread per gene. The format is
//! small enough to own:
//!
//! ```text
//! [0, header_len)      magic "AOOMGIX\0", u32 version, u32 json length,
//!                      JSON header (fingerprint, shape, nnz, value kind,
//!                      table offset, file length), padded with spaces
//! [header_len, table)  one blob per gene, in gene order:
//!                        varint nnz, u8 value kind, varint first row,
//!                        varint row deltas, then nnz values (u8 | u16 |
//!                        f32 | f64 LE: the narrowest exact kind of the gene)
//! [totals, table)      n_rows f64 LE row totals
//! [table, end)         n_genes + 1 u64 LE blob offsets, n_genes u32 LE
//!                      CRC-32 of each gene's blob, u32 LE CRC-32 of the
//!                      row totals, u64 FNV-1a checksum of the JSON header
//!                      and this table
//! ```
//!
//! The table's checksum is checked at open; a gene's CRC when that gene is
//! read (crc32fast, SIMD: a few percent of a warm read), and the totals'
//! when they are, so a flipped bit anywhere is a GeneIndexError and the
//! sidecar is rebuilt, never values read wrong.

mod build;
mod format;
mod read;

pub use build::{build, BuildOptions, DEFAULT_BUDGET_BYTES};
pub use format::{Header, ValueKind, FORMAT_VERSION, MAGIC};
pub use read::GeneIndex;
