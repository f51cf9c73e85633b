//! A 1×1 convolution with its BatchNorm folded in: a matrix product over channels.
//!
//! Written as `[c_out, c_in] × [n, c_in, h·w]` rather than `conv2d`: candle's 1×1 conv path copies the
//! input and the output element by element around the same product, which costs more than the product.

use candle_core::Tensor;

use super::batch_norm::load_folded;
use super::bias_act::{add_bias_activate, Activation};
use super::error::Result;
use super::state_dict::StateDict;

/// 1×1 conv (no bias) + BatchNorm + activation. `[n, c_in, h, w]` → `[n, c_out, h, w]`.
#[derive(Debug, Clone)]
pub struct PointwiseConvBn {
    /// `[c_out, c_in]`, BatchNorm scale folded in.
    weight: Tensor,
    /// `[c_out]`, BatchNorm shift folded in.
    bias: Vec<f32>,
    activation: Activation,
}

impl PointwiseConvBn {
    /// Reads `{conv}.weight` `[c_out, c_in, 1, 1]` and the BatchNorm `{bn}.*`.
    pub fn load(
        state: &StateDict,
        (conv, bn): (&str, &str),
        (c_in, c_out): (usize, usize),
        activation: Activation,
    ) -> Result<Self> {
        let folded = load_folded(state, conv, bn, (c_out, c_in, 1, 1))?;
        Ok(Self { weight: folded.weight.reshape((c_out, c_in))?, bias: folded.bias, activation })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c_in, h, w) = x.dims4()?;
        let c_out = self.bias.len();
        let y = self.weight.broadcast_matmul(&x.reshape((n, c_in, h * w))?)?.reshape((n, c_out, h, w))?;
        add_bias_activate(&y, &self.bias, self.activation)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn equals_a_one_by_one_conv2d() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (3, 8, 5, 7), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (6, 8), &dev)?;
        let layer = PointwiseConvBn { weight: w.clone(), bias: vec![0.5; 6], activation: Activation::None };
        let reference = x.conv2d(&w.reshape((6, 8, 1, 1))?, 0, 1, 1, 1)?.affine(1.0, 0.5)?;
        let diff = (layer.forward(&x)? - reference)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }
}
