//! An open h5ad file: validates the root layout and describes every
//! element without reading matrix data.

use crate::dataframe::{self, DataFrameInfo};
use crate::element::{self, ElementInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::h5::{self, Node};
use crate::matrix::{Matrix, MatrixMeta};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;

pub struct H5ad {
    pub path: String,
    pub writable: bool,
    file: Mutex<Option<hdf5::File>>,
    /// The file as it was when opened, to notice writes in place.
    opened: Option<DiskState>,
    /// Sampled contents at open, for when only the ctime moved.
    sample: Option<u64>,
}

/// What tells a file's contents on disk apart: a write in place changes
/// the size, mtime or ctime (ctime cannot be set back from user space, so
/// `cp -p` or `os.utime` restoring the mtime still shows; a ctime change
/// alone is checked against sampled contents, as chmod and links move it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskState {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl DiskState {
    #[cfg(unix)]
    pub fn of(path: &str) -> Option<DiskState> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Some(DiskState {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub fn of(_path: &str) -> Option<DiskState> {
        None
    }
}

/// A hash of 32 blocks of 4 KiB spread over the file (its first and last
/// included), enough to tell a rewrite from a metadata change.
fn content_sample(path: &str) -> Option<u64> {
    use std::hash::Hasher;
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: u64 = 4096;
    const BLOCKS: u64 = 32;
    let mut f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut buf = vec![0u8; BLOCK as usize];
    for i in 0..BLOCKS {
        let at = (size.saturating_sub(BLOCK)) * i / (BLOCKS - 1);
        f.seek(SeekFrom::Start(at)).ok()?;
        let n = f.read(&mut buf).ok()?;
        h.write(&buf[..n]);
    }
    Some(h.finish())
}

#[derive(Debug, Clone, Serialize)]
pub struct RawInfo {
    pub x: Option<MatrixMeta>,
    pub var: DataFrameInfo,
    pub varm: Vec<(String, ElementInfo)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub n_obs: usize,
    pub n_vars: usize,
    pub x: Option<MatrixMeta>,
    pub obs: DataFrameInfo,
    pub var: DataFrameInfo,
    pub obsm: Vec<(String, ElementInfo)>,
    pub varm: Vec<(String, ElementInfo)>,
    pub obsp: Vec<(String, ElementInfo)>,
    pub varp: Vec<(String, ElementInfo)>,
    pub layers: Vec<(String, ElementInfo)>,
    pub uns: Vec<(String, ElementInfo)>,
    pub raw: Option<RawInfo>,
    pub encoding_version: Option<String>,
    pub file_bytes: u64,
}

impl H5ad {
    pub fn open(path: &str, writable: bool) -> Result<H5ad> {
        let mut file = h5::open_file(path, writable)?;
        if crate::legacy06::is_legacy(&file) {
            if writable {
                return Err(Error::new(
                    ErrorKind::UnsupportedEncoding,
                    "an anndata ≤ 0.6 file (obs stored as a record array) opens read-only; \
                     write() a converted copy to modify it",
                )
                .at("/obs")
                .in_file(path));
            }
            file = crate::legacy06::open_overlay(path, &file).map_err(|e| e.in_file(path))?;
        }
        Ok(H5ad {
            path: path.to_string(),
            writable,
            file: Mutex::new(Some(file)),
            opened: DiskState::of(path),
            sample: content_sample(path),
        })
    }

    /// Whether renaming a new file over `target` would take the name this
    /// object's file is known by: `target` is the opened file (the same
    /// device and inode) and no other name of it stays — its own path (a
    /// file renamed since it was opened, or reached through a bind mount of
    /// its folder). Another hard link of a file whose own path is left is
    /// fine: only that name is replaced. Without the opened state, by path.
    pub fn is_same_file(&self, target: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        let Some(was) = self.opened else {
            return Path::new(&self.path).canonicalize().ok().as_deref() == Some(target);
        };
        if id(target) != Some((was.dev, was.ino)) {
            return false;
        }
        // The source's own name, through any symlinks (the target is
        // resolved the same way by the writer).
        let own = Path::new(&self.path);
        let own = own.canonicalize().unwrap_or_else(|_| own.to_path_buf());
        let own = own.as_path();
        if id(own) != Some((was.dev, was.ino)) {
            return true;
        }
        // The same directory entry: the same folder (by inode) and name.
        let folder = |p: &Path| {
            p.parent()
                .map(|d| {
                    if d.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        d
                    }
                })
                .and_then(id)
        };
        folder(own) == folder(target) && own.file_name() == target.file_name()
    }

    /// Fails when the open file was written in place since it was opened
    /// (the same inode with another size or times, e.g. truncated, or
    /// overwritten by `cp`): what a pass read may mix the old and new
    /// contents (HDF5 reads zeros past a truncated end). A file replaced
    /// by another (a new inode) or deleted is fine: the open handle keeps
    /// reading the one it opened.
    pub fn check_unchanged(&self) -> Result<()> {
        let (Some(was), Some(now)) = (self.opened, DiskState::of(&self.path)) else {
            return Ok(());
        };
        if (was.dev, was.ino) != (now.dev, now.ino) || was == now {
            return Ok(());
        }
        // Only the ctime moved: chmod, a hard link added or removed (also by
        // write() to a path linked to this file), or a rewrite that set the
        // mtime back (`cp -p`). Sampled contents tell them apart.
        if (was.size, was.mtime_ns) == (now.size, now.mtime_ns)
            && self.sample.is_some()
            && content_sample(&self.path) == self.sample
        {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::FileAccess,
            "the file was changed on disk (written in place) while this object had it open; \
             results read from it could mix old and new data. read() it again",
        )
        .in_file(&self.path))
    }

    /// Run `f` on the open root group; errors carry this file's path.
    pub fn with_root<T>(&self, f: impl FnOnce(&hdf5::Group) -> Result<T>) -> Result<T> {
        let guard = self
            .file
            .lock()
            .map_err(|_| Error::internal("file lock poisoned"))?;
        let file = guard.as_ref().ok_or_else(|| {
            Error::new(ErrorKind::Closed, "the file is closed").in_file(&self.path)
        })?;
        f(file).map_err(|e| e.in_file(&self.path))
    }

    pub fn close(&self) {
        if let Ok(mut g) = self.file.lock() {
            if let Some(f) = g.take() {
                let _ = f.close();
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.file.lock().map(|g| g.is_none()).unwrap_or(true)
    }

    pub fn open_matrix(&self, path: &str) -> Result<Matrix> {
        self.with_root(|root| Matrix::open(root, path))
    }

    pub fn describe(&self) -> Result<FileInfo> {
        self.with_root(|root| {
            if !root.link_exists("obs") {
                return Err(Error::format("/obs", "obs is missing: not an h5ad file"));
            }
            if !root.link_exists("var") {
                return Err(Error::format("/var", "var is missing: not an h5ad file"));
            }
            let obs = dataframe::describe(root, "/obs")?;
            let var = dataframe::describe(root, "/var")?;
            let x = match h5::node_at(root, "X", "/X")? {
                None => None,
                Some(_) => Some(Matrix::open(root, "/X")?.meta),
            };
            if let Some(x) = &x {
                for (axis, n, name) in [(0, obs.n_rows, "/obs"), (1, var.n_rows, "/var")] {
                    if x.shape[axis] != n {
                        return Err(Error::format(
                            name,
                            format!("{name} has {n} rows but X has shape {:?}", x.shape),
                        ));
                    }
                }
            }
            let raw = match h5::node_at(root, "raw", "/raw")? {
                Some(Node::Group(_)) => Some(RawInfo {
                    x: match h5::node_at(root, "raw/X", "/raw/X")? {
                        Some(_) => Some(matrix_meta(root, "/raw/X")?),
                        None => None,
                    },
                    var: dataframe::describe(root, "/raw/var")?,
                    varm: members(root, "raw/varm")?,
                }),
                _ => None,
            };
            let (n_obs, n_vars) = (obs.n_rows, var.n_rows);
            let obsm = members(root, "obsm")?;
            let varm = members(root, "varm")?;
            let moved = graphs_in_uns(root)?;
            let mut obsp = members(root, "obsp")?;
            obsp.retain(|(k, _)| !moved.iter().any(|(m, _)| m == k));
            obsp.extend(moved.iter().cloned());
            let varp = members(root, "varp")?;
            let layers = members(root, "layers")?;
            check_aligned(&obsm, &[n_obs])?;
            check_aligned(&varm, &[n_vars])?;
            check_aligned(&obsp, &[n_obs, n_obs])?;
            check_aligned(&varp, &[n_vars, n_vars])?;
            check_aligned(&layers, &[n_obs, n_vars])?;
            if let Some(r) = &raw {
                let n_raw = r.var.n_rows;
                if let Some(x) = &r.x {
                    if x.shape != [n_obs, n_raw] {
                        return Err(Error::format(
                            "/raw/X",
                            format!(
                                "raw/X has shape {:?}; obs has {n_obs} rows and raw/var {n_raw}",
                                x.shape
                            ),
                        ));
                    }
                }
                check_aligned(&r.varm, &[n_raw])?;
            }
            Ok(FileInfo {
                path: self.path.clone(),
                n_obs,
                n_vars,
                x,
                obs,
                var,
                obsm,
                varm,
                obsp,
                varp,
                layers,
                uns: without_moved_graphs(members(root, "uns")?, &moved),
                raw,
                encoding_version: h5::attr_string(root, "encoding-version")?,
                file_bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
            })
        })
    }
}

/// The graphs anndata moves from `uns['neighbors']` to obsp as it reads a
/// file (`_move_adj_mtx`): scanpy < 1.5 stored distances and connectivities
/// there. They are listed in obsp (replacing a same-named one, as anndata
/// does) and write() puts them there.
pub fn graphs_in_uns(root: &hdf5::Group) -> Result<Vec<(String, ElementInfo)>> {
    let Some(Node::Group(n)) = h5::node(root, "uns/neighbors") else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for key in ["distances", "connectivities"] {
        let path = format!("/uns/neighbors/{key}");
        if let Some(info) = element::describe(&n, key, &path)? {
            let matrix = matches!(
                info.encoding.as_str(),
                "csr_matrix" | "csc_matrix" | "array"
            );
            if matrix && info.shape.len() == 2 {
                out.push((key.to_string(), info));
            }
        }
    }
    Ok(out)
}

fn without_moved_graphs(
    mut uns: Vec<(String, ElementInfo)>,
    moved: &[(String, ElementInfo)],
) -> Vec<(String, ElementInfo)> {
    for (name, info) in uns.iter_mut() {
        if name == "neighbors" {
            if let Some(children) = info.children.as_mut() {
                children.retain(|(k, _)| !moved.iter().any(|(m, _)| m == k));
            }
        }
    }
    uns
}

/// Matrix metadata without validating indptr (cheap, for listings).
pub fn matrix_meta(root: &hdf5::Group, path: &str) -> Result<MatrixMeta> {
    Matrix::open(root, path).map(|m| m.meta)
}

/// The leading dimensions of each element aligned to obs / var must be
/// those axes' lengths (anndata refuses such files too). Checked from the
/// shape attributes at open, before anything is sized by them. Elements
/// with an unsupported encoding report that when they are accessed.
fn check_aligned(entries: &[(String, ElementInfo)], dims: &[usize]) -> Result<()> {
    for (_, info) in entries {
        if !info.supported || info.shape.is_empty() {
            continue;
        }
        if info.shape.len() < dims.len() || info.shape[..dims.len()] != *dims {
            return Err(Error::format(
                &info.path,
                format!(
                    "shape {:?} does not match the aligned axes {:?} (obs / var lengths)",
                    info.shape, dims
                ),
            ));
        }
    }
    Ok(())
}

fn members(root: &hdf5::Group, name: &str) -> Result<Vec<(String, ElementInfo)>> {
    let Some(Node::Group(g)) = h5::node_at(root, name, &format!("/{name}"))? else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for key in g.member_names().unwrap_or_default() {
        let path = format!("/{name}/{key}");
        if let Some(info) = element::describe(&g, &key, &path)? {
            out.push((key, info));
        }
    }
    Ok(out)
}
