//! The model (ARCHITECTURE.md § Model): items known only by frozen text (MiniLM, 384-d) and image
//! (EfficientNet-Lite0, 1280-d) features — no item-ID embeddings — turned into item vectors by the
//! [`ItemTower`]; a user's history of item vectors turned into a user vector by the
//! [`SequenceTower`]; cosine scores against every item. Plus the losses that train them and an
//! ID-based SASRec baseline sharing the sequence tower.
//!
//! Only definitions live here (no optimiser, no loop), so the trainer, the evaluator and the
//! runtime build the very same modules: parameters come from a `candle_nn::VarBuilder` — over a
//! `VarMap` in training ([`seeded_var_builder`] for a reproducible start), over safetensors when
//! loading — under the names each type documents. Dropout runs only in [`Mode::Train`], from a
//! seeded [`DropoutRng`]. Everything compiles for wasm32.
//!
//! Shape contracts (`n` items, `b` users, `t` ≤ `max_len` positions, `d` = `ModelConfig::dim`):
//! item tower `[n, 384] + [n, 1280] + masks [n]` → `[n, d]`; sequence tower `[b, t, d]` + lengths
//! (right-padded) → `[b, t, d]`; user vectors `[b, d]`; full ranking `[b, n_items]`.

mod adaptor;
mod attention;
mod batch;
mod dropout;
mod error;
mod init;
mod item_residuals;
mod item_tower;
mod layer_norm;
mod losses;
mod recommender;
mod sasrec_id;
mod sequence_tower;
mod transformer;

pub use adaptor::MoeAdaptor;
pub use attention::{AttentionMask, MultiHeadAttention};
pub use batch::{Histories, NextItemBatch};
pub use dropout::{Dropout, DropoutRng, Mode};
pub use error::ModelError;
pub use init::seeded_var_builder;
pub use item_residuals::{ItemResiduals, ITEM_RESIDUALS};
pub use item_tower::{ItemFeatures, ItemTower};
pub use layer_norm::LayerNorm;
pub use losses::{
    l2_normalize, next_item_loss, pretraining_loss, symmetric_info_nce, PretrainingLoss, PretrainingViews, Scoring,
};
pub use omakase_runtime::config::{ConfigError, ItemView, ModelConfig, PretrainWeights, TextAdaptor};
pub use recommender::{MultimodalRecommender, SequentialRecommender};
pub use sasrec_id::SasRecId;
pub use sequence_tower::{real_positions, user_vectors, SequenceTower};
pub use transformer::EncoderLayer;
