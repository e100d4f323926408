//! A sink that must see rows in the selection's order (a writer appends
//! them one after another) fed by a pass in file order. Read in the
//! selection's order, a shuffled view touched the whole file for every
//! block (a write of 100k shuffled cells took 4-5x a sorted one). Instead,
//! the pass runs in file order and each row's stored entries go to a
//! spill file as they come; the rows are then replayed from the spill in
//! the selection's order, in blocks, into the sink. The spill is local,
//! uncompressed and usually still in the page cache, so the replay's
//! random reads are cheap. Temporary disk use: the selection's stored
//! entries (as in the PCA spill, see pp/gram.rs).

use crate::dtype::{DType, Values};
use crate::error::{Error, ErrorKind, Result};
use crate::matrix::{Block, BlockData, Matrix, MinorMap};
use crate::pass::{self, Accumulator, Control, Rows};
use crate::{map_values, with_values};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// The temporary file could not be made, written or read (a full or
/// read-only temp folder): named, as a file-access error.
fn tmp_error(path: &std::path::Path, what: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::FileAccess,
        format!(
            "cannot {what} the temporary file {} (set ANNDATA_OOM_TMPDIR to another folder): {e}",
            path.display()
        ),
    )
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub struct Reorder<'a> {
    inner: &'a mut dyn Accumulator,
    dtype: DType,
    n_minor: usize,
    path: PathBuf,
    spill: Option<BufWriter<File>>,
    /// Per selection position: byte offset of its row in the spill and its
    /// number of stored entries (u32::MAX: not seen yet).
    rows: Vec<(u64, u32)>,
    offset: u64,
}

impl<'a> Reorder<'a> {
    pub fn new(
        inner: &'a mut dyn Accumulator,
        dtype: DType,
        n_rows: usize,
        n_minor: usize,
    ) -> Result<Self> {
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = crate::orphans::spill_dir().join(crate::orphans::spill_name("reorder", seq));
        // Read back by the replay through the same handle.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| tmp_error(&path, "create", e))?;
        Ok(Reorder {
            inner,
            dtype,
            n_minor,
            path,
            spill: Some(BufWriter::with_capacity(1 << 20, file)),
            rows: vec![(0, u32::MAX); n_rows],
            offset: 0,
        })
    }

    /// Replay the rows in the selection's order into the sink, in blocks of
    /// about `budget_bytes` of stored data.
    pub fn finish(mut self, budget_bytes: usize, control: &Control) -> Result<()> {
        let spill = self
            .spill
            .take()
            .ok_or_else(|| Error::internal("reorder finished twice"))?;
        let file = spill
            .into_inner()
            .map_err(|e| tmp_error(&self.path, "write", e.into_error()))?;
        let entry = 4 + self.dtype.size();
        let budget = (budget_bytes / entry).max(1);
        let mut start = 0;
        while start < self.rows.len() {
            if control.is_cancelled() {
                return Err(Error::cancelled());
            }
            let mut end = start;
            let mut stored = 0usize;
            while end < self.rows.len() && (end == start || stored < budget) {
                stored += self.rows[end].1 as usize;
                end += 1;
            }
            let block = self.read_rows(&file, start..end, stored)?;
            self.inner.consume(&block, Rows::From(start))?;
            start = end;
        }
        Ok(())
    }

    fn read_rows(
        &self,
        file: &File,
        range: std::ops::Range<usize>,
        stored: usize,
    ) -> Result<Block> {
        let size = self.dtype.size();
        let mut indptr = Vec::with_capacity(range.len() + 1);
        indptr.push(0i64);
        let mut indices: Vec<i32> = Vec::with_capacity(stored);
        let mut bytes: Vec<u8> = Vec::with_capacity(stored * size);
        let mut buf = Vec::new();
        for &(offset, len) in &self.rows[range.clone()] {
            if len == u32::MAX {
                return Err(Error::internal("a row of the selection was not read"));
            }
            let len = len as usize;
            buf.resize(len * (4 + size), 0);
            file.read_exact_at(&mut buf, offset)
                .map_err(|e| tmp_error(&self.path, "read", e))?;
            let at = indices.len();
            indices.resize(at + len, 0);
            bytemuck::cast_slice_mut::<i32, u8>(&mut indices[at..])
                .copy_from_slice(&buf[..4 * len]);
            bytes.extend_from_slice(&buf[4 * len..]);
            indptr.push(indices.len() as i64);
        }
        let n = bytes.len() / size.max(1);
        let values = map_values!(Values::empty(self.dtype), v => {
            let mut out = v;
            out.resize(n, Default::default());
            bytemuck::cast_slice_mut::<_, u8>(&mut out).copy_from_slice(&bytes);
            out
        });
        Ok(Block {
            n_major: range.len(),
            n_minor: self.n_minor,
            data: BlockData::Compressed {
                indptr,
                indices,
                values,
            },
        })
    }
}

impl Drop for Reorder<'_> {
    fn drop(&mut self) {
        self.spill = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Accumulator for Reorder<'_> {
    fn consume(&mut self, block: &Block, rows: Rows<'_>) -> Result<()> {
        let BlockData::Compressed {
            indptr,
            indices,
            values,
        } = &block.data
        else {
            return Err(Error::internal("dense block in a reordering sink"));
        };
        for k in 0..block.n_major {
            let (p, q) = (indptr[k] as usize, indptr[k + 1] as usize);
            let pos = rows.at(k);
            self.rows[pos] = (self.offset, (q - p) as u32);
            let idx: &[u8] = bytemuck::cast_slice(&indices[p..q]);
            let vals: &[u8] = with_values!(values, v => bytemuck::cast_slice(&v[p..q]));
            let spill = self
                .spill
                .as_mut()
                .ok_or_else(|| Error::internal("reorder spill closed"))?;
            let written = spill.write_all(idx).and_then(|()| spill.write_all(vals));
            if let Err(e) = written {
                return Err(tmp_error(&self.path, "write", e));
            }
            self.offset += (idx.len() + vals.len()) as u64;
        }
        Ok(())
    }

    fn any_order(&self) -> bool {
        true
    }
}

/// One pass feeding `sink` the rows of `majors` in that order: a plain pass
/// when they ascend, else read in file order and replayed through a spill
/// (see [`Reorder`]).
pub fn run_in_view_order(
    m: &Matrix,
    majors: &[usize],
    minor: &MinorMap,
    control: &Control,
    sink: &mut dyn Accumulator,
) -> Result<()> {
    if majors.windows(2).all(|w| w[0] <= w[1]) {
        return pass::run(m, majors, minor, pass::block_bytes(), control, sink);
    }
    let mut reorder = Reorder::new(sink, m.meta.dtype, majors.len(), minor.n_out())?;
    pass::run(m, majors, minor, pass::block_bytes(), control, &mut reorder)?;
    reorder.finish(pass::block_bytes(), control)
}
