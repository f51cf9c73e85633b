//! Catalogue → frozen features (native): the engine behind `omakase encode` and the first step of `train`.
//!
//! ```text
//! dataset dir ─load_dir─► items ─compose─► texts ─hash─► cached rows │ the rest ─batches (longest first)─► MiniLM
//!             ─check_images─► usable images ─hash file bytes─► cached rows │ the rest ─decode+crop (all cores)
//!                                                                   ─batches─► EfficientNet-Lite0
//!             ─► Features (rows in catalogue order, masks for missing modalities) ─atomic write─► out file
//! ```
//! The previous output file is the cache (see [`super::cache`]): rows whose content hash matches are copied
//! from it, so a second run encodes nothing and writes the same bytes.
//!
//! [`encode_shard`] does the same for one slice of the catalogue ([`super::shard`]): only that slice's
//! images are checked and its items encoded, and its file (a shard file, whose previous version is its
//! cache) records what it belongs to, for [`super::merge`].
//!
//! Whether an image is usable is decided by [`crate::data::images::check_images`] — the same check
//! `omakase validate` reports — not by `Item::image` being set. An image that passed the check but then
//! fails to read or decode here (the file changed meanwhile) is masked as missing with a warning.

use std::cmp::Reverse;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::cache::{content_hash, sha256_hex, text_hash, RowCache};
use super::features::{ContentHash, EncoderIdentity, Features, FeaturesError, ModalityFeatures};
use super::image::{center_crop, crops_to_input, decode_bytes, ImageEncoder, ImageEncoderError, FEATURE_DIM};
use super::shard::{Shard, ShardRecord};
use super::text::{EncoderError, ItemTextTemplate, TextEncoder};
use crate::data::images::{check_images, ImageCheck};
use crate::data::load::{load_dir, Loaded};
use crate::data::{Item, Problem, Severity};

/// The text model's folder inside the models directory.
pub const TEXT_MODEL_DIR: &str = "all-minilm-l6-v2";
/// The image model's weights inside the models directory (made by `scripts/fetch-models.sh`).
pub const IMAGE_WEIGHTS: &str = "efficientnet-lite0/efficientnet-lite0.safetensors";
/// What the image encoder does to a file before the network. Part of the image encoder's identity:
/// change it whenever decoding or preprocessing changes, so cached image rows are recomputed.
pub const IMAGE_PREPROCESSING: &str =
    "v1: strict decode to RGB8 (Pillow convert); shorter side 224 Pillow bilinear; centre crop 224; (x-127)/128";
/// Files of a sentence-transformers folder that change the text encoder's output, when present.
const TEXT_MODEL_FILES: [&str; 5] =
    ["model.safetensors", "tokenizer.json", "config.json", "sentence_bert_config.json", "1_Pooling/config.json"];

/// `$OMAKASE_MODELS`, else `models/` (relative to the working directory).
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("OMAKASE_MODELS").map_or_else(|| PathBuf::from("models"), PathBuf::from)
}

/// The text encoder and what identifies it.
#[derive(Debug, Clone)]
pub struct TextModel {
    pub encoder: TextEncoder,
    pub identity: EncoderIdentity,
}

/// The image encoder and what identifies it.
#[derive(Debug, Clone)]
pub struct ImageModel {
    pub encoder: ImageEncoder,
    pub identity: EncoderIdentity,
}

/// The frozen encoders; `image` is `None` for text-only features.
#[derive(Debug, Clone)]
pub struct Encoders {
    pub text: TextModel,
    pub image: Option<ImageModel>,
}

impl Encoders {
    /// Loads MiniLM from `models/all-minilm-l6-v2/` and, when `with_image`, EfficientNet-Lite0 from
    /// `models/efficientnet-lite0/efficientnet-lite0.safetensors`, hashing the files they are built from.
    pub fn load(models: &Path, with_image: bool) -> Result<Self, FeaturesError> {
        let text_dir = models.join(TEXT_MODEL_DIR);
        let encoder = TextEncoder::load(&text_dir)?;
        let mut files = Vec::new();
        for name in TEXT_MODEL_FILES {
            if text_dir.join(name).is_file() {
                files.push((name.to_string(), sha256_of_file(&text_dir.join(name))?));
            }
        }
        let settings = [("max_seq_len".to_string(), encoder.max_seq_len().to_string())];
        let identity = EncoderIdentity {
            model: "all-MiniLM-L6-v2".into(),
            files_sha256: files.into_iter().collect(),
            settings: settings.into_iter().collect(),
        };
        let text = TextModel { encoder, identity };

        let image = if with_image {
            let path = models.join(IMAGE_WEIGHTS);
            let encoder = ImageEncoder::load(&path)?;
            let identity = EncoderIdentity {
                model: "efficientnet-lite0".into(),
                files_sha256: [("efficientnet-lite0.safetensors".to_string(), sha256_of_file(&path)?)].into(),
                settings: [("preprocessing".to_string(), IMAGE_PREPROCESSING.to_string())].into(),
            };
            Some(ImageModel { encoder, identity })
        } else {
            None
        };
        Ok(Encoders { text, image })
    }

    /// The same encoders computing on `device` with candle's ops (`TextEncoder::on_device`,
    /// `ImageEncoder::on_device`): `omakase encode --device cuda`. Tokenizing, decoding and cropping
    /// stay on the CPU.
    ///
    /// The identities are unchanged: the device path computes the same function of the same files
    /// (within the goldens' tolerances, `tests/encode_device.rs`), so its rows and the kernels' are
    /// interchangeable in the cache and a features file does not say where it was computed.
    pub fn on_device(&self, device: &Device) -> Result<Self, FeaturesError> {
        let text = TextModel { encoder: self.text.encoder.on_device(device)?, identity: self.text.identity.clone() };
        let image = match &self.image {
            Some(model) => {
                Some(ImageModel { encoder: model.encoder.on_device(device)?, identity: model.identity.clone() })
            }
            None => None,
        };
        Ok(Encoders { text, image })
    }
}

fn sha256_of_file(path: &Path) -> Result<String, FeaturesError> {
    let bytes = crate::fs::read_bounded(path, u64::MAX).map_err(|e| {
        let (path, source) = e.into_parts();
        FeaturesError::Read { path, source }
    })?;
    Ok(sha256_hex(&bytes))
}

/// How to encode.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// Texts per forward pass of the text encoder.
    pub batch_size: usize,
    /// Images per forward pass. Smaller than the text batch: EfficientNet's early activations are large
    /// (batch 32 allocates ~150 MB tensors, and the page faults cost more than the larger batch saves);
    /// on 2 cores 8 was ~13% faster than 32.
    pub image_batch_size: usize,
    /// How an item's fields become its text (the default reproduces the MiniLM goldens' texts).
    pub template: ItemTextTemplate,
    /// Show progress bars on stderr (indicatif hides them anyway when stderr is not a terminal).
    pub progress: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { batch_size: 32, image_batch_size: 8, template: ItemTextTemplate::default(), progress: true }
    }
}

/// What happened to one modality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModalityReport {
    /// Items with this modality in the output.
    pub present: usize,
    /// Rows computed by the encoder in this run.
    pub encoded: usize,
    /// Rows copied from the previous output (content hash unchanged).
    pub reused: usize,
    /// Wall time of this modality's hashing, cache lookup and encoding.
    pub seconds: f64,
}

impl ModalityReport {
    /// Encoded rows per second of this modality's time (0 when nothing was encoded).
    pub fn items_per_second(&self) -> f64 {
        if self.encoded == 0 || self.seconds <= 0.0 {
            0.0
        } else {
            self.encoded as f64 / self.seconds
        }
    }
}

/// What an encoding run did.
#[derive(Debug, Clone, Default)]
pub struct EncodeReport {
    /// Items encoded: the catalogue's, or one slice's.
    pub items: usize,
    /// The slice encoded ([`encode_shard`]); `None` for the whole catalogue.
    pub shard: Option<Shard>,
    /// Items in the whole catalogue.
    pub catalogue_items: usize,
    pub text: ModalityReport,
    pub image: ModalityReport,
    /// Time spent checking (decoding) every image to learn which are usable (0 for text-only).
    pub image_check_seconds: f64,
    /// Whole run, loading the dataset and writing the file included.
    pub seconds: f64,
    /// Items whose named image cannot be used (from the image check), located in `items.jsonl`.
    pub image_problems: Vec<Problem>,
    /// Anything else worth knowing (an unreadable previous file, an image that changed during the run).
    pub warnings: Vec<String>,
}

/// Encodes the dataset in `data` into `out`, reusing the rows of the `out` already there.
///
/// An unusable dataset (a fatal problem: missing `items.jsonl`...) is [`FeaturesError::UnusableDataset`].
/// An unreadable previous `out` is not an error: everything is encoded again, with a warning.
pub fn encode_dir(
    data: &Path,
    out: &Path,
    encoders: &Encoders,
    options: &EncodeOptions,
) -> Result<(Features, EncodeReport), FeaturesError> {
    encode_selection(data, out, encoders, options, None)
}

/// [`encode_dir`] for slice `shard` of the catalogue: `out` becomes a shard file holding that slice's
/// rows and its [`ShardRecord`]; the previous file at `out` is its cache, so running a slice again
/// encodes only what changed.
pub fn encode_shard(
    data: &Path,
    out: &Path,
    encoders: &Encoders,
    options: &EncodeOptions,
    shard: Shard,
) -> Result<(Features, EncodeReport), FeaturesError> {
    encode_selection(data, out, encoders, options, Some(shard))
}

/// The whole catalogue (`shard` `None`) or one slice of it into `out`.
fn encode_selection(
    data: &Path,
    out: &Path,
    encoders: &Encoders,
    options: &EncodeOptions,
    shard: Option<Shard>,
) -> Result<(Features, EncodeReport), FeaturesError> {
    let start = Instant::now();
    super::features::check_replaceable(out)?;
    let mut loaded = load_dir(data);
    if !loaded.is_usable() {
        let problems = loaded.problems.into_iter().filter(|p| p.severity == Severity::Fatal).collect();
        return Err(FeaturesError::UnusableDataset { dir: data.display().to_string(), problems });
    }
    let catalogue_items = loaded.dataset.items.len();
    let record = shard.map(|shard| ShardRecord::new(shard, &loaded.dataset.items));
    let (items, item_lines) = select(&mut loaded, shard);
    let items = &items;

    let check_start = Instant::now();
    let check = match encoders.image {
        Some(_) => {
            let bar = progress_bar(options, "checking images", items.iter().filter(|i| i.image.is_some()).count());
            let check = check_images(data, items, Some(&item_lines), &|| bar.inc(1));
            bar.finish_and_clear();
            check
        }
        None => ImageCheck { usable: vec![false; items.len()], problems: Vec::new() },
    };
    let image_check_seconds = check_start.elapsed().as_secs_f64();

    let (previous, previous_warning) = match out.is_file() {
        false => (None, None),
        true => match Features::load(out) {
            Ok(previous) => (Some(previous), None),
            Err(err) => (None, Some(format!("previous features not reused, encoding everything: {err}"))),
        },
    };

    let (features, mut report) = encode_items(items, data, &check.usable, encoders, previous.as_ref(), options)?;
    match &record {
        Some(record) => features.save_shard(out, record)?,
        None => features.save(out)?,
    }
    (report.shard, report.catalogue_items) = (shard, catalogue_items);
    report.image_check_seconds = image_check_seconds;
    report.image_problems = check.problems;
    if let Some(warning) = previous_warning {
        report.warnings.insert(0, warning);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok((features, report))
}

/// The items of `shard` (every item for `None`) and their lines in `items.jsonl`, taken out of `loaded`
/// (a slice's items are moved, not copied: the rest are dropped).
fn select(loaded: &mut Loaded, shard: Option<Shard>) -> (Vec<Item>, Vec<usize>) {
    let items = std::mem::take(&mut loaded.dataset.items);
    let lines = std::mem::take(&mut loaded.item_lines);
    let Some(shard) = shard else { return (items, lines) };
    items.into_iter().zip(lines).enumerate().filter(|(i, _)| shard.holds(*i)).map(|(_, pair)| pair).unzip()
}

/// The engine: `items` (image paths relative to `root`; `usable_images[i]` says whether item `i`'s image
/// may be read) → features, copying rows of `previous` whose content hash matches.
pub fn encode_items(
    items: &[Item],
    root: &Path,
    usable_images: &[bool],
    encoders: &Encoders,
    previous: Option<&Features>,
    options: &EncodeOptions,
) -> Result<(Features, EncodeReport), FeaturesError> {
    let start = Instant::now();
    let texts: Vec<String> = items.iter().map(|item| options.template.render(item)).collect();
    let (text, text_report) = encode_texts(&texts, &encoders.text, previous.map(|p| &p.text), options)?;
    let mut warnings = Vec::new();
    let (image, image_report) = match &encoders.image {
        Some(model) => {
            let images = ImageJobs { items, root, usable: usable_images };
            encode_images(&images, model, previous.map(|p| &p.image), options, &mut warnings)?
        }
        None => (ModalityFeatures::absent(items.len(), FEATURE_DIM, None), ModalityReport::default()),
    };
    let features = Features {
        item_ids: items.iter().map(|item| item.id.clone()).collect(),
        text,
        image,
        text_template: Some(options.template.spec().clone()),
    };
    let report = EncodeReport {
        items: items.len(),
        text: text_report,
        image: image_report,
        seconds: start.elapsed().as_secs_f64(),
        warnings,
        ..EncodeReport::default()
    };
    Ok((features, report))
}

/// Texts → rows: empty texts are absent, cached rows copied, the rest encoded longest first in batches
/// (as sentence-transformers does: batches of similar length need little padding).
fn encode_texts(
    texts: &[String],
    model: &TextModel,
    previous: Option<&ModalityFeatures>,
    options: &EncodeOptions,
) -> Result<(ModalityFeatures, ModalityReport), FeaturesError> {
    let start = Instant::now();
    let dim = model.encoder.dim();
    let cache = RowCache::new(previous);
    let mut rows = ModalityFeatures::absent(texts.len(), dim, Some(model.identity.clone()));
    let mut todo: Vec<(usize, ContentHash, Vec<u32>)> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let Some(hash) = text_hash(&model.identity, text) else { continue };
        match cache.get(&hash, dim) {
            Some(row) => rows.set_row(i, row, hash),
            None => todo.push((i, hash, model.encoder.tokenize(text))),
        }
    }
    let reused = rows.present_count();
    todo.sort_by_key(|(_, _, ids)| Reverse(ids.len()));

    let bar = progress_bar(options, "text", todo.len());
    for batch in todo.chunks(options.batch_size.max(1)) {
        let ids: Vec<Vec<u32>> = batch.iter().map(|(_, _, ids)| ids.clone()).collect();
        let embeddings = model.encoder.encode_ids(&ids)?;
        let embeddings = embeddings.to_vec2::<f32>().map_err(EncoderError::candle("reading text embeddings"))?;
        for ((i, hash, _), row) in batch.iter().zip(&embeddings) {
            rows.set_row(*i, row, *hash);
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    let report = ModalityReport {
        present: rows.present_count(),
        encoded: todo.len(),
        reused,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((rows, report))
}

/// The images to consider: item `i`'s image is read only when `usable[i]`.
struct ImageJobs<'a> {
    items: &'a [Item],
    root: &'a Path,
    usable: &'a [bool],
}

impl ImageJobs<'_> {
    /// Item `i`'s image path as written in `items.jsonl`, when usable.
    fn relative(&self, i: usize) -> Option<&str> {
        self.usable.get(i).copied().unwrap_or(false).then(|| self.items[i].image.as_deref()).flatten()
    }

    fn read(&self, i: usize) -> Result<Vec<u8>, String> {
        let relative = self.relative(i).unwrap_or_default();
        // A regular file of bounded size: a link to `/dev/zero` or a named pipe is refused.
        crate::fs::read_bounded(&self.root.join(relative), crate::fs::MAX_IMAGE_FILE_BYTES).map_err(|e| {
            let (_, e) = e.into_parts();
            format!("item {}: image {relative}: {e}", self.items[i].id)
        })
    }
}

/// Usable images → rows: each file's bytes hashed (all cores), cached rows copied, the rest decoded and
/// cropped on all cores, then run through the network in batches (on a device, the next batch is
/// prepared while one runs).
fn encode_images(
    jobs: &ImageJobs<'_>,
    model: &ImageModel,
    previous: Option<&ModalityFeatures>,
    options: &EncodeOptions,
    warnings: &mut Vec<String>,
) -> Result<(ModalityFeatures, ModalityReport), FeaturesError> {
    let start = Instant::now();
    let n = jobs.items.len();
    let cache = RowCache::new(previous);
    let mut rows = ModalityFeatures::absent(n, FEATURE_DIM, Some(model.identity.clone()));
    let hashed: Vec<(usize, Result<ContentHash, String>)> = (0..n)
        .into_par_iter()
        .filter(|&i| jobs.relative(i).is_some())
        .map(|i| (i, jobs.read(i).map(|bytes| content_hash(&model.identity, &bytes))))
        .collect();
    let mut todo = Vec::new();
    for (i, hash) in hashed {
        match hash {
            Err(why) => warnings.push(why),
            Ok(hash) => match cache.get(&hash, FEATURE_DIM) {
                Some(row) => rows.set_row(i, row, hash),
                None => todo.push(i),
            },
        }
    }
    let reused = rows.present_count();

    let bar = progress_bar(options, "images", todo.len());
    let batches: Vec<&[usize]> = todo.chunks(options.image_batch_size.max(1)).collect();
    // On a device the CPU is idle while a batch runs there, so the next batch is read, decoded and
    // cropped meanwhile. On the CPU kernels the forward pass needs every core itself: batches take turns.
    let overlap = model.encoder.device().is_some();
    let mut encoded = 0;
    let mut prepared = batches.first().map(|batch| prepare_images(jobs, model, batch));
    for (i, batch) in batches.iter().enumerate() {
        let current = prepared.take().expect("each batch is prepared before its turn");
        let prepare_following = || batches.get(i + 1).map(|batch| prepare_images(jobs, model, batch));
        let (features, following) = if overlap {
            rayon::join(|| image_features(model, &current.ready), prepare_following)
        } else {
            (image_features(model, &current.ready), None)
        };
        warnings.extend(current.failures);
        for (image, values) in current.ready.iter().zip(&features?) {
            rows.set_row(image.row, values, image.hash);
        }
        encoded += current.ready.len();
        bar.inc(batch.len() as u64);
        prepared = if overlap { following } else { prepare_following() };
    }
    bar.finish_and_clear();
    let report =
        ModalityReport { present: rows.present_count(), encoded, reused, seconds: start.elapsed().as_secs_f64() };
    Ok((rows, report))
}

/// One batch read, hashed, decoded and cropped, each image in parallel. An image that no longer reads or
/// decodes is left out, with the reason.
fn prepare_images(jobs: &ImageJobs<'_>, model: &ImageModel, batch: &[usize]) -> PreparedBatch {
    // The hash is taken again from the bytes actually decoded, so it always describes the row.
    let prepared: Vec<Result<PreparedImage, String>> = batch
        .par_iter()
        .map(|&row| {
            let bytes = jobs.read(row)?;
            let origin = format!("item {} ({})", jobs.items[row].id, jobs.relative(row).unwrap_or_default());
            let rgb = decode_bytes(&bytes, &origin).map_err(|e| e.to_string())?;
            Ok(PreparedImage { row, hash: content_hash(&model.identity, &bytes), crop: center_crop(rgb.view()) })
        })
        .collect();
    let mut batch = PreparedBatch { ready: Vec::with_capacity(prepared.len()), failures: Vec::new() };
    for result in prepared {
        match result {
            Ok(image) => batch.ready.push(image),
            Err(why) => batch.failures.push(why),
        }
    }
    batch
}

/// One forward pass: the crops' features, one row each (none for no crops).
fn image_features(model: &ImageModel, ready: &[PreparedImage]) -> Result<Vec<Vec<f32>>, FeaturesError> {
    if ready.is_empty() {
        return Ok(Vec::new());
    }
    let crops: Vec<&[u8]> = ready.iter().map(|image| image.crop.as_slice()).collect();
    let input = crops_to_input(&crops, &Device::Cpu)?;
    Ok(model.encoder.features(&input)?.to_vec2::<f32>().map_err(ImageEncoderError::from)?)
}

/// A batch's images ready for the network, and why the others are not.
struct PreparedBatch {
    ready: Vec<PreparedImage>,
    failures: Vec<String>,
}

/// An image decoded and cropped, ready for the network.
struct PreparedImage {
    /// Item index.
    row: usize,
    hash: ContentHash,
    /// 224×224 packed RGB8.
    crop: Vec<u8>,
}

/// A bar on stderr with items/s; hidden when `options.progress` is off or stderr is not a terminal.
fn progress_bar(options: &EncodeOptions, what: &'static str, len: usize) -> ProgressBar {
    if !options.progress || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64).with_message(what);
    if let Ok(style) = ProgressStyle::with_template("{msg:>15} {wide_bar} {pos}/{len} {per_sec} ({eta})") {
        bar.set_style(style);
    }
    bar
}
