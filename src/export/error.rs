//! The export area's one error type, naming the file at fault.

use std::path::{Path, PathBuf};

use crate::encoders::features::FeaturesError;
use crate::model::ModelError;
use crate::train::TrainError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Bad input (exit 2): a file that is missing, of another catalogue, of an unexportable model…
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("tensor `{name}`: {reason}")]
    Tensor { name: String, reason: String },
    /// The bundle built fails the runtime's own manifest checks (a bug, or limits exceeded).
    #[error("the bundle would be invalid: {reason}")]
    Invalid { reason: String },
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("features: {0}")]
    Features(#[from] FeaturesError),
    #[error("model: {0}")]
    Model(#[from] ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl ExportError {
    pub fn input(path: &Path, reason: impl Into<String>) -> Self {
        ExportError::Input { path: path.to_owned(), reason: reason.into() }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ExportError::Io { path: path.to_owned(), source }
    }

    /// Whether the user can fix this by changing the input (the CLI exits 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ExportError::Input { .. } | ExportError::Features(_) | ExportError::Train(TrainError::Run { .. } | TrainError::Io { .. } | TrainError::Config { .. } | TrainError::Features(_)))
    }
}
