//! `omakase train --data DIR --out RUN [--config FILE] [--init RUN] [--baselines [LIST]] [--device D] [--quiet]`:
//! encode (a cache hit when the features exist) → pretrain → train, into the RUN directory
//! (docs/run-format.md). Checkpoints every epoch: run the same command again after a crash or a
//! kill and it resumes from the last completed epoch, to the same result. Exit 0 when done, 2 on
//! bad input (unusable dataset, bad config, a RUN started with another config).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use omakase::train::{train, Baseline, DeviceChoice, Progress, RunInfo, TrainConfig, TrainError, TrainJob};

#[derive(clap::Args)]
pub struct Args {
    /// The dataset directory (items.jsonl, interactions.csv, images/).
    #[arg(long)]
    pub data: PathBuf,
    /// The RUN directory to create, or to resume when it holds a checkpoint.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML config; every field is optional (defaults: src/train/config.rs). The effective config is
    /// written to RUN/config.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Start from another run's weights (transfer: item tower and sequence tower; the catalogues may
    /// differ, there are no item-ID parameters). Needs the same [model] shapes.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Also train learned baselines on the same split into RUN/baselines/<name>: a comma-separated
    /// list of sasrec_id, text_only, image_only, no_pretrain; without a value, all of them.
    #[arg(long, num_args = 0..=1, default_missing_value = "sasrec_id,text_only,image_only,no_pretrain", value_delimiter = ',')]
    pub baselines: Option<Vec<String>>,
    /// Train only the baselines named by --baselines (e.g. to add them to a finished run).
    #[arg(long, requires = "baselines")]
    pub baselines_only: bool,
    /// Skip the encode step: read the features file (`[encode] features`) as it is; it must exist
    /// and match the catalogue.
    #[arg(long)]
    pub no_encode: bool,
    /// No progress bars or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Where to train: `cpu` (default), `cuda` / `cuda:N` (an NVIDIA GPU; needs a binary built by
    /// scripts/build-cuda.sh), or `auto` (the GPU when one opens, else the CPU, saying why).
    #[arg(long, default_value = "cpu", value_parser = DeviceChoice::parse)]
    pub device: DeviceChoice,
}

/// Process-wide settings that make CPU training several times cheaper; each measured on ml100k-mm
/// (d = 64, one epoch, 2 shared cores): 41 CPU s with the defaults, 13 with both.
///
/// - candle runs element-wise ops on a pool of threads that *spin* at a barrier after each op; on
///   a loaded machine a spinning thread waits for a descheduled peer, and the training ops are
///   small: one pool thread (`CANDLE_NUM_THREADS=1`, unless set by the user) halves the CPU time.
///   Matrix products still use every core (`RAYON_NUM_THREADS`).
/// - glibc serves allocations above its mmap threshold with fresh pages and unmaps them on free,
///   so every step page-faults its activations in again (~20% of the time): the threshold is raised
///   to glibc's maximum (32 MiB) and freed memory is kept.
pub fn tune_process_for_training() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Before any candle op: the pool reads the variable once, when first used. No other thread
        // is running yet (clap parsing is single-threaded), so setting it is sound.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    // SAFETY: mallopt only changes allocator parameters; glibc documents it as callable at any time.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    tune_process_for_training();
    let config = match &args.config {
        Some(path) => match TrainConfig::load(path) {
            Ok(config) => Some(config),
            Err(err) => return bad_input(&err),
        },
        None => None,
    };
    let mut baselines = Vec::new();
    for name in args.baselines.iter().flatten() {
        match Baseline::parse(name.trim()) {
            Some(baseline) => baselines.push(baseline),
            None => {
                eprintln!("error: unknown baseline `{name}` (expected sasrec_id, text_only, image_only, no_pretrain)");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let job = TrainJob {
        data: args.data.clone(),
        out: args.out.clone(),
        config,
        init: args.init.clone(),
        encode: !args.no_encode,
        progress: if args.quiet { Progress::Silent } else { Progress::Bars },
        main: !args.baselines_only,
        baselines,
        stop_after_epochs: None,
        device: args.device,
    };
    let summary = match train(&job) {
        Ok(summary) => summary,
        Err(
            err @ (TrainError::Config { .. }
            | TrainError::Data { .. }
            | TrainError::Run { .. }
            | TrainError::Device { .. }),
        ) => return bad_input(&err),
        Err(err) => return Err(err).with_context(|| format!("training into {}", args.out.display())),
    };
    if let Some(main) = &summary.main {
        print_info("model", main);
    }
    for (name, info) in &summary.baselines {
        print_info(&format!("baseline {name}"), info);
    }
    for (name, why) in &summary.skipped {
        println!("baseline {name}: skipped ({why})");
    }
    println!("run            {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn bad_input(err: &TrainError) -> anyhow::Result<ExitCode> {
    eprintln!("error: {err}");
    Ok(ExitCode::from(2))
}

fn print_info(what: &str, info: &RunInfo) {
    println!(
        "{what:<22} best epoch {}  valid NDCG@10 {}  ({:.0} s, {} cpu s)",
        info.best_epoch.map_or("-".into(), |e| e.to_string()),
        info.best_valid_ndcg_at_10.map_or("-".into(), |v| format!("{v:.4}")),
        info.seconds,
        info.cpu_seconds.map_or("?".into(), |s| format!("{s:.0}")),
    );
}
