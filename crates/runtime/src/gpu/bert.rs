//! A BERT encoder's transformer layers (all-MiniLM-L6-v2's: post-LayerNorm, exact GELU, full
//! attention) on the GPU, from the text encoder GGUF `omakase quantize` / `export --encoders` writes
//! (Hugging Face names: `encoder.layer.{i}.attention.self.query.weight`, ...). Q8_0 matrices stay Q8_0
//! on the device; the sequence tower's kernels ([`super::layers`]) do the work.
//!
//! Only the layers: tokenizing, the embedding lookup (a table lookup of a few rows) and the mean
//! pooling stay on the CPU (`encoders::text::TextEncoder::encode_with_gpu`).

use super::layers::{AttentionShape, GpuLayerNorm, GpuLinear, GpuPass, GpuTensor};
use super::tower::{layer_norm, linear};
use super::{GpuContext, GpuError};
use crate::gguf::Gguf;

/// The widths of a BERT encoder (MiniLM: 384 wide, 12 heads, 6 layers, 1536 FFN, eps 1e-12).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertShape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub layer_norm_eps: f32,
}

#[derive(Debug)]
struct GpuBertLayer {
    query: GpuLinear,
    key: GpuLinear,
    value: GpuLinear,
    attention_out: GpuLinear,
    attention_norm: GpuLayerNorm,
    intermediate: GpuLinear,
    output: GpuLinear,
    output_norm: GpuLayerNorm,
}

/// BERT's layers on one device.
#[derive(Debug)]
pub struct GpuBert {
    layers: Vec<GpuBertLayer>,
    shape: BertShape,
}

impl GpuBert {
    /// Reads every layer of `shape` from `gguf` (`file` names it in errors), shapes checked.
    pub fn load(ctx: &GpuContext, gguf: &Gguf, file: &str, shape: BertShape) -> Result<GpuBert, GpuError> {
        let BertShape { hidden: h, heads, layers, intermediate: i, layer_norm_eps: eps } = shape;
        if heads == 0 || h % heads != 0 {
            return Err(GpuError::shape("bert", format!("{heads} heads for width {h}")));
        }
        let layers = (0..layers)
            .map(|n| {
                let p = format!("encoder.layer.{n}");
                let lin = |name: &str, out, inp| linear(ctx, gguf, file, &format!("{p}.{name}"), out, inp);
                let norm = |name: &str| layer_norm(ctx, gguf, file, &format!("{p}.{name}"), h, eps);
                Ok(GpuBertLayer {
                    query: lin("attention.self.query", h, h)?,
                    key: lin("attention.self.key", h, h)?,
                    value: lin("attention.self.value", h, h)?,
                    attention_out: lin("attention.output.dense", h, h)?,
                    attention_norm: norm("attention.output.LayerNorm")?,
                    intermediate: lin("intermediate.dense", i, h)?,
                    output: lin("output.dense", h, i)?,
                    output_norm: norm("output.LayerNorm")?,
                })
            })
            .collect::<Result<_, GpuError>>()?;
        Ok(GpuBert { layers, shape })
    }

    pub fn shape(&self) -> BertShape {
        self.shape
    }

    /// One text's embedded tokens `[tokens, hidden]` (after the embedding LayerNorm) → its
    /// contextual token states `[tokens, hidden]`. One submission, one readback.
    pub async fn forward(&self, ctx: &GpuContext, embedded: &[f32]) -> Result<Vec<f32>, GpuError> {
        let h = self.shape.hidden;
        let rows = embedded.len() / h;
        if rows == 0 || embedded.len() != rows * h {
            return Err(GpuError::shape("bert input", format!("{} values are not rows of {h}", embedded.len())));
        }
        let mut pass = GpuPass::new(ctx)?;
        let mut x = GpuTensor::from_slice(ctx, embedded);
        let attention = AttentionShape { rows, dim: h, heads: self.shape.heads, causal: false };
        for layer in &self.layers {
            let q = pass.linear(&layer.query, &x, rows)?;
            let k = pass.linear(&layer.key, &x, rows)?;
            let v = pass.linear(&layer.value, &x, rows)?;
            let mixed = pass.attention(&q, &k, &v, attention)?;
            let projected = pass.linear(&layer.attention_out, &mixed, rows)?;
            pass.add(&projected, &x)?;
            let attended = pass.layer_norm(&layer.attention_norm, &projected, rows)?;
            let hidden = pass.linear(&layer.intermediate, &attended, rows)?;
            pass.gelu(&hidden)?;
            let out = pass.linear(&layer.output, &hidden, rows)?;
            pass.add(&out, &attended)?;
            x = pass.layer_norm(&layer.output_norm, &out, rows)?;
        }
        pass.read_all(&x).await
    }
}
