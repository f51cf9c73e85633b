//! Training (ARCHITECTURE.md § Data path, § Model): frozen features → pretrained item tower → trained
//! sequence tower, in a resumable RUN directory (`docs/run-format.md`). Native only: it writes files and
//! shows progress.
//!
//! - [`config`]: the TOML config, every default documented;
//! - [`device`]: CPU or CUDA (`--device`), opened once per job;
//! - [`sequences`]: training windows, seeded epoch order, the cold protocol's training catalogue;
//! - [`optim`]: AdamW with saved moments, warm-up + decay, gradient clipping;
//! - [`pretrain`]: the item tower's self-supervised stage;
//! - [`standardize`]: projections trained on z-scored features, folded back for raw ones;
//! - [`trainer`]: the sequence stage, generic over `SequentialRecommender` (ours and ID-SASRec);
//! - [`checkpoint`]: atomic checkpoints, best weights, history;
//! - [`run`]: the whole job (`omakase train`) and loading a finished run.
//! - [`sweep`]: settings × seeds trained and compared with the default on the test split (`omakase sweep`).
//!
//! Reproducibility: same seed, data and config ⇒ the same weights and metrics, and a run killed
//! at any point resumes from its last completed epoch to the same result — every random stream is
//! derived from (seed, stage, epoch), and the checkpoint holds parameters, optimiser moments and
//! step, best metric, patience counter and history.

// `TrainError` carries the dataset/features error it wraps by value (~130 bytes): it is returned once
// per command, on a path where its size costs nothing, and boxing it would only obscure `?`.
#![allow(clippy::result_large_err)]

pub mod checkpoint;
pub mod config;
pub mod device;
mod error;
pub mod optim;
pub mod pretrain;
pub mod progress;
pub mod run;
pub mod sequences;
pub mod standardize;
pub mod sweep;
pub mod trainer;

pub use config::TrainConfig;
pub use device::DeviceChoice;
pub use error::TrainError;
pub use progress::{Progress, Session};
pub use run::{train, Baseline, ModelKind, RunInfo, TrainJob, TrainSummary, TrainedModel};
