//! Depthwise k×k convolution (one filter per channel) with TF SAME padding, folded BatchNorm and ReLU6,
//! fused in one CPU kernel, channels-last.
//!
//! Hand-written because candle's grouped `conv2d` runs one separate convolution per group: for the
//! 1152-channel layers of Lite0 that is 1152 convolutions (with their copies and a final concat) per
//! layer, and it made the whole network about 6× slower than all its other layers together. Channels-last,
//! every output pixel is a run of channels that vectorises whatever the stride and the width of the
//! map: its accumulators stay in registers over the k×k taps (32 channels at a time), and each tap is a
//! contiguous load of inputs and of weights. (A plane-by-plane kernel, NCHW, spent most of its time on
//! the 7- and 14-wide rows of the late layers and on reloading its output row for every tap.)
//! Zero padding is handled by clipping the tap loops, never by reading outside the input.

use rayon::prelude::*;

use super::batch_norm::{load_folded, Folded};
use super::error::Result;
use super::same_pad::same_padding;
use super::state_dict::StateDict;
use crate::encoders::kernels::multiversion;

/// Depthwise conv (no bias) + BatchNorm + ReLU6. `[h, w, c]` → `[ceil(h/s), ceil(w/s), c]` per image.
#[derive(Debug, Clone)]
pub struct DepthwiseConvBn {
    /// `[k·k, c]`: for each tap (row-major), its weight for every channel, BatchNorm scale folded in.
    pub(super) taps: Vec<f32>,
    /// `[c]`, BatchNorm shift folded in.
    pub(super) bias: Vec<f32>,
    pub(super) kernel: usize,
    pub(super) stride: usize,
}

impl DepthwiseConvBn {
    /// Reads `{conv}.weight` `[c, 1, k, k]` and the BatchNorm `{bn}.*`.
    pub fn load(
        state: &StateDict,
        (conv, bn): (&str, &str),
        (channels, kernel, stride): (usize, usize, usize),
    ) -> Result<Self> {
        let Folded { weight, bias } = load_folded(state, conv, bn, (channels, 1, kernel, kernel))?;
        let taps = weight.reshape((channels, kernel * kernel))?.t()?.flatten_all()?.to_vec1()?;
        Ok(Self { taps, bias, kernel, stride })
    }

    /// Output size for an `h × w` input.
    pub fn output_size(&self, (h, w): (usize, usize)) -> (usize, usize) {
        (h.div_ceil(self.stride), w.div_ceil(self.stride))
    }

    /// One image: `x` `[h, w, c]` → `out` `[ceil(h/s), ceil(w/s), c]` (resized). `parallel`: split the
    /// output rows across cores (for a lone image; a batch runs its images side by side instead).
    pub fn forward(
        &self,
        x: &[f32],
        (h, w): (usize, usize),
        out: &mut Vec<f32>,
        parallel: bool,
    ) -> candle_core::Result<()> {
        let channels = self.bias.len();
        if x.len() != channels * h * w {
            candle_core::bail!("depthwise conv of {channels} channels given {} values for {h}x{w}", x.len());
        }
        let (out_h, out_w) = self.output_size((h, w));
        let g = Geometry {
            kernel: self.kernel,
            stride: self.stride,
            in_h: h,
            in_w: w,
            out_w,
            pad_top: same_padding(h, self.kernel, self.stride).0,
            pad_left: same_padding(w, self.kernel, self.stride).0,
        };
        out.resize(out_h * out_w * channels, 0.0);
        let row = out_w * channels;
        if parallel {
            out.par_chunks_mut(row).enumerate().for_each(|(oy, out_row)| {
                conv_rows(&self.taps, &self.bias, x, out_row, oy, &g);
            });
        } else {
            conv_rows(&self.taps, &self.bias, x, out, 0, &g);
        }
        Ok(())
    }
}

/// Sizes of one call: kernel, stride, input, output width and the padding before (SAME puts any extra
/// pixel after).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    kernel: usize,
    stride: usize,
    in_h: usize,
    in_w: usize,
    out_w: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Geometry {
    /// Taps `lo..hi` whose input `o·stride + tap − pad` lies in `0..size`.
    #[inline(always)]
    fn valid_taps(&self, o: usize, pad: usize, size: usize) -> (usize, usize) {
        let start = o * self.stride;
        let lo = pad.saturating_sub(start);
        let hi = (size + pad).saturating_sub(start).min(self.kernel);
        (lo, hi.max(lo))
    }
}

multiversion! {
    /// Output rows `first_row..` of one image, as many as `out` holds (`[rows, out_w, c]`), from the
    /// whole input `[in_h, in_w, c]`.
    fn conv_rows(taps: &[f32], bias: &[f32], input: &[f32], out: &mut [f32], first_row: usize, g: &Geometry) {
        let c = bias.len();
        for (r, out_row) in out.chunks_exact_mut(g.out_w * c).enumerate() {
            let oy = first_row + r;
            let rows = g.valid_taps(oy, g.pad_top, g.in_h);
            for (ox, pixel) in out_row.chunks_exact_mut(c).enumerate() {
                let at = Pixel { oy, ox, rows, columns: g.valid_taps(ox, g.pad_left, g.in_w) };
                let mut c0 = 0;
                while c0 + 32 <= c {
                    channel_block::<32>(taps, bias, input, pixel, c0, &at, g);
                    c0 += 32;
                }
                while c0 + 8 <= c {
                    channel_block::<8>(taps, bias, input, pixel, c0, &at, g);
                    c0 += 8;
                }
                while c0 < c {
                    channel_block::<1>(taps, bias, input, pixel, c0, &at, g);
                    c0 += 1;
                }
            }
        }
    }
}

/// One output pixel and the taps (rows `ky`, columns `kx`) that fall inside the input.
struct Pixel {
    oy: usize,
    ox: usize,
    rows: (usize, usize),
    columns: (usize, usize),
}

/// Channels `c0..c0 + N` of one output pixel: bias + Σ taps · inputs in `N` accumulators, then ReLU6.
#[inline(always)]
fn channel_block<const N: usize>(
    taps: &[f32],
    bias: &[f32],
    input: &[f32],
    pixel: &mut [f32],
    c0: usize,
    at: &Pixel,
    g: &Geometry,
) {
    let c = bias.len();
    let mut acc: [f32; N] = bias[c0..c0 + N].try_into().expect("N channels");
    for ky in at.rows.0..at.rows.1 {
        let iy = at.oy * g.stride + ky - g.pad_top;
        for kx in at.columns.0..at.columns.1 {
            let ix = at.ox * g.stride + kx - g.pad_left;
            let x: &[f32; N] = input[(iy * g.in_w + ix) * c + c0..][..N].try_into().expect("N channels");
            let w: &[f32; N] = taps[(ky * g.kernel + kx) * c + c0..][..N].try_into().expect("N channels");
            for i in 0..N {
                acc[i] += w[i] * x[i];
            }
        }
    }
    for (o, a) in pixel[c0..c0 + N].iter_mut().zip(acc) {
        *o = a.clamp(0.0, 6.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::image::same_pad::Padding;
    use candle_core::{Device, Tensor};

    /// The same layer through candle's grouped conv2d (NCHW, explicit SAME pad, bias, clamp).
    fn reference(layer: &DepthwiseConvBn, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        let k = layer.kernel;
        let weight = Tensor::from_vec(layer.taps.clone(), (k * k, c), x.device())?.t()?.reshape((c, 1, k, k))?;
        let (padded, p) = Padding::same(h, w, k, layer.stride).apply(x)?;
        let bias = Tensor::from_vec(layer.bias.clone(), (1, c, 1, 1), x.device())?;
        padded.conv2d(&weight, p, layer.stride, 1, c)?.broadcast_add(&bias)?.clamp(0f32, 6f32)
    }

    #[test]
    fn equals_candles_grouped_conv_for_every_kernel_stride_parity_and_width() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (kernel, stride) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            for (h, w) in [(8, 8), (7, 9), (1, 1), (2, 5), (13, 6)] {
                // 43 channels: one block of 32, one of 8, three single channels.
                let c = 43;
                let taps = Tensor::randn(0f32, 1.0, c * kernel * kernel, &dev)?.to_vec1()?;
                let bias = Tensor::randn(0f32, 0.3, c, &dev)?.to_vec1()?;
                let layer = DepthwiseConvBn { taps, bias, kernel, stride };
                let x = Tensor::randn(0f32, 2.0, (1, c, h, w), &dev)?;
                let want = reference(&layer, &x)?;
                for parallel in [false, true] {
                    let mut got = vec![f32::NAN; 3];
                    let channels_last = x.squeeze(0)?.permute((1, 2, 0))?.flatten_all()?.to_vec1()?;
                    layer.forward(&channels_last, (h, w), &mut got, parallel)?;
                    let (oh, ow) = layer.output_size((h, w));
                    let got = Tensor::from_vec(got, (oh, ow, c), &dev)?.permute((2, 0, 1))?.unsqueeze(0)?;
                    assert_eq!(got.dims(), want.dims(), "k{kernel} s{stride} {h}x{w}");
                    let diff = (got - &want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                    assert!(diff < 1e-5, "k{kernel} s{stride} {h}x{w}: max |Δ| {diff}");
                }
            }
        }
        Ok(())
    }
}
