//! `omakase embed --bundle B --title T [--description D] [--image FILE] [--metadata JSON] [--models DIR]
//! [--quantized] [--json]`: the native reference vector of a product the bundle does not hold, as the
//! browser computes it: text composed with the bundle's `encoders.text_template`, frozen features
//! (f32 encoders from MODELS, or with `--quantized` the bundle's own GGUF encoders), then the bundle's
//! item tower through `omakase::runtime`.
//! Exit codes: 0 ok; 2 bad input (unreadable bundle or image, bad metadata, missing encoders), named.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use omakase::data::Item;
use omakase::encoders::bundle::BundleEncoders;
use omakase::encoders::image::{decode_bytes, ImageEncoder};
use omakase::encoders::pipeline::{default_models_dir, IMAGE_WEIGHTS, TEXT_MODEL_DIR};
use omakase::encoders::text::{ItemTextTemplate, TextEncoder};
use omakase::fs::MAX_IMAGE_FILE_BYTES;
use omakase::runtime::Manifest;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle directory (exported with `--encoders`: its text template is the model's).
    #[arg(long)]
    pub bundle: PathBuf,
    /// The product's title.
    #[arg(long)]
    pub title: String,
    /// The product's description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// The product's picture (JPEG, PNG or WebP).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Other fields as a JSON object (e.g. '{"year": 1995, "genres": ["Comedy"]}'), as items.jsonl has them.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Folder of the f32 encoder weights [default: $OMAKASE_MODELS, else models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Use the bundle's own quantized encoders (what the browser downloads) instead of MODELS.
    #[arg(long)]
    pub quantized: bool,
    /// Print JSON (text, tokens, features, vector) instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// What the product became.
struct Embedded {
    text: String,
    tokens: usize,
    text_features: Option<Vec<f32>>,
    image_features: Option<Vec<f32>>,
    vector: Vec<f32>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match embed(&args) {
        Ok(e) => {
            if args.json {
                let out = json!({
                    "text": e.text,
                    "tokens": e.tokens,
                    "text_features": e.text_features,
                    "image_features": e.image_features,
                    "vector": e.vector,
                });
                println!("{}", serde_json::to_string(&out)?);
            } else {
                let norm = e.vector.iter().map(|v| v * v).sum::<f32>().sqrt();
                println!("text ({} tokens): {:?}", e.tokens, e.text);
                println!(
                    "features: text {}, image {}",
                    e.text_features.as_ref().map_or("none".into(), |f| format!("{} values", f.len())),
                    e.image_features.as_ref().map_or("none".into(), |f| format!("{} values", f.len())),
                );
                let head: Vec<String> = e.vector.iter().take(6).map(|v| format!("{v:.4}")).collect();
                println!("vector: dim {}, norm {norm:.4}, [{}, …]", e.vector.len(), head.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {}", crate::display::terminal_safe(&message));
            Ok(ExitCode::from(2))
        }
    }
}

/// The encoders that turn the product into features.
struct Encoders {
    text: TextEncoder,
    image: Option<ImageEncoder>,
}

fn embed(args: &Args) -> Result<Embedded, String> {
    let manifest_path = args.bundle.join("manifest.json");
    let manifest_bytes = super::recommend::read_manifest(&args.bundle)?;
    let manifest = Manifest::from_json(&manifest_bytes).map_err(|e| format!("{}: {e}", args.bundle.display()))?;
    let section = manifest.encoders.as_ref().ok_or_else(|| {
        format!(
            "{}: no `encoders` section (the text template is unknown): export the bundle with --encoders",
            manifest_path.display()
        )
    })?;
    if args.image.is_some() && section.image.is_none() {
        return Err(format!(
            "--image: the bundle's model reads no images ({} has no `encoders.image`)",
            manifest_path.display()
        ));
    }
    let item = product(args)?;
    let template = ItemTextTemplate::new(section.text_template.clone())
        .map_err(|e| format!("{}: field `encoders.text_template`: {e}", manifest_path.display()))?;
    let text = template.render(&item);
    let encoders = match args.quantized {
        true => bundle_encoders(&args.bundle, &manifest)?,
        false => model_encoders(&args.models.clone().unwrap_or_else(default_models_dir), args.image.is_some())?,
    };

    let tokens = if text.is_empty() { 0 } else { encoders.text.tokenize(&text).len() };
    let text_features = match text.is_empty() {
        true => None,
        false => {
            Some(first_row(encoders.text.encode_batch(&[text.as_str()]).map_err(|e| format!("text encoder: {e}"))?)?)
        }
    };
    let image_features = match (&args.image, &encoders.image) {
        (Some(path), Some(encoder)) => {
            // A regular file of at most MAX_IMAGE_FILE_BYTES (`/dev/zero` or a pipe is refused).
            let bytes = omakase::fs::read_bounded(path, MAX_IMAGE_FILE_BYTES).map_err(|e| e.to_string())?;
            let rgb = decode_bytes(&bytes, &path.display().to_string()).map_err(|e| e.to_string())?;
            let features = encoder.encode_rgb(&[rgb.view()]).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(first_row(features)?)
        }
        _ => None,
    };

    let runtime = super::recommend::load(&args.bundle)?;
    let vectors = runtime
        .embed_item(text_features.as_deref(), image_features.as_deref())
        .map_err(|e| format!("{}: {e}", args.bundle.display()))?;
    Ok(Embedded { text, tokens, text_features, image_features, vector: vectors.fused })
}

/// The product as a catalogue item: title, description and the metadata object's fields.
fn product(args: &Args) -> Result<Item, String> {
    let metadata = match &args.metadata {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(other) => return Err(format!("--metadata: expected a JSON object, got {other}")),
            Err(e) => return Err(format!("--metadata: not JSON: {e}")),
        },
    };
    Ok(Item {
        id: "new-product".into(),
        title: args.title.clone(),
        description: args.description.clone(),
        image: args.image.as_ref().map(|p| p.display().to_string()),
        metadata,
    })
}

/// The f32 encoders of `models` (the image one only when a picture is given).
fn model_encoders(models: &Path, with_image: bool) -> Result<Encoders, String> {
    let text_dir = models.join(TEXT_MODEL_DIR);
    let text = TextEncoder::load(&text_dir).map_err(|e| format!("{}: {e}", text_dir.display()))?;
    let image = match with_image {
        true => {
            let path = models.join(IMAGE_WEIGHTS);
            Some(ImageEncoder::load(&path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        false => None,
    };
    Ok(Encoders { text, image })
}

/// The bundle's own GGUF encoders, each file checked against the manifest.
fn bundle_encoders(bundle: &Path, manifest: &Manifest) -> Result<Encoders, String> {
    let mut files = HashMap::new();
    for (_, entry) in manifest.encoder_files() {
        files.insert(entry.path.clone(), super::recommend::read_listed(bundle, entry)?);
    }
    let loaded = BundleEncoders::load(manifest, &files).map_err(|e| format!("{}: {e}", bundle.display()))?;
    Ok(Encoders { text: loaded.text, image: loaded.image })
}

fn first_row(features: candle_core::Tensor) -> Result<Vec<f32>, String> {
    let mut rows = features.to_vec2::<f32>().map_err(|e| format!("reading features: {e}"))?;
    rows.pop().ok_or_else(|| "the encoder returned no row".into())
}
