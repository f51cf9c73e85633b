//! The inference runtime shared by native code and the browser (ARCHITECTURE.md § Crates and layers):
//! a bundle loaded from bytes, sessions in, top-K recommendations with explanations out.
//!
//! ```text
//! manifest.json ─► Manifest (version, limits) ─► every file: size + sha256 ─► towers (GGUF),
//! item shards (int8 | f16) ─► session ids ─► sequence tower ─► user vector ─► cosine scan
//! (kernels) ─► streaming top-K minus the session ─► explanation per item
//! ```
//!
//! No filesystem, no candle — this crate's dependency tree has none, so Cargo guarantees it — and it
//! compiles for `wasm32-unknown-unknown` as is: the native tests run the exact code the browser runs. Bundle bytes are untrusted: every size and dimension is checked
//! before use ([`RuntimeError`] names the file or manifest field), nothing panics on bad input.
//! The format is specified in `docs/bundle.md`.
//!
//! - [`config`]: [`ModelConfig`], the model's shapes (written by training, read from the manifest).
//! - [`text_template`]: the rule that turns a product's fields into the text the encoder reads.
//! - [`manifest`]: `manifest.json` (shared with `export`).
//! - [`gguf`]: a bounded GGUF reader.
//! - [`json`]: JSON from untrusted files, refusing a key named twice in one object.
//! - [`tower`]: the sequence and item towers' forward passes.
//! - [`store`]: item vectors (int8 / f16) and the shard layout.
//! - [`engine`]: [`Runtime`], the public API (the CPU kernels).
//! - [`delta`]: delta shards, products appended to a published bundle (and [`delta::load`]).
//! - [`index`]: an IVF index over the rows for large catalogues: probe, exact rerank, streamed partitions.
//! - [`backend`]: [`Backend`], a runtime with its backend: WebGPU or the CPU chosen by measurement, the fallback between them.
//! - [`rows`]: item rows in scan form, as the GPU table and the benchmark read them.
//! - [`kernels`]: CPU kernels (scoring, top-K, products).
//! - [`rules`]: merchandising rules inside the scan (filters, exclusions, boosts, pins, diversity).
//! - [`popularity`]: `popularity.json`, computed at export, read for `popular` lists.
//! - [`scenario`]: the lists an element shows (`for-you`, `similar`, `popular`, `recently-viewed`).
//! - `gpu` (feature `gpu`): the WebGPU backend (WGSL kernels through wgpu).

pub mod backend;
pub mod config;
pub mod delta;
mod engine;
mod error;
pub mod gguf;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod index;
pub mod json;
pub mod kernels;
pub mod manifest;
pub mod popularity;
pub mod rows;
pub mod rules;
pub mod scenario;
pub mod store;
pub mod text_template;
pub mod tower;

pub use backend::{Answer, Backend, BackendChoice, BackendOptions, BackendPreference, ChoiceReason, RememberedChoice};
pub use config::{ItemView, ModelConfig};

pub use engine::{
    safe_link, verify_file, Explanation, FileSource, ItemMeta, ItemVectors, Recommendation, Recommendations, Runtime,
};
pub use error::RuntimeError;
pub use manifest::{EmbeddingDtype, Manifest, WeightsDtype};
pub use rules::{CompiledRules, Facts, RuleText, Rules};
pub use scenario::{Fallback, List, ListItem, Request, Scenario};
