//! The sequence tower: a user's history of item vectors → one contextual vector per position; the
//! vector at the last real position is the user vector (ARCHITECTURE.md § Model).
//!
//! **Padding: right-padded, left-aligned** (as RecBole): row `r` holds its items at positions
//! `0..lengths[r]`, oldest first, and anything after them is ignored. Learned positions count
//! from the oldest item of the (at most `max_len`) window. Attention is causal, so the output at
//! position `t` depends only on items `0..=t`: one pass trains the next-item prediction at every
//! position, and in the browser appending an item never changes the earlier outputs. Padding sits
//! after the real items and is also masked as a key, so it cannot change any real output.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use super::attention::AttentionMask;
use super::dropout::{Dropout, Mode};
use super::error::{expect_dims, ModelError};
use super::layer_norm::LayerNorm;
use super::transformer::{encoder_stack, EncoderLayer};
use omakase_runtime::config::ModelConfig;

/// Parameters under its prefix: `position_embedding` (`[max_len, d]`), `layers.{i}` (encoder
/// layers), `final_norm`.
#[derive(Debug, Clone)]
pub struct SequenceTower {
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_norm: LayerNorm,
    dropout: Dropout,
    dim: usize,
    max_len: usize,
}

impl SequenceTower {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self, ModelError> {
        config.validate()?;
        let positions_init = Init::Randn { mean: 0.0, stdev: 0.02 };
        Ok(SequenceTower {
            position_embedding: vb.get_with_hints(
                (config.max_len, config.dim),
                "position_embedding",
                positions_init,
            )?,
            layers: encoder_stack(config, config.num_layers, vb.pp("layers"))?,
            final_norm: LayerNorm::new(config.dim, config.layer_norm_eps, vb.pp("final_norm"))?,
            dropout: Dropout::new(config.dropout),
            dim: config.dim,
            max_len: config.max_len,
        })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// `items: [b, t, d]` right-padded item vectors, `lengths[r]` in `1..=t` real items per row
    /// (`t ≤ max_len`) → `[b, t, d]` contextual vectors (values at padded positions are
    /// meaningless).
    pub fn forward(&self, items: &Tensor, lengths: &[usize], mode: Mode) -> Result<Tensor, ModelError> {
        expect_dims("history item vectors", items, &[Some(lengths.len()), None, Some(self.dim)])?;
        let t = items.dim(1)?;
        if t > self.max_len {
            return Err(ModelError::TooLong { what: "history item vectors", len: t, max_len: self.max_len });
        }
        check_lengths(lengths, t)?;
        let positions = self.position_embedding.narrow(0, 0, t)?;
        let mut states = self.dropout.forward(&items.broadcast_add(&positions)?, mode)?;
        let mask = AttentionMask::causal_padded(lengths, t, items.device())?;
        for layer in &self.layers {
            states = layer.forward(&states, &mask, mode)?;
        }
        Ok(self.final_norm.forward(&states)?)
    }
}

/// The vector at each row's last real position: `states: [b, t, d]`, `lengths: [b]` → `[b, d]`.
pub fn user_vectors(states: &Tensor, lengths: &[usize]) -> Result<Tensor, ModelError> {
    expect_dims("sequence states", states, &[Some(lengths.len()), None, None])?;
    let (b, t, d) = states.dims3()?;
    check_lengths(lengths, t)?;
    let last: Vec<u32> = lengths.iter().enumerate().map(|(r, len)| (r * t + len - 1) as u32).collect();
    let last = Tensor::new(last.as_slice(), states.device())?;
    Ok(states.reshape((b * t, d))?.index_select(&last, 0)?)
}

/// The states at every real position, flattened row by row: `[b, t, d]` → `[Σ lengths, d]`.
pub fn real_positions(states: &Tensor, lengths: &[usize]) -> Result<Tensor, ModelError> {
    let (b, t, d) = states.dims3()?;
    check_lengths(lengths, t)?;
    let rows = Tensor::new(real_position_indices(lengths, t).as_slice(), states.device())?;
    Ok(states.reshape((b * t, d))?.index_select(&rows, 0)?)
}

/// Flat indices `r * t + p` of the real positions `p < lengths[r]`.
pub fn real_position_indices(lengths: &[usize], t: usize) -> Vec<u32> {
    lengths.iter().enumerate().flat_map(|(r, &len)| (0..len).map(move |p| (r * t + p) as u32)).collect()
}

fn check_lengths(lengths: &[usize], t: usize) -> Result<(), ModelError> {
    match lengths.iter().position(|len| !(1..=t).contains(len)) {
        Some(row) => Err(ModelError::BadLength { what: "history lengths", row, len: lengths[row], max: t }),
        None => Ok(()),
    }
}
