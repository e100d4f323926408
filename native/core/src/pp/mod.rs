//! Preprocessing passes. A plan (the lazy transform chain, as data) is
//! evaluated row by row on each block, and any number of row accumulators
//! consume the transformed rows in the same pass. A block's rows are split
//! into parts (one or more per thread); part i always feeds persistent
//! partial state i, and partials merge once at the end, so the hot loop
//! never synchronises and results do not depend on scheduling.

pub mod chain_stats;
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

/// Integer counts below this take the table paths (QC's top-N histogram,
/// the log1p table): 0..4095 covers nearly every count of a UMI matrix.
pub const SMALL_COUNTS: usize = 4096;

/// The largest value of a row when every value is an integer in
/// 0..SMALL_COUNTS (−0.0 counts as 0); None otherwise. Written without
/// branches or float-to-int casts so that it vectorizes, and always inlined:
/// called out of line, it took 40 % more instructions (1M-cell QC pass).
#[inline(always)]
pub fn small_counts_max(vals: &[f64]) -> Option<usize> {
    // Adding 2^52 rounds any value in [0, 2^52) to an integer.
    const ROUND: f64 = 4_503_599_627_370_496.0;
    let limit = SMALL_COUNTS as f64;
    // Four lanes, and `&` rather than `&&`, so that LLVM emits packed
    // compares. NaN fails `x < limit`.
    let mut bad = [false; 4];
    let mut max = [0.0f64; 4];
    let mut quads = vals.chunks_exact(4);
    let check = |x: f64| !((x >= 0.0) & (x < limit) & ((x + ROUND) - ROUND == x));
    for q in &mut quads {
        for l in 0..4 {
            bad[l] |= check(q[l]);
            max[l] = if q[l] > max[l] { q[l] } else { max[l] };
        }
    }
    for &x in quads.remainder() {
        bad[0] |= check(x);
        max[0] = if x > max[0] { x } else { max[0] };
    }
    if bad.iter().any(|&b| b) {
        return None;
    }
    // Below SMALL_COUNTS, so the cast is exact.
    Some(max.iter().fold(0.0f64, |m, &x| m.max(x)) as usize)
}
