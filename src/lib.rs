//! Omakase: a multimodal sequential recommender that runs in the shopper's browser.
//!
//! The modules follow the path of the data (DESIGN.md §1):
//! `data` (load, validate, split) → `weights` (pretrained encoder weights) → encoders → model/train
//! → eval → export → runtime → wasm.
//!
//! Everything here compiles for `wasm32-unknown-unknown`; native-only parts (image decoding,
//! progress bars, the CLI) sit behind the default `native` feature.

pub mod data;
pub mod encoders;
pub mod eval;
#[cfg(feature = "native")]
pub mod export;
pub mod model;
pub mod runtime;
#[cfg(feature = "native")]
pub mod train;
pub mod weights;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
