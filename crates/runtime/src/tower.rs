//! The two towers' inference forward passes on plain `f32` slices (no candle, no autograd), with the
//! weights from a bundle's GGUF files: exactly `omakase::model`'s `SequenceTower` and `ItemTower` in
//! eval mode (pre-LN encoder layers, erf GELU, final LayerNorms), checked against them by the parity
//! tests. Matrix weights stay Q8_0 in memory and go through `kernels::matmul_q8_0`; Q4_0/F16/F32
//! ones are expanded to f32 once at load (`kernels::matmul_f32`).
//!
//! Shapes: activations are row-major `[t, d]` (`t` positions or modality tokens, `d = dim`).

use super::error::RuntimeError;
use super::gguf::{Gguf, GgufTensor, TensorType};
use super::kernels;
use crate::config::{ModelConfig, TextAdaptor};

/// A Linear layer `y = x Wᵀ + b`, W `[n, k]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Vec<f32>,
    n: usize,
    k: usize,
}

#[derive(Debug, Clone)]
enum Weight {
    F32(Vec<f32>),
    /// GGML Q8_0 blocks along `k` (`kernels::q8_0_bytes(n, k)` bytes).
    Q8_0(Vec<u8>),
}

impl Linear {
    /// `{prefix}.weight` `[n, k]` and `{prefix}.bias` `[n]`.
    fn load(gguf: &Gguf, file: &str, prefix: &str, n: usize, k: usize) -> Result<Self, RuntimeError> {
        let name = format!("{prefix}.weight");
        let tensor = gguf.tensor(file, &name)?;
        expect_shape(file, &name, tensor, &[n, k])?;
        let values = finite_values(file, &name, tensor)?;
        let weight = match tensor.dtype {
            TensorType::Q8_0 => Weight::Q8_0(tensor.data.to_vec()),
            _ => Weight::F32(values),
        };
        let bias = vector(gguf, file, &format!("{prefix}.bias"), n)?;
        Ok(Linear { weight, bias, n, k })
    }

    /// `x: [t, k]` → `[t, n]`.
    pub fn forward(&self, x: &[f32], t: usize) -> Vec<f32> {
        let mut out = vec![0f32; t * self.n];
        match &self.weight {
            Weight::F32(w) => kernels::matmul_f32(x, t, w, self.n, self.k, &mut out),
            Weight::Q8_0(w) => kernels::matmul_q8_0(x, t, w, self.n, self.k, &mut out),
        }
        for row in out.chunks_exact_mut(self.n) {
            row.iter_mut().zip(&self.bias).for_each(|(y, b)| *y += b);
        }
        out
    }
}

/// LayerNorm over the last dimension.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(gguf: &Gguf, file: &str, prefix: &str, d: usize, eps: f64) -> Result<Self, RuntimeError> {
        Ok(LayerNorm {
            weight: vector(gguf, file, &format!("{prefix}.weight"), d)?,
            bias: vector(gguf, file, &format!("{prefix}.bias"), d)?,
            eps: eps as f32,
        })
    }

    /// Normalises every row of `x` (`[t, d]`) into a new buffer.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let d = self.weight.len();
        let mut out = x.to_vec();
        for row in out.chunks_exact_mut(d) {
            // Two passes in f32, as candle's fused layer_norm (mean, then centred variance).
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * w + b;
            }
        }
        out
    }
}

/// Which keys a query position may attend to.
#[derive(Debug, Clone, Copy)]
pub enum Mask {
    /// Position `i` sees `0..=i` (the sequence tower).
    Causal,
    /// Every position sees every other (the item tower over its present modality tokens).
    Full,
}

/// One pre-LN encoder layer: `x + Attn(LN(x))`, then `x + FFN(LN(x))`.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    attention_norm: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    ffn_norm: LayerNorm,
    ffn_up: Linear,
    ffn_down: Linear,
    heads: usize,
}

impl EncoderLayer {
    fn load(gguf: &Gguf, file: &str, prefix: &str, config: &ModelConfig) -> Result<Self, RuntimeError> {
        let (d, eps) = (config.dim, config.layer_norm_eps);
        let linear = |name: &str, n, k| Linear::load(gguf, file, &format!("{prefix}.{name}"), n, k);
        Ok(EncoderLayer {
            attention_norm: LayerNorm::load(gguf, file, &format!("{prefix}.attention_norm"), d, eps)?,
            query: linear("attention.query", d, d)?,
            key: linear("attention.key", d, d)?,
            value: linear("attention.value", d, d)?,
            output: linear("attention.output", d, d)?,
            ffn_norm: LayerNorm::load(gguf, file, &format!("{prefix}.ffn_norm"), d, eps)?,
            ffn_up: linear("ffn.up", config.ffn_dim, d)?,
            ffn_down: linear("ffn.down", d, config.ffn_dim)?,
            heads: config.num_heads,
        })
    }

    /// `x: [t, d]` in place.
    pub fn forward(&self, x: &mut [f32], t: usize, mask: Mask) {
        let d = self.query.n;
        let normed = self.attention_norm.forward(x);
        let attended = self.output.forward(&self.attend(&normed, t, mask), t);
        x.iter_mut().zip(&attended).for_each(|(x, a)| *x += a);
        let normed = self.ffn_norm.forward(x);
        let mut hidden = self.ffn_up.forward(&normed, t);
        hidden.iter_mut().for_each(|v| *v = gelu_erf(*v));
        let fed = self.ffn_down.forward(&hidden, t);
        x.iter_mut().zip(&fed).for_each(|(x, f)| *x += f);
        debug_assert_eq!(x.len(), t * d);
    }

    /// Multi-head scaled dot-product attention, heads concatenated: `[t, d]` → `[t, d]`.
    fn attend(&self, x: &[f32], t: usize, mask: Mask) -> Vec<f32> {
        let d = self.query.n;
        let head_dim = d / self.heads;
        let (q, k, v) = (self.query.forward(x, t), self.key.forward(x, t), self.value.forward(x, t));
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut mixed = vec![0f32; t * d];
        let mut weights = vec![0f32; t];
        for h in 0..self.heads {
            let cols = h * head_dim..(h + 1) * head_dim;
            for i in 0..t {
                let visible = match mask {
                    Mask::Causal => i + 1,
                    Mask::Full => t,
                };
                let qi = &q[i * d..][cols.clone()];
                for (j, w) in weights[..visible].iter_mut().enumerate() {
                    *w = qi.iter().zip(&k[j * d..][cols.clone()]).map(|(a, b)| a * b).sum::<f32>() * scale;
                }
                softmax(&mut weights[..visible]);
                let out = &mut mixed[i * d..][cols.clone()];
                for (j, w) in weights[..visible].iter().enumerate() {
                    out.iter_mut().zip(&v[j * d..][cols.clone()]).for_each(|(o, v)| *o += w * v);
                }
            }
        }
        mixed
    }
}

fn softmax(xs: &mut [f32]) {
    let max = xs.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in xs.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    xs.iter_mut().for_each(|v| *v /= sum);
}

/// GELU with erf (BERT's, candle's `gelu_erf`).
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The sequence tower: item vectors of a session (oldest first) → user vector.
/// Tensors (GGUF `sequence_tower.gguf`): `sequence_tower.position_embedding` `[max_len, d]`,
/// `sequence_tower.layers.{i}.*`, `sequence_tower.final_norm.*`.
#[derive(Debug, Clone)]
pub struct SequenceTower {
    positions: Vec<f32>,
    layers: Vec<EncoderLayer>,
    final_norm: LayerNorm,
    dim: usize,
    max_len: usize,
}

impl SequenceTower {
    pub fn load(gguf: &Gguf, file: &str, config: &ModelConfig) -> Result<Self, RuntimeError> {
        let p = "sequence_tower";
        let name = format!("{p}.position_embedding");
        let positions = gguf.tensor(file, &name)?;
        expect_shape(file, &name, positions, &[config.max_len, config.dim])?;
        Ok(SequenceTower {
            positions: finite_values(file, &name, positions)?,
            layers: (0..config.num_layers)
                .map(|i| EncoderLayer::load(gguf, file, &format!("{p}.layers.{i}"), config))
                .collect::<Result<_, _>>()?,
            final_norm: LayerNorm::load(gguf, file, &format!("{p}.final_norm"), config.dim, config.layer_norm_eps)?,
            dim: config.dim,
            max_len: config.max_len,
        })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// `items: [t, d]` with `1 ≤ t ≤ max_len` (the caller keeps the last `max_len`) → the user
    /// vector `[d]` (the output at the last position).
    pub fn user_vector(&self, items: &[f32]) -> Vec<f32> {
        let d = self.dim;
        let t = items.len() / d;
        debug_assert!(t >= 1 && t <= self.max_len && items.len() == t * d);
        let mut x: Vec<f32> = items.iter().zip(&self.positions).map(|(v, p)| v + p).collect();
        for layer in &self.layers {
            layer.forward(&mut x, t, Mask::Causal);
        }
        // Only the last position's output is read: normalise just that row.
        self.final_norm.forward(&x[(t - 1) * d..])
    }
}

/// UniSRec's whitening + mixture-of-experts text adaptor (`omakase::model::MoeAdaptor`, whose
/// documentation gives the formula): `Σ_e g_e ((x − b_e) W_eᵀ + a_e)`, `g = softmax(x W_gᵀ + c_g)`.
/// Tensors: `{prefix}.whitening` `[E, k]`, `{prefix}.experts.{weight,bias}` `[E·d, k]`, `[E·d]`,
/// `{prefix}.gate.{weight,bias}` `[E, k]`, `[E]`.
#[derive(Debug, Clone)]
pub struct MoeAdaptor {
    experts: Linear,
    gate: Linear,
    /// `b_e W_eᵀ` of every expert, `[E·d]`, computed once at load with the stored (possibly
    /// quantized) experts, so the forward is one product: `x Wᵀ + a − shift`.
    shift: Vec<f32>,
    k: usize,
}

impl MoeAdaptor {
    fn load(gguf: &Gguf, file: &str, prefix: &str, d: usize, k: usize, n_experts: usize) -> Result<Self, RuntimeError> {
        let experts = Linear::load(gguf, file, &format!("{prefix}.experts"), n_experts * d, k)?;
        let gate = Linear::load(gguf, file, &format!("{prefix}.gate"), n_experts, k)?;
        let name = format!("{prefix}.whitening");
        let whitening = gguf.tensor(file, &name)?;
        expect_shape(file, &name, whitening, &[n_experts, k])?;
        let whitening = finite_values(file, &name, whitening)?;
        // Row e of experts(whitening) is b_e Wᵀ + a over all E·d outputs; expert e's own block,
        // less the bias, is its shift.
        let all = experts.forward(&whitening, n_experts);
        let shift = (0..n_experts)
            .flat_map(|e| {
                let block = e * d..(e + 1) * d;
                let row = &all[e * n_experts * d..(e + 1) * n_experts * d];
                row[block.clone()].iter().zip(&experts.bias[block]).map(|(y, a)| y - a).collect::<Vec<_>>()
            })
            .collect();
        Ok(MoeAdaptor { experts, gate, shift, k })
    }

    /// `x: [k]` → `[d]`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let n_experts = self.gate.n;
        let d = self.experts.n / n_experts;
        let mut gate = self.gate.forward(x, 1);
        softmax(&mut gate);
        let outputs = self.experts.forward(x, 1);
        let mut out = vec![0f32; d];
        for (e, g) in gate.iter().enumerate() {
            let block = e * d..(e + 1) * d;
            for ((o, y), s) in out.iter_mut().zip(&outputs[block.clone()]).zip(&self.shift[block]) {
                *o += g * (y - s);
            }
        }
        out
    }
}

/// The map from the text feature to `d` before the text LayerNorm (`ModelConfig::text_adaptor`).
#[derive(Debug, Clone)]
enum TextInput {
    Linear(Linear),
    Moe(MoeAdaptor),
}

impl TextInput {
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        match self {
            TextInput::Linear(linear) => linear.forward(x, 1),
            TextInput::Moe(adaptor) => adaptor.forward(x),
        }
    }

    fn in_dim(&self) -> usize {
        match self {
            TextInput::Linear(linear) => linear.k,
            TextInput::Moe(adaptor) => adaptor.k,
        }
    }
}

/// The item tower: frozen text / image features → item vector (for products not in the bundle).
/// Tensors (GGUF `item_tower.gguf`): `item_tower.{text,image}_projection.*` (with the `moe` text
/// adaptor, `item_tower.text_adaptor.*` instead of `text_projection`: see [`MoeAdaptor`]),
/// `item_tower.{text,image}_norm.*`, `item_tower.modality_embedding` `[2, d]`,
/// `item_tower.fusion.{i}.*`, `item_tower.output_norm.*`.
#[derive(Debug, Clone)]
pub struct ItemTower {
    text_projection: TextInput,
    text_norm: LayerNorm,
    image_projection: Linear,
    image_norm: LayerNorm,
    modality_embedding: Vec<f32>,
    fusion: Vec<EncoderLayer>,
    output_norm: LayerNorm,
    dim: usize,
}

impl ItemTower {
    pub fn load(gguf: &Gguf, file: &str, config: &ModelConfig) -> Result<Self, RuntimeError> {
        let p = "item_tower";
        let (d, eps) = (config.dim, config.layer_norm_eps);
        let name = format!("{p}.modality_embedding");
        let modality = gguf.tensor(file, &name)?;
        expect_shape(file, &name, modality, &[2, d])?;
        Ok(ItemTower {
            text_projection: match config.text_adaptor {
                TextAdaptor::Linear => {
                    TextInput::Linear(Linear::load(gguf, file, &format!("{p}.text_projection"), d, config.text_dim)?)
                }
                TextAdaptor::Moe => TextInput::Moe(MoeAdaptor::load(
                    gguf,
                    file,
                    &format!("{p}.text_adaptor"),
                    d,
                    config.text_dim,
                    config.adaptor_experts,
                )?),
            },
            text_norm: LayerNorm::load(gguf, file, &format!("{p}.text_norm"), d, eps)?,
            image_projection: Linear::load(gguf, file, &format!("{p}.image_projection"), d, config.image_dim)?,
            image_norm: LayerNorm::load(gguf, file, &format!("{p}.image_norm"), d, eps)?,
            modality_embedding: finite_values(file, &name, modality)?,
            fusion: (0..config.fusion_layers)
                .map(|i| EncoderLayer::load(gguf, file, &format!("{p}.fusion.{i}"), config))
                .collect::<Result<_, _>>()?,
            output_norm: LayerNorm::load(gguf, file, &format!("{p}.output_norm"), d, eps)?,
            dim: d,
        })
    }

    pub fn text_dim(&self) -> usize {
        self.text_projection.in_dim()
    }

    pub fn image_dim(&self) -> usize {
        self.image_projection.k
    }

    /// The item vector `[d]` of one item from whichever features it has (widths checked by the
    /// caller; at least one present). An absent modality has no influence at all, as in training:
    /// the fusion runs over the present tokens only (absent keys get zero attention weight there).
    pub fn forward(&self, text: Option<&[f32]>, image: Option<&[f32]>) -> Vec<f32> {
        let d = self.dim;
        let mut tokens = Vec::with_capacity(2 * d);
        let mut token = |projected: Vec<f32>, norm: &LayerNorm, modality: usize| {
            let projected = norm.forward(&projected);
            let kind = &self.modality_embedding[modality * d..(modality + 1) * d];
            tokens.extend(projected.iter().zip(kind).map(|(v, k)| v + k));
        };
        if let Some(text) = text {
            token(self.text_projection.forward(text), &self.text_norm, 0);
        }
        if let Some(image) = image {
            token(self.image_projection.forward(image, 1), &self.image_norm, 1);
        }
        let t = tokens.len() / d;
        for layer in &self.fusion {
            layer.forward(&mut tokens, t, Mask::Full);
        }
        let mut fused = vec![f32::NEG_INFINITY; d];
        for row in tokens.chunks_exact(d) {
            fused.iter_mut().zip(row).for_each(|(m, v)| *m = m.max(*v));
        }
        self.output_norm.forward(&fused)
    }
}

fn expect_shape(file: &str, name: &str, tensor: &GgufTensor, dims: &[usize]) -> Result<(), RuntimeError> {
    if tensor.dims != dims {
        return Err(RuntimeError::tensor(
            file,
            name,
            format!("shape {:?}, the manifest's model needs {dims:?}", tensor.dims),
        ));
    }
    Ok(())
}

fn vector(gguf: &Gguf, file: &str, name: &str, n: usize) -> Result<Vec<f32>, RuntimeError> {
    let tensor = gguf.tensor(file, name)?;
    expect_shape(file, name, tensor, &[n])?;
    finite_values(file, name, tensor)
}

/// The tensor's values as f32 (dequantized), refusing NaN and infinity with the file and tensor
/// named: one non-finite weight otherwise made every answer fail as "user vector: need 64 finite
/// values" (or printed `norm NaN`), naming nothing.
fn finite_values(file: &str, name: &str, tensor: &GgufTensor) -> Result<Vec<f32>, RuntimeError> {
    let values = tensor.to_f32();
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(values),
        Some(i) => {
            Err(RuntimeError::tensor(file, name, format!("value {i} is {} (weights must be finite)", values[i])))
        }
    }
}
