//! Depthwise k×k convolution (one filter per channel) with TF SAME padding, folded BatchNorm and ReLU6,
//! fused in one CPU kernel.
//!
//! Hand-written because candle's grouped `conv2d` runs one separate convolution per group: for the
//! 1152-channel layers of Lite0 that is 1152 convolutions (with their copies and a final concat) per
//! layer, and it made the whole network about 6× slower than all its other layers together. The kernel
//! below is a direct loop whose innermost loop runs along a row, so the compiler vectorises it at stride 1.
//! Zero padding is handled by clipping the loops, never by reading outside the input.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::batch_norm::{load_folded, Folded};
use super::error::Result;
use super::same_pad::same_padding;
use super::state_dict::StateDict;

/// Depthwise conv (no bias) + BatchNorm + ReLU6. `[n, c, h, w]` → `[n, c, ceil(h/s), ceil(w/s)]`.
/// CPU only (the encoder runs on the CPU natively and in wasm).
#[derive(Debug, Clone)]
pub struct DepthwiseConvBn {
    /// `[c, k·k]` row-major taps per channel, BatchNorm scale folded in.
    taps: Vec<f32>,
    /// `[c]`, BatchNorm shift folded in.
    bias: Vec<f32>,
    kernel: usize,
    stride: usize,
}

impl DepthwiseConvBn {
    /// Reads `{conv}.weight` `[c, 1, k, k]` and the BatchNorm `{bn}.*`.
    pub fn load(
        state: &StateDict,
        (conv, bn): (&str, &str),
        (channels, kernel, stride): (usize, usize, usize),
    ) -> Result<Self> {
        let Folded { weight, bias } = load_folded(state, conv, bn, (channels, 1, kernel, kernel))?;
        Ok(Self { taps: weight.flatten_all()?.to_vec1()?, bias, kernel, stride })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        if c != self.bias.len() {
            candle_core::bail!("depthwise conv of {} channels given {c}", self.bias.len());
        }
        let geometry = Geometry {
            in_h: h,
            in_w: w,
            out_h: h.div_ceil(self.stride),
            out_w: w.div_ceil(self.stride),
            pad_top: same_padding(h, self.kernel, self.stride).0,
            pad_left: same_padding(w, self.kernel, self.stride).0,
        };
        x.contiguous()?.apply_op1_no_bwd(&DepthwiseOp { layer: self, geometry })
    }

    /// One channel plane: `input` `in_h × in_w` → `out` `out_h × out_w` (overwritten).
    fn plane(&self, channel: usize, input: &[f32], out: &mut [f32], g: &Geometry) {
        let k = self.kernel;
        let taps = &self.taps[channel * k * k..(channel + 1) * k * k];
        out.fill(self.bias[channel]);
        for (oy, out_row) in out.chunks_exact_mut(g.out_w).enumerate() {
            for ky in 0..k {
                // Input row of this tap; rows in the padding contribute zero.
                let Some(iy) = (oy * self.stride + ky).checked_sub(g.pad_top).filter(|&iy| iy < g.in_h)
                else {
                    continue;
                };
                let in_row = &input[iy * g.in_w..(iy + 1) * g.in_w];
                for kx in 0..k {
                    let (first, end) = g.valid_columns(kx, self.stride);
                    if first >= end {
                        continue;
                    }
                    let tap = taps[ky * k + kx];
                    let start = first * self.stride + kx - g.pad_left;
                    if self.stride == 1 {
                        let src = &in_row[start..start + (end - first)];
                        for (o, &v) in out_row[first..end].iter_mut().zip(src) {
                            *o += tap * v;
                        }
                    } else {
                        let src = in_row[start..].iter().step_by(self.stride);
                        for (o, &v) in out_row[first..end].iter_mut().zip(src) {
                            *o += tap * v;
                        }
                    }
                }
            }
            for o in out_row.iter_mut() {
                *o = o.clamp(0.0, 6.0);
            }
        }
    }
}

/// Sizes of one call: input, output and the padding before (SAME puts any extra pixel after).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Geometry {
    /// Output columns `first..end` whose input column `ox·stride + kx − pad_left` lies inside the row.
    fn valid_columns(&self, kx: usize, stride: usize) -> (usize, usize) {
        let first = self.pad_left.saturating_sub(kx).div_ceil(stride);
        // ox·stride + kx − pad_left ≤ in_w − 1  ⇔  ox ≤ (in_w − 1 + pad_left − kx) / stride
        let end = (self.in_w + self.pad_left).checked_sub(kx + 1).map_or(0, |m| m / stride + 1);
        (first, end.min(self.out_w))
    }
}

struct DepthwiseOp<'a> {
    layer: &'a DepthwiseConvBn,
    geometry: Geometry,
}

impl CustomOp1 for DepthwiseOp<'_> {
    fn name(&self) -> &'static str {
        "depthwise-conv-bn-relu6"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("depthwise conv: f32 tensors only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("depthwise conv: the input must be contiguous");
        };
        let (n, c, _, _) = layout.shape().dims4()?;
        let g = &self.geometry;
        let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
        let mut out = vec![0f32; n * c * out_plane];
        // Planes are independent: split them across cores (the calling thread alone on wasm32).
        let planes = data[start..end].par_chunks_exact(in_plane).zip(out.par_chunks_exact_mut(out_plane));
        planes.enumerate().for_each(|(i, (input, output))| self.layer.plane(i % c, input, output, g));
        Ok((CpuStorage::F32(out), Shape::from((n, c, g.out_h, g.out_w))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::image::same_pad::Padding;
    use candle_core::Device;

    /// The same layer through candle's grouped conv2d (explicit SAME pad, bias, clamp).
    fn reference(layer: &DepthwiseConvBn, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        let k = layer.kernel;
        let weight = Tensor::from_vec(layer.taps.clone(), (c, 1, k, k), x.device())?;
        let (padded, p) = Padding::same(h, w, k, layer.stride).apply(x)?;
        let bias = Tensor::from_vec(layer.bias.clone(), (1, c, 1, 1), x.device())?;
        padded.conv2d(&weight, p, layer.stride, 1, c)?.broadcast_add(&bias)?.clamp(0f32, 6f32)
    }

    #[test]
    fn equals_candles_grouped_conv_for_every_kernel_stride_and_parity() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (kernel, stride) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            for (h, w) in [(8, 8), (7, 9), (1, 1), (2, 5)] {
                let c = 3;
                let taps = Tensor::randn(0f32, 1.0, c * kernel * kernel, &dev)?.to_vec1()?;
                let layer = DepthwiseConvBn { taps, bias: vec![0.1, -0.2, 0.3], kernel, stride };
                let x = Tensor::randn(0f32, 2.0, (2, c, h, w), &dev)?;
                let got = layer.forward(&x)?;
                let want = reference(&layer, &x)?;
                assert_eq!(got.dims(), want.dims(), "k{kernel} s{stride} {h}x{w}");
                let diff = (got - want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "k{kernel} s{stride} {h}x{w}: max |Δ| {diff}");
            }
        }
        Ok(())
    }
}
