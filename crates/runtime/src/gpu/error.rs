//! Errors of the WebGPU backend. Every one means "finish on the CPU backend"; the message says why.

/// What went wrong on the GPU side.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// `request_adapter` gave no adapter (no WebGPU in this browser, no Vulkan driver natively).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter lacks a limit every WebGPU implementation has (a downlevel adapter).
    #[error("GPU adapter {adapter} is below WebGPU's default limits")]
    BelowWebGpuLimits { adapter: String },
    #[error("GPU device request failed: {0}")]
    RequestDevice(String),
    /// The device was lost (driver reset, tab in the background for long, `device.destroy()`).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// wgpu reported a validation or out-of-memory error for an operation.
    #[error("GPU {operation} failed: {message}")]
    Operation { operation: &'static str, message: String },
    /// Mapping a result buffer back to the CPU failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// Arguments that do not fit together (a programming error of the caller, reported, not panicked).
    #[error("GPU {what}: {message}")]
    Shape { what: &'static str, message: String },
    /// A tower file of the bundle is malformed (the CPU loader reports the same).
    #[error(transparent)]
    Bundle(#[from] crate::RuntimeError),
    /// A request this backend does not serve (e.g. k above [`super::MAX_K`]).
    #[error("GPU backend does not support {0}")]
    Unsupported(String),
}

impl GpuError {
    pub(crate) fn shape(what: &'static str, message: impl Into<String>) -> Self {
        GpuError::Shape { what, message: message.into() }
    }
}
