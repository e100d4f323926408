//! On-disk matrices (X, layers, obsm/obsp entries): CSR, CSC or dense,
//! opened with their metadata validated, read in blocks along the stored
//! major axis with any selection on the minor axis.

mod block;
mod open;
mod rows;
mod select;

pub use block::{Block, BlockData};
pub use open::{Format, Matrix, MatrixMeta};
pub use select::MinorMap;
