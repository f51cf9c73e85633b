//! A dense k×k convolution with TF SAME padding and its BatchNorm folded in (the stem), one image at a
//! time: every output pixel's k×k patch as one row of `[out_h·out_w, c_in·k·k]` (im2col, the padding as
//! zeros), then one product `patches × weightᵀ` straight into the channels-last output the rest of the
//! network works in, then bias and activation in one pass (candle's conv2d takes the same route, with
//! copies back to NCHW around it).

use super::batch_norm::{load_folded, Folded};
use super::bias_act::{add_bias_activate, Activation};
use super::error::Result;
use super::same_pad::same_padding;
use super::state_dict::StateDict;
use crate::encoders::kernels::matmul::{matmul, MatMut, MatRef, Threads};

/// Conv (no bias) + BatchNorm + activation. `[c_in, h, w]` (NCHW, the network input) →
/// `[ceil(h/s), ceil(w/s), c_out]` (channels-last) per image.
#[derive(Debug, Clone)]
pub struct ConvBn {
    /// `[c_in·k·k, c_out]` (rows in PyTorch's (c_in, ky, kx) order), BatchNorm scale folded in; the
    /// transpose of PyTorch's layout, which `gemm` reads without packing.
    pub(super) weight_t: Vec<f32>,
    /// `[c_out]`, BatchNorm shift folded in.
    pub(super) bias: Vec<f32>,
    pub(super) c_in: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) activation: Activation,
}

impl ConvBn {
    /// Reads `{conv}.weight` `[c_out, c_in, k, k]` and the BatchNorm `{bn}.*`.
    pub fn load(
        state: &StateDict,
        (conv, bn): (&str, &str),
        (c_in, c_out, kernel, stride): (usize, usize, usize, usize),
        activation: Activation,
    ) -> Result<Self> {
        let Folded { weight, bias } = load_folded(state, conv, bn, (c_out, c_in, kernel, kernel))?;
        let weight_t = weight.reshape((c_out, c_in * kernel * kernel))?.t()?.flatten_all()?.to_vec1()?;
        Ok(Self { weight_t, bias, c_in, kernel, stride, activation })
    }

    /// Output size for an `h × w` input.
    pub fn output_size(&self, (h, w): (usize, usize)) -> (usize, usize) {
        (h.div_ceil(self.stride), w.div_ceil(self.stride))
    }

    /// One image: `x` `[c_in, h, w]` → `out` `[out_h, out_w, c_out]` (resized); `patches` is scratch.
    pub fn forward(
        &self,
        x: &[f32],
        (h, w): (usize, usize),
        out: &mut Vec<f32>,
        patches: &mut Vec<f32>,
        threads: Threads,
    ) -> candle_core::Result<()> {
        if x.len() != self.c_in * h * w {
            candle_core::bail!("conv of {} channels given {} values for {h}x{w}", self.c_in, x.len());
        }
        let (k, s) = (self.kernel, self.stride);
        let (out_h, out_w) = self.output_size((h, w));
        let (pad_top, pad_left) = (same_padding(h, k, s).0, same_padding(w, k, s).0);
        patches.clear();
        for oy in 0..out_h {
            for ox in 0..out_w {
                for channel in x.chunks_exact(h * w) {
                    for ky in 0..k {
                        let iy = (oy * s + ky).checked_sub(pad_top).filter(|&iy| iy < h);
                        patches.extend((0..k).map(|kx| {
                            let ix = (ox * s + kx).checked_sub(pad_left).filter(|&ix| ix < w);
                            iy.zip(ix).map_or(0.0, |(iy, ix)| channel[iy * w + ix])
                        }));
                    }
                }
            }
        }
        let (c_out, depth, pixels) = (self.bias.len(), self.c_in * k * k, out_h * out_w);
        out.resize(pixels * c_out, 0.0);
        let weight_t = MatRef::new(&self.weight_t, depth, c_out, c_out);
        let patches = MatRef::new(patches, pixels, depth, depth);
        matmul(MatMut::new(out, pixels, c_out, c_out), patches, weight_t, false, 1.0, threads);
        add_bias_activate(out, &self.bias, &[], self.activation);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::image::same_pad::Padding;
    use candle_core::{Device, Tensor};

    #[test]
    fn equals_candles_conv2d_with_same_padding() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (h, w, stride) in [(9, 9, 2), (8, 11, 2), (6, 5, 1)] {
            let weight = Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev)?;
            let bias = vec![0.5, -0.5, 0.0, 1.0];
            let layer = ConvBn {
                weight_t: weight.reshape((4, 27))?.t()?.flatten_all()?.to_vec1()?,
                bias: bias.clone(),
                c_in: 3,
                kernel: 3,
                stride,
                activation: Activation::Relu6,
            };
            let x = Tensor::randn(0f32, 1.0, (1, 3, h, w), &dev)?;
            let (padded, p) = Padding::same(h, w, 3, stride).apply(&x)?;
            let bias = Tensor::from_vec(bias, (1, 4, 1, 1), &dev)?;
            let want = padded.conv2d(&weight, p, stride, 1, 1)?.broadcast_add(&bias)?.clamp(0f32, 6f32)?;
            let (mut got, mut scratch) = (Vec::new(), Vec::new());
            layer.forward(&x.flatten_all()?.to_vec1()?, (h, w), &mut got, &mut scratch, Threads::One)?;
            let (oh, ow) = layer.output_size((h, w));
            let got = Tensor::from_vec(got, (oh, ow, 4), &dev)?.permute((2, 0, 1))?.unsqueeze(0)?;
            let diff = (got - want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{h}x{w} s{stride}: {diff}");
        }
        Ok(())
    }
}
