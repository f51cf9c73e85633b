//! Full-ranking metrics of next-item cases: the target's rank among all catalogue items, then
//! Recall@K (= HR@K: one target per case), NDCG@K and MRR@K, averaged over cases.
//!
//! # Rank and ties: the target goes after every item that scores the same
//!
//! For a score row `s` over all `n` items and a target `t`:
//!
//! ```text
//! rank(t) = 1 + #{ j ≠ t : !(s_j < s_t) }
//! ```
//!
//! so an item whose score equals the target's is ranked ahead of it (pessimistic ties), and so is an
//! item whose score is NaN. Why pessimistic rather than, say, "equal scores rank by item index":
//! - a model cannot look good by not discriminating: a constant-score model ranks every target last
//!   (all metrics 0) instead of inheriting whatever order the catalogue file happens to have
//!   (`ml100k-mm` is sorted by MovieLens id, which correlates with release date and popularity, so an
//!   index rule would hand a constant model a real-looking score);
//! - it is a lower bound: ties can only cost the model, never flatter it, and the rule depends on
//!   nothing but the scores (no hidden order), so the same scores always give the same figures.
//!
//! RecBole ranks with `torch.topk`, whose order among ties is unspecified; for models with continuous
//! scores ties are rare and the rules agree. Where ties are common (popularity: many items share a
//! count) the pessimistic figure can sit slightly below RecBole's.
//!
//! A NaN *target* score has no rank at all: [`rank`] returns `None` and the evaluator reports it.
//!
//! # Masking
//!
//! The masked variant removes the user's history items from the candidates (as if their scores were
//! −∞), but never the target, even when the user saw it before: `rank_masked` subtracts the distinct
//! history items (other than the target) that were counted ahead of it. Removing rather than literally
//! writing −∞ differs only when the target itself scores −∞ (then masked items are not counted ahead
//! of it) and saves a second pass over the row.
//!
//! Counting instead of sorting keeps a case O(n) (one branch-free pass over the row, which the
//! compiler vectorises), with no allocation but the history's dedup.

use serde::{Deserialize, Serialize};

/// The cut-offs of docs/evaluation.md.
pub const CUTOFFS: [usize; 2] = [10, 50];

/// 1-based rank of `target` in `scores` (ties pessimistic, see the module documentation), or `None`
/// when the target's score is NaN. Panics only if `target` is not an index of `scores` (the
/// evaluator checks indices first).
pub fn rank(scores: &[f32], target: usize) -> Option<usize> {
    let target_score = scores[target];
    if target_score.is_nan() {
        return None;
    }
    // The target counts itself (s_t is not below s_t): that is the "1 +" of the rank.
    Some(count_not_below(scores, target_score))
}

/// Rank of `target` once the distinct items of `history` other than the target are removed from the
/// candidates, given its unmasked rank `unmasked` from [`rank`]. `scratch` is reused between calls.
pub fn rank_masked(scores: &[f32], target: usize, history: &[u32], unmasked: usize, scratch: &mut Vec<u32>) -> usize {
    let target_score = scores[target];
    scratch.clear();
    scratch.extend_from_slice(history);
    scratch.sort_unstable();
    scratch.dedup();
    let masked_ahead = scratch
        .iter()
        .filter(|&&item| item as usize != target && counts_ahead(scores[item as usize], target_score))
        .count();
    unmasked - masked_ahead
}

/// Sets the scores of `history` items other than `target` to −∞: the literal masking
/// [`rank_masked`] is equivalent to (kept for callers that want the masked row itself, and as the
/// reference the tests compare against).
pub fn mask_history(scores: &mut [f32], target: usize, history: &[u32]) {
    for &item in history {
        if item as usize != target {
            scores[item as usize] = f32::NEG_INFINITY;
        }
    }
}

/// How many scores count ahead of (or as) a target scoring `threshold`.
fn count_not_below(scores: &[f32], threshold: f32) -> usize {
    scores.iter().map(|&s| usize::from(counts_ahead(s, threshold))).sum()
}

/// Whether an item scoring `score` ranks ahead of a target scoring `target_score`: anything not
/// strictly below it — equal scores (pessimistic ties) and NaN (incomparable, so pessimistic too).
/// The negated `<` is the point: `>=` would let a NaN score slip behind the target.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
#[inline(always)]
fn counts_ahead(score: f32, target_score: f32) -> bool {
    !(score < target_score)
}

/// Whether the target was retrieved in the top `k` (Recall@K = HR@K with one target).
pub fn recall_at(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0
    } else {
        0.0
    }
}

/// `1 / log2(rank + 1)` inside the top `k`, else 0 (the ideal DCG of one relevant item is 1).
pub fn ndcg_at(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0 / ((rank + 1) as f64).log2()
    } else {
        0.0
    }
}

/// `1 / rank` inside the top `k`, else 0.
pub fn mrr_at(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0 / rank as f64
    } else {
        0.0
    }
}

/// The figures of docs/evaluation.md, each a mean over cases; JSON keys as in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(rename = "recall@10")]
    pub recall_at_10: f64,
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    #[serde(rename = "recall@50")]
    pub recall_at_50: f64,
    #[serde(rename = "ndcg@50")]
    pub ndcg_at_50: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
}

impl Metrics {
    /// Means over the given 1-based ranks, summed in order in f64 (same ranks ⇒ same bits). No
    /// ranks gives all zeros: the report's case count says there was nothing to measure.
    pub fn from_ranks(ranks: impl IntoIterator<Item = usize>) -> Metrics {
        let mut sums = Metrics::default();
        let mut cases = 0usize;
        for rank in ranks {
            sums.recall_at_10 += recall_at(rank, 10);
            sums.ndcg_at_10 += ndcg_at(rank, 10);
            sums.recall_at_50 += recall_at(rank, 50);
            sums.ndcg_at_50 += ndcg_at(rank, 50);
            sums.mrr_at_10 += mrr_at(rank, 10);
            cases += 1;
        }
        if cases == 0 {
            return sums;
        }
        sums.map(|sum| sum / cases as f64)
    }

    /// The figures in contract order, with their JSON names.
    pub fn named(&self) -> [(&'static str, f64); 5] {
        [
            ("recall@10", self.recall_at_10),
            ("ndcg@10", self.ndcg_at_10),
            ("recall@50", self.recall_at_50),
            ("ndcg@50", self.ndcg_at_50),
            ("mrr@10", self.mrr_at_10),
        ]
    }

    /// Each figure of `self` divided by the same figure of `base` (`None` where `base` is 0).
    pub fn ratio_to(&self, base: &Metrics) -> MetricRatios {
        let div = |a: f64, b: f64| if b == 0.0 { None } else { Some(a / b) };
        MetricRatios {
            recall_at_10: div(self.recall_at_10, base.recall_at_10),
            ndcg_at_10: div(self.ndcg_at_10, base.ndcg_at_10),
            recall_at_50: div(self.recall_at_50, base.recall_at_50),
            ndcg_at_50: div(self.ndcg_at_50, base.ndcg_at_50),
            mrr_at_10: div(self.mrr_at_10, base.mrr_at_10),
        }
    }

    fn map(self, f: impl Fn(f64) -> f64) -> Metrics {
        Metrics {
            recall_at_10: f(self.recall_at_10),
            ndcg_at_10: f(self.ndcg_at_10),
            recall_at_50: f(self.recall_at_50),
            ndcg_at_50: f(self.ndcg_at_50),
            mrr_at_10: f(self.mrr_at_10),
        }
    }
}

/// One figure divided by another, per metric (`null` in JSON where the base is 0).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricRatios {
    #[serde(rename = "recall@10")]
    pub recall_at_10: Option<f64>,
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: Option<f64>,
    #[serde(rename = "recall@50")]
    pub recall_at_50: Option<f64>,
    #[serde(rename = "ndcg@50")]
    pub ndcg_at_50: Option<f64>,
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_items_scoring_higher() {
        let scores = [0.1, 0.9, 0.5, 0.7];
        assert_eq!(rank(&scores, 1), Some(1));
        assert_eq!(rank(&scores, 3), Some(2));
        assert_eq!(rank(&scores, 0), Some(4));
    }

    #[test]
    fn nan_elsewhere_counts_ahead_and_nan_target_has_no_rank() {
        let scores = [0.5, f32::NAN, 0.1];
        assert_eq!(rank(&scores, 0), Some(2));
        assert_eq!(rank(&scores, 1), None);
    }

    #[test]
    fn masked_rank_equals_rank_of_literally_masked_row() {
        // A small deterministic pseudo-random sweep (LCG), with repeated history items and ties.
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut scratch = Vec::new();
        for _ in 0..200 {
            let n = 1 + (next() % 40) as usize;
            let scores: Vec<f32> = (0..n).map(|_| (next() % 7) as f32).collect();
            let target = (next() as usize) % n;
            let history: Vec<u32> = (0..next() % 12).map(|_| next() % n as u32).collect();
            let unmasked = rank(&scores, target).unwrap();
            let mut literal = scores.clone();
            mask_history(&mut literal, target, &history);
            assert_eq!(
                rank_masked(&scores, target, &history, unmasked, &mut scratch),
                rank(&literal, target).unwrap(),
                "scores {scores:?} target {target} history {history:?}"
            );
        }
    }

    #[test]
    fn ratios_are_none_on_a_zero_base() {
        let a = Metrics { recall_at_10: 0.2, ..Default::default() };
        let b = Metrics { recall_at_10: 0.4, ..Default::default() };
        let r = a.ratio_to(&b);
        assert_eq!(r.recall_at_10, Some(0.5));
        assert_eq!(r.ndcg_at_10, None);
    }
}
