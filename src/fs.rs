//! Writing a file atomically: the one helper behind every finished file the crate writes (dataset
//! directories, converted weights, features, reports, a training run's history, model and checkpoint
//! state).
//!
//! [`write_atomically`] writes the bytes to a temporary file in the target's own folder (same file
//! system, so the rename cannot turn into a copy), flushes it to disk, then renames it over the
//! target: a reader, or a crash at any instant, sees the old file or the new one, never half of one.
//! The temporary file is removed on any failure.
//!
//! Why here, at the crate root, rather than in one of its users (`data/write.rs`,
//! `weights/legacy_pth.rs` and `train/checkpoint.rs` each had a copy): it belongs to no stage of the
//! pipeline. It is file-system plumbing that every stage needs, and a root module lets `train` and
//! `weights` use it without importing `data` (or each other) for it. Each caller maps
//! [`AtomicWriteError`] into its own error type; both variants name the path that failed.
//!
//! Whole directories swapped in at once (an export bundle, a training checkpoint) are a different
//! operation with their own rules and stay with their owners (`export::write_atomic_dir`,
//! `train::checkpoint`); the files inside a staging directory need no atomic write of their own.
//!
//! Native only: the browser has no file system (and no process id for the temporary name).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why [`write_atomically`] failed, with the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    /// Creating, writing or syncing the temporary file failed; `path` is the temporary file.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// Renaming the finished temporary file over the target failed.
    #[error("cannot move {} to {}: {source}", from.display(), to.display())]
    Rename { from: PathBuf, to: PathBuf, source: std::io::Error },
}

impl AtomicWriteError {
    /// The path an error message should name: the temporary file for a failed write, the target for
    /// a failed rename (what the writers reported before they shared this helper).
    pub fn path(&self) -> &Path {
        match self {
            AtomicWriteError::Write { path, .. } => path,
            AtomicWriteError::Rename { to, .. } => to,
        }
    }

    /// The path (as [`AtomicWriteError::path`]) and the I/O error, for callers whose error type
    /// holds one path and one `std::io::Error`.
    pub fn into_parts(self) -> (PathBuf, std::io::Error) {
        match self {
            AtomicWriteError::Write { path, source } => (path, source),
            AtomicWriteError::Rename { to, source, .. } => (to, source),
        }
    }
}

/// The temporary name beside `path`: hidden, and carrying the process id so two processes writing
/// into one folder never share a temporary file.
pub fn temp_path(path: &Path) -> PathBuf {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it to disk, and renames it over `path`
/// (see the module docs). The folder must exist.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    let tmp = temp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(AtomicWriteError::Write { path: tmp, source });
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        AtomicWriteError::Rename { from: tmp, to: path.to_path_buf(), source }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }

    #[test]
    fn a_missing_folder_names_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("out.json");
        let err = write_atomically(&path, b"x").unwrap_err();
        assert!(matches!(err, AtomicWriteError::Write { .. }), "{err}");
        assert_eq!(err.path(), temp_path(&path));
        assert!(err.to_string().starts_with("cannot write "), "{err}");
    }
}
