//! The RUN directory's training state (`docs/run-format.md`): the checkpoint of the last completed
//! epoch, the best weights, the per-epoch history — every file written atomically, so a run killed
//! at any instant resumes from its last completed epoch and reaches the same result.
//!
//! ```text
//! RUN/checkpoint/state.safetensors  param.<name> (every model variable), adam_m.<name>, adam_v.<name>
//! RUN/checkpoint/state.json         CheckpointState: stage, epoch, step, rng, best, patience, history
//! RUN/model.safetensors             best weights so far (by validation NDCG@10), the model's own names
//! RUN/history.jsonl                 one EpochRecord per line
//! ```
//!
//! Atomicity: a file is written to a temporary file beside `NAME` and renamed over it
//! ([`crate::fs::write_atomically`]). The checkpoint is two files, so it is written as a whole
//! directory `checkpoint.new/`, then swapped in (`checkpoint` →
//! `checkpoint.old`, `checkpoint.new` → `checkpoint`, `checkpoint.old` removed). A reader takes
//! `checkpoint/`, or — when a kill fell between the two renames — the complete `checkpoint.new/`.
//! `state.json` also holds the sha256 of `state.safetensors`, checked on load.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::TrainError;

/// Which stage a checkpoint or history record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Pretrain,
    Train,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pretrain => "pretrain",
            Stage::Train => "train",
        }
    }
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub stage: Stage,
    /// 1-based epoch within the stage.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub loss: f64,
    /// Validation figures (train stage): `ndcg@10`, `recall@10`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<BTreeMap<String, f64>>,
    /// Wall-clock seconds of the epoch (validation included).
    pub seconds: f64,
    /// CPU seconds (user + system, all threads) the process spent in the epoch, when measurable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Learning-rate factor (of the peak) at the epoch's last step.
    pub lr_factor: f64,
    /// Mean global gradient norm before clipping.
    pub grad_norm: f64,
}

/// How the run's random streams are derived: nothing to save but the seed, because every stream is
/// re-derived from (seed, purpose, epoch) at the start of each epoch (`sequences::derive_seed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: u64,
    /// The epoch (1-based) whose streams come next.
    pub next_epoch: usize,
    pub scheme: String,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub stage: Stage,
    /// Completed epochs of `stage`.
    pub epoch: usize,
    /// Optimiser steps taken in `stage`.
    pub step: usize,
    pub rng: RngState,
    /// Best validation NDCG@10 of the train stage so far, and its epoch.
    pub best_metric: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Train-stage epochs since the last improvement (early stopping's patience counter).
    pub epochs_without_improvement: usize,
    /// Whether the stage is over (all epochs run, or stopped early).
    pub stage_done: bool,
    /// Every epoch record of the run so far, in order (the source of `history.jsonl`).
    pub history: Vec<EpochRecord>,
    /// sha256 of `RUN/config.toml` when the checkpoint was written: a run resumes only under the
    /// config it started with.
    pub config_sha256: String,
    /// sha256 (hex) of `state.safetensors`.
    pub tensors_sha256: String,
}

/// A loaded checkpoint: the state and every tensor by name.
pub struct Checkpoint {
    pub state: CheckpointState,
    pub tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// The model variables saved as `param.<name>`, copied into `varmap`'s variables; every
    /// variable must be there with its shape.
    pub fn restore_params(&self, varmap: &VarMap, path: &Path) -> Result<(), TrainError> {
        let vars = varmap.data().lock().map_err(|_| TrainError::checkpoint(path, "poisoned VarMap lock"))?;
        for (name, var) in vars.iter() {
            let saved = self
                .tensors
                .get(&format!("param.{name}"))
                .ok_or_else(|| TrainError::checkpoint(path, format!("parameter `{name}` is missing")))?;
            if saved.shape() != var.shape() {
                return Err(TrainError::checkpoint(
                    path,
                    format!("parameter `{name}` has shape {:?}, the model {:?}", saved.dims(), var.dims()),
                ));
            }
            var.set(&saved.to_device(var.device())?)?;
        }
        Ok(())
    }
}

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_NEW: &str = "checkpoint.new";
const CHECKPOINT_OLD: &str = "checkpoint.old";
const STATE_TENSORS: &str = "state.safetensors";
const STATE_JSON: &str = "state.json";

/// The files of one RUN directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates the directory when needed.
    pub fn create(root: &Path) -> Result<Self, TrainError> {
        fs::create_dir_all(root).map_err(|e| TrainError::io(root, e))?;
        Ok(RunDir { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("config.toml")
    }

    pub fn model_path(&self) -> PathBuf {
        self.path("model.safetensors")
    }

    /// Writes `bytes` to `name` atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        write_atomic(&self.path(name), bytes)
    }

    /// The model's weights as `model.safetensors` (atomic; the bytes `candle_core::safetensors::save`
    /// writes).
    pub fn save_model(&self, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
        let bytes = safetensors::serialize(tensors, None).map_err(candle_core::Error::from)?;
        write_atomic(&self.model_path(), &bytes)
    }

    /// `history.jsonl` rewritten from the records (atomic).
    pub fn write_history(&self, history: &[EpochRecord]) -> Result<(), TrainError> {
        let mut text = String::new();
        for record in history {
            text += &serde_json::to_string(record).map_err(|e| TrainError::run(&self.root, e.to_string()))?;
            text.push('\n');
        }
        self.write("history.jsonl", text.as_bytes())
    }

    /// Wall and CPU seconds of the epochs `history.jsonl` records (CPU: `None` when an epoch could
    /// not measure it); (0, None) without the file. Lines that do not parse are not counted.
    pub fn history_seconds(&self) -> (f64, Option<f64>) {
        let text = std::fs::read_to_string(self.path("history.jsonl")).unwrap_or_default();
        let records: Vec<EpochRecord> = text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
        let wall = records.iter().map(|r| r.seconds).sum();
        let cpu = match records.is_empty() {
            true => None,
            false => records.iter().map(|r| r.cpu_seconds).sum(),
        };
        (wall, cpu)
    }

    /// Saves the checkpoint: `varmap`'s variables as `param.<name>` plus `extra` (optimiser
    /// moments), and `state` (its `tensors_sha256` filled in here).
    pub fn save_checkpoint(
        &self,
        varmap: &VarMap,
        extra: Vec<(String, Tensor)>,
        mut state: CheckpointState,
    ) -> Result<(), TrainError> {
        let mut tensors = named_vars(varmap, "param.")?;
        tensors.extend(extra);
        let staging = self.path(CHECKPOINT_NEW);
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
        }
        fs::create_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
        let tensors_path = staging.join(STATE_TENSORS);
        candle_core::safetensors::save(&tensors, &tensors_path)?;
        state.tensors_sha256 = sha256_file(&tensors_path)?;
        let json = serde_json::to_vec_pretty(&state).map_err(|e| TrainError::checkpoint(&staging, e.to_string()))?;
        write_atomic(&staging.join(STATE_JSON), &json)?;
        sync_dir(&staging);

        let (current, old) = (self.path(CHECKPOINT), self.path(CHECKPOINT_OLD));
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        if current.exists() {
            fs::rename(&current, &old).map_err(|e| TrainError::io(&current, e))?;
        }
        fs::rename(&staging, &current).map_err(|e| TrainError::io(&staging, e))?;
        sync_dir(&self.root);
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        Ok(())
    }

    /// The last complete checkpoint, if any (see the module docs for which directory is read).
    pub fn load_checkpoint(&self) -> Result<Option<Checkpoint>, TrainError> {
        let current = self.path(CHECKPOINT);
        let dir = if current.join(STATE_JSON).is_file() {
            current
        } else if self.path(CHECKPOINT_NEW).join(STATE_JSON).is_file() && !current.exists() {
            self.path(CHECKPOINT_NEW)
        } else {
            return Ok(None);
        };
        let json_path = dir.join(STATE_JSON);
        let json = crate::fs::read_bounded(&json_path, crate::fs::MAX_DOCUMENT_BYTES).map_err(TrainError::read)?;
        let state: CheckpointState =
            serde_json::from_slice(&json).map_err(|e| TrainError::checkpoint(&json_path, e.to_string()))?;
        let tensors_path = dir.join(STATE_TENSORS);
        let sha = sha256_file(&tensors_path)?;
        if sha != state.tensors_sha256 {
            return Err(TrainError::checkpoint(
                &tensors_path,
                format!("sha256 {sha} differs from the {} recorded in {STATE_JSON}", state.tensors_sha256),
            ));
        }
        let tensors = candle_core::safetensors::load(&tensors_path, &Device::Cpu)?;
        Ok(Some(Checkpoint { state, tensors }))
    }
}

/// Every variable of `varmap` as (prefix + name, tensor), detached copies.
pub fn named_vars(varmap: &VarMap, prefix: &str) -> Result<HashMap<String, Tensor>, TrainError> {
    let vars = varmap.data().lock().map_err(|_| TrainError::Stage { stage: "save", reason: "poisoned lock".into() })?;
    Ok(vars.iter().map(|(name, var)| (format!("{prefix}{name}"), var.as_tensor().detach())).collect())
}

/// [`crate::fs::write_atomically`], its failure as a [`TrainError::Io`] naming the temporary file
/// (write) or `path` (rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    crate::fs::write_atomically(path, bytes).map_err(|err| {
        let (path, source) = err.into_parts();
        TrainError::Io { path, source }
    })
}

/// Best effort: persist a directory's entries (renames) where the platform allows opening it.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// The file's sha256, streamed (a features file can be gigabytes), regular files only.
pub fn sha256_file(path: &Path) -> Result<String, TrainError> {
    crate::fs::sha256_file(path).map_err(TrainError::read)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::Init;

    fn state() -> CheckpointState {
        CheckpointState {
            stage: Stage::Train,
            epoch: 2,
            step: 10,
            rng: RngState { seed: 1, next_epoch: 3, scheme: "test".into() },
            best_metric: Some(0.5),
            best_epoch: Some(1),
            epochs_without_improvement: 1,
            stage_done: false,
            history: vec![],
            config_sha256: "c".into(),
            tensors_sha256: String::new(),
        }
    }

    #[test]
    fn checkpoints_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path()).unwrap();
        assert!(run.load_checkpoint().unwrap().is_none());
        let varmap = VarMap::new();
        let w = varmap.get((2, 3), "w", Init::Const(1.5), DType::F32, &Device::Cpu).unwrap();
        let moment = Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap();
        run.save_checkpoint(&varmap, vec![("adam_m.w".into(), moment)], state()).unwrap();
        // A second save swaps the directory in place.
        run.save_checkpoint(&varmap, vec![], state()).unwrap();
        run.save_checkpoint(&varmap, vec![("adam_m.w".into(), w.clone())], state()).unwrap();
        let loaded = run.load_checkpoint().unwrap().unwrap();
        assert_eq!(loaded.state.step, 10);
        assert!(loaded.tensors.contains_key("param.w") && loaded.tensors.contains_key("adam_m.w"));

        // Restoring into a fresh VarMap of the same shapes gives the saved values.
        let fresh = VarMap::new();
        fresh.get((2, 3), "w", Init::Const(0.0), DType::F32, &Device::Cpu).unwrap();
        loaded.restore_params(&fresh, dir.path()).unwrap();
        assert_eq!(fresh.all_vars()[0].as_tensor().to_vec2::<f32>().unwrap(), vec![vec![1.5f32; 3]; 2]);

        // A kill between the two renames leaves only checkpoint.new: it is used.
        fs::rename(run.path(CHECKPOINT), run.path(CHECKPOINT_NEW)).unwrap();
        assert!(run.load_checkpoint().unwrap().is_some());
        fs::rename(run.path(CHECKPOINT_NEW), run.path(CHECKPOINT)).unwrap();

        let tensors = run.path(CHECKPOINT).join(STATE_TENSORS);
        let mut bytes = fs::read(&tensors).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&tensors, bytes).unwrap();
        let err = run.load_checkpoint().err().unwrap().to_string();
        assert!(err.contains("sha256"), "{err}");
    }
}
