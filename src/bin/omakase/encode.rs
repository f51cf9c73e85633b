//! `omakase encode --data DIR [--out FILE] [--models DIR] [--batch N] [--image-batch N] [--text-only]
//! [--device cpu|cuda|cuda:N|auto]`: every item's frozen text and image features into one safetensors
//! file, re-using the rows of the previous file whose content is unchanged. Exit 0 when written, 2 when
//! the dataset is unusable or the device cannot be had.
//!
//! `--device cpu` (the default) runs our CPU kernels; a GPU runs the encoders' candle path
//! (`TextEncoder::on_device`, `ImageEncoder::on_device`). The hidden `--candle` runs that path on the
//! CPU, for parity checks and `scripts/bench-encode-gpu.sh` on a machine without a GPU.
//!
//! For many workers (docs/encoding.md): `--shard I/N` encodes slice I of N into a shard file, and
//! `omakase encode --merge SHARD... --out FILE` ([`merge`]) combines the N shard files into the file one
//! process would have written.

mod merge;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use omakase::encoders::features::{check_replaceable, FeaturesError};
use omakase::encoders::pipeline::{
    default_models_dir, encode_dir, encode_shard, EncodeOptions, EncodeReport, Encoders,
};
use omakase::encoders::shard::Shard;
use omakase::train::device::{self, DeviceChoice};

/// Problems printed in full; the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = 20;

#[derive(clap::Args)]
pub struct Args {
    /// The dataset directory (items.jsonl, interactions.csv, images/).
    #[arg(long, required_unless_present = "merge")]
    pub data: Option<PathBuf>,
    /// The features file [default: out/<dataset folder name>/features.safetensors, or
    /// features.shard-I-of-N.safetensors with --shard]. An existing file there is the cache: its rows are
    /// reused where the content hash matches.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder of pretrained weights made by scripts/fetch-models.sh [default: $OMAKASE_MODELS, else models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Texts per forward pass of the text encoder [default: 32 on the CPU, 256 on a GPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: Option<u32>,
    /// Images per forward pass of the image encoder [default: 8 on the CPU, 64 on a GPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub image_batch: Option<u32>,
    /// Where to encode: `cpu` (default: the CPU kernels), `cuda` / `cuda:N` (an NVIDIA GPU through
    /// candle's CUDA backend; needs a binary built by scripts/build-cuda.sh), or `auto` (the GPU when
    /// one opens, else the CPU, saying why). The features agree within the goldens' tolerances.
    #[arg(long, default_value = "cpu", value_parser = DeviceChoice::parse)]
    pub device: DeviceChoice,
    /// Run the GPU's code path (candle's ops) even on the CPU: for parity checks and benchmarks on a
    /// machine without a GPU; slower than the CPU kernels.
    #[arg(long, hide = true)]
    pub candle: bool,
    /// Encode only the text (every item's image is marked missing; the image model is not loaded).
    #[arg(long)]
    pub text_only: bool,
    /// Encode only slice I of N (0-based I < N): the items at catalogue positions i with i mod N = I,
    /// into a shard file that records the catalogue, the encoders and I/N. One worker per slice; then
    /// --merge.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Combine the shard files of all N slices (any order, e.g. a shell glob) into the features file
    /// --out: the bytes one `encode` of the whole catalogue writes. Checks that every slice is there
    /// once and that all are of one catalogue, N and set of encoders.
    #[arg(long, value_name = "SHARD", num_args = 1.., requires = "out",
          conflicts_with_all = ["data", "shard", "models", "text_only", "batch", "image_batch", "device", "candle"])]
    pub merge: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // clap requires --data unless --merge, and --out with --merge.
    let Some(data) = args.data.clone() else {
        return match &args.out {
            Some(out) => merge::run(&args.merge, out),
            None => Ok(ExitCode::from(2)),
        };
    };
    let out = args.out.clone().unwrap_or_else(|| default_out(&data, args.shard));
    // Before the encoders load: an unrelated file at --out is never overwritten (issue 14).
    if let Err(err) = check_replaceable(&out) {
        eprintln!("error: {err}");
        return Ok(ExitCode::from(2));
    }
    // Before the encoders load too: a device that cannot be had is a named error, not a late failure.
    let opened = match device::open_for(args.device, "encode") {
        Ok(opened) => opened,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(note) = &opened.note {
        eprintln!("{note}");
    }
    let models = args.models.clone().unwrap_or_else(default_models_dir);
    let encoders = Encoders::load(&models, !args.text_only)
        .with_context(|| format!("loading the encoders from {} (run scripts/fetch-models.sh)", models.display()))?;
    let on_gpu = !opened.device.is_cpu();
    let (encoders, path) = if on_gpu || args.candle {
        let encoders =
            encoders.on_device(&opened.device).with_context(|| format!("copying the encoders to {}", opened.name))?;
        (encoders, format!("{} (candle)", opened.name))
    } else {
        (encoders, "cpu (CPU kernels)".to_string())
    };
    // The CPU's defaults are EncodeOptions' (its fields say why). A GPU wants larger batches: fewer
    // launches per item; 256 and 64 fit in a few GB and were not tuned (docs/encoding.md).
    let defaults = EncodeOptions::default();
    let (batch, image_batch) = if on_gpu { (256, 64) } else { (defaults.batch_size, defaults.image_batch_size) };
    let options = EncodeOptions {
        batch_size: args.batch.map_or(batch, |b| b as usize),
        image_batch_size: args.image_batch.map_or(image_batch, |b| b as usize),
        ..EncodeOptions::default()
    };
    let encoded = match args.shard {
        Some(shard) => encode_shard(&data, &out, &encoders, &options, shard),
        None => encode_dir(&data, &out, &encoders, &options),
    };
    match encoded {
        Ok((_, report)) => {
            print_report(&data, &out, &path, &report);
            Ok(ExitCode::SUCCESS)
        }
        Err(FeaturesError::UnusableDataset { dir, problems }) => {
            eprintln!("dataset {dir} is not usable:");
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!("(`omakase validate --data {dir}` lists every problem)");
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(err.into()),
    }
}

/// `out/<name of the dataset folder>/features.safetensors` (`features.shard-I-of-N.safetensors` for a
/// slice), so the default does not depend on how the dataset path was written (`.`, a trailing slash...).
fn default_out(data: &Path, shard: Option<Shard>) -> PathBuf {
    let name = data
        .canonicalize()
        .ok()
        .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "dataset".into());
    let file = match shard {
        Some(shard) => format!("features.shard-{}-of-{}.safetensors", shard.index(), shard.count()),
        None => "features.safetensors".into(),
    };
    Path::new("out").join(name).join(file)
}

fn print_report(data: &Path, out: &Path, device: &str, report: &EncodeReport) {
    let (text, image) = (&report.text, &report.image);
    println!("dataset        {}", data.display());
    println!("features       {}", out.display());
    println!("device         {device}");
    println!("items          {}", report.items);
    if let Some(shard) = report.shard {
        println!(
            "shard          {shard}: items at positions i with i mod {} = {}, of {} in the catalogue",
            shard.count(),
            shard.index(),
            report.catalogue_items
        );
    }
    println!(
        "text           {} items with text: {} encoded, {} reused from cache ({:.1} s, {:.1} items/s)",
        text.present,
        text.encoded,
        text.reused,
        text.seconds,
        text.items_per_second()
    );
    println!(
        "image          {} items with a usable image: {} encoded, {} reused from cache ({:.1} s, {:.1} items/s; \
         checking images {:.1} s)",
        image.present,
        image.encoded,
        image.reused,
        image.seconds,
        image.items_per_second(),
        report.image_check_seconds
    );
    let per_second = if report.seconds > 0.0 { report.items as f64 / report.seconds } else { 0.0 };
    println!("time           {:.1} s ({per_second:.1} items/s overall)", report.seconds);
    if !report.image_problems.is_empty() {
        println!("unusable images {} (their items are kept, image marked missing):", report.image_problems.len());
        for problem in report.image_problems.iter().take(MAX_PROBLEMS_SHOWN) {
            println!("  {problem}");
        }
        if report.image_problems.len() > MAX_PROBLEMS_SHOWN {
            println!(
                "  ... {} more (omakase validate lists them all)",
                report.image_problems.len() - MAX_PROBLEMS_SHOWN
            );
        }
    }
    for warning in &report.warnings {
        println!("warning        {warning}");
    }
}
