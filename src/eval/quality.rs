//! Data quality and exposure, for the report's "data quality" section: does each product's picture
//! say what its words say, which products lack a modality, and whom do the recommendations reach.
//!
//! # Modality agreement (mismatch list)
//!
//! For every item that has both text and image, the item tower is run twice in inference mode —
//! through its text-only view and its image-only view ([`ItemView`]) — and the cosine of the two
//! vectors is the item's **agreement**. Pretraining (ARCHITECTURE.md § Model) pulls the two views of one product
//! together, so a product whose views stay far apart is a suspect: a wrong or generic poster, a
//! title that describes something else, a placeholder image. The lowest [`MISMATCH_LIST`] are
//! listed.
//!
//! Each view's vectors are **centred** on that view's mean over the compared items before the
//! cosine. Why: every item vector carries a large shared component (the output LayerNorm's bias,
//! the modality embedding), so raw cosines crowd together near 1 — measured on a 5-epoch ml100k-mm
//! run: own pairs median 0.910, *unrelated* pairs 0.900 — and the ordering mostly reflects the
//! shared part. Centred, unrelated pairs average ≈ 0 and an item's figure says how much its picture
//! and words point the same way *relative to the catalogue*. For scale the report also gives the
//! mean centred cosine of **mismatched** pairs (item `i`'s text view with the image view of the
//! next compared item): an item near that figure is no more alike than strangers.
//!
//! # Exposure: coverage@K and popularity skew
//!
//! For each scorer, every test case's top-K is taken **with the history masked** (what the widget
//! shows: a shopper is not offered what they already viewed; ties by lower item index).
//! - **coverage@K** = distinct items in any top-K ÷ catalogue size.
//! - **popularity percentile** of an item: its training popularity `c_i` (occurrences in the split's
//!   training sequences) as a mid-rank percentile over the catalogue,
//!   `p_i = (#{j : c_j < c_i} + ½·#{j : c_j = c_i}) / n`, so a uniformly drawn catalogue item has
//!   mean percentile exactly ½. The **skew** compares the mean `p` of all recommended slots with the
//!   mean `p` of all training interactions: recommendations above the interactions' figure lean to
//!   the head more than shoppers themselves do; below it, to the long tail.
//! - **Gini** of how often each catalogue item is recommended, against the Gini of how often each is
//!   interacted with in training (0 = every item equally often, → 1 = one item takes everything).

use std::cmp::Ordering;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::error::EvalError;
use super::scorer::Scorer;
use crate::data::split::TestCase;
use crate::data::Item;
use crate::model::{l2_normalize, ItemFeatures, ItemTower, ItemView, Mode};

/// How many of the least agreeing items the report lists.
pub const MISMATCH_LIST: usize = 20;
/// How many items without a modality the report lists by name (all are counted).
pub const MISSING_LIST: usize = 30;
/// The cut-off of the exposure figures (the widget's list length).
pub const EXPOSURE_K: usize = 10;
/// Bins of the agreement histogram (over the range of the values, see [`ModalityAgreement`]).
pub const AGREEMENT_BINS: usize = 20;
/// Items per item-tower pass (bounds memory on large catalogues).
const TOWER_CHUNK: usize = 4096;

/// A catalogue item as the report names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRef {
    pub index: u32,
    pub item_id: String,
    pub title: String,
}

impl ItemRef {
    pub fn of(items: &[Item], index: u32) -> ItemRef {
        let item = &items[index as usize];
        ItemRef { index, item_id: item.id.clone(), title: item.title.clone() }
    }
}

/// One item's agreement between its text-only and image-only vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub item: ItemRef,
    pub cosine: f64,
}

/// The agreement of every item with both modalities, summarised (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalityAgreement {
    /// Items with both modalities (the ones compared).
    pub pairs: usize,
    pub mean: f64,
    pub median: f64,
    /// Mean cosine of mismatched pairs (text of one item, image of the next): the "strangers" level.
    pub mismatched_mean: Option<f64>,
    /// Share of items whose own pair agrees more than their mismatched pair (0.5 = chance, 1 = all).
    #[serde(default)]
    pub beats_mismatched: Option<f64>,
    /// Counts over [`AGREEMENT_BINS`] equal bins of `histogram_range`.
    pub histogram: Vec<usize>,
    /// `[from, to]` of the histogram: the values' range (and the mismatched mean), widened to
    /// multiples of 0.05 within `[-1, 1]`.
    pub histogram_range: [f64; 2],
    /// The least agreeing items, lowest cosine first (ties by item index).
    pub lowest: Vec<Agreement>,
}

/// Items lacking one modality: how many, and the first few by catalogue order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MissingModality {
    pub count: usize,
    pub items: Vec<ItemRef>,
}

/// Exposure figures of one scorer's masked top-K lists (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub scorer: String,
    pub k: usize,
    /// Test cases whose lists were taken.
    pub users: usize,
    /// Distinct items in any list.
    pub distinct_items: usize,
    /// `distinct_items / n_items`.
    pub coverage: f64,
    /// Mean training-popularity percentile over every recommended slot.
    pub mean_popularity_percentile: f64,
    /// Gini of per-item recommendation counts over the whole catalogue.
    pub gini: f64,
}

/// The same popularity figures for the training interactions themselves (the reference).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InteractionProfile {
    pub interactions: usize,
    pub mean_popularity_percentile: f64,
    pub gini: f64,
}

/// Everything the report's data-quality section shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub dataset: String,
    pub items: usize,
    /// `None` when fewer than two items have both modalities (e.g. a catalogue without pictures).
    pub agreement: Option<ModalityAgreement>,
    pub missing_text: MissingModality,
    pub missing_image: MissingModality,
    pub interactions: InteractionProfile,
    /// The evaluated model first, then the baselines that could be scored.
    pub exposure: Vec<Exposure>,
}

/// Per-item agreement (see the module documentation) and the mismatched-pairs reference.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgreementScores {
    /// `(item index, centred cosine)` of every item with both modalities, in item order.
    pub cosines: Vec<(u32, f32)>,
    /// Mean centred cosine of item `i`'s text view with the next compared item's image view.
    pub mismatched_mean: Option<f64>,
    /// Share of compared items whose own pair agrees more than their mismatched pair (0.5 = chance).
    pub beats_mismatched: Option<f64>,
}

/// Centred cosine between the text-only and the image-only vector of every item that has both
/// modalities (see the module documentation). Fewer than two such items give no scores.
pub fn modality_agreement(tower: &ItemTower, features: &ItemFeatures) -> Result<AgreementScores, EvalError> {
    let tower_error = |e| EvalError::scorer("item tower", e);
    let rows = features.rows_with_both().map_err(tower_error)?;
    if rows.len() < 2 {
        return Ok(AgreementScores::default());
    }
    let (mut texts, mut images) = (Vec::new(), Vec::new());
    for chunk in rows.chunks(TOWER_CHUNK) {
        let paired = features.select(&Tensor::new(chunk, features.device())?).map_err(tower_error)?;
        texts.push(tower.forward(&paired, ItemView::TextOnly, Mode::Eval).map_err(tower_error)?);
        images.push(tower.forward(&paired, ItemView::ImageOnly, Mode::Eval).map_err(tower_error)?);
    }
    let text = centred_unit(&Tensor::cat(&texts, 0)?)?;
    let image = centred_unit(&Tensor::cat(&images, 0)?)?;
    let own = (&text * &image)?.sum(1)?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
    let m = rows.len();
    let next_image = Tensor::cat(&[image.narrow(0, 1, m - 1)?, image.narrow(0, 0, 1)?], 0)?;
    let strangers = (&text * &next_image)?.sum(1)?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
    let mismatched_mean = strangers.iter().map(|&c| c as f64).sum::<f64>() / m as f64;
    let wins = own.iter().zip(&strangers).filter(|(o, s)| o > s).count();
    Ok(AgreementScores {
        cosines: rows.into_iter().zip(own).collect(),
        mismatched_mean: Some(mismatched_mean),
        beats_mismatched: Some(wins as f64 / m as f64),
    })
}

/// `[m, d]` rows minus their mean row, then scaled to unit length (a zero row stays zero).
fn centred_unit(xs: &Tensor) -> Result<Tensor, EvalError> {
    let centred = xs.broadcast_sub(&xs.mean_keepdim(0)?)?;
    l2_normalize(&centred).map_err(|e| EvalError::scorer("item tower", e))
}

/// Summarises per-item agreements (see [`modality_agreement`]); `None` when there are none.
pub fn summarise_agreement(scores: &AgreementScores, items: &[Item], list: usize) -> Option<ModalityAgreement> {
    if scores.cosines.is_empty() {
        return None;
    }
    let mut sorted = scores.cosines.clone();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let values: Vec<f64> = sorted.iter().map(|&(_, c)| c as f64).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let reference = scores.mismatched_mean.unwrap_or(values[0]);
    let from = ((values[0].min(reference) / 0.05).floor() * 0.05).max(-1.0);
    let to = ((values[values.len() - 1].max(reference) / 0.05).ceil() * 0.05).min(1.0).max(from + 0.05);
    let mut histogram = vec![0usize; AGREEMENT_BINS];
    for &v in &values {
        let bin = ((v - from) / (to - from) * AGREEMENT_BINS as f64).floor();
        histogram[(bin.max(0.0) as usize).min(AGREEMENT_BINS - 1)] += 1;
    }
    let lowest =
        sorted.iter().take(list).map(|&(i, c)| Agreement { item: ItemRef::of(items, i), cosine: c as f64 }).collect();
    Some(ModalityAgreement {
        pairs: values.len(),
        mean,
        median: median_of_sorted(&values),
        mismatched_mean: scores.mismatched_mean,
        beats_mismatched: scores.beats_mismatched,
        histogram,
        histogram_range: [from, to],
        lowest,
    })
}

fn median_of_sorted(values: &[f64]) -> f64 {
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The items whose `present` flag is false: their count, and the first `list` of them.
pub fn missing_modality(present: &[bool], items: &[Item], list: usize) -> MissingModality {
    let missing: Vec<u32> = present.iter().enumerate().filter(|(_, &p)| !p).map(|(i, _)| i as u32).collect();
    MissingModality { count: missing.len(), items: missing.iter().take(list).map(|&i| ItemRef::of(items, i)).collect() }
}

/// Each case's top `k` items by `scorer`, the case's history masked, highest score first (ties by
/// lower item index; NaN scores last). Item indices are checked as in [`super::evaluate`].
pub fn top_k_masked(
    scorer: &dyn Scorer,
    cases: &[TestCase],
    n_items: usize,
    k: usize,
    batch: usize,
) -> Result<Vec<Vec<u32>>, EvalError> {
    let mut lists = Vec::with_capacity(cases.len());
    for chunk in cases.chunks(batch.max(1)) {
        for case in chunk {
            if let Some(&item) = case.history.iter().find(|&&item| item as usize >= n_items) {
                return Err(EvalError::ItemOutOfRange { user: case.user, field: "history", item, n_items });
            }
        }
        let histories: Vec<&[u32]> = chunk.iter().map(|case| case.history.as_slice()).collect();
        let scores = scorer.score_batch(&histories)?;
        if scores.dims() != [chunk.len(), n_items] {
            return Err(EvalError::ScoreShape {
                scorer: scorer.name().to_string(),
                batch: chunk.len(),
                n_items,
                got: scores.dims().to_vec(),
            });
        }
        let rows =
            scores.to_device(&Device::Cpu)?.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        for (case, row) in chunk.iter().zip(rows.chunks_exact(n_items)) {
            lists.push(top_k_of_row(row, k, &case.history));
        }
    }
    Ok(lists)
}

/// The `k` best indices of `row` outside `excluded`, best first (ties by lower index, NaN last).
pub fn top_k_of_row(row: &[f32], k: usize, excluded: &[u32]) -> Vec<u32> {
    let mut masked = vec![false; row.len()];
    for &item in excluded {
        masked[item as usize] = true;
    }
    let better = |a: &u32, b: &u32| -> Ordering {
        let (sa, sb) = (row[*a as usize], row[*b as usize]);
        match (sa.is_nan(), sb.is_nan()) {
            (false, false) => sb.total_cmp(&sa).then(a.cmp(b)),
            (nan_a, nan_b) => nan_a.cmp(&nan_b).then(a.cmp(b)),
        }
    };
    let mut candidates: Vec<u32> = (0..row.len() as u32).filter(|&i| !masked[i as usize]).collect();
    if candidates.len() > k && k > 0 {
        candidates.select_nth_unstable_by(k - 1, better);
        candidates.truncate(k);
    }
    candidates.sort_by(better);
    candidates.truncate(k);
    candidates
}

/// Mid-rank popularity percentile of every item from its count (see the module documentation).
pub fn popularity_percentiles(counts: &[f32]) -> Vec<f64> {
    let n = counts.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| counts[a].total_cmp(&counts[b]));
    let mut percentiles = vec![0.0; n];
    let mut start = 0;
    while start < n {
        let mut end = start;
        while end < n && counts[order[end]] == counts[order[start]] {
            end += 1;
        }
        // `start` items lie strictly below this count, `end - start` share it.
        let p = (start as f64 + 0.5 * (end - start) as f64) / n as f64;
        for &i in &order[start..end] {
            percentiles[i] = p;
        }
        start = end;
    }
    percentiles
}

/// Gini coefficient of non-negative amounts (0 when all are equal or all zero).
pub fn gini(amounts: &[f64]) -> f64 {
    let n = amounts.len();
    let total: f64 = amounts.iter().sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    let mut sorted = amounts.to_vec();
    sorted.sort_by(f64::total_cmp);
    let weighted: f64 = sorted.iter().enumerate().map(|(i, x)| (i + 1) as f64 * x).sum();
    2.0 * weighted / (n as f64 * total) - (n as f64 + 1.0) / n as f64
}

/// Exposure figures of `lists` (one top-K per case) against training `counts` per item.
pub fn exposure(scorer: &str, k: usize, lists: &[Vec<u32>], counts: &[f32]) -> Exposure {
    let n = counts.len();
    let percentiles = popularity_percentiles(counts);
    let mut times = vec![0f64; n];
    let (mut slots, mut percentile_sum) = (0usize, 0f64);
    for &item in lists.iter().flatten() {
        times[item as usize] += 1.0;
        percentile_sum += percentiles[item as usize];
        slots += 1;
    }
    let distinct_items = times.iter().filter(|&&t| t > 0.0).count();
    Exposure {
        scorer: scorer.to_string(),
        k,
        users: lists.len(),
        distinct_items,
        coverage: if n == 0 { 0.0 } else { distinct_items as f64 / n as f64 },
        mean_popularity_percentile: if slots == 0 { 0.0 } else { percentile_sum / slots as f64 },
        gini: gini(&times),
    }
}

/// The interactions' own popularity profile: every training interaction's item percentile, and the
/// Gini of the counts.
pub fn interaction_profile(counts: &[f32]) -> InteractionProfile {
    let percentiles = popularity_percentiles(counts);
    let interactions: f64 = counts.iter().map(|&c| c as f64).sum();
    let weighted: f64 = counts.iter().zip(&percentiles).map(|(&c, &p)| c as f64 * p).sum();
    InteractionProfile {
        interactions: interactions as usize,
        mean_popularity_percentile: if interactions > 0.0 { weighted / interactions } else { 0.0 },
        gini: gini(&counts.iter().map(|&c| c as f64).collect::<Vec<_>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Item {
        Item {
            id: id.into(),
            title: format!("title {id}"),
            description: String::new(),
            image: None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn agreement_summary_lists_the_lowest_first_and_bins_every_value() {
        let items: Vec<Item> = ["a", "b", "c", "d"].into_iter().map(item).collect();
        let scores = AgreementScores {
            cosines: vec![(0, 0.5), (1, -0.25), (2, 0.9), (3, -0.25)],
            mismatched_mean: Some(0.02),
            beats_mismatched: Some(0.75),
        };
        let summary = summarise_agreement(&scores, &items, 2).unwrap();
        let lowest: Vec<&str> = summary.lowest.iter().map(|a| a.item.item_id.as_str()).collect();
        assert_eq!(lowest, ["b", "d"], "ties by item index");
        assert_eq!(summary.pairs, 4);
        assert!((summary.median - 0.125).abs() < 1e-6 && (summary.mean - 0.225).abs() < 1e-6, "{summary:?}");
        assert_eq!(summary.histogram.iter().sum::<usize>(), 4);
        let [from, to] = summary.histogram_range;
        assert!((from + 0.25).abs() < 1e-9 && (to - 0.9).abs() < 1e-6, "{from} {to}");
        assert_eq!((summary.histogram[0], summary.histogram[AGREEMENT_BINS - 1]), (2, 1), "ends land in end bins");
        assert_eq!(summarise_agreement(&AgreementScores::default(), &items, 2), None);
    }

    #[test]
    fn top_k_masks_history_and_breaks_ties_by_index() {
        let row = [0.5, 0.9, 0.5, f32::NAN, 0.7, 0.5];
        assert_eq!(top_k_of_row(&row, 3, &[1]), vec![4, 0, 2]);
        assert_eq!(top_k_of_row(&row, 10, &[0, 1, 2, 4, 5]), vec![3]);
        assert_eq!(top_k_of_row(&row, 0, &[]), Vec::<u32>::new());
    }

    #[test]
    fn percentiles_are_mid_ranks_with_mean_one_half() {
        let p = popularity_percentiles(&[0.0, 5.0, 5.0, 1.0]);
        assert_eq!(p, vec![0.125, 0.75, 0.75, 0.375]);
        assert!((p.iter().sum::<f64>() / 4.0 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn gini_of_equal_and_concentrated_amounts() {
        assert_eq!(gini(&[3.0, 3.0, 3.0]), 0.0);
        assert!((gini(&[0.0, 0.0, 0.0, 8.0]) - 0.75).abs() < 1e-12);
        assert_eq!(gini(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn exposure_counts_distinct_items_and_popularity() {
        let counts = [10.0, 1.0, 0.0, 0.0];
        let lists = vec![vec![0, 1], vec![0, 2]];
        let e = exposure("s", 2, &lists, &counts);
        assert_eq!((e.distinct_items, e.users), (3, 2));
        assert_eq!(e.coverage, 0.75);
        // Percentiles: item 0 → 7/8, item 1 → 5/8, item 2 → 2/8.
        assert!((e.mean_popularity_percentile - (0.875 * 2.0 + 0.625 + 0.25) / 4.0).abs() < 1e-12);
        let profile = interaction_profile(&counts);
        assert_eq!(profile.interactions, 11);
        assert!((profile.mean_popularity_percentile - (10.0 * 0.875 + 0.625) / 11.0).abs() < 1e-12);
    }
}
