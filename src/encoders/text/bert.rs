//! The BERT encoder (embeddings + post-LayerNorm transformer layers) of all-MiniLM-L6-v2, as
//! Hugging Face `BertModel` computes it in inference mode (no dropout, pooler unused).
//!
//! Our own small module rather than candle-transformers' `models::bert`: candle-transformers builds
//! hundreds of models (minutes on two cores, and a heavier wasm), and its layers are fixed to
//! `candle_nn::Linear`, while ours go through [`Linear`] so the encoder can be quantized.
//!
//! It runs on f32 slices through the shared CPU kernels (`encoders::kernels` says why), with the texts
//! of a batch packed one after the other, no padding: every layer but attention works token by token,
//! and attention keeps to each text's own rows ([`super::attention`]). Query, key and value are one
//! product, each Linear adds its bias inside the product, and residual + LayerNorm is one pass.

use std::collections::HashMap;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::Deserialize;

use super::attention::{attention, Span};
use super::linear::Linear;
use super::EncoderError;
use crate::encoders::kernels::activation::gelu_erf_in_place;
use crate::encoders::kernels::rows::add_layer_norm;

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
    pub(super) embeddings: Embeddings,
    pub(super) layers: Vec<Layer>,
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
        let (b, len) = ids.dims2()?;
        if mask.dims() != [b, len] {
            candle_core::bail!("attention mask of shape {:?} for ids of shape [{b}, {len}]", mask.dims());
        }
        let ids = ids.flatten_all()?.to_vec1::<u32>()?;
        // 0 where attended, the most negative f32 where padded (as transformers).
        let key_bias: Vec<f32> = mask.flatten_all()?.to_vec1::<f32>()?.iter().map(|&m| (1.0 - m) * f32::MIN).collect();
        let spans: Vec<Span> = (0..b).map(|row| Span { start: row * len, len }).collect();
        let states = self.run(&ids, &spans, &key_bias)?;
        Tensor::from_vec(states, (b, len, self.config.hidden_size), &Device::Cpu)
    }

    /// Texts of any lengths, packed with no padding: `texts` (each a list of ids) → the states of all
    /// their tokens, text after text, [Σ len, H], and each text's rows.
    pub fn forward_packed(&self, texts: &[&[u32]]) -> candle_core::Result<(Vec<f32>, Vec<Span>)> {
        let mut spans = Vec::with_capacity(texts.len());
        let mut start = 0;
        for text in texts {
            spans.push(Span { start, len: text.len() });
            start += text.len();
        }
        let ids: Vec<u32> = texts.concat();
        Ok((self.run(&ids, &spans, &[])?, spans))
    }

    /// One text's token embeddings after the embedding LayerNorm, `[tokens, H]`: the input of the
    /// layers (what a GPU copy of them reads).
    pub fn embed(&self, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
        self.embeddings.forward(ids, &[Span { start: 0, len: ids.len() }])
    }

    /// `ids` [tokens] grouped into `spans` (a token attends within its span), `key_bias` [tokens] or
    /// empty → states [tokens, H].
    fn run(&self, ids: &[u32], spans: &[Span], key_bias: &[f32]) -> candle_core::Result<Vec<f32>> {
        let mut x = self.embeddings.forward(ids, spans)?;
        let mut scratch = Scratch::default();
        for layer in &self.layers {
            layer.forward(&mut x, spans, key_bias, &mut scratch)?;
        }
        Ok(x)
    }

    /// The same model with every Linear layer quantized to `dtype`; embeddings and LayerNorms stay f32.
    pub fn quantized(&self, dtype: GgmlDType) -> candle_core::Result<Self> {
        let layers = self.layers.iter().map(|l| l.quantized(dtype)).collect::<candle_core::Result<_>>()?;
        Ok(Bert { embeddings: self.embeddings.clone(), layers, config: self.config.clone() })
    }
}

/// LayerNorm parameters over the hidden width.
#[derive(Debug, Clone)]
pub(super) struct Norm {
    pub(super) gamma: Vec<f32>,
    pub(super) beta: Vec<f32>,
    pub(super) eps: f32,
}

impl Norm {
    /// `x ← LayerNorm(x + residual)` per row (residual empty for none), rows split across cores.
    fn apply(&self, x: &mut [f32], residual: &[f32]) {
        let width = self.gamma.len();
        let block = width * ROWS_PER_TASK;
        if residual.is_empty() {
            x.par_chunks_mut(block).for_each(|x| add_layer_norm(x, &[], &self.gamma, &self.beta, self.eps));
        } else {
            x.par_chunks_mut(block)
                .zip(residual.par_chunks(block))
                .for_each(|(x, residual)| add_layer_norm(x, residual, &self.gamma, &self.beta, self.eps));
        }
    }
}

/// Rows per parallel task of the row-wise passes (LayerNorm, GELU): enough work to outweigh a task.
const ROWS_PER_TASK: usize = 16;

/// Word + token type (always 0) + absolute position embeddings, then LayerNorm.
#[derive(Debug, Clone)]
pub(super) struct Embeddings {
    pub(super) word: Vec<f32>,        // [vocab, H]
    pub(super) position: Vec<f32>,    // [max_positions, H]
    pub(super) token_type0: Vec<f32>, // [H]
    pub(super) norm: Norm,
}

impl Embeddings {
    fn new(w: &Weights, c: &BertConfig) -> Result<Self, EncoderError> {
        let h = c.hidden_size;
        let token_types = w.get("embeddings.token_type_embeddings.weight", &[c.type_vocab_size, h])?;
        Ok(Embeddings {
            word: w.values("embeddings.word_embeddings.weight", &[c.vocab_size, h])?,
            position: w.values("embeddings.position_embeddings.weight", &[c.max_position_embeddings, h])?,
            token_type0: token_types
                .get(0)
                .and_then(|t| t.to_vec1())
                .map_err(EncoderError::candle("token type embedding"))?,
            norm: w.norm("embeddings.LayerNorm", h, c.layer_norm_eps)?,
        })
    }

    /// `ids` [tokens], position counted from each span's start → [tokens, H]. Ids beyond the vocabulary
    /// and positions beyond the table give an error, not a panic.
    fn forward(&self, ids: &[u32], spans: &[Span]) -> candle_core::Result<Vec<f32>> {
        let h = self.token_type0.len();
        let (vocab, positions) = (self.word.len() / h, self.position.len() / h);
        let mut x = Vec::with_capacity(ids.len() * h);
        for span in spans {
            if span.len > positions {
                candle_core::bail!("a text of {} tokens is longer than the {positions} positions", span.len);
            }
            for (position, &id) in ids[span.start..span.start + span.len].iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
                }
                let word = &self.word[id * h..(id + 1) * h];
                let pos = &self.position[position * h..(position + 1) * h];
                x.extend(word.iter().zip(&self.token_type0).zip(pos).map(|((w, t), p)| (w + t) + p));
            }
        }
        self.norm.apply(&mut x, &[]);
        Ok(x)
    }
}

/// Buffers a forward pass reuses from layer to layer.
#[derive(Debug, Default)]
struct Scratch {
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    hidden: Vec<f32>,
}

/// One transformer layer: self-attention and feed-forward, each with residual + LayerNorm after.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    /// Query, key and value in one product: weight [3H, H] (their rows stacked), output [tokens, 3H].
    pub(super) qkv: Linear,
    pub(super) attention_out: Linear,
    pub(super) attention_norm: Norm,
    pub(super) intermediate: Linear,
    pub(super) output: Linear,
    pub(super) output_norm: Norm,
    heads: usize,
}

impl Layer {
    fn new(w: &Weights, prefix: &str, c: &BertConfig) -> Result<Self, EncoderError> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let names = ["query", "key", "value"].map(|p| format!("{prefix}.attention.self.{p}"));
        Ok(Layer {
            qkv: w.stacked_linear(&names, h, h)?,
            attention_out: w.linear(&format!("{prefix}.attention.output.dense"), h, h)?,
            attention_norm: w.norm(&format!("{prefix}.attention.output.LayerNorm"), h, c.layer_norm_eps)?,
            intermediate: w.linear(&format!("{prefix}.intermediate.dense"), h, i)?,
            output: w.linear(&format!("{prefix}.output.dense"), i, h)?,
            output_norm: w.norm(&format!("{prefix}.output.LayerNorm"), h, c.layer_norm_eps)?,
            heads: c.num_attention_heads,
        })
    }

    /// `x` [tokens, H] → the layer's output, in place.
    fn forward(&self, x: &mut Vec<f32>, spans: &[Span], key_bias: &[f32], s: &mut Scratch) -> candle_core::Result<()> {
        let hidden = self.attention_out.outputs();
        self.qkv.forward(x, &mut s.qkv)?;
        s.context.resize(x.len(), 0.0);
        attention(&s.qkv, hidden, self.heads, spans, key_bias, &mut s.context);
        self.attention_out.forward(&s.context, &mut s.projected)?;
        self.attention_norm.apply(&mut s.projected, x);
        std::mem::swap(x, &mut s.projected);

        self.intermediate.forward(x, &mut s.hidden)?;
        let block = self.intermediate.outputs() * ROWS_PER_TASK;
        s.hidden.par_chunks_mut(block).for_each(gelu_erf_in_place);
        self.output.forward(&s.hidden, &mut s.projected)?;
        self.output_norm.apply(&mut s.projected, x);
        std::mem::swap(x, &mut s.projected);
        Ok(())
    }

    fn quantized(&self, dtype: GgmlDType) -> candle_core::Result<Self> {
        Ok(Layer {
            qkv: self.qkv.quantized(dtype)?,
            attention_out: self.attention_out.quantized(dtype)?,
            intermediate: self.intermediate.quantized(dtype)?,
            output: self.output.quantized(dtype)?,
            ..self.clone()
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

    /// Tensors already in memory (e.g. dequantized from a GGUF file), by Hugging Face name.
    pub fn from_tensors(tensors: HashMap<String, Tensor>) -> Self {
        Weights { tensors }
    }

    fn get(&self, name: &str, dims: &[usize]) -> Result<Tensor, EncoderError> {
        let tensor = self.tensors.get(name).ok_or_else(|| EncoderError::MissingTensor { name: name.into() })?;
        if tensor.dims() != dims {
            return Err(EncoderError::TensorShape {
                name: name.into(),
                expected: dims.to_vec(),
                actual: tensor.dims().to_vec(),
            });
        }
        tensor.to_dtype(DType::F32).map_err(EncoderError::candle("converting weights to f32"))
    }

    /// A tensor's values as f32, shape checked.
    fn values(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>, EncoderError> {
        self.get(name, dims)?.flatten_all().and_then(|t| t.to_vec1()).map_err(EncoderError::candle("reading weights"))
    }

    fn linear(&self, prefix: &str, inputs: usize, outputs: usize) -> Result<Linear, EncoderError> {
        self.stacked_linear(&[prefix.to_string()], inputs, outputs)
    }

    /// Several layers of the same input as one, their outputs side by side (weights' rows stacked).
    fn stacked_linear(&self, prefixes: &[String], inputs: usize, outputs: usize) -> Result<Linear, EncoderError> {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for prefix in prefixes {
            weights.push(self.get(&format!("{prefix}.weight"), &[outputs, inputs])?);
            biases.push(self.get(&format!("{prefix}.bias"), &[outputs])?);
        }
        let stack = |parts: &[Tensor]| Tensor::cat(parts, 0);
        stack(&weights)
            .and_then(|w| Linear::new(&w, &stack(&biases)?))
            .map_err(EncoderError::candle("building a linear layer"))
    }

    fn norm(&self, prefix: &str, size: usize, eps: f64) -> Result<Norm, EncoderError> {
        Ok(Norm {
            gamma: self.values(&format!("{prefix}.weight"), &[size])?,
            beta: self.values(&format!("{prefix}.bias"), &[size])?,
            eps: eps as f32,
        })
    }
}
