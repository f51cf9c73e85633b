//! What every model and baseline implements to be evaluated ([`Scorer`]), and the evaluation loop
//! ([`evaluate`]) that ranks each test case's target among all items, unmasked and masked at once.

use candle_core::{DType, Device, Tensor};

use super::error::EvalError;
use super::metrics::{rank, rank_masked, Metrics};
use crate::data::split::TestCase;
use crate::model::{Histories, Mode, SequentialRecommender};

/// A next-item scorer over the whole catalogue.
///
/// Shape contract: `score_batch(histories)` with `b = histories.len()` returns `[b, n_items]`
/// scores, row `i` for `histories[i]`, higher = more recommended, in any float dtype on any device.
/// Histories are item indices, oldest first, untruncated (a model keeps its own last `max_len`);
/// one may be empty (e.g. a cold-protocol validation history whose items were all new), and the
/// scorer decides what an empty history means. Scores must be deterministic for the same input.
pub trait Scorer {
    /// Short stable name, used as the baseline's key in the report.
    fn name(&self) -> &str;

    /// Scores of every catalogue item for each history, `[b, n_items]`.
    fn score_batch(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError>;
}

/// A [`Scorer`] that also gives the user vectors its scores come from: what a bundle index probes
/// with (`approximate`).
///
/// Shape contract: `user_vectors(histories)` returns `[b, d]`, row `i` for `histories[i]`, in the
/// space of the item vectors the scores compare it with.
pub trait UserVectors: Scorer {
    fn user_vectors(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError>;
}

/// Every case's target rank, unmasked and history-masked, in case order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub scorer: String,
    /// 1-based rank of each case's target among all items (ties pessimistic: see `metrics`).
    pub ranks: Vec<usize>,
    /// The same, with the user's history items (never the target) removed from the candidates.
    pub ranks_masked: Vec<usize>,
}

impl Evaluation {
    /// Number of cases evaluated (one per user in the protocols of docs/evaluation.md).
    pub fn cases(&self) -> usize {
        self.ranks.len()
    }

    /// The primary figures (history not masked, RecBole's convention for sequential models).
    pub fn metrics(&self) -> Metrics {
        Metrics::from_ranks(self.ranks.iter().copied())
    }

    /// The figures with history masked (what the widget shows).
    pub fn metrics_masked(&self) -> Metrics {
        Metrics::from_ranks(self.ranks_masked.iter().copied())
    }

    /// The cases where `keep[i]` holds (e.g. the cold protocol's new-item targets), order kept.
    /// `keep` must have one flag per case.
    pub fn subset(&self, keep: &[bool]) -> Evaluation {
        assert_eq!(keep.len(), self.cases(), "one flag per case");
        let pick = |ranks: &[usize]| ranks.iter().zip(keep).filter(|(_, &k)| k).map(|(&r, _)| r).collect();
        Evaluation { scorer: self.scorer.clone(), ranks: pick(&self.ranks), ranks_masked: pick(&self.ranks_masked) }
    }
}

/// Ranks every case's target among all `n_items` items with `scorer`, `batch` cases at a time
/// (`batch` 0 is taken as 1). Refuses a case whose target or history names an item outside the
/// catalogue, a score matrix of the wrong shape, and a NaN target score, naming scorer and user.
pub fn evaluate(
    scorer: &dyn Scorer,
    cases: &[TestCase],
    n_items: usize,
    batch: usize,
) -> Result<Evaluation, EvalError> {
    cases.iter().try_for_each(|case| check_case(case, n_items))?;
    let mut ranks = Vec::with_capacity(cases.len());
    let mut ranks_masked = Vec::with_capacity(cases.len());
    let mut scratch = Vec::new();
    for chunk in cases.chunks(batch.max(1)) {
        let histories: Vec<&[u32]> = chunk.iter().map(|case| case.history.as_slice()).collect();
        let scores = score_rows(scorer, &histories, n_items)?;
        for (case, row) in chunk.iter().zip(scores.chunks_exact(n_items)) {
            let target = case.target as usize;
            let unmasked = rank(row, target).ok_or_else(|| EvalError::NanTargetScore {
                scorer: scorer.name().to_string(),
                user: case.user,
                item: case.target,
            })?;
            ranks.push(unmasked);
            ranks_masked.push(rank_masked(row, target, &case.history, unmasked, &mut scratch));
        }
    }
    Ok(Evaluation { scorer: scorer.name().to_string(), ranks, ranks_masked })
}

/// The scorer's `[b, n_items]` output as row-major f32 on the CPU, shape checked.
fn score_rows(scorer: &dyn Scorer, histories: &[&[u32]], n_items: usize) -> Result<Vec<f32>, EvalError> {
    let scores = scorer.score_batch(histories)?;
    if scores.dims() != [histories.len(), n_items] {
        return Err(EvalError::ScoreShape {
            scorer: scorer.name().to_string(),
            batch: histories.len(),
            n_items,
            got: scores.dims().to_vec(),
        });
    }
    Ok(scores.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Refuses a case whose target or history names an item outside the catalogue.
pub(super) fn check_case(case: &TestCase, n_items: usize) -> Result<(), EvalError> {
    let out_of_range = |field, item| EvalError::ItemOutOfRange { user: case.user, field, item, n_items };
    if case.target as usize >= n_items {
        return Err(out_of_range("target", case.target));
    }
    match case.history.iter().find(|&&item| item as usize >= n_items) {
        Some(&item) => Err(out_of_range("history", item)),
        None => Ok(()),
    }
}

/// Any [`SequentialRecommender`] as a [`Scorer`]: the catalogue's item vectors are computed once (in
/// inference mode) and every batch of histories, truncated to their last `max_len` items, is scored
/// with the model's own `full_sort_predict` — the logits its training softmax uses.
pub struct RecommenderScorer<'a, M: SequentialRecommender> {
    name: String,
    model: &'a M,
    item_vectors: Tensor,
    max_len: usize,
}

impl<'a, M: SequentialRecommender> RecommenderScorer<'a, M> {
    pub fn new(
        name: impl Into<String>,
        model: &'a M,
        catalogue: &M::Catalogue,
        max_len: usize,
    ) -> Result<Self, EvalError> {
        let name = name.into();
        let item_vectors = model.item_vectors(catalogue, Mode::Eval).map_err(|e| EvalError::scorer(&name, e))?;
        Ok(RecommenderScorer { name, model, item_vectors, max_len })
    }
}

impl<M: SequentialRecommender> RecommenderScorer<'_, M> {
    /// The catalogue's item vectors the scores compare user vectors with, `[n_items, d]`.
    pub fn item_vectors(&self) -> &Tensor {
        &self.item_vectors
    }
}

impl<M: SequentialRecommender> Scorer for RecommenderScorer<'_, M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_batch(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
        let n_items = self.item_vectors.dim(0)?;
        let scores = Histories::new(histories, self.max_len, n_items, self.item_vectors.device())
            .and_then(|batch| self.model.full_sort_predict(&self.item_vectors, &batch));
        scores.map_err(|e| EvalError::scorer(&self.name, e))
    }
}

impl<M: SequentialRecommender> UserVectors for RecommenderScorer<'_, M> {
    /// The model's `forward` (inference mode) on the same truncated histories `score_batch` scores.
    fn user_vectors(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
        let n_items = self.item_vectors.dim(0)?;
        let users = Histories::new(histories, self.max_len, n_items, self.item_vectors.device())
            .and_then(|batch| self.model.forward(&self.item_vectors, &batch, Mode::Eval));
        users.map_err(|e| EvalError::scorer(&self.name, e))
    }
}
