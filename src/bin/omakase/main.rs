//! The `omakase` command line (DESIGN.md §8). Exit codes: 0 ok, 2 bad input, 1 anything else.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "omakase", version, about = "Multimodal sequential recommender: train natively, serve in the browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
