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
//!
//! With joint shops (`[data] joint`, [`JointSequences`]) an epoch's batches come from every shop, each
//! batch from one shop and scored against that shop's slice of the item vectors only; validation
//! stays on the dataset's own slice.

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
    /// Other shops trained beside this one (`[data] joint`): their compact rows follow this
    /// catalogue's in `rows`. Empty for an ordinary run.
    pub joint: Vec<JointSequences>,
}

/// A joint shop's training windows, its item indices local to its own slice
/// `offset .. offset + n_items` of the compact catalogue. Its windows are batched apart from every
/// other shop's, so each softmax runs over one catalogue (per-catalogue negatives).
#[derive(Debug, Clone)]
pub struct JointSequences {
    pub windows: Vec<Window>,
    pub offset: usize,
    pub n_items: usize,
}

/// One optimiser step's windows, all of one catalogue slice.
struct PlannedBatch {
    /// Indices into the windows of `part` (0: the main shop; k: joint shop k − 1).
    windows: Vec<usize>,
    part: usize,
}

impl SequenceData {
    /// (offset, items) of part `part` in the compact catalogue.
    fn slice(&self, part: usize) -> (usize, usize) {
        match part {
            0 => (0, self.n_items),
            k => (self.joint[k - 1].offset, self.joint[k - 1].n_items),
        }
    }

    fn windows_of(&self, part: usize) -> &[Window] {
        match part {
            0 => &self.windows,
            k => &self.joint[k - 1].windows,
        }
    }

    /// The epoch's batches: each part's windows shuffled and cut into batches; with joint shops,
    /// the batches of every part then shuffled together (mixed over the epoch, one catalogue per
    /// batch). Without them, exactly the order of an ordinary run.
    fn epoch_batches(&self, batch: usize, seed: u64, epoch: usize) -> Vec<PlannedBatch> {
        let mut batches = Vec::new();
        for part in 0..=self.joint.len() {
            let purpose = match part {
                0 => "train.shuffle".to_string(),
                k => format!("train.shuffle.joint{k}"),
            };
            let order = epoch_order(self.windows_of(part).len(), seed, &purpose, epoch);
            batches.extend(order.chunks(batch).map(|chunk| PlannedBatch { windows: chunk.to_vec(), part }));
        }
        if self.joint.is_empty() {
            return batches;
        }
        let mut slots: Vec<Option<PlannedBatch>> = batches.into_iter().map(Some).collect();
        epoch_order(slots.len(), seed, "train.joint_batches", epoch)
            .into_iter()
            .filter_map(|i| slots[i].take())
            .collect()
    }

    /// Optimiser steps per epoch, over every part.
    fn steps_per_epoch(&self, batch: usize) -> usize {
        (0..=self.joint.len()).map(|part| self.windows_of(part).len().div_ceil(batch)).sum()
    }
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
    let steps_per_epoch = data.steps_per_epoch(settings.batch);
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
        let bar = session.progress.epoch_bar(format!("train {epoch}/{}", settings.epochs), steps_per_epoch);
        let (mut loss_sum, mut norm_sum, mut batches) = (0f64, 0f64, 0usize);
        for planned in data.epoch_batches(settings.batch, settings.seed, epoch) {
            let part_windows = data.windows_of(planned.part);
            let windows: Vec<&Window> = planned.windows.iter().map(|&i| &part_windows[i]).collect();
            let (offset, n_items) = data.slice(planned.part);
            let batch = WindowBatch::new(&windows, settings.max_len, n_items, &device)?;
            let items = match &frozen_items {
                Some(items) => items.clone(),
                None => trainable.item_vectors(&rows, Mode::Train(&dropout))?,
            };
            let items = items.narrow(0, offset, n_items)?;
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
        let valid = validate(trainable.model, &items.narrow(0, 0, data.n_items)?, data, settings)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn data(main: usize, joint: &[usize]) -> SequenceData {
        let windows =
            |n: usize| (0..n).map(|i| Window { items: vec![i as u32, i as u32 + 1], first_trained: 0 }).collect();
        SequenceData {
            windows: windows(main),
            validation: Vec::new(),
            rows: None,
            n_items: 10,
            joint: joint.iter().map(|&n| JointSequences { windows: windows(n), offset: 10, n_items: 5 }).collect(),
        }
    }

    #[test]
    fn without_joint_shops_the_batches_are_an_ordinary_run_s() {
        let data = data(23, &[]);
        let batches = data.epoch_batches(5, 42, 3);
        let order = epoch_order(23, 42, "train.shuffle", 3);
        let expected: Vec<Vec<usize>> = order.chunks(5).map(|c| c.to_vec()).collect();
        assert_eq!(batches.iter().map(|b| b.windows.clone()).collect::<Vec<_>>(), expected);
        assert!(batches.iter().all(|b| b.part == 0));
        assert_eq!(data.steps_per_epoch(5), 5);
    }

    #[test]
    fn joint_batches_hold_one_shop_each_and_cover_every_window_once() {
        let data = data(23, &[11, 4]);
        let batches = data.epoch_batches(5, 42, 1);
        assert_eq!(batches.len(), data.steps_per_epoch(5));
        assert_eq!(batches.len(), 5 + 3 + 1);
        for (part, n) in [(0, 23), (1, 11), (2, 4)] {
            let mut seen: Vec<usize> =
                batches.iter().filter(|b| b.part == part).flat_map(|b| b.windows.clone()).collect();
            seen.sort();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "part {part}");
        }
        // Mixed over the epoch: the shops' batches are interleaved, not one shop after another.
        let parts: Vec<usize> = batches.iter().map(|b| b.part).collect();
        assert!(parts.windows(2).filter(|w| w[0] != w[1]).count() > 2, "{parts:?}");
        // Another epoch, another order; the same epoch, the same order (a resumed run replays it).
        let again: Vec<usize> = data.epoch_batches(5, 42, 1).iter().map(|b| b.part).collect();
        assert_eq!(again, parts);
        let next: Vec<Vec<usize>> = data.epoch_batches(5, 42, 2).iter().map(|b| b.windows.clone()).collect();
        assert_ne!(next, batches.iter().map(|b| b.windows.clone()).collect::<Vec<_>>());
        assert_eq!((data.slice(0), data.slice(2)), ((0, 10), (10, 5)));
    }
}
