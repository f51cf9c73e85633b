//! The two frozen encoders as single self-contained GGUF files (the browser's download format).
//!
//! A file holds the encoder's tensors under their original safetensors names, and metadata:
//! `general.architecture` ([`TEXT_ARCHITECTURE`] / [`IMAGE_ARCHITECTURE`]), `omakase.matrices_dtype`,
//! and per encoder the text's `tokenizer.json`, `config.json` and `max_seq_len`, or the image's
//! preprocessing version and feature width. Which storage each tensor gets ([`GgufPlan`]):
//! - weight matrices whose input width is a multiple of the block size (the text's Linear layers,
//!   the image's pointwise convs and classifier) → the chosen type (Q8_0, Q4_0 or F16);
//! - embedding tables (half of MiniLM's bytes) → Q8_0 (F16 with `--dtype f16`): measured on the 404
//!   golden texts, Q8_0 tables cost nothing next to f16 ones (cosine to f32 0.99984 vs 0.99985) and
//!   take 11 MB less (`tests/quantize_gguf.rs`); Q4_0 tables would add to Q4_0's loss;
//! - everything else (biases, LayerNorm/BatchNorm vectors, stem, depthwise kernels, pointwise convs
//!   with 16/24/40/80/112 inputs) → F32: together a few hundred KB, and they are what the quantized
//!   models are most sensitive to.
//!
//! GGML blocks run along a tensor's last dimension, so a 1×1 conv weight `[out, in, 1, 1]` is stored
//! as `[out, in]` and its original shape kept under `omakase.shape.<name>`.
//!
//! The image's pointwise weights are quantized before BatchNorm is folded into them (the file keeps
//! the state dict's layout); since folding scales whole rows, this gives the same integer codes as
//! [`ImageEncoder::quantized`] up to the f16 rounding of each block's scale.
//!
//! Loading dequantizes every tensor to f32 and builds the encoder through its usual safetensors
//! constructor, so tensor names and shapes are checked there, with the same errors. Bytes in, so it
//! works on wasm32 (the encoder then holds f32 weights: GGUF is the download format here).
//!
//! [`ImageEncoder::quantized`]: crate::encoders::image::ImageEncoder::quantized

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use crate::encoders::image::{ImageEncoder, ImageEncoderError, FEATURE_DIM};
use crate::encoders::text::{BertConfig, EncoderError, TextEncoder};

/// `general.architecture` of a text-encoder file.
pub const TEXT_ARCHITECTURE: &str = "omakase-minilm";
/// `general.architecture` of an image-encoder file.
pub const IMAGE_ARCHITECTURE: &str = "omakase-efficientnet-lite0";
/// The image preprocessing a file's weights expect (v1: shorter side 224 with Pillow's bilinear,
/// centre 224×224 crop, `(x − 127) / 128`); a reader refuses any other.
pub const IMAGE_PREPROCESS_VERSION: u32 = 1;

const KEY_ARCHITECTURE: &str = "general.architecture";
const KEY_MATRICES_DTYPE: &str = "omakase.matrices_dtype";
const KEY_TOKENIZER: &str = "omakase.text.tokenizer_json";
const KEY_CONFIG: &str = "omakase.text.config_json";
const KEY_MAX_SEQ_LEN: &str = "omakase.text.max_seq_len";
const KEY_PREPROCESS: &str = "omakase.image.preprocess_version";
const KEY_FEATURE_DIM: &str = "omakase.image.feature_dim";
const SHAPE_PREFIX: &str = "omakase.shape.";

/// Everything that can go wrong writing or reading an encoder GGUF, naming the key or tensor.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("GGUF file: {context}: {source}")]
    Format { context: String, source: candle_core::Error },
    #[error("GGUF file holds `{found}`, expected `{expected}`")]
    Architecture { expected: &'static str, found: String },
    #[error("GGUF metadata `{key}`: {reason}")]
    Metadata { key: String, reason: String },
    #[error("source weights: {reason}")]
    Source { reason: String },
    #[error("tensor `{name}`: {source}")]
    Tensor { name: String, source: candle_core::Error },
    #[error("text encoder from GGUF: {0}")]
    Text(#[from] EncoderError),
    #[error("image encoder from GGUF: {0}")]
    Image(#[from] ImageEncoderError),
}

/// Storage types for the three kinds of tensor (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgufPlan {
    /// Weight matrices whose last dimension is a multiple of this type's block size.
    pub matrices: GgmlDType,
    /// Embedding tables (text only).
    pub tables: GgmlDType,
    /// Every other float tensor.
    pub rest: GgmlDType,
}

impl GgufPlan {
    /// The plan `omakase quantize --dtype` uses: `matrices` as asked, tables Q8_0 (F16 when `matrices`
    /// is F16), the rest F32 (with `F16` asked, every tensor of two or more dimensions is F16).
    pub fn for_matrices(matrices: GgmlDType) -> Self {
        let tables = if matrices == GgmlDType::F16 { GgmlDType::F16 } else { GgmlDType::Q8_0 };
        GgufPlan { matrices, tables, rest: GgmlDType::F32 }
    }
}

/// What a write stored: tensor counts per storage type and tensors left out (integer buffers such as
/// `position_ids` and `num_batches_tracked`, which no encoder reads).
#[derive(Debug, Clone, Default)]
pub struct GgufSummary {
    pub tensors_by_dtype: BTreeMap<String, usize>,
    pub skipped: Vec<String>,
}

/// A text encoder file from the model folder's bytes: `model.safetensors`, `tokenizer.json`,
/// `config.json` (None: MiniLM's defaults) and the max sequence length (tokens, specials included).
pub fn write_text(
    safetensors: &[u8],
    tokenizer_json: &str,
    config_json: Option<&str>,
    max_seq_len: usize,
    plan: GgufPlan,
) -> Result<(Vec<u8>, GgufSummary), GgufError> {
    let mut metadata = vec![
        (KEY_ARCHITECTURE.to_string(), Value::String(TEXT_ARCHITECTURE.into())),
        (KEY_TOKENIZER.to_string(), Value::String(tokenizer_json.into())),
        (KEY_MAX_SEQ_LEN.to_string(), Value::U32(max_seq_len as u32)),
    ];
    if let Some(config) = config_json {
        metadata.push((KEY_CONFIG.to_string(), Value::String(config.into())));
    }
    write(safetensors, metadata, plan, |name| name.starts_with("embeddings.") && name.ends_with("_embeddings.weight"))
}

/// A text encoder file from a sentence-transformers model folder (`model.safetensors`,
/// `tokenizer.json`, `config.json` when present; the max sequence length its
/// `sentence_bert_config.json` sets, as [`TextEncoder::load`] reads it): what `omakase quantize` and
/// `omakase export --encoders` store.
#[cfg(feature = "native")]
pub fn write_text_dir(dir: &std::path::Path, plan: GgufPlan) -> Result<(Vec<u8>, GgufSummary), GgufError> {
    let max_seq_len = TextEncoder::load(dir)?.max_seq_len();
    let read = |name: &str| {
        let path = dir.join(name);
        crate::fs::read_bounded(&path, crate::fs::MAX_WEIGHTS_FILE_BYTES)
            .map_err(|e| GgufError::Source { reason: e.to_string() })
    };
    let utf8 = |name: &str, bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .map_err(|_| GgufError::Source { reason: format!("{}: not UTF-8", dir.join(name).display()) })
    };
    let tokenizer = utf8("tokenizer.json", read("tokenizer.json")?)?;
    let config = match dir.join("config.json").is_file() {
        true => Some(utf8("config.json", read("config.json")?)?),
        false => None,
    };
    write_text(&read("model.safetensors")?, &tokenizer, config.as_deref(), max_seq_len, plan)
}

/// An image encoder file from `efficientnet-lite0.safetensors` bytes.
pub fn write_image(safetensors: &[u8], plan: GgufPlan) -> Result<(Vec<u8>, GgufSummary), GgufError> {
    let metadata = vec![
        (KEY_ARCHITECTURE.to_string(), Value::String(IMAGE_ARCHITECTURE.into())),
        (KEY_PREPROCESS.to_string(), Value::U32(IMAGE_PREPROCESS_VERSION)),
        (KEY_FEATURE_DIM.to_string(), Value::U32(FEATURE_DIM as u32)),
    ];
    write(safetensors, metadata, plan, |_| false)
}

// The encoders' GGUF constructors live here, with the format they read, so that the encoders' own
// files need nothing from this one (this file builds on theirs, not the other way round).

impl TextEncoder {
    /// The encoder stored in one GGUF file by `omakase quantize` (tokenizer included; works on wasm).
    pub fn from_gguf_bytes(bytes: &[u8]) -> Result<Self, GgufError> {
        read_text(bytes)
    }
}

impl ImageEncoder {
    /// The encoder stored in one GGUF file by `omakase quantize` (works on wasm).
    pub fn from_gguf_bytes(bytes: &[u8]) -> Result<Self, GgufError> {
        read_image(bytes)
    }
}

/// The text encoder stored by [`write_text`].
pub fn read_text(bytes: &[u8]) -> Result<TextEncoder, GgufError> {
    let file = GgufFile::read(bytes, TEXT_ARCHITECTURE)?;
    let tokenizer = file.string(KEY_TOKENIZER)?;
    let max_seq_len = file.u32(KEY_MAX_SEQ_LEN)? as usize;
    let config = match file.metadata.get(KEY_CONFIG) {
        None => BertConfig::default(),
        Some(_) => serde_json::from_str(file.string(KEY_CONFIG)?)
            .map_err(|e| GgufError::Metadata { key: KEY_CONFIG.into(), reason: e.to_string() })?,
    };
    let weights = crate::encoders::text::bert::Weights::from_tensors(file.to_tensors()?);
    Ok(TextEncoder::from_weights(&weights, tokenizer.as_bytes(), config, max_seq_len)?)
}

/// The image encoder stored by [`write_image`].
pub fn read_image(bytes: &[u8]) -> Result<ImageEncoder, GgufError> {
    let file = GgufFile::read(bytes, IMAGE_ARCHITECTURE)?;
    let version = file.u32(KEY_PREPROCESS)?;
    if version != IMAGE_PREPROCESS_VERSION {
        return Err(GgufError::Metadata {
            key: KEY_PREPROCESS.into(),
            reason: format!("version {version}, this build implements {IMAGE_PREPROCESS_VERSION}"),
        });
    }
    let width = file.u32(KEY_FEATURE_DIM)?;
    if width as usize != FEATURE_DIM {
        return Err(GgufError::Metadata {
            key: KEY_FEATURE_DIM.into(),
            reason: format!("{width}, expected {FEATURE_DIM}"),
        });
    }
    Ok(ImageEncoder::from_tensors(file.to_tensors()?, "image encoder GGUF")?)
}

/// Shared writer: every float tensor of `safetensors`, stored as `plan` says, plus `metadata`.
fn write(
    safetensors: &[u8],
    mut metadata: Vec<(String, Value)>,
    plan: GgufPlan,
    is_table: impl Fn(&str) -> bool,
) -> Result<(Vec<u8>, GgufSummary), GgufError> {
    let tensors = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)
        .map_err(|e| GgufError::Source { reason: e.to_string() })?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut summary = GgufSummary::default();
    let mut stored = Vec::new();
    for name in names {
        let tensor = &tensors[name];
        if !matches!(tensor.dtype(), DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
            summary.skipped.push(name.clone());
            continue;
        }
        let (dtype, tensor) = storage(name, tensor, plan, &is_table)?;
        if tensor.dims() != tensors[name].dims() {
            let dims = tensors[name].dims().iter().map(|&d| Value::U64(d as u64)).collect();
            metadata.push((format!("{SHAPE_PREFIX}{name}"), Value::Array(dims)));
        }
        let quantized =
            QTensor::quantize(&tensor, dtype).map_err(|source| GgufError::Tensor { name: name.clone(), source })?;
        *summary.tensors_by_dtype.entry(format!("{dtype:?}")).or_default() += 1;
        stored.push((name.clone(), quantized));
    }
    metadata.push((KEY_MATRICES_DTYPE.to_string(), Value::String(format!("{:?}", plan.matrices))));
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let stored_refs: Vec<(&str, &QTensor)> = stored.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &stored_refs)
        .map_err(|source| GgufError::Format { context: "writing".into(), source })?;
    Ok((out.into_inner(), summary))
}

/// The storage type of one float tensor, and the tensor in the shape it is stored in (f32).
fn storage(
    name: &str,
    tensor: &Tensor,
    plan: GgufPlan,
    is_table: impl Fn(&str) -> bool,
) -> Result<(GgmlDType, Tensor), GgufError> {
    let err = |source| GgufError::Tensor { name: name.into(), source };
    let tensor = tensor.to_dtype(DType::F32).map_err(err)?;
    let dims = tensor.dims().to_vec();
    // [out, in] matrices and 1×1 convs [out, in, 1, 1]: blocks along `in`.
    let matrix = match dims.as_slice() {
        [out, inputs] if !is_table(name) => Some((*out, *inputs)),
        [out, inputs, 1, 1] => Some((*out, *inputs)),
        _ => None,
    };
    if let Some((out, inputs)) = matrix {
        if inputs % plan.matrices.block_size() == 0 {
            return Ok((plan.matrices, tensor.reshape((out, inputs)).map_err(err)?));
        }
    }
    let dtype = if is_table(name) {
        plan.tables
    } else if dims.len() >= 2 && plan.matrices == GgmlDType::F16 {
        GgmlDType::F16
    } else {
        plan.rest
    };
    Ok((dtype, tensor))
}

/// A parsed GGUF buffer of the expected architecture.
struct GgufFile<'a> {
    bytes: &'a [u8],
    content: gguf_file::Content,
    metadata: HashMap<String, Value>,
}

impl<'a> GgufFile<'a> {
    fn read(bytes: &'a [u8], expected: &'static str) -> Result<Self, GgufError> {
        let mut content = gguf_file::Content::read(&mut Cursor::new(bytes))
            .map_err(|source| GgufError::Format { context: "reading the header".into(), source })?;
        let metadata = std::mem::take(&mut content.metadata);
        let file = GgufFile { bytes, content, metadata };
        let found = file.string(KEY_ARCHITECTURE)?;
        if found != expected {
            return Err(GgufError::Architecture { expected, found: found.to_string() });
        }
        Ok(file)
    }

    fn value(&self, key: &str) -> Result<&Value, GgufError> {
        self.metadata.get(key).ok_or_else(|| GgufError::Metadata { key: key.into(), reason: "missing".into() })
    }

    fn string(&self, key: &str) -> Result<&str, GgufError> {
        match self.value(key)? {
            Value::String(s) => Ok(s),
            other => {
                Err(GgufError::Metadata { key: key.into(), reason: format!("expected a string, found {other:?}") })
            }
        }
    }

    fn u32(&self, key: &str) -> Result<u32, GgufError> {
        match self.value(key)? {
            Value::U32(v) => Ok(*v),
            other => Err(GgufError::Metadata { key: key.into(), reason: format!("expected a u32, found {other:?}") }),
        }
    }

    /// The shape a tensor had before it was stored (`omakase.shape.<name>`, else the stored shape).
    fn original_shape(&self, name: &str, stored: &[usize]) -> Result<Vec<usize>, GgufError> {
        let key = format!("{SHAPE_PREFIX}{name}");
        let Some(value) = self.metadata.get(&key) else { return Ok(stored.to_vec()) };
        let bad = |reason: String| GgufError::Metadata { key: key.clone(), reason };
        let Value::Array(dims) = value else { return Err(bad(format!("expected an array, found {value:?}"))) };
        let dims = dims
            .iter()
            .map(|d| match d {
                Value::U64(d) => usize::try_from(*d).map_err(|_| bad(format!("dimension {d} is absurd"))),
                other => Err(bad(format!("expected u64 dimensions, found {other:?}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Sizes from the file: checked products, never a wrapped or panicking one.
        let elements = |shape: &[usize]| shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let Some(count) = elements(&dims) else {
            return Err(bad(format!("shape {dims:?} has more elements than can be counted")));
        };
        if Some(count) != elements(stored) {
            return Err(bad(format!("shape {dims:?} does not hold the {stored:?} stored values")));
        }
        Ok(dims)
    }

    /// Every tensor dequantized to f32 in its original shape, as safetensors bytes (the encoders'
    /// constructors then check names and shapes).
    /// Every tensor dequantized to f32 in its original shape, ready for the encoders' loaders. Built
    /// tensor by tensor, with no serialized copy in between: in the browser the wasm heap keeps its
    /// peak, and a safetensors round trip doubled it.
    fn to_tensors(&self) -> Result<HashMap<String, Tensor>, GgufError> {
        let mut reader = Cursor::new(self.bytes);
        let mut tensors = HashMap::with_capacity(self.content.tensor_infos.len());
        for (name, info) in &self.content.tensor_infos {
            let err = |source| GgufError::Tensor { name: name.clone(), source };
            let shape = self.original_shape(name, info.shape.dims())?;
            let tensor = self
                .content
                .tensor(&mut reader, name, &Device::Cpu)
                .and_then(|q| q.dequantize(&Device::Cpu))
                .and_then(|t| t.reshape(shape))
                .map_err(err)?;
            tensors.insert(name.clone(), tensor);
        }
        Ok(tensors)
    }
}
