//! `omakase export`: a trained RUN → a bundle directory (format in `docs/bundle.md`).
//!
//! ```text
//! RUN/model.safetensors ─► sequence_tower.gguf, item_tower.gguf (matrices Q8_0 | Q4_0 | F16, rest F32)
//! features + item tower ─► item vectors ─► items-NNNNN.bin (int8 + per-row scale | f16), ≤ 64 MiB each
//!                       ─► text-only / image-only vectors ─► explain-{text,image}-NNNNN.bin
//! dataset items.jsonl   ─► items.json (id, title, image, link)
//! MODELS (with --encoders) ─► text_encoder.gguf, image_encoder.gguf (Q8_0; encoders.rs)
//! items.jsonl fields    ─► columns.json (typed metadata columns for the rules; merchandising.rs)
//! interactions.csv      ─► popularity.json (counts and time-decayed trending; merchandising.rs)
//! all of it + sizes + sha256 ─► manifest.json; written in BUNDLE.tmp-*, renamed to BUNDLE
//! ```
//! Native only (files); the formats' encoders live in `runtime` (`store::encode_shard`,
//! `manifest::Manifest`) so writer and reader share one definition.

pub mod encoders;
mod error;
pub mod index;
pub mod merchandising;
mod replace;
mod towers;

pub use replace::check_replaceable;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

pub use error::ExportError;
pub use towers::{tower_gguf, TowerPart};

use crate::data::load::load_dir;
use crate::data::{Item, Severity};
use crate::encoders::features::Features;
use crate::model::{ItemFeatures, ItemView, Mode, MultimodalRecommender, SequentialRecommender};
use crate::runtime::manifest::{
    sha256_hex, ExplainShards, FileEntry, Manifest, Provenance, ShardEntry, FORMAT, MAX_SHARD_BYTES, MIN_FORMAT_VERSION,
};
use crate::runtime::store::encode_shard;
use crate::runtime::{EmbeddingDtype, ItemMeta, WeightsDtype};
use crate::train::run::TrainedModel;

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportJob {
    pub run: PathBuf,
    pub data: PathBuf,
    /// The catalogue's features; `None` = the file `RUN/run.json` names.
    pub features: Option<PathBuf>,
    pub out: PathBuf,
    pub weights: WeightsDtype,
    pub shard: EmbeddingDtype,
    /// Write the explain shards (text-only and image-only vectors). Default true.
    pub explain: bool,
    /// Largest shard file; [`MAX_SHARD_BYTES`] unless a test wants several shards.
    pub max_shard_bytes: u64,
    /// Add the frozen encoders (GGUF Q8_0) from this models folder (`encoders.rs`). Default `None`.
    pub encoders: Option<PathBuf>,
    /// Whether to partition the catalogue for approximate search (`index`, docs/bundle.md § Index).
    /// Default: [`index::IndexChoice::Auto`], above [`index::AUTO_ROW_BYTES`] of main rows.
    pub index: index::IndexChoice,
    pub index_options: index::IndexOptions,
    /// Which item metadata fields become `columns.json` (merchandising rules). Default: automatic.
    pub columns: merchandising::ColumnChoice,
    /// Write `popularity.json` with this trending half-life in days; `None`: no popularity.
    pub popularity_half_life_days: Option<f64>,
}

impl ExportJob {
    pub fn new(run: impl Into<PathBuf>, data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        ExportJob {
            run: run.into(),
            data: data.into(),
            features: None,
            out: out.into(),
            weights: WeightsDtype::Q8_0,
            shard: EmbeddingDtype::Int8,
            explain: true,
            max_shard_bytes: MAX_SHARD_BYTES,
            encoders: None,
            index: index::IndexChoice::Auto,
            index_options: index::IndexOptions::default(),
            columns: merchandising::ColumnChoice::Auto,
            popularity_half_life_days: Some(merchandising::DEFAULT_HALF_LIFE_DAYS),
        }
    }
}

/// The vectors a bundle stores, computed with the f32 candle model (`[n, d]` row-major).
pub struct CatalogueVectors {
    pub fused: Vec<f32>,
    /// `None` for items without text.
    pub text_only: Vec<Option<Vec<f32>>>,
    pub image_only: Vec<Option<Vec<f32>>>,
}

/// Runs the job; returns the manifest written.
pub fn export(job: &ExportJob) -> Result<Manifest, ExportError> {
    // Before any work: an --out that is not an earlier bundle is refused up front.
    check_replaceable(&job.out)?;
    let mut loaded = load_dir(&job.data);
    if let Some(fatal) = loaded.problems.iter().find(|p| p.severity == Severity::Fatal) {
        return Err(ExportError::input(&job.data, format!("{fatal} (omakase validate lists every problem)")));
    }
    let info = crate::train::RunInfo::load(&job.run)?;
    let features_path = job.features.clone().unwrap_or_else(|| PathBuf::from(&info.features));
    let features = Features::load(&features_path)?;
    let ids: Vec<&str> = loaded.dataset.items.iter().map(|i| i.id.as_str()).collect();
    if features.item_ids.iter().map(String::as_str).ne(ids.iter().copied()) {
        return Err(ExportError::input(
            &features_path,
            format!("its item ids are not {}'s catalogue (encode the dataset again)", job.data.display()),
        ));
    }
    // The bundle's catalogue is the run's shop (items may have been added since): ID residuals apply.
    let (config, info, model) = TrainedModel::load(&job.run, &features, true)?;
    let TrainedModel::Multimodal { model, catalogue } = model else {
        return Err(ExportError::input(
            &job.run,
            "an ID-based model cannot be exported (a bundle needs the item tower)",
        ));
    };
    let vectors = catalogue_vectors(&model, &catalogue, &features, job.explain)?;
    let weights_path = job.run.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&weights_path, &candle_core::Device::Cpu)
        .map_err(|e| ExportError::input(&weights_path, e.to_string()))?;
    let provenance = Provenance {
        dataset: info.dataset.clone(),
        run: job.run.display().to_string(),
        features_sha256: crate::fs::sha256_file(&features_path).map_err(ExportError::read)?,
        created_by: format!("omakase {}", env!("CARGO_PKG_VERSION")),
    };
    let (d, n) = (config.model.dim, loaded.dataset.items.len());
    let plan = index::wants_index(job.index, n, job.shard.row_bytes(d)).then(|| {
        let popularity = index::popularity(&loaded.dataset.users, n);
        index::partition(&vectors.fused, d, &popularity, &job.index_options)
    });
    // With an index the catalogue is in partition order from here on: the rows, items.json and what
    // merchandising computes from the dataset all follow it.
    let vectors = match &plan {
        Some(plan) => {
            loaded.dataset = index::permute_dataset(&loaded.dataset, &plan.order());
            index::permute_vectors(&vectors, &plan.order(), d)
        }
        None => vectors,
    };
    let mut bundle = build_bundle(&config.model, &tensors, &vectors, &loaded.dataset.items, job, provenance)?;
    if let Some(plan) = &plan {
        let sessions = index::recent_sessions(&loaded.dataset.users, config.model.max_len, job.index_options.queries);
        index::attach(&mut bundle, &vectors, plan, job, &job.index_options, &sessions)?;
    }
    if let Some(models) = &job.encoders {
        let with_image = encoders::needs_image(&config.model, &features);
        let template = config.encode.text_template.spec();
        let files = encoders::encoder_bundle(models, &features, &features_path, template, with_image)?;
        encoders::attach(&mut bundle, files)?;
    }
    let (columns, notes) =
        merchandising::columns_file(&loaded.dataset.items, &job.columns, &job.data.join("items.jsonl"))?;
    for note in notes {
        eprintln!("export: {note}"); // what an automatic column left out is said, never dropped silently
    }
    let popularity = job.popularity_half_life_days.map(|days| merchandising::popularity_file(&loaded.dataset, days));
    merchandising::attach(&mut bundle, columns, popularity)?;
    // After popularity: the streamed reader's popular.json is computed from it.
    index::stream::attach_stream(&mut bundle)?;
    write_atomic_dir(&job.out, &bundle.files)?;
    Ok(bundle.manifest)
}

/// Every item's vector through the model's item view, and (when asked) its text-only and image-only
/// vectors where it has that modality, in f32.
pub fn catalogue_vectors(
    model: &MultimodalRecommender,
    catalogue: &ItemFeatures,
    features: &Features,
    explain: bool,
) -> Result<CatalogueVectors, ExportError> {
    let fused = model.item_vectors(catalogue, Mode::Eval)?;
    let fused: Vec<f32> = fused.flatten_all()?.to_vec1()?;
    let n = features.len();
    let view_rows = |present: &[bool], view: ItemView| -> Result<Vec<Option<Vec<f32>>>, ExportError> {
        let mut out = vec![None; n];
        let rows: Vec<u32> = (0..n as u32).filter(|&r| present[r as usize]).collect();
        if !explain || rows.is_empty() {
            return Ok(out);
        }
        let subset = catalogue.select(&Tensor::new(rows.as_slice(), catalogue.device())?)?;
        let vectors = model.item_tower().forward(&subset, view, Mode::Eval)?.to_vec2::<f32>()?;
        for (r, v) in rows.iter().zip(vectors) {
            out[*r as usize] = Some(v);
        }
        Ok(out)
    };
    Ok(CatalogueVectors {
        fused,
        text_only: view_rows(&features.text.present, ItemView::TextOnly)?,
        image_only: view_rows(&features.image.present, ItemView::ImageOnly)?,
    })
}

/// A bundle in memory: the manifest and every file's bytes by name (`manifest.json` included).
pub struct Bundle {
    pub manifest: Manifest,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Builds every file of a bundle from the model's tensors (`item_tower.*`, `sequence_tower.*`,
/// f32 raw-feature weights), the catalogue's vectors and its items.
pub fn build_bundle(
    model: &crate::model::ModelConfig,
    tensors: &HashMap<String, Tensor>,
    vectors: &CatalogueVectors,
    items: &[Item],
    job: &ExportJob,
    provenance: Provenance,
) -> Result<Bundle, ExportError> {
    let d = model.dim;
    let n = items.len();
    let mut files = Vec::new();
    let mut entry = |path: &str, bytes: Vec<u8>| {
        let e = FileEntry { path: path.into(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) };
        files.push((path.to_string(), bytes));
        e
    };
    let sequence_tower = entry("sequence_tower.gguf", tower_gguf(tensors, TowerPart::Sequence, model, job.weights)?);
    let item_tower = entry("item_tower.gguf", tower_gguf(tensors, TowerPart::Item, model, job.weights)?);
    let metas: Vec<ItemMeta> = items.iter().map(item_meta).collect();
    let items_entry = entry("items.json", serde_json::to_vec(&metas).expect("item metadata serialises"));

    let rows_per_shard = ((job.max_shard_bytes.min(MAX_SHARD_BYTES)) as usize / job.shard.row_bytes(d)).max(1);
    let mut shards_of = |prefix: &str, rows: &dyn Fn(usize) -> Option<Vec<f32>>| -> Vec<ShardEntry> {
        (0..n.div_ceil(rows_per_shard))
            .map(|s| {
                let range = s * rows_per_shard..((s + 1) * rows_per_shard).min(n);
                let owned: Vec<Option<Vec<f32>>> = range.clone().map(rows).collect();
                let borrowed: Vec<Option<&[f32]>> = owned.iter().map(|r| r.as_deref()).collect();
                let path = format!("{prefix}-{s:05}.bin");
                ShardEntry {
                    file: entry(&path, encode_shard(job.shard, d, &borrowed)),
                    first_row: range.start,
                    rows: range.len(),
                }
            })
            .collect()
    };
    let shards = shards_of("items", &|r| Some(vectors.fused[r * d..(r + 1) * d].to_vec()));
    let explain = job.explain.then(|| ExplainShards {
        text: shards_of("explain-text", &|r| vectors.text_only[r].clone()),
        image: shards_of("explain-image", &|r| vectors.image_only[r].clone()),
    });
    let manifest = Manifest {
        format: FORMAT.into(),
        // Raised by `merchandising::attach` when a newer field is added.
        format_version: MIN_FORMAT_VERSION,
        model: model.clone(),
        dim: d,
        item_count: n,
        weights_dtype: job.weights,
        embedding_dtype: job.shard,
        scoring_temperature: model.next_item_temperature,
        sequence_tower,
        item_tower: Some(item_tower),
        items: items_entry,
        shards,
        explain,
        encoders: None,
        provenance,
        columns: None,
        popularity: None,
        index: None,
        deltas: Vec::new(),
    };
    manifest.validate().map_err(|e| ExportError::Invalid { reason: e.to_string() })?;
    files.push(("manifest.json".into(), manifest.to_json()));
    Ok(Bundle { manifest, files })
}

/// An item's rendering metadata: the image path as the catalogue wrote it, and its link from the
/// record's `url` / `link` field when it has one and it is an http(s) or relative URL
/// ([`crate::runtime::safe_link`]: a `javascript:` or `data:` link never reaches items.json).
fn item_meta(item: &Item) -> ItemMeta {
    let link = ["url", "link"]
        .iter()
        .find_map(|k| item.metadata.get(*k).and_then(|v| v.as_str()))
        .and_then(crate::runtime::safe_link);
    ItemMeta { id: item.id.clone(), title: item.title.clone(), image: item.image.clone(), link }
}

/// Writes `files` into a fresh `OUT.tmp-<pid>` next to `out`, then swaps it in: an interrupted
/// export leaves either the old bundle or the new one at `out`, never a mix. An existing `out` is
/// replaced only when [`check_replaceable`] says it holds nothing but an earlier bundle.
pub fn write_atomic_dir(out: &Path, files: &[(String, Vec<u8>)]) -> Result<(), ExportError> {
    replace::check_replaceable(out)?;
    let name = out.file_name().ok_or_else(|| ExportError::input(out, "needs a directory name"))?.to_string_lossy();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ExportError::io(parent, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| ExportError::io(&tmp, e))?;
    for (path, bytes) in files {
        let file = tmp.join(path);
        std::fs::write(&file, bytes).map_err(|e| ExportError::io(&file, e))?;
        std::fs::File::open(&file).and_then(|f| f.sync_all()).map_err(|e| ExportError::io(&file, e))?;
    }
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &old).map_err(|e| ExportError::io(out, e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| ExportError::io(out, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| ExportError::io(&old, e))?;
    }
    Ok(())
}

/// A runtime over a synthetic catalogue, for benchmarks: a seeded, untrained model of `config`
/// (sequence tower exported as a bundle would be, Q8_0), and `n_items` pseudo-random item vectors
/// stored as `shard`, ids `"0"`, `"1"`, …. Timing `recommend` on it times exactly the bundle path.
pub fn synthetic_runtime(
    config: &crate::model::ModelConfig,
    n_items: usize,
    shard: EmbeddingDtype,
    seed: u64,
) -> Result<crate::runtime::Runtime, ExportError> {
    let varmap = candle_nn::VarMap::new();
    let vb = crate::model::seeded_var_builder(&varmap, seed, &candle_core::Device::Cpu);
    MultimodalRecommender::new(config, vb)?;
    let tensors: HashMap<String, Tensor> =
        varmap.data().lock().expect("fresh VarMap").iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let gguf = tower_gguf(&tensors, TowerPart::Sequence, config, WeightsDtype::Q8_0)?;
    // A splitmix64 stream mapped to [-1, 1): reproducible without another dependency.
    let mut state = seed;
    let vectors: Vec<f32> = (0..n_items * config.dim)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let ids = (0..n_items).map(|i| i.to_string()).collect();
    crate::runtime::Runtime::from_parts(config.clone(), &gguf, &vectors, ids, shard)
        .map_err(|e| ExportError::Invalid { reason: e.to_string() })
}
