//! Frozen pretrained encoders: product words → text vector (MiniLM), product picture → image vector
//! (EfficientNet-Lite0). They compile for wasm32 so the browser can encode brand-new products.

pub mod bundle;
pub mod cache;
pub mod features;
pub mod gguf;
pub mod image;
mod kernels;
#[cfg(feature = "native")]
pub mod merge;
#[cfg(feature = "native")]
pub mod pipeline;
pub mod shard;
pub mod text;
