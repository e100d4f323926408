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
mod select;
pub mod top_eigen;
pub mod write;

pub use plan::{Plan, Step};
pub use runner::{PlanPass, RowAccumulator, RowPartial};

/// Sum of a row's values in four interleaved partial sums: a single running
/// sum waits on the previous addition for every value (4 cycles each),
/// which made row totals one of the costliest parts of a pass. Exact for
/// integer counts (any order is); otherwise within rounding of the serial
/// sum, and the same everywhere a row total is taken (QC totals, normalize).
#[inline]
pub fn row_sum(vals: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let mut quads = vals.chunks_exact(4);
    for q in &mut quads {
        for (l, &x) in lanes.iter_mut().zip(q) {
            *l += x;
        }
    }
    let tail: f64 = quads.remainder().iter().sum();
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}
