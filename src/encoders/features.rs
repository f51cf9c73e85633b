//! The feature store: every item's frozen text and image features, which of them exist, what they were
//! computed from, and by which encoders — one safetensors file.
//!
//! ```text
//! tensor      dtype  shape          meaning
//! text        F32    [n, text_dim]  MiniLM embedding per item (zeros where has_text = 0)
//! has_text    U8     [n]            1 = the item has text and `text` holds its embedding
//! text_hash   U8     [n, 32]        content hash of the row (cache.rs); zeros where has_text = 0
//! image       F32    [n, image_dim] EfficientNet-Lite0 pooled features (zeros where has_image = 0)
//! has_image   U8     [n]            1 = the item's image decoded and `image` holds its features
//! image_hash  U8     [n, 32]        content hash of the row; zeros where has_image = 0
//! __metadata__ { "omakase_features": JSON {format, version, item_ids, text_encoder, image_encoder,
//!                text_template[, shard]} }
//! ```
//! Row `i` of every tensor is item `item_ids[i]`, in catalogue order. A shard file (`encode --shard
//! I/N`) is a features file of one slice of the catalogue whose header also holds `shard`, a
//! [`ShardRecord`]; a whole features file has no `shard` key at all, so its bytes are as before.
//!
//! Why the hashes are tensors, not metadata: safetensors caps its header at 100 MB, and 2 × 64 hex
//! characters per item would reach it near 700k items; 64 raw bytes per item in the body have no cap.
//! Why a single metadata key holding a JSON document: the crate keeps `__metadata__` in a `HashMap`, whose
//! order changes from run to run; with one key the file is byte-for-byte reproducible.
//!
//! Everything but [`Features::save`] / [`Features::load`] compiles for wasm32.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::image::ImageEncoderError;
use super::shard::ShardRecord;
use super::text::{EncoderError, ItemTextSpec};
use crate::data::Problem;

/// `format` in the metadata: what kind of file this is.
pub const FORMAT: &str = "omakase-features";
/// Layout version; a file of another version is refused, not guessed at.
pub const FORMAT_VERSION: u32 = 1;
/// The one `__metadata__` key (see the module docs for why one).
const METADATA_KEY: &str = "omakase_features";

/// sha256 of what a feature row was computed from (see [`super::cache`]).
pub type ContentHash = [u8; 32];

/// Everything that makes an encoder give the outputs it gives: a feature row computed by one identity is
/// reused only by the same identity (the identity is part of every content hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderIdentity {
    /// e.g. `all-MiniLM-L6-v2`, `efficientnet-lite0`.
    pub model: String,
    /// sha256 (hex) of every file the encoder was built from, by file name.
    pub files_sha256: BTreeMap<String, String>,
    /// Settings that change outputs (maximum tokens, preprocessing version...).
    pub settings: BTreeMap<String, String>,
}

impl EncoderIdentity {
    /// A canonical text form (JSON; `BTreeMap`s keep key order fixed), what content hashes cover.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One modality of `n` items: `values` is `[n, dim]` row-major f32.
#[derive(Debug, Clone, PartialEq)]
pub struct ModalityFeatures {
    pub dim: usize,
    /// `[n, dim]`; rows of items without this modality are zeros.
    pub values: Vec<f32>,
    /// `[n]`: whether the item has this modality (its row is meaningful).
    pub present: Vec<bool>,
    /// `[n]`: the content hash of each present row; `None` where absent.
    pub hashes: Vec<Option<ContentHash>>,
    /// The encoder that computed the rows; `None` when it did not run (e.g. `--text-only`).
    pub encoder: Option<EncoderIdentity>,
}

impl ModalityFeatures {
    /// `n` absent rows of width `dim`.
    pub fn absent(n: usize, dim: usize, encoder: Option<EncoderIdentity>) -> Self {
        ModalityFeatures { dim, values: vec![0.0; n * dim], present: vec![false; n], hashes: vec![None; n], encoder }
    }

    pub fn len(&self) -> usize {
        self.present.len()
    }

    pub fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    /// Row `i` (`dim` values). Panics when `i >= len()`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Stores a present row: `values.len()` must be `dim` (checked by the caller's encoder shapes).
    pub fn set_row(&mut self, i: usize, values: &[f32], hash: ContentHash) {
        self.values[i * self.dim..(i + 1) * self.dim].copy_from_slice(values);
        self.present[i] = true;
        self.hashes[i] = Some(hash);
    }

    /// Marks row `i` absent (zeros, no hash).
    pub fn clear_row(&mut self, i: usize) {
        self.values[i * self.dim..(i + 1) * self.dim].fill(0.0);
        self.present[i] = false;
        self.hashes[i] = None;
    }

    /// Number of present rows.
    pub fn present_count(&self) -> usize {
        self.present.iter().filter(|&&p| p).count()
    }

    /// `[n, dim]` f32 on `device`.
    pub fn tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.values, (self.len(), self.dim), device)
    }

    /// `[n]` u8 presence mask (1 = present) on `device`, as the model's `ItemFeatures` takes it.
    pub fn mask(&self, device: &Device) -> candle_core::Result<Tensor> {
        let mask: Vec<u8> = self.present.iter().map(|&p| p as u8).collect();
        Tensor::from_vec(mask, self.len(), device)
    }
}

/// The frozen features of a catalogue (see the module docs for the file layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Catalogue ids; row `i` of every modality is item `item_ids[i]`.
    pub item_ids: Vec<String>,
    pub text: ModalityFeatures,
    pub image: ModalityFeatures,
    /// The rule the item texts were composed with (`None` when unknown).
    pub text_template: Option<ItemTextSpec>,
}

/// What `__metadata__` holds (as JSON under one key): all a file says about itself, which
/// [`read_header`] reads without the rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub item_ids: Vec<String>,
    pub text_encoder: Option<EncoderIdentity>,
    pub image_encoder: Option<EncoderIdentity>,
    pub text_template: Option<ItemTextSpec>,
    /// Only in a shard file; absent (not `null`) otherwise, so whole files keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
}

impl Header {
    /// Refuses another format or version, naming `origin`.
    fn check_version(&self, origin: &str) -> Result<(), FeaturesError> {
        if self.format == FORMAT && self.version == FORMAT_VERSION {
            return Ok(());
        }
        let reason = format!(
            "format {} version {}; this build reads {FORMAT} version {FORMAT_VERSION}",
            self.format, self.version
        );
        Err(format_error(origin, reason))
    }
}

/// Everything that can go wrong making, saving or loading features; each names its file or item.
#[derive(Debug, thiserror::Error)]
pub enum FeaturesError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot write features to {}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: crate::weights::WeightsError,
    },
    #[error("{} exists and is not an Omakase features file ({why}); refusing to replace it (choose another --out, or remove it)", path.display())]
    NotReplaceable { path: std::path::PathBuf, why: String },
    #[error("{origin}: not a readable safetensors file: {source}")]
    Safetensors { origin: String, source: safetensors::SafeTensorError },
    #[error("{origin}: {reason}")]
    Format { origin: String, reason: String },
    #[error("text encoder: {0}")]
    TextEncoder(#[from] EncoderError),
    #[error("image encoder: {0}")]
    ImageEncoder(#[from] ImageEncoderError),
    #[error("dataset {dir} is not usable: {} fatal problem(s), the first: {}",
            problems.len(), problems.first().map(ToString::to_string).unwrap_or_default())]
    UnusableDataset { dir: String, problems: Vec<Problem> },
}

/// Whether a features file may be written over `path`: nothing is there, or an Omakase features
/// file (a safetensors header whose `__metadata__` says format [`FORMAT`]; any version, and its
/// rows need not load: encoding again is how a broken one is fixed). Anything else — a folder, a
/// pipe, someone's file given as `--out` by mistake — is refused, naming it. Reads only the header.
#[cfg(feature = "native")]
pub fn check_replaceable(path: &std::path::Path) -> Result<(), FeaturesError> {
    let refuse = |why: &str| FeaturesError::NotReplaceable { path: path.to_owned(), why: why.into() };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(FeaturesError::Read { path: path.to_owned(), source }),
    };
    if !meta.is_file() {
        return Err(refuse("not a regular file"));
    }
    let read = |source| FeaturesError::Read { path: path.to_owned(), source };
    let mut file = std::fs::File::open(path).map_err(read)?;
    let header =
        safetensors_header(&mut file, meta.len()).map_err(read)?.ok_or_else(|| refuse("no safetensors header"))?;
    let ours = header["__metadata__"][METADATA_KEY]
        .as_str()
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .is_some_and(|h| h["format"] == FORMAT);
    match ours {
        true => Ok(()),
        false => Err(refuse(&format!("no `{FORMAT}` header"))),
    }
}

/// The JSON header of a safetensors file; `Ok(None)` when the file does not start with one.
#[cfg(feature = "native")]
fn safetensors_header(file: &mut std::fs::File, file_len: u64) -> std::io::Result<Option<serde_json::Value>> {
    use std::io::Read as _;
    let mut len = [0u8; 8];
    if file.read_exact(&mut len).is_err() {
        return Ok(None);
    }
    // safetensors' own limit on a header: 100 MB.
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 || len > file_len - 8 {
        return Ok(None);
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)?;
    Ok(serde_json::from_slice(&header).ok())
}

/// A features file's [`Header`] without its rows (merge checks a set of shards before loading any):
/// the file must be a regular one holding an Omakase features header of this version.
#[cfg(feature = "native")]
pub fn read_header(path: &std::path::Path) -> Result<Header, FeaturesError> {
    let origin = path.display().to_string();
    let read = |e: crate::fs::ReadError| {
        let (path, source) = e.into_parts();
        FeaturesError::Read { path, source }
    };
    let (mut file, len) = crate::fs::open_regular(path).map_err(read)?;
    let io = |source| FeaturesError::Read { path: path.to_owned(), source };
    let json = safetensors_header(&mut file, len).map_err(io)?;
    let metadata = json.as_ref().map(|json| &json["__metadata__"][METADATA_KEY]);
    let Some(header) = metadata.and_then(|m| m.as_str()) else {
        return Err(format_error(&origin, format!("no `{METADATA_KEY}` header: not a features file")));
    };
    let header: Header = serde_json::from_str(header)
        .map_err(|e| format_error(&origin, format!("__metadata__ `{METADATA_KEY}`: {e}")))?;
    header.check_version(&origin)?;
    Ok(header)
}

/// Refuses a NaN or infinite feature where the file enters, naming the item and modality: further
/// on it became a silent all-zero int8 row in `export` or a loss blamed on the learning rate.
fn check_finite(item_ids: &[String], name: &str, m: &ModalityFeatures, origin: &str) -> Result<(), FeaturesError> {
    if m.dim == 0 {
        return Ok(());
    }
    match m.values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(at) => {
            let (row, col) = (at / m.dim, at % m.dim);
            let id = item_ids.get(row).map(String::as_str).unwrap_or("?");
            let value = m.values[at];
            Err(format_error(origin, format!("item {id:?}: {name} feature {col} is {value} (features must be finite)")))
        }
    }
}

impl Features {
    /// Refuses NaN or infinity in any row, naming the item and modality (and `origin`, the file):
    /// [`Features::from_bytes`] checks on load, and `train` checks what it encodes before a loss
    /// could turn non-finite and be blamed on the learning rate.
    pub fn check_finite(&self, origin: &str) -> Result<(), FeaturesError> {
        for (name, m) in [("text", &self.text), ("image", &self.image)] {
            check_finite(&self.item_ids, name, m, origin)?;
        }
        Ok(())
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.item_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.item_ids.is_empty()
    }

    /// The safetensors bytes (deterministic: the same features give the same bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FeaturesError> {
        self.to_bytes_with(None)
    }

    /// The bytes of a shard file: these features (one slice's items) with `shard` in the header.
    pub fn to_shard_bytes(&self, shard: &ShardRecord) -> Result<Vec<u8>, FeaturesError> {
        self.to_bytes_with(Some(shard))
    }

    fn to_bytes_with(&self, shard: Option<&ShardRecord>) -> Result<Vec<u8>, FeaturesError> {
        let origin = "features being written";
        self.check_shapes(origin)?;
        let header = Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            item_ids: self.item_ids.clone(),
            text_encoder: self.text.encoder.clone(),
            image_encoder: self.image.encoder.clone(),
            text_template: self.text_template.clone(),
            shard: shard.cloned(),
        };
        let header = serde_json::to_string(&header).map_err(|e| format_error(origin, e.to_string()))?;
        let buffers = [("text", &self.text), ("image", &self.image)].map(|(name, m)| (name, encode_modality(m)));
        let mut views = Vec::new();
        for (name, (values, mask, hashes)) in &buffers {
            let (n, dim) = (self.len(), self.item_dim(name));
            views.push((name.to_string(), view(Dtype::F32, vec![n, dim], values)?));
            views.push((format!("has_{name}"), view(Dtype::U8, vec![n], mask)?));
            views.push((format!("{name}_hash"), view(Dtype::U8, vec![n, 32], hashes)?));
        }
        let metadata = [(METADATA_KEY.to_string(), header)].into_iter().collect();
        safetensors::serialize(views, Some(metadata))
            .map_err(|source| FeaturesError::Safetensors { origin: origin.into(), source })
    }

    /// Parses and checks a features file; `origin` (a path) labels errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, FeaturesError> {
        Self::from_bytes_with_shard(bytes, origin).map(|(features, _)| features)
    }

    /// [`Features::from_bytes`], with the shard record of a shard file (`None` for a whole file).
    pub fn from_bytes_with_shard(bytes: &[u8], origin: &str) -> Result<(Self, Option<ShardRecord>), FeaturesError> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|source| FeaturesError::Safetensors { origin: origin.into(), source })?;
        let (_, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|source| FeaturesError::Safetensors { origin: origin.into(), source })?;
        let header_json =
            metadata.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)).ok_or_else(|| {
                format_error(origin, format!("no `{METADATA_KEY}` in __metadata__: not a features file"))
            })?;
        let header: Header = serde_json::from_str(header_json)
            .map_err(|e| format_error(origin, format!("__metadata__ `{METADATA_KEY}`: {e}")))?;
        header.check_version(origin)?;
        let n = header.item_ids.len();
        let text = read_modality(&tensors, "text", n, header.text_encoder, origin)?;
        let image = read_modality(&tensors, "image", n, header.image_encoder, origin)?;
        let features = Features { item_ids: header.item_ids, text, image, text_template: header.text_template };
        features.check_finite(origin)?;
        Ok((features, header.shard))
    }

    /// Writes the file atomically (a temporary file beside it, then a rename), creating its folder.
    #[cfg(feature = "native")]
    pub fn save(&self, path: &std::path::Path) -> Result<(), FeaturesError> {
        save_bytes(path, &self.to_bytes()?)
    }

    /// Writes a shard file (see [`Features::to_shard_bytes`]) atomically, as [`Features::save`].
    #[cfg(feature = "native")]
    pub fn save_shard(&self, path: &std::path::Path, shard: &ShardRecord) -> Result<(), FeaturesError> {
        save_bytes(path, &self.to_shard_bytes(shard)?)
    }

    /// Reads and checks a features file, with its shard record (`None` for a whole file).
    #[cfg(feature = "native")]
    pub fn load_with_shard(path: &std::path::Path) -> Result<(Self, Option<ShardRecord>), FeaturesError> {
        // A regular file (a link to a device or a named pipe is refused), read up to its size.
        let bytes = crate::fs::read_bounded(path, u64::MAX).map_err(|e| {
            let (path, source) = e.into_parts();
            FeaturesError::Read { path, source }
        })?;
        Self::from_bytes_with_shard(&bytes, &path.display().to_string())
    }

    /// Reads and checks a features file.
    #[cfg(feature = "native")]
    pub fn load(path: &std::path::Path) -> Result<Self, FeaturesError> {
        Self::load_with_shard(path).map(|(features, _)| features)
    }

    fn item_dim(&self, name: &str) -> usize {
        if name == "text" {
            self.text.dim
        } else {
            self.image.dim
        }
    }

    /// Every modality has `n` rows of its width (the struct's fields are public, so check before writing).
    fn check_shapes(&self, origin: &str) -> Result<(), FeaturesError> {
        let n = self.len();
        for (name, m) in [("text", &self.text), ("image", &self.image)] {
            if m.values.len() != n * m.dim || m.present.len() != n || m.hashes.len() != n {
                return Err(format_error(
                    origin,
                    format!(
                        "{name}: {} values, {} flags, {} hashes for {n} items of width {}",
                        m.values.len(),
                        m.present.len(),
                        m.hashes.len(),
                        m.dim
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Writes `bytes` atomically (a temporary file beside `path`, then a rename), creating its folder.
#[cfg(feature = "native")]
fn save_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<(), FeaturesError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| FeaturesError::Write {
            path: path.to_owned(),
            source: crate::weights::WeightsError::Io { path: dir.to_owned(), source },
        })?;
    }
    crate::weights::legacy_pth::write_atomically(path, bytes)
        .map_err(|source| FeaturesError::Write { path: path.to_owned(), source })
}

fn format_error(origin: &str, reason: String) -> FeaturesError {
    FeaturesError::Format { origin: origin.to_string(), reason }
}

fn view<'a>(dtype: Dtype, shape: Vec<usize>, data: &'a [u8]) -> Result<TensorView<'a>, FeaturesError> {
    TensorView::new(dtype, shape, data)
        .map_err(|source| FeaturesError::Safetensors { origin: "features being written".into(), source })
}

/// Little-endian bytes of the values, the mask and the hashes (absent = 32 zero bytes).
fn encode_modality(m: &ModalityFeatures) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let values = m.values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mask = m.present.iter().map(|&p| p as u8).collect();
    let hashes = m.hashes.iter().flat_map(|h| h.unwrap_or([0; 32])).collect();
    (values, mask, hashes)
}

/// Reads `name`, `has_{name}`, `{name}_hash`, checking dtypes and shapes against `n` items.
fn read_modality(
    tensors: &SafeTensors<'_>,
    name: &str,
    n: usize,
    encoder: Option<EncoderIdentity>,
    origin: &str,
) -> Result<ModalityFeatures, FeaturesError> {
    let fetch = |tensor: &str, dtype: Dtype| -> Result<TensorView<'_>, FeaturesError> {
        let t = tensors.tensor(tensor).map_err(|_| format_error(origin, format!("tensor `{tensor}` is missing")))?;
        if t.dtype() != dtype {
            return Err(format_error(origin, format!("tensor `{tensor}` is {:?}, expected {dtype:?}", t.dtype())));
        }
        Ok(t)
    };
    let expect_shape = |tensor: &str, actual: &[usize], expected: &[usize]| {
        if actual == expected {
            Ok(())
        } else {
            Err(format_error(
                origin,
                format!("tensor `{tensor}` has shape {actual:?}, expected {expected:?} ({n} item ids)"),
            ))
        }
    };

    let values = fetch(name, Dtype::F32)?;
    let dim = match values.shape() {
        [rows, dim] if *rows == n => *dim,
        shape => return Err(format_error(origin, format!("tensor `{name}` has shape {shape:?}, expected [{n}, dim]"))),
    };
    let mask_name = format!("has_{name}");
    let mask = fetch(&mask_name, Dtype::U8)?;
    expect_shape(&mask_name, mask.shape(), &[n])?;
    let hash_name = format!("{name}_hash");
    let hashes = fetch(&hash_name, Dtype::U8)?;
    expect_shape(&hash_name, hashes.shape(), &[n, 32])?;

    let values: Vec<f32> =
        values.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let present: Vec<bool> = mask.data().iter().map(|&b| b != 0).collect();
    let hashes: Vec<Option<ContentHash>> = hashes
        .data()
        .chunks_exact(32)
        .zip(&present)
        .map(|(h, &p)| p.then(|| h.try_into().expect("chunks of 32")))
        .collect();
    Ok(ModalityFeatures { dim, values, present, hashes, encoder })
}

/// The features as the model's tensors: `(text [n, text_dim], image [n, image_dim], has_text [n] u8,
/// has_image [n] u8)`.
pub fn as_tensors(features: &Features, device: &Device) -> candle_core::Result<(Tensor, Tensor, Tensor, Tensor)> {
    Ok((
        features.text.tensor(device)?,
        features.image.tensor(device)?,
        features.text.mask(device)?,
        features.image.mask(device)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(model: &str) -> EncoderIdentity {
        EncoderIdentity {
            model: model.into(),
            files_sha256: [("w.safetensors".to_string(), "ab".repeat(32))].into(),
            settings: [("version".to_string(), "1".to_string())].into(),
        }
    }

    fn sample() -> Features {
        let mut text = ModalityFeatures::absent(3, 4, Some(identity("t")));
        text.set_row(0, &[1.0, 2.0, 3.0, 4.0], [7; 32]);
        text.set_row(2, &[-1.0, 0.5, 0.0, f32::MIN_POSITIVE], [9; 32]);
        let mut image = ModalityFeatures::absent(3, 2, None);
        image.set_row(1, &[6.0, 0.25], [1; 32]);
        Features {
            item_ids: vec!["a".into(), "b\"é".into(), "c".into()],
            text,
            image,
            text_template: Some(ItemTextSpec::default()),
        }
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let features = sample();
        let bytes = features.to_bytes().unwrap();
        let back = Features::from_bytes(&bytes, "mem").unwrap();
        assert_eq!(back, features);
        assert_eq!(back.to_bytes().unwrap(), bytes);
        assert_eq!(back.text.present, [true, false, true]);
        assert_eq!(back.image.hashes, [None, Some([1; 32]), None]);
    }

    #[test]
    fn a_shard_file_carries_its_record_and_a_whole_file_has_no_shard_key() {
        let record = ShardRecord {
            index: 1,
            count: 4,
            catalogue_items: 9,
            catalogue_sha256: "c".repeat(64),
            item_ids_sha256: "i".repeat(64),
        };
        let features = sample();
        let shard = features.to_shard_bytes(&record).unwrap();
        assert_eq!(Features::from_bytes_with_shard(&shard, "s").unwrap(), (features.clone(), Some(record)));
        let whole = features.to_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&whole).contains("shard"));
        assert_eq!(Features::from_bytes_with_shard(&whole, "w").unwrap().1, None);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.safetensors");
        std::fs::write(&path, &shard).unwrap();
        let header = read_header(&path).unwrap();
        assert_eq!((header.item_ids.len(), header.shard.map(|s| s.index)), (3, Some(1)));
        std::fs::write(&path, b"not safetensors").unwrap();
        let err = read_header(&path).unwrap_err().to_string();
        assert!(err.contains("s.safetensors") && err.contains("not a features file"), "{err}");
    }

    #[test]
    fn tensors_have_the_model_shapes() {
        let (text, image, has_text, has_image) = as_tensors(&sample(), &Device::Cpu).unwrap();
        assert_eq!((text.dims(), image.dims()), (&[3, 4][..], &[3, 2][..]));
        assert_eq!(has_text.to_vec1::<u8>().unwrap(), [1, 0, 1]);
        assert_eq!(has_image.to_vec1::<u8>().unwrap(), [0, 1, 0]);
    }

    #[test]
    fn inconsistent_shapes_are_refused_when_writing() {
        let mut features = sample();
        features.image.present.pop();
        let err = features.to_bytes().unwrap_err().to_string();
        assert!(err.contains("image") && err.contains("3 items"), "{err}");
    }

    /// Rewrites one tensor of a valid file with another shape and checks the error names it.
    #[test]
    fn a_wrong_shape_on_disk_is_a_clear_error() {
        let good = sample();
        let bytes = good.to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let bad_mask = [1u8; 2];
        let mut views: Vec<(String, TensorView<'_>)> =
            st.tensors().into_iter().filter(|(name, _)| name != "has_image").collect();
        views.push(("has_image".into(), TensorView::new(Dtype::U8, vec![2], &bad_mask).unwrap()));
        let bad = safetensors::serialize(views, meta.metadata().clone()).unwrap();
        let err = Features::from_bytes(&bad, "x.safetensors").unwrap_err().to_string();
        assert!(err.contains("x.safetensors") && err.contains("has_image") && err.contains("[2]"), "{err}");
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        let err = Features::from_bytes(b"garbage", "g.bin").unwrap_err().to_string();
        assert!(err.starts_with("g.bin: not a readable safetensors file"), "{err}");
        let plain =
            safetensors::serialize([("w", TensorView::new(Dtype::F32, vec![1], &[0u8; 4]).unwrap())], None).unwrap();
        let err = Features::from_bytes(&plain, "weights.safetensors").unwrap_err().to_string();
        assert!(err.contains("not a features file"), "{err}");
    }
}
