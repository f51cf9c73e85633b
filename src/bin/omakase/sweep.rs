//! `omakase sweep DATA [--config BASE.toml] --setting NAME=key=value[,key=value] ... [--seeds 42,43,44]
//! --out DIR [--device cpu|cuda] [--protocol warm|cold|both]` (docs/evaluation.md § Comparing settings):
//! the default (BASE as it is) and every named setting, trained for every seed into `DIR/NAME/seed-S`
//! (resumable: run the same command again after a crash), each run's best-validation weights judged
//! on the test split, and a table — mean ± sd over seeds, paired interval against the default — printed
//! and written to `DIR/sweep.md` and `DIR/sweep.json`. Progress lines go to stderr.
//!
//! Exit codes: 0 ok, 2 bad input (a bad `--setting`, naming the key; a bad config or dataset; a run
//! folder trained under another config), 1 anything else.

// `TrainError` is returned by value, as in `omakase::train` (its module says why that is fine).
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use omakase::train::config::TrainProtocol;
use omakase::train::sweep::{sweep, sweep_with, Setting, SweepJob};
use omakase::train::TrainJob;
use omakase::train::{DeviceChoice, Progress, TrainConfig, TrainError};

#[derive(clap::Args)]
pub struct Args {
    /// The dataset directory (items.jsonl, interactions.csv, images/).
    pub data: PathBuf,
    /// The default row's training config (every run of the sweep starts from it); without it the
    /// training defaults (src/train/config.rs).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A row to compare with the default: `NAME=key=value[,key=value...]`, keys as in the config
    /// (`train.epochs=400`, `model.text_adaptor=moe`); repeat for more rows.
    #[arg(long = "setting", value_name = "NAME=KEY=VALUE,...")]
    pub settings: Vec<String>,
    /// Seeds, comma-separated; every row is trained once per seed.
    #[arg(long, value_delimiter = ',', default_value = "42,43,44")]
    pub seeds: Vec<u64>,
    /// The sweep folder: DIR/NAME/seed-S runs, DIR/sweep.json, DIR/sweep.md.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to train: cpu (default), cuda / cuda:N, or auto (as `omakase train --device`).
    #[arg(long, default_value = "cpu", value_parser = DeviceChoice::parse)]
    pub device: DeviceChoice,
    /// warm (default), cold, or both (one table each; cold runs are DIR/NAME/seed-S-cold).
    #[arg(long, default_value = "warm", value_parser = ["warm", "cold", "both"])]
    pub protocol: String,
    /// Skip the encode step: the features file (`[encode] features`) must exist.
    #[arg(long)]
    pub no_encode: bool,
    /// Also show each run's per-epoch lines and bars (with --jobs 1).
    #[arg(long)]
    pub verbose: bool,
    /// Runs trained at once. Above 1, each run is a child `omakase train` process (several runs
    /// share one GPU well: one run's small steps leave it mostly idle), its output in DIR/NAME/seed-S.log.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::train::tune_process_for_training();
    let result = job(&args).and_then(|job| match job.jobs {
        0 | 1 => sweep(&job),
        _ => sweep_with(&job, &train_in_child),
    });
    match result {
        Ok(report) => {
            print!("{}", report.to_markdown());
            println!("wrote {} and {}", args.out.join("sweep.md").display(), args.out.join("sweep.json").display());
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ (TrainError::Config { .. }
            | TrainError::Data { .. }
            | TrainError::Run { .. }
            | TrainError::Device { .. }),
        ) => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(err).with_context(|| format!("sweep into {}", args.out.display())),
    }
}

fn job(args: &Args) -> Result<SweepJob, TrainError> {
    let base = match &args.config {
        Some(path) => TrainConfig::load(path)?,
        None => TrainConfig::default(),
    };
    let settings = args.settings.iter().map(|s| Setting::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let protocols = match args.protocol.as_str() {
        "cold" => vec![TrainProtocol::Cold],
        "both" => vec![TrainProtocol::Warm, TrainProtocol::Cold],
        _ => vec![TrainProtocol::Warm],
    };
    Ok(SweepJob {
        data: args.data.clone(),
        base,
        settings,
        seeds: args.seeds.clone(),
        protocols,
        out: args.out.clone(),
        device: args.device,
        encode: !args.no_encode,
        progress: if args.verbose { Progress::Bars } else { Progress::Silent },
        quiet: false,
        jobs: args.jobs,
    })
}

/// Trains one run as a child `omakase train` (this same binary): its config in `RUN.toml`, its
/// output in `RUN.log`, beside the run folder.
fn train_in_child(job: &TrainJob) -> Result<(), TrainError> {
    let config = job.config.as_ref().ok_or_else(|| TrainError::run(&job.out, "a sweep run needs its config"))?;
    let (config_path, log_path) = (job.out.with_extension("toml"), job.out.with_extension("log"));
    if let Some(parent) = job.out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    }
    std::fs::write(&config_path, config.to_toml()?).map_err(|e| TrainError::io(&config_path, e))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| TrainError::io(&log_path, e))?;
    let exe = std::env::current_exe().map_err(|e| TrainError::io(std::path::Path::new("omakase"), e))?;
    let mut command = std::process::Command::new(exe);
    command.arg("train").arg("--data").arg(&job.data).arg("--out").arg(&job.out).arg("--config").arg(&config_path);
    command.arg("--device").arg(job.device.to_string());
    if !job.encode {
        command.arg("--no-encode");
    }
    let stderr = log.try_clone().map_err(|e| TrainError::io(&log_path, e))?;
    let status = command.stdout(log).stderr(stderr).status().map_err(|e| TrainError::io(&log_path, e))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
    Err(TrainError::run(&job.out, format!("omakase train failed ({status}): {last} (see {})", log_path.display())))
}
