//! Helpers shared by the integration tests: where the shared datasets, goldens and weights live.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` beside the checkout (CI lays it there), or `$OMAKASE_SHARED`.
/// Panics with a clear message when absent: these tests check real data and must not pass vacuously.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("OMAKASE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("datasets").is_dir(),
        "shared data not found at {} (set OMAKASE_SHARED to the folder holding datasets/ and golden/)",
        dir.display()
    );
    dir
}

/// A dataset under `shared/datasets/`.
pub fn dataset(name: &str) -> PathBuf {
    shared_dir().join("datasets").join(name)
}

/// The folder of pretrained weights made by `scripts/fetch-models.sh` (`models/`, or `$OMAKASE_MODELS`).
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("OMAKASE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    assert!(dir.is_dir(), "weights not found at {}: run scripts/fetch-models.sh", dir.display());
    dir
}
