//! The runtime's one error type. Every variant names the bundle file (or manifest field) at fault,
//! so a shop owner reading a browser console — or `omakase recommend` exiting 2 — knows what to fix.

/// Everything that can go wrong loading a bundle or running it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// `manifest.json` is not valid JSON, or a field has the wrong type.
    #[error("manifest.json: {reason}")]
    ManifestJson { reason: String },
    /// The manifest was written by another format (or version) than this build reads.
    #[error("manifest.json: field `format_version` is {found}, this runtime reads version {supported} (re-export the bundle with this omakase)")]
    UnsupportedVersion { found: u64, supported: u64 },
    /// A manifest field holds a value no bundle can have (absurd dimension, inconsistent count…).
    #[error("manifest.json: field `{field}`: {reason}")]
    ManifestField { field: String, reason: String },
    /// A file the manifest lists was not given to the loader.
    #[error("{file}: missing (listed in manifest.json but not supplied)")]
    MissingFile { file: String },
    /// A file's length differs from the manifest's `bytes`.
    #[error("{file}: {found} bytes, manifest.json says {expected} (truncated or wrong file)")]
    FileSize { file: String, expected: u64, found: u64 },
    /// A file's sha256 differs from the manifest's.
    #[error("{file}: sha256 {found} does not match manifest.json's {expected} (corrupted download?)")]
    Checksum { file: String, expected: String, found: String },
    /// A file's content is malformed (GGUF header, tensor table, item metadata…).
    #[error("{file}: {reason}")]
    Format { file: String, reason: String },
    /// A model tensor is missing or has the wrong shape or type.
    #[error("{file}: tensor `{tensor}`: {reason}")]
    Tensor { file: String, tensor: String, reason: String },
    /// The session has no item the bundle knows (empty, or every id unknown).
    #[error("empty session: no known item to recommend from{}", unknown_suffix(.unknown))]
    EmptySession { unknown: Vec<String> },
    /// A caller-supplied argument is unusable (vector of the wrong width, duplicate id, k = 0…).
    #[error("{what}: {reason}")]
    BadArgument { what: String, reason: String },
    /// A merchandising rule or scenario is unusable (malformed, or on a field the bundle lacks):
    /// `attribute` is the element attribute / CLI flag that carried it (`filter`, `boost`, `pin`,
    /// `exclude`, `diversity`, `facts`, `scenario`).
    #[error("{attribute}: {reason}")]
    Rule { attribute: String, reason: String },
    /// The bundle has no explain vectors / no item tower but the call needs them.
    #[error("{what} is not in this bundle ({reason})")]
    NotInBundle { what: String, reason: String },
}

fn unknown_suffix(unknown: &[String]) -> String {
    if unknown.is_empty() {
        String::new()
    } else {
        format!(" (unknown ids: {})", unknown.join(", "))
    }
}

impl RuntimeError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::ManifestField { field: field.into(), reason: reason.into() }
    }

    pub fn format(file: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::Format { file: file.into(), reason: reason.into() }
    }

    pub fn tensor(file: &str, tensor: &str, reason: impl Into<String>) -> Self {
        RuntimeError::Tensor { file: file.into(), tensor: tensor.into(), reason: reason.into() }
    }

    pub fn rule(attribute: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::Rule { attribute: attribute.into(), reason: reason.into() }
    }

    pub fn argument(what: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::BadArgument { what: what.into(), reason: reason.into() }
    }
}
