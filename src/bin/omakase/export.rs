//! `omakase export --model RUN --data DIR --out BUNDLE [--weights q8_0|q4_0|f16] [--shard int8|f16]
//! [--encoders [MODELS]] [--columns F,... | --no-columns] [--trending-half-life DAYS | --no-popularity]`:
//! the bundle the browser downloads, written atomically; format in docs/bundle.md.
//! Every file is read back and checked against the manifest before the summary.
//! Exit codes: 0 ok, 2 bad input (missing or mismatched RUN / DIR / features file, named), 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use omakase::encoders::pipeline::default_models_dir;
use omakase::export::index::{IndexChoice, IndexOptions};
use omakase::export::merchandising::ColumnChoice;
use omakase::export::{export, ExportError, ExportJob};
use omakase::runtime::{verify_file, EmbeddingDtype, WeightsDtype};

#[derive(clap::Args)]
pub struct Args {
    /// The RUN directory made by `omakase train`.
    #[arg(long)]
    pub model: PathBuf,
    /// The dataset directory the run was trained on (item metadata comes from its items.jsonl).
    #[arg(long)]
    pub data: PathBuf,
    /// The bundle directory to write (replaced atomically when it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Storage of the towers' weight matrices.
    #[arg(long, default_value = "q8_0", value_parser = parse_weights)]
    pub weights: WeightsDtype,
    /// Storage of the item-vector shards: int8 with a per-row scale, or f16.
    #[arg(long, default_value = "int8", value_parser = parse_shard)]
    pub shard: EmbeddingDtype,
    /// The catalogue's features file [default: the one RUN/run.json names].
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Leave out the explain shards (text-only / image-only vectors; explanations then give no split).
    #[arg(long)]
    pub no_explain: bool,
    /// Add the frozen encoders (Q8_0 GGUF) for products the bundle does not hold, from this models
    /// folder [default: $OMAKASE_MODELS, else models/]; they must be the weights the features came from.
    #[arg(long, value_name = "MODELS", num_args = 0..=1)]
    pub encoders: Option<Option<PathBuf>>,
    /// Partition the catalogue for approximate search (docs/bundle.md § Index): auto (when the main
    /// rows exceed 16 MiB, about 250k items at d 64), on or off.
    #[arg(long, default_value = "auto", value_parser = parse_index)]
    pub index: IndexChoice,
    /// Partitions of the index [default: √items rounded up to a power of two].
    #[arg(long)]
    pub partitions: Option<usize>,
    /// Partitions a reader probes by default [default: the smallest reaching recall@10 0.99 against
    /// the exact scan on the catalogue's own item queries].
    #[arg(long)]
    pub nprobe: Option<usize>,
    /// The item fields merchandising rules may use (columns.json), comma-separated [default: every
    /// field of one type: numbers, booleans, or categories of at most 256 values; docs/rules.md].
    #[arg(long, value_delimiter = ',', conflicts_with = "no_columns")]
    pub columns: Vec<String>,
    /// Write no columns.json (rules then need run-time facts for every field they use).
    #[arg(long)]
    pub no_columns: bool,
    /// Half-life in days of the trending score in popularity.json (interaction timestamps are read
    /// as seconds).
    #[arg(long, default_value_t = omakase::export::merchandising::DEFAULT_HALF_LIFE_DAYS, value_parser = parse_days)]
    pub trending_half_life: f64,
    /// Write no popularity.json (no `popular` scenario, no first-visit list).
    #[arg(long)]
    pub no_popularity: bool,
}

fn parse_days(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 => Ok(d),
        _ => Err(format!("{s:?}: expected a positive number of days")),
    }
}

fn parse_index(s: &str) -> Result<IndexChoice, String> {
    match s {
        "auto" => Ok(IndexChoice::Auto),
        "on" => Ok(IndexChoice::Always),
        "off" => Ok(IndexChoice::Never),
        _ => Err(format!("{s:?}: expected auto, on or off")),
    }
}

fn parse_weights(s: &str) -> Result<WeightsDtype, String> {
    match s {
        "q8_0" => Ok(WeightsDtype::Q8_0),
        "q4_0" => Ok(WeightsDtype::Q4_0),
        "f16" => Ok(WeightsDtype::F16),
        _ => Err(format!("{s:?}: expected q8_0, q4_0 or f16")),
    }
}

fn parse_shard(s: &str) -> Result<EmbeddingDtype, String> {
    match s {
        "int8" => Ok(EmbeddingDtype::Int8),
        "f16" => Ok(EmbeddingDtype::F16),
        _ => Err(format!("{s:?}: expected int8 or f16")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let job = ExportJob {
        features: args.features.clone(),
        weights: args.weights,
        shard: args.shard,
        explain: !args.no_explain,
        encoders: args.encoders.clone().map(|dir| dir.unwrap_or_else(default_models_dir)),
        index: args.index,
        index_options: IndexOptions { partitions: args.partitions, nprobe: args.nprobe, ..IndexOptions::default() },
        columns: if args.no_columns {
            ColumnChoice::None
        } else if args.columns.is_empty() {
            ColumnChoice::Auto
        } else {
            ColumnChoice::Named(args.columns.iter().map(|c| c.trim().to_string()).collect())
        },
        popularity_half_life_days: (!args.no_popularity).then_some(args.trending_half_life),
        ..ExportJob::new(&args.model, &args.data, &args.out)
    };
    match export(&job) {
        Ok(manifest) => {
            let dir = &args.out;
            println!("bundle {} ({} items, dim {}):", dir.display(), manifest.item_count, manifest.dim);
            let mut total = 0;
            for (field, file) in manifest.files() {
                println!("  {:<22} {:>12} bytes  {field}", file.path, file.bytes);
                total += file.bytes;
            }
            println!("  total {total} bytes (+ manifest.json)");
            let mut encoders = 0;
            for (field, file) in manifest.encoder_files() {
                println!("  {:<22} {:>12} bytes  {field} (fetched only to embed new products)", file.path, file.bytes);
                encoders += file.bytes;
            }
            if encoders > 0 {
                println!("  encoders {encoders} bytes ({:.1} MB)", encoders as f64 / 1e6);
            }
            // Read back what was written: a bundle that fails here never reaches a browser silently.
            for (field, file) in manifest.files().into_iter().chain(manifest.encoder_files()) {
                let bytes = super::recommend::read_listed(dir, file).map_err(|e| anyhow::anyhow!(e))?;
                verify_file(file, &bytes).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) if err.is_bad_input() => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(2))
        }
        Err(err @ ExportError::Io { .. }) => Err(err.into()),
        Err(err) => Err(err.into()),
    }
}
