//! `omakase eval --model RUN --data DIR [--protocol warm|cold|transfer] [--baselines] [--finetuned RUN2]
//! [--index [--partitions P] [--nprobe N,...]] [--json]`
//! (docs/evaluation.md): the run's model judged on DIR's split for the protocol, with the baselines on the same
//! cases; writes `RUN/eval-<protocol>.json`, `RUN/quality.json` and rebuilds `RUN/report.html`.
//!
//! - `warm` / `cold`: RUN must have been trained on DIR under that protocol (checked against `run.json`);
//!   `cold` reports the new-item cases, the same run's warm cases and the cold/warm ratio.
//! - `transfer`: RUN was trained elsewhere; it is judged zero-shot on DIR's warm split, and `--finetuned RUN2`
//!   (a run trained on DIR, e.g. with `--init RUN`) adds the fine-tuned figures. Learned baselines then come
//!   from RUN2, the run trained on DIR's split.
//!
//! Baselines (`--baselines`): popularity and content kNN need no training; the learned ones are read from
//! `baselines/<name>/` (trained by `omakase train --baselines`) and a missing one is reported as not
//! evaluated, with the reason — never silently left out.
//!
//! Index (`--index`): the run's item vectors partitioned as `omakase export --index on` partitions them,
//! and the approximate path (the `nprobe` nearest partitions, default the export's) ranked on the same
//! cases next to the exact figures: its metrics, recall@10 against the exact top 10, and the paired
//! NDCG@10 difference (report key `index`).
//!
//! Features: `--features FILE`, else the file named in `run.json` when it holds DIR's catalogue, else
//! `out/<DIR name>/features.safetensors`; a missing file is made with the encode pipeline (the encode cache
//! makes that a no-op when nothing changed).
//!
//! Exit codes: 0 ok; 2 bad input (a missing RUN file, an unusable dataset, a model whose dims disagree with the
//! features, a protocol the run was not trained for), with a message naming the file; 1 anything else.
//! Deterministic: same RUN and DIR ⇒ the same JSON, byte for byte.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use candle_core::Device;
use omakase::data::load::load_dir;
use omakase::data::split::TestCase;
use omakase::data::{Dataset, Severity};
use omakase::encoders::features::{as_tensors, Features};
use omakase::encoders::pipeline::{default_models_dir, encode_dir, EncodeOptions, Encoders};
use omakase::eval::quality::{self, QualityReport, EXPOSURE_K, MISMATCH_LIST, MISSING_LIST};
use omakase::eval::report_html;
use omakase::eval::{
    evaluate_approximate, Against, CaseFigures, ContentKnn, EvalIndex, EvalPlan, EvalProtocol, IndexReport, Modality,
    Popularity, RecommenderScorer, Report, Scorer, UserVectors,
};
use omakase::export::index::{measured_nprobe, partition, popularity, recent_sessions, IndexOptions, UserQuery};
use omakase::model::{ItemFeatures, ItemView};
use omakase::runtime::index::Centroids;
use omakase::runtime::EmbeddingDtype;
use omakase::train::run::{Baseline, ModelKind, RunInfo, TrainedModel};
use omakase::train::TrainConfig;

/// Test cases scored per batch.
const EVAL_BATCH: usize = 256;
/// The content-kNN baseline's name in reports.
pub const CONTENT_KNN: &str = "content_knn";

#[derive(clap::Args)]
pub struct Args {
    /// The RUN directory made by `omakase train` (config.toml, run.json, model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// The dataset directory to evaluate on.
    #[arg(long)]
    pub data: PathBuf,
    /// warm (leave-one-out), cold (new items) or transfer (RUN trained on another dataset).
    #[arg(long, default_value = "warm", value_parser = parse_protocol)]
    pub protocol: EvalProtocol,
    /// Also evaluate the baselines on the same cases: popularity, content kNN, and the learned ones
    /// found under RUN/baselines/ (sasrec_id, text_only, image_only, no_pretrain).
    #[arg(long)]
    pub baselines: bool,
    /// transfer only: a run fine-tuned on DIR (e.g. `omakase train --init RUN`), evaluated too.
    #[arg(long)]
    pub finetuned: Option<PathBuf>,
    /// Another run of the same dataset and protocol (another setting or seed): scored on the same
    /// test cases, with the paired NDCG@10 difference (this run − RUN2) and its 95 % interval.
    #[arg(long, value_name = "RUN2")]
    pub against: Option<PathBuf>,
    /// The features file of DIR's catalogue [default: see the module documentation].
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Encoder weights, used only when DIR's features must be computed [default: $OMAKASE_MODELS, else models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Print the report as JSON (docs/evaluation.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also judge the bundle index's approximate path against the exact ranking, on the same cases:
    /// the run's item vectors partitioned as `omakase export --index on` would (docs/bundle.md § Index).
    #[arg(long)]
    pub index: bool,
    /// --index: partitions [default: the export's, ⌈√n⌉ rounded up to a power of two].
    #[arg(long, value_name = "P", requires = "index")]
    pub partitions: Option<usize>,
    /// --index: the nprobe values to judge, comma-separated [default: the one the export would write].
    #[arg(long, value_name = "N[,N...]", value_delimiter = ',', requires = "index")]
    pub nprobe: Vec<usize>,
}

fn parse_protocol(s: &str) -> Result<EvalProtocol, String> {
    s.parse().map_err(|e: omakase::eval::EvalError| e.to_string())
}

/// Bad input (exit 2): the message says what and which file.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

pub fn bad(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(message.into()))
}

/// Exit 2 with the message for [`BadInput`], the error otherwise (exit 1 through `main`).
pub fn exit_code(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Err(err) if err.downcast_ref::<BadInput>().is_some() => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(2))
        }
        other => other,
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    exit_code(evaluate(&args))
}

fn evaluate(args: &Args) -> anyhow::Result<ExitCode> {
    if args.finetuned.is_some() && args.protocol != EvalProtocol::Transfer {
        return Err(bad("--finetuned is for --protocol transfer (a run fine-tuned on DIR after training elsewhere)"));
    }
    let run = LoadedRun::open(&args.model)?;
    let data = DataDir::load(&args.data)?;
    run.check_protocol(args.protocol, &data)?;
    let features = data.features(args.features.as_deref(), Some(&run), args.models.as_deref())?;
    let model = run.load_model(&features, args.protocol != EvalProtocol::Transfer)?;
    let plan = EvalPlan::new(&data.dataset, args.protocol);
    let n_items = data.dataset.items.len();

    let scorer = model.scorer(&run.path)?;
    let result = plan.run(scorer.as_ref(), n_items, EVAL_BATCH)?;
    let mut report = Report::new(args.protocol, &data.name, n_items, &result);
    if args.protocol == EvalProtocol::Transfer {
        report.source_dataset = Some(run.info.dataset.clone());
    }
    let finetuned = match &args.finetuned {
        Some(path) => {
            let tuned = LoadedRun::open(path)?;
            tuned.check_protocol(EvalProtocol::Warm, &data).context("--finetuned")?;
            let tuned_model = tuned.load_model(&features, true)?;
            let result = plan.run(tuned_model.scorer(&tuned.path)?.as_ref(), n_items, EVAL_BATCH)?;
            report.finetuned = Some(CaseFigures::of(&result.primary));
            Some((tuned, tuned_model))
        }
        None => None,
    };
    if let Some(path) = &args.against {
        let other = LoadedRun::open(path)?;
        other.check_protocol(args.protocol, &data).context("--against")?;
        let other_model = other.load_model(&features, args.protocol != EvalProtocol::Transfer)?;
        let other_result = plan.run(other_model.scorer(&other.path)?.as_ref(), n_items, EVAL_BATCH)?;
        report.against = Against::new(path.display().to_string(), &result, &other_result);
    }
    drop(scorer);
    if args.index {
        report.index = Some(index_report(&model, &data, &plan, args.partitions, &args.nprobe)?);
    }

    let mut baselines = Baselines::default();
    if args.baselines {
        // The learned baselines must be trained on DIR's split: RUN's own (warm/cold), RUN2's (transfer).
        let source = match args.protocol {
            EvalProtocol::Transfer => finetuned.as_ref().map(|(run, _)| run),
            _ => Some(&run),
        };
        baselines = Baselines::load(&data, &plan, &features, source)?;
        for scorer in baselines.scorers()? {
            report.add_baseline_compared(&result, &plan.run(scorer.as_ref(), n_items, EVAL_BATCH)?);
        }
        report.baselines_unavailable = baselines.unavailable.clone();
    }

    let json_path = run.path.join(format!("eval-{}.json", args.protocol));
    omakase::weights::legacy_pth::write_atomically(&json_path, format!("{}\n", report.to_json()).as_bytes())
        .with_context(|| format!("writing {}", json_path.display()))?;

    // Quality describes the run's own dataset: a transfer evaluation leaves the last one in place.
    let quality = match args.protocol {
        EvalProtocol::Transfer => None,
        _ => Some(quality_report(&data, &features, &model, &plan, &baselines)?),
    };
    let html = write_report(&run.path, quality.as_ref())?;

    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
        println!("wrote {} and {}", json_path.display(), html.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The report's `index` section: the run's item vectors partitioned with the export's code
/// (`omakase::export::index`), the export's `nprobe` measured as it measures it, and the approximate
/// path judged against the exact ranking at each `nprobe` (`omakase::eval::evaluate_approximate`).
fn index_report(
    model: &LoadedModel,
    data: &DataDir,
    plan: &EvalPlan,
    partitions: Option<usize>,
    nprobes: &[usize],
) -> anyhow::Result<IndexReport> {
    if let Some(bad_value) = nprobes.iter().chain(&partitions).find(|&&v| v == 0) {
        return Err(bad(format!("--partitions and --nprobe must be at least 1 (got {bad_value})")));
    }
    let n = data.dataset.items.len();
    let judge = |scorer: &dyn UserVectors, items: &candle_core::Tensor| -> anyhow::Result<IndexReport> {
        let d = items.dim(1)?;
        let vectors: Vec<f32> = items.flatten_all()?.to_vec1()?;
        let opts = IndexOptions { partitions, ..IndexOptions::default() };
        let partitioning = partition(&vectors, d, &popularity(&data.dataset.users, n), &opts);
        let mut partition_of = vec![0u32; n];
        for (c, members) in partitioning.members.iter().enumerate() {
            members.iter().for_each(|&row| partition_of[row as usize] = c as u32);
        }
        let centroids = Centroids::from_values(partitioning.centroids.clone(), d)?;
        let bundle_rows: Vec<f32> =
            partitioning.order().iter().flat_map(|&r| vectors[r as usize * d..(r as usize + 1) * d].to_vec()).collect();
        // The export's user queries: the same sessions, their user vectors, their rows left out (in
        // bundle order, as the export sees them).
        let order = partitioning.order();
        let mut bundle_row = vec![0u32; n];
        order.iter().enumerate().for_each(|(new, &old)| bundle_row[old as usize] = new as u32);
        let sessions = recent_sessions(&data.dataset.users, model.max_len, opts.queries);
        let histories: Vec<&[u32]> = sessions.iter().map(Vec::as_slice).collect();
        let user_vectors: Vec<Vec<f32>> =
            if histories.is_empty() { Vec::new() } else { scorer.user_vectors(&histories)?.to_vec2()? };
        let users: Vec<UserQuery> = user_vectors
            .into_iter()
            .zip(&sessions)
            .map(|(v, s)| {
                let mut exclude: Vec<u32> = s.iter().map(|&r| bundle_row[r as usize]).collect();
                exclude.sort_unstable();
                exclude.dedup();
                (v, exclude)
            })
            .collect();
        let export_nprobe =
            measured_nprobe(&bundle_rows, d, EmbeddingDtype::Int8, &centroids, &partitioning.sizes(), &opts, &users)?;
        let nprobes = if nprobes.is_empty() { vec![export_nprobe] } else { nprobes.to_vec() };
        let index = EvalIndex { centroids: &centroids, partition_of: &partition_of };
        let results = evaluate_approximate(scorer, &plan.cases, n, &index, &nprobes, EVAL_BATCH)?;
        let probes = results
            .iter()
            .map(|result| match &plan.primary {
                Some(primary) => result.subset(primary).figures(),
                None => result.figures(),
            })
            .collect();
        Ok(IndexReport { partitions: centroids.len(), export_nprobe, probes })
    };
    match &model.trained {
        TrainedModel::Multimodal { model: recommender, catalogue } => {
            let scorer = RecommenderScorer::new(report_html::MODEL_KEY, recommender, catalogue, model.max_len)?;
            judge(&scorer, scorer.item_vectors())
        }
        TrainedModel::SasrecId(recommender) => {
            let scorer = RecommenderScorer::new(report_html::MODEL_KEY, recommender, &(), model.max_len)?;
            judge(&scorer, scorer.item_vectors())
        }
    }
}

/// Writes `RUN/quality.json` (when given) and rebuilds `RUN/report.html` from the RUN's files.
pub fn write_report(run: &Path, quality: Option<&QualityReport>) -> anyhow::Result<PathBuf> {
    report_html::write_report(run, quality).with_context(|| format!("writing the report of {}", run.display()))
}

/// A RUN directory whose files are all there.
pub struct LoadedRun {
    pub path: PathBuf,
    pub info: RunInfo,
    pub config: TrainConfig,
}

impl LoadedRun {
    /// Checks that `path` holds `config.toml`, `run.json` and `model.safetensors`, and reads the first two.
    pub fn open(path: &Path) -> anyhow::Result<LoadedRun> {
        if !path.is_dir() {
            return Err(bad(format!("{}: no such RUN directory (made by `omakase train --out RUN`)", path.display())));
        }
        for name in ["config.toml", "run.json", "model.safetensors"] {
            if !path.join(name).is_file() {
                return Err(bad(format!(
                    "{}: missing (is {} a finished `omakase train` run?)",
                    path.join(name).display(),
                    path.display()
                )));
            }
        }
        let config = TrainConfig::load(&path.join("config.toml")).map_err(|e| bad(e.to_string()))?;
        let info = RunInfo::load(path).map_err(|e| bad(e.to_string()))?;
        Ok(LoadedRun { path: path.to_owned(), info, config })
    }

    /// Refuses to evaluate a run under a protocol its training does not fit.
    fn check_protocol(&self, protocol: EvalProtocol, data: &DataDir) -> anyhow::Result<()> {
        let run_json = self.path.join("run.json");
        let same_catalogue =
            self.info.n_items == data.dataset.items.len() && self.info.item_ids_sha256 == data.ids_sha256;
        match protocol {
            EvalProtocol::Warm | EvalProtocol::Cold => {
                if !same_catalogue {
                    return Err(bad(format!(
                        "{}: the run was trained on {} ({} items), not on the catalogue of {} ({} items): use \
                         --protocol transfer",
                        run_json.display(),
                        self.info.dataset,
                        self.info.n_items,
                        data.dir.display(),
                        data.dataset.items.len()
                    )));
                }
                if self.info.protocol != protocol.as_str() {
                    return Err(bad(format!(
                        "{}: the run was trained under the {} protocol; {protocol} figures need a run trained on the \
                         {protocol} split ([data] protocol = \"{protocol}\" in the training config)",
                        run_json.display(),
                        self.info.protocol
                    )));
                }
            }
            EvalProtocol::Transfer => {
                if self.info.model_kind != ModelKind::Multimodal {
                    return Err(bad(format!(
                        "{}: an item-ID model cannot score another catalogue's items",
                        run_json.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The run's best weights on `features`' catalogue; dims that disagree are bad input naming the files.
    /// `own_catalogue`: `features` are the run's own shop (warm and cold protocols), so its ID
    /// residuals apply; false for another shop (transfer).
    pub fn load_model(&self, features: &Features, own_catalogue: bool) -> anyhow::Result<LoadedModel> {
        let model = &self.config.model;
        let config_path = self.path.join("config.toml");
        if self.info.model_kind == ModelKind::Multimodal {
            for (what, expected, got) in
                [("text_dim", model.text_dim, features.text.dim), ("image_dim", model.image_dim, features.image.dim)]
            {
                if expected != got {
                    return Err(bad(format!(
                        "{}: [model] {what} = {expected}, but the features ({}) are {got}-wide: the model was \
                         trained on other encoders' features",
                        config_path.display(),
                        what.trim_end_matches("_dim")
                    )));
                }
            }
        }
        let (_, _, trained) = TrainedModel::load(&self.path, features, own_catalogue).map_err(|e| {
            bad(format!(
                "{} does not fit {} and the features: {e}",
                self.path.join("model.safetensors").display(),
                config_path.display()
            ))
        })?;
        Ok(LoadedModel { trained, max_len: model.max_len, item_view: model.item_view })
    }
}

/// A run's trained model, ready to score.
pub struct LoadedModel {
    pub trained: TrainedModel,
    pub max_len: usize,
    pub item_view: ItemView,
}

impl LoadedModel {
    /// The model as a scorer named `model` (the report's key for the evaluated model).
    fn scorer(&self, run: &Path) -> anyhow::Result<Box<dyn Scorer + '_>> {
        self.named_scorer(report_html::MODEL_KEY).with_context(|| format!("scoring with {}", run.display()))
    }

    fn named_scorer(&self, name: &str) -> anyhow::Result<Box<dyn Scorer + '_>> {
        Ok(self.trained.scorer(name, self.max_len)?)
    }
}

/// A loaded, usable dataset directory.
pub struct DataDir {
    pub dir: PathBuf,
    pub name: String,
    pub dataset: Dataset,
    /// sha256 of the item ids joined by newlines (as `run.json`'s `item_ids_sha256`).
    pub ids_sha256: String,
}

impl DataDir {
    pub fn load(dir: &Path) -> anyhow::Result<DataDir> {
        if !dir.is_dir() {
            return Err(bad(format!("{}: no such dataset directory", dir.display())));
        }
        let loaded = load_dir(dir);
        if !loaded.is_usable() {
            let fatal: Vec<String> = loaded
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Fatal)
                .take(5)
                .map(|p| p.to_string())
                .collect();
            return Err(bad(format!(
                "dataset {} is not usable:\n  {}\n(`omakase validate --data {}` lists every problem)",
                dir.display(),
                fatal.join("\n  "),
                dir.display()
            )));
        }
        let dataset = loaded.dataset;
        let ids: Vec<&str> = dataset.items.iter().map(|i| i.id.as_str()).collect();
        let ids_sha256 = omakase::encoders::cache::sha256_hex(ids.join("\n").as_bytes());
        Ok(DataDir { dir: dir.to_owned(), name: folder_name(dir), dataset, ids_sha256 })
    }

    /// The catalogue's features (see the module documentation for where they come from).
    pub fn features(
        &self,
        given: Option<&Path>,
        run: Option<&LoadedRun>,
        models: Option<&Path>,
    ) -> anyhow::Result<Features> {
        if let Some(path) = given {
            return self.read_features(path);
        }
        if let Some(run) = run.filter(|r| r.info.item_ids_sha256 == self.ids_sha256) {
            let path = PathBuf::from(&run.info.features);
            if path.is_file() {
                // Re-encoding (another template, other encoder weights) changes what the model reads.
                if omakase::fs::sha256_file(&path)? != run.info.features_sha256 {
                    eprintln!(
                        "warning: {} changed since {} was trained (features_sha256 differs in run.json)",
                        path.display(),
                        run.path.display()
                    );
                }
                return self.read_features(&path);
            }
        }
        let path = Path::new("out").join(&self.name).join("features.safetensors");
        if path.is_file() {
            if let Ok(features) = self.read_features(&path) {
                return Ok(features);
            }
        }
        self.encode(&path, run, models)
    }

    fn read_features(&self, path: &Path) -> anyhow::Result<Features> {
        if !path.is_file() {
            return Err(bad(format!("{}: no such features file", path.display())));
        }
        let features = Features::load(path).map_err(|e| bad(e.to_string()))?;
        let same = features.item_ids.len() == self.dataset.items.len()
            && features.item_ids.iter().zip(&self.dataset.items).all(|(id, item)| *id == item.id);
        if !same {
            return Err(bad(format!(
                "{}: features of another catalogue ({} items; {} has {}): run `omakase encode --data {}`",
                path.display(),
                features.len(),
                self.dir.display(),
                self.dataset.items.len(),
                self.dir.display()
            )));
        }
        Ok(features)
    }

    fn encode(&self, path: &Path, run: Option<&LoadedRun>, models: Option<&Path>) -> anyhow::Result<Features> {
        let models = models.map(Path::to_owned).unwrap_or_else(default_models_dir);
        let with_image = self.dataset.items.iter().any(|item| item.image.is_some());
        eprintln!("encoding {} into {} (encoders from {})", self.dir.display(), path.display(), models.display());
        let encoders = Encoders::load(&models, with_image).with_context(|| {
            format!("loading the encoders from {} to encode {}", models.display(), self.dir.display())
        })?;
        let mut options = EncodeOptions::default();
        if let Some(run) = run {
            // The texts must be composed as they were for the model's training.
            options.template = run.config.encode.text_template.clone();
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let (features, _) = encode_dir(&self.dir, path, &encoders, &options)?;
        Ok(features)
    }
}

fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into())
}

/// The baselines of one evaluation: the model-free ones and the learned ones that were found.
#[derive(Default)]
pub struct Baselines {
    popularity: Option<Popularity>,
    knn: Option<ContentKnn>,
    learned: Vec<(String, LoadedModel)>,
    /// Baselines that could not be evaluated, with the reason.
    pub unavailable: std::collections::BTreeMap<String, String>,
}

impl Baselines {
    pub fn load(
        data: &DataDir,
        plan: &EvalPlan,
        features: &Features,
        source: Option<&LoadedRun>,
    ) -> anyhow::Result<Self> {
        let n_items = data.dataset.items.len();
        let popularity = Popularity::from_split(&plan.split, n_items)?;
        let (text, image, _, _) = as_tensors(features, &Device::Cpu)?;
        let knn = ContentKnn::from_modalities(
            CONTENT_KNN,
            n_items,
            &[
                Modality { features: &text, present: &features.text.present },
                Modality { features: &image, present: &features.image.present },
            ],
        )?;
        let mut baselines = Baselines { popularity: Some(popularity), knn: Some(knn), ..Default::default() };
        for baseline in Baseline::ALL {
            let name = baseline.name().to_string();
            let Some(run) = source else {
                baselines.unavailable.insert(
                    name,
                    "a learned baseline must be trained on this dataset: pass --finetuned RUN2 (trained here with \
                     --baselines)"
                        .into(),
                );
                continue;
            };
            let dir = run.path.join("baselines").join(&name);
            if !dir.is_dir() {
                baselines
                    .unavailable
                    .insert(name, format!("{} not found: train it with `omakase train --baselines`", dir.display()));
                continue;
            }
            // Baselines are trained on this very dataset (checked above): their own catalogue.
            match LoadedRun::open(&dir).and_then(|b| b.load_model(features, true)) {
                Ok(model) => baselines.learned.push((name, model)),
                Err(err) => {
                    baselines.unavailable.insert(name, format!("{err:#}"));
                }
            }
        }
        Ok(baselines)
    }

    /// Every available baseline as a scorer, named as in the report.
    pub fn scorers(&self) -> anyhow::Result<Vec<Box<dyn Scorer + '_>>> {
        let mut scorers: Vec<Box<dyn Scorer + '_>> = Vec::new();
        if let Some(p) = &self.popularity {
            scorers.push(Box::new(p.clone()));
        }
        if let Some(k) = &self.knn {
            scorers.push(Box::new(k.clone()));
        }
        for (name, model) in &self.learned {
            scorers.push(model.named_scorer(name)?);
        }
        Ok(scorers)
    }
}

/// The data-quality section: modality agreement through the model's item tower, items missing a modality,
/// and the exposure of the model's (and each baseline's) masked top-10 over every test case of `plan`.
pub fn quality_report(
    data: &DataDir,
    features: &Features,
    model: &LoadedModel,
    plan: &EvalPlan,
    baselines: &Baselines,
) -> anyhow::Result<QualityReport> {
    let items = &data.dataset.items;
    let n_items = items.len();
    let agreement = match &model.trained {
        TrainedModel::Multimodal { model: recommender, .. } if model.item_view == ItemView::Both => {
            let (text, image, has_text, has_image) = as_tensors(features, &Device::Cpu)?;
            let catalogue = ItemFeatures::new(text, image, &has_text, &has_image)?;
            let scores = quality::modality_agreement(recommender.item_tower(), &catalogue)?;
            quality::summarise_agreement(&scores, items, MISMATCH_LIST)
        }
        _ => None,
    };
    let counts = Popularity::from_split(&plan.split, n_items)?.counts().to_vec();
    let cases: &[TestCase] = &plan.cases;
    let mut exposure = Vec::new();
    let ours = model.scorer(Path::new("the model"))?;
    let mut all: Vec<Box<dyn Scorer + '_>> = vec![ours];
    all.extend(baselines.scorers()?);
    for scorer in &all {
        let lists = quality::top_k_masked(scorer.as_ref(), cases, n_items, EXPOSURE_K, EVAL_BATCH)?;
        exposure.push(quality::exposure(scorer.name(), EXPOSURE_K, &lists, &counts));
    }
    Ok(QualityReport {
        dataset: data.name.clone(),
        items: n_items,
        agreement,
        missing_text: quality::missing_modality(&features.text.present, items, MISSING_LIST),
        missing_image: quality::missing_modality(&features.image.present, items, MISSING_LIST),
        interactions: quality::interaction_profile(&counts),
        exposure,
    })
}
