//! The sequence tower on the GPU: `runtime::tower::SequenceTower`'s forward pass (pre-LN encoder
//! layers, causal attention, erf GELU, final LayerNorm) recorded as one [`GpuPass`], weights read
//! from the same GGUF file (Q8_0 matrices stay Q8_0 on the GPU).

use super::context::GpuContext;
use super::error::GpuError;
use super::layers::{AttentionShape, GpuLayerNorm, GpuLinear, GpuPass, GpuTensor};
use crate::config::ModelConfig;
use crate::gguf::{Gguf, TensorType};
use crate::RuntimeError;

/// One pre-LN encoder layer: `x + Attn(LN(x))`, then `x + FFN(LN(x))`.
#[derive(Debug)]
struct GpuEncoderLayer {
    attention_norm: GpuLayerNorm,
    query: GpuLinear,
    key: GpuLinear,
    value: GpuLinear,
    output: GpuLinear,
    ffn_norm: GpuLayerNorm,
    ffn_up: GpuLinear,
    ffn_down: GpuLinear,
}

/// The sequence tower: item vectors of a session (oldest first) → user vector.
#[derive(Debug)]
pub struct GpuSequenceTower {
    /// `[max_len, d]`.
    positions: GpuTensor,
    layers: Vec<GpuEncoderLayer>,
    final_norm: GpuLayerNorm,
    dim: usize,
    heads: usize,
    max_len: usize,
}

impl GpuSequenceTower {
    /// Reads `sequence_tower.*` from `gguf` (the bundle's `file`), with the CPU loader's names and
    /// shape checks.
    pub fn load(ctx: &GpuContext, gguf: &Gguf, file: &str, config: &ModelConfig) -> Result<GpuSequenceTower, GpuError> {
        let p = "sequence_tower";
        let (d, eps) = (config.dim, config.layer_norm_eps as f32);
        if config.num_heads == 0 || d % config.num_heads != 0 {
            return Err(GpuError::shape("sequence tower", format!("{} heads for width {d}", config.num_heads)));
        }
        let positions = tensor_f32(gguf, file, &format!("{p}.position_embedding"), &[config.max_len, d])?;
        let norm = |prefix: &str| layer_norm(ctx, gguf, file, prefix, d, eps);
        let layers = (0..config.num_layers)
            .map(|i| {
                let l = format!("{p}.layers.{i}");
                let linear = |name: &str, n, k| linear(ctx, gguf, file, &format!("{l}.{name}"), n, k);
                Ok(GpuEncoderLayer {
                    attention_norm: norm(&format!("{l}.attention_norm"))?,
                    query: linear("attention.query", d, d)?,
                    key: linear("attention.key", d, d)?,
                    value: linear("attention.value", d, d)?,
                    output: linear("attention.output", d, d)?,
                    ffn_norm: norm(&format!("{l}.ffn_norm"))?,
                    ffn_up: linear("ffn.up", config.ffn_dim, d)?,
                    ffn_down: linear("ffn.down", d, config.ffn_dim)?,
                })
            })
            .collect::<Result<_, GpuError>>()?;
        Ok(GpuSequenceTower {
            positions: GpuTensor::from_slice(ctx, &positions),
            layers,
            final_norm: norm(&format!("{p}.final_norm"))?,
            dim: d,
            heads: config.num_heads,
            max_len: config.max_len,
        })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// `items: [t, d]` with `1 ≤ t ≤ max_len` (the caller keeps the last `max_len`) → the user
    /// vector `[d]` (the output at the last position), as `SequenceTower::user_vector`.
    pub async fn user_vector(&self, ctx: &GpuContext, items: &[f32]) -> Result<Vec<f32>, GpuError> {
        let d = self.dim;
        let t = items.len() / d;
        if t == 0 || t > self.max_len || items.len() != t * d {
            return Err(GpuError::shape(
                "session",
                format!("{} values are not 1..={} positions of {d}", items.len(), self.max_len),
            ));
        }
        let mut pass = GpuPass::new(ctx)?;
        let x = GpuTensor::from_slice(ctx, items);
        pass.add(&x, &self.positions)?;
        for layer in &self.layers {
            let normed = pass.layer_norm(&layer.attention_norm, &x, t)?;
            let q = pass.linear(&layer.query, &normed, t)?;
            let k = pass.linear(&layer.key, &normed, t)?;
            let v = pass.linear(&layer.value, &normed, t)?;
            let mixed =
                pass.attention(&q, &k, &v, AttentionShape { rows: t, dim: d, heads: self.heads, causal: true })?;
            let attended = pass.linear(&layer.output, &mixed, t)?;
            pass.add(&x, &attended)?;
            let normed = pass.layer_norm(&layer.ffn_norm, &x, t)?;
            let hidden = pass.linear(&layer.ffn_up, &normed, t)?;
            pass.gelu(&hidden)?;
            let fed = pass.linear(&layer.ffn_down, &hidden, t)?;
            pass.add(&x, &fed)?;
        }
        let out = pass.layer_norm(&self.final_norm, &x, t)?;
        pass.read(&out, (t - 1) * d, d).await
    }
}

pub(super) fn tensor_f32(gguf: &Gguf, file: &str, name: &str, dims: &[usize]) -> Result<Vec<f32>, GpuError> {
    let tensor = gguf.tensor(file, name)?;
    if tensor.dims != dims {
        return Err(shape_error(file, name, &tensor.dims, dims));
    }
    Ok(tensor.to_f32())
}

fn shape_error(file: &str, name: &str, found: &[usize], expected: &[usize]) -> GpuError {
    RuntimeError::Tensor {
        file: file.into(),
        tensor: name.into(),
        reason: format!("shape {found:?}, expected {expected:?}"),
    }
    .into()
}

pub(super) fn linear(
    ctx: &GpuContext,
    gguf: &Gguf,
    file: &str,
    prefix: &str,
    n: usize,
    k: usize,
) -> Result<GpuLinear, GpuError> {
    let name = format!("{prefix}.weight");
    let weight = gguf.tensor(file, &name)?;
    if weight.dims != [n, k] {
        return Err(shape_error(file, &name, &weight.dims, &[n, k]));
    }
    let bias = tensor_f32(gguf, file, &format!("{prefix}.bias"), &[n])?;
    match weight.dtype {
        TensorType::Q8_0 => GpuLinear::from_q8_0(ctx, weight.data, &bias, n, k),
        _ => GpuLinear::from_f32(ctx, &weight.to_f32(), &bias, n, k),
    }
}

pub(super) fn layer_norm(
    ctx: &GpuContext,
    gguf: &Gguf,
    file: &str,
    prefix: &str,
    d: usize,
    eps: f32,
) -> Result<GpuLayerNorm, GpuError> {
    let weight = tensor_f32(gguf, file, &format!("{prefix}.weight"), &[d])?;
    let bias = tensor_f32(gguf, file, &format!("{prefix}.bias"), &[d])?;
    GpuLayerNorm::new(ctx, &weight, &bias, eps)
}
