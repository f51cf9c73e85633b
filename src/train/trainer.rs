//! The sequence-training stage (ARCHITECTURE.md § Model), generic over [`SequentialRecommender`] so the very
//! same loop trains our model and the ID-SASRec baseline:
//!
//! ```text
//! per epoch e: windows in a seeded order (sequences.rs) ─batches─► item vectors (frozen: computed once;
//!   fine-tuned: item tower in training mode, every step) ─► sequence tower ─► logits of every trained
//!   position over the whole training catalogue / temperature ─► cross-entropy ─► AdamW (warm-up,
//!   clipping; the item tower at its own learning rate)
//! ─► validation NDCG@10 (eval::evaluate on split.validation) ─► best weights → RUN/model.safetensors
//! ─► checkpoint (params, moments, step, patience, history) ─► stop after `patience` epochs without gain
//! ```

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Tensor};
use candle_nn::VarMap;

use super::checkpoint::{Checkpoint, CheckpointState, EpochRecord, RunDir, Stage};
use super::config::{Decay, ItemTowerTraining};
use super::error::TrainError;
use super::optim::{AdamW, AdamWSettings, Schedule};
use super::progress::{Session, Stopwatch};
use super::sequences::{derive_seed, epoch_order, Window, WindowBatch};
use crate::data::split::TestCase;
use crate::eval::{evaluate, EvalError, Metrics, Scorer};
use crate::model::{DropoutRng, Histories, Mode, SequentialRecommender};

/// The stage's hyper-parameters (from `[train]` and `[model]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceSettings {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub item_tower: ItemTowerTraining,
    pub item_tower_lr: f64,
    /// Peak learning rate of the ID residuals (`model::ItemResiduals`), when the model has them.
    pub id_residual_lr: f64,
    pub warmup_steps: usize,
    pub decay: Decay,
    pub clip: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub seed: u64,
    pub max_len: usize,
    pub eval_batch: usize,
    /// Wall-clock budget of the stage in this process, seconds (0: none).
    pub max_seconds: f64,
}

/// A model ready to train: the model, what its item vectors are computed from, the `VarMap` holding
/// its variables, which of them form the item tower (`None`: the model has none, e.g. the ID
/// baseline, whose embedding table learns at the main rate), and how its weights are saved.
pub struct Trainable<'a, M: SequentialRecommender> {
    pub model: &'a M,
    pub catalogue: &'a M::Catalogue,
    pub varmap: &'a VarMap,
    pub item_tower_prefix: Option<&'static str>,
    /// The tensors `model.safetensors` gets (the variables, possibly re-expressed: see
    /// `standardize`).
    pub saved_weights: &'a dyn Fn() -> Result<HashMap<String, Tensor>, TrainError>,
}

/// What the stage trains and validates on, in the compact indexing of the training catalogue.
#[derive(Debug, Clone)]
pub struct SequenceData {
    pub windows: Vec<Window>,
    pub validation: Vec<TestCase>,
    /// Compact index → row of the model's item vectors; `None` = every row, in order.
    pub rows: Option<Vec<u32>>,
    /// Items of the training catalogue (compact).
    pub n_items: usize,
}

impl<M: SequentialRecommender> Trainable<'_, M> {
    /// The training catalogue's item vectors `[n_items, d]` (the model's rows picked by `rows`).
    fn item_vectors(&self, rows: &Option<Tensor>, mode: Mode) -> Result<Tensor, TrainError> {
        let all = self.model.item_vectors(self.catalogue, mode)?;
        Ok(match rows {
            Some(rows) => all.index_select(rows, 0)?,
            None => all,
        })
    }

    /// The optimiser over every variable the stage updates.
    fn optimizer(&self, settings: &SequenceSettings) -> Result<AdamW, TrainError> {
        let vars = self.varmap.data().lock().map_err(|_| stage_error("the VarMap lock is poisoned"))?;
        let mut groups = Vec::new();
        for (name, var) in vars.iter() {
            let in_item_tower = self.item_tower_prefix.is_some_and(|prefix| name.starts_with(prefix));
            match (in_item_tower, settings.item_tower) {
                (true, ItemTowerTraining::Frozen) => {}
                (true, ItemTowerTraining::Finetune) => groups.push((name.clone(), var.clone(), settings.item_tower_lr)),
                (false, _) if name == crate::model::ITEM_RESIDUALS => {
                    groups.push((name.clone(), var.clone(), settings.id_residual_lr))
                }
                (false, _) => groups.push((name.clone(), var.clone(), settings.lr)),
            }
        }
        Ok(AdamW::new(groups, AdamWSettings::with_weight_decay(settings.weight_decay))?)
    }

    fn frozen(&self, settings: &SequenceSettings) -> bool {
        self.item_tower_prefix.is_some() && settings.item_tower == ItemTowerTraining::Frozen
    }
}

fn stage_error(reason: impl Into<String>) -> TrainError {
    TrainError::Stage { stage: "train", reason: reason.into() }
}

/// Runs (or resumes) the stage. `state` is the run's state so far (history of earlier stages);
/// `resume` is the checkpoint when it belongs to this stage (its params already restored into the
/// `VarMap` by the caller; here its optimiser moments are). Returns the state after the stage.
pub fn train_sequences<M: SequentialRecommender>(
    trainable: &Trainable<M>,
    data: &SequenceData,
    settings: &SequenceSettings,
    run: &RunDir,
    mut state: CheckpointState,
    resume: Option<&Checkpoint>,
    session: &Session,
) -> Result<CheckpointState, TrainError> {
    if data.windows.is_empty() {
        return Err(stage_error("no training sequence has 2 items: nothing to learn from"));
    }
    if data.validation.is_empty() {
        return Err(stage_error(
            "no validation case (users need ≥ 4 interactions): early stopping has nothing to measure",
        ));
    }
    let device = session.device.clone();
    let rows = data.rows.as_ref().map(|rows| Tensor::new(rows.as_slice(), &device)).transpose()?;
    let mut optimizer = trainable.optimizer(settings)?;
    if let Some(checkpoint) = resume {
        optimizer
            .restore(&checkpoint.tensors, state.step)
            .map_err(|reason| TrainError::checkpoint(run.root(), reason))?;
    }
    let steps_per_epoch = data.windows.len().div_ceil(settings.batch);
    let schedule =
        Schedule { warmup: settings.warmup_steps, total: settings.epochs * steps_per_epoch, decay: settings.decay };
    // Frozen: the item tower's output never changes, so it is computed once, without dropout.
    let frozen_items =
        if trainable.frozen(settings) { Some(trainable.item_vectors(&rows, Mode::Eval)?.detach()) } else { None };

    let stage_clock = Stopwatch::start();
    for epoch in state.epoch + 1..=settings.epochs {
        if state.stage_done {
            break;
        }
        let watch = Stopwatch::start();
        let dropout = DropoutRng::new(derive_seed(settings.seed, "train.dropout", epoch));
        let order = epoch_order(data.windows.len(), settings.seed, "train.shuffle", epoch);
        let bar = session.progress.epoch_bar(format!("train {epoch}/{}", settings.epochs), steps_per_epoch);
        let (mut loss_sum, mut norm_sum, mut batches) = (0f64, 0f64, 0usize);
        for chunk in order.chunks(settings.batch) {
            let windows: Vec<&Window> = chunk.iter().map(|&i| &data.windows[i]).collect();
            let batch = WindowBatch::new(&windows, settings.max_len, data.n_items, &device)?;
            let items = match &frozen_items {
                Some(items) => items.clone(),
                None => trainable.item_vectors(&rows, Mode::Train(&dropout))?,
            };
            let loss = batch_loss(trainable.model, &items, &batch, Mode::Train(&dropout))?;
            let loss_value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !loss_value.is_finite() {
                return Err(stage_error(format!("epoch {epoch}: the loss became {loss_value} (lower train.lr?)")));
            }
            let grads = loss.backward()?;
            let factor = schedule.factor(optimizer.step_count());
            norm_sum += optimizer.step(&grads, factor, settings.clip)?;
            loss_sum += loss_value;
            batches += 1;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", loss_sum / batches as f64));
        }
        bar.finish_and_clear();

        let items = match &frozen_items {
            Some(items) => items.clone(),
            None => trainable.item_vectors(&rows, Mode::Eval)?.detach(),
        };
        let valid = validate(trainable.model, &items, data, settings)?;
        let improved = state.best_metric.is_none_or(|best| valid.ndcg_at_10 > best);
        if improved {
            state.best_metric = Some(valid.ndcg_at_10);
            state.best_epoch = Some(epoch);
            state.epochs_without_improvement = 0;
            run.save_model(&(trainable.saved_weights)()?)?;
        } else {
            state.epochs_without_improvement += 1;
        }
        state.epoch = epoch;
        state.step = optimizer.step_count();
        state.rng.next_epoch = epoch + 1;
        // Would another epoch as long as this one end past the budget? Then stop now, so the stage
        // stays within it rather than overshooting by an epoch.
        let over_budget =
            settings.max_seconds > 0.0 && stage_clock.wall_seconds() + watch.wall_seconds() > settings.max_seconds;
        state.stage_done =
            epoch == settings.epochs || state.epochs_without_improvement >= settings.patience || over_budget;
        let record = EpochRecord {
            stage: Stage::Train,
            epoch,
            loss: loss_sum / batches.max(1) as f64,
            valid: Some(
                valid.named().iter().map(|(name, value)| (name.to_string(), *value)).collect::<BTreeMap<_, _>>(),
            ),
            seconds: watch.wall_seconds(),
            cpu_seconds: watch.cpu_seconds(),
            lr_factor: schedule.factor(optimizer.step_count().saturating_sub(1)),
            grad_norm: norm_sum / batches.max(1) as f64,
        };
        session.progress.line(&format!(
            "train {epoch:>3}  loss {:.4}  valid NDCG@10 {:.4}  R@10 {:.4}{}  ({:.1} s, {} cpu s)",
            record.loss,
            valid.ndcg_at_10,
            valid.recall_at_10,
            if improved { "  *best" } else { "" },
            record.seconds,
            record.cpu_seconds.map_or("?".into(), |s| format!("{s:.1}")),
        ));
        if over_budget && epoch < settings.epochs {
            session.progress.line(&format!(
                "train: another epoch would end past the time budget of {:.0} s (train.max_seconds): stopping after epoch {epoch}, the best epoch is kept",
                settings.max_seconds
            ));
        }
        state.history.push(record);
        run.save_checkpoint(trainable.varmap, optimizer.state_tensors(), state.clone())?;
        run.write_history(&state.history)?;
        session.epoch_done()?;
    }
    state.stage_done = true;
    Ok(state)
}

/// Mean next-item cross-entropy over the batch's trained positions, full softmax over `items`
/// (`[n_items, d]`, the training catalogue) with the model's own scoring (cosine / temperature for
/// ours, dot product for ID-SASRec).
pub fn batch_loss<M: SequentialRecommender>(
    model: &M,
    items: &Tensor,
    batch: &WindowBatch,
    mode: Mode,
) -> Result<Tensor, TrainError> {
    let states = model.sequence_states(items, &batch.inputs, mode)?;
    let (b, t, d) = states.dims3()?;
    let queries = states.reshape((b * t, d))?.index_select(&batch.positions, 0)?;
    let logits = model.scoring().scores(&queries, items)?;
    let loss = candle_nn::loss::cross_entropy(&logits, &batch.targets)?;
    Ok(match model.regularizer()? {
        Some(penalty) => (loss + penalty)?,
        None => loss,
    })
}

/// Validation figures of the model with these item vectors (compact catalogue).
fn validate<M: SequentialRecommender>(
    model: &M,
    items: &Tensor,
    data: &SequenceData,
    settings: &SequenceSettings,
) -> Result<Metrics, TrainError> {
    let scorer = VectorScorer { name: "validation".into(), model, items: items.clone(), max_len: settings.max_len };
    Ok(evaluate(&scorer, &data.validation, data.n_items, settings.eval_batch)?.metrics())
}

/// A [`SequentialRecommender`] scoring against item vectors computed beforehand (e.g. a training
/// catalogue's rows): histories truncated to `max_len`, scored with `full_sort_predict`.
pub struct VectorScorer<'a, M: SequentialRecommender> {
    pub name: String,
    pub model: &'a M,
    /// `[n_items, d]`.
    pub items: Tensor,
    pub max_len: usize,
}

impl<M: SequentialRecommender> Scorer for VectorScorer<'_, M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_batch(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
        let n_items = self.items.dim(0)?;
        Histories::new(histories, self.max_len, n_items, self.items.device())
            .and_then(|batch| self.model.full_sort_predict(&self.items, &batch))
            .map_err(|e| EvalError::scorer(&self.name, e))
    }
}
