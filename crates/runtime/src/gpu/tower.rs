//! The sequence tower on the GPU: `runtime::tower::SequenceTower`'s forward pass (pre-LN encoder
//! layers, causal attention, erf GELU, final LayerNorm), weights read from the same GGUF file (Q8_0
//! matrices stay Q8_0 on the GPU).
//!
//! # Buffer lifetime
//! [`GpuSequenceTower::load`] lays the forward out once as a `GpuProgram` (`layers.rs`): activation
//! tensors of `max_len` positions (input, residual stream, normed, q, k, v, attention output, FFN
//! hidden, output), one uniform slot and one bind group per dispatch, and a mappable buffer for the
//! user vector. A call writes the session's item vectors and the dispatches' shapes for its length
//! (one `queue.write_buffer` each), records every layer into one compute pass, and submits it with
//! the copy of the last position's output: ONE submission, a readback of `d` values, no buffer or
//! bind group created. Per encoder layer 9 dispatches: LayerNorm, q, k, v, attention, output
//! projection with the residual add fused, LayerNorm, FFN up with GELU fused, FFN down with the
//! residual add fused (the CPU's 11 separate steps; the fused values are rounded as the CPU rounds
//! them, the epilogue applied to the f32 result).
//!
//! The user vector comes back to the CPU before the scan: the int8 query is quantized there
//! (`kernels::QuantizedQuery`). A WGSL quantizer could not promise the same codes: WGSL's division
//! and square root (the unit normalisation, `max|q| / qmax`) are not correctly rounded and a driver
//! may fuse a multiply-add, so a code at a rounding boundary could differ from the CPU's.

use std::sync::Mutex;

use super::context::{GpuContext, Readback};
use super::error::GpuError;
use super::layers::{AttentionShape, Epilogue, GpuLayerNorm, GpuLinear, GpuProgram, GpuTensor, ProgramBuilder};
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
    dim: usize,
    max_len: usize,
    /// The forward over persistent buffers (module docs). Locked from the first write of a call to
    /// its submission, so that concurrent calls do not overwrite each other's inputs.
    forward: Mutex<TowerForward>,
}

/// The laid-out forward and the buffers a call writes and reads.
#[derive(Debug)]
struct TowerForward {
    program: GpuProgram,
    /// `[max_len, d]`: the session's item vectors, then the residual stream.
    input: GpuTensor,
    /// `[max_len, d]`: the final LayerNorm's output.
    output: GpuTensor,
    readback: Readback,
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
            .collect::<Result<Vec<_>, GpuError>>()?;
        let final_norm = norm(&format!("{p}.final_norm"))?;
        let positions = GpuTensor::from_slice(ctx, &positions);
        let forward = lay_out(ctx, config, &positions, &layers, &final_norm)?;
        Ok(GpuSequenceTower { dim: d, max_len: config.max_len, forward: Mutex::new(forward) })
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
        let scope = ctx.scope("sequence tower")?;
        let pending = {
            let forward = self.forward.lock().unwrap_or_else(|e| e.into_inner());
            ctx.queue.write_buffer(forward.input.buffer(), 0, bytemuck::cast_slice(items));
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            forward.program.record(ctx, &mut encoder, t)?;
            let last = 4 * ((t - 1) * d) as u64;
            ctx.submit_read(encoder, forward.output.buffer(), last, 4 * d as u64, Some(&forward.readback))
        };
        let bytes = ctx.finish_read(pending).await;
        scope.finish().await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes?))
    }
}

/// The tower's forward laid out over persistent tensors of `max_len` positions (module docs).
fn lay_out(
    ctx: &GpuContext,
    config: &ModelConfig,
    positions: &GpuTensor,
    layers: &[GpuEncoderLayer],
    final_norm: &GpuLayerNorm,
) -> Result<TowerForward, GpuError> {
    let (d, f) = (config.dim, config.ffn_dim);
    let mut b = ProgramBuilder::new(ctx, config.max_len);
    let (x, normed, output) = (b.tensor(d), b.tensor(d), b.tensor(d));
    let (q, k, v, mixed, hidden) = (b.tensor(d), b.tensor(d), b.tensor(d), b.tensor(d), b.tensor(f));
    let attention = AttentionShape { rows: config.max_len, dim: d, heads: config.num_heads, causal: true };
    b.add(&x, positions, d)?;
    for layer in layers {
        b.layer_norm(&layer.attention_norm, &x, &normed)?;
        b.linear(&layer.query, &normed, &q, Epilogue::Store)?;
        b.linear(&layer.key, &normed, &k, Epilogue::Store)?;
        b.linear(&layer.value, &normed, &v, Epilogue::Store)?;
        b.attention(&q, &k, &v, &mixed, attention)?;
        b.linear(&layer.output, &mixed, &x, Epilogue::Add)?;
        b.layer_norm(&layer.ffn_norm, &x, &normed)?;
        b.linear(&layer.ffn_up, &normed, &hidden, Epilogue::Gelu)?;
        b.linear(&layer.ffn_down, &hidden, &x, Epilogue::Add)?;
    }
    b.layer_norm(final_norm, &x, &output)?;
    let readback = Readback::new(ctx, "user vector", 4 * d as u64);
    Ok(TowerForward { program: b.finish(), input: x, output, readback })
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
