//! The same BERT as [`super::bert`], on candle tensors, so that it runs on any candle device: an NVIDIA
//! GPU through candle's CUDA backend (`omakase encode --device cuda`), or the CPU, where the parity
//! tests check it against the kernels (`tests/encode_device.rs`).
//!
//! Why a second forward pass rather than the kernels on another device: the kernels are CPU code on
//! f32 slices (`encoders::kernels` says why), which no backend can move; these ops are candle's, which
//! every backend implements. The weights are the kernels' own, copied once to the device, so a quantized
//! encoder runs with its rounded weights here too.
//!
//! Texts of a batch are padded to the longest (the GPU wants one rectangular product per layer, not
//! one per text as the packed kernels do) and the padding is masked out of attention with a key bias of
//! f32::MIN, as the kernels' padded `Bert::forward` and transformers do, and out of the mean pooling.
//! LayerNorm takes two passes (mean, then the mean of squared deviations) like the kernels: candle's
//! fused `layer_norm` computes E[x²] − E[x]², which loses digits on BERT's large-valued states.

use candle_core::{DType, Device, Result, Tensor, D};

use super::bert::{Bert, Embeddings, Layer, Norm};
use super::linear::Linear;
use super::pooling::{l2_normalize, masked_mean};

/// BERT + mean pooling + L2 normalisation, every weight on one device.
#[derive(Debug, Clone)]
pub struct TensorBert {
    embeddings: TensorEmbeddings,
    layers: Vec<TensorLayer>,
    hidden: usize,
    heads: usize,
    device: Device,
}

impl TensorBert {
    /// Copies `bert`'s weights to `device`.
    pub fn new(bert: &Bert, device: &Device) -> Result<Self> {
        let config = bert.config();
        let layers = bert.layers.iter().map(|layer| TensorLayer::new(layer, device)).collect::<Result<_>>()?;
        Ok(TensorBert {
            embeddings: TensorEmbeddings::new(&bert.embeddings, config.hidden_size, device)?,
            layers,
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token ids of `n` texts (each `[CLS] … [SEP]`, checked by the caller against the positions) → their
    /// sentence embeddings `[n, H]`, unit L2 norm, on the CPU. One padded batch on the device.
    pub fn encode(&self, texts: &[Vec<u32>]) -> Result<Tensor> {
        let longest = texts.iter().map(Vec::len).max().unwrap_or(0);
        if texts.is_empty() || longest == 0 {
            return Tensor::zeros((texts.len(), self.hidden), DType::F32, &Device::Cpu);
        }
        // Checked here, not left to the gather: an index beyond the table is undefined behaviour on a
        // GPU, not an error.
        let (vocab, positions) = (self.embeddings.word.dim(0)?, self.embeddings.position.dim(0)?);
        if longest > positions {
            candle_core::bail!("a text of {longest} tokens is longer than the {positions} positions");
        }
        if let Some(id) = texts.iter().flatten().find(|&&id| id as usize >= vocab) {
            candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
        }
        let n = texts.len();
        let mut ids = vec![0u32; n * longest];
        let mut mask = vec![0f32; n * longest];
        for (row, text) in texts.iter().enumerate() {
            ids[row * longest..row * longest + text.len()].copy_from_slice(text);
            mask[row * longest..row * longest + text.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, n * longest, &self.device)?;
        let mask = Tensor::from_vec(mask, (n, longest), &self.device)?;
        let states = self.forward(&ids, &mask)?;
        l2_normalize(&masked_mean(&states, &mask)?)?.to_device(&Device::Cpu)
    }

    /// `ids` `[b·L]` u32 (row after row), `mask` `[b, L]` f32 (1 real token, 0 padding) → token
    /// states `[b, L, H]`; the real tokens' states do not depend on the padding.
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, len) = mask.dims2()?;
        // [b, 1, 1, L]: 0 where a key is a token, f32::MIN where it is padding.
        let key_bias = ((1.0 - mask)? * f32::MIN as f64)?.reshape((b, 1, 1, len))?;
        let mut x = self.embeddings.forward(ids, b, len)?;
        for layer in &self.layers {
            x = layer.forward(&x, &key_bias, (b, len, self.heads))?;
        }
        x.reshape((b, len, self.hidden))
    }
}

/// `y = x · Wᵀ + b` for `x` `[tokens, in]`: the weight kept as `[in, out]`, as the kernels keep it.
#[derive(Debug, Clone)]
struct TensorLinear {
    weight_t: Tensor,
    bias: Tensor,
}

impl TensorLinear {
    fn new(linear: &Linear, device: &Device) -> Result<Self> {
        Ok(TensorLinear {
            weight_t: Tensor::from_slice(linear.weight_t(), (linear.inputs(), linear.outputs()), device)?,
            bias: Tensor::from_slice(linear.bias(), linear.outputs(), device)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight_t)?.broadcast_add(&self.bias)
    }
}

/// LayerNorm over the last dimension, two passes: `(x − mean) · 1/√(var + ε) · γ + β`.
#[derive(Debug, Clone)]
struct TensorNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f64,
}

impl TensorNorm {
    fn new(norm: &Norm, device: &Device) -> Result<Self> {
        Ok(TensorNorm {
            gamma: Tensor::from_slice(&norm.gamma, norm.gamma.len(), device)?,
            beta: Tensor::from_slice(&norm.beta, norm.beta.len(), device)?,
            eps: norm.eps as f64,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let inv_std = (centred.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?.sqrt()?.recip()?;
        centred.broadcast_mul(&inv_std)?.broadcast_mul(&self.gamma)?.broadcast_add(&self.beta)
    }
}

/// Word + token type 0 + position embeddings, then LayerNorm.
#[derive(Debug, Clone)]
struct TensorEmbeddings {
    word: Tensor,        // [vocab, H]
    position: Tensor,    // [max_positions, H]
    token_type0: Tensor, // [H]
    norm: TensorNorm,
}

impl TensorEmbeddings {
    fn new(embeddings: &Embeddings, hidden: usize, device: &Device) -> Result<Self> {
        let rows = |values: &[f32]| Tensor::from_slice(values, (values.len() / hidden, hidden), device);
        Ok(TensorEmbeddings {
            word: rows(&embeddings.word)?,
            position: rows(&embeddings.position)?,
            token_type0: Tensor::from_slice(&embeddings.token_type0, hidden, device)?,
            norm: TensorNorm::new(&embeddings.norm, device)?,
        })
    }

    /// `ids` `[b·L]`, each below the vocabulary size, `L` at most the positions → `[b·L, H]`.
    fn forward(&self, ids: &Tensor, b: usize, len: usize) -> Result<Tensor> {
        let hidden = self.word.dim(1)?;
        let words = self.word.index_select(ids, 0)?.reshape((b, len, hidden))?;
        // (word + token type) + position, in the kernels' order.
        let x = words.broadcast_add(&self.token_type0)?.broadcast_add(&self.position.narrow(0, 0, len)?)?;
        self.norm.forward(&x.reshape((b * len, hidden))?)
    }
}

/// One post-LayerNorm transformer layer.
#[derive(Debug, Clone)]
struct TensorLayer {
    /// Query, key and value in one product (`[H, 3H]`), as the kernels stack them.
    qkv: TensorLinear,
    attention_out: TensorLinear,
    attention_norm: TensorNorm,
    intermediate: TensorLinear,
    output: TensorLinear,
    output_norm: TensorNorm,
}

impl TensorLayer {
    fn new(layer: &Layer, device: &Device) -> Result<Self> {
        Ok(TensorLayer {
            qkv: TensorLinear::new(&layer.qkv, device)?,
            attention_out: TensorLinear::new(&layer.attention_out, device)?,
            attention_norm: TensorNorm::new(&layer.attention_norm, device)?,
            intermediate: TensorLinear::new(&layer.intermediate, device)?,
            output: TensorLinear::new(&layer.output, device)?,
            output_norm: TensorNorm::new(&layer.output_norm, device)?,
        })
    }

    /// `x` `[b·L, H]`, `key_bias` `[b, 1, 1, L]` → `[b·L, H]`.
    fn forward(&self, x: &Tensor, key_bias: &Tensor, (b, len, heads): (usize, usize, usize)) -> Result<Tensor> {
        let hidden = x.dim(1)?;
        let head_dim = hidden / heads;
        // [b·L, 3H] → [3, b, heads, L, head_dim].
        let qkv = self.qkv.forward(x)?.reshape((b, len, 3, heads, head_dim))?.permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (qkv.get(0)?.contiguous()?, qkv.get(1)?.contiguous()?, qkv.get(2)?.contiguous()?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (head_dim as f64).sqrt()))?.broadcast_add(key_bias)?;
        let probabilities = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probabilities.matmul(&v)?.transpose(1, 2)?.reshape((b * len, hidden))?;
        let x = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let intermediate = self.intermediate.forward(&x)?.gelu_erf()?;
        self.output_norm.forward(&(self.output.forward(&intermediate)? + &x)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::text::bert::Weights;
    use crate::encoders::text::BertConfig;
    use std::collections::HashMap;

    /// A two-layer BERT with random weights, small enough for a unit test.
    fn random_bert() -> Bert {
        let config = BertConfig {
            vocab_size: 50,
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 32,
            max_position_embeddings: 12,
            ..BertConfig::default()
        };
        let dev = Device::Cpu;
        let mut t = HashMap::new();
        let mut put = |name: String, dims: &[usize]| {
            t.insert(name, Tensor::randn(0f32, 0.5, dims, &dev).unwrap());
        };
        let (h, i) = (config.hidden_size, config.intermediate_size);
        put("embeddings.word_embeddings.weight".into(), &[config.vocab_size, h]);
        put("embeddings.position_embeddings.weight".into(), &[config.max_position_embeddings, h]);
        put("embeddings.token_type_embeddings.weight".into(), &[2, h]);
        put("embeddings.LayerNorm.weight".into(), &[h]);
        put("embeddings.LayerNorm.bias".into(), &[h]);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            for (name, dims) in [
                ("attention.self.query", [h, h]),
                ("attention.self.key", [h, h]),
                ("attention.self.value", [h, h]),
                ("attention.output.dense", [h, h]),
                ("intermediate.dense", [i, h]),
                ("output.dense", [h, i]),
            ] {
                put(format!("{p}.{name}.weight"), &dims);
                put(format!("{p}.{name}.bias"), &dims[..1]);
            }
            for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
                put(format!("{p}.{norm}.weight"), &[h]);
                put(format!("{p}.{norm}.bias"), &[h]);
            }
        }
        Bert::new(&Weights::from_tensors(t), config).unwrap()
    }

    #[test]
    fn padded_batch_equals_the_packed_kernels() -> Result<()> {
        let bert = random_bert();
        let texts: Vec<Vec<u32>> = vec![vec![1, 7, 9, 2], vec![1, 2], vec![1, 30, 31, 32, 33, 49, 2]];
        let on_tensors = TensorBert::new(&bert, &Device::Cpu)?.encode(&texts)?.to_vec2::<f32>()?;
        let slices: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
        let (states, spans) = bert.forward_packed(&slices)?;
        let kernels = super::super::pooling::mean_normalized(&states, 16, &spans);
        for (row, want) in on_tensors.iter().zip(kernels.chunks(16)) {
            let diff = row.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-5, "max |Δ| {diff}");
        }
        Ok(())
    }

    #[test]
    fn out_of_range_ids_and_positions_are_errors_and_no_texts_give_no_rows() -> Result<()> {
        let tensors = TensorBert::new(&random_bert(), &Device::Cpu)?;
        assert!(tensors.encode(&[vec![1, 50, 2]]).unwrap_err().to_string().contains("token id 50"));
        assert!(tensors.encode(&[vec![1; 13]]).unwrap_err().to_string().contains("13 tokens"));
        assert_eq!(tensors.encode(&[])?.dims(), &[0, 16]);
        Ok(())
    }
}
