//! A 1×1 convolution with its BatchNorm folded in: a matrix product over channels.
//!
//! One image at a time, channels-last: `[h·w, c_in] × [c_in, c_out]` straight into the output, then
//! bias, residual and activation in one pass: no copies around the product (candle's 1×1 conv copies the input and the output element by element
//! around the same product, which cost more than the product).
//!
//! The weight can be quantized (GGML block types, e.g. Q8_0) after folding. Blocks run along `c_in`,
//! so a layer whose `c_in` is not a multiple of the block size stays f32. The quantized values are
//! expanded back to f32 at once and multiplied by the same kernel, as the text encoder's Linear layers
//! do (`encoders::text::linear` says why: candle's block kernels were slower, natively and in wasm).

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::batch_norm::load_folded;
use super::bias_act::{add_bias_activate, Activation};
use super::error::Result;
use super::state_dict::StateDict;
use crate::encoders::kernels::matmul::{matmul, MatMut, MatRef, Threads};

/// 1×1 conv (no bias) + BatchNorm + activation. `[h·w, c_in]` → `[h·w, c_out]` per image.
#[derive(Debug, Clone)]
pub struct PointwiseConvBn {
    /// `[c_in, c_out]` f32, BatchNorm scale folded in: the transpose of PyTorch's, because `gemm` reads
    /// the weight this way without packing it (measured: packing was 13% of the network's time).
    pub(super) weight_t: Vec<f32>,
    /// `[c_out]`, BatchNorm shift folded in.
    pub(super) bias: Vec<f32>,
    pub(super) c_in: usize,
    pub(super) activation: Activation,
    /// The block type the weight was quantized to, if it was.
    quantized: Option<GgmlDType>,
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
        let weight_t = folded.weight.reshape((c_out, c_in))?.t()?.flatten_all()?.to_vec1()?;
        Ok(Self { weight_t, bias: folded.bias, c_in, activation, quantized: None })
    }

    /// From weights already folded: `weight_t` `[c_in, c_out]`, `bias` `[c_out]` (the GPU kernel tests
    /// build their CPU reference layers this way).
    #[cfg(feature = "gpu")]
    pub(super) fn from_folded(weight_t: Vec<f32>, bias: Vec<f32>, c_in: usize, activation: Activation) -> Self {
        Self { weight_t, bias, c_in, activation, quantized: None }
    }

    /// The same layer with its weight quantized to `dtype` blocks, or unchanged (still f32) when `c_in` is
    /// not a multiple of the block size or the weight is already quantized.
    pub fn quantized(&self, dtype: GgmlDType) -> Result<Self> {
        if self.quantized.is_some() || self.c_in % dtype.block_size() != 0 {
            return Ok(self.clone());
        }
        let weight = Tensor::from_slice(&self.weight_t, (self.c_in, self.c_out()), &Device::Cpu)?.t()?.contiguous()?;
        let blocks = QTensor::quantize(&weight, dtype)?;
        let weight_t = blocks.dequantize(&Device::Cpu)?.t()?.flatten_all()?.to_vec1()?;
        Ok(Self { weight_t, quantized: Some(dtype), ..self.clone() })
    }

    fn c_out(&self) -> usize {
        self.bias.len()
    }

    /// Number of weights, and whether they were quantized.
    pub fn weight_count(&self) -> (usize, bool) {
        (self.c_out() * self.c_in, self.quantized.is_some())
    }

    /// One image: `x` `[pixels, c_in]` → `out` `[pixels, c_out]` (resized), plus `residual` (`[pixels,
    /// c_out]`) when given, before the activation (the MBConv skip: (conv + bias) + input).
    pub fn forward(
        &self,
        x: &[f32],
        pixels: usize,
        residual: Option<&[f32]>,
        out: &mut Vec<f32>,
        threads: Threads,
    ) -> candle_core::Result<()> {
        if x.len() != self.c_in * pixels {
            candle_core::bail!("pointwise conv of {} channels given {} values for {pixels} pixels", self.c_in, x.len());
        }
        out.resize(pixels * self.c_out(), 0.0);
        let weight_t = MatRef::new(&self.weight_t, self.c_in, self.c_out(), self.c_out());
        let x = MatRef::new(x, pixels, self.c_in, self.c_in);
        matmul(MatMut::new(out, pixels, self.c_out(), self.c_out()), x, weight_t, false, 1.0, threads);
        add_bias_activate(out, &self.bias, residual.unwrap_or(&[]), self.activation);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(weight: &Tensor, bias: Vec<f32>, activation: Activation) -> PointwiseConvBn {
        let c_in = weight.dim(1).unwrap();
        let weight_t = weight.t().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        PointwiseConvBn { weight_t, bias, c_in, activation, quantized: None }
    }

    /// Through the layer, NCHW in and out (one image: `[c, h, w]`).
    fn run(layer: &PointwiseConvBn, x: &Tensor, residual: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (c_in, h, w) = x.dims3()?;
        assert_eq!(c_in, layer.c_in);
        let channels_last = |t: &Tensor| t.permute((1, 2, 0))?.flatten_all()?.to_vec1::<f32>();
        let residual = residual.map(channels_last).transpose()?;
        let mut out = vec![];
        layer.forward(&channels_last(x)?, h * w, residual.as_deref(), &mut out, Threads::All)?;
        Tensor::from_vec(out, (h, w, layer.c_out()), &Device::Cpu)?.permute((2, 0, 1))
    }

    #[test]
    fn equals_a_one_by_one_conv2d_plus_residual() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (8, 5, 7), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (6, 8), &dev)?;
        let residual = Tensor::randn(0f32, 1.0, (6, 5, 7), &dev)?;
        let conv = x.unsqueeze(0)?.conv2d(&w.reshape((6, 8, 1, 1))?, 0, 1, 1, 1)?.squeeze(0)?;
        let reference = ((conv.affine(1.0, 0.5)? + &residual)?).clamp(0f32, 6f32)?;
        let got = run(&layer(&w, vec![0.5; 6], Activation::Relu6), &x, Some(&residual))?;
        let diff = (got - reference)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{diff}");
        Ok(())
    }

    #[test]
    fn q8_0_stays_close_and_skips_widths_off_the_block() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (64, 3, 5), &dev)?;
        let w = Tensor::randn(0f32, 0.2, (16, 64), &dev)?;
        let exact_layer = layer(&w, vec![0.1; 16], Activation::None);
        let q8 = exact_layer.quantized(GgmlDType::Q8_0).unwrap();
        assert_eq!(q8.weight_count(), (16 * 64, true));
        let (exact, approx) = (run(&exact_layer, &x, None)?, run(&q8, &x, None)?);
        assert_eq!(exact.dims(), approx.dims());
        let err = (&exact - &approx)?.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        let scale = exact.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        assert!(err > 0.0 && err < 0.02 * scale, "rms error {err} vs rms {scale}");

        let narrow = layer(&Tensor::zeros((4, 24), x.dtype(), &dev)?, vec![0.0; 4], Activation::None);
        assert_eq!(narrow.quantized(GgmlDType::Q8_0).unwrap().weight_count(), (4 * 24, false));
        Ok(())
    }
}
