//! Self-supervised pretraining of the item tower on catalogues alone (ARCHITECTURE.md § Model; no behaviour
//! needed): MMSRec's four symmetric InfoNCE terms (`model::pretraining_loss`) over batches of items
//! that have both a text and an image, the batch's other items being the negatives. Items new under
//! the cold protocol are left out by the caller. Only `item_tower.*` variables are updated.
//!
//! Batches: the paired items in a seeded order per epoch, cut into `ceil(n / batch)` batches of
//! near-equal size (so no batch is left with a single item, which has no negative).

use candle_core::{DType, Tensor};
use candle_nn::VarMap;

use super::checkpoint::{Checkpoint, CheckpointState, EpochRecord, RunDir, Stage};
use super::config::Decay;
use super::error::TrainError;
use super::optim::{AdamW, AdamWSettings, Schedule};
use super::progress::{Session, Stopwatch};
use super::sequences::{derive_seed, epoch_order};
use crate::model::{DropoutRng, ItemFeatures, Mode, MultimodalRecommender};

/// Prefix of the item tower's variables in the `VarMap` (see `MultimodalRecommender`).
pub const ITEM_TOWER_PREFIX: &str = "item_tower.";

/// The stage's hyper-parameters (from `[pretrain]`, plus the run's seed).
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainSettings {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub clip: f64,
    pub seed: u64,
}

/// Runs (or resumes) pretraining on `items` — every one of them must have both modalities (see
/// `ItemFeatures::rows_with_both`). `resume` as for `trainer::train_sequences`.
#[allow(clippy::too_many_arguments)]
pub fn pretrain(
    model: &MultimodalRecommender,
    varmap: &VarMap,
    items: &ItemFeatures,
    settings: &PretrainSettings,
    run: &RunDir,
    mut state: CheckpointState,
    resume: Option<&Checkpoint>,
    session: &Session,
) -> Result<CheckpointState, TrainError> {
    let n = items.len();
    if n < 2 {
        return Err(TrainError::Stage {
            stage: "pretrain",
            reason: format!("{n} item(s) with text and image: need 2"),
        });
    }
    let mut optimizer = item_tower_optimizer(varmap, settings)?;
    if let Some(checkpoint) = resume {
        optimizer
            .restore(&checkpoint.tensors, state.step)
            .map_err(|reason| TrainError::checkpoint(run.root(), reason))?;
    }
    let batches = n.div_ceil(settings.batch);
    let schedule = Schedule { warmup: settings.warmup_steps, total: settings.epochs * batches, decay: Decay::Cosine };
    for epoch in state.epoch + 1..=settings.epochs {
        if state.stage_done {
            break;
        }
        let watch = Stopwatch::start();
        let dropout = DropoutRng::new(derive_seed(settings.seed, "pretrain.dropout", epoch));
        let order: Vec<u32> =
            epoch_order(n, settings.seed, "pretrain.shuffle", epoch).into_iter().map(|i| i as u32).collect();
        let bar = session.progress.epoch_bar(format!("pretrain {epoch}/{}", settings.epochs), batches);
        let (mut loss_sum, mut norm_sum) = (0f64, 0f64);
        for b in 0..batches {
            let rows = &order[b * n / batches..(b + 1) * n / batches];
            let batch = items.select(&Tensor::new(rows, items.device())?)?;
            let loss = model.pretraining_loss(&batch, Mode::Train(&dropout))?.total;
            let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !value.is_finite() {
                let reason = format!("epoch {epoch}: the loss became {value} (lower pretrain.lr?)");
                return Err(TrainError::Stage { stage: "pretrain", reason });
            }
            let factor = schedule.factor(optimizer.step_count());
            norm_sum += optimizer.step(&loss.backward()?, factor, settings.clip)?;
            loss_sum += value;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", loss_sum / (b + 1) as f64));
        }
        bar.finish_and_clear();
        state.epoch = epoch;
        state.step = optimizer.step_count();
        state.rng.next_epoch = epoch + 1;
        state.stage_done = epoch == settings.epochs;
        let record = EpochRecord {
            stage: Stage::Pretrain,
            epoch,
            loss: loss_sum / batches as f64,
            valid: None,
            seconds: watch.wall_seconds(),
            cpu_seconds: watch.cpu_seconds(),
            lr_factor: schedule.factor(optimizer.step_count().saturating_sub(1)),
            grad_norm: norm_sum / batches as f64,
        };
        session.progress.line(&format!(
            "pretrain {epoch:>3}  loss {:.4}  ({:.1} s, {} cpu s)",
            record.loss,
            record.seconds,
            record.cpu_seconds.map_or("?".into(), |s| format!("{s:.1}"))
        ));
        state.history.push(record);
        run.save_checkpoint(varmap, optimizer.state_tensors(), state.clone())?;
        run.write_history(&state.history)?;
        session.epoch_done()?;
    }
    state.stage_done = true;
    Ok(state)
}

fn item_tower_optimizer(varmap: &VarMap, settings: &PretrainSettings) -> Result<AdamW, TrainError> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Stage { stage: "pretrain", reason: "the VarMap lock is poisoned".into() })?;
    let groups = vars
        .iter()
        .filter(|(name, _)| name.starts_with(ITEM_TOWER_PREFIX))
        .map(|(name, var)| (name.clone(), var.clone(), settings.lr))
        .collect();
    Ok(AdamW::new(groups, AdamWSettings::with_weight_decay(settings.weight_decay))?)
}
