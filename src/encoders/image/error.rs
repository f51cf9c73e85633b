//! The one error type of the image encoder: every variant says what was being read or checked.

use std::path::PathBuf;

/// What can go wrong between a picture (or a weights file) and its feature vector.
#[derive(Debug, thiserror::Error)]
pub enum ImageEncoderError {
    /// A file could not be read (weights or an image).
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The weights are not a usable EfficientNet-Lite0 state dict (missing tensor, wrong shape, not
    /// safetensors). `tensor` names the state-dict entry when one is at fault.
    #[error("EfficientNet-Lite0 weights from {origin}: {tensor}: {source}")]
    Weights {
        origin: String,
        tensor: String,
        #[source]
        source: Box<candle_core::Error>,
    },

    /// The picture could not be decoded (corrupt or truncated file, unsupported format).
    #[error("cannot decode image {origin}: {reason}")]
    Decode { origin: String, reason: String },

    /// An RGB buffer that does not describe a picture (zero side, wrong length).
    #[error("invalid RGB image: {0}")]
    InvalidImage(String),

    /// A network input of the wrong rank or channel count.
    #[error("invalid network input: expected [n, 3, H, W], got {0:?}")]
    InvalidInput(Vec<usize>),

    /// A tensor operation failed while running the network.
    #[error("EfficientNet-Lite0 forward pass: {0}")]
    Forward(Box<candle_core::Error>),

    /// The network on the GPU failed (no device, device lost, validation); the caller finishes on the CPU.
    #[cfg(feature = "gpu")]
    #[error("image encoder on the GPU: {0}")]
    Gpu(#[from] crate::runtime::gpu::GpuError),
}

// Boxed: candle's error is large, and every `Result` of this module would carry its size.
impl From<candle_core::Error> for ImageEncoderError {
    fn from(error: candle_core::Error) -> Self {
        ImageEncoderError::Forward(Box::new(error))
    }
}

pub type Result<T> = std::result::Result<T, ImageEncoderError>;
