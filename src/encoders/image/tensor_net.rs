//! The same EfficientNet-Lite0 as [`super::efficientnet`], on candle tensors, so that it runs on any
//! candle device: an NVIDIA GPU through candle's CUDA backend (`omakase encode --device cuda`), or the
//! CPU, where the parity tests check it against the kernels (`tests/encode_device.rs`).
//!
//! The weights are the kernels' own (BatchNorm already folded), copied once to the device. The
//! activations are channels-last, `[n, h, w, c]`, as in the kernels: every 1×1 convolution is then one
//! plain matrix product `[n·h·w, c_in] × [c_in, c_out]`, the shape GPU libraries are fastest at.
//!
//! The depthwise convolutions are a sum over their k×k taps of shifted views of the padded input, each
//! times its per-channel weight — 9 or 25 element-wise products per layer, whatever the channel count.
//! Not candle's grouped `conv2d`: candle runs a group as a separate convolution, so the 1152-channel
//! layers would be 1152 convolutions each (depthwise.rs measured the same on the CPU). The sum starts
//! from the bias and adds the taps in row-major order, the kernels' order, with products and sums as
//! separate roundings (the kernels contract no FMA): the depthwise layers give the kernels' bits.
//! A stride-2 view is taken without a copy by reading the padded input as `[n, h/2, 2, w/2, 2, c]`
//! (the four phases of the 2×2 grid) and narrowing the phase and the offset.
//!
//! The stem (3×3, stride 2, 3 input channels) is candle's `conv2d`, after the explicit asymmetric zero
//! padding of TF SAME.

use candle_core::{DType, Device, Result, Tensor};

use super::bias_act::Activation;
use super::conv::ConvBn;
use super::depthwise::DepthwiseConvBn;
use super::efficientnet::{EfficientNetLite0, MbConv, FEATURE_DIM};
use super::pointwise::PointwiseConvBn;
use super::same_pad::same_padding;

/// The network up to the pooled features, every weight on one device.
#[derive(Debug, Clone)]
pub struct TensorEfficientNet {
    stem: TensorStem,
    blocks: Vec<TensorBlock>,
    head: TensorPointwise,
    device: Device,
}

impl TensorEfficientNet {
    /// Copies `network`'s (folded) weights to `device`.
    pub fn new(network: &EfficientNetLite0, device: &Device) -> Result<Self> {
        Ok(TensorEfficientNet {
            stem: TensorStem::new(&network.stem, device)?,
            blocks: network.blocks.iter().map(|block| TensorBlock::new(block, device)).collect::<Result<_>>()?,
            head: TensorPointwise::new(&network.head, device)?,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Pooled features: `x` `[n, 3, h, w]` (any device; moved to this one) → `[n, 1280]` on the CPU.
    /// The caller checks the shape (`EfficientNetLite0::features` does the same checks).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let (n, _, _, _) = x.dims4()?;
        if n == 0 {
            return Tensor::zeros((0, FEATURE_DIM), DType::F32, &Device::Cpu);
        }
        let mut x = self.stem.forward(&x.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let x = self.head.forward(&x, None)?;
        let (n, h, w, c) = x.dims4()?;
        // Global average pool over the pixels.
        x.reshape((n, h * w, c))?.mean(1)?.to_device(&Device::Cpu)
    }
}

/// Bias, then ReLU6 when asked for.
fn activate(x: Tensor, activation: Activation) -> Result<Tensor> {
    match activation {
        Activation::None => Ok(x),
        Activation::Relu6 => x.clamp(0f32, 6f32),
    }
}

/// The stem: a dense k×k convolution over the NCHW input, output channels-last.
#[derive(Debug, Clone)]
struct TensorStem {
    /// `[c_out, c_in, k, k]`, as `conv2d` takes it.
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
    activation: Activation,
}

impl TensorStem {
    fn new(conv: &ConvBn, device: &Device) -> Result<Self> {
        let (c_out, k) = (conv.bias.len(), conv.kernel);
        // The kernels keep `[c_in·k·k, c_out]`; conv2d wants its transpose, `[c_out, c_in, k, k]`.
        let weight = Tensor::from_slice(&conv.weight_t, (conv.c_in * k * k, c_out), device)?
            .t()?
            .contiguous()?
            .reshape((c_out, conv.c_in, k, k))?;
        Ok(TensorStem {
            weight,
            bias: Tensor::from_slice(&conv.bias, c_out, device)?,
            kernel: k,
            stride: conv.stride,
            activation: conv.activation,
        })
    }

    /// `[n, c_in, h, w]` → `[n, ceil(h/s), ceil(w/s), c_out]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (top, bottom) = same_padding(h, self.kernel, self.stride);
        let (left, right) = same_padding(w, self.kernel, self.stride);
        let padded = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
        let y = padded.conv2d(&self.weight, 0, self.stride, 1, 1)?.permute((0, 2, 3, 1))?;
        activate(y.broadcast_add(&self.bias)?, self.activation)
    }
}

/// A 1×1 convolution on channels-last activations: one matrix product.
#[derive(Debug, Clone)]
struct TensorPointwise {
    /// `[c_in, c_out]`.
    weight_t: Tensor,
    bias: Tensor,
    activation: Activation,
}

impl TensorPointwise {
    fn new(conv: &PointwiseConvBn, device: &Device) -> Result<Self> {
        let c_out = conv.bias.len();
        Ok(TensorPointwise {
            weight_t: Tensor::from_slice(&conv.weight_t, (conv.c_in, c_out), device)?,
            bias: Tensor::from_slice(&conv.bias, c_out, device)?,
            activation: conv.activation,
        })
    }

    /// `[n, h, w, c_in]` → `[n, h, w, c_out]`: (x·W + bias) + residual, then the activation.
    fn forward(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let (n, h, w, c_in) = x.dims4()?;
        let c_out = self.bias.dim(0)?;
        let y = x.reshape((n * h * w, c_in))?.matmul(&self.weight_t)?.broadcast_add(&self.bias)?;
        let y = match residual {
            Some(residual) => (y + residual.reshape((n * h * w, c_out))?)?,
            None => y,
        };
        activate(y, self.activation)?.reshape((n, h, w, c_out))
    }
}

/// Depthwise k×k convolution + bias + ReLU6 on channels-last activations, as a sum over taps.
#[derive(Debug, Clone)]
struct TensorDepthwise {
    /// `[k·k, c]`: each tap's weight for every channel.
    taps: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
}

impl TensorDepthwise {
    fn new(conv: &DepthwiseConvBn, device: &Device) -> Result<Self> {
        let (channels, k) = (conv.bias.len(), conv.kernel);
        Ok(TensorDepthwise {
            taps: Tensor::from_slice(&conv.taps, (k * k, channels), device)?,
            bias: Tensor::from_slice(&conv.bias, channels, device)?,
            kernel: k,
            stride: conv.stride,
        })
    }

    /// `[n, h, w, c]` → `[n, ceil(h/s), ceil(w/s), c]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let (k, s) = (self.kernel, self.stride);
        let (out_h, out_w) = (h.div_ceil(s), w.div_ceil(s));
        // Output row oy, tap ky reads padded row oy·s + ky = (oy + ky/s)·s + ky%s: phase ky%s, phase row
        // oy + ky/s. The padded input is made a whole number of phase rows, enough for the last tap;
        // the rows added beyond SAME's padding are zeros no tap reads.
        let (phase_h, phase_w) = (out_h + (k - 1) / s, out_w + (k - 1) / s);
        let (top, bottom) = same_padding(h, k, s);
        let (left, right) = same_padding(w, k, s);
        let extra_h = (phase_h * s).checked_sub(h + top + bottom);
        let extra_w = (phase_w * s).checked_sub(w + left + right);
        let (Some(extra_h), Some(extra_w)) = (extra_h, extra_w) else {
            candle_core::bail!("depthwise {k}x{k} stride {s}: padding does not cover a {h}x{w} input");
        };
        let padded = x.pad_with_zeros(1, top, bottom + extra_h)?.pad_with_zeros(2, left, right + extra_w)?;
        let phases = padded.reshape((n, phase_h, s, phase_w, s, c))?;
        let mut sum: Option<Tensor> = None;
        for ky in 0..k {
            for kx in 0..k {
                let view = phases.narrow(1, ky / s, out_h)?.narrow(2, ky % s, 1)?.narrow(3, kx / s, out_w)?.narrow(
                    4,
                    kx % s,
                    1,
                )?;
                let product = view.broadcast_mul(&self.taps.get(ky * k + kx)?)?;
                sum = Some(match sum {
                    None => product.broadcast_add(&self.bias)?,
                    Some(sum) => (sum + product)?,
                });
            }
        }
        let sum = sum.expect("a kernel has at least one tap");
        sum.reshape((n, out_h, out_w, c))?.clamp(0f32, 6f32)
    }
}

/// One MBConv block: [expand 1×1] → depthwise → project 1×1 (+ input).
#[derive(Debug, Clone)]
struct TensorBlock {
    expand: Option<TensorPointwise>,
    depthwise: TensorDepthwise,
    project: TensorPointwise,
    residual: bool,
}

impl TensorBlock {
    fn new(block: &MbConv, device: &Device) -> Result<Self> {
        Ok(TensorBlock {
            expand: block.expand.as_ref().map(|e| TensorPointwise::new(e, device)).transpose()?,
            depthwise: TensorDepthwise::new(&block.depthwise, device)?,
            project: TensorPointwise::new(&block.project, device)?,
            residual: block.residual,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = match &self.expand {
            Some(expand) => expand.forward(x, None)?,
            None => x.clone(),
        };
        let spatial = self.depthwise.forward(&hidden)?;
        self.project.forward(&spatial, self.residual.then_some(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::image::efficientnet::tests::synthetic_safetensors;
    use crate::encoders::image::StateDict;

    /// Random weights (every name and shape of the reference), odd and even sizes: the tensor network
    /// gives the kernels' features.
    #[test]
    fn equals_the_kernels_for_odd_and_even_sizes() -> Result<()> {
        let state = StateDict::from_safetensors_bytes(&synthetic_safetensors(), "synthetic", &Device::Cpu).unwrap();
        let network = EfficientNetLite0::load(&state).unwrap();
        let on_tensors = TensorEfficientNet::new(&network, &Device::Cpu)?;
        for (h, w) in [(64, 64), (37, 50)] {
            let x = Tensor::randn(0f32, 1.0, (2, 3, h, w), &Device::Cpu)?;
            let want = network.features(&x).unwrap();
            let got = on_tensors.features(&x)?;
            let diff = (got - want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "{h}x{w}: max |Δ| {diff}");
        }
        assert_eq!(on_tensors.features(&Tensor::zeros((0, 3, 8, 8), DType::F32, &Device::Cpu)?)?.dims(), &[0, 1280]);
        Ok(())
    }

    /// Bias first, then the taps in row-major order, products and sums rounded apart: bit for bit the
    /// fused kernel's output, at every kernel size, stride and parity of the input.
    #[test]
    fn depthwise_taps_give_the_kernels_bits() -> Result<()> {
        let dev = Device::Cpu;
        for (kernel, stride) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            for (h, w) in [(8, 8), (7, 9), (1, 1), (2, 5)] {
                let c = 43;
                let conv = DepthwiseConvBn {
                    taps: Tensor::randn(0f32, 1.0, kernel * kernel * c, &dev)?.to_vec1()?,
                    bias: Tensor::randn(0f32, 0.3, c, &dev)?.to_vec1()?,
                    kernel,
                    stride,
                };
                let x = Tensor::randn(0f32, 2.0, (1, h, w, c), &dev)?;
                let mut want = Vec::new();
                conv.forward(&x.flatten_all()?.to_vec1()?, (h, w), &mut want, false)?;
                let got = TensorDepthwise::new(&conv, &dev)?.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
                assert!(got == want, "k{kernel} s{stride} {h}x{w}: differs from the kernel");
            }
        }
        Ok(())
    }
}
