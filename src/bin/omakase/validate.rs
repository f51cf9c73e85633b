//! `omakase validate --data DIR [--json]`: read a dataset directory, decode every image, and print a
//! summary and every problem. Exit 0 when the dataset is usable, 2 when a problem is fatal.

use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use omakase::data::validate::{validate_dir, Validation};
use omakase::data::{Problem, Summary};
use serde::Serialize;

use crate::display::terminal_safe;

#[derive(clap::Args)]
pub struct Args {
    /// The dataset directory (items.jsonl, interactions.csv, images/).
    #[arg(long)]
    pub data: PathBuf,
    /// Print one JSON object (the summary's fields, `problems`, `problem_counts`, `usable`).
    #[arg(long)]
    pub json: bool,
}

/// The `--json` report: the summary's fields at the top level, plus every problem.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    problems: &'a [Problem],
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let validation = validate_with_progress(&args);
    if args.json {
        let report = Report { summary: &validation.summary, problems: validation.problems() };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&args, &validation);
    }
    Ok(if validation.summary.usable { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// Runs the validation with a progress bar on stderr (indicatif hides it when stderr is not a terminal).
fn validate_with_progress(args: &Args) -> Validation {
    let bar = ProgressBar::new(0).with_message("decoding images");
    if let Ok(style) = ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({eta})") {
        bar.set_style(style);
    }
    let validation = validate_dir(&args.data, &|done, total| {
        if done == 1 {
            bar.set_length(total as u64);
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    validation
}

fn print_human(args: &Args, validation: &Validation) {
    let s = &validation.summary;
    println!("dataset        {}", terminal_safe(&args.data.display().to_string()));
    println!("users          {}", s.users);
    println!("items          {}", s.items);
    println!("interactions   {}", s.interactions);
    println!(
        "images         {} items with a usable image ({} name one)",
        s.items_with_image.unwrap_or(0),
        s.items_with_image_path
    );
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
    let problems = validation.problems();
    if problems.is_empty() {
        println!("problems       none");
    } else {
        println!("problems       {} ({} fatal, {} warnings)", problems.len(), s.fatal_problems, s.warnings);
        for problem in problems {
            // Ids, paths and messages come from the data: escaped before they reach a terminal.
            println!("{}", terminal_safe(&problem.to_string()));
        }
        println!("problem counts:");
        for (kind, count) in &s.problem_counts {
            // serde names are the stable snake_case ones used in --json and in `Display`.
            let name = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(String::from));
            let severity = format!("{:?}", kind.severity()).to_lowercase();
            println!("  {:<28} {count:>8}  ({severity})", name.unwrap_or_default());
        }
    }
    println!("usable         {}", if s.usable { "yes" } else { "no (fatal problems above)" });
}
