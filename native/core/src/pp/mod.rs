//! Preprocessing passes. A plan (the lazy transform chain, as data) is
//! evaluated row by row on each block, and any number of row accumulators
//! consume the transformed rows in the same pass. Rows are split into one
//! part per thread; each part feeds its own persistent partial state, and
//! partials merge once at the end, so the hot loop never synchronises.

pub mod clipped;
pub mod expressed;
pub mod gram;
pub mod moments;
pub mod pearson;
pub mod plan;
pub mod qc;
pub mod randomized;
pub mod request;
pub mod runner;
pub mod write;

pub use plan::{Plan, Step};
pub use runner::{PlanPass, RowAccumulator, RowPartial};
