//! Multi-head self-attention with an additive mask, shared by the item tower (a key mask over the
//! modality tokens) and the sequence tower (causal + padding).

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use super::dropout::{Dropout, Mode};

/// Added to the score of a masked (query, key) pair. Finite rather than −∞ so a row with every key
/// masked (never built by the constructors below, but cheap insurance) gives a uniform softmax
/// instead of NaN; `exp(−1e9)` is exactly 0 in `f32`, so a masked key gets exactly zero weight.
const MASKED: f32 = -1e9;

/// An additive attention bias `[b, 1, t_q, t_k]` (0 = may attend, [`MASKED`] = may not), or
/// `[b, 1, 1, t_k]` when only keys are masked.
#[derive(Debug, Clone)]
pub struct AttentionMask {
    bias: Tensor,
}

impl AttentionMask {
    /// Masks absent keys: `present` is `[b, t]`, 1.0 where the token exists, 0.0 where it does
    /// not. Every row must keep at least one token.
    pub fn from_key_presence(present: &Tensor) -> Result<Self> {
        let (b, t) = present.dims2()?;
        // present 1 → 0, absent 0 → MASKED.
        let bias = ((present.to_dtype(DType::F32)? - 1.0)? * (-(MASKED as f64)))?;
        Ok(AttentionMask { bias: bias.reshape((b, 1, 1, t))? })
    }

    /// Causal attention over right-padded rows: position `i` of row `r` may attend to position `j`
    /// iff `j ≤ i` and `j < lengths[r]`. Position 0 is always visible, so no row is fully masked
    /// (padded positions read the real items and their outputs are ignored downstream).
    pub fn causal_padded(lengths: &[usize], t: usize, device: &Device) -> Result<Self> {
        let mut bias = Vec::with_capacity(lengths.len() * t * t);
        for &len in lengths {
            for i in 0..t {
                bias.extend((0..t).map(|j| if j <= i && j < len.max(1) { 0.0 } else { MASKED }));
            }
        }
        Ok(AttentionMask { bias: Tensor::from_vec(bias, (lengths.len(), 1, t, t), device)? })
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }
}

/// Multi-head self-attention. Parameters: `{prefix}.{query,key,value,output}.{weight,bias}`.
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    num_heads: usize,
    head_dim: usize,
    dropout: Dropout,
}

impl MultiHeadAttention {
    pub fn new(dim: usize, num_heads: usize, attention_dropout: f32, vb: VarBuilder) -> Result<Self> {
        if num_heads == 0 || dim % num_heads != 0 {
            candle_core::bail!("attention: {num_heads} heads do not divide width {dim}")
        }
        Ok(MultiHeadAttention {
            query: candle_nn::linear(dim, dim, vb.pp("query"))?,
            key: candle_nn::linear(dim, dim, vb.pp("key"))?,
            value: candle_nn::linear(dim, dim, vb.pp("value"))?,
            output: candle_nn::linear(dim, dim, vb.pp("output"))?,
            num_heads,
            head_dim: dim / num_heads,
            dropout: Dropout::new(attention_dropout),
        })
    }

    /// `xs: [b, t, d]`, mask bias broadcastable to `[b, heads, t, t]` → `[b, t, d]`.
    pub fn forward(&self, xs: &Tensor, mask: &AttentionMask, mode: Mode) -> Result<Tensor> {
        let (b, t, d) = xs.dims3()?;
        let heads = |proj: &Linear| -> Result<Tensor> {
            proj.forward(xs)?.reshape((b, t, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (heads(&self.query)?, heads(&self.key)?, heads(&self.value)?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask.bias())?;
        let weights = self.dropout.forward(&softmax_last_dim(&scores)?, mode)?;
        let mixed = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.output.forward(&mixed)
    }
}

/// Softmax over the last dimension: candle's fused kernel when no gradient is needed, its
/// differentiable composition otherwise (`softmax_last_dim` has no backward pass, so in training
/// it would silently cut the gradient).
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if xs.track_op() {
        candle_nn::ops::softmax(xs, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(&xs.contiguous()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn causal_padded_mask_allows_exactly_the_past_real_items() {
        let mask = AttentionMask::causal_padded(&[2, 3], 3, &Device::Cpu).unwrap();
        let bias = mask.bias().squeeze(1).unwrap().to_vec3::<f32>().unwrap();
        let allowed = |r: usize, i: usize, j: usize| bias[r][i][j] == 0.0;
        assert!(allowed(0, 1, 0) && allowed(0, 1, 1) && !allowed(0, 0, 1));
        assert!(!allowed(0, 2, 2), "padding is never a key");
        assert!(allowed(1, 2, 2) && allowed(1, 2, 0));
    }

    #[test]
    fn masked_keys_get_zero_weight() {
        let present = Tensor::new(&[[1f32, 0.0]], &Device::Cpu).unwrap();
        let mask = AttentionMask::from_key_presence(&present).unwrap();
        let scores = Tensor::new(&[[[[5f32, 9.0], [0.0, 0.0]]]], &Device::Cpu).unwrap();
        let weights = softmax_last_dim(&scores.broadcast_add(mask.bias()).unwrap()).unwrap();
        let weights = weights.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(weights, vec![1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn fused_and_differentiable_softmax_agree() {
        let xs = Var::from_tensor(&Tensor::randn(0f32, 3.0, (4, 7), &Device::Cpu).unwrap()).unwrap();
        let tracked = softmax_last_dim(xs.as_tensor()).unwrap();
        let plain = softmax_last_dim(&xs.as_tensor().detach()).unwrap();
        let diff = (&tracked - &plain).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");
        assert!(tracked.sum_all().unwrap().backward().unwrap().get(xs.as_tensor()).is_some());
    }
}
