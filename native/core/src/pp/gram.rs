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

impl Gram {
    pub fn new(
        p: usize,
        scaling: Option<Scaling>,
        spill_dir: PathBuf,
        n_comps: usize,
        zero_center: bool,
        n_rows: usize,
    ) -> Result<Self> {
        crate::limits::check_load("pca gram", (p * p) as u64, 8 * 3)?;
        crate::limits::check_load("X_pca", (n_rows * n_comps) as u64, 4)?;
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

impl Drop for Gram {
    fn drop(&mut self) {
        for f in &self.spills {
            let _ = std::fs::remove_file(f);
        }
    }
}

struct GramPartial {
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
}

impl RowPartial for GramPartial {
    fn add_row(&mut self, row: usize, cols: &[u32], vals: &[f64]) {
        self.n += 1.0;
        let s = &mut self.s_row;
        s_row(self.scaling.as_ref(), &self.z0, cols, vals, s);
        let p = self.p;
        // Ascending columns make every pair (a ≤ b) land in row a of the
        // packed upper triangle at a fixed offset: the hot loop is a plain
        // strided multiply-add with no branch and no index arithmetic.
        if s.windows(2).any(|w| w[1].0 < w[0].0) {
            s.sort_unstable_by_key(|e| e.0);
        }
        for a in 0..s.len() {
            let (ja, va) = s[a];
            let ja = ja as usize;
            self.colsum[ja] += va;
            let row = &mut self.gram[packed(p, ja, ja) - ja..];
            for &(jb, vb) in &s[a..] {
                row[jb as usize] += va * vb;
            }
        }
        if let Some(w) = &mut self.spill {
            let mut buf = Vec::with_capacity(8 + s.len() * 12);
            buf.extend_from_slice(&(row as u32).to_le_bytes());
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            for &(j, v) in s.iter() {
                buf.extend_from_slice(&j.to_le_bytes());
                buf.extend_from_slice(&v.to_le_bytes());
            }
            if let Err(e) = w.write_all(&buf) {
                self.error.get_or_insert(e.to_string());
                self.spill = None;
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
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
        let path = self.spill_dir.join(format!(
            "anndata-oom-pca-{}-{seq}.spill",
            std::process::id()
        ));
        let (spill, error) = match File::create(&path) {
            Ok(f) => (Some(BufWriter::with_capacity(1 << 20, f)), None),
            Err(e) => (
                None,
                Some(format!("cannot create spill file {}: {e}", path.display())),
            ),
        };
        Box::new(GramPartial {
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
        })
    }

    fn merge(&mut self, parts: Vec<Box<dyn Any>>) -> Result<()> {
        profile_rss("merge");
        let p = self.p;
        self.gram = Vec::new();
        self.colsum = vec![0.0; p];
        self.n = 0.0;
        let mut first_error = None;
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
            if let Some(mut w) = part.spill.take() {
                if let Err(e) = w.flush() {
                    part.error.get_or_insert(e.to_string());
                }
            }
            self.spills.push(part.path.clone());
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
        let (k, zc) = (self.n_comps, self.zero_center);
        let t = std::time::Instant::now();
        crate::pass::release_memory();
        profile_rss("before eigen");
        let pca = eigen(&mut *self, k, zc)?;
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
pub fn top_eigenpairs(
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
    let cov = faer::MatRef::from_row_major_slice(&buf, p, p);
    let total_variance: f64 = (0..p).map(|i| cov[(i, i)]).sum();
    let evd = cov
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::internal(format!("eigendecomposition failed: {e:?}")))?;
    let k = k.min(p);
    let (components, variance) = top_eigenpairs(evd.S().column_vector(), evd.U(), k);
    Ok(Pca {
        components,
        variance,
        total_variance,
        centered_ss,
        k,
        p,
    })
}

#[allow(clippy::needless_range_loop)]
/// Project the spilled rows: out[row] = S_row·V + offset (f32, n × k).
pub fn project(g: &Gram, pca: &Pca, zero_center: bool, n_rows: usize) -> Result<Vec<f32>> {
    let (k, p) = (pca.k, pca.p);
    let n = g.n;
    let z0 = g.z0();
    let mut offset = vec![0.0f64; k];
    for j in 0..p {
        let w = if zero_center { -g.colsum[j] / n } else { z0[j] };
        for c in 0..k {
            offset[c] += w * pca.components[j * k + c];
        }
    }
    let mut out = vec![0.0f32; n_rows * k];
    for r in 0..n_rows {
        for c in 0..k {
            out[r * k + c] = offset[c] as f32;
        }
    }
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::FileAccess, format!("reading the PCA spill: {e}"))
    };
    let mut acc = vec![0.0f64; k];
    for path in &g.spills {
        let mut rd = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
        let mut head = [0u8; 8];
        let mut entry = [0u8; 12];
        loop {
            match rd.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io(e)),
            }
            let row = u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
            let len = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
            acc.copy_from_slice(&offset);
            for _ in 0..len {
                rd.read_exact(&mut entry).map_err(io)?;
                let j = u32::from_le_bytes(entry[0..4].try_into().unwrap()) as usize;
                let v = f64::from_le_bytes(entry[4..12].try_into().unwrap());
                let comp = &pca.components[j * k..(j + 1) * k];
                for c in 0..k {
                    acc[c] += v * comp[c];
                }
            }
            if row >= n_rows {
                return Err(Error::internal("spill row out of range"));
            }
            for c in 0..k {
                out[row * k + c] = acc[c] as f32;
            }
        }
    }
    Ok(out)
}
