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
    /// Boxed (as `Features`): large errors, and every export function returns this type.
    #[error(transparent)]
    Train(Box<TrainError>),
    #[error("features: {0}")]
    Features(Box<FeaturesError>),
    #[error("model: {0}")]
    Model(#[from] ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl From<TrainError> for ExportError {
    fn from(e: TrainError) -> Self {
        ExportError::Train(Box::new(e))
    }
}

impl From<FeaturesError> for ExportError {
    fn from(e: FeaturesError) -> Self {
        ExportError::Features(Box::new(e))
    }
}

impl ExportError {
    pub fn input(path: &Path, reason: impl Into<String>) -> Self {
        ExportError::Input { path: path.to_owned(), reason: reason.into() }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ExportError::Io { path: path.to_owned(), source }
    }

    /// A refused or failed [`crate::fs::read_bounded`]: a device, pipe or oversized file is bad
    /// input; an I/O failure stays one.
    pub fn read(error: crate::fs::ReadError) -> Self {
        use crate::fs::ReadError;
        match error {
            ReadError::Io { path, source } => ExportError::Io { path, source },
            ReadError::NotRegular { path, kind } => {
                ExportError::Input { path, reason: format!("not a regular file ({kind})") }
            }
            ReadError::TooLarge { path, limit } => {
                ExportError::Input { path, reason: format!("more than {limit} bytes") }
            }
        }
    }

    /// Whether the user can fix this by changing the input (the CLI exits 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ExportError::Input { .. } | ExportError::Features(_) => true,
            ExportError::Train(e) => matches!(
                **e,
                TrainError::Run { .. } | TrainError::Io { .. } | TrainError::Config { .. } | TrainError::Features(_)
            ),
            _ => false,
        }
    }
}
