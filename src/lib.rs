//! Omakase: a multimodal sequential recommender that runs in the shopper's browser.
//!
//! The modules follow the path of the data (ARCHITECTURE.md):
//! `data` (load, validate, split) → `weights` (pretrained encoder weights) → encoders → model/train
//! → eval → export → runtime (`crates/runtime`) → the browser facade (`crates/wasm`).
//!
//! The encoders also compile for `wasm32-unknown-unknown` (the browser's encoder module); native-only
//! parts (the CLI, training, progress bars) sit behind the default `native` feature.

pub mod data;
pub mod encoders;
pub mod eval;
#[cfg(feature = "native")]
pub mod export;
/// Writing a file atomically (temporary file, sync, rename): the one helper every writer uses.
#[cfg(feature = "native")]
pub mod fs;
pub mod model;
/// The inference runtime, a crate of its own (`crates/runtime`, no candle); re-exported so the
/// training side names it as part of the data's path.
pub use omakase_runtime as runtime;
#[cfg(feature = "native")]
pub mod train;
pub mod weights;
