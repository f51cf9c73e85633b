//! `omakase sweep` as a library: settings × seeds trained with the ordinary training job, each run's
//! best-validation weights judged on the test split, and every setting compared with the default on
//! the same users (docs/evaluation.md § Comparing settings). A default changes only on this evidence.
//!
//! ```text
//! BASE config ─┬─ "default" (as is) ──┐
//!              └─ NAME: key=value,... ─┴─► × seeds × protocols ─► train (OUT/NAME/seed-S, resumable)
//!   ─► test ranks of each run (EvalPlan) ─► per setting: mean ± sd over seeds, paired interval of
//!      the per-user NDCG@10 difference against the default of the same seed ─► OUT/sweep.{json,md}
//! ```
//!
//! Runs are ordinary RUN directories (`docs/run-format.md`): a finished one (`run.json` status `done`)
//! is not trained again, an interrupted one resumes from its checkpoint, so a sweep killed at any
//! point continues where it stopped when the same command is run again. A run whose `config.toml`
//! differs from what the sweep would train there is refused, never mixed.
//!
//! The paired interval: for each test user, the setting's NDCG@10 minus the default's, averaged over
//! the seeds (same users in every seed: the split is a pure function of the dataset); then
//! [`paired_bootstrap`] over the users — a 95 % percentile bootstrap that resamples users, each with
//! all its seeds (the users are the sample; the seeds are averaged within a user). Its centre is the
//! mean of the per-seed differences.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::write_atomic;
use super::config::{TrainConfig, TrainProtocol};
use super::device::DeviceChoice;
use super::error::TrainError;
use super::progress::Progress;
use super::run::{train, RunInfo, TrainJob, TrainedModel};
use crate::data::load::load_dir;
use crate::data::Severity;
use crate::encoders::features::Features;
use crate::eval::significance::{paired_bootstrap, PairedDifference, RESAMPLES};
use crate::eval::{ndcg_at, EvalPlan, EvalProtocol, Evaluation};

/// The name of the row trained from the base config as it is.
pub const DEFAULT: &str = "default";
/// The bootstrap's seed (fixed: the same ranks give the same interval in every run).
const BOOTSTRAP_SEED: u64 = 0x5eed_5eed;
/// Test cases scored per batch.
const EVAL_BATCH: usize = 256;

/// One `--setting NAME=key=value[,key=value]`: config keys (dotted, `section.field`) laid over the
/// base config.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    /// `(dotted key, value)` in the order given.
    pub overrides: Vec<(String, toml::Value)>,
}

impl Setting {
    /// Parses `NAME=key=value[,key=value...]`. A value is TOML (`3`, `1e-3`, `true`, `"moe"`,
    /// `[1, 2]`), or a bare word taken as a string (`text_adaptor=moe`). Commas inside brackets or
    /// quotes do not split.
    pub fn parse(spec: &str) -> Result<Setting, TrainError> {
        let error = |reason: String| TrainError::Config { origin: format!("--setting {spec}"), reason };
        let (name, body) =
            spec.split_once('=').ok_or_else(|| error("expected NAME=key=value[,key=value...]".into()))?;
        let name = name.trim();
        let name_ok = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.');
        if !name_ok {
            return Err(error(format!(
                "the name `{name}` must be letters, digits, `-`, `_` or `.` (it names the folder OUT/{name})"
            )));
        }
        if name == DEFAULT {
            return Err(error(format!("`{DEFAULT}` is the base config's own row: name the setting otherwise")));
        }
        let mut overrides = Vec::new();
        for part in split_top_level(body) {
            let (key, raw) =
                part.split_once('=').ok_or_else(|| error(format!("`{}` is not key=value", part.trim())))?;
            let key = key.trim().to_string();
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(error(format!("`{}`: empty key", part.trim())));
            }
            if key == "train.seed" || key == "data.protocol" {
                return Err(error(format!("`{key}` is set by the sweep (--seeds, --protocol), not by a setting")));
            }
            overrides.push((key, parse_value(raw.trim())));
        }
        if overrides.is_empty() {
            return Err(error("no key=value given".into()));
        }
        Ok(Setting { name: name.to_string(), overrides })
    }

    /// `base` with this setting's keys laid over it, checked: an unknown key or a value of the
    /// wrong type is an error naming the key.
    pub fn apply(&self, base: &TrainConfig) -> Result<TrainConfig, TrainError> {
        let origin = format!("--setting {}", self.name);
        let error = |reason: String| TrainError::Config { origin: origin.clone(), reason };
        let mut table = match toml::Value::try_from(base) {
            Ok(toml::Value::Table(table)) => table,
            other => return Err(error(format!("the base config does not serialize to a table: {other:?}"))),
        };
        for (key, value) in &self.overrides {
            set_dotted(&mut table, key, value.clone()).map_err(|reason| error(format!("`{key}`: {reason}")))?;
            // Checked key by key, so the error names the key that broke it.
            toml::Value::Table(table.clone())
                .try_into::<TrainConfig>()
                .map_err(|e| error(format!("`{key} = {value}`: {}", one_line(&e.to_string()))))?;
        }
        let config: TrainConfig =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| error(one_line(&e.to_string())))?;
        config.validate().map_err(error)?;
        Ok(config)
    }

    /// The overrides as `key = value` text (for the report).
    pub fn describe(&self) -> String {
        self.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

/// `body` split on the commas outside brackets, braces and quotes.
fn split_top_level(body: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// A TOML value, or the text itself as a string when it is not one (`moe`).
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut at = table;
    for part in parts {
        let entry = at.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("`{part}` is a value, not a table")),
        };
    }
    at.insert(last.to_string(), value);
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What `omakase sweep` was asked to do.
#[derive(Debug, Clone)]
pub struct SweepJob {
    /// The dataset directory.
    pub data: PathBuf,
    /// The default row's config (`--config`, else the training defaults); its seed and protocol
    /// are replaced by the sweep's.
    pub base: TrainConfig,
    /// The other rows, in order.
    pub settings: Vec<Setting>,
    pub seeds: Vec<u64>,
    /// One table per protocol, in order.
    pub protocols: Vec<TrainProtocol>,
    /// The sweep folder: OUT/NAME/seed-S runs, OUT/sweep.json, OUT/sweep.md.
    pub out: PathBuf,
    pub device: DeviceChoice,
    /// Run the encode pipeline before training (a cache hit when the features exist).
    pub encode: bool,
    /// Per-epoch lines of each run (`Bars`) or none; the sweep's own lines go to stderr either way
    /// unless `quiet`.
    pub progress: Progress,
    /// No progress lines at all (tests).
    pub quiet: bool,
    /// Runs trained at once (each by the [`Trainer`], from its own thread). 1: one after the other.
    pub jobs: usize,
}

/// One run's figures (a row of `sweep.json`'s `runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    pub setting: String,
    pub seed: u64,
    pub run: String,
    #[serde(rename = "test_ndcg@10")]
    pub test_ndcg10: f64,
    #[serde(rename = "test_ndcg@10_masked")]
    pub test_ndcg10_masked: f64,
    #[serde(rename = "test_hr@10")]
    pub test_hr10: f64,
    #[serde(rename = "test_hr@10_masked")]
    pub test_hr10_masked: f64,
    /// The validation NDCG@10 that picked the epoch.
    #[serde(rename = "valid_ndcg@10")]
    pub valid_ndcg10: f64,
    /// `valid − test` (unmasked NDCG@10): how optimistic the selection figure is.
    pub valid_test_gap: f64,
    pub best_epoch: Option<usize>,
    /// Wall seconds of training (all sessions, encode excluded), and CPU seconds when measured.
    pub seconds: f64,
    pub cpu_seconds: Option<f64>,
    pub device: Option<String>,
    /// Whether this invocation trained (or resumed) it; `false`: found finished.
    pub trained_now: bool,
}

/// Mean and sample standard deviation (n − 1; 0 for one value) over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
}

impl MeanSd {
    pub fn of(values: &[f64]) -> MeanSd {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = match values.len() {
            0 | 1 => 0.0,
            k => (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1) as f64).sqrt(),
        };
        MeanSd { mean, sd }
    }

    fn show(&self) -> String {
        format!("{:.4} ± {:.4}", self.mean, self.sd)
    }
}

/// A setting against the default on the same users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsDefault {
    /// Pooled over seeds (see the module documentation), unmasked and masked NDCG@10.
    #[serde(rename = "ndcg@10")]
    pub ndcg10: PairedDifference,
    #[serde(rename = "ndcg@10_masked")]
    pub ndcg10_masked: PairedDifference,
    /// Per seed, the same unmasked comparison over that seed's users.
    #[serde(rename = "ndcg@10_per_seed")]
    pub per_seed: BTreeMap<u64, PairedDifference>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingSummary {
    pub name: String,
    /// The keys it sets (`{}` for the default).
    pub overrides: BTreeMap<String, String>,
    pub seeds: Vec<u64>,
    #[serde(rename = "test_ndcg@10")]
    pub test_ndcg10: MeanSd,
    #[serde(rename = "test_ndcg@10_masked")]
    pub test_ndcg10_masked: MeanSd,
    #[serde(rename = "test_hr@10")]
    pub test_hr10: MeanSd,
    #[serde(rename = "valid_ndcg@10")]
    pub valid_ndcg10: MeanSd,
    pub valid_test_gap: MeanSd,
    pub best_epochs: Vec<Option<usize>>,
    /// Wall seconds of training per run, and CPU seconds where every run measured them (on a
    /// shared machine the wall time depends on what else runs; the CPU time much less).
    pub seconds: MeanSd,
    pub cpu_seconds: Option<MeanSd>,
    /// `None` for the default row.
    pub vs_default: Option<VsDefault>,
}

/// One protocol's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepTable {
    pub protocol: String,
    /// Test cases per run (the cold protocol's: new-item targets only).
    pub users: usize,
    pub settings: Vec<SettingSummary>,
    pub runs: Vec<RunFigures>,
}

/// `OUT/sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub dataset: String,
    pub items: usize,
    pub seeds: Vec<u64>,
    pub device: String,
    /// Which interval `vs_default` holds, in words.
    pub interval: String,
    pub tables: Vec<SweepTable>,
}

/// The run folder of (setting, seed, protocol): `OUT/NAME/seed-S`, `-cold` appended for the cold
/// protocol.
pub fn run_dir(out: &Path, setting: &str, seed: u64, protocol: TrainProtocol) -> PathBuf {
    let suffix = match protocol {
        TrainProtocol::Warm => "",
        TrainProtocol::Cold => "-cold",
    };
    out.join(setting).join(format!("seed-{seed}{suffix}"))
}

/// How one run is trained: [`train_in_process`] (the default), or e.g. a child `omakase train`
/// process per run (the CLI's `--jobs N`, so that several runs share a GPU as separate processes).
/// Called from up to `SweepJob::jobs` threads at once.
pub type Trainer<'a> = &'a (dyn Fn(&TrainJob) -> Result<(), TrainError> + Sync);

/// [`train`] in this process.
pub fn train_in_process(job: &TrainJob) -> Result<(), TrainError> {
    train(job).map(|_| ())
}

/// One run of the sweep.
struct Planned {
    name: String,
    seed: u64,
    protocol: TrainProtocol,
    config: TrainConfig,
    dir: PathBuf,
}

/// Trains what is missing, evaluates every run, writes `OUT/sweep.json` and `OUT/sweep.md`.
pub fn sweep(job: &SweepJob) -> Result<SweepReport, TrainError> {
    sweep_with(job, &train_in_process)
}

/// [`sweep`] with another way to train each run.
pub fn sweep_with(job: &SweepJob, trainer: Trainer) -> Result<SweepReport, TrainError> {
    let say = |line: &str| {
        if !job.quiet {
            eprintln!("sweep: {line}");
        }
    };
    if job.seeds.is_empty() || job.protocols.is_empty() {
        return Err(TrainError::Config { origin: "sweep".into(), reason: "no seeds or no protocol".into() });
    }
    let mut names = vec![DEFAULT.to_string()];
    for setting in &job.settings {
        if names.contains(&setting.name) {
            let reason = format!("the name `{}` is given twice", setting.name);
            return Err(TrainError::Config { origin: format!("--setting {}", setting.name), reason });
        }
        names.push(setting.name.clone());
    }
    // Every config is built (and checked) before the first run starts: a bad setting costs nothing.
    let mut rows: Vec<(String, BTreeMap<String, String>, TrainConfig)> =
        vec![(DEFAULT.into(), BTreeMap::new(), job.base.clone())];
    for setting in &job.settings {
        let overrides = setting.overrides.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        rows.push((setting.name.clone(), overrides, setting.apply(&job.base)?));
    }
    let mut plan = Vec::new();
    for &protocol in &job.protocols {
        for (name, _, config) in &rows {
            for &seed in &job.seeds {
                let mut config = config.clone();
                config.train.seed = seed;
                config.data.protocol = protocol;
                let dir = run_dir(&job.out, name, seed, protocol);
                plan.push(Planned { name: name.clone(), seed, protocol, config, dir });
            }
        }
    }

    let loaded = load_dir(&job.data);
    if let Some(fatal) = loaded.problems.iter().find(|p| p.severity == Severity::Fatal) {
        return Err(TrainError::Data {
            dir: job.data.display().to_string(),
            reason: format!("{fatal} (omakase validate lists every problem)"),
        });
    }
    let dataset = loaded.dataset;
    let n_items = dataset.items.len();
    std::fs::create_dir_all(&job.out).map_err(|e| TrainError::io(&job.out, e))?;

    let label = |run: &Planned| format!("{} seed {} {}", run.name, run.seed, run.protocol.as_str());
    let mut pending = Vec::new();
    for run in &plan {
        match finished(&run.config, &run.dir)? {
            true => say(&format!("{}: finished earlier ({})", label(run), run.dir.display())),
            false => pending.push(run),
        }
    }
    train_pending(job, trainer, &pending, &label, &say)?;

    let total = plan.len();
    let mut features: HashMap<String, Features> = HashMap::new();
    let mut tables = Vec::new();
    let mut device = String::new();
    for &protocol in &job.protocols {
        let eval_plan = EvalPlan::new(&dataset, eval_protocol(protocol));
        let mut runs = Vec::new();
        let mut evaluations: HashMap<(String, u64), Evaluation> = HashMap::new();
        for (done, run) in plan.iter().enumerate().filter(|(_, run)| run.protocol == protocol) {
            let (name, seed, dir) = (&run.name, run.seed, &run.dir);
            let info = RunInfo::load(dir)?;
            device = info.device.clone().unwrap_or_default();
            if !features.contains_key(&info.features) {
                features.insert(info.features.clone(), Features::load(Path::new(&info.features))?);
            }
            let (_, _, model) = TrainedModel::load(dir, &features[&info.features], true)?;
            let scorer = model.scorer(name, run.config.model.max_len)?;
            let result = eval_plan.run(scorer.as_ref(), n_items, EVAL_BATCH)?;
            let (test, masked) = (result.primary.metrics(), result.primary.metrics_masked());
            let valid = info.best_valid_ndcg_at_10.unwrap_or(f64::NAN);
            say(&format!(
                "[{}/{total}] {}: test NDCG@10 {:.4} (masked {:.4}), valid {valid:.4}, best epoch {}, {:.0} s",
                done + 1,
                label(run),
                test.ndcg_at_10,
                masked.ndcg_at_10,
                info.best_epoch.map_or("-".into(), |e| e.to_string()),
                info.seconds
            ));
            runs.push(RunFigures {
                setting: name.clone(),
                seed,
                run: dir.display().to_string(),
                test_ndcg10: test.ndcg_at_10,
                test_ndcg10_masked: masked.ndcg_at_10,
                test_hr10: test.recall_at_10,
                test_hr10_masked: masked.recall_at_10,
                valid_ndcg10: valid,
                valid_test_gap: valid - test.ndcg_at_10,
                best_epoch: info.best_epoch,
                seconds: info.seconds,
                cpu_seconds: info.cpu_seconds,
                device: info.device.clone(),
                trained_now: pending.iter().any(|p| p.dir == *dir),
            });
            evaluations.insert((name.clone(), seed), result.primary);
        }
        let users = evaluations.values().next().map_or(0, Evaluation::cases);
        let settings = rows
            .iter()
            .map(|(name, overrides, _)| summarise(name, overrides, &runs, &evaluations, &job.seeds))
            .collect();
        tables.push(SweepTable { protocol: protocol.as_str().into(), users, settings, runs });
    }
    let report = SweepReport {
        dataset: dataset_name(&job.data),
        items: n_items,
        seeds: job.seeds.clone(),
        device,
        interval: format!(
            "95% percentile bootstrap ({RESAMPLES} resamples of the test users) of the mean per-user NDCG@10 \
             difference setting − default, each user's difference averaged over the seeds (same seed paired)"
        ),
        tables,
    };
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| TrainError::Stage { stage: "sweep", reason: format!("JSON: {e}") })?;
    write_atomic(&job.out.join("sweep.json"), &json)?;
    write_atomic(&job.out.join("sweep.md"), report.to_markdown().as_bytes())?;
    Ok(report)
}

/// Whether `dir` holds a finished run of `config`; a finished run of another config is an error.
fn finished(config: &TrainConfig, dir: &Path) -> Result<bool, TrainError> {
    match RunInfo::load(dir) {
        Ok(info) if info.status == "done" => {
            let existing = TrainConfig::load(&dir.join("config.toml"))?;
            if existing != *config {
                return Err(TrainError::run(
                    dir,
                    "was trained with another config than this sweep's for it (a setting changed under the \
                     same name?): use a new --out, or another setting name",
                ));
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Trains `pending` with `trainer`, `job.jobs` at a time. With `job.encode`, the first run goes
/// alone (it runs the encode pipeline, which may write the features file) and the others only
/// read the features. The first error stops new runs from starting and is returned once the
/// running ones end.
fn train_pending(
    job: &SweepJob,
    trainer: Trainer,
    pending: &[&Planned],
    label: &(dyn Fn(&Planned) -> String + Sync),
    say: &(dyn Fn(&str) + Sync),
) -> Result<(), TrainError> {
    let total = pending.len();
    let run_one = |index: usize, encode: bool| -> Result<(), TrainError> {
        let run = pending[index];
        say(&format!("training {}/{total}: {} → {}", index + 1, label(run), run.dir.display()));
        let train_job = TrainJob {
            encode,
            progress: job.progress,
            device: job.device,
            ..TrainJob::quiet(job.data.clone(), run.dir.clone(), run.config.clone())
        };
        trainer(&train_job)
    };
    let mut start = 0;
    if job.encode && total > 0 {
        run_one(0, true)?;
        start = 1;
    }
    let next = std::sync::atomic::AtomicUsize::new(start);
    let failed: std::sync::Mutex<Option<TrainError>> = std::sync::Mutex::new(None);
    let labels: Vec<String> = pending.iter().map(|run| label(run)).collect();
    std::thread::scope(|scope| {
        for _ in 0..job.jobs.max(1).min(total.saturating_sub(start).max(1)) {
            scope.spawn(|| loop {
                if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                    return;
                }
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if index >= total {
                    return;
                }
                if let Err(err) = run_one(index, false) {
                    say(&format!("{} failed: {err}", labels[index]));
                    if let Ok(mut slot) = failed.lock() {
                        slot.get_or_insert(err);
                    }
                }
            });
        }
    });
    match failed.into_inner() {
        Ok(Some(err)) => Err(err),
        Ok(None) => Ok(()),
        Err(_) => Err(TrainError::Stage { stage: "sweep", reason: "a training thread panicked".into() }),
    }
}

fn eval_protocol(protocol: TrainProtocol) -> EvalProtocol {
    match protocol {
        TrainProtocol::Warm => EvalProtocol::Warm,
        TrainProtocol::Cold => EvalProtocol::Cold,
    }
}

fn dataset_name(data: &Path) -> String {
    data.canonicalize()
        .ok()
        .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into())
}

fn summarise(
    name: &str,
    overrides: &BTreeMap<String, String>,
    runs: &[RunFigures],
    evaluations: &HashMap<(String, u64), Evaluation>,
    seeds: &[u64],
) -> SettingSummary {
    let mine: Vec<&RunFigures> = runs.iter().filter(|r| r.setting == name).collect();
    let stat = |f: &dyn Fn(&RunFigures) -> f64| MeanSd::of(&mine.iter().map(|r| f(r)).collect::<Vec<_>>());
    let vs_default = (name != DEFAULT).then(|| vs_default(name, evaluations, seeds)).flatten();
    SettingSummary {
        name: name.into(),
        overrides: overrides.clone(),
        seeds: seeds.to_vec(),
        test_ndcg10: stat(&|r| r.test_ndcg10),
        test_ndcg10_masked: stat(&|r| r.test_ndcg10_masked),
        test_hr10: stat(&|r| r.test_hr10),
        valid_ndcg10: stat(&|r| r.valid_ndcg10),
        valid_test_gap: stat(&|r| r.valid_test_gap),
        best_epochs: mine.iter().map(|r| r.best_epoch).collect(),
        seconds: stat(&|r| r.seconds),
        cpu_seconds: mine.iter().map(|r| r.cpu_seconds).collect::<Option<Vec<f64>>>().map(|cpu| MeanSd::of(&cpu)),
        vs_default,
    }
}

/// The setting's per-user NDCG@10 differences against the default, same seed, pooled as the module
/// documentation says.
fn vs_default(name: &str, evaluations: &HashMap<(String, u64), Evaluation>, seeds: &[u64]) -> Option<VsDefault> {
    let per_user = |masked: bool| -> Option<Vec<f64>> {
        let mut sums: Vec<f64> = Vec::new();
        for &seed in seeds {
            let (ours, base) =
                (evaluations.get(&(name.to_string(), seed))?, evaluations.get(&(DEFAULT.to_string(), seed))?);
            let (a, b) = match masked {
                false => (&ours.ranks, &base.ranks),
                true => (&ours.ranks_masked, &base.ranks_masked),
            };
            if a.len() != b.len() || a.is_empty() {
                return None;
            }
            sums.resize(a.len(), 0.0);
            for (sum, (&x, &y)) in sums.iter_mut().zip(a.iter().zip(b)) {
                *sum += ndcg_at(x, 10) - ndcg_at(y, 10);
            }
        }
        Some(sums.into_iter().map(|s| s / seeds.len() as f64).collect())
    };
    let empty = |name: &str, seed: u64| evaluations.get(&(name.to_string(), seed)).is_none_or(|e| e.cases() == 0);
    if seeds.iter().any(|&seed| empty(name, seed) || empty(DEFAULT, seed)) {
        return None;
    }
    let mut per_seed = BTreeMap::new();
    for &seed in seeds {
        let (ours, base) =
            (evaluations.get(&(name.to_string(), seed))?, evaluations.get(&(DEFAULT.to_string(), seed))?);
        let d: Vec<f64> = ours.ranks.iter().zip(&base.ranks).map(|(&x, &y)| ndcg_at(x, 10) - ndcg_at(y, 10)).collect();
        per_seed.insert(seed, paired_bootstrap(&d, RESAMPLES, BOOTSTRAP_SEED));
    }
    Some(VsDefault {
        ndcg10: paired_bootstrap(&per_user(false)?, RESAMPLES, BOOTSTRAP_SEED),
        ndcg10_masked: paired_bootstrap(&per_user(true)?, RESAMPLES, BOOTSTRAP_SEED),
        per_seed,
    })
}

impl SweepReport {
    /// `OUT/sweep.md`: one table per protocol, in docs/evaluation.md § Measured settings' form.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let seeds = self.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        for table in &self.tables {
            let _ = writeln!(
                out,
                "{} protocol on {} ({} items, {} test users), seeds {seeds}, trained on {}; test figures of each \
                 run's best-validation epoch, mean ± sd over seeds.\n",
                table.protocol, self.dataset, self.items, table.users, self.device
            );
            out.push_str(
                "| setting | test NDCG@10 | masked | HR@10 | valid NDCG@10 | valid − test | best epochs | train s (cpu s) \
                 | Δ NDCG@10 vs default [95%] | Δ masked [95%] | seeds clear (up, down) |\n",
            );
            out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
            for s in &table.settings {
                let label = match s.overrides.is_empty() {
                    true => s.name.clone(),
                    false => {
                        let keys = s.overrides.iter().map(|(k, v)| format!("`{k}={v}`")).collect::<Vec<_>>();
                        format!("{} ({})", s.name, keys.join(", "))
                    }
                };
                let epochs = s.best_epochs.iter().map(|e| e.map_or("-".into(), |e| e.to_string())).collect::<Vec<_>>();
                let (d, dm, clear) = match &s.vs_default {
                    None => ("–".to_string(), "–".to_string(), "–".to_string()),
                    Some(v) => {
                        let up = v.per_seed.values().filter(|d| d.ci95[0] > 0.0).count();
                        let down = v.per_seed.values().filter(|d| d.ci95[1] < 0.0).count();
                        (interval(&v.ndcg10), interval(&v.ndcg10_masked), format!("{up} up, {down} down"))
                    }
                };
                let _ = writeln!(
                    out,
                    "| {label} | {} | {} | {} | {} | {:+.4} | {} | {:.0} ({}) | {d} | {dm} | {clear} |",
                    s.test_ndcg10.show(),
                    s.test_ndcg10_masked.show(),
                    s.test_hr10.show(),
                    s.valid_ndcg10.show(),
                    s.valid_test_gap.mean,
                    epochs.join(", "),
                    s.seconds.mean,
                    s.cpu_seconds.map_or("?".into(), |c| format!("{:.0}", c.mean)),
                );
            }
            let _ = writeln!(out, "\nΔ: {}.\n", self.interval);
        }
        out
    }
}

fn interval(d: &PairedDifference) -> String {
    let verdict = if d.is_clear() { "" } else { " ≈" };
    format!("{:+.4} [{:+.4}, {:+.4}]{verdict}", d.difference, d.ci95[0], d.ci95[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_values_and_name_bad_keys() {
        let s = Setting::parse("long=train.epochs=400,train.patience=20,model.text_adaptor=moe").unwrap();
        assert_eq!(s.name, "long");
        assert_eq!(s.overrides[0], ("train.epochs".into(), toml::Value::Integer(400)));
        assert_eq!(s.overrides[2].1, toml::Value::String("moe".into()));
        let config = Setting::parse("x=train.epochs=7,train.id_residual_lr=1e-3")
            .unwrap()
            .apply(&TrainConfig::default())
            .unwrap();
        assert_eq!((config.train.epochs, config.train.id_residual_lr), (7, Some(1e-3)));

        let err = Setting::parse("x=train.epoch=7").unwrap().apply(&TrainConfig::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--setting x") && text.contains("train.epoch") && text.contains("unknown"), "{text}");
        let err = Setting::parse("x=train.lr=fast").unwrap().apply(&TrainConfig::default()).unwrap_err();
        assert!(err.to_string().contains("train.lr"), "{err}");
        let err = Setting::parse("x=train.lr=-1").unwrap().apply(&TrainConfig::default()).unwrap_err();
        assert!(err.to_string().contains("train.lr"), "{err}");
        for bad in ["noequals", "x=", "default=train.epochs=3", "x=train.seed=1", "a/b=train.epochs=1", "x=epochs"] {
            assert!(Setting::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(split_top_level("a=[1, 2],b=\"x,y\""), vec!["a=[1, 2]", "b=\"x,y\""]);
    }

    #[test]
    fn mean_and_sample_sd() {
        let m = MeanSd::of(&[1.0, 2.0, 3.0]);
        assert_eq!((m.mean, m.sd), (2.0, 1.0));
        assert_eq!(MeanSd::of(&[5.0]).sd, 0.0);
    }
}
