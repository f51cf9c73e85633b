//! `omakase export --encoders`: the frozen encoders as GGUF files inside the bundle, for products the
//! bundle does not hold (the browser embeds them, then runs the item tower).
//!
//! ```text
//! MODELS/all-minilm-l6-v2/{model.safetensors, tokenizer.json, config.json} ─► text_encoder.gguf (Q8_0)
//! MODELS/efficientnet-lite0/efficientnet-lite0.safetensors                ─► image_encoder.gguf (Q8_0)
//!   (only when the model reads images and the catalogue's features hold some)
//! the run's text template + both files' size and sha256 ─► manifest `encoders`
//! ```
//! The files are the ones `omakase quantize --dtype q8_0` writes, read back before they are stored.
//!
//! Guard: a vector computed in the browser must come from the weights the catalogue's features came
//! from, or it is silently incomparable with the stored rows. Every file the features' encoder
//! identity records is hashed again in MODELS and must match; a differing or missing file is refused
//! by name.

use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;

use super::{Bundle, ExportError};
use crate::encoders::cache::sha256_hex;
use crate::encoders::features::{EncoderIdentity, Features};
use crate::encoders::gguf::{self, GgufPlan};
use crate::encoders::pipeline::{IMAGE_PREPROCESSING, IMAGE_WEIGHTS, TEXT_MODEL_DIR};
use crate::encoders::text::{ItemTextSpec, TextEncoder};
use crate::model::{ItemView, ModelConfig};
use crate::runtime::manifest::{EncoderFiles, FileEntry};

/// File name of the text encoder inside a bundle.
pub const TEXT_ENCODER_FILE: &str = "text_encoder.gguf";
/// File name of the image encoder inside a bundle.
pub const IMAGE_ENCODER_FILE: &str = "image_encoder.gguf";
/// Storage of the encoders' weight matrices (what `omakase quantize` defaults to: feature cosine to
/// f32 ≥ 0.999 on the goldens, a quarter of the f32 download).
const MATRICES: GgmlDType = GgmlDType::Q8_0;

/// The encoder files of a bundle, before they are added to it.
pub struct EncoderBundle {
    pub section: EncoderFiles,
    /// `(file name, bytes)` of each file the section lists.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Whether a bundle of this model needs the image encoder: the model reads images and the
/// catalogue's features were computed with one (a text-only catalogue has no image rows).
pub fn needs_image(model: &ModelConfig, features: &Features) -> bool {
    model.item_view != ItemView::TextOnly
        && model.image_dim > 0
        && features.image.encoder.is_some()
        && features.image.present_count() > 0
}

/// Quantizes the encoders of `models` (checked against `features`' encoder identities) and pairs
/// them with `template`, the rule the run composed item texts with. `features_path` names the
/// features file in errors.
pub fn encoder_bundle(
    models: &Path,
    features: &Features,
    features_path: &Path,
    template: &ItemTextSpec,
    with_image: bool,
) -> Result<EncoderBundle, ExportError> {
    if let Some(recorded) = &features.text_template {
        if recorded != template {
            return Err(ExportError::input(
                features_path,
                format!(
                    "its texts were composed with template {recorded:?}, the run's config says {template:?} \
                     (encode the catalogue again with the run's config)"
                ),
            ));
        }
    }
    let mut files = Vec::new();
    let mut entry = |path: &str, bytes: Vec<u8>| {
        let e = FileEntry { path: path.into(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) };
        files.push((path.to_string(), bytes));
        e
    };
    let text = entry(TEXT_ENCODER_FILE, text_gguf(models, features, features_path)?);
    let image = match with_image {
        true => Some(entry(IMAGE_ENCODER_FILE, image_gguf(models, features, features_path)?)),
        false => None,
    };
    Ok(EncoderBundle { section: EncoderFiles { text, image, text_template: template.clone() }, files })
}

/// Adds the encoder files to `bundle` and lists them in its manifest (`manifest.json` rewritten).
pub fn attach(bundle: &mut Bundle, encoders: EncoderBundle) -> Result<(), ExportError> {
    bundle.manifest.encoders = Some(encoders.section);
    bundle.manifest.validate().map_err(|e| ExportError::Invalid { reason: e.to_string() })?;
    bundle.files.retain(|(name, _)| name != "manifest.json");
    bundle.files.extend(encoders.files);
    bundle.files.push(("manifest.json".into(), bundle.manifest.to_json()));
    Ok(())
}

/// MiniLM as `omakase quantize` writes it, after checking its files against the features' identity.
fn text_gguf(models: &Path, features: &Features, features_path: &Path) -> Result<Vec<u8>, ExportError> {
    let dir = models.join(TEXT_MODEL_DIR);
    let identity = identity_of(features.text.encoder.as_ref(), "text", features_path)?;
    check_files(&dir, identity, features_path)?;
    // The files the GGUF is built from must all be covered by the identity, or an added config.json
    // (say) could change the encoder unnoticed.
    let config_path = dir.join("config.json");
    let mut inputs = vec!["model.safetensors", "tokenizer.json"];
    if config_path.is_file() {
        inputs.push("config.json");
    }
    if let Some(name) = inputs.iter().find(|n| !identity.files_sha256.contains_key(**n)) {
        return Err(ExportError::input(
            &dir.join(name),
            format!("not among the files {} records for the text encoder", features_path.display()),
        ));
    }
    let (bytes, _) = gguf::write_text_dir(&dir, GgufPlan::for_matrices(MATRICES))
        .map_err(|e| ExportError::input(&dir, e.to_string()))?;
    let encoder = TextEncoder::from_gguf_bytes(&bytes)
        .map_err(|e| ExportError::Invalid { reason: format!("{TEXT_ENCODER_FILE} read back: {e}") })?;
    let max_seq_len = encoder.max_seq_len().to_string();
    if let Some(recorded) = identity.settings.get("max_seq_len").filter(|r| **r != max_seq_len) {
        return Err(ExportError::input(
            &dir,
            format!("max_seq_len {max_seq_len}, the features were computed with {recorded}"),
        ));
    }
    Ok(bytes)
}

/// EfficientNet-Lite0 as `omakase quantize` writes it, after the same check.
fn image_gguf(models: &Path, features: &Features, features_path: &Path) -> Result<Vec<u8>, ExportError> {
    let path = models.join(IMAGE_WEIGHTS);
    let identity = identity_of(features.image.encoder.as_ref(), "image", features_path)?;
    let dir = path.parent().unwrap_or(models);
    check_files(dir, identity, features_path)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !identity.files_sha256.contains_key(&file_name) {
        return Err(ExportError::input(
            &path,
            format!("not among the files {} records for the image encoder", features_path.display()),
        ));
    }
    if let Some(recorded) = identity.settings.get("preprocessing").filter(|r| *r != IMAGE_PREPROCESSING) {
        return Err(ExportError::input(
            features_path,
            format!("image features preprocessed as {recorded:?}, this build does {IMAGE_PREPROCESSING:?}"),
        ));
    }
    let (bytes, _) = gguf::write_image(&read(&path)?, GgufPlan::for_matrices(MATRICES))
        .map_err(|e| ExportError::input(&path, e.to_string()))?;
    gguf::read_image(&bytes)
        .map_err(|e| ExportError::Invalid { reason: format!("{IMAGE_ENCODER_FILE} read back: {e}") })?;
    Ok(bytes)
}

fn identity_of<'a>(
    identity: Option<&'a EncoderIdentity>,
    what: &str,
    features_path: &Path,
) -> Result<&'a EncoderIdentity, ExportError> {
    identity.ok_or_else(|| {
        ExportError::input(
            features_path,
            format!("records no {what} encoder, so the bundle's {what} encoder cannot be checked against it"),
        )
    })
}

/// Every file the identity records, hashed again under `dir`: missing or different → refused by name.
fn check_files(dir: &Path, identity: &EncoderIdentity, features_path: &Path) -> Result<(), ExportError> {
    for (name, recorded) in &identity.files_sha256 {
        let path: PathBuf = dir.join(name);
        let found = crate::fs::sha256_file(&path).map_err(|e| {
            let (_, e) = e.into_parts();
            ExportError::input(
                &path,
                format!("{e}; {} was computed with it ({})", features_path.display(), identity.model),
            )
        })?;
        if &found != recorded {
            return Err(ExportError::input(
                &path,
                format!(
                    "sha256 {found} differs from {recorded}, the {} weights {} was computed with \
                     (a browser vector from other weights would not match the bundle's; pass the models \
                     folder the catalogue was encoded with, or encode and train again)",
                    identity.model,
                    features_path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, ExportError> {
    crate::fs::read_bounded(path, crate::fs::MAX_WEIGHTS_FILE_BYTES).map_err(ExportError::read)
}
