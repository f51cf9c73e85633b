//! A bundle's own encoders (manifest section `encoders`, written by `omakase export --encoders`):
//! each file checked (size, sha256) against the manifest, then read as GGUF, with the text template
//! the model was trained with. Bytes in, so the browser and `omakase embed --quantized` share it.

use super::gguf::{self, GgufError};
use super::image::ImageEncoder;
use super::text::{EncoderError, ItemTextTemplate, TextEncoder};
use crate::runtime::manifest::{EncoderFiles, FileEntry};
use crate::runtime::{verify_file, FileSource, Manifest, RuntimeError};

/// Everything that can go wrong loading a bundle's encoders; each names the file or manifest field.
#[derive(Debug, thiserror::Error)]
pub enum BundleEncodersError {
    /// Not in the manifest, missing, truncated or corrupted.
    #[error(transparent)]
    File(#[from] RuntimeError),
    #[error("{file} (manifest.json field `{field}`): {source}")]
    Gguf { file: String, field: String, source: Box<GgufError> },
    #[error("manifest.json: field `encoders.text_template`: {0}")]
    Template(EncoderError),
}

/// The encoders a bundle ships, ready to embed a product.
#[derive(Debug, Clone)]
pub struct BundleEncoders {
    pub text: TextEncoder,
    /// `None` for a text-only model.
    pub image: Option<ImageEncoder>,
    /// How a product's fields become the text the text encoder reads.
    pub template: ItemTextTemplate,
}

impl BundleEncoders {
    /// The encoders of `manifest` from `files` (only the encoder files are read; the manifest was
    /// validated by [`Manifest::from_json`]).
    pub fn load(manifest: &Manifest, files: &dyn FileSource) -> Result<Self, BundleEncodersError> {
        let section = manifest.encoders.as_ref().ok_or_else(|| RuntimeError::NotInBundle {
            what: "the encoders".into(),
            reason: "export the bundle with `omakase export --encoders`".into(),
        })?;
        // Every file checked before any is parsed: a missing or corrupted file is named as such,
        // whichever it is.
        for (_, entry) in manifest.encoder_files() {
            checked(files, entry)?;
        }
        let bytes = |entry: &FileEntry| files.get(&entry.path).expect("checked above");
        Self::parse(section, bytes(&section.text), section.image.as_ref().map(bytes))
    }

    /// The encoders from their files' bytes, already checked against `section` (e.g. by the
    /// browser's fetcher, which verifies every download); `image` None leaves the image encoder out.
    pub fn parse(section: &EncoderFiles, text: &[u8], image: Option<&[u8]>) -> Result<Self, BundleEncodersError> {
        let template = ItemTextTemplate::new(section.text_template.clone())
            .map_err(|e| BundleEncodersError::Template(e.into()))?;
        let text = gguf::read_text(text).map_err(|source| gguf_error(&section.text.path, "encoders.text", source))?;
        let image = match (&section.image, image) {
            (Some(entry), Some(bytes)) => {
                Some(gguf::read_image(bytes).map_err(|source| gguf_error(&entry.path, "encoders.image", source))?)
            }
            _ => None,
        };
        Ok(BundleEncoders { text, image, template })
    }
}

/// The bytes of `entry` from `files`, size and sha256 checked.
fn checked<'a>(files: &'a dyn FileSource, entry: &FileEntry) -> Result<&'a [u8], RuntimeError> {
    let bytes = files.get(&entry.path).ok_or_else(|| RuntimeError::MissingFile { file: entry.path.clone() })?;
    verify_file(entry, bytes)?;
    Ok(bytes)
}

fn gguf_error(file: &str, field: &str, source: GgufError) -> BundleEncodersError {
    BundleEncodersError::Gguf { file: file.into(), field: field.into(), source: Box::new(source) }
}
