//! `omakase import --format recbole|amazon ... --out DIR`: convert another format into a dataset
//! directory (README.md § Dataset format). Prints a summary and every problem; writes nothing and exits 2 when a
//! problem is fatal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use omakase::data::amazon::import_amazon;
use omakase::data::recbole::import_recbole;
use omakase::data::write::write_dataset;
use omakase::data::{Loaded, Summary};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// RecBole atomic files: `--inter F.inter --item F.item`.
    Recbole,
    /// Amazon Reviews 2023 JSONL: `--reviews Category.jsonl --meta meta_Category.jsonl`.
    Amazon,
}

#[derive(clap::Args)]
pub struct Args {
    /// The source format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// RecBole interactions (`.inter`, typed tab-separated header).
    #[arg(long, required_if_eq("format", "recbole"))]
    pub inter: Option<PathBuf>,
    /// RecBole catalogue (`.item`).
    #[arg(long, required_if_eq("format", "recbole"))]
    pub item: Option<PathBuf>,
    /// Amazon Reviews 2023 review file (JSONL).
    #[arg(long, required_if_eq("format", "amazon"))]
    pub reviews: Option<PathBuf>,
    /// Amazon Reviews 2023 `meta_` file (JSONL).
    #[arg(long, required_if_eq("format", "amazon"))]
    pub meta: Option<PathBuf>,
    /// The dataset directory to write (created if missing; items.jsonl and interactions.csv replaced).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = match args.format {
        Format::Recbole => import_recbole(required(&args.inter, "--inter")?, required(&args.item, "--item")?),
        Format::Amazon => import_amazon(required(&args.reviews, "--reviews")?, required(&args.meta, "--meta")?),
    };
    let summary = Summary::new(&loaded.dataset, &loaded.problems, None);
    print_report(&loaded, &summary);
    if !summary.usable {
        println!("nothing written: fix the fatal problems above");
        return Ok(ExitCode::from(2));
    }
    write_dataset(&loaded.dataset, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote          {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// clap enforces these per format; this only turns a gap into an error rather than a panic.
fn required<'a>(path: &'a Option<PathBuf>, flag: &str) -> anyhow::Result<&'a Path> {
    path.as_deref().with_context(|| format!("{flag} is required for this format"))
}

fn print_report(loaded: &Loaded, s: &Summary) {
    println!("users          {}", s.users);
    println!("items          {}", s.items);
    println!("interactions   {}", s.interactions);
    println!("text           {} items with a title or description", s.items_with_text);
    if let Some(per_user) = &s.interactions_per_user {
        println!("per user       min {} / median {} / max {}", per_user.min, per_user.median, per_user.max);
    }
    if let Some(span) = &s.time_span {
        match (&span.first_date, &span.last_date) {
            (Some(first), Some(last)) => println!("time span      {first} to {last} (UTC)"),
            _ => println!("time span      {} to {}", span.first, span.last),
        }
    }
    if loaded.problems.is_empty() {
        println!("problems       none");
        return;
    }
    println!("problems       {} ({} fatal, {} warnings)", loaded.problems.len(), s.fatal_problems, s.warnings);
    for problem in &loaded.problems {
        println!("{problem}");
    }
}
