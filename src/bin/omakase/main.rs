//! The `omakase` command line (README.md § The command line). Exit codes: 0 ok, 2 bad input, 1 anything else.
//!
//! One file per subcommand: it defines `Args` (clap) and `run(args) -> anyhow::Result<ExitCode>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod convert;
mod delta;
mod demo;
mod display;
mod embed;
mod encode;
mod eval;
mod export;
mod import;
mod quantize;
mod recommend;
mod report;
mod sweep;
mod train;
mod validate;

#[derive(Parser)]
#[command(name = "omakase", version, about = "Multimodal sequential recommender: train natively, serve in the browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a legacy (non-zip) PyTorch .pth state dict to safetensors.
    ConvertPth(convert::Args),
    /// Append new products to a published bundle as a small delta shard (docs/bundle.md § Deltas).
    Delta(delta::Args),
    /// Serve the demo shop (www/demo/) on 127.0.0.1: trains a quick run and exports a bundle when needed.
    Demo(demo::Args),
    /// Embed a product the bundle does not hold (title, description, image) into the bundle's item space.
    Embed(embed::Args),
    /// Encode every item's text and image with the frozen encoders into a cached features file.
    Encode(encode::Args),
    /// Evaluate a trained RUN on a dataset (warm, cold or transfer protocol), with baselines; writes RUN/report.html.
    Eval(eval::Args),
    /// Write a trained RUN as a bundle for the browser (towers GGUF, item shards, metadata, manifest).
    Export(export::Args),
    /// Convert RecBole atomic files or Amazon Reviews 2023 JSONL into a dataset directory.
    Import(import::Args),
    /// Write both encoders as GGUF (Q8_0, Q4_0 or F16 weight matrices) for the browser.
    Quantize(quantize::Args),
    /// Recommend from a bundle for a session of item ids (the browser's runtime, natively).
    Recommend(recommend::Args),
    /// Rebuild RUN/report.html (data-quality analysis recomputed; accuracy from RUN/eval-*.json).
    Report(report::Args),
    /// Train settings × seeds, evaluate each on the test split, compare each with the default (paired intervals).
    Sweep(sweep::Args),
    /// Encode, pretrain and train a model into a resumable RUN directory.
    Train(train::Args),
    /// Check a dataset directory: summary, every problem with file:line; exit 2 when unusable.
    Validate(validate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::ConvertPth(args) => convert::run(args),
        Command::Delta(args) => delta::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Recommend(args) => recommend::run(args),
        Command::Report(args) => report::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Train(args) => train::run(args),
        Command::Validate(args) => validate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", display::terminal_safe(&said_once(&err)));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each text said once. Many of our error types print their
/// source inside their own message (`cannot read F: {source}`) and also expose it as `source()`, so
/// anyhow's `{:#}` would repeat the same cause once per level; a cause whose text the line already
/// holds adds nothing.
fn said_once(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::said_once;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct ReadError {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_embedded_in_its_parent_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let err = anyhow::Error::new(ReadError { path: "models/x.safetensors".into(), source: io })
            .context("training into out/run");
        assert_eq!(
            said_once(&err),
            "training into out/run: cannot read models/x.safetensors: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn distinct_causes_are_all_said() {
        let err = anyhow::anyhow!("disk full").context("writing bundle").context("exporting");
        assert_eq!(said_once(&err), "exporting: writing bundle: disk full");
    }
}
