//! MiniLM text encoder: product words → a 384-d unit vector, exactly as sentence-transformers'
//! all-MiniLM-L6-v2 computes it (token ids identical, embeddings within 1e-5; see
//! `tests/text_encoder_golden.rs` and `../shared/golden/minilm/README.md`).
//!
//! The path: [`compose`] (item fields → one text) → [`tokenizer`] (text → WordPiece ids, cut at
//! 256 tokens with `[CLS]`/`[SEP]`) → [`bert`] (ids → token states; a batch is padded to its
//! longest text and the padding masked out of attention) → [`pooling`] (masked mean, L2 norm).
//! Everything compiles for wasm32: [`TextEncoder::from_bytes`] takes the two files' bytes, so the
//! browser can encode a product it has never seen.
//!
//! Two forward passes compute the same embeddings: [`bert`] on our CPU kernels (the default, and the
//! only one in the browser), and [`tensor_bert`] on candle tensors, which runs on any candle device
//! (a CUDA GPU: [`TextEncoder::on_device`]); `tests/encode_device.rs` holds them to the goldens'
//! tolerance of each other.

use std::path::PathBuf;

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};

pub mod attention;
pub mod bert;
pub mod compose;
mod linear;
pub mod pooling;
pub mod tensor_bert;
pub mod tokenizer;

pub use bert::BertConfig;
pub use compose::{ItemFields, ItemTextSpec, ItemTextTemplate, TemplateError};
pub use tokenizer::WordPieceTokenizer;

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2 (overrides tokenizer.json's 128).
pub const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// Everything that can go wrong loading or running the text encoder, with the file or tensor named.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{file}: {reason}")]
    Config { file: String, reason: String },
    #[error("tokenizer.json: {reason}")]
    Tokenizer { reason: String },
    #[error("model weights: tensor `{name}` is missing")]
    MissingTensor { name: String },
    #[error("model weights: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape { name: String, expected: Vec<usize>, actual: Vec<usize> },
    #[error("text {row} has {tokens} token ids, more than the model's {max}")]
    TooManyTokens { row: usize, tokens: usize, max: usize },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{context}: {source}")]
    Candle { context: &'static str, source: candle_core::Error },
    #[cfg(feature = "gpu")]
    #[error("text encoder on the GPU: {0}")]
    Gpu(#[from] crate::runtime::gpu::GpuError),
}

impl EncoderError {
    /// Wraps a candle error with what was being done (`.map_err(EncoderError::candle("..."))`).
    pub fn candle(context: &'static str) -> impl FnOnce(candle_core::Error) -> EncoderError {
        move |source| EncoderError::Candle { context, source }
    }
}

/// The frozen all-MiniLM-L6-v2 sentence encoder (f32, or with quantized Linear layers).
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tokenizer: WordPieceTokenizer,
    bert: bert::Bert,
    max_seq_len: usize,
    /// A copy of `bert` on a candle device, when [`TextEncoder::on_device`] made one: batches then
    /// run there instead of on the kernels.
    on_device: Option<tensor_bert::TensorBert>,
}

impl TextEncoder {
    /// all-MiniLM-L6-v2 from the bytes of `model.safetensors` and `tokenizer.json` (works on wasm).
    pub fn from_bytes(safetensors: &[u8], tokenizer_json: &[u8]) -> Result<Self, EncoderError> {
        Self::from_parts(safetensors, tokenizer_json, BertConfig::default(), DEFAULT_MAX_SEQ_LEN)
    }

    /// Any BERT WordPiece sentence encoder with mean pooling; `max_seq_len` counts `[CLS]`/`[SEP]`.
    pub fn from_parts(
        safetensors: &[u8],
        tokenizer_json: &[u8],
        config: BertConfig,
        max_seq_len: usize,
    ) -> Result<Self, EncoderError> {
        Self::from_weights(&bert::Weights::from_safetensors(safetensors)?, tokenizer_json, config, max_seq_len)
    }

    /// As [`TextEncoder::from_parts`], from weights already in memory.
    pub fn from_weights(
        weights: &bert::Weights,
        tokenizer_json: &[u8],
        config: BertConfig,
        max_seq_len: usize,
    ) -> Result<Self, EncoderError> {
        let tokenizer = WordPieceTokenizer::from_json(tokenizer_json)?;
        if max_seq_len <= tokenizer.num_special_tokens() || max_seq_len > config.max_position_embeddings {
            return Err(EncoderError::Config {
                file: "sentence_bert_config.json".into(),
                reason: format!(
                    "max_seq_length {max_seq_len} must exceed the {} special tokens and be at most {} positions",
                    tokenizer.num_special_tokens(),
                    config.max_position_embeddings
                ),
            });
        }
        let bert = bert::Bert::new(weights, config)?;
        Ok(TextEncoder { tokenizer, bert, max_seq_len, on_device: None })
    }

    /// Loads a sentence-transformers model folder: `model.safetensors`, `tokenizer.json`, and when
    /// present `config.json`, `sentence_bert_config.json` (max_seq_length) and `1_Pooling/config.json`
    /// (which must ask for mean pooling).
    #[cfg(feature = "native")]
    pub fn load(dir: &std::path::Path) -> Result<Self, EncoderError> {
        let read = |name: &str| {
            let path = dir.join(name);
            crate::fs::read_bounded(&path, crate::fs::MAX_WEIGHTS_FILE_BYTES)
                .map_err(|e| EncoderError::Read { path, source: e.into_parts().1 })
        };
        let optional = |name: &str| dir.join(name).is_file().then(|| read(name)).transpose();
        let parse_config = |name: &str, bytes: Vec<u8>| {
            let file = dir.join(name).display().to_string();
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|e| EncoderError::Config { file, reason: e.to_string() })
        };

        let config = match optional("config.json")? {
            Some(bytes) => serde_json::from_slice::<BertConfig>(&bytes).map_err(|e| EncoderError::Config {
                file: dir.join("config.json").display().to_string(),
                reason: e.to_string(),
            })?,
            None => BertConfig::default(),
        };
        let max_seq_len = match optional("sentence_bert_config.json")? {
            Some(bytes) => parse_config("sentence_bert_config.json", bytes)?["max_seq_length"]
                .as_u64()
                .map_or(DEFAULT_MAX_SEQ_LEN, |n| n as usize),
            None => DEFAULT_MAX_SEQ_LEN,
        };
        if let Some(bytes) = optional("1_Pooling/config.json")? {
            if parse_config("1_Pooling/config.json", bytes)?["pooling_mode_mean_tokens"] != true {
                return Err(EncoderError::Config {
                    file: dir.join("1_Pooling/config.json").display().to_string(),
                    reason: "only mean pooling (pooling_mode_mean_tokens: true) is supported".into(),
                });
            }
        }
        Self::from_parts(&read("model.safetensors")?, &read("tokenizer.json")?, config, max_seq_len)
    }

    /// The same encoder running its batches on `device` with candle's ops ([`tensor_bert`]): a CUDA
    /// device, or the CPU (slower than the kernels there; what the parity tests compare).
    /// Tokenizing stays on the CPU; the weights are copied to the device once, here.
    pub fn on_device(&self, device: &Device) -> Result<Self, EncoderError> {
        let on_device = tensor_bert::TensorBert::new(&self.bert, device)
            .map_err(EncoderError::candle("copying the text encoder to the device"))?;
        Ok(TextEncoder { on_device: Some(on_device), ..self.clone() })
    }

    /// Where batches run: `None` on the CPU kernels, else the candle device of [`Self::on_device`].
    pub fn device(&self) -> Option<&Device> {
        self.on_device.as_ref().map(tensor_bert::TensorBert::device)
    }

    /// Width of the embeddings (384 for MiniLM).
    pub fn dim(&self) -> usize {
        self.bert.config().hidden_size
    }

    /// Most tokens a text keeps, `[CLS]` and `[SEP]` included.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// The token ids the model sees for `text` (`[CLS] … [SEP]`, at most `max_seq_len`).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, self.max_seq_len)
    }

    /// Embeds texts as one batch, padded to its longest: `texts` (n) → [n, dim] f32, rows of unit
    /// L2 norm (n = 0 gives [0, dim]).
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Tensor, EncoderError> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenize(t)).collect();
        self.encode_ids(&ids)
    }

    /// Embeds many texts in batches of `batch_size`, grouping texts of similar length as
    /// sentence-transformers does (less padding): `texts` (n) → [n, dim] in the input order.
    pub fn encode(&self, texts: &[&str], batch_size: usize) -> Result<Tensor, EncoderError> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenize(t)).collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut chunks = Vec::new();
        for batch in order.chunks(batch_size.max(1)) {
            let batch_ids: Vec<Vec<u32>> = batch.iter().map(|&i| ids[i].clone()).collect();
            chunks.push(self.encode_ids(&batch_ids)?);
        }
        if chunks.is_empty() {
            return self.encode_ids(&[]);
        }
        let sorted = Tensor::cat(&chunks, 0).map_err(EncoderError::candle("joining batches"))?;
        let mut position = vec![0u32; order.len()];
        for (sorted_row, &original) in order.iter().enumerate() {
            position[original] = sorted_row as u32;
        }
        let position = Tensor::new(position, &Device::Cpu).map_err(EncoderError::candle("restoring order"))?;
        sorted.index_select(&position, 0).map_err(EncoderError::candle("restoring order"))
    }

    /// Embeds pre-tokenized texts (each `[CLS] … [SEP]`, at most `max_seq_len` ids) as one batch:
    /// [n, dim] on the CPU. On the kernels the texts run packed, without padding (see [`bert`]); on a
    /// device, padded to the longest (see [`tensor_bert`]).
    pub fn encode_ids(&self, ids: &[Vec<u32>]) -> Result<Tensor, EncoderError> {
        if let Some(row) = ids.iter().position(|r| r.len() > self.max_seq_len) {
            return Err(EncoderError::TooManyTokens { row, tokens: ids[row].len(), max: self.max_seq_len });
        }
        if let Some(on_device) = &self.on_device {
            return on_device.encode(ids).map_err(EncoderError::candle("running the text encoder on the device"));
        }
        let run = || -> candle_core::Result<Tensor> {
            let texts: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
            let (states, spans) = self.bert.forward_packed(&texts)?;
            let pooled = pooling::mean_normalized(&states, self.dim(), &spans);
            Tensor::from_vec(pooled, (ids.len(), self.dim()), &Device::Cpu)
        };
        run().map_err(EncoderError::candle("running the text encoder"))
    }

    /// The same encoder with every Linear layer quantized to `dtype` (e.g. `GgmlDType::Q8_0`);
    /// embeddings and LayerNorms stay f32. On the same device as `self`.
    pub fn quantized(&self, dtype: GgmlDType) -> Result<Self, EncoderError> {
        let bert = self.bert.quantized(dtype).map_err(EncoderError::candle("quantizing the text encoder"))?;
        let quantized =
            TextEncoder { tokenizer: self.tokenizer.clone(), bert, max_seq_len: self.max_seq_len, on_device: None };
        match self.device() {
            Some(device) => quantized.on_device(device),
            None => Ok(quantized),
        }
    }

    /// The widths a GPU copy of this encoder's layers needs ([`crate::runtime::gpu::GpuBert::load`]).
    #[cfg(feature = "gpu")]
    pub fn gpu_shape(&self) -> crate::runtime::gpu::BertShape {
        let c = self.bert.config();
        crate::runtime::gpu::BertShape {
            hidden: c.hidden_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            intermediate: c.intermediate_size,
            layer_norm_eps: c.layer_norm_eps as f32,
        }
    }

    /// One text → its unit-length vector `[dim]`, with the transformer layers on the GPU (`layers`,
    /// loaded from the same weights): tokenizing, the embedding lookup and the mean pooling run here.
    #[cfg(feature = "gpu")]
    pub async fn encode_with_gpu(
        &self,
        layers: &crate::runtime::gpu::GpuBert,
        ctx: &crate::runtime::gpu::GpuContext,
        text: &str,
    ) -> Result<Vec<f32>, EncoderError> {
        let ids = self.tokenize(text);
        let embedded = self.bert.embed(&ids).map_err(EncoderError::candle("embedding the tokens"))?;
        let states = layers.forward(ctx, &embedded).await?;
        let span = attention::Span { start: 0, len: ids.len() };
        Ok(pooling::mean_normalized(&states, self.dim(), &[span]))
    }
}
