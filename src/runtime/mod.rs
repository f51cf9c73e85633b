//! The inference runtime shared by native code and the browser (DESIGN §1, §7): a bundle loaded from
//! bytes, sessions in, top-K recommendations with explanations out.
//!
//! ```text
//! manifest.json ─► Manifest (version, limits) ─► every file: size + sha256 ─► towers (GGUF),
//! item shards (int8 | f16) ─► session ids ─► sequence tower ─► user vector ─► cosine scan
//! (kernels) ─► streaming top-K minus the session ─► explanation per item
//! ```
//!
//! No filesystem, no candle: it compiles for `wasm32-unknown-unknown` as is, and the native tests run
//! the exact code the browser runs. Bundle bytes are untrusted: every size and dimension is checked
//! before use ([`RuntimeError`] names the file or manifest field), nothing panics on bad input.
//! The format is specified in `docs/bundle.md`.
//!
//! - [`manifest`]: `manifest.json` (shared with `export`).
//! - [`gguf`]: a bounded GGUF reader.
//! - [`tower`]: the sequence and item towers' forward passes.
//! - [`store`]: item vectors (int8 / f16) and the shard layout.
//! - [`engine`]: [`Runtime`], the public API.
//! - [`kernels`]: CPU kernels (scoring, top-K, products).
//! - `gpu` (feature `gpu`): the WebGPU backend (WGSL kernels through wgpu).

mod engine;
mod error;
pub mod gguf;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod kernels;
pub mod manifest;
pub mod store;
pub mod tower;

pub use engine::{
    verify_file, Explanation, FileSource, ItemMeta, ItemVectors, Recommendation, Recommendations, Runtime,
};
pub use error::RuntimeError;
pub use manifest::{EmbeddingDtype, Manifest, WeightsDtype};
