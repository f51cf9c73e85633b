//! A convolution followed by inference-mode BatchNorm, folded into one convolution with a bias.
//!
//! BatchNorm with running statistics is an affine map per output channel:
//! `γ · (conv(x) − μ) / √(σ² + ε) + β`, so it folds into the weights at load time —
//! `w' = w · γ/√(σ²+ε)`, `b' = β − μ · γ/√(σ²+ε)` — and costs nothing at run time.
//! The fold is computed in f64 so that it adds no rounding of its own beyond the final f32 cast.

use candle_core::{DType, Module, Tensor};

use super::error::Result;
use super::same_pad::Padding;
use super::state_dict::StateDict;

/// BatchNorm ε of the TF EfficientNet-Lite checkpoints (PyTorch's default would be 1e-5).
pub const BATCH_NORM_EPS: f64 = 1e-3;

/// What one convolution looks like: channels, square kernel, stride, and whether it is depthwise.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    /// One filter per channel (`groups == c_in == c_out`).
    pub depthwise: bool,
}

/// Conv (TF SAME padding, no bias) + BatchNorm, folded. Input `[n, c_in, h, w]` →
/// output `[n, c_out, ceil(h/stride), ceil(w/stride)]`.
#[derive(Debug, Clone)]
pub struct ConvBn {
    spec: ConvSpec,
    /// `[c_out, c_in / groups, k, k]`, BatchNorm scale folded in.
    weight: Tensor,
    /// `[1, c_out, 1, 1]`, BatchNorm shift folded in.
    bias: Tensor,
}

impl ConvBn {
    /// Reads `{conv}.weight` and `{bn}.{weight,bias,running_mean,running_var}` and folds them.
    pub fn load(state: &StateDict, conv: &str, bn: &str, spec: ConvSpec) -> Result<Self> {
        let per_group_in = if spec.depthwise { 1 } else { spec.c_in };
        let weight = state.get(&format!("{conv}.weight"), (spec.c_out, per_group_in, spec.kernel, spec.kernel))?;
        let bn_param = |name: &str| state.get(&format!("{bn}.{name}"), spec.c_out);
        let (gamma, beta) = (bn_param("weight")?, bn_param("bias")?);
        let (mean, var) = (bn_param("running_mean")?, bn_param("running_var")?);
        let (weight, bias) = fold_batch_norm(&weight, &gamma, &beta, &mean, &var)?;
        Ok(Self { spec, weight, bias })
    }
}

impl Module for ConvBn {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (x, padding) = Padding::same(h, w, self.spec.kernel, self.spec.stride).apply(x)?;
        let groups = if self.spec.depthwise { self.spec.c_in } else { 1 };
        x.conv2d(&self.weight, padding, self.spec.stride, 1, groups)?.broadcast_add(&self.bias)
    }
}

/// `w · s` and `β − μ · s` with `s = γ / √(σ² + ε)` per output channel; returns the weight in its own
/// shape and the bias as `[1, c_out, 1, 1]`, both f32.
fn fold_batch_norm(
    weight: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let f64_of = |t: &Tensor| t.to_dtype(DType::F64);
    let scale = (f64_of(gamma)? / (f64_of(var)? + BATCH_NORM_EPS)?.sqrt()?)?;
    let c_out = scale.dim(0)?;
    let weight = f64_of(weight)?.broadcast_mul(&scale.reshape((c_out, 1, 1, 1))?)?;
    let bias = (f64_of(beta)? - (f64_of(mean)? * &scale)?)?;
    Ok((weight.to_dtype(DType::F32)?, bias.reshape((1, c_out, 1, 1))?.to_dtype(DType::F32)?))
}

/// ReLU6: `min(max(x, 0), 6)`, the activation of every Lite block (friendlier to quantization than swish).
pub fn relu6(x: &Tensor) -> candle_core::Result<Tensor> {
    x.clamp(0f32, 6f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn folding_equals_conv_then_batch_norm() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 4, 9, 9), &dev)?;
        let w = Tensor::randn(0f32, 0.3, (5, 4, 3, 3), &dev)?;
        let gamma = Tensor::new(&[1.0f32, 0.5, 2.0, -1.0, 0.1], &dev)?;
        let beta = Tensor::new(&[0.0f32, 1.0, -2.0, 0.3, 0.0], &dev)?;
        let mean = Tensor::new(&[0.1f32, -0.2, 0.0, 1.0, 3.0], &dev)?;
        let var = Tensor::new(&[1.0f32, 0.01, 4.0, 0.5, 0.0], &dev)?;
        let (wf, bf) = fold_batch_norm(&w, &gamma, &beta, &mean, &var)?;
        let folded = x.conv2d(&wf, 1, 1, 1, 1)?.broadcast_add(&bf)?;
        let c = |t: &Tensor| t.reshape((1, 5, 1, 1));
        let reference = x
            .conv2d(&w, 1, 1, 1, 1)?
            .broadcast_sub(&c(&mean)?)?
            .broadcast_div(&c(&(var + BATCH_NORM_EPS)?.sqrt()?)?)?
            .broadcast_mul(&c(&gamma)?)?
            .broadcast_add(&c(&beta)?)?;
        let diff = (folded - reference)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "max |folded - reference| = {diff}");
        Ok(())
    }

    #[test]
    fn relu6_clamps_both_ends() -> candle_core::Result<()> {
        let x = Tensor::new(&[-3.0f32, 0.0, 2.5, 6.0, 9.0], &Device::Cpu)?;
        assert_eq!(relu6(&x)?.to_vec1::<f32>()?, vec![0.0, 0.0, 2.5, 6.0, 6.0]);
        Ok(())
    }
}
