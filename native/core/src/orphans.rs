//! Temporary files of a write, a gene-index build or a pass's spill whose
//! process died (killed, or the kernel restarted mid-pass) are never renamed
//! or removed by it. The next write, build or spill in the same folder
//! removes them: their names carry the writer's pid, and a pid with no /proc
//! entry is gone.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Whether a process with this pid runs (in this pid namespace).
fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Remove the entries of `dir` for which `pid_of(name)` names a dead
/// process (files or folders); errors are ignored (best effort).
pub fn remove(dir: &Path, pid_of: impl Fn(&str) -> Option<u32>) {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell a dead pid here
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(&pid_of) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let path = entry.path();
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
}

/// The folder of the passes' spill files: $ANNDATA_OOM_TMPDIR, else the
/// system's temporary folder. The first use of a folder in this process
/// removes the spills that dead processes left there (a PCA spill of a 1M-cell
/// file is gigabytes).
pub fn spill_dir() -> PathBuf {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let dir = std::env::var_os("ANNDATA_OOM_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
    if swept.get_or_insert_with(HashSet::new).insert(dir.clone()) {
        remove(&dir, spill_pid);
    }
    dir
}

/// The name of a spill file of `kind` ("pca", "reorder").
pub fn spill_name(kind: &str, seq: usize) -> String {
    format!("anndata-oom-{kind}-{}-{seq}.spill", std::process::id())
}

/// The pid in `anndata-oom-<kind>-<pid>-<seq>.spill` (see [`spill_name`]).
pub fn spill_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("anndata-oom-")?.strip_suffix(".spill")?;
    let (_kind, rest) = rest.split_once('-')?;
    let (pid, seq) = rest.split_once('-')?;
    (!seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
    pid.parse().ok()
}

/// The pid in `.<anything>.aoomg.tmp-<pid>-<n>` (or its `.buckets` folder).
pub fn gene_index_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.split_once(".aoomg.tmp-")?;
    let (pid, after) = tail.split_once('-')?;
    let n = after.strip_suffix(".buckets").unwrap_or(after);
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
    pid.parse().ok()
}

/// The pid in `.<file>.<pid>.<seq>.tmp`, the temporary of a write to `file`.
pub fn write_pid(file: &str, name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix('.')?
        .strip_prefix(file)?
        .strip_prefix('.')?;
    let (pid, seq) = rest.strip_suffix(".tmp")?.split_once('.')?;
    (!seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dead_pids() {
        assert_eq!(gene_index_pid(".abc-12.aoomg.tmp-4242-99"), Some(4242));
        assert_eq!(
            gene_index_pid(".abc-12.aoomg.tmp-4242-99.buckets"),
            Some(4242)
        );
        assert_eq!(gene_index_pid("abc-12.aoomg"), None);
        assert_eq!(write_pid("out.h5ad", ".out.h5ad.4242.0.tmp"), Some(4242));
        assert_eq!(write_pid("out.h5ad", ".other.h5ad.4242.0.tmp"), None);
        assert_eq!(write_pid("out.h5ad", "out.h5ad"), None);
        assert_eq!(spill_pid("anndata-oom-pca-4242-3.spill"), Some(4242));
        assert_eq!(spill_pid("anndata-oom-reorder-4242-0.spill"), Some(4242));
        assert_eq!(spill_pid(&spill_name("pca", 7)), Some(std::process::id()));
        assert_eq!(spill_pid("anndata-oom-pca-4242-.spill"), None);
        assert_eq!(spill_pid("other-pca-4242-3.spill"), None);

        let dir = std::env::temp_dir().join(format!("aoom-orphans-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".x.aoomg.tmp-999999999-1.buckets")).unwrap();
        std::fs::write(dir.join(".x.aoomg.tmp-999999999-1"), b"").unwrap();
        let mine = format!(".x.aoomg.tmp-{}-1", std::process::id());
        std::fs::write(dir.join(&mine), b"").unwrap();
        std::fs::write(dir.join("keep.aoomg"), b"").unwrap();
        remove(&dir, gene_index_pid);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![mine, "keep.aoomg".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
