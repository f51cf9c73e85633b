//! `omakase convert-pth IN OUT`: a legacy (non-zip) PyTorch state dict → safetensors.
//!
//! Used by `scripts/fetch-models.sh` for EfficientNet-Lite0. Exit 2 when `IN` is missing or is not
//! a legacy state dict this converter accepts (see `omakase::weights::legacy_pth`).

use std::path::PathBuf;
use std::process::ExitCode;

use omakase::weights::legacy_pth::convert_legacy_pth;
use omakase::weights::WeightsError;

#[derive(clap::Args)]
pub struct Args {
    /// The legacy `.pth` file (a pickled state dict followed by raw storages).
    pub input: PathBuf,
    /// Where to write the safetensors file (written to a temporary name, then renamed).
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match convert_legacy_pth(&args.input, &args.output) {
        Ok(summary) => {
            println!(
                "converted {} tensors ({} elements): {} -> {}",
                summary.tensors,
                summary.elements,
                args.input.display(),
                args.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) if is_about(&err, &args.input) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(err.into()),
    }
}

/// Whether the error is about the input file (bad input) rather than writing the output.
fn is_about(err: &WeightsError, input: &std::path::Path) -> bool {
    matches!(err, WeightsError::Io { path, .. } | WeightsError::File { path, .. } if path == input)
}
