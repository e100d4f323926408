//! Block reads along the stored major axis. The requested majors may come
//! in any order (and repeat); they are read as a few coalesced contiguous
//! runs — HDF5 decompresses whole chunks, so many tiny reads would decode
//! the same chunk again and again — and emitted in the requested order.

use super::select::DROPPED;
use super::{Format, Matrix, MinorMap};
use crate::dtype::Values;
use crate::error::{Error, Result};
use crate::h5;
use rayon::prelude::*;

/// Merge two runs when the gap between them is at most this many entries.
const RUN_GAP_ENTRIES: i64 = 1 << 16;
/// ... and while the merged run spans at most this many (one row may span
/// more). Each run is read whole, gaps included: a selection of one row in
/// 30 merged into a single run held ~30× the rows it returned.
const RUN_MAX_ENTRIES: i64 = 1 << 22;

#[derive(Debug, Clone)]
pub struct Block {
    pub n_major: usize,
    pub n_minor: usize,
    pub data: BlockData,
}

#[derive(Debug, Clone)]
pub enum BlockData {
    /// CSR over the block's majors (CSC for a CSC source).
    Compressed {
        indptr: Vec<i64>,
        indices: Vec<i32>,
        values: Values,
    },
    /// Row-major n_major x n_minor.
    Dense { values: Values },
}

impl Block {
    pub fn stored(&self) -> usize {
        match &self.data {
            BlockData::Compressed { values, .. } | BlockData::Dense { values } => values.len(),
        }
    }
}

struct Run {
    first: usize,
    end: usize,
    base: usize,
}

/// Runs of `sorted` majors, where `start_of(m)` is the first entry of major
/// m (and `start_of(m + 1)` its end).
fn runs_of(sorted: &[usize], start_of: impl Fn(usize) -> i64, gap: i64) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for &m in sorted {
        match runs.last_mut() {
            Some(r)
                if start_of(m) - start_of(r.end) <= gap
                    && start_of(m + 1) - start_of(r.first) <= RUN_MAX_ENTRIES =>
            {
                r.end = m + 1
            }
            _ => runs.push(Run {
                first: m,
                end: m + 1,
                base: 0,
            }),
        }
    }
    runs
}

/// Every index in 0..n_minor, or a format error naming the first bad one.
/// The common case (all good) is a branch-free scan that vectorizes: a
/// `find` with its early exit does not, and cost a fifth of the reader
/// thread's time on an 8 MB block.
fn check_indices(indices: &[i32], n_minor: usize, element: &str) -> Result<()> {
    // As u32, negative indices are at least 2^31 (above any limit below):
    // one comparison covers both ends.
    let limit = n_minor.min(1 << 31) as u32;
    let all_good = indices
        .chunks(4096)
        .all(|c| c.iter().fold(true, |ok, &j| ok & ((j as u32) < limit)));
    if all_good {
        return Ok(());
    }
    let bad = indices
        .iter()
        .find(|&&j| (j as u32) >= limit)
        .copied()
        .unwrap_or_default();
    Err(Error::format(
        element,
        format!("index {bad} out of range [0, {n_minor})"),
    ))
}

/// Whether some major (row of CSR) stores the same minor index twice.
/// scipy's canonical format, which anndata writes, has none, but a matrix
/// built by hand from (data, indices, indptr) may; its value is then the
/// sum (scipy's `toarray()`), and passes, which take every stored entry
/// as its own value, need the block summed first (`sum_duplicates`).
/// `ptr` is the indptr of the majors that `indices` holds. Sorted majors
/// descend (an index not above the one before) only where a major starts,
/// so one vectorizable count settles the usual case; unsorted majors
/// (allowed) are then checked one by one.
fn has_duplicates(indices: &[i32], ptr: &[i64]) -> bool {
    let descents = indices
        .iter()
        .skip(1)
        .zip(indices)
        .fold(0usize, |n, (&next, &prev)| n + usize::from(next <= prev));
    has_duplicates_given(indices, ptr, descents)
}

/// check_indices and has_duplicates in one scan of the indices: the
/// streaming path checks every stored index of the file on each pass, on
/// the reader thread.
fn check_block(indices: &[i32], ptr: &[i64], n_minor: usize, element: &str) -> Result<bool> {
    let limit = n_minor.min(1 << 31) as u32;
    let mut good = indices.first().is_none_or(|&j| (j as u32) < limit);
    let mut descents = 0usize;
    let shifted = indices.get(1..).unwrap_or_default();
    for (next, prev) in shifted.chunks(4096).zip(indices.chunks(4096)) {
        // u32 counters (at most 4096 per chunk) keep the lanes narrow.
        let (bad, d) = next
            .iter()
            .zip(prev)
            .fold((0u32, 0u32), |(b, d), (&n, &p)| {
                (b + u32::from((n as u32) >= limit), d + u32::from(n <= p))
            });
        good &= bad == 0;
        descents += d as usize;
    }
    if !good {
        check_indices(indices, n_minor, element)?;
    }
    Ok(has_duplicates_given(indices, ptr, descents))
}

fn has_duplicates_given(indices: &[i32], ptr: &[i64], descents: usize) -> bool {
    if descents == 0 {
        return false;
    }
    let base = ptr[0];
    let mut at_starts = 0;
    let mut last = 0;
    for &p in &ptr[1..ptr.len() - 1] {
        let i = (p - base) as usize;
        if i > last && i < indices.len() {
            at_starts += usize::from(indices[i] <= indices[i - 1]);
            last = i;
        }
    }
    if descents == at_starts {
        return false;
    }
    ptr.windows(2).any(|w| {
        let row = &indices[(w[0] - base) as usize..(w[1] - base) as usize];
        if row.windows(2).all(|p| p[1] > p[0]) {
            return false;
        }
        let mut sorted = row.to_vec();
        sorted.sort_unstable();
        sorted.windows(2).any(|p| p[0] == p[1])
    })
}

impl Block {
    /// scipy's `sum_duplicates` for a compressed block: each major's
    /// entries sorted by minor index, entries of one index summed.
    fn sum_duplicates(self) -> Block {
        let BlockData::Compressed {
            indptr,
            indices,
            values,
        } = self.data
        else {
            return self;
        };
        let mut order: Vec<usize> = Vec::with_capacity(indices.len());
        let mut group_end: Vec<usize> = Vec::with_capacity(indices.len());
        let mut new_ptr = Vec::with_capacity(indptr.len());
        new_ptr.push(0i64);
        let mut new_idx: Vec<i32> = Vec::with_capacity(indices.len());
        for w in indptr.windows(2) {
            let mut row: Vec<usize> = (w[0] as usize..w[1] as usize).collect();
            row.sort_by_key(|&p| indices[p]);
            let row_start = new_idx.len();
            for p in row {
                if new_idx.len() == row_start || new_idx.last() != Some(&indices[p]) {
                    new_idx.push(indices[p]);
                    group_end.push(0);
                }
                order.push(p);
                *group_end.last_mut().expect("a group was pushed") = order.len();
            }
            new_ptr.push(new_idx.len() as i64);
        }
        let mut summed = crate::map_values!(&values, v => {
            let mut start = 0;
            group_end
                .iter()
                .map(|&end| {
                    let mut acc = v[order[start]];
                    for &p in &order[start + 1..end] {
                        acc += v[p];
                    }
                    start = end;
                    acc
                })
                .collect()
        });
        if let Values::Bool(b) = &mut summed {
            b.iter_mut().for_each(|x| *x = u8::from(*x != 0));
        }
        Block {
            n_major: self.n_major,
            n_minor: self.n_minor,
            data: BlockData::Compressed {
                indptr: new_ptr,
                indices: new_idx,
                values: summed,
            },
        }
    }
}

fn run_of(runs: &[Run], m: usize) -> &Run {
    let i = runs.partition_point(|r| r.end <= m);
    &runs[i]
}

impl Matrix {
    /// Read `majors` (in this order) with `minor` applied to the other axis.
    pub fn read_block(&self, majors: &[usize], minor: &MinorMap) -> Result<Block> {
        if let Some(&bad) = majors.iter().find(|&&m| m >= self.n_major()) {
            return Err(Error::invalid(format!(
                "index {bad} out of range for an axis of length {}",
                self.n_major()
            ))
            .at(&self.meta.path));
        }
        let mut sorted = majors.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        match self.meta.format {
            Format::Dense => self.read_dense_block(majors, &sorted, minor),
            _ => self.read_sparse_block(majors, &sorted, minor),
        }
    }

    fn read_sparse_block(
        &self,
        majors: &[usize],
        sorted: &[usize],
        minor: &MinorMap,
    ) -> Result<Block> {
        let is_range = majors.windows(2).all(|w| w[1] == w[0] + 1);
        if is_range && minor.is_identity() && !majors.is_empty() {
            return self.read_sparse_range(majors[0], majors[majors.len() - 1] + 1);
        }
        let p_idx = format!("{}/indices", self.meta.path);
        let p_data = format!("{}/data", self.meta.path);
        let indices_ds = self.indices.as_ref().expect("sparse matrix has indices");
        let ptr = &self.indptr;
        // Each run is read whole, and only its wanted rows are kept (each
        // as a run of its own) before the next is read: memory is the
        // result plus one run, however sparse the selection.
        let mut runs: Vec<Run> = Vec::new();
        let mut all_idx: Vec<i32> = Vec::new();
        let mut all_val = Values::empty(self.meta.dtype);
        let mut wanted_from = 0;
        for r in runs_of(sorted, |m| ptr[m], RUN_GAP_ENTRIES) {
            let (lo, hi) = (ptr[r.first] as usize, ptr[r.end] as usize);
            let n_wanted = sorted[wanted_from..].partition_point(|&m| m < r.end);
            let wanted = &sorted[wanted_from..wanted_from + n_wanted];
            wanted_from += n_wanted;
            let base = all_idx.len();
            if hi == lo {
                runs.push(Run { base, ..r });
                continue;
            }
            let idx = h5::read_indices(indices_ds, &p_idx, lo..hi)?;
            let vals = h5::read_values_range(&self.data, &p_data, lo..hi)?;
            if wanted.len() == r.end - r.first {
                // Every row of the run: kept as read (one run, as a gene
                // subset of consecutive cells, is not even copied).
                if all_idx.is_empty() {
                    (all_idx, all_val) = (idx, vals);
                } else {
                    all_idx.extend(idx);
                    all_val.extend_from(&vals, 0..vals.len());
                }
                runs.push(Run { base, ..r });
                continue;
            }
            for &m in wanted {
                let (a, b) = ((ptr[m] as usize) - lo, (ptr[m + 1] as usize) - lo);
                runs.push(Run {
                    first: m,
                    end: m + 1,
                    base: all_idx.len(),
                });
                all_idx.extend_from_slice(&idx[a..b]);
                all_val.extend_from(&vals, a..b);
            }
        }
        check_indices(&all_idx, self.n_minor(), &p_idx)?;
        let duplicates = runs.iter().any(|r| {
            let len = (ptr[r.end] - ptr[r.first]) as usize;
            has_duplicates(&all_idx[r.base..r.base + len], &ptr[r.first..=r.end])
        });
        let block = self.gather_rows(majors, &runs, all_idx, all_val, minor);
        Ok(if duplicates {
            block.sum_duplicates()
        } else {
            block
        })
    }

    /// The rows `majors` of a gathered read, with `minor` applied.
    fn gather_rows(
        &self,
        majors: &[usize],
        runs: &[Run],
        all_idx: Vec<i32>,
        all_val: Values,
        minor: &MinorMap,
    ) -> Block {
        let ptr = &self.indptr;
        if minor.is_identity() {
            return copy_rows(majors, runs, ptr, &all_idx, &all_val, minor.n_out());
        }
        // The selection costs a lookup per stored entry: on the reader
        // thread alone a 10k-gene subset made a pass 3x slower than a full
        // one. Parts of the block's majors are selected in parallel.
        let parts = (rayon::current_num_threads() * 4).min(majors.len()).max(1);
        let per = majors.len().div_ceil(parts).max(1);
        let selected: Vec<(Vec<usize>, Vec<i32>, Values)> = majors
            .par_chunks(per)
            .map(|part| {
                let (lens, idx, take) = select_minor(part, runs, ptr, &all_idx, minor);
                (lens, idx, all_val.take(&take))
            })
            .collect();
        let total: usize = selected.iter().map(|s| s.1.len()).sum();
        let mut indptr = Vec::with_capacity(majors.len() + 1);
        indptr.push(0i64);
        let mut indices: Vec<i32> = Vec::with_capacity(total);
        let mut values = Values::empty(self.meta.dtype);
        for (lens, idx, vals) in selected {
            for len in lens {
                indptr.push(indptr[indptr.len() - 1] + len as i64);
            }
            indices.extend_from_slice(&idx);
            values.extend_from(&vals, 0..vals.len());
        }
        Block {
            n_major: majors.len(),
            n_minor: minor.n_out(),
            data: BlockData::Compressed {
                indptr,
                indices,
                values,
            },
        }
    }

    /// The streaming case: majors [a, b) in order, all minors. The stored
    /// arrays are used as read, with no gather.
    fn read_sparse_range(&self, a: usize, b: usize) -> Result<Block> {
        let p_idx = format!("{}/indices", self.meta.path);
        let p_data = format!("{}/data", self.meta.path);
        let indices_ds = self.indices.as_ref().expect("sparse matrix has indices");
        let (lo, hi) = (self.indptr[a] as usize, self.indptr[b] as usize);
        let (indices, values) = if hi > lo {
            (
                h5::read_indices(indices_ds, &p_idx, lo..hi)?,
                h5::read_values_range(&self.data, &p_data, lo..hi)?,
            )
        } else {
            (vec![], Values::empty(self.meta.dtype))
        };
        let duplicates = check_block(&indices, &self.indptr[a..=b], self.n_minor(), &p_idx)?;
        let indptr = self.indptr[a..=b].iter().map(|&p| p - lo as i64).collect();
        let block = Block {
            n_major: b - a,
            n_minor: self.n_minor(),
            data: BlockData::Compressed {
                indptr,
                indices,
                values,
            },
        };
        Ok(if duplicates {
            block.sum_duplicates()
        } else {
            block
        })
    }

    fn read_dense_block(
        &self,
        rows: &[usize],
        sorted: &[usize],
        minor: &MinorMap,
    ) -> Result<Block> {
        let n_cols = self.meta.shape[1];
        // Rows at most 8 apart share a read; as for sparse blocks, only the
        // wanted rows of each run are kept.
        let width = n_cols.max(1) as i64;
        let mut runs: Vec<Run> = Vec::new();
        let mut all = Values::empty(self.meta.dtype);
        let mut wanted_from = 0;
        for r in runs_of(sorted, |m| m as i64 * width, 8 * width) {
            let n_wanted = sorted[wanted_from..].partition_point(|&m| m < r.end);
            let wanted = &sorted[wanted_from..wanted_from + n_wanted];
            wanted_from += n_wanted;
            let v = h5::read_rows(&self.data, &self.meta.path, r.first..r.end)?;
            if wanted.len() == r.end - r.first {
                runs.push(Run {
                    base: all.len(),
                    ..r
                });
                if all.is_empty() {
                    all = v;
                } else {
                    all.extend_from(&v, 0..v.len());
                }
                continue;
            }
            for &m in wanted {
                runs.push(Run {
                    first: m,
                    end: m + 1,
                    base: all.len(),
                });
                let a = (m - r.first) * n_cols;
                all.extend_from(&v, a..a + n_cols);
            }
        }
        // Consecutive rows in file order with every column (a pass's block,
        // a whole obsm array): the read is the block. Building the gather
        // list would cost 8 bytes per value (400 MB for a 1M × 50 X_pca).
        let in_order = rows.windows(2).all(|w| w[1] == w[0] + 1);
        if in_order && minor.selection.is_none() && rows.len() * n_cols == all.len() {
            return Ok(Block {
                n_major: rows.len(),
                n_minor: minor.n_out(),
                data: BlockData::Dense { values: all },
            });
        }
        let mut take = Vec::with_capacity(rows.len() * minor.n_out());
        for &m in rows {
            let r = run_of(&runs, m);
            let off = r.base + (m - r.first) * n_cols;
            match &minor.selection {
                None => take.extend(off..off + n_cols),
                Some(sel) => take.extend(sel.iter().map(|&c| off + c)),
            }
        }
        let contiguous = take.len() == all.len() && take.iter().enumerate().all(|(i, &p)| i == p);
        let values = if contiguous { all } else { all.take(&take) };
        Ok(Block {
            n_major: rows.len(),
            n_minor: minor.n_out(),
            data: BlockData::Dense { values },
        })
    }
}

/// For each of `majors`: how many of its entries `minor` keeps, their new
/// minor positions (ascending within a major) and where their values are
/// in the gathered read.
fn select_minor(
    majors: &[usize],
    runs: &[Run],
    ptr: &[i64],
    all_idx: &[i32],
    minor: &MinorMap,
) -> (Vec<usize>, Vec<i32>, Vec<usize>) {
    let mut lens = Vec::with_capacity(majors.len());
    let mut indices: Vec<i32> = Vec::new();
    let mut take: Vec<usize> = Vec::new();
    for &m in majors {
        let r = run_of(runs, m);
        let start = r.base + (ptr[m] - ptr[r.first]) as usize;
        let end = start + (ptr[m + 1] - ptr[m]) as usize;
        let seg = indices.len();
        // An ascending selection keeps each major's entries sorted.
        let sorted = if let Some(map) = minor.ascending() {
            // Branch-free: whether a gene is kept is a coin toss for the
            // branch predictor. Every entry is written, the cursor moves on
            // only for kept ones.
            indices.resize(seg + (end - start), 0);
            take.resize(seg + (end - start), 0);
            let mut w = seg;
            for (p, &j) in all_idx.iter().enumerate().take(end).skip(start) {
                let t = map[j as usize];
                indices[w] = t as i32;
                take[w] = p;
                w += usize::from(t != DROPPED);
            }
            indices.truncate(w);
            take.truncate(w);
            true
        } else {
            for (p, &j) in all_idx.iter().enumerate().take(end).skip(start) {
                for &t in minor.targets(j as usize) {
                    indices.push(t as i32);
                    take.push(p);
                }
            }
            false
        };
        if !sorted && indices[seg..].windows(2).any(|w| w[1] < w[0]) {
            let mut pairs: Vec<(i32, usize)> = indices[seg..]
                .iter()
                .copied()
                .zip(take[seg..].iter().copied())
                .collect();
            pairs.sort_unstable_by_key(|p| p.0);
            for (k, (i, t)) in pairs.into_iter().enumerate() {
                indices[seg + k] = i;
                take[seg + k] = t;
            }
        }
        lens.push(indices.len() - seg);
    }
    (lens, indices, take)
}

/// The selected majors' stored entries, whole: one slice copy per major
/// (the values of a run were read contiguously, so no per-entry gather).
fn copy_rows(
    majors: &[usize],
    runs: &[Run],
    ptr: &[i64],
    all_idx: &[i32],
    all_val: &Values,
    n_minor: usize,
) -> Block {
    let mut indptr = Vec::with_capacity(majors.len() + 1);
    indptr.push(0i64);
    let total: usize = majors.iter().map(|&m| (ptr[m + 1] - ptr[m]) as usize).sum();
    let mut indices: Vec<i32> = Vec::with_capacity(total);
    let mut values = Values::empty(all_val.dtype());
    for &m in majors {
        let r = run_of(runs, m);
        let start = r.base + (ptr[m] - ptr[r.first]) as usize;
        let end = start + (ptr[m + 1] - ptr[m]) as usize;
        indices.extend_from_slice(&all_idx[start..end]);
        values.extend_from(all_val, start..end);
        indptr.push(indices.len() as i64);
    }
    Block {
        n_major: majors.len(),
        n_minor,
        data: BlockData::Compressed {
            indptr,
            indices,
            values,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{check_block, check_indices, has_duplicates, Block, BlockData};
    use crate::dtype::Values;

    #[test]
    fn duplicate_minor_indices_are_found_sorted_or_not() {
        // rows: [0 2 5] [] [1 3] [4 0 2] (unsorted, allowed) [7]
        let ptr = [10i64, 13, 13, 15, 18, 19];
        let mut ix = vec![0, 2, 5, 1, 3, 4, 0, 2, 7];
        assert!(!has_duplicates(&ix, &ptr));
        assert!(!check_block(&ix, &ptr, 8, "X/indices").unwrap());
        assert!(!has_duplicates(&[], &[0, 0, 0]));
        assert!(!check_block(&[], &[0, 0, 0], 8, "X/indices").unwrap());
        let e = check_block(&ix, &ptr, 7, "X/indices")
            .unwrap_err()
            .to_string();
        assert!(e.contains("index 7 out of range"), "{e}");
        ix[1] = 0; // sorted row 0 now holds 0 twice
        assert!(check_block(&ix, &ptr, 8, "X/indices").unwrap());
        assert!(has_duplicates(&ix, &ptr));
        ix[1] = 2;
        ix[7] = 4; // unsorted row 3 holds 4 twice
        assert!(has_duplicates(&ix, &ptr));
        assert!(check_block(&ix, &ptr, 8, "X/indices").unwrap());
    }

    #[test]
    fn sum_duplicates_gives_scipys_values() {
        // rows: [2:1, 0:2, 2:3] [] [1:4, 1:5] -> [0:2, 2:4] [] [1:9]
        let block = Block {
            n_major: 3,
            n_minor: 3,
            data: BlockData::Compressed {
                indptr: vec![0, 3, 3, 5],
                indices: vec![2, 0, 2, 1, 1],
                values: Values::Float32(vec![1.0, 2.0, 3.0, 4.0, 5.0]),
            },
        };
        let BlockData::Compressed {
            indptr,
            indices,
            values,
        } = block.sum_duplicates().data
        else {
            panic!("compressed in, compressed out");
        };
        assert_eq!(indptr, vec![0, 2, 2, 3]);
        assert_eq!(indices, vec![0, 2, 1]);
        assert_eq!(values.to_f64(), vec![2.0, 4.0, 9.0]);
    }

    #[test]
    fn index_check_names_the_first_bad_index() {
        let mut ix: Vec<i32> = (0..10_000).map(|i| i % 30).collect();
        assert!(check_indices(&ix, 30, "X/indices").is_ok());
        assert!(check_indices(&[], 0, "X/indices").is_ok());
        for bad in [30, -1, i32::MIN, i32::MAX] {
            ix[9_000] = bad;
            ix[9_500] = 31;
            let e = check_indices(&ix, 30, "X/indices").unwrap_err().to_string();
            assert!(
                e.contains(&format!("index {bad} out of range [0, 30)")),
                "{e}"
            );
            assert!(e.contains("X/indices"), "{e}");
        }
    }
}
