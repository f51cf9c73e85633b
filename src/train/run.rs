//! `omakase train` as a library: dataset + config → a RUN directory (`docs/run-format.md`).
//!
//! ```text
//! dataset dir ─load─► split (warm | cold) ─► training catalogue (cold: new items left out), windows, validation
//!             ─encode (cache hit when the features exist)─► Features ─► ItemFeatures
//! RUN/checkpoint? ─yes─► restore params (+ stage, epoch, moments) │ no ─► seeded init, or --init RUN's weights
//! ─► pretrain (item tower, catalogue only) ─► train (sequence tower [+ item tower]) ─► RUN/model.safetensors
//! ─► baselines/<name>/ (same split, same harness)
//! ```
//!
//! Also what a later step needs to use a run: [`TrainedModel::load`] rebuilds the trained model and
//! its catalogue from `RUN` and the features, ready to score.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::checkpoint::{named_vars, sha256_file, sha256_hex, CheckpointState, RngState, RunDir, Stage};
use super::config::TrainConfig;
use super::device::{device_name, DeviceChoice};
use super::error::TrainError;
use super::pretrain::{pretrain, PretrainSettings, ITEM_TOWER_PREFIX};
use super::progress::{Progress, Session, Stopwatch};
use super::sequences::{windows, TrainingItems};
use super::standardize::FeatureScaling;
use super::trainer::{train_sequences, JointSequences, SequenceData, SequenceSettings, Trainable, VectorScorer};
use crate::data::load::load_dir;
use crate::data::split::{self, Split, TestCase};
use crate::data::{Dataset, Severity};
use crate::encoders::features::{as_tensors, Features};
use crate::encoders::pipeline::{default_models_dir, encode_dir, EncodeOptions, Encoders};
use crate::eval::Scorer;
use crate::model::{
    ItemFeatures, ItemResiduals, ItemView, ModelConfig, MultimodalRecommender, SasRecId, SequentialRecommender,
    ITEM_RESIDUALS,
};

/// A run with ID residuals: the item ids of the residual table's rows, in order (JSON array), so a
/// later catalogue (items added, reordered) gets each known item's residual by id.
pub const RESIDUAL_IDS: &str = "residual_ids.json";

fn json_error(e: serde_json::Error) -> TrainError {
    TrainError::Stage { stage: "train", reason: format!("JSON: {e}") }
}

/// Which model a run directory holds (`run.json`'s `model_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// `omakase::model::MultimodalRecommender` (`item_tower.*`, `sequence_tower.*`).
    Multimodal,
    /// `omakase::model::SasRecId` (`item_embedding`, `sequence_tower.*`).
    SasrecId,
}

/// The learned baselines `--baselines` trains into `RUN/baselines/<name>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// ID-based SASRec with full-softmax cross-entropy, same sequence tower and training.
    SasrecId,
    /// Our model reading only the text (no pretraining: there is nothing to align).
    TextOnly,
    /// Our model reading only the image (no pretraining).
    ImageOnly,
    /// Our model, both modalities, without the pretraining stage.
    NoPretrain,
}

impl Baseline {
    pub const ALL: [Baseline; 4] = [Baseline::SasrecId, Baseline::TextOnly, Baseline::ImageOnly, Baseline::NoPretrain];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::SasrecId => "sasrec_id",
            Baseline::TextOnly => "text_only",
            Baseline::ImageOnly => "image_only",
            Baseline::NoPretrain => "no_pretrain",
        }
    }

    pub fn parse(name: &str) -> Option<Baseline> {
        Baseline::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The model kind and config of this baseline, derived from the main run's config.
    pub fn variant(self, main: &TrainConfig) -> (ModelKind, TrainConfig) {
        let mut config = main.clone();
        let kind = match self {
            Baseline::SasrecId => {
                config.pretrain.epochs = 0;
                ModelKind::SasrecId
            }
            Baseline::TextOnly | Baseline::ImageOnly => {
                config.model.item_view =
                    if self == Baseline::TextOnly { ItemView::TextOnly } else { ItemView::ImageOnly };
                config.pretrain.epochs = 0;
                ModelKind::Multimodal
            }
            Baseline::NoPretrain => {
                config.pretrain.epochs = 0;
                ModelKind::Multimodal
            }
        };
        (kind, config)
    }
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub dataset: String,
    pub data_dir: String,
    pub protocol: String,
    pub model_kind: ModelKind,
    pub features: String,
    pub features_sha256: String,
    pub n_items: usize,
    pub item_ids_sha256: String,
    pub init: Option<String>,
    /// `running` or `done`.
    pub status: String,
    pub best_epoch: Option<usize>,
    #[serde(rename = "best_valid_ndcg@10")]
    pub best_valid_ndcg_at_10: Option<f64>,
    /// Wall and CPU seconds of the training sessions so far (encode excluded).
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// Where the last session trained (`cpu`, `cuda:0`); absent in runs from before `--device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl RunInfo {
    pub fn load(run: &Path) -> Result<Self, TrainError> {
        let path = run.join("run.json");
        let bytes = crate::fs::read_bounded(&path, crate::fs::MAX_DOCUMENT_BYTES).map_err(TrainError::read)?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::run(&path, e.to_string()))
    }
}

/// What `omakase train` was asked to do.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The dataset directory.
    pub data: PathBuf,
    /// The RUN directory (created; an existing one is resumed).
    pub out: PathBuf,
    /// `--config`; `None` = the RUN's own `config.toml` when resuming, else the defaults.
    pub config: Option<TrainConfig>,
    /// `--init RUN`: start from that run's best weights.
    pub init: Option<PathBuf>,
    /// Run the encode pipeline first (a cache hit when the features exist). `false`: the features
    /// file must exist already and is only read.
    pub encode: bool,
    pub progress: Progress,
    /// Train the main model (`false`: only the baselines, e.g. to add them to a run).
    pub main: bool,
    /// Learned baselines to train too, into `RUN/baselines/<name>/`.
    pub baselines: Vec<Baseline>,
    /// End the session after this many epochs (all stages and models counted), exactly as if the
    /// process were killed right after that epoch's checkpoint: a later job resumes. For tests and
    /// time-boxed sessions; `None` = run to the end.
    pub stop_after_epochs: Option<usize>,
    /// `--device`: the CPU (default), a CUDA GPU, or `auto`.
    pub device: DeviceChoice,
}

impl TrainJob {
    /// The main model on `data` into `out` with `config`, encoding first, silently, on the CPU: what
    /// a test or a script wants (the CLI sets every field from its flags).
    pub fn quiet(data: PathBuf, out: PathBuf, config: TrainConfig) -> Self {
        TrainJob {
            data,
            out,
            config: Some(config),
            init: None,
            encode: true,
            progress: Progress::Silent,
            main: true,
            baselines: Vec::new(),
            stop_after_epochs: None,
            device: DeviceChoice::default(),
        }
    }
}

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// `None` when the job trained only baselines.
    pub main: Option<RunInfo>,
    /// (name, info) of every baseline trained or found finished; a skipped one has no entry.
    pub baselines: Vec<(String, RunInfo)>,
    /// Baselines that could not apply (e.g. `image_only` on a catalogue without images), and why.
    pub skipped: Vec<(String, String)>,
}

/// The dataset side of a job, shared by the main model and the baselines.
struct Prepared {
    name: String,
    data_dir: PathBuf,
    features_path: PathBuf,
    features_sha256: String,
    features: Features,
    split: Split,
    training_items: TrainingItems,
    /// Other shops trained beside this one (`[data] joint`), in config order.
    joint: Vec<JointShop>,
}

/// A joint shop's data: split with the run's protocol, its features checked against its items.
struct JointShop {
    features: Features,
    split: Split,
    training_items: TrainingItems,
}

/// Runs a job: the main model, then each baseline. A finished run (`status: done`) is not trained
/// again; an interrupted one resumes from its checkpoint.
pub fn train(job: &TrainJob) -> Result<TrainSummary, TrainError> {
    // The device first: a GPU that does not open ends the job before any folder or file is made.
    let device = super::device::open(job.device)?;
    if let Some(note) = &device.note {
        job.progress.line(note);
    }
    let root = RunDir::create(&job.out)?;
    let config = effective_config(&root, job.config.as_ref())?;
    let prepared = prepare(job, &config)?;
    let session = Session::new(job.progress, job.stop_after_epochs, device.device);
    let main = match job.main {
        true => Some(train_one(ModelKind::Multimodal, &config, &root, &prepared, job.init.as_deref(), &session)?),
        false => None,
    };
    let mut summary = TrainSummary { main, baselines: Vec::new(), skipped: Vec::new() };
    for &baseline in &job.baselines {
        if baseline == Baseline::ImageOnly && !prepared.features.image.present.iter().any(|&p| p) {
            summary.skipped.push((baseline.name().into(), "no item has an image".into()));
            continue;
        }
        let (kind, variant) = baseline.variant(&config);
        let dir = RunDir::create(&root.path("baselines").join(baseline.name()))?;
        let variant = effective_config(&dir, Some(&variant))?;
        session.progress.line(&format!("baseline {}", baseline.name()));
        let info = train_one(kind, &variant, &dir, &prepared, None, &session)?;
        summary.baselines.push((baseline.name().into(), info));
    }
    Ok(summary)
}

/// The config a run uses: the given one (written to `RUN/config.toml`), or the RUN's own when
/// resuming without `--config`. A RUN started with another config is refused, not mixed.
fn effective_config(run: &RunDir, given: Option<&TrainConfig>) -> Result<TrainConfig, TrainError> {
    let path = run.config_path();
    if path.is_file() {
        let existing = TrainConfig::load(&path)?;
        if let Some(given) = given {
            if *given != existing {
                return Err(TrainError::run(
                    run.root(),
                    format!(
                        "it was started with another config ({}); use a new --out, or resume it without --config",
                        path.display()
                    ),
                ));
            }
        }
        return Ok(existing);
    }
    let config = given.cloned().unwrap_or_default();
    config.validate().map_err(|reason| TrainError::Config { origin: "config".into(), reason })?;
    run.write("config.toml", config.to_toml()?.as_bytes())?;
    Ok(config)
}

/// Loads and splits the dataset, gets its features (encoding when asked), checks they match.
fn prepare(job: &TrainJob, config: &TrainConfig) -> Result<Prepared, TrainError> {
    let dataset = load_usable(&job.data, "")?;
    let name = dataset_name(&job.data);
    let features_path = match config.encode.features.as_os_str().is_empty() {
        true => Path::new("out").join(&name).join("features.safetensors"),
        false => config.encode.features.clone(),
    };
    let features = if job.encode {
        encode(&job.data, &features_path, config, &dataset, job.progress)?
    } else {
        Features::load(&features_path)?
    };
    check_features(&features, &dataset, &features_path)?;
    let (split, training_items) = split_for_training(&dataset, config);
    let joint = (0..config.data.joint.len()).map(|i| joint_shop(config, i, &features)).collect::<Result<_, _>>()?;
    Ok(Prepared {
        name,
        data_dir: job.data.clone(),
        features_sha256: sha256_file(&features_path)?,
        features_path,
        features,
        split,
        training_items,
        joint,
    })
}

/// Joint shop `i` of `[data] joint`: loaded, its features read (never encoded here) and checked
/// against its items and against the main features' dimensions, split like the main dataset.
fn joint_shop(config: &TrainConfig, i: usize, main: &Features) -> Result<JointShop, TrainError> {
    let dir = &config.data.joint[i];
    let dataset = load_usable(dir, "a `data.joint` folder; ")?;
    let path = match config.data.joint_features.get(i).filter(|p| !p.as_os_str().is_empty()) {
        Some(path) => path.clone(),
        None => Path::new("out").join(dataset_name(dir)).join("features.safetensors"),
    };
    if !path.is_file() {
        return Err(TrainError::run(
            &path,
            format!(
                "the features of `data.joint` folder {} are missing: run omakase encode on it first",
                dir.display()
            ),
        ));
    }
    let features = Features::load(&path)?;
    check_features(&features, &dataset, &path)?;
    let dims = |f: &Features| (f.text.dim, f.image.dim);
    if dims(&features) != dims(main) {
        return Err(TrainError::run(
            &path,
            format!(
                "its (text, image) feature dimensions {:?} differ from the dataset's {:?}: encode both with the same encoders",
                dims(&features),
                dims(main)
            ),
        ));
    }
    let (split, training_items) = split_for_training(&dataset, config);
    Ok(JointShop { features, split, training_items })
}

/// The dataset of `dir`, refused with its first fatal problem (`role` says which folder it is).
fn load_usable(dir: &Path, role: &str) -> Result<Dataset, TrainError> {
    let loaded = load_dir(dir);
    if let Some(fatal) = loaded.problems.iter().find(|p| p.severity == Severity::Fatal) {
        return Err(TrainError::Data {
            dir: dir.display().to_string(),
            reason: format!("{fatal} ({role}omakase validate lists every problem)"),
        });
    }
    Ok(loaded.dataset)
}

/// The run protocol's split of `dataset` and the items training may use (cold: new items left out).
fn split_for_training(dataset: &Dataset, config: &TrainConfig) -> (Split, TrainingItems) {
    let split = split::split(dataset, config.data.protocol.split_protocol());
    let training_items = TrainingItems::new(&split.new_items);
    (split, training_items)
}

fn dataset_name(data: &Path) -> String {
    data.canonicalize()
        .ok()
        .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into())
}

/// `omakase encode`'s pipeline into `path` (rows of an existing file are reused by content hash).
fn encode(
    data: &Path,
    path: &Path,
    config: &TrainConfig,
    dataset: &Dataset,
    progress: Progress,
) -> Result<Features, TrainError> {
    let models = match config.encode.models.as_os_str().is_empty() {
        true => default_models_dir(),
        false => config.encode.models.clone(),
    };
    let with_image = config.encode.images && dataset.items.iter().any(|item| item.image.is_some());
    let encoders = Encoders::load(&models, with_image)?;
    let options = EncodeOptions {
        batch_size: config.encode.batch,
        image_batch_size: config.encode.image_batch,
        template: config.encode.text_template.clone(),
        progress: progress == Progress::Bars,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    }
    let (features, report) = encode_dir(data, path, &encoders, &options)?;
    progress.line(&format!(
        "encode: {} items, text {} encoded / {} cached, image {} encoded / {} cached ({:.1} s) -> {}",
        report.items,
        report.text.encoded,
        report.text.reused,
        report.image.encoded,
        report.image.reused,
        report.seconds,
        path.display()
    ));
    Ok(features)
}

fn check_features(features: &Features, dataset: &Dataset, path: &Path) -> Result<(), TrainError> {
    let ids: Vec<&str> = dataset.items.iter().map(|item| item.id.as_str()).collect();
    let same = features.item_ids.len() == ids.len() && features.item_ids.iter().zip(&ids).all(|(a, b)| a == b);
    if same {
        // A NaN feature would otherwise surface epochs later as a non-finite loss, blamed on the
        // learning rate: refused here, naming the file, the item and the modality.
        return Ok(features.check_finite(&path.display().to_string())?);
    }
    Err(TrainError::run(
        path,
        format!(
            "these features are of another catalogue ({} items; the dataset has {}): encode the dataset again",
            features.item_ids.len(),
            ids.len()
        ),
    ))
}

/// The item tower's input for a catalogue read through `view`. An item the view cannot read at
/// all (an image-only model and an item without a picture, or an item with neither text nor image)
/// gets a blank, all-zero feature of the view's modality instead: a vector that carries no content,
/// the same for every such item, rather than no vector.
pub fn model_catalogue(features: &Features, config: &ModelConfig, device: &Device) -> Result<ItemFeatures, TrainError> {
    let (text, image, _, _) = as_tensors(features, device)?;
    let n = features.len();
    let mut has_text: Vec<u8> = features.text.present.iter().map(|&p| p as u8).collect();
    let mut has_image: Vec<u8> = features.image.present.iter().map(|&p| p as u8).collect();
    for i in 0..n {
        let readable = match config.item_view {
            ItemView::Both => has_text[i] + has_image[i] > 0,
            ItemView::TextOnly => has_text[i] > 0,
            ItemView::ImageOnly => has_image[i] > 0,
        };
        if !readable {
            match config.item_view {
                ItemView::ImageOnly => has_image[i] = 1,
                _ => has_text[i] = 1,
            }
        }
    }
    let has_text = Tensor::from_vec(has_text, n, device)?;
    let has_image = Tensor::from_vec(has_image, n, device)?;
    Ok(ItemFeatures::new(text, image, &has_text, &has_image)?)
}

/// The multimodal model's catalogue: the dataset's items, then each joint shop's (in the scaling of
/// the dataset's training features).
fn joint_catalogue(
    prepared: &Prepared,
    scaling: &FeatureScaling,
    config: &ModelConfig,
    device: &Device,
) -> Result<ItemFeatures, TrainError> {
    let own = model_catalogue(&scaling.apply(&prepared.features), config, device)?;
    if prepared.joint.is_empty() {
        return Ok(own);
    }
    let mut parts = vec![own];
    for shop in &prepared.joint {
        parts.push(model_catalogue(&scaling.apply(&shop.features), config, device)?);
    }
    Ok(ItemFeatures::concat(&parts.iter().collect::<Vec<_>>())?)
}

/// The items with text and image that pretraining may use: the training catalogue's (cold: new
/// items left out) plus every item of the extra catalogues of `[pretrain] catalogues`.
/// All in the training space of `scaling`. `None` when fewer than 2 have both (nothing to align):
/// an empty selection is never made, as CUDA refuses a zero-byte allocation.
fn pretraining_items(
    prepared: &Prepared,
    config: &TrainConfig,
    scaling: &FeatureScaling,
    device: &Device,
) -> Result<Option<ItemFeatures>, TrainError> {
    let (text, image, has_text, has_image) = as_tensors(&scaling.apply(&prepared.features), device)?;
    let own = ItemFeatures::new(text, image, &has_text, &has_image)?;
    let mut parts = vec![own.select(&Tensor::new(prepared.training_items.rows.as_slice(), device)?)?];
    for path in &config.pretrain.catalogues {
        let extra = scaling.apply(&Features::load(path)?);
        let (text, image, has_text, has_image) = as_tensors(&extra, device)?;
        parts.push(ItemFeatures::new(text, image, &has_text, &has_image)?);
    }
    let all = ItemFeatures::concat(&parts.iter().collect::<Vec<_>>())?;
    let paired = all.rows_with_both()?;
    if paired.len() < 2 {
        return Ok(None);
    }
    Ok(Some(all.select(&Tensor::new(paired.as_slice(), device)?)?))
}

/// Windows, validation cases and row selection in the training catalogue's compact indices; with
/// `joint` (multimodal models), the joint shops' windows and rows after the dataset's.
fn sequence_data(prepared: &Prepared, max_len: usize, stride: usize, joint: bool) -> SequenceData {
    let items = &prepared.training_items;
    let train: Vec<Vec<u32>> = prepared.split.train.iter().map(|s| items.remap(s)).collect();
    let validation: Vec<TestCase> = prepared
        .split
        .validation
        .iter()
        .filter_map(|case| {
            let target = items.compact[case.target as usize]?;
            let history = items.remap(&case.history);
            // A cold history whose items were all new cannot be scored by a sequence model.
            (!history.is_empty()).then_some(TestCase { user: case.user, history, target })
        })
        .collect();
    let mut data = SequenceData {
        windows: windows(&train, max_len, stride),
        validation,
        rows: (!items.is_everything()).then(|| items.rows.clone()),
        n_items: items.len(),
        joint: Vec::new(),
    };
    if !joint || prepared.joint.is_empty() {
        return data;
    }
    // Compact rows: the dataset's, then each shop's own, catalogue rows shifted past the shops before it.
    let mut rows = items.rows.clone();
    let mut catalogue_offset = prepared.features.len() as u32;
    for shop in &prepared.joint {
        let shop_items = &shop.training_items;
        let sequences: Vec<Vec<u32>> = shop.split.train.iter().map(|s| shop_items.remap(s)).collect();
        data.joint.push(JointSequences {
            windows: windows(&sequences, max_len, stride),
            offset: rows.len(),
            n_items: shop_items.len(),
        });
        rows.extend(shop_items.rows.iter().map(|&row| row + catalogue_offset));
        catalogue_offset += shop.features.len() as u32;
    }
    data.rows = Some(rows);
    data
}

fn fresh_state(config: &TrainConfig, config_sha256: String) -> CheckpointState {
    CheckpointState {
        stage: Stage::Pretrain,
        epoch: 0,
        step: 0,
        rng: RngState {
            seed: config.train.seed,
            next_epoch: 1,
            scheme: "ChaCha8 per (seed, stage purpose, epoch): train::sequences::derive_seed".into(),
        },
        best_metric: None,
        best_epoch: None,
        epochs_without_improvement: 0,
        stage_done: false,
        history: Vec::new(),
        config_sha256,
        tensors_sha256: String::new(),
    }
}

/// Trains (or resumes, or just reports) one model into `run`.
fn train_one(
    kind: ModelKind,
    config: &TrainConfig,
    run: &RunDir,
    prepared: &Prepared,
    init: Option<&Path>,
    session: &Session,
) -> Result<RunInfo, TrainError> {
    let mut info = RunInfo {
        dataset: prepared.name.clone(),
        data_dir: prepared.data_dir.display().to_string(),
        protocol: config.data.protocol.as_str().into(),
        model_kind: kind,
        features: prepared.features_path.display().to_string(),
        features_sha256: prepared.features_sha256.clone(),
        n_items: prepared.features.len(),
        item_ids_sha256: sha256_hex(prepared.features.item_ids.join("\n").as_bytes()),
        init: init.map(|p| p.display().to_string()),
        status: "running".into(),
        best_epoch: None,
        best_valid_ndcg_at_10: None,
        seconds: 0.0,
        cpu_seconds: None,
        device: Some(device_name(&session.device)),
    };
    if let Ok(previous) = RunInfo::load(run.root()) {
        if previous.status == "done" {
            return Ok(previous);
        }
        info.init = previous.init.or(info.init);
        // A process killed mid-run never wrote its seconds; the epochs it checkpointed say how long
        // they took (setup excluded), so a resumed run's total does not lose them.
        let (wall, cpu) = run.history_seconds();
        info.seconds = previous.seconds.max(wall);
        info.cpu_seconds = match (previous.cpu_seconds, cpu) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let watch = Stopwatch::start();
    let config_sha256 = sha256_file(&run.config_path())?;
    let device = session.device.clone();
    let varmap = VarMap::new();
    let vb = crate::model::seeded_var_builder(&varmap, config.train.seed, &device);
    let write_info = |info: &RunInfo| -> Result<(), TrainError> {
        let json = serde_json::to_vec_pretty(info).map_err(|e| TrainError::run(run.root(), e.to_string()))?;
        run.write("run.json", &json)
    };
    write_info(&info)?;

    let result = match kind {
        ModelKind::Multimodal => {
            let model = MultimodalRecommender::new(&config.model, vb.clone())?;
            let model = match config.train.id_residuals {
                true => {
                    run.write(RESIDUAL_IDS, &serde_json::to_vec(&prepared.features.item_ids).map_err(json_error)?)?;
                    let (n, d) = (prepared.features.len(), config.model.dim);
                    let (dropout, l2) = (config.train.id_residual_dropout, config.train.id_residual_l2);
                    model.with_residuals(ItemResiduals::new(n, d, dropout, l2, vb)?)
                }
                false => model,
            };
            let scaling = match config.train.standardize_features {
                true => FeatureScaling::fit(&prepared.features, &prepared.training_items.rows),
                false => FeatureScaling::identity(&prepared.features),
            };
            let catalogue = joint_catalogue(prepared, &scaling, &config.model, &device)?;
            let saved_weights = || scaling.raw_weights(&varmap);
            let trainable = Trainable {
                model: &model,
                catalogue: &catalogue,
                varmap: &varmap,
                item_tower_prefix: Some(ITEM_TOWER_PREFIX),
                saved_weights: &saved_weights,
            };
            let pretrain_items = || pretraining_items(prepared, config, &scaling, &device);
            let pretraining: (&MultimodalRecommender, PretrainItems) = (&model, &pretrain_items);
            let to_training_space = || scaling.to_training_space(&varmap);
            let init = init.map(|path| (path, &to_training_space as InitHook));
            run_stages(&trainable, Some(pretraining), config, run, prepared, init, &config_sha256, session)
        }
        ModelKind::SasrecId => {
            let model = SasRecId::new(&config.model, prepared.features.len(), vb)?;
            let saved_weights = || named_vars(&varmap, "");
            let trainable = Trainable {
                model: &model,
                catalogue: &(),
                varmap: &varmap,
                item_tower_prefix: None,
                saved_weights: &saved_weights,
            };
            let no_change = || Ok(());
            let init = init.map(|path| (path, &no_change as InitHook));
            run_stages(&trainable, None, config, run, prepared, init, &config_sha256, session)
        }
    };
    info.seconds += watch.wall_seconds();
    info.cpu_seconds = match (info.cpu_seconds, watch.cpu_seconds()) {
        (Some(before), Some(now)) => Some(before + now),
        (None, now) => now,
        (before, None) => before,
    };
    let state = match result {
        Ok(state) => state,
        Err(err) => {
            write_info(&info)?;
            return Err(err);
        }
    };
    info.status = "done".into();
    info.best_epoch = state.best_epoch;
    info.best_valid_ndcg_at_10 = state.best_metric;
    write_info(&info)?;
    Ok(info)
}

type PretrainItems<'a> = &'a dyn Fn() -> Result<Option<ItemFeatures>, TrainError>;
/// Re-expresses weights loaded with `--init` (raw space) in the run's training space.
type InitHook<'a> = &'a dyn Fn() -> Result<(), TrainError>;

/// Restore or initialise, then pretraining (multimodal only) and sequence training.
#[allow(clippy::too_many_arguments)]
fn run_stages<M: SequentialRecommender>(
    trainable: &Trainable<M>,
    pretraining: Option<(&MultimodalRecommender, PretrainItems)>,
    config: &TrainConfig,
    run: &RunDir,
    prepared: &Prepared,
    init: Option<(&Path, InitHook)>,
    config_sha256: &str,
    session: &Session,
) -> Result<CheckpointState, TrainError> {
    let checkpoint = run.load_checkpoint()?;
    let mut state = match &checkpoint {
        Some(checkpoint) => {
            if checkpoint.state.config_sha256 != config_sha256 {
                return Err(TrainError::checkpoint(run.root(), "it was written under another config.toml"));
            }
            checkpoint.restore_params(trainable.varmap, run.root())?;
            checkpoint.state.clone()
        }
        None => {
            if let Some((init, to_training_space)) = init {
                load_weights(trainable.varmap, &init.join("model.safetensors"))?;
                to_training_space()?;
            }
            fresh_state(config, config_sha256.to_string())
        }
    };
    let resume_stage = checkpoint.as_ref().map(|c| c.state.stage);

    if state.stage == Stage::Pretrain && !state.stage_done {
        if let Some((model, items)) = pretraining.filter(|_| config.pretrain.epochs > 0) {
            if let Some(items) = items()? {
                let settings = PretrainSettings {
                    epochs: config.pretrain.epochs,
                    batch: config.pretrain.batch,
                    lr: config.pretrain.lr,
                    warmup_steps: config.pretrain.warmup_steps,
                    weight_decay: config.pretrain.weight_decay,
                    clip: config.pretrain.clip,
                    seed: config.train.seed,
                };
                let resume = checkpoint.as_ref().filter(|_| resume_stage == Some(Stage::Pretrain));
                state = pretrain(model, trainable.varmap, &items, &settings, run, state, resume, session)?;
            } else {
                session.progress.line("pretrain: skipped (fewer than 2 items have both text and image)");
            }
        }
    }
    if state.stage == Stage::Pretrain {
        state = CheckpointState {
            stage: Stage::Train,
            epoch: 0,
            step: 0,
            best_metric: None,
            best_epoch: None,
            epochs_without_improvement: 0,
            stage_done: false,
            rng: RngState { next_epoch: 1, ..state.rng },
            ..state
        };
    }
    let settings = SequenceSettings {
        epochs: config.train.epochs,
        batch: config.train.batch,
        lr: config.train.lr,
        item_tower: config.train.item_tower,
        item_tower_lr: config.train.item_tower_lr,
        id_residual_lr: config.train.id_residual_lr.unwrap_or(config.train.lr),
        warmup_steps: config.train.warmup_steps,
        decay: config.train.decay,
        clip: config.train.clip,
        weight_decay: config.train.weight_decay,
        patience: config.train.patience,
        seed: config.train.seed,
        max_len: config.model.max_len,
        eval_batch: config.train.eval_batch,
        max_seconds: config.train.max_seconds,
    };
    // Joint shops train content models only: a model with pretraining has an item tower that reads
    // any catalogue's features; the ID baseline has a row per item of this dataset alone.
    let data = sequence_data(prepared, config.model.max_len, config.window_stride(), pretraining.is_some());
    let resume = checkpoint.as_ref().filter(|_| resume_stage == Some(Stage::Train));
    if state.stage_done {
        return Ok(state);
    }
    train_sequences(trainable, &data, &settings, run, state, resume, session)
}

/// Copies a run's `model.safetensors` into `varmap` (transfer with `--init`). Every variable of
/// the model must be in the file with its shape; the file may hold more (e.g. another model kind's
/// extras are refused only when a needed name is missing).
pub fn load_weights(varmap: &VarMap, path: &Path) -> Result<(), TrainError> {
    let tensors =
        candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| TrainError::run(path, e.to_string()))?;
    let vars = varmap.data().lock().map_err(|_| TrainError::run(path, "poisoned VarMap lock"))?;
    for (name, var) in vars.iter() {
        let tensor = tensors
            .get(name)
            .ok_or_else(|| TrainError::run(path, format!("has no `{name}`: not a run of this model kind")))?;
        if tensor.shape() != var.shape() {
            return Err(TrainError::run(
                path,
                format!(
                    "`{name}` has shape {:?}, this config's model {:?} (use the same [model] config)",
                    tensor.dims(),
                    var.dims()
                ),
            ));
        }
        var.set(&tensor.to_dtype(DType::F32)?.to_device(var.device())?)?;
    }
    Ok(())
}

/// The run's residual table (`[n_trained, d]`, rows named by `RUN/residual_ids.json`) laid out on
/// `features`' rows: a known id gets its residual, any other item a zero row (content alone).
fn residuals_by_id(run: &Path, table: &Tensor, features: &Features) -> Result<ItemResiduals, TrainError> {
    let path = run.join(RESIDUAL_IDS);
    let bytes = crate::fs::read_bounded(&path, crate::fs::MAX_DOCUMENT_BYTES.max(64 * features.len() as u64 + 1024))
        .map_err(TrainError::read)?;
    let ids: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| TrainError::run(&path, e.to_string()))?;
    let (rows, d) = table.dims2()?;
    if ids.len() != rows {
        let reason = format!("{} ids, but model.safetensors' {ITEM_RESIDUALS} has {rows} rows", ids.len());
        return Err(TrainError::run(&path, reason));
    }
    let row_of: HashMap<&str, u32> = ids.iter().enumerate().map(|(row, id)| (id.as_str(), row as u32)).collect();
    let found: Vec<Option<u32>> = features.item_ids.iter().map(|id| row_of.get(id.as_str()).copied()).collect();
    let index: Vec<u32> = found.iter().map(|row| row.unwrap_or(0)).collect();
    let keep: Vec<f32> = found.iter().map(|row| f32::from(u8::from(row.is_some()))).collect();
    let n = features.len();
    let table = table.to_dtype(DType::F32)?;
    let mapped =
        match rows {
            0 => Tensor::zeros((n, d), DType::F32, &Device::Cpu)?,
            _ => table
                .index_select(&Tensor::new(index.as_slice(), &Device::Cpu)?, 0)?
                .broadcast_mul(&Tensor::from_vec(keep, (n, 1), &Device::Cpu)?)?,
        };
    Ok(ItemResiduals::from_table(mapped))
}

/// A trained model rebuilt from a RUN directory, with what it scores against.
// One value per command: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum TrainedModel {
    Multimodal { model: MultimodalRecommender, catalogue: ItemFeatures },
    SasrecId(SasRecId),
}

impl TrainedModel {
    /// Reads `RUN/config.toml`, `RUN/run.json` and `RUN/model.safetensors` (the best weights);
    /// `features` are the catalogue's features (`run.json`'s `features`, or a transfer target's).
    /// `own_catalogue`: whether `features` are the run's own shop (its catalogue then, items added
    /// or not): only then do the run's ID residuals apply, by item id (another shop's items are
    /// other products, whatever their ids).
    pub fn load(
        run: &Path,
        features: &Features,
        own_catalogue: bool,
    ) -> Result<(TrainConfig, RunInfo, TrainedModel), TrainError> {
        let config = TrainConfig::load(&run.join("config.toml"))?;
        let info = RunInfo::load(run)?;
        let weights = run.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)
            .map_err(|e| TrainError::run(&weights, e.to_string()))?;
        let residuals = match (own_catalogue, tensors.get(ITEM_RESIDUALS)) {
            (true, Some(table)) => Some(residuals_by_id(run, table, features)?),
            _ => None,
        };
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let model = match info.model_kind {
            ModelKind::Multimodal => {
                let model = MultimodalRecommender::new(&config.model, vb)?;
                TrainedModel::Multimodal {
                    model: match residuals {
                        Some(residuals) => model.with_residuals(residuals),
                        None => model,
                    },
                    catalogue: model_catalogue(features, &config.model, &Device::Cpu)?,
                }
            }
            ModelKind::SasrecId => TrainedModel::SasrecId(SasRecId::new(&config.model, features.len(), vb)?),
        };
        Ok((config, info, model))
    }

    /// A scorer over the whole catalogue (every item, new ones included), named `name`.
    pub fn scorer(&self, name: &str, max_len: usize) -> Result<Box<dyn Scorer + '_>, TrainError> {
        Ok(match self {
            TrainedModel::Multimodal { model, catalogue } => {
                let items = model.item_vectors(catalogue, crate::model::Mode::Eval)?;
                Box::new(VectorScorer { name: name.into(), model, items, max_len })
            }
            TrainedModel::SasrecId(model) => {
                let items = model.item_vectors(&(), crate::model::Mode::Eval)?;
                Box::new(VectorScorer { name: name.into(), model, items, max_len })
            }
        })
    }
}
