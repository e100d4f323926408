//! Writing an h5ad (optionally a subset) from an open source file. Matrices
//! stream block by block through the pass executor and keep their stored
//! format and dtypes; dataframes are re-encoded with anndata 0.12's
//! encodings; uns is copied object by object. The output goes to a
//! temporary file in the target folder and is renamed into place at the end,
//! so a failed or cancelled write never leaves a half-written file.

use crate::dataframe::{self, Column};
use crate::dtype::DType;
use crate::element;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::file::H5ad;
use crate::h5::{self, Node};
use crate::h5w::{self, Appendable, Compression};
use crate::matrix::{Block, BlockData, Format, Matrix, MinorMap};
use crate::pass::{self, Accumulator, Control, Rows};
use crate::reorder;
use hdf5::Group;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub obs: Option<Vec<usize>>,
    pub var: Option<Vec<usize>>,
}

/// Results computed in the session, written next to the file's contents.
/// Columns and arrays are already restricted to the written subset.
#[derive(Debug, Default)]
pub struct Session {
    /// Columns added to / replacing columns of obs and var.
    pub obs: Vec<(String, Column)>,
    pub var: Vec<(String, Column)>,
    /// In-memory elements of obsm / varm / obsp / varp (X_pca, PCs,
    /// neighbors' graphs, anything the user set), restricted to the subset.
    pub obsm: Vec<(String, ElementIn)>,
    pub varm: Vec<(String, ElementIn)>,
    pub obsp: Vec<(String, ElementIn)>,
    pub varp: Vec<(String, ElementIn)>,
    /// New uns entries as a JSON tree; arrays refer to `uns_vectors`.
    pub uns_json: Option<String>,
    pub uns_vectors: Vec<crate::dtype::Values>,
    /// Matrices written through a transform chain ("X", "layers/<key>",
    /// "raw/X").
    pub planned: Vec<crate::pp::write::PlannedMatrix>,
    /// raw's var when the session set raw (its X is in `planned`).
    pub raw_var: Option<Frame>,
    /// raw's varm when the session set raw.
    pub raw_varm: Vec<(String, ElementIn)>,
}

impl Session {
    /// The in-memory elements' structure, checked before X is streamed, so
    /// a bad one fails the write at once, naming it.
    fn validate(&self) -> Result<()> {
        let slots = [
            ("obsm", &self.obsm),
            ("varm", &self.varm),
            ("obsp", &self.obsp),
            ("varp", &self.varp),
            ("raw/varm", &self.raw_varm),
        ];
        for (slot, elements) in slots {
            for (key, el) in elements {
                el.validate(&format!("/{slot}/{key}"))?;
            }
        }
        Ok(())
    }
}

/// An in-memory element of obsm / varm / obsp / varp, in any of the
/// encodings anndata stores there.
#[derive(Debug)]
pub enum ElementIn {
    /// A dense n-d array, row-major.
    Array {
        values: crate::dtype::Values,
        shape: Vec<usize>,
    },
    Sparse(SparseIn),
    Frame(Frame),
}

impl ElementIn {
    /// Checks before anything is written, so a bad element fails the write
    /// early with its key, not halfway.
    fn validate(&self, at: &str) -> Result<()> {
        match self {
            ElementIn::Array { values, shape } => {
                let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if n != Some(values.len()) {
                    return Err(Error::invalid(format!(
                        "shape {shape:?} does not hold its {} values",
                        values.len()
                    ))
                    .at(at));
                }
                Ok(())
            }
            ElementIn::Sparse(m) => m.validate(at),
            ElementIn::Frame(f) => f.validate(at),
        }
    }

    /// Arrays and sparse matrices take the write's compression, as
    /// anndata's write_h5ad applies it to every array.
    fn write(&self, g: &Group, key: &str, c: Compression) -> Result<()> {
        match self {
            ElementIn::Array { values, shape } => {
                let c = if shape.is_empty() {
                    Compression::None
                } else {
                    c
                };
                let ds = h5w::write_values(g, key, values, shape, c)?;
                h5w::set_encoding(&ds, "array", "0.2.0")
            }
            ElementIn::Sparse(m) => write_sparse(g, key, m, c),
            ElementIn::Frame(f) => write_frame(g, key, f),
        }
    }
}

/// An in-memory sparse matrix to write (anndata's csr_matrix, or
/// csc_matrix when `csc`: indptr then runs over columns).
#[derive(Debug)]
pub struct SparseIn {
    pub csc: bool,
    pub shape: [usize; 2],
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub data: crate::dtype::Values,
}

impl SparseIn {
    /// Structure checks, so a bad matrix fails before anything is written.
    pub fn validate(&self, key: &str) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m).at(key));
        let [r, c] = self.shape;
        let (major, minor, minor_name) = if self.csc {
            (c, r, "row")
        } else {
            (r, c, "column")
        };
        if self.indptr.len() != major + 1
            || self.indptr[0] != 0
            || self.indptr.windows(2).any(|w| w[0] > w[1])
        {
            return bad(format!(
                "indptr must have {} non-decreasing entries from 0",
                major + 1
            ));
        }
        let nnz = self.indptr[major] as usize;
        if self.indices.len() != nnz || self.data.len() != nnz {
            return bad(format!(
                "indptr ends at {nnz} but there are {} indices and {} values",
                self.indices.len(),
                self.data.len()
            ));
        }
        if self.indices.iter().any(|&j| j < 0 || j as usize >= minor) {
            return bad(format!(
                "{minor_name} index out of range for {minor} {minor_name}s"
            ));
        }
        Ok(())
    }
}

fn write_sparse(g: &Group, key: &str, m: &SparseIn, c: Compression) -> Result<()> {
    let at = format!("{}/{key}", g.name());
    let group = g.create_group(key).at(&at)?;
    let encoding = if m.csc { "csc_matrix" } else { "csr_matrix" };
    h5w::set_encoding(&group, encoding, "0.1.0")?;
    h5w::set_i64s_attr(&group, "shape", &[m.shape[0] as i64, m.shape[1] as i64])?;
    h5w::write_growable(&group, "data", &m.data, c)?;
    let indices = crate::dtype::Values::Int32(m.indices.clone());
    h5w::write_growable(&group, "indices", &indices, c)?;
    let indptr = h5w::ints_as(
        m.indptr.clone(),
        h5w::indptr_dtype(DType::Int32, m.indices.len() as u64),
    );
    h5w::write_growable(&group, "indptr", &indptr, Compression::None)?;
    Ok(())
}

/// A whole dataframe from the session: index name and values, columns in order.
#[derive(Debug)]
pub struct Frame {
    pub index_name: String,
    pub index: Column,
    pub columns: Vec<(String, Column)>,
}

impl Frame {
    /// Every column as long as the index, and no column named like the index.
    fn validate(&self, at: &str) -> Result<()> {
        for (n, c) in &self.columns {
            if c.len() != self.index.len() {
                return Err(Error::invalid(format!(
                    "column {n} has {} values, expected {}",
                    c.len(),
                    self.index.len()
                ))
                .at(at));
            }
            if *n == self.index_name {
                return Err(
                    Error::invalid(format!("a column is named {n:?} like the index")).at(at),
                );
            }
        }
        Ok(())
    }
}

impl Frame {
    /// The frame with its string index stored as a nullable-string-array.
    /// anndata 0.12 refuses an obsm/varm frame whose index dtype differs
    /// from the obs/var names' (object vs StringDtype).
    fn with_nullable_index(&self) -> Frame {
        let index = match &self.index {
            Column::Strings {
                strings,
                mask: None,
            } => Column::Strings {
                strings: strings.clone(),
                mask: Some(vec![0; strings.len()]),
            },
            other => other.clone(),
        };
        Frame {
            index_name: self.index_name.clone(),
            index,
            columns: self.columns.clone(),
        }
    }
}

/// Whether the written obs (var) index is a nullable-string-array (a group).
fn index_is_nullable(out: &Group, axis: &str) -> bool {
    let Ok(g) = out.group(axis) else {
        return false;
    };
    let name = h5::attr_string(&g, "_index")
        .ok()
        .flatten()
        .unwrap_or_else(|| "_index".into());
    g.group(&name).is_ok()
}

/// Write a session dataframe with anndata 0.12's encodings.
fn write_frame(out: &Group, name: &str, f: &Frame) -> Result<()> {
    let where_ = format!("{}/{name}", out.name().trim_end_matches('/'));
    f.validate(&where_)?;
    let g = out.create_group(name).at(&where_)?;
    h5w::set_encoding(&g, "dataframe", "0.2.0")?;
    h5w::set_str_attr(&g, "_index", &f.index_name)?;
    let names: Vec<String> = f.columns.iter().map(|(n, _)| n.clone()).collect();
    h5w::set_strs_attr(&g, "column-order", &names)?;
    write_column(&g, &f.index_name, &f.index)?;
    for (n, c) in &f.columns {
        write_column(&g, n, c)?;
    }
    Ok(())
}

/// Which selection applies to each axis of an element.
#[derive(Clone, Copy)]
enum Axis {
    Obs,
    Var,
    All,
}

impl Selection {
    fn get(&self, a: Axis) -> Option<&[usize]> {
        match a {
            Axis::Obs => self.obs.as_deref(),
            Axis::Var => self.var.as_deref(),
            Axis::All => None,
        }
    }
}

fn resolve_target(dest: &str) -> Result<PathBuf> {
    let p = Path::new(dest);
    let name = p
        .file_name()
        .ok_or_else(|| Error::invalid(format!("'{dest}' is not a file path")))?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = parent.canonicalize().map_err(|e| {
        Error::new(
            ErrorKind::FileAccess,
            format!("cannot write {dest}: folder {}: {e}", parent.display()),
        )
        .in_file(dest)
    })?;
    // Checked now, not at the rename after the whole file is written.
    if name.len() > 255 {
        return Err(Error::new(
            ErrorKind::FileAccess,
            format!("cannot write {dest}: the file name is longer than 255 bytes"),
        )
        .in_file(dest));
    }
    let mut target = parent.join(name);
    // The file is written beside the target and renamed over it: through a
    // symlink that would replace the link, so write to what it points at
    // (as h5py does), and never rename over a device, fifo or folder.
    if let Ok(meta) = std::fs::symlink_metadata(&target) {
        if meta.file_type().is_symlink() {
            target = target.canonicalize().map_err(|e| {
                Error::new(
                    ErrorKind::FileAccess,
                    format!("cannot write {dest}: it is a symlink that does not resolve ({e})"),
                )
                .in_file(dest)
            })?;
        }
        let meta = std::fs::metadata(&target).map_err(|e| {
            Error::new(ErrorKind::FileAccess, format!("cannot write {dest}: {e}")).in_file(dest)
        })?;
        if !meta.is_file() {
            return Err(Error::new(
                ErrorKind::FileAccess,
                format!("cannot write {dest}: it exists and is not a regular file"),
            )
            .in_file(dest));
        }
    }
    Ok(target)
}

/// Distinguishes the temporary files of concurrent writes to one path.
static WRITE_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Write `src` (restricted to `sel`) to `dest`.
pub fn write_h5ad(
    src: &H5ad,
    dest: &str,
    sel: &Selection,
    c: Compression,
    control: &Control,
) -> Result<()> {
    write_h5ad_session(src, dest, sel, &Session::default(), c, control)
}

/// Like write_h5ad, adding the session's results (see Session).
pub fn write_h5ad_session(
    src: &H5ad,
    dest: &str,
    sel: &Selection,
    session: &Session,
    c: Compression,
    control: &Control,
) -> Result<()> {
    let target = resolve_target(dest)?;
    session.validate().map_err(|e| e.in_file(dest))?;
    // The output is renamed over `target`: refused when that is the file
    // being read, by inode, so that it is found under another name too (a
    // rename since it was opened, a bind mount, a hard link). A source
    // deleted since (the open handle keeps its data) is no longer there.
    if src.is_same_file(&target) {
        return Err(Error::invalid(
            "refusing to write over the file this object is reading from (the same file, maybe under another name); write to a new path",
        )
        .in_file(dest));
    }
    // The temporary's name starts with the destination's, cut so that the
    // pid and sequence still fit a 255-byte file name.
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let mut cut = name.len().min(200);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = &name[..cut];
    if let Some(dir) = target.parent() {
        crate::orphans::remove(dir, |n| crate::orphans::write_pid(stem, n));
    }
    let tmp = target.with_file_name(format!(
        ".{stem}.{}.{}.tmp",
        std::process::id(),
        WRITE_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    // Checked before the rename, so an output that may mix old and new
    // data never replaces anything at `dest`.
    let result = write_to(src, &tmp, sel, session, c, control).and_then(|()| src.check_unchanged());
    match result {
        Ok(()) => std::fs::rename(&tmp, &target).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::new(
                ErrorKind::FileAccess,
                format!("cannot move the written file into place: {e}"),
            )
            .in_file(dest)
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(output_error(e, &tmp, dest))
        }
    }
}

/// An HDF5 error that names the temporary output (a write the system
/// refused: a full disk, a quota) is the destination's fault, not the
/// source's: a FileAccess error naming `dest` with the system's reason.
fn output_error(e: Error, tmp: &Path, dest: &str) -> Error {
    let tmp_name = tmp.to_string_lossy();
    let names_tmp =
        e.message.contains(tmp_name.as_ref()) || e.path.as_deref() == Some(tmp_name.as_ref());
    // Creating or closing the output (its last flush) fails the same way.
    let output_side = matches!(
        e.kind,
        ErrorKind::Format | ErrorKind::FileAccess | ErrorKind::Internal
    );
    if !names_tmp || !output_side {
        return e;
    }
    let reason = e
        .message
        .split("error message = '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .map(str::to_string)
        .unwrap_or_else(|| e.message.replace(tmp_name.as_ref(), dest));
    let mut out = Error::new(
        ErrorKind::FileAccess,
        format!("cannot write {dest}: {reason}; nothing was written"),
    )
    .in_file(dest);
    out.element = e.element;
    out
}

fn write_to(
    src: &H5ad,
    tmp: &Path,
    sel: &Selection,
    session: &Session,
    c: Compression,
    control: &Control,
) -> Result<()> {
    // No raw-data caches in the output: HDF5 writes every block through at
    // once, so a failed write (a full disk) fails its H5Dwrite and leaves
    // nothing dirty for the close. A dataset whose close has to flush and
    // fails stays registered after HDF5 freed it, and the file's close then
    // reads the freed memory (a segfault that would kill the kernel).
    let out = hdf5::File::with_options()
        .with_fapl(|p| p.chunk_cache(0, 0, 1.0).sieve_buf_size(0))
        .create(tmp)
        .map_err(|e| {
            // output_error names the destination instead.
            Error::new(
                ErrorKind::FileAccess,
                format!("cannot create {}: {e}", tmp.display()),
            )
            .in_file(&tmp.to_string_lossy())
        })?;
    src.with_root(|root| {
        h5w::set_encoding(&out, "anndata", "0.1.0")?;
        write_dataframe(root, "/obs", &out, "obs", sel.obs.as_deref(), &session.obs)?;
        write_dataframe(root, "/var", &out, "var", sel.var.as_deref(), &session.var)?;
        if root.link_exists("X") && !session.planned.iter().any(|p| p.dest == "X") {
            write_matrix(
                root,
                "/X",
                &out,
                "X",
                sel,
                (Axis::Obs, Axis::Var),
                c,
                control,
            )?;
        }
        for (group, axes) in [
            ("layers", (Axis::Obs, Axis::Var)),
            ("obsm", (Axis::Obs, Axis::All)),
            ("varm", (Axis::Var, Axis::All)),
            ("obsp", (Axis::Obs, Axis::Obs)),
            ("varp", (Axis::Var, Axis::Var)),
        ] {
            write_mapping(root, group, &out, group, sel, axes, c, control)?;
        }
        let moved = crate::file::graphs_in_uns(root)?;
        for (key, info) in &moved {
            let obsp = out.group("obsp").at("/obsp")?;
            if obsp.link_exists(key) {
                obsp.unlink(key).at(&info.path)?;
            }
            write_matrix(
                root,
                &info.path,
                &obsp,
                key,
                sel,
                (Axis::Obs, Axis::Obs),
                c,
                control,
            )?;
        }
        if let Some(raw_var) = &session.raw_var {
            // A raw snapshot from the session replaces the file's raw; its X
            // is a planned matrix with dest "raw/X".
            let raw = out.create_group("raw").at("/raw")?;
            h5w::set_encoding(&raw, "raw", "0.1.0")?;
            write_frame(&raw, "var", raw_var)?;
            let varm = raw.create_group("varm").at("/raw/varm")?;
            h5w::set_encoding(&varm, "dict", "0.1.0")?;
            for (key, el) in &session.raw_varm {
                el.write(&varm, key, c)
                    .map_err(|e| e.at(&format!("/raw/varm/{key}")))?;
            }
        } else if let Some(Node::Group(_)) = h5::node(root, "raw") {
            let raw = out.create_group("raw").at("/raw")?;
            h5w::set_encoding(&raw, "raw", "0.1.0")?;
            if root.link_exists("raw/X") {
                let raw_sel = Selection {
                    obs: sel.obs.clone(),
                    var: None,
                };
                write_matrix(
                    root,
                    "/raw/X",
                    &raw,
                    "X",
                    &raw_sel,
                    (Axis::Obs, Axis::Var),
                    c,
                    control,
                )?;
            }
            write_dataframe(root, "/raw/var", &raw, "var", None, &[])?;
            write_mapping(
                root,
                "raw/varm",
                &raw,
                "varm",
                &Selection::default(),
                (Axis::All, Axis::All),
                c,
                control,
            )?;
        }
        match h5::node(root, "uns") {
            // External links are copied as what they point to: a file opened
            // through an overlay (legacy06) links its uns entries.
            Some(Node::Group(u)) => {
                let expand = hdf5::plist::ObjectCopyBuilder::new()
                    .expand_ext_links(true)
                    .finish()
                    .at("/uns")?;
                u.copy_to_with_props(&out, "uns", Some(&expand), None)
                    .at("/uns")?;
                for (key, info) in &moved {
                    out.unlink(&format!("uns/neighbors/{key}")).at(&info.path)?;
                }
            }
            _ => {
                let u = out.create_group("uns").at("/uns")?;
                h5w::set_encoding(&u, "dict", "0.1.0")?;
            }
        }
        for (slot, elements) in [
            ("obsm", &session.obsm),
            ("varm", &session.varm),
            ("obsp", &session.obsp),
            ("varp", &session.varp),
        ] {
            if elements.is_empty() {
                continue;
            }
            let g = out.group(slot).at(&format!("/{slot}"))?;
            let axis = match slot {
                "obsm" => Some("obs"),
                "varm" => Some("var"),
                _ => None,
            };
            let nullable_index = axis.is_some_and(|a| index_is_nullable(&out, a));
            for (key, el) in elements {
                let at = format!("/{slot}/{key}");
                if g.link_exists(key) {
                    g.unlink(key).at(&at)?;
                }
                match el {
                    ElementIn::Frame(f) if nullable_index => {
                        write_frame(&g, key, &f.with_nullable_index())
                    }
                    _ => el.write(&g, key, c),
                }
                .map_err(|e| e.at(&at))?;
            }
        }
        for pm in &session.planned {
            // No transforms (a layer set to X, raw snapshotted from an
            // untransformed X): copied as X is, keeping its dtype and
            // format; the plan writer stores float32 CSR or dense.
            let plan = crate::pp::plan::Plan::parse(&pm.plan_json)?;
            if plan.steps.is_empty() && plan.output.is_none() {
                let (parent, name) = match pm.dest.rsplit_once('/') {
                    Some((p, n)) => (out.group(p).at(&format!("/{p}"))?, n.to_string()),
                    None => (out.group("/").at("/")?, pm.dest.clone()),
                };
                if parent.link_exists(&name) {
                    parent.unlink(&name).at(&format!("/{}", pm.dest))?;
                }
                let sel = Selection {
                    obs: pm.rows.clone(),
                    var: pm.cols.clone(),
                };
                write_matrix(
                    root,
                    &pm.source,
                    &parent,
                    &name,
                    &sel,
                    (Axis::Obs, Axis::Var),
                    c,
                    control,
                )?;
                continue;
            }
            crate::pp::write::write_planned(root, &out, pm, c, control)?;
        }
        if let Some(json) = &session.uns_json {
            let tree: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| Error::invalid(format!("bad uns descriptor: {e}")))?;
            let u = out.group("uns").at("/uns")?;
            write_uns_items(&u, &tree, &session.uns_vectors, root)?;
        }
        Ok(())
    })?;
    // Its last flush can fail as any write (a full disk): output_error
    // turns that into the destination's FileAccess error.
    out.close().map_err(|e| {
        Error::new(
            ErrorKind::FileAccess,
            format!("closing the written file {}: {e}", tmp.display()),
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn write_mapping(
    root: &Group,
    src_group: &str,
    out: &Group,
    name: &str,
    sel: &Selection,
    axes: (Axis, Axis),
    c: Compression,
    control: &Control,
) -> Result<()> {
    let dst = out.create_group(name).at(&format!("/{src_group}"))?;
    h5w::set_encoding(&dst, "dict", "0.1.0")?;
    let Some(Node::Group(g)) = h5::node(root, src_group) else {
        return Ok(());
    };
    for key in g.member_names().unwrap_or_default() {
        let path = format!("/{src_group}/{key}");
        let Some(info) = element::describe(&g, &key, &path)? else {
            continue;
        };
        let unsubset = sel.get(axes.0).is_none() && sel.get(axes.1).is_none();
        match info.encoding.as_str() {
            // An n-d array (n > 2, e.g. an obsm image stack): the matrix
            // writer streams 2-d only; copied as it is when not subset.
            "array" if info.shape.len() > 2 && unsubset => g.copy_to_named(&key, &dst).at(&path)?,
            "array" | "csr_matrix" | "csc_matrix" => {
                write_matrix(root, &path, &dst, &key, sel, axes, c, control)?
            }
            "dataframe" => write_dataframe(root, &path, &dst, &key, sel.get(axes.0), &[])?,
            _ if unsubset => g.copy_to_named(&key, &dst).at(&path)?,
            other => {
                return Err(Error::new(
                    ErrorKind::UnsupportedEncoding,
                    format!("cannot subset an element with encoding-type '{other}'"),
                )
                .at(&path))
            }
        }
    }
    Ok(())
}

trait CopyNamed {
    fn copy_to_named(&self, key: &str, dst: &Group) -> hdf5::Result<()>;
}

impl CopyNamed for Group {
    fn copy_to_named(&self, key: &str, dst: &Group) -> hdf5::Result<()> {
        match h5::node(self, key) {
            Some(Node::Group(x)) => x.copy_to(dst, key),
            Some(Node::Dataset(x)) => x.copy_to(dst, key),
            None => Ok(()),
        }
    }
}

/// Stream a matrix element through the pass executor into `out/name`.
#[allow(clippy::too_many_arguments)]
fn write_matrix(
    root: &Group,
    path: &str,
    out: &Group,
    name: &str,
    sel: &Selection,
    axes: (Axis, Axis),
    c: Compression,
    control: &Control,
) -> Result<()> {
    let m = Matrix::open(root, path)?;
    let (rows, cols) = (sel.get(axes.0), sel.get(axes.1));
    for (s, n) in [(rows, m.meta.shape[0]), (cols, m.meta.shape[1])] {
        if let Some(&bad) = s.and_then(|s| s.iter().find(|&&i| i >= n)) {
            return Err(
                Error::invalid(format!("index {bad} out of range for length {n}")).at(path),
            );
        }
    }
    let out_shape = [
        rows.map_or(m.meta.shape[0], |r| r.len()),
        cols.map_or(m.meta.shape[1], |r| r.len()),
    ];
    let (major_sel, minor_sel) = if m.meta.format == Format::Csc {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let majors: Vec<usize> = major_sel.map_or_else(|| (0..m.n_major()).collect(), |s| s.to_vec());
    let minor = minor_sel.map_or_else(
        || MinorMap::identity(m.n_minor()),
        |s| MinorMap::select(m.n_minor(), s.to_vec()),
    );
    match m.meta.format {
        Format::Dense => {
            let ndim = match h5::node(root, path) {
                Some(Node::Dataset(d)) => d.ndim(),
                _ => 2,
            };
            let mut sink = DenseSink::new(out, name, &m, out_shape, ndim, c)?;
            pass::run(&m, &majors, &minor, pass::block_bytes(), control, &mut sink)
        }
        _ => {
            let mut sink = SparseSink::new(out, name, &m, out_shape, c)?;
            // Appended in the view's order, read in the file's (see reorder.rs).
            reorder::run_in_view_order(&m, &majors, &minor, control, &mut sink)?;
            // indptr goes in last, once every block has been appended.
            sink.finish()
        }
    }
}

struct SparseSink {
    group: Group,
    data: Appendable,
    indices: Appendable,
    indptr: Vec<i64>,
    indices_dtype: DType,
}

impl SparseSink {
    fn new(out: &Group, name: &str, m: &Matrix, shape: [usize; 2], c: Compression) -> Result<Self> {
        let where_ = format!("{}/{name}", out.name());
        let group = out.create_group(name).at(&where_)?;
        let kind = if m.meta.format == Format::Csc {
            "csc_matrix"
        } else {
            "csr_matrix"
        };
        h5w::set_encoding(&group, kind, "0.1.0")?;
        h5w::set_i64s_attr(&group, "shape", &[shape[0] as i64, shape[1] as i64])?;
        Ok(SparseSink {
            data: Appendable::create(&group, "data", m.meta.dtype, c)?,
            indices: Appendable::create(
                &group,
                "indices",
                m.meta.index_dtype.unwrap_or(DType::Int32),
                c,
            )?,
            indptr: vec![0],
            indices_dtype: m.meta.index_dtype.unwrap_or(DType::Int32),
            group,
        })
    }
}

impl Accumulator for SparseSink {
    fn consume(&mut self, block: &Block, _rows: Rows<'_>) -> Result<()> {
        let BlockData::Compressed {
            indptr,
            indices,
            values,
        } = &block.data
        else {
            return Err(Error::internal("dense block in a sparse sink"));
        };
        let base = *self.indptr.last().unwrap_or(&0);
        self.indptr.extend(indptr[1..].iter().map(|p| p + base));
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        self.indices
            .append(&h5w::ints_as(idx, self.indices_dtype))?;
        self.data.append(values)
    }
}

impl SparseSink {
    fn finish(&mut self) -> Result<()> {
        self.data.finish()?;
        self.indices.finish()?;
        // Not the source's indptr dtype: a file with int64 indptr next to
        // int32 indices (as this writer once made them) is not copied on.
        let nnz = *self.indptr.last().unwrap_or(&0) as u64;
        let dtype = h5w::indptr_dtype(self.indices_dtype, nnz);
        let ptr = h5w::ints_as(std::mem::take(&mut self.indptr), dtype);
        h5w::write_growable(&self.group, "indptr", &ptr, Compression::None)?;
        Ok(())
    }
}

struct DenseSink {
    ds: hdf5::Dataset,
    n_cols: usize,
    ndim: usize,
    element: String,
}

impl DenseSink {
    fn new(
        out: &Group,
        name: &str,
        m: &Matrix,
        shape: [usize; 2],
        ndim: usize,
        c: Compression,
    ) -> Result<Self> {
        let element = format!("{}/{name}", out.name());
        let dims: Vec<usize> = if ndim == 1 {
            vec![shape[0]]
        } else {
            shape.to_vec()
        };
        let total: usize = dims.iter().product();
        macro_rules! mk {
            ($t:ty) => {{
                let b = out.new_dataset::<$t>().shape(dims.clone());
                let b = match c {
                    Compression::Gzip(l) if total > 0 => b.chunk(chunk_for(&dims)).deflate(l),
                    Compression::Lzf if total > 0 => b.chunk(chunk_for(&dims)).lzf(),
                    _ => b,
                };
                b.create(name).at(&element)?
            }};
        }
        let ds = match m.meta.dtype {
            DType::Bool => mk!(bool),
            DType::Int8 => mk!(i8),
            DType::Int16 => mk!(i16),
            DType::Int32 => mk!(i32),
            DType::Int64 => mk!(i64),
            DType::Uint8 => mk!(u8),
            DType::Uint16 => mk!(u16),
            DType::Uint32 => mk!(u32),
            DType::Uint64 => mk!(u64),
            DType::Float32 => mk!(f32),
            DType::Float64 => mk!(f64),
            DType::String => return Err(Error::internal("string matrix")),
        };
        h5w::set_encoding(&ds, "array", "0.2.0")?;
        Ok(DenseSink {
            ds,
            n_cols: shape[1],
            ndim,
            element,
        })
    }
}

fn chunk_for(dims: &[usize]) -> Vec<usize> {
    let cols: usize = dims.iter().skip(1).product::<usize>().max(1);
    let rows = (dims[0]).clamp(1, (1 << 18) / cols.max(1) + 1);
    let mut c = vec![rows];
    c.extend(dims.iter().skip(1).map(|&d| d.max(1)));
    c
}

impl Accumulator for DenseSink {
    fn consume(&mut self, block: &Block, rows: Rows<'_>) -> Result<()> {
        let first = rows.first()?;
        let BlockData::Dense { values } = &block.data else {
            return Err(Error::internal("sparse block in a dense sink"));
        };
        let (lo, hi) = (first, first + block.n_major);
        if hi == lo || self.n_cols == 0 {
            return Ok(());
        }
        macro_rules! w {
            ($v:expr) => {{
                if self.ndim == 1 {
                    self.ds.write_slice(&$v[..], lo..hi).at(&self.element)?
                } else {
                    let arr = ndarray::ArrayView2::from_shape((hi - lo, self.n_cols), &$v[..])
                        .map_err(|e| Error::internal(e.to_string()))?;
                    self.ds
                        .write_slice(arr, ndarray::s![lo..hi, ..])
                        .at(&self.element)?
                }
            }};
        }
        match values {
            crate::dtype::Values::Bool(v) => {
                let b: Vec<bool> = v.iter().map(|&x| x != 0).collect();
                w!(b)
            }
            crate::dtype::Values::Int8(v) => w!(v),
            crate::dtype::Values::Int16(v) => w!(v),
            crate::dtype::Values::Int32(v) => w!(v),
            crate::dtype::Values::Int64(v) => w!(v),
            crate::dtype::Values::Uint8(v) => w!(v),
            crate::dtype::Values::Uint16(v) => w!(v),
            crate::dtype::Values::Uint32(v) => w!(v),
            crate::dtype::Values::Uint64(v) => w!(v),
            crate::dtype::Values::Float32(v) => w!(v),
            crate::dtype::Values::Float64(v) => w!(v),
        }
        Ok(())
    }
}

/// Re-encode a dataframe (any source encoding) with anndata 0.12's layout.
fn write_dataframe(
    root: &Group,
    path: &str,
    out: &Group,
    name: &str,
    rows: Option<&[usize]>,
    extra: &[(String, Column)],
) -> Result<()> {
    let info = dataframe::describe(root, path)?;
    let (_, index) = dataframe::read_index_column(root, path)?;
    if let Some(&bad) = rows.and_then(|r| r.iter().find(|&&i| i >= index.len())) {
        return Err(Error::invalid(format!(
            "index {bad} out of range for length {}",
            index.len()
        ))
        .at(path));
    }
    let where_ = format!("{}/{name}", out.name().trim_end_matches('/'));
    let g = out.create_group(name).at(&where_)?;
    h5w::set_encoding(&g, "dataframe", "0.2.0")?;
    h5w::set_str_attr(&g, "_index", &info.index_name)?;
    let mut names: Vec<String> = info.columns.iter().map(|c| c.name.clone()).collect();
    for (n, _) in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    h5w::set_strs_attr(&g, "column-order", &names)?;
    let index = match rows {
        Some(r) => take_column(index, r),
        None => index,
    };
    write_column(&g, &info.index_name, &index)?;
    let n_rows = index.len();
    for (n, column) in extra {
        if column.len() != n_rows {
            return Err(Error::invalid(format!(
                "{name} column {n} has {} values, expected {n_rows}",
                column.len()
            )));
        }
        write_column(&g, n, column)?;
    }
    for col in &info.columns {
        if extra.iter().any(|(n, _)| n == &col.name) {
            continue;
        }
        let column = dataframe::read_column(root, path, &col.name)?;
        // A view's categoricals lose the categories none of its rows uses,
        // as anndata's views do (obs/var columns of a view arrive pruned in `extra`).
        let column = match rows {
            Some(r) => without_unused_categories(take_column(column, r)),
            None => column,
        };
        write_column(&g, &col.name, &column)?;
    }
    Ok(())
}

/// A categorical column without the categories no row uses (codes renumbered).
fn without_unused_categories(col: Column) -> Column {
    let Column::Categorical {
        codes,
        categories,
        ordered,
    } = col
    else {
        return col;
    };
    let mut used = vec![false; categories.len()];
    for &c in &codes {
        if c >= 0 && (c as usize) < used.len() {
            used[c as usize] = true;
        }
    }
    if used.iter().all(|&u| u) {
        return Column::Categorical {
            codes,
            categories,
            ordered,
        };
    }
    let kept: Vec<usize> = (0..used.len()).filter(|&c| used[c]).collect();
    let mut remap = vec![-1i32; used.len()];
    for (new, &old) in kept.iter().enumerate() {
        remap[old] = new as i32;
    }
    Column::Categorical {
        codes: codes
            .iter()
            .map(|&c| if c >= 0 { remap[c as usize] } else { c })
            .collect(),
        categories: Box::new(take_column(*categories, &kept)),
        ordered,
    }
}

pub fn take_column(col: Column, idx: &[usize]) -> Column {
    let take_mask = |m: &Vec<u8>| idx.iter().map(|&i| m[i]).collect::<Vec<u8>>();
    match col {
        Column::Numeric(v) => Column::Numeric(v.take(idx)),
        Column::Strings { strings, mask } => Column::Strings {
            strings: strings.take(idx),
            mask: mask.as_ref().map(take_mask),
        },
        Column::Nullable {
            values,
            mask,
            boolean,
        } => Column::Nullable {
            values: values.take(idx),
            mask: take_mask(&mask),
            boolean,
        },
        Column::Categorical {
            codes,
            categories,
            ordered,
        } => Column::Categorical {
            codes: idx.iter().map(|&i| codes[i]).collect(),
            categories,
            ordered,
        },
    }
}

pub(crate) fn write_column(g: &Group, name: &str, col: &Column) -> Result<()> {
    let where_ = format!("{}/{name}", g.name());
    let mask_values = |m: &Vec<u8>| crate::dtype::Values::Bool(m.clone());
    match col {
        Column::Numeric(v) => {
            let ds = h5w::write_values(g, name, v, &[v.len()], Compression::None)?;
            h5w::set_encoding(&ds, "array", "0.2.0")?;
        }
        Column::Strings {
            strings,
            mask: None,
        } => {
            h5w::write_strings(g, name, strings, true)?;
        }
        Column::Strings {
            strings,
            mask: Some(mask),
        } => {
            let cg = g.create_group(name).at(&where_)?;
            h5w::set_encoding(&cg, "nullable-string-array", "0.1.0")?;
            // The parts carry their own encoding, as anndata writes them
            // (without it anndata warns on every read: OldFormatWarning).
            h5w::write_strings(&cg, "values", strings, true)?;
            let ds = h5w::write_values(
                &cg,
                "mask",
                &mask_values(mask),
                &[mask.len()],
                Compression::None,
            )?;
            h5w::set_encoding(&ds, "array", "0.2.0")?;
        }
        Column::Nullable {
            values,
            mask,
            boolean,
        } => {
            let cg = g.create_group(name).at(&where_)?;
            let kind = if *boolean {
                "nullable-boolean"
            } else {
                "nullable-integer"
            };
            h5w::set_encoding(&cg, kind, "0.1.0")?;
            for (part, v, n) in [
                ("values", values, values.len()),
                ("mask", &mask_values(mask), mask.len()),
            ] {
                let ds = h5w::write_values(&cg, part, v, &[n], Compression::None)?;
                h5w::set_encoding(&ds, "array", "0.2.0")?;
            }
        }
        Column::Categorical {
            codes,
            categories,
            ordered,
        } => {
            let cg = g.create_group(name).at(&where_)?;
            h5w::set_encoding(&cg, "categorical", "0.2.0")?;
            h5w::set_bool_attr(&cg, "ordered", *ordered)?;
            let n = categories.len();
            let codes64: Vec<i64> = codes.iter().map(|&c| c as i64).collect();
            // pandas stores codes in the smallest signed type that fits.
            let dtype = if n < i8::MAX as usize {
                DType::Int8
            } else if n < i16::MAX as usize {
                DType::Int16
            } else {
                DType::Int32
            };
            let cv = h5w::ints_as(codes64, dtype);
            let ds = h5w::write_values(&cg, "codes", &cv, &[codes.len()], Compression::None)?;
            h5w::set_encoding(&ds, "array", "0.2.0")?;
            write_column(&cg, "categories", categories)?;
        }
    }
    Ok(())
}

/// Write new uns entries from a JSON tree: {"t": "dict", "items": {...}},
/// {"t": "num", "v": 1.5}, {"t": "int", "v": 3}, {"t": "bool", "v": true},
/// {"t": "str", "v": "x"}, {"t": "strs", "v": [...]}, {"t": "arr", "i": k,
/// "shape": [...]} (vector k), {"t": "null"}, {"t": "del"} (leave the key out),
/// {"t": "keep"} (as the source stored it), {"t": "copy", "from": path} (the
/// source's element at path); a dict with "merge": true edits the source's
/// group in place.
/// The `shape` of an uns descriptor node, if it has one.
fn shape_of(node: &serde_json::Value) -> Option<Vec<usize>> {
    node["shape"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0) as usize).collect())
}

fn write_uns_items(
    g: &Group,
    tree: &serde_json::Value,
    vectors: &[crate::dtype::Values],
    source: &Group,
) -> Result<()> {
    let items = tree
        .get("items")
        .and_then(|i| i.as_object())
        .ok_or_else(|| Error::invalid("uns descriptor: expected a dict"))?;
    for (key, node) in items {
        let at = format!("{}/{key}", g.name());
        let t = node.get("t").and_then(|t| t.as_str()).unwrap_or("");
        // A dict of the source edited in the session: its group stays, and
        // only the children that changed are written ("keep" is unchanged).
        let merged = match t {
            "keep" => continue,
            "dict" if node.get("merge").and_then(|m| m.as_bool()) == Some(true) => {
                g.group(key).ok()
            }
            _ => None,
        };
        if merged.is_none() && g.link_exists(key) {
            g.unlink(key).at(&at)?;
        }
        match t {
            "dict" => {
                let sub = match merged {
                    Some(sub) => sub,
                    None => {
                        let sub = g.create_group(key).at(&at)?;
                        h5w::set_encoding(&sub, "dict", "0.1.0")?;
                        sub
                    }
                };
                write_uns_items(&sub, node, vectors, source)?;
            }
            "num" | "int" | "bool" => {
                let v = &node["v"];
                let values = match t {
                    // Non-finite numbers come as "Infinity", "-Infinity", "NaN".
                    "num" => {
                        crate::dtype::Values::Float64(vec![v.as_f64().unwrap_or_else(|| {
                            match v.as_str() {
                                Some("Infinity") => f64::INFINITY,
                                Some("-Infinity") => f64::NEG_INFINITY,
                                _ => f64::NAN,
                            }
                        })])
                    }
                    "int" => crate::dtype::Values::Int64(vec![v.as_i64().ok_or_else(|| {
                        Error::invalid(format!("uns {key}: {v} is not a 64-bit integer"))
                    })?]),
                    _ => crate::dtype::Values::Bool(vec![u8::from(v.as_bool().unwrap_or(false))]),
                };
                let ds = h5w::write_values(g, key, &values, &[], Compression::None)?;
                h5w::set_encoding(&ds, "numeric-scalar", "0.2.0")?;
            }
            "str" => {
                let v = node["v"].as_str().unwrap_or("");
                let ds = g
                    .new_dataset::<hdf5::types::VarLenUnicode>()
                    .shape(())
                    .create(key.as_str())
                    .at(&at)?;
                ds.write_scalar(&h5w::vlen(v, &at)?).at(&at)?;
                h5w::set_encoding(&ds, "string", "0.2.0")?;
            }
            "strs" => {
                let list: Vec<&str> = node["v"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_str().unwrap_or("")).collect())
                    .unwrap_or_default();
                h5w::write_strings(g, key, &crate::strings::Strings::from_iter(list), true)?;
            }
            "arr" => {
                let i = node["i"].as_u64().unwrap_or(u64::MAX) as usize;
                let values = vectors
                    .get(i)
                    .ok_or_else(|| Error::invalid(format!("uns {key}: missing vector {i}")))?;
                let shape = shape_of(node).unwrap_or_else(|| vec![values.len()]);
                let ds = h5w::write_values(g, key, values, &shape, Compression::None)?;
                h5w::set_encoding(&ds, "array", "0.2.0")?;
            }
            // A sparse matrix (scanpy's uns.paga connectivities): data,
            // indices and indptr are three consecutive vectors.
            "csr" => {
                let i = node["i"].as_u64().unwrap_or(u64::MAX) as usize;
                let vector = |k: usize| {
                    let at = i.saturating_add(k);
                    vectors
                        .get(at)
                        .ok_or_else(|| Error::invalid(format!("uns {key}: missing vector {at}")))
                };
                let shape = shape_of(node).unwrap_or_default();
                let [rows, cols] = shape[..] else {
                    return Err(Error::invalid(format!(
                        "uns {key}: a sparse matrix needs a 2-d shape"
                    )));
                };
                let m = SparseIn {
                    csc: false,
                    shape: [rows, cols],
                    data: vector(0)?.clone(),
                    indices: vector(1)?.to_f64().into_iter().map(|x| x as i32).collect(),
                    indptr: vector(2)?.to_f64().into_iter().map(|x| x as i64).collect(),
                };
                m.validate(&at)?;
                write_sparse(g, key, &m, Compression::None)?;
            }
            // A value read from the source's uns (a dataframe, a sparse
            // matrix) set under another key: the element is copied.
            "copy" => {
                let from = node["from"].as_str().unwrap_or("");
                if !from.starts_with("/uns/") {
                    return Err(Error::invalid(format!(
                        "uns {key}: can only copy from the source's uns, not {from:?}"
                    )));
                }
                let expand = hdf5::plist::ObjectCopyBuilder::new()
                    .expand_ext_links(true)
                    .finish()
                    .at(from)?;
                match h5::node(source, from) {
                    Some(Node::Group(x)) => x.copy_to_with_props(g, key, Some(&expand), None),
                    Some(Node::Dataset(x)) => x.copy_to_with_props(g, key, Some(&expand), None),
                    None => {
                        return Err(Error::format(from, "the uns element to copy is gone"));
                    }
                }
                .at(&at)?;
            }
            // A key of the source's uns deleted in the session: unlinked above.
            "del" => {}
            // anndata writes None as a float32 dataset with a null dataspace
            // (no elements) and encoding "null"; it reads back as None.
            "null" => {
                let ds = g
                    .new_dataset::<f32>()
                    .shape(hdf5::Extents::Null)
                    .create(key.as_str())
                    .at(&at)?;
                h5w::set_encoding(&ds, "null", "0.1.0")?;
            }
            other => {
                return Err(Error::invalid(format!(
                    "uns {key}: unsupported value kind '{other}'"
                )))
            }
        }
    }
    Ok(())
}
