//! The EfficientNet-Lite0 state dict as read from safetensors: tensors by their PyTorch names
//! (`_conv_stem.weight`, `_blocks.3._bn1.running_var`, ...), shape-checked on the way out.

use std::collections::HashMap;

use candle_core::{DType, Device, Shape, Tensor};

use super::error::{ImageEncoderError, Result};

/// Named tensors plus where they came from, for error messages.
pub struct StateDict {
    tensors: HashMap<String, Tensor>,
    origin: String,
}

impl StateDict {
    /// Parses safetensors bytes; `origin` (a path, or "bytes") only labels errors.
    pub fn from_safetensors_bytes(bytes: &[u8], origin: &str, device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, device).map_err(|source| {
            ImageEncoderError::Weights { origin: origin.to_string(), tensor: "(file)".into(), source: Box::new(source) }
        })?;
        Ok(Self { tensors, origin: origin.to_string() })
    }

    /// Tensors already in memory (e.g. dequantized from a GGUF file); `origin` labels errors.
    pub fn from_tensors(tensors: HashMap<String, Tensor>, origin: &str) -> Self {
        Self { tensors, origin: origin.to_string() }
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor `name` as f32, checked to have `shape`.
    pub fn get(&self, name: &str, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let fail = |source: candle_core::Error| ImageEncoderError::Weights {
            origin: self.origin.clone(),
            tensor: name.to_string(),
            source: Box::new(source),
        };
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| fail(candle_core::Error::Msg("missing from the state dict".into())))?;
        if tensor.shape() != &shape {
            return Err(fail(candle_core::Error::Msg(format!(
                "shape {:?}, expected {:?}",
                tensor.dims(),
                shape.dims()
            ))));
        }
        tensor.to_dtype(DType::F32).map_err(fail)
    }

    /// Where the weights came from (for messages).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}
