//! A 1×1 convolution with its BatchNorm folded in: a matrix product over channels.
//!
//! Written as `[c_out, c_in] × [n, c_in, h·w]` rather than `conv2d`: candle's 1×1 conv path copies the
//! input and the output element by element around the same product, which costs more than the product.
//!
//! The weight can be quantized (candle's GGML block types, e.g. Q8_0) after folding. Blocks run along
//! `c_in`, so a layer whose `c_in` is not a multiple of the block size stays f32.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};

use super::batch_norm::load_folded;
use super::bias_act::{add_bias_activate, Activation};
use super::error::Result;
use super::state_dict::StateDict;

/// 1×1 conv (no bias) + BatchNorm + activation. `[n, c_in, h, w]` → `[n, c_out, h, w]`.
#[derive(Debug, Clone)]
pub struct PointwiseConvBn {
    /// `[c_out, c_in]`, BatchNorm scale folded in.
    weight: Weight,
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
        let weight = Weight::F32(folded.weight.reshape((c_out, c_in))?);
        Ok(Self { weight, bias: folded.bias, activation })
    }

    /// The same layer with its weight stored as `dtype` blocks, or unchanged (still f32) when `c_in` is
    /// not a multiple of the block size or the weight is already quantized.
    pub fn quantized(&self, dtype: GgmlDType) -> Result<Self> {
        let weight = match &self.weight {
            Weight::F32(w) if w.dim(1)? % dtype.block_size() == 0 => {
                Weight::Quantized(QMatMul::from_qtensor(QTensor::quantize(w, dtype)?)?)
            }
            other => other.clone(),
        };
        Ok(Self { weight, ..self.clone() })
    }

    /// Number of weights, and whether they are stored quantized.
    pub fn weight_count(&self) -> (usize, bool) {
        (self.bias.len() * self.weight.c_in(), matches!(self.weight, Weight::Quantized(_)))
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c_in, h, w) = x.dims4()?;
        let c_out = self.bias.len();
        let x = x.reshape((n, c_in, h * w))?;
        let y = match &self.weight {
            Weight::F32(weight) => weight.broadcast_matmul(&x)?,
            // Quantized blocks run along c_in, so the product is taken channels-last: [n, h·w, c_in].
            Weight::Quantized(weight) => {
                weight.forward(&x.transpose(1, 2)?.contiguous()?)?.transpose(1, 2)?.contiguous()?
            }
        };
        let y = y.reshape((n, c_out, h, w))?;
        add_bias_activate(&y, &self.bias, self.activation)?;
        Ok(y)
    }
}

/// A pointwise weight `[c_out, c_in]`, plain or in quantized blocks.
#[derive(Debug, Clone)]
enum Weight {
    F32(Tensor),
    /// `QMatMul` computes `x · wᵀ` with `x` `[.., c_in]`.
    Quantized(QMatMul),
}

impl Weight {
    fn c_in(&self) -> usize {
        match self {
            Weight::F32(w) => w.dims()[1],
            Weight::Quantized(QMatMul::QTensor(q)) => q.shape().dims()[1],
            Weight::Quantized(QMatMul::Tensor(w) | QMatMul::TensorF16(w)) => w.dims()[1],
        }
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
        let layer = PointwiseConvBn {
            weight: Weight::F32(w.clone()),
            bias: vec![0.5; 6],
            activation: Activation::None,
        };
        let reference = x.conv2d(&w.reshape((6, 8, 1, 1))?, 0, 1, 1, 1)?.affine(1.0, 0.5)?;
        let diff = (layer.forward(&x)? - reference)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }

    #[test]
    fn q8_0_stays_close_and_skips_widths_off_the_block() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 64, 3, 5), &dev)?;
        let w = Tensor::randn(0f32, 0.2, (16, 64), &dev)?;
        let layer =
            PointwiseConvBn { weight: Weight::F32(w), bias: vec![0.1; 16], activation: Activation::None };
        let q8 = layer.quantized(GgmlDType::Q8_0).unwrap();
        assert_eq!(q8.weight_count(), (16 * 64, true));
        let (exact, approx) = (layer.forward(&x)?, q8.forward(&x)?);
        assert_eq!(exact.dims(), approx.dims());
        let err = (&exact - &approx)?.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        let scale = exact.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        assert!(err < 0.02 * scale, "rms error {err} vs rms {scale}");

        let narrow = PointwiseConvBn {
            weight: Weight::F32(Tensor::zeros((4, 24), x.dtype(), &dev)?),
            bias: vec![0.0; 4],
            activation: Activation::None,
        };
        assert_eq!(narrow.quantized(GgmlDType::Q8_0).unwrap().weight_count(), (4 * 24, false));
        Ok(())
    }
}
