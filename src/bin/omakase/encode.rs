//! `omakase encode --data DIR [--out FILE] [--models DIR] [--batch 32] [--image-batch 8] [--text-only]`: every item's frozen
//! text and image features into one safetensors file, re-using the rows of the previous file whose content
//! is unchanged. Exit 0 when written, 2 when the dataset is unusable.
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
    /// Texts per forward pass of the text encoder.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,
    /// Images per forward pass of the image encoder.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub image_batch: u32,
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
          conflicts_with_all = ["data", "shard", "models", "text_only", "batch", "image_batch"])]
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
    let models = args.models.clone().unwrap_or_else(default_models_dir);
    let encoders = Encoders::load(&models, !args.text_only)
        .with_context(|| format!("loading the encoders from {} (run scripts/fetch-models.sh)", models.display()))?;
    let options = EncodeOptions {
        batch_size: args.batch as usize,
        image_batch_size: args.image_batch as usize,
        ..EncodeOptions::default()
    };
    let encoded = match args.shard {
        Some(shard) => encode_shard(&data, &out, &encoders, &options, shard),
        None => encode_dir(&data, &out, &encoders, &options),
    };
    match encoded {
        Ok((_, report)) => {
            print_report(&data, &out, &report);
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

fn print_report(data: &Path, out: &Path, report: &EncodeReport) {
    let (text, image) = (&report.text, &report.image);
    println!("dataset        {}", data.display());
    println!("features       {}", out.display());
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
