//! The bundle index's approximate path judged against the exact full ranking (issue 17;
//! docs/evaluation.md § The index's approximate path).
//!
//! A bundle with an index (docs/bundle.md § Index) answers from the rows of the `nprobe`
//! partitions whose centroids are nearest the unit user vector; every probed row is scored exactly
//! as the full scan scores it. Judged here on the same test cases, from the same scores, in one pass:
//!
//! ```text
//! histories ─► scores [b, n] (the model's logits) and user vectors [b, d]
//!   exact:        the target's rank among all n items (metrics::rank)
//!   approximate:  the unit user vector probes the nprobe nearest centroids; rows of unprobed
//!                 partitions leave the candidates (their scores become −∞); the target's rank among
//!                 the probed rows, or "not retrieved" (rank n + 1) when its partition was not probed
//!   recall@10 against exact: |approximate top 10 ∩ exact top 10| / 10 (history removed from both
//!                 for the masked figure, as the widget removes it)
//! ```
//!
//! Ranking only among probed rows can move a target up (fewer rows ahead of it) as well as lose it,
//! so the paired NDCG@10 difference (approximate − exact, `significance`) says which way it went.
//! The partitioning itself (k-means, `omakase export`'s code) is the caller's: this module takes
//! centroids and each row's partition, so evaluation does not depend on the export.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::error::EvalError;
use super::metrics::{rank, rank_masked, Metrics};
use super::scorer::{check_case, Evaluation, UserVectors};
use super::significance::{paired_ndcg10_difference, PairedDifference};
use crate::data::split::TestCase;
use crate::runtime::index::{unit_query, Centroids};

/// The cut-off of recall against the exact answer (the widget shows ten items).
pub const RECALL_K: usize = 10;

/// The index as the evaluation needs it: centroids `[p, d]` and each catalogue row's partition.
pub struct EvalIndex<'a> {
    pub centroids: &'a Centroids,
    /// `partition_of[row]` in `0..p`, one per catalogue row (catalogue order, not bundle order).
    pub partition_of: &'a [u32],
}

/// One `nprobe`'s ranks, paired case by case with the exact ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Approximate {
    pub nprobe: usize,
    /// The full ranking (the same ranks `evaluate` gives).
    pub exact: Evaluation,
    /// The index's ranks; `n_items + 1` where the target's partition was not probed.
    pub approximate: Evaluation,
    /// Per case: recall@10 of the approximate top 10 against the exact top 10.
    pub recall: Vec<f64>,
    /// The same with the history removed from both lists.
    pub recall_masked: Vec<f64>,
    /// Per case: whether the target's partition was probed.
    pub target_probed: Vec<bool>,
}

impl Approximate {
    /// The cases where `keep[i]` holds (e.g. the cold protocol's new-item targets), order kept.
    pub fn subset(&self, keep: &[bool]) -> Approximate {
        let pick = |values: &[f64]| values.iter().zip(keep).filter(|(_, &k)| k).map(|(&v, _)| v).collect();
        Approximate {
            nprobe: self.nprobe,
            exact: self.exact.subset(keep),
            approximate: self.approximate.subset(keep),
            recall: pick(&self.recall),
            recall_masked: pick(&self.recall_masked),
            target_probed: self.target_probed.iter().zip(keep).filter(|(_, &k)| k).map(|(&p, _)| p).collect(),
        }
    }

    /// The report's figures for this `nprobe`.
    pub fn figures(&self) -> ProbeFigures {
        let mean =
            |values: &[f64]| if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 };
        let probed = self.target_probed.iter().filter(|&&p| p).count();
        ProbeFigures {
            nprobe: self.nprobe,
            metrics: self.approximate.metrics(),
            metrics_masked: self.approximate.metrics_masked(),
            recall_at_10_vs_exact: mean(&self.recall),
            recall_at_10_masked_vs_exact: mean(&self.recall_masked),
            targets_probed: if self.target_probed.is_empty() {
                0.0
            } else {
                probed as f64 / self.target_probed.len() as f64
            },
            ndcg10_difference: paired_ndcg10_difference(&self.approximate.ranks, &self.exact.ranks),
            ndcg10_masked_difference: paired_ndcg10_difference(
                &self.approximate.ranks_masked,
                &self.exact.ranks_masked,
            ),
        }
    }
}

/// The report's `index` section (docs/evaluation.md): how the catalogue was partitioned, and per
/// `nprobe` the approximate path's figures next to the exact ones of the same report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexReport {
    /// Partitions `p` (the export's default for the catalogue, or `--partitions`).
    pub partitions: usize,
    /// The `nprobe` `omakase export` would write for this catalogue (recall@10 0.99 on item queries
    /// and on the user vectors of sampled training histories).
    pub export_nprobe: usize,
    pub probes: Vec<ProbeFigures>,
}

/// The approximate path at one `nprobe`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeFigures {
    pub nprobe: usize,
    /// The approximate path's figures (HR@10 = recall@10: one target per case).
    pub metrics: Metrics,
    pub metrics_masked: Metrics,
    /// Mean over cases of |approximate top 10 ∩ exact top 10| / 10.
    #[serde(rename = "recall@10_vs_exact")]
    pub recall_at_10_vs_exact: f64,
    /// The same, the history removed from both lists (what the widget shows).
    #[serde(rename = "recall@10_masked_vs_exact")]
    pub recall_at_10_masked_vs_exact: f64,
    /// Share of cases whose target's partition was probed.
    pub targets_probed: f64,
    /// Approximate NDCG@10 minus exact, same cases, with its 95 % paired bootstrap interval.
    pub ndcg10_difference: Option<PairedDifference>,
    pub ndcg10_masked_difference: Option<PairedDifference>,
}

/// Scores every case with `scorer` once, `batch` cases at a time, and ranks it exactly and through
/// `index` at each of `nprobes` (each clamped to `1..=p`). Refuses what [`super::evaluate`] refuses
/// (an item out of range, a NaN target score), a user-vector matrix of the wrong shape, and an
/// index whose rows or width disagree with the scorer's.
pub fn evaluate_approximate(
    scorer: &dyn UserVectors,
    cases: &[TestCase],
    n_items: usize,
    index: &EvalIndex<'_>,
    nprobes: &[usize],
    batch: usize,
) -> Result<Vec<Approximate>, EvalError> {
    let p = index.centroids.len();
    if index.partition_of.len() != n_items || index.partition_of.iter().any(|&c| c as usize >= p) {
        return Err(EvalError::scorer(
            scorer.name(),
            IndexMismatch(format!(
                "the index assigns {} rows to {p} partitions; the catalogue has {n_items} items",
                index.partition_of.len()
            )),
        ));
    }
    let d = index.centroids.dim();
    let mut out: Vec<Approximate> = nprobes
        .iter()
        .map(|&nprobe| Approximate {
            nprobe: nprobe.clamp(1, p.max(1)),
            exact: empty(scorer.name()),
            approximate: empty(scorer.name()),
            recall: Vec::new(),
            recall_masked: Vec::new(),
            target_probed: Vec::new(),
        })
        .collect();
    let mut scratch = Vec::new();
    let mut restricted = vec![0f32; n_items];
    for chunk in cases.chunks(batch.max(1)) {
        let histories: Vec<&[u32]> = chunk.iter().map(|case| case.history.as_slice()).collect();
        for case in chunk {
            check_case(case, n_items)?;
        }
        let scores = rows_of(scorer.name(), scorer.score_batch(&histories)?, chunk.len(), n_items)?;
        let users = rows_of(scorer.name(), scorer.user_vectors(&histories)?, chunk.len(), d)?;
        for ((case, row), user) in chunk.iter().zip(scores.chunks_exact(n_items)).zip(users.chunks_exact(d)) {
            let target = case.target as usize;
            let nan =
                || EvalError::NanTargetScore { scorer: scorer.name().to_string(), user: case.user, item: case.target };
            let exact = rank(row, target).ok_or_else(nan)?;
            let exact_masked = rank_masked(row, target, &case.history, exact, &mut scratch);
            let exact_top = top(row, RECALL_K, &[]);
            let exact_top_masked = top(row, RECALL_K, &case.history);
            let unit = unit_query(user, d).map_err(|e| EvalError::scorer(scorer.name(), e))?;
            let order = index.centroids.probe(&unit, p);
            for result in out.iter_mut() {
                let mut probed = vec![false; p];
                order.iter().take(result.nprobe).for_each(|&c| probed[c] = true);
                for (r, (&s, &c)) in restricted.iter_mut().zip(row.iter().zip(index.partition_of)) {
                    *r = if probed[c as usize] { s } else { f32::NEG_INFINITY };
                }
                let hit = probed[index.partition_of[target] as usize];
                let (approx, approx_masked) = if hit {
                    let r = rank(&restricted, target).ok_or_else(nan)?;
                    (r, rank_masked(&restricted, target, &case.history, r, &mut scratch))
                } else {
                    (n_items + 1, n_items + 1)
                };
                result.exact.ranks.push(exact);
                result.exact.ranks_masked.push(exact_masked);
                result.approximate.ranks.push(approx);
                result.approximate.ranks_masked.push(approx_masked);
                result.recall.push(overlap(&exact_top, &top_probed(&restricted, RECALL_K, &[])));
                result
                    .recall_masked
                    .push(overlap(&exact_top_masked, &top_probed(&restricted, RECALL_K, &case.history)));
                result.target_probed.push(hit);
            }
        }
    }
    Ok(out)
}

/// Why an index does not fit the catalogue it is evaluated on.
#[derive(Debug)]
struct IndexMismatch(String);

impl std::fmt::Display for IndexMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IndexMismatch {}

fn empty(scorer: &str) -> Evaluation {
    Evaluation { scorer: scorer.to_string(), ranks: Vec::new(), ranks_masked: Vec::new() }
}

/// `tensor` (`[b, width]`) as row-major f32 on the CPU, shape checked.
fn rows_of(scorer: &str, tensor: Tensor, b: usize, width: usize) -> Result<Vec<f32>, EvalError> {
    if tensor.dims() != [b, width] {
        return Err(EvalError::ScoreShape {
            scorer: scorer.to_string(),
            batch: b,
            n_items: width,
            got: tensor.dims().to_vec(),
        });
    }
    Ok(tensor.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// The `k` best rows of `scores` not in `exclude`, by score descending then row ascending (a total
/// order, so both lists break ties alike).
fn top(scores: &[f32], k: usize, exclude: &[u32]) -> Vec<u32> {
    let mut rows: Vec<u32> = (0..scores.len() as u32).filter(|r| !exclude.contains(r)).collect();
    let better = |a: &u32, b: &u32| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b));
    if rows.len() > k {
        rows.select_nth_unstable_by(k - 1, better);
        rows.truncate(k);
    }
    rows.sort_unstable_by(better);
    rows
}

/// [`top`] among the rows still candidates (not −∞): the approximate list, never padded with
/// unprobed rows.
fn top_probed(restricted: &[f32], k: usize, exclude: &[u32]) -> Vec<u32> {
    let mut rows = top(restricted, k, exclude);
    rows.retain(|&r| restricted[r as usize] != f32::NEG_INFINITY);
    rows
}

/// |a ∩ b| / |a| (1 when the exact list is empty: nothing to find).
fn overlap(exact: &[u32], approximate: &[u32]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    exact.iter().filter(|r| approximate.contains(r)).count() as f64 / exact.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::scorer::Scorer;

    /// Items on a circle in 2-D; the user vector is the last history item's vector; scores are
    /// cosines. Two partitions: the right half-plane (x ≥ 0) and the left.
    struct Circle {
        items: Vec<[f32; 2]>,
    }

    impl Circle {
        fn new(n: usize) -> Circle {
            let items = (0..n)
                .map(|i| {
                    let a = i as f32 / n as f32 * std::f32::consts::TAU;
                    [a.cos(), a.sin()]
                })
                .collect();
            Circle { items }
        }
    }

    impl Scorer for Circle {
        fn name(&self) -> &str {
            "circle"
        }

        fn score_batch(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
            let users = self.user_vectors(histories)?.to_vec2::<f32>()?;
            let scores: Vec<f32> =
                users.iter().flat_map(|u| self.items.iter().map(move |v| u[0] * v[0] + u[1] * v[1])).collect();
            Ok(Tensor::from_vec(scores, (histories.len(), self.items.len()), &Device::Cpu)?)
        }
    }

    impl UserVectors for Circle {
        fn user_vectors(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
            let users: Vec<f32> = histories.iter().flat_map(|h| self.items[*h.last().unwrap() as usize]).collect();
            Ok(Tensor::from_vec(users, (histories.len(), 2), &Device::Cpu)?)
        }
    }

    fn halves(circle: &Circle) -> (Centroids, Vec<u32>) {
        let centroids = Centroids::from_values(vec![1.0, 0.0, -1.0, 0.0], 2).unwrap();
        let partition_of = circle.items.iter().map(|v| u32::from(v[0] < 0.0)).collect();
        (centroids, partition_of)
    }

    #[test]
    fn probing_every_partition_is_the_exact_ranking() {
        let circle = Circle::new(40);
        let (centroids, partition_of) = halves(&circle);
        let index = EvalIndex { centroids: &centroids, partition_of: &partition_of };
        let cases: Vec<TestCase> =
            (0..40).map(|u| TestCase { user: u, history: vec![u, (u + 3) % 40], target: (u + 5) % 40 }).collect();
        let results = evaluate_approximate(&circle, &cases, 40, &index, &[2, 7], 16).unwrap();
        assert_eq!(results[1].nprobe, 2, "nprobe is clamped to the partitions");
        for result in &results {
            assert_eq!(result.approximate, result.exact);
            assert!(result.recall.iter().chain(&result.recall_masked).all(|&r| r == 1.0));
            let figures = result.figures();
            assert_eq!(figures.ndcg10_difference.unwrap().difference, 0.0);
            assert_eq!(figures.targets_probed, 1.0);
        }
    }

    #[test]
    fn an_unprobed_target_is_not_retrieved_and_a_probed_one_ranks_among_probed_rows() {
        let circle = Circle::new(40);
        let (centroids, partition_of) = halves(&circle);
        let index = EvalIndex { centroids: &centroids, partition_of: &partition_of };
        // User at item 0 (x = 1, right half): item 1 is near (probed), item 20 is opposite (left half).
        let cases =
            vec![TestCase { user: 0, history: vec![0], target: 1 }, TestCase { user: 1, history: vec![0], target: 20 }];
        let result = &evaluate_approximate(&circle, &cases, 40, &index, &[1], 8).unwrap()[0];
        assert_eq!(result.target_probed, vec![true, false]);
        assert_eq!(result.approximate.ranks[0], result.exact.ranks[0]);
        assert_eq!(result.approximate.ranks[1], 41, "not retrieved: rank n + 1");
        assert!(result.exact.ranks[1] <= 40);
        // The top 10 around item 0 lies in the right half: probing it alone finds all of them.
        assert_eq!(result.recall, vec![1.0, 1.0]);
    }

    #[test]
    fn recall_counts_exact_hits_outside_the_probed_partitions() {
        let circle = Circle::new(40);
        let (centroids, partition_of) = halves(&circle);
        let index = EvalIndex { centroids: &centroids, partition_of: &partition_of };
        // Item 10 is at the top (x = 0, partition 0); its ten nearest straddle both halves.
        let cases = vec![TestCase { user: 0, history: vec![10], target: 11 }];
        let result = &evaluate_approximate(&circle, &cases, 40, &index, &[1], 8).unwrap()[0];
        assert!(result.recall[0] < 1.0 && result.recall[0] > 0.0, "{:?}", result.recall);
        // The approximate target can only move up: fewer rows ahead of it.
        assert!(result.approximate.ranks[0] <= result.exact.ranks[0]);
    }

    #[test]
    fn an_index_of_another_catalogue_is_refused() {
        let circle = Circle::new(40);
        let (centroids, _) = halves(&circle);
        let short = vec![0u32; 39];
        let index = EvalIndex { centroids: &centroids, partition_of: &short };
        let cases = vec![TestCase { user: 0, history: vec![0], target: 1 }];
        let err = evaluate_approximate(&circle, &cases, 40, &index, &[1], 8).unwrap_err();
        assert!(err.to_string().contains("39 rows"), "{err}");
    }
}
