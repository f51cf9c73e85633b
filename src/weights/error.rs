//! The one error type of the weights area. Every variant raised while reading a file names the byte
//! offset it refers to, so a broken or hostile checkpoint can be inspected with `pickletools.dis`.

use std::path::PathBuf;

/// What can go wrong when reading or converting pretrained weights.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The file could not be read or written (the I/O error is the `source`).
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Context: which file an inner error comes from (the inner error is the `source`).
    #[error("in {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<WeightsError>,
    },

    // ---- the restricted pickle machine ----
    /// The data ends in the middle of something.
    #[error("truncated: the data ends at byte {end} inside {what} that starts at byte {offset}")]
    Truncated { what: &'static str, offset: usize, end: usize },

    /// An opcode outside the small set a legacy `torch.save` emits.
    #[error("unsupported pickle opcode 0x{opcode:02x} at byte {offset}")]
    UnsupportedOpcode { opcode: u8, offset: usize },

    /// `GLOBAL` naming anything but the whitelisted tensor-rebuilding classes: the reason for a
    /// restricted reader (a plain unpickler would import and run it).
    #[error(
        "refused pickle GLOBAL `{module} {name}` at byte {offset}: only tensor rebuilds and storages are accepted"
    )]
    ForbiddenGlobal { module: String, name: String, offset: usize },

    /// `REDUCE` (a call) on something that is not a whitelisted callable.
    #[error("refused pickle REDUCE at byte {offset}: {callable} is not callable here")]
    NotCallable { callable: String, offset: usize },

    /// Nesting deeper than any checkpoint needs (guards the stack when dropping the values).
    #[error("pickle nesting deeper than {limit} at byte {offset}")]
    NestingTooDeep { offset: usize, limit: usize },

    /// Anything else the pickle machine finds inconsistent (stack underflow, wrong argument types...).
    #[error("malformed pickle at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: String },

    // ---- the legacy (non-zip) PyTorch container ----
    /// A zip archive: the current `torch.save` format, which `candle_core::pickle` reads.
    #[error("this is a zip-format PyTorch checkpoint, not the legacy format (read it with candle_core::pickle)")]
    ZipFormat,

    /// The first pickle is not the legacy magic number; `found` says what is there instead.
    #[error("not a legacy PyTorch checkpoint: {found}")]
    BadMagic { found: String },

    /// The second pickle is not protocol version 1001.
    #[error("unsupported legacy PyTorch protocol version {found} (expected 1001)")]
    UnsupportedProtocolVersion { found: String },

    /// The storages were written big-endian.
    #[error("the checkpoint was saved on a big-endian machine; only little-endian storages are supported")]
    BigEndian,

    /// The saved object is not a flat mapping of names to tensors.
    #[error("not a flat state dict: {reason}")]
    NotAStateDict { reason: String },

    /// The key list names a storage no tensor declared (its element type is unknown).
    #[error("storage `{key}` listed at byte {offset} is not referenced by any tensor")]
    UnknownStorage { key: String, offset: usize },

    /// A storage listed twice in the key list.
    #[error("storage `{key}` is listed twice")]
    DuplicateStorage { key: String },

    /// A storage a tensor uses has no data in the file.
    #[error("storage `{key}` has no data in the file")]
    MissingStorageData { key: String },

    /// The element count in front of a storage's bytes differs from the one the tensors declared.
    #[error("storage `{key}` at byte {offset}: {found} elements in the file, {declared} declared")]
    StorageSizeMismatch { key: String, offset: usize, declared: u64, found: u64 },

    /// A storage claims more bytes than the file holds.
    #[error("storage `{key}` at byte {offset} claims {claimed} bytes, only {available} remain")]
    StorageTruncated { key: String, offset: usize, claimed: u128, available: usize },

    /// Bytes after the last storage.
    #[error("{count} unexpected bytes after the last storage, at byte {offset}")]
    TrailingBytes { offset: usize, count: usize },

    /// A tensor's shape, strides and offset reach outside its storage.
    #[error("tensor `{name}` (shape {shape:?}, strides {strides:?}, offset {offset}) reaches outside its storage of {storage_numel} elements")]
    TensorOutOfBounds { name: String, shape: Vec<u64>, strides: Vec<u64>, offset: u64, storage_numel: u64 },

    /// A tensor whose dimensions multiply past what can be counted (even when one of them is 0).
    #[error("tensor `{name}` has shape {shape:?}: its element count overflows")]
    TensorTooLarge { name: String, shape: Vec<u64> },

    /// Tensors overlapping their storages so much that the output would dwarf the input.
    #[error("the converted tensors would take {bytes} bytes, more than the limit of {limit} (4 x the storage bytes)")]
    OutputTooLarge { bytes: u128, limit: u128 },

    /// The safetensors crate refused the tensors.
    #[error("writing safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
}

impl WeightsError {
    /// The innermost error, past the [`WeightsError::File`] context layers.
    pub fn innermost(&self) -> &WeightsError {
        match self {
            WeightsError::File { source, .. } => source.innermost(),
            other => other,
        }
    }

    pub(crate) fn malformed(offset: usize, reason: impl Into<String>) -> Self {
        WeightsError::Malformed { offset, reason: reason.into() }
    }
}
