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
//! [`read_bounded`] is the one reader for a file named by a manifest, a dataset or an argument: it
//! requires a regular file (after following links: a link to `/dev/zero`, a named pipe, a device
//! or a folder is refused before anything is read or opened for long) and reads at most a stated
//! number of bytes, so no such file can make a command read without end or wait forever.
//!
//! Native only: the browser has no file system (and no process id for the temporary name).

use std::io::{Read as _, Write as _};
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

/// The temporary name beside `path` for a writer's `attempt`-th try: hidden, and carrying the
/// process id so that two processes writing into one folder normally pick different names.
pub fn temp_path(path: &Path, attempt: u32) -> PathBuf {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{file_name}.tmp-{}-{attempt}", std::process::id()))
}

/// How many names [`create_temp`] tries before giving up (each taken one is another live writer's, or
/// the leftover of a killed one).
const TEMP_ATTEMPTS: u32 = 1000;

/// Creates a temporary file beside `path` that no other writer has open. The process id alone is not
/// enough: containers on one shared folder (sharded `encode` workers of a Kubernetes Job, a retried
/// slice whose first pod still runs) often all run as pid 1, and two writers in one temporary file
/// interleave their bytes, then rename a corrupt file into place. `create_new` (O_EXCL, also on NFS
/// v3 and later) makes the name the first writer's alone; a taken name moves to the next attempt.
fn create_temp(path: &Path) -> Result<(std::fs::File, PathBuf), AtomicWriteError> {
    for attempt in 0..TEMP_ATTEMPTS {
        let tmp = temp_path(path, attempt);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(AtomicWriteError::Write { path: tmp, source }),
        }
    }
    let source = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "every temporary name is taken");
    Err(AtomicWriteError::Write { path: temp_path(path, TEMP_ATTEMPTS - 1), source })
}

/// Writes `bytes` to a temporary file beside `path`, syncs it to disk, and renames it over `path`
/// (see the module docs). The folder must exist. Concurrent writers of one `path` each rename a
/// whole file of their own: the last rename wins, and no reader ever sees a mixture.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    let (mut file, tmp) = create_temp(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(AtomicWriteError::Write { path: tmp, source });
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        AtomicWriteError::Rename { from: tmp, to: path.to_path_buf(), source }
    })
}

/// The most bytes an image named by a dataset or an argument (`embed --image`) may hold: far above
/// any product photo (the pixel limit, checked from the header, is the tighter bound), far below
/// what would hurt a machine.
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 << 20;

/// The most bytes a JSON or TOML document named by a run, a bundle or an argument may hold (a run's
/// config and metrics, a bundle's manifest): a thousand times what they hold in practice.
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// The most bytes a weights file may hold (encoder weights, a run's model or checkpoint): all-MiniLM
/// and EfficientNet-Lite0 are 90 MB and 19 MB as f32, a run's model a few MB.
pub const MAX_WEIGHTS_FILE_BYTES: u64 = 2 << 30;

/// Why [`read_bounded`] refused or failed, with the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path (after following links) is a named pipe, a device, a socket or a folder.
    #[error("{}: not a regular file ({kind})", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    /// The file holds more than the limit.
    #[error("{}: more than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// Opening or reading failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl ReadError {
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotRegular { path, .. } | ReadError::TooLarge { path, .. } | ReadError::Io { path, .. } => path,
        }
    }

    /// The path and an I/O error saying the same, for callers whose error type holds one path and
    /// one `std::io::Error`.
    pub fn into_parts(self) -> (PathBuf, std::io::Error) {
        match self {
            ReadError::Io { path, source } => (path, source),
            ReadError::NotRegular { path, kind } => {
                let message = format!("not a regular file ({kind})");
                (path, std::io::Error::new(std::io::ErrorKind::InvalidInput, message))
            }
            ReadError::TooLarge { path, limit } => {
                let message = format!("more than {limit} bytes");
                (path, std::io::Error::new(std::io::ErrorKind::InvalidData, message))
            }
        }
    }
}

/// What a non-regular file is, for the error.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a named pipe";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else {
        "not a plain file"
    }
}

/// Reads the regular file at `path` (links followed), at most `limit` bytes: a longer file is
/// [`ReadError::TooLarge`] after reading `limit + 1` bytes, so a file named with a declared size
/// (a bundle's manifest entry) passes that size as `limit` and a mismatch is caught without reading
/// further. Named pipes, devices, sockets and folders are refused before reading; the file is opened
/// non-blocking, so a pipe swapped in after the check cannot hang the open either.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let (file, length) = open_regular(path)?;
    let capacity = length.min(limit).min(isize::MAX as u64) as usize;
    let mut bytes = Vec::with_capacity(capacity);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { path: path.to_path_buf(), limit });
    }
    Ok(bytes)
}

/// Opens the regular file at `path` (links followed) for reading, with its length; named pipes,
/// devices, sockets and folders are refused before and after opening (the path may change in
/// between), and the open does not block (a pipe swapped in cannot hang it).
pub fn open_regular(path: &Path) -> Result<(std::fs::File, u64), ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let not_regular = |file_type| ReadError::NotRegular { path: path.to_path_buf(), kind: kind_of(file_type) };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(not_regular(metadata.file_type()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(not_regular(metadata.file_type()));
    }
    Ok((file, metadata.len()))
}

/// The sha256 (lowercase hex) of the regular file at `path`, read in 1 MiB pieces: a features file of
/// a million items (gigabytes) is hashed without being held in memory.
pub fn sha256_file(path: &Path) -> Result<String, ReadError> {
    use sha2::Digest as _;
    let (mut file, _) = open_regular(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ReadError::Io { path: path.to_path_buf(), source }),
        };
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_within_its_limit_and_refuses_a_longer_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap(), b"12345");
        let err = read_bounded(&path, 4).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 4, .. }), "{err}");
        assert!(err.to_string().contains("f.bin"), "{err}");
    }

    #[test]
    fn hashes_a_regular_file_as_read_would_and_refuses_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(sha256_file(&path).unwrap(), crate::runtime::manifest::sha256_hex(&bytes));
        #[cfg(unix)]
        assert!(matches!(sha256_file(Path::new("/dev/zero")), Err(ReadError::NotRegular { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn links_to_devices_pipes_and_folders_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("items-00000.bin");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_bounded(&zero, u64::MAX).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular { kind: "a device", .. }), "{err}");
        assert!(err.to_string().contains("items-00000.bin"), "{err}");

        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = read_bounded(&fifo, 10).unwrap_err(); // would block forever if opened and read
        assert!(matches!(err, ReadError::NotRegular { kind: "a named pipe", .. }), "{err}");

        let err = read_bounded(dir.path(), 10).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular { kind: "a folder", .. }), "{err}");
    }

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
        assert_eq!(err.path(), temp_path(&path, 0));
        assert!(err.to_string().starts_with("cannot write "), "{err}");
    }

    /// Another writer with the same process id (a container on a shared folder) holds the first
    /// temporary name: this writer takes the next one and leaves the other's bytes alone.
    #[test]
    fn a_temporary_name_in_use_is_never_shared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.safetensors");
        std::fs::write(temp_path(&path, 0), "the other writer's half").unwrap();
        write_atomically(&path, b"mine").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"mine");
        assert_eq!(std::fs::read(temp_path(&path, 0)).unwrap(), b"the other writer's half");
        assert!(!temp_path(&path, 1).exists());
    }
}
