//! EfficientNet-Lite0 (inference only), laid out as the lukemelas-style PyTorch state dict names it.
//!
//! Lite differs from B0: no squeeze-excitation, ReLU6 instead of swish, stem (32) and head (1280)
//! not scaled with width. Lite0 is width 1.0, depth 1.0, 224×224 input.
//!
//! ```text
//! x [n,3,224,224] ─ stem conv3×3 s2 → 32, BN, ReLU6 ─ 16 MBConv blocks ─ head conv1×1 → 1280, BN, ReLU6
//!   ─ global average pool → features [n,1280] ─ _fc → logits [n,1000]
//! MBConv: [expand 1×1 → c·e, BN, ReLU6] → depthwise k×k (stride), BN, ReLU6 → project 1×1, BN
//!         (+ input when stride 1 and c_in == c_out)
//! ```

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};
use rayon::prelude::*;

use super::bias_act::Activation;
use super::conv::ConvBn;
use super::depthwise::DepthwiseConvBn;
use super::error::{ImageEncoderError, Result};
use super::pointwise::PointwiseConvBn;
use super::state_dict::StateDict;
use crate::encoders::kernels::matmul::Threads;

/// Channels out of the stem (fixed for every Lite variant).
pub const STEM_CHANNELS: usize = 32;
/// Channels of the head conv, i.e. the size of the pooled feature (fixed for every Lite variant).
pub const FEATURE_DIM: usize = 1280;
/// ImageNet-1k classes of `_fc`.
pub const NUM_CLASSES: usize = 1000;

/// One row of the block table: `repeats` blocks, the first with `stride`, the rest with stride 1.
struct Stage {
    repeats: usize,
    kernel: usize,
    stride: usize,
    expand_ratio: usize,
    c_out: usize,
}

/// EfficientNet-B0's block table, which Lite0 keeps (width and depth multipliers are 1.0).
const LITE0_STAGES: [Stage; 7] = [
    Stage { repeats: 1, kernel: 3, stride: 1, expand_ratio: 1, c_out: 16 },
    Stage { repeats: 2, kernel: 3, stride: 2, expand_ratio: 6, c_out: 24 },
    Stage { repeats: 2, kernel: 5, stride: 2, expand_ratio: 6, c_out: 40 },
    Stage { repeats: 3, kernel: 3, stride: 2, expand_ratio: 6, c_out: 80 },
    Stage { repeats: 3, kernel: 5, stride: 1, expand_ratio: 6, c_out: 112 },
    Stage { repeats: 4, kernel: 5, stride: 2, expand_ratio: 6, c_out: 192 },
    Stage { repeats: 1, kernel: 3, stride: 1, expand_ratio: 6, c_out: 320 },
];

/// Mobile inverted bottleneck without squeeze-excitation. `[n, c_in, h, w]` →
/// `[n, c_out, ceil(h/stride), ceil(w/stride)]`.
#[derive(Debug, Clone)]
pub(super) struct MbConv {
    /// Absent when the expand ratio is 1 (the first block).
    pub(super) expand: Option<PointwiseConvBn>,
    pub(super) depthwise: DepthwiseConvBn,
    pub(super) project: PointwiseConvBn,
    /// Identity skip: stride 1 and c_in == c_out (drop-connect is a no-op at inference).
    pub(super) residual: bool,
}

impl MbConv {
    fn load(state: &StateDict, index: usize, c_in: usize, stage: &Stage, stride: usize) -> Result<Self> {
        let name = |part: &str| format!("_blocks.{index}.{part}");
        let hidden = c_in * stage.expand_ratio;
        let expand = if stage.expand_ratio != 1 {
            let names = (name("_expand_conv"), name("_bn0"));
            Some(PointwiseConvBn::load(state, (&names.0, &names.1), (c_in, hidden), Activation::Relu6)?)
        } else {
            None
        };
        let names = (name("_depthwise_conv"), name("_bn1"));
        let depthwise = DepthwiseConvBn::load(state, (&names.0, &names.1), (hidden, stage.kernel, stride))?;
        let names = (name("_project_conv"), name("_bn2"));
        let project = PointwiseConvBn::load(state, (&names.0, &names.1), (hidden, stage.c_out), Activation::None)?;
        Ok(Self { expand, depthwise, project, residual: stride == 1 && c_in == stage.c_out })
    }

    /// Pointwise weights quantized (see [`PointwiseConvBn::quantized`]); the depthwise conv stays f32.
    fn quantized(&self, dtype: GgmlDType) -> Result<Self> {
        Ok(Self {
            expand: self.expand.as_ref().map(|e| e.quantized(dtype)).transpose()?,
            project: self.project.quantized(dtype)?,
            ..self.clone()
        })
    }

    fn pointwise(&self) -> impl Iterator<Item = &PointwiseConvBn> {
        self.expand.iter().chain([&self.project])
    }

    /// One image: `s.x` `[h, w, c_in]` → `s.x` `[h', w', c_out]` (channels-last); returns `(h', w')`.
    fn forward(&self, s: &mut Scratch, size: (usize, usize), threads: Threads) -> candle_core::Result<(usize, usize)> {
        let pixels = size.0 * size.1;
        let hidden = match &self.expand {
            Some(expand) => {
                expand.forward(&s.x, pixels, None, &mut s.expanded, threads)?;
                &s.expanded
            }
            None => &s.x,
        };
        self.depthwise.forward(hidden, size, &mut s.spatial, threads == Threads::All)?;
        let out_size = self.depthwise.output_size(size);
        let residual = self.residual.then_some(s.x.as_slice());
        self.project.forward(&s.spatial, out_size.0 * out_size.1, residual, &mut s.out, threads)?;
        std::mem::swap(&mut s.x, &mut s.out);
        Ok(out_size)
    }
}

/// Buffers one image's forward pass reuses from block to block.
#[derive(Debug, Default)]
struct Scratch {
    /// The current activations, channels-last `[h, w, c]`.
    x: Vec<f32>,
    expanded: Vec<f32>,
    spatial: Vec<f32>,
    out: Vec<f32>,
    patches: Vec<f32>,
}

/// The whole network with BatchNorm folded in. See the module docs for the layout.
#[derive(Debug, Clone)]
pub struct EfficientNetLite0 {
    pub(super) stem: ConvBn,
    pub(super) blocks: Vec<MbConv>,
    pub(super) head: PointwiseConvBn,
    /// `_fc.weight` `[1000, 1280]` (f32 or quantized).
    classifier: QMatMul,
    /// `_fc.bias` `[1000]`.
    classifier_bias: Tensor,
}

impl EfficientNetLite0 {
    /// Builds the network from the 296-tensor state dict (names as the PyTorch reference has them).
    pub fn load(state: &StateDict) -> Result<Self> {
        let stem = ConvBn::load(state, ("_conv_stem", "_bn0"), (3, STEM_CHANNELS, 3, 2), Activation::Relu6)?;
        let mut blocks = Vec::new();
        let mut c_in = STEM_CHANNELS;
        for stage in &LITE0_STAGES {
            for repeat in 0..stage.repeats {
                let stride = if repeat == 0 { stage.stride } else { 1 };
                blocks.push(MbConv::load(state, blocks.len(), c_in, stage, stride)?);
                c_in = stage.c_out;
            }
        }
        let head = PointwiseConvBn::load(state, ("_conv_head", "_bn1"), (c_in, FEATURE_DIM), Activation::Relu6)?;
        let fc_weight = state.get("_fc.weight", (NUM_CLASSES, FEATURE_DIM))?;
        let fc_bias = state.get("_fc.bias", NUM_CLASSES)?;
        Ok(Self { stem, blocks, head, classifier: QMatMul::Tensor(fc_weight), classifier_bias: fc_bias })
    }

    /// The network with every pointwise weight and the classifier stored as `dtype` blocks (e.g. Q8_0).
    /// The stem and depthwise convs stay f32 (about 2% of the weights), and so does any pointwise layer
    /// whose input width is not a multiple of the block size (c_in 16, 24, 40, 80, 112 for 32-blocks).
    pub fn quantized(&self, dtype: GgmlDType) -> Result<Self> {
        let classifier = match &self.classifier {
            QMatMul::Tensor(w) => QMatMul::from_qtensor(QTensor::quantize(w, dtype)?)?,
            other => other.clone(),
        };
        Ok(Self {
            stem: self.stem.clone(),
            blocks: self.blocks.iter().map(|b| b.quantized(dtype)).collect::<Result<_>>()?,
            head: self.head.quantized(dtype)?,
            classifier,
            classifier_bias: self.classifier_bias.clone(),
        })
    }

    /// Weights of the pointwise convs and the classifier: `(stored quantized, all)`.
    pub fn quantized_weight_count(&self) -> (usize, usize) {
        let classifier = (NUM_CLASSES * FEATURE_DIM, matches!(self.classifier, QMatMul::QTensor(_)));
        let layers = self.blocks.iter().flat_map(MbConv::pointwise).chain([&self.head]);
        layers
            .map(PointwiseConvBn::weight_count)
            .chain([classifier])
            .fold((0, 0), |(q, all), (n, is_q)| (q + if is_q { n } else { 0 }, all + n))
    }

    /// Pooled features: `[n, 3, h, w]` (224×224 for the reference) → `[n, 1280]`, every value in [0, 6].
    ///
    /// Images run one by one through the whole network, channels-last (`depthwise.rs` says why), each in
    /// buffers reused from layer to layer:
    /// a lone image spreads each layer over the cores; a batch runs its images side by side, one core
    /// each, which keeps every image's activations in cache (a batch-wide layer's output for 32 images
    /// is over 100 MB, and made larger batches slower per image).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w) = match x.dims() {
            // An empty batch has empty features.
            [0, 3, h, w] if *h > 0 && *w > 0 => {
                return Ok(Tensor::zeros((0, FEATURE_DIM), x.dtype(), x.device())?);
            }
            [n, 3, h, w] if *h > 0 && *w > 0 => (*n, *h, *w),
            dims => return Err(ImageEncoderError::InvalidInput(dims.to_vec())),
        };
        let pixels = x.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
        let images = pixels.chunks_exact(3 * h * w);
        let features: candle_core::Result<Vec<Vec<f32>>> = if n > 1 && candle_core::utils::get_num_threads() > 1 {
            let images = pixels.par_chunks_exact(3 * h * w);
            images.map_init(Scratch::default, |s, image| self.image_features(image, (h, w), Threads::One, s)).collect()
        } else {
            let mut scratch = Scratch::default();
            images.map(|image| self.image_features(image, (h, w), Threads::All, &mut scratch)).collect()
        };
        Ok(Tensor::from_vec(features?.concat(), (n, FEATURE_DIM), x.device())?)
    }

    /// One image `[3, h, w]` → its pooled features `[1280]`.
    fn image_features(
        &self,
        image: &[f32],
        size: (usize, usize),
        threads: Threads,
        s: &mut Scratch,
    ) -> candle_core::Result<Vec<f32>> {
        self.stem.forward(image, size, &mut s.x, &mut s.patches, threads)?;
        let mut size = self.stem.output_size(size);
        for block in &self.blocks {
            size = block.forward(s, size, threads)?;
        }
        let pixels = size.0 * size.1;
        self.head.forward(&s.x, pixels, None, &mut s.out, threads)?;
        // Global average pool over the channels-last [pixels, 1280].
        let mut pooled = vec![0f32; FEATURE_DIM];
        for pixel in s.out.chunks_exact(FEATURE_DIM) {
            pooled.iter_mut().zip(pixel).for_each(|(p, v)| *p += v);
        }
        pooled.iter_mut().for_each(|p| *p /= pixels as f32);
        Ok(pooled)
    }

    /// ImageNet logits from pooled features: `[n, 1280]` → `[n, 1000]` (dropout is a no-op at inference).
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        Ok(self.classifier.forward(features)?.broadcast_add(&self.classifier_bias)?)
    }

    /// Number of MBConv blocks (16 for Lite0).
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    /// A random state dict with every name and shape the reference has (296 tensors), in safetensors.
    pub(crate) fn synthetic_safetensors() -> Vec<u8> {
        let dev = Device::Cpu;
        let mut t: HashMap<String, Tensor> = HashMap::new();
        let mut conv_bn = |conv: &str, bn: &str, c_out: usize, c_in: usize, k: usize| {
            let fan_in = (c_in * k * k) as f64;
            t.insert(
                format!("{conv}.weight"),
                Tensor::randn(0f32, (2.0 / fan_in).sqrt() as f32, (c_out, c_in, k, k), &dev).unwrap(),
            );
            t.insert(format!("{bn}.weight"), Tensor::rand(0.5f32, 1.5, c_out, &dev).unwrap());
            t.insert(format!("{bn}.bias"), Tensor::randn(0f32, 0.1, c_out, &dev).unwrap());
            t.insert(format!("{bn}.running_mean"), Tensor::randn(0f32, 0.1, c_out, &dev).unwrap());
            t.insert(format!("{bn}.running_var"), Tensor::rand(0.5f32, 1.5, c_out, &dev).unwrap());
            // PyTorch keeps this training counter in the state dict; inference ignores it.
            t.insert(format!("{bn}.num_batches_tracked"), Tensor::new(0i64, &dev).unwrap());
        };
        conv_bn("_conv_stem", "_bn0", STEM_CHANNELS, 3, 3);
        let (mut c_in, mut b) = (STEM_CHANNELS, 0);
        for stage in &LITE0_STAGES {
            for _ in 0..stage.repeats {
                let hidden = c_in * stage.expand_ratio;
                let p = format!("_blocks.{b}");
                if stage.expand_ratio != 1 {
                    conv_bn(&format!("{p}._expand_conv"), &format!("{p}._bn0"), hidden, c_in, 1);
                }
                conv_bn(&format!("{p}._depthwise_conv"), &format!("{p}._bn1"), hidden, 1, stage.kernel);
                conv_bn(&format!("{p}._project_conv"), &format!("{p}._bn2"), stage.c_out, hidden, 1);
                c_in = stage.c_out;
                b += 1;
            }
        }
        conv_bn("_conv_head", "_bn1", FEATURE_DIM, c_in, 1);
        t.insert("_fc.weight".into(), Tensor::randn(0f32, 0.03, (NUM_CLASSES, FEATURE_DIM), &dev).unwrap());
        t.insert("_fc.bias".into(), Tensor::zeros(NUM_CLASSES, DType::F32, &dev).unwrap());
        assert_eq!(t.len(), 296, "the reference state dict has 296 tensors");
        to_safetensors_bytes(&t)
    }

    /// Serialised through a temporary file: candle writes safetensors only to paths.
    pub(crate) fn to_safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.safetensors");
        candle_core::safetensors::save(tensors, &path).unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn builds_sixteen_blocks_and_gives_features_in_relu6_range() -> Result<()> {
        let state = StateDict::from_safetensors_bytes(&synthetic_safetensors(), "synthetic", &Device::Cpu)?;
        let net = EfficientNetLite0::load(&state)?;
        assert_eq!(net.num_blocks(), 16);
        let x = Tensor::randn(0f32, 1.0, (2, 3, 224, 224), &Device::Cpu)?;
        let start = std::time::Instant::now();
        let features = net.features(&x)?;
        eprintln!("synthetic forward of 2 images: {:?}", start.elapsed());
        assert_eq!(features.dims(), &[2, FEATURE_DIM]);
        let values = features.flatten_all()?.to_vec1::<f32>()?;
        assert!(values.iter().all(|v| (0.0..=6.0).contains(v)));
        assert_eq!(net.logits(&features)?.dims(), &[2, NUM_CLASSES]);
        assert_eq!(
            net.features(&Tensor::zeros((0, 3, 224, 224), DType::F32, &Device::Cpu)?)?.dims(),
            &[0, FEATURE_DIM]
        );
        // Any spatial size works with SAME padding (odd sizes exercise the symmetric stride-2 case).
        assert_eq!(net.features(&Tensor::randn(0f32, 1.0, (1, 3, 97, 131), &Device::Cpu)?)?.dims(), &[1, FEATURE_DIM]);
        Ok(())
    }

    #[test]
    fn a_wrong_shape_names_the_tensor() {
        let bytes = synthetic_safetensors();
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
        tensors.insert(
            "_blocks.4._depthwise_conv.weight".into(),
            Tensor::zeros((240, 1, 3, 3), DType::F32, &Device::Cpu).unwrap(),
        );
        let bytes = to_safetensors_bytes(&tensors);
        let state = StateDict::from_safetensors_bytes(&bytes, "synthetic", &Device::Cpu).unwrap();
        let err = EfficientNetLite0::load(&state).unwrap_err().to_string();
        assert!(err.contains("_blocks.4._depthwise_conv.weight") && err.contains("[240, 1, 5, 5]"), "{err}");
    }
}
