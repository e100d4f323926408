//! The streaming pass: a reader thread decodes blocks (HDF5 is serialised
//! by a global lock anyway) into a bounded channel while the calling
//! thread feeds them to an accumulator, so decode and compute overlap and
//! at most `IN_FLIGHT + 1` blocks are in memory. Progress and cancellation
//! go through a shared `Control`, checked once per block.

use crate::error::{Error, Result};
use crate::matrix::{Block, Format, Matrix, MinorMap};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

const IN_FLIGHT: usize = 2;

/// Default bytes of stored data per block.
pub const DEFAULT_BLOCK_BYTES: usize = 8 << 20;

/// Block budget: ANNDATA_OOM_BLOCK_BYTES overrides the default (tuning).
pub fn block_bytes() -> usize {
    std::env::var("ANNDATA_OOM_BLOCK_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&b| b >= 1 << 16)
        .unwrap_or(DEFAULT_BLOCK_BYTES)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub chunks_done: usize,
    pub chunks_total: usize,
    /// Stored entries decoded so far / in total (a proxy for bytes).
    pub entries_done: u64,
    pub entries_total: u64,
    pub bytes_done: u64,
    pub majors_done: usize,
    pub majors_total: usize,
    pub elapsed_ms: f64,
    pub finished: bool,
}

/// Shared state between a running pass and whoever watches it.
pub struct Control {
    cancel: AtomicBool,
    state: Mutex<Progress>,
    changed: Condvar,
    /// When the job was set up: the elapsed time of jobs that do not time
    /// themselves (graph jobs), so that watchers can compute an ETA.
    created: Instant,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            cancel: AtomicBool::new(false),
            state: Mutex::new(Progress::default()),
            changed: Condvar::new(),
            created: Instant::now(),
        }
    }
}

impl Control {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    pub fn snapshot(&self) -> Progress {
        self.state.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Wait until progress changes or `timeout` passes; returns a snapshot.
    pub fn wait(&self, seen_chunks: usize, timeout: Duration) -> Progress {
        let Ok(guard) = self.state.lock() else {
            return Progress::default();
        };
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |p| {
                !p.finished && p.chunks_done == seen_chunks
            })
            .unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// Change the progress; an update that does not set `elapsed_ms` gets
    /// the time since the Control was created.
    pub fn update(&self, f: impl FnOnce(&mut Progress)) {
        if let Ok(mut p) = self.state.lock() {
            let before = p.elapsed_ms;
            f(&mut p);
            if p.elapsed_ms == before {
                p.elapsed_ms = self.created.elapsed().as_secs_f64() * 1e3;
            }
        }
        self.changed.notify_all();
    }
}

/// Where a block's majors sit within the selected majors.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// Consecutive positions from this one (blocks in selection order).
    From(usize),
    /// One position per major (blocks in file order, see `Accumulator::any_order`).
    At(&'a [usize]),
}

impl Rows<'_> {
    /// The selection position of the block's major `k`.
    #[inline]
    pub fn at(&self, k: usize) -> usize {
        match self {
            Rows::From(first) => first + k,
            Rows::At(pos) => pos[k],
        }
    }

    /// The first position, for sinks that only take blocks in selection
    /// order (they do not set `any_order`).
    pub fn first(&self) -> Result<usize> {
        match self {
            Rows::From(first) => Ok(*first),
            Rows::At(_) => Err(Error::internal("a sink was fed blocks out of order")),
        }
    }
}

/// Something that consumes blocks.
pub trait Accumulator {
    fn consume(&mut self, block: &Block, rows: Rows<'_>) -> Result<()>;
    /// Whether the pass may feed the blocks in file order instead of the
    /// selection's (each result lands by its `Rows` position, and sums do
    /// not depend on the order beyond rounding). Sinks that write rows out
    /// one after another must see the selection's order.
    fn any_order(&self) -> bool {
        false
    }
}

/// The selected majors in file order and, for each, its position in the
/// selection; None when they already are in file order. A selection in
/// another order (a permutation, cells sorted by a column) read in its own
/// order touches the file all over for every block: 10x slower on 100k
/// cells of an uncompressed file, and each compressed chunk would be
/// decoded once per block that needs one of its rows.
fn file_order(majors: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
    if majors.windows(2).all(|w| w[0] <= w[1]) {
        return None;
    }
    let mut positions: Vec<usize> = (0..majors.len()).collect();
    positions.sort_by_key(|&k| majors[k]);
    let sorted = positions.iter().map(|&k| majors[k]).collect();
    Some((sorted, positions))
}

/// Split the selected majors into blocks of about `budget_bytes` stored data.
pub fn plan_blocks(
    matrix: &Matrix,
    majors: &[usize],
    budget_bytes: usize,
) -> Vec<std::ops::Range<usize>> {
    let entry_bytes = (matrix.meta.dtype.size()
        + if matrix.meta.format == Format::Dense {
            0
        } else {
            4
        }) as u64;
    let budget_entries = (budget_bytes as u64 / entry_bytes).max(1);
    let chunk_rows = dense_chunk_rows(matrix, entry_bytes);
    let mut out = Vec::new();
    let mut start = 0;
    let mut acc = 0u64;
    for (i, &m) in majors.iter().enumerate() {
        acc += matrix.nnz_between(m, m + 1).max(1);
        // Cut on a chunk-row boundary (or where the selection jumps).
        let at_boundary =
            chunk_rows.is_none_or(|r| (m + 1) % r == 0 || majors.get(i + 1) != Some(&(m + 1)));
        if acc >= budget_entries && at_boundary {
            out.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    if start < majors.len() {
        out.push(start..majors.len());
    }
    out
}

/// At most this many bytes in one row of chunks for blocks to follow it.
const MAX_CHUNK_ROW_BYTES: u64 = 64 << 20;

/// The rows of one chunk of a chunked dense matrix, when blocks should end
/// on its boundaries. Without a chunk cache (see h5::open_file), a chunk
/// that a block boundary cuts is decompressed again for each block it
/// touches (anndata's gzip dense X, chunked by h5py's guess). Blocks then
/// hold whole rows of chunks, up to MAX_CHUNK_ROW_BYTES; beyond, the
/// default blocks are kept, trading time for memory (a 200 MB chunk row
/// peaked at 670 MB).
fn dense_chunk_rows(matrix: &Matrix, entry_bytes: u64) -> Option<usize> {
    if matrix.meta.format != Format::Dense {
        return None;
    }
    let rows = *matrix.meta.chunks.as_ref()?.first()?;
    let row_bytes = entry_bytes * matrix.meta.shape[1].max(1) as u64;
    (rows > 1 && rows as u64 * row_bytes <= MAX_CHUNK_ROW_BYTES).then_some(rows)
}

/// Run one pass over `majors` of `matrix` with `minor` selected.
pub fn run(
    matrix: &Matrix,
    majors: &[usize],
    minor: &MinorMap,
    budget_bytes: usize,
    control: &Control,
    acc: &mut dyn Accumulator,
) -> Result<()> {
    let started = Instant::now();
    let reordered = if acc.any_order() {
        file_order(majors)
    } else {
        None
    };
    let (majors, positions) = match &reordered {
        Some((sorted, positions)) => (&sorted[..], Some(&positions[..])),
        None => (majors, None),
    };
    let blocks = plan_blocks(matrix, majors, budget_bytes);
    let entries_total: u64 = majors.iter().map(|&m| matrix.nnz_between(m, m + 1)).sum();
    control.update(|p| {
        *p = Progress {
            chunks_total: blocks.len(),
            entries_total,
            majors_total: majors.len(),
            ..Default::default()
        }
    });
    let item_bytes = matrix.meta.dtype.size() as u64
        + if matrix.meta.format == Format::Dense {
            0
        } else {
            4
        };
    let result = std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(usize, Block)>>(IN_FLIGHT);
        let blocks = &blocks;
        let reader = s.spawn(move || {
            for r in blocks {
                if control.is_cancelled() {
                    break;
                }
                let item = matrix
                    .read_block(&majors[r.clone()], minor)
                    .map(|b| (r.start, b));
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    break;
                }
            }
        });
        let profile = std::env::var_os("AOOM_PROFILE").is_some();
        let mut busy = Duration::ZERO;
        for item in rx.iter() {
            if control.is_cancelled() {
                break;
            }
            let (first, block) = item?;
            let rows = match positions {
                Some(p) => Rows::At(&p[first..first + block.n_major]),
                None => Rows::From(first),
            };
            let t = Instant::now();
            acc.consume(&block, rows)?;
            busy += t.elapsed();
            let n = block.n_major;
            let stored = block.stored() as u64;
            control.update(|p| {
                p.chunks_done += 1;
                p.majors_done += n;
                p.entries_done += stored;
                p.bytes_done += stored * item_bytes;
                p.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            });
        }
        drop(rx);
        if profile {
            eprintln!(
                "pass: {:?} total, {:?} in the accumulator",
                started.elapsed(),
                busy
            );
        }
        reader
            .join()
            .map_err(|_| Error::internal("reader thread panicked"))?;
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
        Ok(())
    });
    control.update(|p| p.elapsed_ms = started.elapsed().as_secs_f64() * 1e3);
    result
}

/// A hook the embedding sets to hand freed memory back to the OS (the
/// binding's allocator keeps freed pages per thread). Called between the
/// phases of a job whose next phase allocates a lot (e.g. PCA's eigensolver).
static RELEASE_MEMORY: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

pub fn set_release_memory_hook(f: fn()) {
    let _ = RELEASE_MEMORY.set(f);
}

pub fn release_memory() {
    if let Some(f) = RELEASE_MEMORY.get() {
        f();
    }
}

/// Mark the job finished (after its result is stored, so that a watcher
/// woken by this always finds the result).
pub fn finish(control: &Control) {
    control.update(|p| p.finished = true);
}
