//! EfficientNet-Lite0 image encoder (frozen, ImageNet weights): picture → 1280-d pooled feature.
//!
//! The path (each step its own file):
//! ```text
//! bytes ─decode (native)─► RGB8 ─preprocess─► shorter side 224 (Pillow bilinear) ─► centre 224×224
//!   ─► (x − 127)/128, [n,3,224,224] ─efficientnet─► features [n,1280] (─_fc─► logits [n,1000])
//! ```
//! It reproduces the upstream PyTorch reference (`shared/golden/efficientnet-lite0/`): from the golden
//! crops, features and logits agree within 1e-4 (measured 1.6e-5 / 2.1e-5), same top-1 on all 125;
//! see `tests/image_encoder_golden.rs`.
//!
//! BatchNorm is folded into the convolutions at load time; the depthwise convs run in a fused CPU kernel
//! (`depthwise.rs` says why). [`ImageEncoder::quantized`] stores the pointwise and classifier weights
//! as GGML blocks (Q8_0: feature cosine to f32 ≥ 0.99 on every golden crop, mean 0.9986).
//!
//! Everything but decoding compiles for wasm32; in the browser, pixels come from a canvas.
//! The custom kernels are CPU code; [`tensor_net`] computes the same features with candle's ops, which
//! run on any candle device (a CUDA GPU: [`ImageEncoder::on_device`]).

mod batch_norm;
mod bias_act;
mod conv;
#[cfg(feature = "decode")]
mod decode;
mod depthwise;
mod efficientnet;
mod error;
#[cfg(feature = "gpu")]
mod gpu;
mod pointwise;
mod preprocess;
mod resample;
mod same_pad;
mod state_dict;
pub mod tensor_net;

use candle_core::{Device, Tensor};

#[cfg(feature = "decode")]
pub use decode::{decode_bytes, decode_file};
pub use efficientnet::{EfficientNetLite0, FEATURE_DIM, NUM_CLASSES};
pub use error::{ImageEncoderError, Result};
#[cfg(feature = "gpu")]
pub use gpu::cpu_layers;
pub use preprocess::{center_crop, crops_to_input, resized_size, RgbImage, RgbView, INPUT_SIZE};
pub use state_dict::StateDict;

/// The encoder: weights loaded (BatchNorm folded) and ready; on the CPU kernels, or on a candle device.
#[derive(Debug, Clone)]
pub struct ImageEncoder {
    network: EfficientNetLite0,
    device: Device,
    /// A copy of `network` on a candle device, when [`ImageEncoder::on_device`] made one: features are
    /// then computed there instead of on the kernels (logits stay on the CPU, from those features).
    on_device: Option<tensor_net::TensorEfficientNet>,
}

/// Output of a forward pass.
#[derive(Debug, Clone)]
pub struct ImageEncoding {
    /// `[n, 1280]` pooled features, values in [0, 6]: what the recommender uses.
    pub features: Tensor,
    /// `[n, 1000]` ImageNet logits (for checks against the reference and sanity tests).
    pub logits: Tensor,
}

impl ImageEncoder {
    /// Loads `efficientnet-lite0.safetensors` (f32, PyTorch state-dict names).
    #[cfg(feature = "native")]
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = crate::fs::read_bounded(path, crate::fs::MAX_WEIGHTS_FILE_BYTES)
            .map_err(|e| ImageEncoderError::Io { path: path.to_path_buf(), source: e.into_parts().1 })?;
        Self::from_state_dict(&StateDict::from_safetensors_bytes(&bytes, &path.display().to_string(), &Device::Cpu)?)
    }

    /// From safetensors bytes already in memory (the browser fetches them).
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_state_dict(&StateDict::from_safetensors_bytes(bytes, "safetensors bytes", &Device::Cpu)?)
    }

    /// From tensors already in memory (PyTorch state-dict names); `origin` labels errors.
    pub fn from_tensors(tensors: std::collections::HashMap<String, Tensor>, origin: &str) -> Result<Self> {
        Self::from_state_dict(&StateDict::from_tensors(tensors, origin))
    }

    fn from_state_dict(state: &StateDict) -> Result<Self> {
        Ok(Self { network: EfficientNetLite0::load(state)?, device: Device::Cpu, on_device: None })
    }

    /// The same encoder computing its features on `device` with candle's ops ([`tensor_net`]): a CUDA
    /// device, or the CPU (slower than the kernels there; what the parity tests compare). Decoding and
    /// cropping stay on the CPU; the weights are copied to the device once, here.
    pub fn on_device(&self, device: &Device) -> Result<Self> {
        let on_device = tensor_net::TensorEfficientNet::new(&self.network, device)?;
        Ok(Self { on_device: Some(on_device), ..self.clone() })
    }

    /// Where features are computed: `None` on the CPU kernels, else the device of [`Self::on_device`].
    pub fn device(&self) -> Option<&Device> {
        self.on_device.as_ref().map(tensor_net::TensorEfficientNet::device)
    }

    /// The same encoder with its pointwise and classifier weights quantized to `dtype` (e.g.
    /// `GgmlDType::Q8_0`); see [`EfficientNetLite0::quantized`].
    /// On the same device as `self`.
    pub fn quantized(&self, dtype: candle_core::quantized::GgmlDType) -> Result<Self> {
        let quantized = Self { network: self.network.quantized(dtype)?, device: self.device.clone(), on_device: None };
        match self.device() {
            Some(device) => quantized.on_device(device),
            None => Ok(quantized),
        }
    }

    /// The network itself.
    pub fn network(&self) -> &EfficientNetLite0 {
        &self.network
    }

    /// Features and logits of normalised input `[n, 3, 224, 224]` (see [`crops_to_input`]).
    pub fn forward(&self, input: &Tensor) -> Result<ImageEncoding> {
        let features = self.features(input)?;
        let logits = self.network.logits(&features)?;
        Ok(ImageEncoding { features, logits })
    }

    /// Features only: `[n, 3, 224, 224]` → `[n, 1280]` on the CPU.
    pub fn features(&self, input: &Tensor) -> Result<Tensor> {
        match &self.on_device {
            Some(on_device) => match input.dims() {
                [_, 3, h, w] if *h > 0 && *w > 0 => Ok(on_device.features(input)?),
                dims => Err(ImageEncoderError::InvalidInput(dims.to_vec())),
            },
            None => self.network.features(input),
        }
    }

    /// Pictures → `[n, 1280]` features: resize, crop and normalise each, then one batched forward.
    pub fn encode_rgb(&self, images: &[RgbView<'_>]) -> Result<Tensor> {
        let crops: Vec<Vec<u8>> = images.iter().map(|&im| center_crop(im)).collect();
        let crops: Vec<&[u8]> = crops.iter().map(Vec::as_slice).collect();
        self.features(&crops_to_input(&crops, &self.device)?)
    }

    /// Image files → `[n, 1280]` features (decode, then [`Self::encode_rgb`]).
    #[cfg(feature = "native")]
    pub fn encode_files<P: AsRef<std::path::Path>>(&self, paths: &[P]) -> Result<Tensor> {
        let images = paths.iter().map(|p| decode_file(p.as_ref())).collect::<Result<Vec<_>>>()?;
        let views: Vec<RgbView<'_>> = images.iter().map(RgbImage::view).collect();
        self.encode_rgb(&views)
    }
}
