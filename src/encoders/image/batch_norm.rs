//! Inference-mode BatchNorm folded into the convolution before it.
//!
//! With running statistics BatchNorm is an affine map per output channel,
//! `γ · (conv(x) − μ) / √(σ² + ε) + β`, so it folds into the weights at load time —
//! `w' = w · γ/√(σ²+ε)`, `b' = β − μ · γ/√(σ²+ε)` — and costs nothing at run time.
//! The fold is computed in f64 so that it adds no rounding of its own beyond the final f32 cast.

use candle_core::{DType, Tensor};

use super::error::Result;
use super::state_dict::StateDict;

/// BatchNorm ε of the TF EfficientNet-Lite checkpoints (PyTorch's default would be 1e-5).
pub const BATCH_NORM_EPS: f64 = 1e-3;

/// A convolution weight with its BatchNorm folded in.
#[derive(Debug, Clone)]
pub struct Folded {
    /// `[c_out, c_in / groups, k, k]` f32.
    pub weight: Tensor,
    /// `[c_out]` f32.
    pub bias: Vec<f32>,
}

/// Reads `{conv}.weight` (checked to be `weight_shape`, output channels first) and
/// `{bn}.{weight,bias,running_mean,running_var}`, and folds them.
pub fn load_folded(
    state: &StateDict,
    conv: &str,
    bn: &str,
    weight_shape: (usize, usize, usize, usize),
) -> Result<Folded> {
    let c_out = weight_shape.0;
    let weight = state.get(&format!("{conv}.weight"), weight_shape)?;
    let bn_param = |name: &str| state.get(&format!("{bn}.{name}"), c_out);
    let (gamma, beta) = (bn_param("weight")?, bn_param("bias")?);
    let (mean, var) = (bn_param("running_mean")?, bn_param("running_var")?);
    let (weight, bias) = fold(&weight, &gamma, &beta, &mean, &var)?;
    Ok(Folded { weight, bias: bias.to_vec1()? })
}

/// `w · s` and `β − μ · s` with `s = γ / √(σ² + ε)` per output channel, both f32.
fn fold(
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
    Ok((weight.to_dtype(DType::F32)?, bias.to_dtype(DType::F32)?))
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
        let (wf, bf) = fold(&w, &gamma, &beta, &mean, &var)?;
        let c = |t: &Tensor| t.reshape((1, 5, 1, 1));
        let folded = x.conv2d(&wf, 1, 1, 1, 1)?.broadcast_add(&c(&bf)?)?;
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
}
