//! The one transformer encoder layer both towers stack.
//!
//! Pre-LN (`x + Attn(LN(x))`, then `x + FFN(LN(x))`), chosen without measuring: pre-LN trains
//! stably without a learning-rate warm-up (Xiong et al., 2020, "On Layer Normalization in the
//! Transformer Architecture"), which matters for small models trained for minutes with AdamW at a
//! fixed rate, and SASRec itself normalises before attention. A stack of pre-LN layers leaves the
//! residual stream un-normalised, so each tower ends with its own final LayerNorm.

use candle_core::{Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

use super::attention::{AttentionMask, MultiHeadAttention};
use super::dropout::{Dropout, Mode};
use super::layer_norm::LayerNorm;
use omakase_runtime::config::ModelConfig;

/// Pre-LN encoder layer. Parameters under its prefix: `attention_norm`, `attention.{query,key,
/// value,output}`, `ffn_norm`, `ffn.up` (`d → ffn_dim`), `ffn.down` (`ffn_dim → d`).
/// Shape contract: `[b, t, d]` → `[b, t, d]`.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    attention_norm: LayerNorm,
    attention: MultiHeadAttention,
    ffn_norm: LayerNorm,
    ffn_up: Linear,
    ffn_down: Linear,
    dropout: Dropout,
}

impl EncoderLayer {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (d, eps) = (config.dim, config.layer_norm_eps);
        Ok(EncoderLayer {
            attention_norm: LayerNorm::new(d, eps, vb.pp("attention_norm"))?,
            attention: MultiHeadAttention::new(d, config.num_heads, config.attention_dropout, vb.pp("attention"))?,
            ffn_norm: LayerNorm::new(d, eps, vb.pp("ffn_norm"))?,
            ffn_up: candle_nn::linear(d, config.ffn_dim, vb.pp("ffn").pp("up"))?,
            ffn_down: candle_nn::linear(config.ffn_dim, d, vb.pp("ffn").pp("down"))?,
            dropout: Dropout::new(config.dropout),
        })
    }

    pub fn forward(&self, xs: &Tensor, mask: &AttentionMask, mode: Mode) -> Result<Tensor> {
        let attended = self.attention.forward(&self.attention_norm.forward(xs)?, mask, mode)?;
        let xs = (xs + self.dropout.forward(&attended, mode)?)?;
        // GELU with erf, as BERT: exact, and the runtime already has it for the text encoder.
        let hidden = self.ffn_up.forward(&self.ffn_norm.forward(&xs)?)?.gelu_erf()?;
        let fed = self.ffn_down.forward(&hidden)?;
        xs + self.dropout.forward(&fed, mode)?
    }
}

/// `count` layers named `{prefix}.{i}`.
pub fn encoder_stack(config: &ModelConfig, count: usize, vb: VarBuilder) -> Result<Vec<EncoderLayer>> {
    (0..count).map(|i| EncoderLayer::new(config, vb.pp(i))).collect()
}
