//! The image encoder's network on WebGPU (feature `gpu`): [`crate::runtime::gpu::GpuEfficientNet`] built
//! from this encoder's own folded weights, so that the GPU computes with the values the CPU kernels use.
//! Decoding, resizing, cropping and normalising stay on the CPU (they are the cheap, exact part; the
//! Pillow-exact resize is what makes browser and native pixels agree); the features come back from the
//! GPU as one `[1280]` readback.
//!
//! The GPU network is built for 224×224 inputs, the only size [`ImageEncoder::encode_rgb`] feeds it.

use super::efficientnet::{EfficientNetLite0, MbConv};
use super::error::{ImageEncoderError, Result};
use super::preprocess::{center_crop, crops_to_input, RgbView, INPUT_SIZE};
use super::ImageEncoder;
use crate::runtime::gpu::efficientnet::{ConvWeights, DepthwiseWeights, MbConvWeights, PointwiseWeights};
use crate::runtime::gpu::{EfficientNetWeights, GpuContext, GpuEfficientNet};

use super::bias_act::Activation;
use super::pointwise::PointwiseConvBn;

impl ImageEncoder {
    /// The network's folded weights, lent to the GPU loader (nothing copied).
    pub fn gpu_weights(&self) -> EfficientNetWeights<'_> {
        self.network().gpu_weights()
    }

    /// Uploads the network to `ctx`'s device for 224×224 inputs (the kernels compile here too).
    pub async fn load_gpu(&self, ctx: &GpuContext) -> Result<GpuEfficientNet> {
        Ok(GpuEfficientNet::new(ctx, &self.gpu_weights(), (INPUT_SIZE, INPUT_SIZE)).await?)
    }

    /// Features `[1280]` of one normalised input `[3, 224, 224]` (as [`crops_to_input`] makes it),
    /// computed by `gpu` (from [`Self::load_gpu`]).
    pub async fn features_with_gpu(&self, gpu: &GpuEfficientNet, ctx: &GpuContext, pixels: &[f32]) -> Result<Vec<f32>> {
        if pixels.len() != 3 * INPUT_SIZE * INPUT_SIZE {
            return Err(ImageEncoderError::InvalidInput(vec![pixels.len()]));
        }
        Ok(gpu.forward(ctx, pixels).await?)
    }

    /// One picture → its features `[1280]`: resized, cropped and normalised here, the network on the GPU.
    pub async fn encode_with_gpu(
        &self,
        gpu: &GpuEfficientNet,
        ctx: &GpuContext,
        image: RgbView<'_>,
    ) -> Result<Vec<f32>> {
        let crop = center_crop(image);
        let input = crops_to_input(&[&crop], &candle_core::Device::Cpu)?;
        let pixels = input.flatten_all()?.to_vec1::<f32>()?;
        self.features_with_gpu(gpu, ctx, &pixels).await
    }
}

impl EfficientNetLite0 {
    /// The folded weights of every layer, in the GPU loader's terms.
    pub fn gpu_weights(&self) -> EfficientNetWeights<'_> {
        let stem = &self.stem;
        EfficientNetWeights {
            stem: ConvWeights {
                weight_t: &stem.weight_t,
                bias: &stem.bias,
                c_in: stem.c_in,
                kernel: stem.kernel,
                stride: stem.stride,
                relu6: stem.activation == Activation::Relu6,
            },
            blocks: self.blocks.iter().map(MbConv::gpu_weights).collect(),
            head: self.head.gpu_weights(),
        }
    }
}

impl MbConv {
    fn gpu_weights(&self) -> MbConvWeights<'_> {
        let d = &self.depthwise;
        MbConvWeights {
            expand: self.expand.as_ref().map(PointwiseConvBn::gpu_weights),
            depthwise: DepthwiseWeights { taps: &d.taps, bias: &d.bias, kernel: d.kernel, stride: d.stride },
            project: self.project.gpu_weights(),
            residual: self.residual,
        }
    }
}

impl PointwiseConvBn {
    fn gpu_weights(&self) -> PointwiseWeights<'_> {
        PointwiseWeights {
            weight_t: &self.weight_t,
            bias: &self.bias,
            c_in: self.c_in,
            relu6: self.activation == Activation::Relu6,
        }
    }
}

/// The CPU encoder's own layers (the code [`ImageEncoder::encode_rgb`] runs), fed GPU-shaped weights:
/// what tests/gpu_kernels.rs compares each GPU kernel with, on random data.
pub mod cpu_layers {
    use super::super::conv::ConvBn;
    use super::super::depthwise::DepthwiseConvBn;
    use super::{Activation, ConvWeights, DepthwiseWeights, PointwiseConvBn, PointwiseWeights, Result};
    use crate::encoders::kernels::matmul::Threads;

    fn activation(relu6: bool) -> Activation {
        if relu6 {
            Activation::Relu6
        } else {
            Activation::None
        }
    }

    /// Stem conv: `x` `[c_in, h, w]` → `[h', w', c_out]`.
    pub fn stem(w: &ConvWeights<'_>, x: &[f32], size: (usize, usize)) -> Result<Vec<f32>> {
        let layer = ConvBn {
            weight_t: w.weight_t.to_vec(),
            bias: w.bias.to_vec(),
            c_in: w.c_in,
            kernel: w.kernel,
            stride: w.stride,
            activation: activation(w.relu6),
        };
        let (mut out, mut patches) = (Vec::new(), Vec::new());
        layer.forward(x, size, &mut out, &mut patches, Threads::One)?;
        Ok(out)
    }

    /// Depthwise conv + ReLU6: `x` `[h, w, c]` → `[h', w', c]`.
    pub fn depthwise(w: &DepthwiseWeights<'_>, x: &[f32], size: (usize, usize)) -> Result<Vec<f32>> {
        let layer =
            DepthwiseConvBn { taps: w.taps.to_vec(), bias: w.bias.to_vec(), kernel: w.kernel, stride: w.stride };
        let mut out = Vec::new();
        layer.forward(x, size, &mut out, false)?;
        Ok(out)
    }

    /// Pointwise conv: `x` `[pixels, c_in]` (+ `residual`) → `[pixels, c_out]`.
    pub fn pointwise(w: &PointwiseWeights<'_>, x: &[f32], residual: Option<&[f32]>) -> Result<Vec<f32>> {
        let layer = PointwiseConvBn::from_folded(w.weight_t.to_vec(), w.bias.to_vec(), w.c_in, activation(w.relu6));
        let mut out = Vec::new();
        layer.forward(x, x.len() / w.c_in.max(1), residual, &mut out, Threads::One)?;
        Ok(out)
    }
}
