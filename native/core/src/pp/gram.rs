//! Exact PCA on the (implicitly scaled and clipped) selected genes in one
//! pass plus a projection of a spill file.
//!
//! Write the scaled matrix as Z = 1·z0ᵀ + S, where z0_j = f_j(0) is the
//! scaled value of a zero and S holds f_j(x) − z0_j at the stored entries
//! only (f = scale with clipping, or identity). Then, exactly and with the
//! clipping included, the centred Gram matrix is
//!     ZᵀZ − n·m·mᵀ = SᵀS − s·sᵀ/n,     s = column sums of S,
//! so one pass accumulates the sparse SᵀS (k²/2 updates for a row with k
//! stored genes) and s. Each part also spills its rows of S to a temp file,
//! and the projection (Z − 1·mᵀ)·V = S·V − (s/n)ᵀ·V reads the spill, not X.
//! A spilled entry is a u16 gene position and an f32 value (6 bytes): the
//! projection only feeds the float32 X_pca, and the spill is the pass's
//! temporary disk use (1 GB at 1M cells × ~180 stored HVG values).

use super::plan::Scaling;
use super::runner::{RowAccumulator, RowPartial};
use crate::error::{Error, ErrorKind, Result};
use std::any::Any;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

pub struct Gram {
    p: usize,
    /// Components to keep and whether PCA centres (scanpy's zero_center).
    n_comps: usize,
    zero_center: bool,
    n_rows: usize,
    result: Option<(Pca, Vec<f32>)>,
    scaling: Option<Scaling>,
    spill_dir: PathBuf,
    pub gram: Vec<f64>,
    pub colsum: Vec<f64>,
    pub n: f64,
    pub spills: Vec<PathBuf>,
}

/// Spilled gene positions are u16.
const SPILL_MAX_GENES: usize = 1 << 16;
/// Bytes per spilled entry: u16 gene position, f32 value.
const SPILL_ENTRY: usize = 6;

impl Gram {
    pub fn new(
        p: usize,
        scaling: Option<Scaling>,
        spill_dir: PathBuf,
        n_comps: usize,
        zero_center: bool,
        n_rows: usize,
    ) -> Result<Self> {
        crate::limits::check_work(
            &format!("exact PCA of {p} genes (its {p} × {p} covariance)"),
            (p as u64).saturating_mul(p as u64),
            8 * 3,
        )?;
        if p > SPILL_MAX_GENES {
            return Err(Error::invalid(format!(
                "exact PCA takes at most {SPILL_MAX_GENES} genes (got {p}); use the randomized solver"
            )));
        }
        crate::limits::check_work(
            &format!("X_pca of {n_rows} cells × {n_comps} components"),
            (n_rows as u64).saturating_mul(n_comps as u64),
            4,
        )?;
        Ok(Gram {
            p,
            n_comps,
            zero_center,
            n_rows,
            result: None,
            scaling,
            spill_dir,
            gram: vec![],
            colsum: vec![],
            n: 0.0,
            spills: vec![],
        })
    }

    /// Scaled value of a zero for each gene.
    pub fn z0(&self) -> Vec<f64> {
        (0..self.p)
            .map(|j| self.scaling.as_ref().map_or(0.0, |s| s.apply(j, 0.0)))
            .collect()
    }
}

impl Drop for GramPartial {
    fn drop(&mut self) {
        if self.owns_spill {
            drop(self.spill.take());
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Gram {
    fn drop(&mut self) {
        for f in &self.spills {
            let _ = std::fs::remove_file(f);
        }
    }
}

struct GramPartial {
    /// Whether this partial still owns its spill file: true until merge
    /// hands the file to the Gram, so a cancelled or failed pass (whose
    /// partials are dropped unmerged) leaves no file behind.
    owns_spill: bool,
    p: usize,
    scaling: Option<Scaling>,
    gram: Vec<f64>,
    colsum: Vec<f64>,
    n: f64,
    spill: Option<BufWriter<File>>,
    path: PathBuf,
    error: Option<String>,
    z0: Vec<f64>,
    s_row: Vec<(u32, f64)>,
    spill_buf: Vec<u8>,
    stage: Stage,
    /// Pair updates made (for AOOM_PROFILE).
    updates: f64,
}

/// Rows of S staged for a gene-by-gene update of the Gram triangle.
///
/// Updating the triangle row by row touches k² scattered entries of a p×p
/// matrix (16 MB at p = 2,000: far beyond L2), so nearly every update was a
/// cache miss. The staged rows are instead regrouped by gene (a counting
/// sort, i.e. the stage transposed to CSC), and gene a's row of the triangle
/// takes the updates of every staged row holding a, one after another
/// (Gustavson's row-by-row product for SᵀS). That row is at most p values
/// (16 KB), so it stays in L1 while it is updated, and the staged rows
/// (< 1 MB) are read in order from L2: ~0.5 ns per update, in the pass as
/// alone. (A 256 × 256 tiling of the triangle that kept the updated block
/// in L2 missed L1 on most updates: the 100k Gram pass took 15 % longer.)
#[derive(Default)]
struct Stage {
    cols: Vec<u32>,
    vals: Vec<f64>,
    /// Start of each staged row in cols/vals, plus the end.
    starts: Vec<usize>,
    /// Per gene, the staged entries holding it (see flush); reused.
    by_gene_start: Vec<u32>,
    by_gene: Vec<(u32, u32)>,
}

/// Staged entries before a flush (~0.8 MB of columns and values: the stage
/// should stay in L2 while it is read once per entry it holds).
const STAGE_ENTRIES: usize = 1 << 16;
/// A stage is flushed at a block's end once it holds STAGE_ENTRIES, and
/// mid-block only past this bound (a block of very long rows).
const STAGE_MAX_ENTRIES: usize = 8 * STAGE_ENTRIES;

impl Stage {
    /// Room for a full stage plus the row that overflows it (a row has at
    /// most p entries), reserved up front: growing inside a worker thread
    /// would leave the memory in that thread's allocator heap.
    fn with_capacity(p: usize) -> Self {
        Stage {
            cols: Vec::with_capacity(STAGE_ENTRIES + p),
            vals: Vec::with_capacity(STAGE_ENTRIES + p),
            starts: Vec::with_capacity(STAGE_ENTRIES + 1),
            by_gene_start: Vec::with_capacity(p + 1),
            by_gene: Vec::with_capacity(STAGE_ENTRIES + p),
        }
    }

    fn push(&mut self, s: &[(u32, f64)]) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.cols.extend(s.iter().map(|e| e.0));
        self.vals.extend(s.iter().map(|e| e.1));
        self.starts.push(self.cols.len());
    }

    fn len(&self) -> usize {
        self.cols.len()
    }

    /// Add every staged row's outer product to the packed triangle `gram`
    /// (p × p), gene by gene, and empty the stage.
    fn flush(&mut self, gram: &mut [f64], p: usize) {
        let n_rows = self.starts.len().saturating_sub(1);
        if n_rows == 0 {
            return;
        }
        let (cols, vals) = (&self.cols, &self.vals);
        // Counting sort of the entries by gene: by_gene[by_gene_start[a]..
        // by_gene_start[a + 1]] lists (entry, end of its row) for the
        // entries of gene a, in row order.
        let starts = &mut self.by_gene_start;
        starts.clear();
        starts.resize(p + 1, 0);
        for &c in cols {
            starts[c as usize + 1] += 1;
        }
        for a in 0..p {
            starts[a + 1] += starts[a];
        }
        let by_gene = &mut self.by_gene;
        by_gene.clear();
        by_gene.resize(cols.len(), (0, 0));
        let mut next: Vec<u32> = starts[..p].to_vec();
        for r in 0..n_rows {
            let end = self.starts[r + 1] as u32;
            for e in self.starts[r]..self.starts[r + 1] {
                let slot = &mut next[cols[e] as usize];
                by_gene[*slot as usize] = (e as u32, end);
                *slot += 1;
            }
        }
        for a in 0..p {
            let (lo, hi) = (starts[a] as usize, starts[a + 1] as usize);
            if lo == hi {
                continue;
            }
            // The next row of the triangle comes from L3 (the triangle is
            // 16 MB at p = 2,000): fetch it while this one is updated, or
            // its first touches each wait on a miss.
            if a + 1 < p {
                let next = packed(p, a + 1, a + 1);
                crate::prefetch::slice(&gram[next..next + (p - a - 1)]);
            }
            // Row a of the packed triangle, indexed by column (columns ≥ a
            // only: a row's entries are ascending, so those after entry e).
            let off = packed(p, a, a) - a;
            let row = &mut gram[off..off + p];
            for &(e, end) in &by_gene[lo..hi] {
                let (e, end) = (e as usize, end as usize);
                let va = vals[e];
                for (&c, &v) in cols[e..end].iter().zip(&vals[e..end]) {
                    // SAFETY: c < p = row.len(): the counting sort above
                    // indexed starts[c + 1] (length p + 1) with every c.
                    // Unchecked, as this loop is the whole Gram pass's cost.
                    unsafe { *row.get_unchecked_mut(c as usize) += va * v };
                }
            }
        }
        self.cols.clear();
        self.vals.clear();
        self.starts.clear();
    }
}

impl RowPartial for GramPartial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        self.n += 1.0;
        let s = &mut self.s_row;
        s_row(self.scaling.as_ref(), &self.z0, cols, vals, s);
        // Ascending columns: every pair (a ≤ b) lands in row a of the packed
        // upper triangle, after the entry for a.
        if s.windows(2).any(|w| w[1].0 < w[0].0) {
            s.sort_unstable_by_key(|e| e.0);
        }
        for &(j, v) in s.iter() {
            self.colsum[j as usize] += v;
        }
        self.updates += (s.len() * (s.len() + 1) / 2) as f64;
        self.stage.push(s);
        // Normally flushed at the end of a block (see end_block).
        if self.stage.len() >= STAGE_MAX_ENTRIES {
            self.stage.flush(&mut self.gram, self.p);
        }
        if let Some(w) = &mut self.spill {
            let buf = &mut self.spill_buf;
            buf.clear();
            buf.extend_from_slice(&(row as u32).to_le_bytes());
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            for &(j, v) in s.iter() {
                // j < p ≤ SPILL_MAX_GENES (checked in Gram::new).
                buf.extend_from_slice(&(j as u16).to_le_bytes());
                buf.extend_from_slice(&(v as f32).to_le_bytes());
            }
            if let Err(e) = w.write_all(buf) {
                self.error.get_or_insert(e.to_string());
                self.spill = None;
            }
        }
    }

    /// Flush here rather than when the stage fills mid-block: the threads
    /// stage at the same rate, so they flush in the same block and neither
    /// waits idle at the block's end while the other flushes (a flush takes
    /// about half a block's time).
    fn end_block(&mut self) {
        if self.stage.len() >= STAGE_ENTRIES {
            self.stage.flush(&mut self.gram, self.p);
        }
    }

    fn into_any(mut self: Box<Self>) -> Box<dyn Any> {
        self.stage.flush(&mut self.gram, self.p);
        self
    }
}

/// One row of S: f_j(x) − z0_j (scaled and clipped value minus that of a
/// zero) at the stored entries, skipping exact zeros.
pub fn s_row(
    scaling: Option<&Scaling>,
    z0: &[f64],
    cols: &[u32],
    vals: &[f64],
    out: &mut Vec<(u32, f64)>,
) {
    out.clear();
    for (&j, &x) in cols.iter().zip(vals) {
        let z = scaling.map_or(x, |sc| sc.apply(j as usize, x));
        let d = z - z0[j as usize];
        if d != 0.0 {
            out.push((j, d));
        }
    }
}

static SPILL_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl RowAccumulator for Gram {
    fn partial(&self) -> Box<dyn RowPartial> {
        let seq = SPILL_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.spill_dir.join(crate::orphans::spill_name("pca", seq));
        let (spill, error) = match File::create(&path) {
            Ok(f) => (Some(BufWriter::with_capacity(1 << 20, f)), None),
            Err(e) => (
                None,
                Some(format!("cannot create spill file {}: {e}", path.display())),
            ),
        };
        Box::new(GramPartial {
            owns_spill: spill.is_some(),
            p: self.p,
            scaling: self.scaling.clone(),
            gram: vec![0.0; self.p * (self.p + 1) / 2],
            colsum: vec![0.0; self.p],
            n: 0.0,
            spill,
            path,
            error,
            z0: self.z0(),
            s_row: Vec::new(),
            spill_buf: Vec::new(),
            stage: Stage::with_capacity(self.p),
            updates: 0.0,
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        profile_rss("merge");
        let p = self.p;
        self.gram = Vec::new();
        self.colsum = vec![0.0; p];
        self.n = 0.0;
        let mut first_error = None;
        let mut updates = 0.0;
        for part in parts {
            let mut part = part.downcast::<GramPartial>().expect("gram partial");
            // Reuse the first partial's matrix: no extra p×p buffer.
            if self.gram.is_empty() {
                self.gram = std::mem::take(&mut part.gram);
            } else {
                for (a, b) in self.gram.iter_mut().zip(&part.gram) {
                    *a += b;
                }
            }
            for (a, b) in self.colsum.iter_mut().zip(&part.colsum) {
                *a += b;
            }
            self.n += part.n;
            updates += part.updates;
            if let Some(mut w) = part.spill.take() {
                if let Err(e) = w.flush() {
                    part.error.get_or_insert(e.to_string());
                }
            }
            self.spills.push(part.path.clone());
            part.owns_spill = false;
            if first_error.is_none() {
                first_error = part.error.take();
            }
        }
        if let Some(e) = first_error {
            return Err(Error::new(
                ErrorKind::FileAccess,
                format!("PCA spill file: {e} (set ANNDATA_OOM_TMPDIR to a folder with space)"),
            ));
        }
        // Unpack the summed triangle into the full symmetric matrix.
        let tri = std::mem::take(&mut self.gram);
        let mut full = vec![0.0; p * p];
        for r in 0..p {
            for c in r..p {
                let v = tri[packed(p, r, c)];
                full[r * p + c] = v;
                full[c * p + r] = v;
            }
        }
        drop(tri);
        self.gram = full;
        if std::env::var_os("AOOM_PROFILE").is_some() {
            eprintln!("pca: {:.3e} pair updates over {} rows", updates, self.n);
        }
        let (k, zc) = (self.n_comps, self.zero_center);
        let t = std::time::Instant::now();
        crate::pass::release_memory();
        profile_rss("before eigen");
        let pca = eigen(&mut *self, k, zc);
        // Hand the eigensolver's memory back before the projection
        // allocates X_pca (else both count towards the peak).
        crate::pass::release_memory();
        let pca = pca?;
        profile_rss("after eigen");
        let t_eigen = t.elapsed();
        let x = project(self, &pca, self.zero_center, self.n_rows)?;
        if std::env::var_os("AOOM_PROFILE").is_some() {
            eprintln!(
                "pca: eigen {:?}, projection {:?}",
                t_eigen,
                t.elapsed() - t_eigen
            );
        }
        for f in self.spills.drain(..) {
            let _ = std::fs::remove_file(f);
        }
        self.result = Some((pca, x));
        Ok(())
    }

    fn outputs(&mut self) -> Vec<(String, Vec<f64>)> {
        match &mut self.result {
            Some((pca, _)) => vec![
                ("pca.components".into(), std::mem::take(&mut pca.components)),
                ("pca.variance".into(), std::mem::take(&mut pca.variance)),
                ("pca.total_variance".into(), vec![pca.total_variance]),
                ("pca.centered_ss".into(), vec![pca.centered_ss]),
                (
                    "pca.colmean".into(),
                    self.colsum
                        .iter()
                        .zip(self.z0())
                        .map(|(s, z)| z + s / self.n)
                        .collect(),
                ),
            ],
            None => vec![],
        }
    }

    fn outputs_f32(&mut self) -> Vec<(String, Vec<f32>)> {
        match self.result.take() {
            Some((_, x)) => vec![("pca.X".into(), x)],
            None => vec![],
        }
    }
}

/// With AOOM_PROFILE set, print the process RSS (memory tuning).
fn profile_rss(label: &str) {
    if std::env::var_os("AOOM_PROFILE").is_some() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap_or("")
                .to_string()
        };
        eprintln!("pca {label}: {} {}", field("VmRSS"), field("VmHWM"));
    }
}

/// Position of (r, c), r ≤ c, in a row-major packed upper triangle.
#[inline]
fn packed(p: usize, r: usize, c: usize) -> usize {
    r * (2 * p - r + 1) / 2 + (c - r)
}

/// The `k` largest eigenpairs (faer sorts ascending) of a decomposition
/// whose eigenvectors are the columns of `u` (p rows): components as a p×k
/// row-major matrix, eigenvalues descending.
pub fn largest_of_decomposition(
    vals: faer::ColRef<'_, f64>,
    u: faer::MatRef<'_, f64>,
    k: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (p, m) = (u.nrows(), u.ncols());
    let mut components = vec![0.0; p * k];
    let mut eig = Vec::with_capacity(k);
    for c in 0..k {
        let src = m - 1 - c;
        eig.push(vals[src]);
        for r in 0..p {
            components[r * k + c] = u[(r, src)];
        }
    }
    (components, eig)
}

/// Top-k principal axes of the centred (or uncentred) Gram matrix.
pub struct Pca {
    /// p × k, row-major (gene-major), unit columns.
    pub components: Vec<f64>,
    /// Eigenvalues / (n − 1), descending.
    pub variance: Vec<f64>,
    /// Sum of all p variances (trace), for variance_ratio.
    pub total_variance: f64,
    /// Σ_j Σ_i (z_ij − m_j)²: centred sums of squares over all genes.
    pub centered_ss: f64,
    pub k: usize,
    pub p: usize,
}

pub fn eigen(g: &mut Gram, k: usize, zero_center: bool) -> Result<Pca> {
    let p = g.p;
    let n = g.n;
    if p == 0 || n < 2.0 {
        return Err(Error::invalid(
            "PCA needs at least 2 observations and 1 variable",
        ));
    }
    let z0 = g.z0();
    // Centred: SᵀS − s·sᵀ/n. Uncentred: ZᵀZ = n·z0·z0ᵀ + z0·sᵀ + s·z0ᵀ + SᵀS.
    // Σ_j of the centred sums of squares, whatever zero_center (for the
    // total variance truncated SVD divides by).
    let centered_ss: f64 = (0..p)
        .map(|j| g.gram[j * p + j] - g.colsum[j] * g.colsum[j] / n)
        .sum();
    // The covariance is built in place of the Gram matrix (no p×p copy).
    let mut buf = std::mem::take(&mut g.gram);
    for i in 0..p {
        for j in 0..p {
            let gij = buf[i * p + j];
            let v = if zero_center {
                gij - g.colsum[i] * g.colsum[j] / n
            } else {
                gij + n * z0[i] * z0[j] + z0[i] * g.colsum[j] + g.colsum[i] * z0[j]
            };
            buf[i * p + j] = v / (n - 1.0);
        }
    }
    let total_variance: f64 = (0..p).map(|i| buf[i * p + i]).sum();
    let k = k.min(p);
    let (components, variance) = super::top_eigen::top_eigenpairs(&mut buf, p, k)?;
    Ok(Pca {
        components,
        variance,
        total_variance,
        centered_ss,
        k,
        p,
    })
}

/// Project the spilled rows: out[row] = S_row·V + offset (f32, n × k).
///
/// The spill files are read one after the other (reading them in parallel
/// measured slower), a batch of rows at a time; each batch's rows are
/// projected on the pool. (Reading the next batch on another thread while
/// one is projected measured no faster.)
pub fn project(g: &Gram, pca: &Pca, zero_center: bool, n_rows: usize) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    let k = pca.k;
    let n = g.n;
    let z0 = g.z0();
    let mut offset = vec![0.0f64; k];
    for (j, &z) in z0.iter().enumerate().take(pca.p) {
        let w = if zero_center { -g.colsum[j] / n } else { z };
        for (o, &c) in offset.iter_mut().zip(&pca.components[j * k..(j + 1) * k]) {
            *o += w * c;
        }
    }
    let mut out = vec![0.0f32; n_rows * k];
    for row in out.chunks_exact_mut(k.max(1)) {
        for (o, &c) in row.iter_mut().zip(&offset) {
            *o = c as f32;
        }
    }
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::FileAccess, format!("reading the PCA spill: {e}"))
    };
    // One row's projection from its spilled entries.
    let corrupt = std::sync::atomic::AtomicBool::new(false);
    let project_row = |entries: &[u8], acc: &mut [f32]| {
        if !project_entries_best(entries, &pca.components, &offset, acc) {
            corrupt.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    // Small in tests, so that they project many batches.
    const BATCH_BYTES: usize = if cfg!(test) { 64 } else { 8 << 20 };
    let mut head = [0u8; 8];
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH_BYTES + SPILL_ENTRY * pca.p);
    // (output row, start in batch, end in batch) per batched row.
    let mut rows: Vec<(usize, usize, usize)> = Vec::new();
    let mut projected: Vec<f32> = Vec::new();
    let mut flush = |batch: &mut Vec<u8>, rows: &mut Vec<(usize, usize, usize)>| {
        projected.resize(rows.len() * k, 0.0);
        projected
            .par_chunks_mut(k.max(1))
            .zip(rows.par_iter())
            .for_each(|(acc, &(_, a, b))| project_row(&batch[a..b], acc));
        for (acc, &(row, _, _)) in projected.chunks_exact(k.max(1)).zip(rows.iter()) {
            out[row * k..(row + 1) * k].copy_from_slice(acc);
        }
        batch.clear();
        rows.clear();
    };
    for path in &g.spills {
        let mut rd = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
        loop {
            match rd.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io(e)),
            }
            let row = u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
            let len = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
            if row >= n_rows || len > pca.p {
                return Err(Error::internal("spill row out of range"));
            }
            // A row's entries in one read (not one read each).
            let start = batch.len();
            batch.resize(start + len * SPILL_ENTRY, 0);
            rd.read_exact(&mut batch[start..]).map_err(io)?;
            rows.push((row, start, batch.len()));
            if batch.len() >= BATCH_BYTES {
                flush(&mut batch, &mut rows);
            }
        }
    }
    flush(&mut batch, &mut rows);
    if corrupt.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::internal("spill column out of range"));
    }
    Ok(out)
}

/// One row's projection: `acc = offset + Σ value · loadings[gene]` over
/// the row's spilled entries, in f64, stored as f32. False if an entry names
/// a gene without loadings (a corrupt spill).
#[inline(always)]
fn project_entries(entries: &[u8], components: &[f64], offset: &[f64], acc: &mut [f32]) -> bool {
    let k = offset.len();
    // k ≤ 50 by default: on the stack, not one allocation per row.
    let mut buf = [0.0f64; 64];
    let mut heap = Vec::new();
    let sum: &mut [f64] = if k <= buf.len() {
        &mut buf[..k]
    } else {
        heap.resize(k, 0.0);
        &mut heap
    };
    sum.copy_from_slice(offset);
    for e in entries.chunks_exact(SPILL_ENTRY) {
        let j = usize::from(u16::from_le_bytes([e[0], e[1]]));
        let v = f64::from(f32::from_le_bytes([e[2], e[3], e[4], e[5]]));
        let Some(loadings) = components.get(j * k..(j + 1) * k) else {
            return false;
        };
        // Multiply then add (Rust never fuses them), so every code path
        // below gives the same bits.
        for (a, &c) in sum.iter_mut().zip(loadings) {
            *a += v * c;
        }
    }
    for (o, &a) in acc.iter_mut().zip(sum.iter()) {
        *o = a as f32;
    }
    true
}

/// project_entries compiled for the widest vector unit this CPU has (the
/// release build targets baseline x86-64, whose 2-lane SSE2 made this loop
/// the projection's whole cost); chosen at run time.
fn project_entries_best(
    entries: &[u8],
    components: &[f64],
    offset: &[f64],
    acc: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(e: &[u8], c: &[f64], o: &[f64], a: &mut [f32]) -> bool {
            project_entries(e, c, o, a)
        }
        #[target_feature(enable = "avx2")]
        fn avx2(e: &[u8], c: &[f64], o: &[f64], a: &mut [f32]) -> bool {
            project_entries(e, c, o, a)
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature the function was built for.
            return unsafe { avx512(entries, components, offset, acc) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { avx2(entries, components, offset, acc) };
        }
    }
    project_entries(entries, components, offset, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for test data.
    fn lcg(mut seed: u64) -> impl FnMut() -> usize {
        move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        }
    }

    #[test]
    fn staged_updates_equal_row_by_row() {
        let p = 549;
        let mut next = lcg(7);
        let mut stage = Stage::default();
        let mut want = vec![0.0; p * (p + 1) / 2];
        let mut got = vec![0.0; p * (p + 1) / 2];
        for _ in 0..200 {
            let mut cols: Vec<u32> = (0..next() % 60).map(|_| (next() % p) as u32).collect();
            cols.sort_unstable();
            cols.dedup();
            let s: Vec<(u32, f64)> = cols
                .iter()
                .map(|&j| (j, (next() % 100) as f64 / 7.0 - 5.0))
                .collect();
            for a in 0..s.len() {
                for b in a..s.len() {
                    want[packed(p, s[a].0 as usize, s[b].0 as usize)] += s[a].1 * s[b].1;
                }
            }
            stage.push(&s);
            // Flush mid-way too: the regrouping buffers are reused.
            if stage.starts.len() == 101 {
                stage.flush(&mut got, p);
            }
        }
        stage.flush(&mut got, p);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0));
        }
        assert_eq!(stage.len(), 0);
    }

    #[test]
    fn every_projection_kernel_gives_the_same_bits() {
        let mut next = lcg(11);
        let rnd = |n: usize| (n % 20_001) as f64 / 1e3 - 10.0;
        for k in [1, 7, 50, 64, 65] {
            let p = 300;
            let components: Vec<f64> = (0..p * k).map(|_| rnd(next())).collect();
            let offset: Vec<f64> = (0..k).map(|_| rnd(next())).collect();
            let mut entries = Vec::new();
            for _ in 0..40 {
                entries.extend_from_slice(&((next() % p) as u16).to_le_bytes());
                entries.extend_from_slice(&(rnd(next()) as f32).to_le_bytes());
            }
            let (mut plain, mut best) = (vec![0.0f32; k], vec![0.0f32; k]);
            assert!(project_entries(&entries, &components, &offset, &mut plain));
            assert!(project_entries_best(
                &entries,
                &components,
                &offset,
                &mut best
            ));
            assert_eq!(plain, best, "k = {k}");
            // A gene without loadings is reported, not read out of bounds.
            entries.extend_from_slice(&(p as u16).to_le_bytes());
            entries.extend_from_slice(&1f32.to_le_bytes());
            assert!(!project_entries_best(
                &entries,
                &components,
                &offset,
                &mut best
            ));
        }
    }

    #[test]
    fn projection_of_the_spill_equals_the_centred_product() {
        let (p, k, n) = (9usize, 3usize, 120usize);
        let mut next = lcg(11);
        let mut dense = vec![0.0f64; n * p];
        let mut g = Gram::new(p, None, std::env::temp_dir(), k, true, n).unwrap();
        // Two partials, as two pool threads would fill them, rows interleaved.
        let mut parts = [g.partial(), g.partial()];
        for r in 0..n {
            let cols: Vec<u32> = (0..p as u32).filter(|_| next().is_multiple_of(3)).collect();
            let vals: Vec<f64> = cols.iter().map(|_| (next() % 50) as f64 / 8.0).collect();
            for (&c, &v) in cols.iter().zip(&vals) {
                dense[r * p + c as usize] = v;
            }
            parts[r % 2].add_row(r, &cols, &vals);
        }
        let [a, b] = parts;
        g.merge(vec![a.into_any(), b.into_any()]).unwrap();
        let components = g
            .outputs()
            .into_iter()
            .find(|(name, _)| name == "pca.components")
            .unwrap()
            .1;
        let x = g.outputs_f32().pop().unwrap().1;
        let mean: Vec<f64> = (0..p)
            .map(|j| (0..n).map(|r| dense[r * p + j]).sum::<f64>() / n as f64)
            .collect();
        for r in 0..n {
            for c in 0..k {
                let want: f64 = (0..p)
                    .map(|j| (dense[r * p + j] - mean[j]) * components[j * k + c])
                    .sum();
                let got = f64::from(x[r * k + c]);
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "row {r} pc {c}: {got} vs {want}"
                );
            }
        }
    }
}
