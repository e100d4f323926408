//! Building a sidecar out of core, in memory bounded by a byte budget:
//!
//! 1. one streaming pass over the element appends each stored non-zero as
//!    (row delta, gene, value) varints to the bucket file of its gene range
//!    and counts entries per gene;
//! 2. per bucket, genes are taken in groups whose entries fit the budget:
//!    the bucket is read back, the group's entries are placed by gene (a
//!    counting sort — rows arrive in order from a CSR pass), each gene is
//!    encoded (in parallel) and appended to the sidecar in gene order;
//! 3. the per-row totals taken in phase 1, the offsets table, the header.
//!
//! Everything goes to temporary files next to the destination, removed on
//! error or cancellation; the sidecar appears by an atomic rename.

use super::format::{
    encode_gene, fnv1a, get_varint, put_varint, Header, Table, ValueRange, PREAMBLE,
};
use crate::error::{Error, ErrorKind, Result};
use crate::file::H5ad;
use crate::matrix::{Block, BlockData, Format, MinorMap};
use crate::pass::{self, Accumulator, Control, Rows};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Default memory budget of a build (bucket buffers, one gene group).
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;

/// Bytes per entry while a gene group is assembled: row (4) + value (8) +
/// its encoded form (at most 5 + 8).
const GROUP_ENTRY_BYTES: usize = 25;
const MAX_BUCKETS: usize = 512;

pub struct BuildOptions {
    /// Identity of the source, stored in the header and checked on open.
    pub fingerprint: String,
    pub budget_bytes: usize,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::FileAccess,
        format!("could not {what} the gene index: {e}"),
    )
    .in_file(&path.to_string_lossy())
}

/// Temporary files of a build; removed on drop unless the build committed.
struct Scratch {
    bucket_dir: PathBuf,
    sidecar_tmp: PathBuf,
    committed: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.bucket_dir);
        if !self.committed {
            let _ = std::fs::remove_file(&self.sidecar_tmp);
        }
    }
}

/// Build the sidecar of `element` (X or a layer) of `file` at `dest`.
pub fn build(
    file: &H5ad,
    element: &str,
    dest: &Path,
    opts: &BuildOptions,
    control: &Control,
) -> Result<Header> {
    let m = file.open_matrix(element)?;
    let [n_rows, n_genes] = m.meta.shape;
    if n_rows > u32::MAX as usize || n_genes > u32::MAX as usize {
        return Err(Error::invalid("gene index: more than 2^32 rows or genes").at(element));
    }
    let budget = opts.budget_bytes.max(16 << 20);
    let nonce = format!(
        "tmp-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let name = dest
        .file_name()
        .map_or("gene-index".into(), |n| n.to_string_lossy().to_string());
    let dir = dest.parent().unwrap_or(Path::new("."));
    crate::orphans::remove(dir, crate::orphans::gene_index_pid);
    let scratch = Scratch {
        bucket_dir: dir.join(format!(".{name}.{nonce}.buckets")),
        sidecar_tmp: dir.join(format!(".{name}.{nonce}")),
        committed: false,
    };
    std::fs::create_dir_all(&scratch.bucket_dir)
        .map_err(|e| io_error(&scratch.bucket_dir, "create a folder for", e))?;

    let entries_hint = m.meta.nnz.min((n_rows as u64) * (n_genes as u64));
    let n_buckets = ((entries_hint as usize).saturating_mul(GROUP_ENTRY_BYTES) / budget + 1)
        .clamp(1, MAX_BUCKETS)
        .min(n_genes.max(1));
    let genes_per_bucket = n_genes.div_ceil(n_buckets).max(1);
    let n_buckets = n_genes.div_ceil(genes_per_bucket).max(1);

    let mut spill = Spill::create(
        &scratch.bucket_dir,
        n_buckets,
        genes_per_bucket,
        n_genes,
        n_rows,
        m.meta.format == Format::Csc,
        (budget / 4 / n_buckets).clamp(64 << 10, 4 << 20),
    )?;
    let majors: Vec<usize> = (0..m.n_major()).collect();
    pass::run(
        &m,
        &majors,
        &MinorMap::identity(m.n_minor()),
        pass::block_bytes(),
        control,
        &mut spill,
    )
    .map_err(|e| e.in_file(&file.path))?;
    let (counts, range, totals) = spill.finish()?;

    let groups = plan_groups(&counts, genes_per_bucket, budget / GROUP_ENTRY_BYTES);
    control.update(|p| p.chunks_total += groups.len());

    let header_len = Header::reserved_len(&opts.fingerprint);
    let out_file = File::create(&scratch.sidecar_tmp)
        .map_err(|e| io_error(&scratch.sidecar_tmp, "create", e))?;
    let mut out = BufWriter::with_capacity(4 << 20, out_file);
    let werr = |e| io_error(&scratch.sidecar_tmp, "write", e);
    out.write_all(&vec![0u8; header_len as usize])
        .map_err(werr)?;
    let mut offsets: Vec<u64> = Vec::with_capacity(n_genes + 1);
    let mut gene_crcs: Vec<u32> = Vec::with_capacity(n_genes);
    let mut at = header_len;
    for (k, g) in groups.iter().enumerate() {
        if control.is_cancelled() {
            return Err(Error::cancelled());
        }
        let blobs = assemble_group(&scratch.bucket_dir, g, &counts, genes_per_bucket)?;
        for b in blobs {
            offsets.push(at);
            gene_crcs.push(crc32fast::hash(&b));
            out.write_all(&b).map_err(werr)?;
            at += b.len() as u64;
        }
        // A finished bucket frees its disk space now: the peak stays near
        // the buckets' size instead of buckets + sidecar.
        if groups.get(k + 1).is_none_or(|next| next.bucket != g.bucket) {
            let _ = std::fs::remove_file(bucket_path(&scratch.bucket_dir, g.bucket));
        }
        control.update(|p| p.chunks_done += 1);
    }
    offsets.push(at);
    if offsets.len() != n_genes + 1 {
        return Err(Error::internal(
            "gene index: gene groups do not cover the genes",
        ));
    }
    let totals_offset = at;
    let totals_bytes: Vec<u8> = totals.iter().flat_map(|t| t.to_le_bytes()).collect();
    out.write_all(&totals_bytes).map_err(werr)?;
    at += totals_bytes.len() as u64;
    let table = Table {
        offsets,
        gene_crcs,
        totals_crc: crc32fast::hash(&totals_bytes),
    }
    .encode();
    let header = Header {
        fingerprint: opts.fingerprint.clone(),
        n_rows: n_rows as u64,
        n_genes: n_genes as u64,
        nnz: counts.iter().sum(),
        value_kind: range.kind(),
        header_len,
        totals_offset,
        table_offset: at,
        file_len: at + table.len() as u64 + 8,
    };
    let head = header.encode()?;
    let json = &head[PREAMBLE..PREAMBLE + json_len(&head)];
    out.write_all(&table).map_err(werr)?;
    out.write_all(&fnv1a(&[json, &table]).to_le_bytes())
        .map_err(werr)?;
    let mut f = out.into_inner().map_err(|e| werr(e.into_error()))?;
    f.seek(SeekFrom::Start(0)).map_err(werr)?;
    f.write_all(&head).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    drop(f);
    if control.is_cancelled() {
        return Err(Error::cancelled());
    }
    std::fs::rename(&scratch.sidecar_tmp, dest).map_err(|e| io_error(dest, "rename", e))?;
    let mut scratch = scratch;
    scratch.committed = true;
    Ok(header)
}

fn json_len(head: &[u8]) -> usize {
    u32::from_le_bytes(head[12..16].try_into().unwrap()) as usize
}

/// Phase 1: the pass accumulator that spills entries to bucket files.
struct Spill {
    files: Vec<BufWriter<File>>,
    last_row: Vec<u32>,
    genes_per_bucket: usize,
    counts: Vec<u64>,
    totals: Vec<f64>,
    range: ValueRange,
    csc: bool,
    scratch: Vec<u8>,
    dir: PathBuf,
}

fn bucket_path(dir: &Path, b: usize) -> PathBuf {
    dir.join(format!("{b}.bin"))
}

impl Spill {
    fn create(
        dir: &Path,
        n_buckets: usize,
        genes_per_bucket: usize,
        n_genes: usize,
        n_rows: usize,
        csc: bool,
        buffer: usize,
    ) -> Result<Spill> {
        let files = (0..n_buckets)
            .map(|b| {
                let p = bucket_path(dir, b);
                File::create(&p)
                    .map(|f| BufWriter::with_capacity(buffer, f))
                    .map_err(|e| io_error(&p, "create a bucket of", e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Spill {
            files,
            last_row: vec![0; n_buckets],
            genes_per_bucket,
            counts: vec![0; n_genes],
            totals: vec![0.0; n_rows],
            range: ValueRange::default(),
            csc,
            scratch: Vec::with_capacity(32),
            dir: dir.to_path_buf(),
        })
    }

    #[inline]
    fn push(&mut self, row: usize, gene: usize, v: f64) -> Result<()> {
        if v == 0.0 {
            return Ok(());
        }
        self.totals[row] += v;
        let b = gene / self.genes_per_bucket;
        let s = &mut self.scratch;
        s.clear();
        let delta = row as i64 - self.last_row[b] as i64;
        put_varint(s, ((delta << 1) ^ (delta >> 63)) as u64);
        put_varint(s, (gene - b * self.genes_per_bucket) as u64);
        put_value(s, v);
        self.last_row[b] = row as u32;
        self.counts[gene] += 1;
        self.range.see(v);
        self.files[b]
            .write_all(s)
            .map_err(|e| io_error(&bucket_path(&self.dir, b), "write a bucket of", e))
    }

    fn finish(self) -> Result<(Vec<u64>, ValueRange, Vec<f64>)> {
        for (b, f) in self.files.into_iter().enumerate() {
            f.into_inner().map_err(|e| {
                io_error(
                    &bucket_path(&self.dir, b),
                    "write a bucket of",
                    e.into_error(),
                )
            })?;
        }
        Ok((self.counts, self.range, self.totals))
    }
}

impl Accumulator for Spill {
    fn consume(&mut self, block: &Block, rows: Rows<'_>) -> Result<()> {
        let first = rows.first()?;
        match &block.data {
            BlockData::Compressed {
                indptr,
                indices,
                values,
            } => {
                let vals = values.to_f64();
                for k in 0..block.n_major {
                    for p in indptr[k] as usize..indptr[k + 1] as usize {
                        let (major, minor) = (first + k, indices[p] as usize);
                        let (row, gene) = if self.csc {
                            (minor, major)
                        } else {
                            (major, minor)
                        };
                        self.push(row, gene, vals[p])?;
                    }
                }
            }
            BlockData::Dense { values } => {
                let vals = values.to_f64();
                for k in 0..block.n_major {
                    for j in 0..block.n_minor {
                        self.push(first + k, j, vals[k * block.n_minor + j])?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Temp value code: small counts as varint(v + 2); else a tag (0: f32,
/// 1: f64) and the raw bytes.
#[inline]
fn put_value(s: &mut Vec<u8>, v: f64) {
    if v >= 0.0 && v.fract() == 0.0 && v < (1u64 << 52) as f64 {
        put_varint(s, v as u64 + 2);
    } else if (v as f32) as f64 == v {
        s.push(0);
        s.extend_from_slice(&(v as f32).to_le_bytes());
    } else {
        s.push(1);
        s.extend_from_slice(&v.to_le_bytes());
    }
}

fn get_value(b: &[u8], at: &mut usize) -> Option<f64> {
    match get_varint(b, at)? {
        0 => {
            let x = f32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
            *at += 4;
            Some(x as f64)
        }
        1 => {
            let x = f64::from_le_bytes(b.get(*at..*at + 8)?.try_into().ok()?);
            *at += 8;
            Some(x)
        }
        c => Some((c - 2) as f64),
    }
}

/// A run of genes [start, end) of one bucket, assembled together.
struct Group {
    bucket: usize,
    start: usize,
    end: usize,
}

/// Split each bucket's genes into groups of at most `max_entries` entries
/// (a gene with more entries than that forms a group alone).
fn plan_groups(counts: &[u64], genes_per_bucket: usize, max_entries: usize) -> Vec<Group> {
    let mut out = Vec::new();
    for (bucket, lo) in (0..counts.len()).step_by(genes_per_bucket).enumerate() {
        let hi = (lo + genes_per_bucket).min(counts.len());
        let mut start = lo;
        let mut acc = 0u64;
        for (g, &c) in counts.iter().enumerate().take(hi).skip(lo) {
            if g > start && acc + c > max_entries as u64 {
                out.push(Group {
                    bucket,
                    start,
                    end: g,
                });
                start = g;
                acc = 0;
            }
            acc += c;
        }
        out.push(Group {
            bucket,
            start,
            end: hi,
        });
    }
    out
}

/// Phase 2 for one group: read its bucket, place the group's entries by
/// gene, encode each gene.
fn assemble_group(
    dir: &Path,
    g: &Group,
    counts: &[u64],
    genes_per_bucket: usize,
) -> Result<Vec<Vec<u8>>> {
    let base = g.bucket * genes_per_bucket;
    let mut starts = Vec::with_capacity(g.end - g.start + 1);
    let mut total = 0usize;
    for &c in &counts[g.start..g.end] {
        starts.push(total);
        total += c as usize;
    }
    starts.push(total);
    let mut rows = vec![0u32; total];
    let mut vals = vec![0f64; total];
    let mut fill = starts.clone();
    let path = bucket_path(dir, g.bucket);
    let bad = || Error::internal(format!("gene index: bucket {} is corrupt", path.display()));
    let mut reader = File::open(&path).map_err(|e| io_error(&path, "read a bucket of", e))?;
    let mut buf = vec![0u8; 8 << 20];
    let (mut len, mut at) = (0usize, 0usize);
    let mut row: i64 = 0;
    loop {
        // Keep at least one whole entry (≤ 29 bytes) in the buffer.
        if len - at < 32 {
            buf.copy_within(at..len, 0);
            len -= at;
            at = 0;
            let n = read_some(&mut reader, &mut buf[len..])
                .map_err(|e| io_error(&path, "read a bucket of", e))?;
            len += n;
            if len == 0 {
                break;
            }
        }
        let zz = get_varint(&buf[..len], &mut at).ok_or_else(bad)?;
        row += ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        let gene = base + get_varint(&buf[..len], &mut at).ok_or_else(bad)? as usize;
        let v = get_value(&buf[..len], &mut at).ok_or_else(bad)?;
        if gene >= g.start && gene < g.end {
            let k = gene - g.start;
            let p = fill[k];
            if p >= starts[k + 1] || row < 0 {
                return Err(bad());
            }
            rows[p] = row as u32;
            vals[p] = v;
            fill[k] += 1;
        }
    }
    Ok((0..g.end - g.start)
        .into_par_iter()
        .map(|k| {
            let (lo, hi) = (starts[k], starts[k + 1]);
            let (r, v) = (&rows[lo..hi], &vals[lo..hi]);
            let mut blob = Vec::with_capacity(6 + (hi - lo) * 3);
            if r.windows(2).all(|w| w[0] <= w[1]) {
                encode_gene(r, v, &mut blob);
            } else {
                // CSC sources with unsorted indices
                let mut pairs: Vec<(u32, f64)> = r.iter().copied().zip(v.iter().copied()).collect();
                pairs.sort_by_key(|p| p.0);
                let (r, v): (Vec<u32>, Vec<f64>) = pairs.into_iter().unzip();
                encode_gene(&r, &v, &mut blob);
            }
            blob
        })
        .collect())
}

/// Fill as much of `buf` as the file has left.
fn read_some(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
