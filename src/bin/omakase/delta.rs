//! `omakase delta --bundle B (--items NEW.jsonl | --add DELTA.bin) [--json]`: appends products to a
//! published bundle as one small delta shard (docs/bundle.md § Deltas), so that visitors download a few
//! KB for them instead of the encoders.
//!
//! - `--items`: products in the dataset's `items.jsonl` format (pictures relative to the file's
//!   folder) are embedded here with the bundle's own quantized encoders and item tower (what a
//!   browser runs; `omakase embed --quantized` is the same path for one product), quantized as export
//!   quantizes shards, and written as `delta-<sha256[..16]>.bin`;
//! - `--add`: a delta made elsewhere (the shop's admin page, `www/demo/admin.html`) is checked
//!   against the bundle and copied in under that name.
//!
//! Only `manifest.json` changes among the bundle's files (a CDN's copies of the others stay valid);
//! the delta file is written first, then `manifest.json` replaces the old one atomically, and only if
//! no one changed it meanwhile. Exit codes: 0 ok; 2 bad input (named file, line or id), 1 otherwise.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use omakase::data::items::read_items;
use omakase::data::lines::open_reported;
use omakase::data::{Item, Severity};
use omakase::encoders::bundle::BundleEncoders;
use omakase::encoders::image::decode_bytes;
use omakase::fs::{read_bounded, write_atomically, MAX_IMAGE_FILE_BYTES};
use omakase::runtime::delta::{self, NewProduct};
use omakase::runtime::manifest::MAX_SHARD_BYTES;
use omakase::runtime::{ItemMeta, Manifest, Runtime};
use serde_json::json;

use crate::display::terminal_safe;

#[derive(clap::Args)]
pub struct Args {
    /// The bundle directory (exported with `--encoders`: its encoders and item tower embed the products).
    #[arg(long)]
    pub bundle: PathBuf,
    /// New products, one JSON object a line as in a dataset's items.jsonl (`item_id`, `title`,
    /// `description`, `image` relative to this file's folder, other fields for the text template,
    /// `url` or `link` for the card).
    #[arg(long, required_unless_present = "add", conflicts_with = "add")]
    pub items: Option<PathBuf>,
    /// A delta file made elsewhere (the admin page's download) to check and append.
    #[arg(long)]
    pub add: Option<PathBuf>,
    /// Print JSON (file, bytes, rows, ids) instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// The delta appended.
struct Appended {
    name: String,
    bytes: usize,
    ids: Vec<String>,
    deltas: usize,
    manifest_bytes: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match append(&args) {
        Ok(done) => {
            if args.json {
                let out = json!({
                    "file": done.name, "bytes": done.bytes, "rows": done.ids.len(), "ids": done.ids,
                    "deltas": done.deltas, "manifest_bytes": done.manifest_bytes,
                });
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!(
                    "{}: {} products appended as {} ({} bytes; manifest.json {} bytes, {} deltas)",
                    args.bundle.display(),
                    done.ids.len(),
                    done.name,
                    done.bytes,
                    done.manifest_bytes,
                    done.deltas
                );
                println!("  ids: {}", terminal_safe(&done.ids.join(", ")));
                println!("  upload {} and then manifest.json (only manifest.json changed)", done.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Failure::Input(message)) => {
            eprintln!("error: {}", terminal_safe(&message));
            Ok(ExitCode::from(2))
        }
        Err(Failure::Io(message)) => Err(anyhow::anyhow!("{}", terminal_safe(&message))),
    }
}

/// Bad input (exit 2) or a failed write (exit 1), each naming the file.
enum Failure {
    Input(String),
    Io(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Input(message)
    }
}

fn append(args: &Args) -> Result<Appended, Failure> {
    let manifest_bytes = super::recommend::read_manifest(&args.bundle)?;
    let manifest = Manifest::from_json(&manifest_bytes).map_err(|e| format!("{}: {e}", args.bundle.display()))?;
    // The bundle as visitors load it, earlier deltas included: a broken bundle takes no delta.
    let runtime = super::recommend::load(&args.bundle)?;
    let (bytes, rows, ids) = match (&args.items, &args.add) {
        (Some(items), _) => {
            let products = embed_products(&args.bundle, &manifest, &runtime, items)?;
            let ids = products.iter().map(|p| p.meta.id.clone()).collect();
            let built =
                delta::build(&manifest, &runtime, &products).map_err(|e| format!("{}: {e}", items.display()))?;
            (built.bytes, products.len(), ids)
        }
        (None, Some(file)) => {
            let bytes = read_bounded(file, MAX_SHARD_BYTES).map_err(|e| e.to_string())?;
            let checked = delta::check(&runtime, &manifest, &bytes, &file.display().to_string())
                .map_err(|e| format!("{e} (bundle {})", args.bundle.display()))?;
            let ids: Vec<String> = checked.header.items.iter().map(|m| m.id.clone()).collect();
            (bytes, ids.len(), ids)
        }
        (None, None) => return Err(Failure::Input("give --items NEW.jsonl or --add DELTA.bin".into())),
    };
    let (name, next) =
        delta::appended(&manifest, &bytes, rows).map_err(|e| format!("{}: {e}", args.bundle.display()))?;
    let new_manifest = next.to_json();
    // The delta first: a reader of the old manifest never sees it, and an interrupted run leaves an
    // unlisted file that the next run writes again under the same name (its name is its content).
    let delta_path = args.bundle.join(&name);
    write_atomically(&delta_path, &bytes).map_err(|e| Failure::Io(e.to_string()))?;
    // Two appends at once would each list only their own delta: the later one refuses instead.
    let now = super::recommend::read_manifest(&args.bundle)?;
    if now != manifest_bytes {
        let _ = std::fs::remove_file(&delta_path);
        return Err(Failure::Input(format!(
            "{}: manifest.json changed while the delta was made (another append?): run again",
            args.bundle.display()
        )));
    }
    let manifest_path = args.bundle.join("manifest.json");
    write_atomically(&manifest_path, &new_manifest).map_err(|e| Failure::Io(e.to_string()))?;
    Ok(Appended { name, bytes: bytes.len(), ids, deltas: next.deltas.len(), manifest_bytes: new_manifest.len() })
}

/// Every product of `items` through the bundle's encoders and item tower. A line the dataset
/// loader reports (not JSON, no `item_id`, an id twice, a field of the wrong type) is refused, as
/// is a product with neither text nor picture, or a picture for a bundle that reads none.
fn embed_products(
    bundle: &Path,
    manifest: &Manifest,
    runtime: &Runtime,
    items_path: &Path,
) -> Result<Vec<NewProduct>, String> {
    let name = items_path.display().to_string();
    let mut problems = Vec::new();
    let read = match open_reported(items_path, &name, &mut problems) {
        Some(reader) => read_items(reader, &name),
        None => Default::default(),
    };
    problems.extend(read.problems);
    // Only a product without text may stand, when its picture carries it (the model reads either).
    let fatal = problems.iter().find(|p| {
        p.severity == Severity::Fatal || {
            let line = p.line.and_then(|l| read.lines.iter().position(|&x| x == l));
            !(p.kind == omakase::data::ProblemKind::EmptyText && line.is_some_and(|i| read.items[i].image.is_some()))
        }
    });
    if let Some(problem) = fatal {
        return Err(problem.to_string());
    }
    let mut files = HashMap::new();
    for (_, entry) in manifest.encoder_files() {
        files.insert(entry.path.clone(), super::recommend::read_listed(bundle, entry)?);
    }
    let encoders = BundleEncoders::load(manifest, &files).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let folder = items_path.parent().unwrap_or(Path::new("."));
    let mut products = Vec::with_capacity(read.items.len());
    for (item, line) in read.items.iter().zip(&read.lines) {
        let at = format!("{name}:{line}");
        let text = encoders.template.render(item);
        let text_features = match text.is_empty() {
            true => None,
            false => Some(first_row(
                encoders.text.encode_batch(&[text.as_str()]).map_err(|e| format!("{at}: text encoder: {e}"))?,
            )?),
        };
        let image_features = match (&item.image, &encoders.image) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(format!(
                    "{at}: field `image`: the bundle's model reads no pictures (manifest.json has no `encoders.image`)"
                ))
            }
            (Some(path), Some(encoder)) => {
                let file = folder.join(path);
                let bytes =
                    read_bounded(&file, MAX_IMAGE_FILE_BYTES).map_err(|e| format!("{at}: field `image`: {e}"))?;
                let rgb = decode_bytes(&bytes, &file.display().to_string()).map_err(|e| format!("{at}: {e}"))?;
                let features =
                    encoder.encode_rgb(&[rgb.view()]).map_err(|e| format!("{at}: {}: {e}", file.display()))?;
                Some(first_row(features)?)
            }
        };
        let vectors = runtime
            .embed_item(text_features.as_deref(), image_features.as_deref())
            .map_err(|e| format!("{at}: {e}"))?;
        products.push(NewProduct { meta: card(item), vectors });
    }
    Ok(products)
}

/// A product's card, as export writes `items.json` entries: the picture as written, the link from
/// `url` or `link` when it is an http(s) or relative URL.
fn card(item: &Item) -> ItemMeta {
    let link = ["url", "link"]
        .iter()
        .find_map(|k| item.metadata.get(*k).and_then(|v| v.as_str()))
        .and_then(omakase::runtime::safe_link);
    ItemMeta { id: item.id.clone(), title: item.title.clone(), image: item.image.clone(), link }
}

fn first_row(features: candle_core::Tensor) -> Result<Vec<f32>, String> {
    let mut rows = features.to_vec2::<f32>().map_err(|e| format!("reading features: {e}"))?;
    rows.pop().ok_or_else(|| "the encoder returned no row".into())
}
