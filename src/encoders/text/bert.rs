//! The BERT encoder (embeddings + post-LayerNorm transformer layers) of all-MiniLM-L6-v2, as
//! Hugging Face `BertModel` computes it in inference mode (no dropout, pooler unused).
//!
//! Our own small module rather than candle-transformers' `models::bert`: candle-transformers builds
//! hundreds of models (minutes on two cores, and a heavier wasm), and its layers are fixed to
//! `candle_nn::Linear`, while ours go through [`Linear`] so the encoder can be quantized.

use std::collections::HashMap;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Module, Tensor};
use serde::Deserialize;

use super::linear::Linear;
use super::EncoderError;

/// The fields of a Hugging Face BERT `config.json` the encoder needs; the default is
/// all-MiniLM-L6-v2's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// Only `"gelu"` (the exact erf GELU) is supported: the tanh approximation is off by ~3e-4.
    pub hidden_act: String,
}

impl Default for BertConfig {
    fn default() -> Self {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
        }
    }
}

impl BertConfig {
    fn check(&self) -> Result<(), EncoderError> {
        let bad = |reason: String| Err(EncoderError::Config { file: "config.json".into(), reason });
        if self.hidden_act != "gelu" {
            return bad(format!("hidden_act `{}` is not supported (only \"gelu\")", self.hidden_act));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }
}

/// BERT without its pooler: token ids → contextual token states.
#[derive(Debug, Clone)]
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    config: BertConfig,
}

impl Bert {
    /// Builds the model from Hugging Face tensor names without a `bert.` prefix
    /// (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`, ...).
    pub fn new(weights: &Weights, config: BertConfig) -> Result<Self, EncoderError> {
        config.check()?;
        let embeddings = Embeddings::new(weights, &config)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::new(weights, &format!("encoder.layer.{i}"), &config))
            .collect::<Result<_, _>>()?;
        Ok(Bert { embeddings, layers, config })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// `ids` [b, L] u32 and `mask` [b, L] f32 (1.0 real token, 0.0 padding) → states [b, L, H].
    /// Padding is masked out of attention, so the real tokens' states do not depend on it.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        // [b, 1, 1, L]: 0 where attended, the most negative f32 where padded (as transformers).
        let bias = ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?.unsqueeze(1)?.unsqueeze(1)?;
        let mut x = self.embeddings.forward(ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        Ok(x)
    }

    /// The same model with every Linear layer quantized to `dtype`; embeddings and LayerNorms stay f32.
    pub fn quantized(&self, dtype: GgmlDType) -> candle_core::Result<Self> {
        let layers = self.layers.iter().map(|l| l.quantized(dtype)).collect::<candle_core::Result<_>>()?;
        Ok(Bert { embeddings: self.embeddings.clone(), layers, config: self.config.clone() })
    }
}

/// Word + token type (always 0) + absolute position embeddings, then LayerNorm.
#[derive(Debug, Clone)]
struct Embeddings {
    word: Tensor,        // [vocab, H]
    position: Tensor,    // [max_positions, H]
    token_type0: Tensor, // [H]
    norm: candle_nn::LayerNorm,
}

impl Embeddings {
    fn new(w: &Weights, c: &BertConfig) -> Result<Self, EncoderError> {
        let h = c.hidden_size;
        let token_types = w.get("embeddings.token_type_embeddings.weight", &[c.type_vocab_size, h])?;
        Ok(Embeddings {
            word: w.get("embeddings.word_embeddings.weight", &[c.vocab_size, h])?,
            position: w.get("embeddings.position_embeddings.weight", &[c.max_position_embeddings, h])?,
            token_type0: token_types.get(0).map_err(EncoderError::candle("token type embedding"))?,
            norm: w.layer_norm("embeddings.LayerNorm", h, c.layer_norm_eps)?,
        })
    }

    /// `ids` [b, L] u32 → [b, L, H]. Ids beyond the vocabulary give an error, not a panic.
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, len) = ids.dims2()?;
        let words = self.word.embedding(&ids.flatten_all()?)?.reshape((b, len, ()))?;
        let positions = self.position.narrow(0, 0, len)?;
        let x = words.broadcast_add(&self.token_type0)?.broadcast_add(&positions)?;
        self.norm.forward(&x)
    }
}

/// One transformer layer: self-attention and feed-forward, each with residual + LayerNorm after.
#[derive(Debug, Clone)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: candle_nn::LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: candle_nn::LayerNorm,
    heads: usize,
}

impl Layer {
    fn new(w: &Weights, prefix: &str, c: &BertConfig) -> Result<Self, EncoderError> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Ok(Layer {
            query: w.linear(&format!("{prefix}.attention.self.query"), h, h)?,
            key: w.linear(&format!("{prefix}.attention.self.key"), h, h)?,
            value: w.linear(&format!("{prefix}.attention.self.value"), h, h)?,
            attention_out: w.linear(&format!("{prefix}.attention.output.dense"), h, h)?,
            attention_norm: w.layer_norm(
                &format!("{prefix}.attention.output.LayerNorm"),
                h,
                c.layer_norm_eps,
            )?,
            intermediate: w.linear(&format!("{prefix}.intermediate.dense"), h, i)?,
            output: w.linear(&format!("{prefix}.output.dense"), i, h)?,
            output_norm: w.layer_norm(&format!("{prefix}.output.LayerNorm"), h, c.layer_norm_eps)?,
            heads: c.num_attention_heads,
        })
    }

    /// `x` [b, L, H], `bias` [b, 1, 1, L] additive attention mask → [b, L, H].
    fn forward(&self, x: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
        let attended = self.attention_out.forward(&self.self_attention(x, bias)?)?;
        let x = self.attention_norm.forward(&(attended + x)?)?;
        let hidden = self.intermediate.forward(&x)?.gelu_erf()?;
        let out = self.output.forward(&hidden)?;
        self.output_norm.forward(&(out + x)?)
    }

    /// Scaled dot-product attention over `heads` heads: [b, L, H] → [b, L, H].
    fn self_attention(&self, x: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
        let (b, len, hidden) = x.dims3()?;
        let head_dim = hidden / self.heads;
        let split = |t: Tensor| t.reshape((b, len, self.heads, head_dim))?.transpose(1, 2)?.contiguous();
        let q = split(self.query.forward(x)?)?; // [b, heads, L, d]
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (head_dim as f64).sqrt()))?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((b, len, hidden))
    }

    fn quantized(&self, dtype: GgmlDType) -> candle_core::Result<Self> {
        Ok(Layer {
            query: self.query.quantized(dtype)?,
            key: self.key.quantized(dtype)?,
            value: self.value.quantized(dtype)?,
            attention_out: self.attention_out.quantized(dtype)?,
            attention_norm: self.attention_norm.clone(),
            intermediate: self.intermediate.quantized(dtype)?,
            output: self.output.quantized(dtype)?,
            output_norm: self.output_norm.clone(),
            heads: self.heads,
        })
    }
}

/// Named tensors from a safetensors file, handed out as f32 with their shapes checked.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    /// Reads a safetensors buffer onto the CPU.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, EncoderError> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(EncoderError::candle("reading model.safetensors"))?;
        Ok(Weights { tensors })
    }

    fn get(&self, name: &str, dims: &[usize]) -> Result<Tensor, EncoderError> {
        let tensor =
            self.tensors.get(name).ok_or_else(|| EncoderError::MissingTensor { name: name.into() })?;
        if tensor.dims() != dims {
            return Err(EncoderError::TensorShape {
                name: name.into(),
                expected: dims.to_vec(),
                actual: tensor.dims().to_vec(),
            });
        }
        tensor.to_dtype(DType::F32).map_err(EncoderError::candle("converting weights to f32"))
    }

    fn linear(&self, prefix: &str, inputs: usize, outputs: usize) -> Result<Linear, EncoderError> {
        let weight = self.get(&format!("{prefix}.weight"), &[outputs, inputs])?;
        let bias = self.get(&format!("{prefix}.bias"), &[outputs])?;
        Ok(Linear::new(weight, bias))
    }

    fn layer_norm(&self, prefix: &str, size: usize, eps: f64) -> Result<candle_nn::LayerNorm, EncoderError> {
        let weight = self.get(&format!("{prefix}.weight"), &[size])?;
        let bias = self.get(&format!("{prefix}.bias"), &[size])?;
        Ok(candle_nn::LayerNorm::new(weight, bias, eps))
    }
}
