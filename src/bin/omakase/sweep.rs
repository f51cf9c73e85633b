//! `omakase sweep DATA [--config BASE.toml] --setting NAME=key=value[,key=value] ... [--seeds 42,43,44]
//! --out DIR [--device cpu|cuda] [--protocol warm|cold|both]` (docs/evaluation.md § Comparing settings):
//! the default (BASE as it is) and every named setting, trained for every seed into `DIR/NAME/seed-S`
//! (resumable: run the same command again after a crash), each run's best-validation weights judged
//! on the test split, and a table — mean ± sd over seeds, paired interval against the default — printed
//! and written to `DIR/sweep.md` and `DIR/sweep.json`. Progress lines go to stderr.
//!
//! Exit codes: 0 ok, 2 bad input (a bad `--setting`, naming the key; a bad config or dataset; a run
//! folder trained under another config), 1 anything else.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use omakase::train::config::TrainProtocol;
use omakase::train::sweep::{sweep, Setting, SweepJob};
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
    /// Also show each run's per-epoch lines and bars.
    #[arg(long)]
    pub verbose: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::train::tune_process_for_training();
    match job(&args).and_then(|job| sweep(&job)) {
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
    })
}
