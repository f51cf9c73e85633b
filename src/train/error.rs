//! The training area's one error type: each variant names the file, field or stage it is about.

use std::path::{Path, PathBuf};

use crate::encoders::features::FeaturesError;
use crate::eval::EvalError;
use crate::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("config {origin}: {reason}")]
    Config { origin: String, reason: String },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("dataset {dir} is not usable: {reason}")]
    Data { dir: String, reason: String },

    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },

    #[error("run {}: {reason}", path.display())]
    Run { path: PathBuf, reason: String },

    #[error("--device {asked}: {reason}")]
    Device { asked: String, reason: String },

    #[error("{stage}: {reason}")]
    Stage { stage: &'static str, reason: String },

    #[error("session ended after {epochs} epoch(s) as asked; the run resumes from its checkpoint")]
    Interrupted { epochs: usize },

    #[error("features: {0}")]
    Features(#[from] FeaturesError),

    #[error("model: {0}")]
    Model(#[from] ModelError),

    #[error("validation: {0}")]
    Eval(#[from] EvalError),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io { path: path.to_owned(), source }
    }

    /// A refused or failed [`crate::fs::read_bounded`] (device, pipe, oversized file, I/O error).
    pub fn read(error: crate::fs::ReadError) -> Self {
        let (path, source) = error.into_parts();
        TrainError::Io { path, source }
    }

    pub fn checkpoint(path: &Path, reason: impl Into<String>) -> Self {
        TrainError::Checkpoint { path: path.to_owned(), reason: reason.into() }
    }

    pub fn run(path: &Path, reason: impl Into<String>) -> Self {
        TrainError::Run { path: path.to_owned(), reason: reason.into() }
    }
}
