//! `omakase report --model RUN [--data DIR]`: rebuilds `RUN/report.html` — the data-quality analysis
//! recomputed from the model and the data (written to `RUN/quality.json`), the accuracy sections from the
//! `eval-*.json` that `omakase eval` left. Nothing is re-evaluated. Exit 2 on bad input, as `eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use omakase::eval::{EvalPlan, EvalProtocol};

use super::eval::{bad, exit_code, quality_report, write_report, Baselines, DataDir, LoadedRun};

#[derive(clap::Args)]
pub struct Args {
    /// The RUN directory made by `omakase train`.
    #[arg(long)]
    pub model: PathBuf,
    /// The dataset the run was trained on [default: `data_dir` in RUN/run.json].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The features file of the dataset [default: as `omakase eval`].
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Encoder weights, used only when the features must be computed.
    #[arg(long)]
    pub models: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    exit_code(rebuild(&args))
}

fn rebuild(args: &Args) -> anyhow::Result<ExitCode> {
    let run = LoadedRun::open(&args.model)?;
    let data_dir = args.data.clone().unwrap_or_else(|| PathBuf::from(&run.info.data_dir));
    let data = DataDir::load(&data_dir)?;
    if run.info.item_ids_sha256 != data.ids_sha256 {
        return Err(bad(format!(
            "{}: the run was trained on {}, not on the catalogue of {}",
            run.path.join("run.json").display(),
            run.info.dataset,
            data.dir.display()
        )));
    }
    let protocol: EvalProtocol =
        run.info.protocol.parse().map_err(|e| bad(format!("{}: {e}", run.path.join("run.json").display())))?;
    let features = data.features(args.features.as_deref(), Some(&run), args.models.as_deref())?;
    let model = run.load_model(&features, protocol != EvalProtocol::Transfer)?;
    let plan = EvalPlan::new(&data.dataset, protocol);
    let baselines = Baselines::load(&data, &plan, &features, Some(&run))?;
    let quality = quality_report(&data, &features, &model, &plan, &baselines)?;
    let path = write_report(&run.path, Some(&quality))?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
