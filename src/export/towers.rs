//! The towers as GGUF files (the runtime's `tower` module reads them).
//!
//! Storage per tensor: Linear weight matrices (`*.weight` of rank 2 whose input width is a multiple
//! of 32, GGML's block) in the chosen type — Q8_0 by default, Q4_0 or F16 — and everything else
//! (biases, LayerNorms, position and modality embeddings) in F32: a few KB, and what a quantized
//! model is most sensitive to. Metadata: `general.architecture` = `omakase-sequence-tower` /
//! `omakase-item-tower`, `omakase.dim`, `omakase.weights_dtype`.

use std::collections::HashMap;
use std::io::Cursor;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Tensor};

use super::error::ExportError;
use crate::model::ModelConfig;
use crate::runtime::WeightsDtype;

/// Which tower a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TowerPart {
    Sequence,
    Item,
}

impl TowerPart {
    pub fn prefix(self) -> &'static str {
        match self {
            TowerPart::Sequence => "sequence_tower.",
            TowerPart::Item => "item_tower.",
        }
    }

    pub fn architecture(self) -> &'static str {
        match self {
            TowerPart::Sequence => "omakase-sequence-tower",
            TowerPart::Item => "omakase-item-tower",
        }
    }
}

/// The GGUF bytes of one tower from the model's named f32 tensors (names kept as in safetensors).
pub fn tower_gguf(
    tensors: &HashMap<String, Tensor>,
    part: TowerPart,
    config: &ModelConfig,
    weights: WeightsDtype,
) -> Result<Vec<u8>, ExportError> {
    let matrix_type = match weights {
        WeightsDtype::Q8_0 => GgmlDType::Q8_0,
        WeightsDtype::Q4_0 => GgmlDType::Q4_0,
        WeightsDtype::F16 => GgmlDType::F16,
    };
    let mut names: Vec<&String> = tensors.keys().filter(|n| n.starts_with(part.prefix())).collect();
    names.sort();
    if names.is_empty() {
        return Err(ExportError::Tensor { name: part.prefix().into(), reason: "no tensor under this prefix".into() });
    }
    let mut stored = Vec::with_capacity(names.len());
    for name in names {
        let err = |e: candle_core::Error| ExportError::Tensor { name: name.clone(), reason: e.to_string() };
        let tensor = tensors[name].to_dtype(DType::F32).map_err(err)?;
        let is_matrix = tensor.rank() == 2
            && name.ends_with(".weight")
            && !name.contains("embedding")
            && tensor.dims()[1] % matrix_type.block_size() == 0;
        let dtype = if is_matrix { matrix_type } else { GgmlDType::F32 };
        stored.push((name.clone(), QTensor::quantize(&tensor, dtype).map_err(err)?));
    }
    let metadata = [
        ("general.architecture", Value::String(part.architecture().into())),
        ("omakase.dim", Value::U32(config.dim as u32)),
        ("omakase.weights_dtype", Value::String(weights.as_str().into())),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let refs: Vec<(&str, &QTensor)> = stored.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &refs)
        .map_err(|e| ExportError::Tensor { name: part.prefix().into(), reason: e.to_string() })?;
    Ok(out.into_inner())
}
