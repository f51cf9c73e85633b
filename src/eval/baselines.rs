//! The model-free baselines (docs/evaluation.md), as [`Scorer`]s on the same splits and metrics as the
//! model: [`Popularity`] and [`ContentKnn`] (similarity to the last item).
//!
//! The learned baselines (ID-based SASRec-CE, our model with text only, image only, without
//! pretraining) are models: they implement [`Scorer`] where they are trained.

use candle_core::{DType, Device, Tensor, D};

use super::error::EvalError;
use super::scorer::Scorer;
use crate::data::split::Split;

/// Every item scored by how often it occurs in the split's **training sequences** — never a
/// validation or test target, so the baseline cannot peek at what it is judged on. The same row
/// for every user.
///
/// Under the cold protocol the training sequences hold no new item, so new items all score 0 and
/// rank behind everything seen (ties are pessimistic): popularity cannot recommend what is new.
///
/// RecBole's `Pop` differs in three ways, all visible in its figures: it counts an item at most
/// once per training batch (`item_cnt[item] += 1` with repeated indices), it also counts the
/// uniformly sampled negatives of its point-wise training batches, and, being a general (not
/// sequential) model, it is evaluated with the user's history masked. Its counts therefore saturate
/// (every popular item appears in every batch) and its top is mostly ties, whose order is
/// `torch.topk`'s: treat its figures as a rough reference, not a target to match digit for digit.
#[derive(Debug, Clone)]
pub struct Popularity {
    counts: Vec<f32>,
}

impl Popularity {
    pub const NAME: &'static str = "popularity";

    /// Counts over `split.train` only; refuses an item index outside `0..n_items`.
    pub fn from_split(split: &Split, n_items: usize) -> Result<Self, EvalError> {
        let mut counts = vec![0u32; n_items];
        for (user, sequence) in split.train.iter().enumerate() {
            for &item in sequence {
                let count =
                    counts.get_mut(item as usize).ok_or(EvalError::TrainingItemOutOfRange { user, item, n_items })?;
                *count += 1;
            }
        }
        // f32 holds every count exactly up to 2^24 interactions per item.
        Ok(Popularity { counts: counts.into_iter().map(|c| c as f32).collect() })
    }

    /// How often each item occurs in the training sequences.
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }
}

impl Scorer for Popularity {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn score_batch(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
        let row = Tensor::from_slice(&self.counts, (1, self.counts.len()), &Device::Cpu)?;
        Ok(row.repeat((histories.len(), 1))?)
    }
}

/// One modality's frozen features for every item: `features: [n_items, d]`, and which rows are real.
#[derive(Debug, Clone, Copy)]
pub struct Modality<'a> {
    pub features: &'a Tensor,
    pub present: &'a [bool],
}

/// Item-to-item content kNN: every item scored by the cosine similarity of its content vector to
/// the content vector of the history's **last** item (the most recent one that has content: an item
/// with no vector is skipped; a history with none gives all zeros, i.e. every target ranks last).
///
/// Which vectors: the frozen encoder features — the MiniLM text embedding (384-d) and
/// the EfficientNet-Lite0 pooled image feature (1280-d) — combined by [`ContentKnn::from_modalities`]:
/// per modality, centred on the catalogue mean (the pooled image features are post-ReLU6 and all
/// positive, so raw cosines crowd near 1 around their common component) and L2-normalised; then
/// concatenated, a missing modality contributing zeros, and the whole row L2-normalised. Between two
/// items that have both modalities the score is thus the mean of the text and the image cosines. No
/// learning, no behaviour: it shows what content alone gives.
///
/// Unmasked, the last item itself scores 1 and heads the ranking (RecBole's convention does not mask
/// it); the masked figures remove it with the rest of the history.
#[derive(Debug, Clone)]
pub struct ContentKnn {
    name: String,
    /// `[n_items, d]`, each row unit length or all zeros (no content).
    vectors: Tensor,
    has_vector: Vec<bool>,
}

impl ContentKnn {
    /// From any item-vector matrix `[n_items, d]` (rows are L2-normalised here; an all-zero row
    /// means the item has no content).
    pub fn new(name: impl Into<String>, vectors: &Tensor) -> Result<Self, EvalError> {
        let vectors = vectors.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        if vectors.rank() != 2 {
            return Err(EvalError::ItemMatrixShape {
                what: "content vectors",
                n_items: vectors.dims().first().copied().unwrap_or(0),
                got: vectors.dims().to_vec(),
            });
        }
        let norms = row_norms(&vectors)?;
        let has_vector = norms.to_vec1::<f32>()?.iter().map(|&n| n > 0.0).collect();
        let vectors = vectors.broadcast_div(&norms.maximum(f32::MIN_POSITIVE)?.unsqueeze(1)?)?.contiguous()?;
        Ok(ContentKnn { name: name.into(), vectors, has_vector })
    }

    /// From frozen per-modality features (see the type's documentation for the recipe).
    pub fn from_modalities(
        name: impl Into<String>,
        n_items: usize,
        modalities: &[Modality],
    ) -> Result<Self, EvalError> {
        let parts = modalities.iter().map(|m| centred_unit_rows(m, n_items)).collect::<Result<Vec<_>, _>>()?;
        let joined = if parts.is_empty() {
            Tensor::zeros((n_items, 0), DType::F32, &Device::Cpu)?
        } else {
            Tensor::cat(&parts, 1)?
        };
        Self::new(name, &joined)
    }

    /// Index of the item whose vector is the query: the last item of `history` with content.
    fn query_item(&self, history: &[u32]) -> Option<u32> {
        history.iter().rev().copied().find(|&item| self.has_vector.get(item as usize).copied().unwrap_or(false))
    }
}

impl Scorer for ContentKnn {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_batch(&self, histories: &[&[u32]]) -> Result<Tensor, EvalError> {
        let queries: Vec<Option<u32>> = histories.iter().map(|h| self.query_item(h)).collect();
        let rows: Vec<u32> = queries.iter().map(|q| q.unwrap_or(0)).collect();
        let keep: Vec<f32> = queries.iter().map(|q| if q.is_some() { 1.0 } else { 0.0 }).collect();
        let b = histories.len();
        let rows = Tensor::from_vec(rows, b, &Device::Cpu)?;
        let keep = Tensor::from_vec(keep, (b, 1), &Device::Cpu)?;
        let query_vectors = self.vectors.index_select(&rows, 0)?.broadcast_mul(&keep)?;
        Ok(query_vectors.matmul(&self.vectors.t()?)?)
    }
}

/// `[n, d]` → `[n]` Euclidean row norms.
fn row_norms(xs: &Tensor) -> Result<Tensor, EvalError> {
    Ok(xs.sqr()?.sum(D::Minus1)?.sqrt()?)
}

/// One modality centred on the mean of its present rows, absent rows zeroed, rows L2-normalised.
fn centred_unit_rows(modality: &Modality, n_items: usize) -> Result<Tensor, EvalError> {
    let features = modality.features.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    if features.rank() != 2 || features.dim(0)? != n_items {
        return Err(EvalError::ItemMatrixShape { what: "modality features", n_items, got: features.dims().to_vec() });
    }
    if modality.present.len() != n_items {
        return Err(EvalError::PresenceLength { what: "modality features", len: modality.present.len(), n_items });
    }
    let present: Vec<f32> = modality.present.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
    let n_present = present.iter().sum::<f32>().max(1.0);
    let present = Tensor::from_vec(present, (n_items, 1), &Device::Cpu)?;
    let kept = features.broadcast_mul(&present)?;
    let mean = (kept.sum_keepdim(0)? / n_present as f64)?;
    let centred = features.broadcast_sub(&mean)?.broadcast_mul(&present)?;
    let norms = row_norms(&centred)?.maximum(f32::MIN_POSITIVE)?.unsqueeze(1)?;
    Ok(centred.broadcast_div(&norms)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::split::{Protocol, TestCase};

    fn split(train: Vec<Vec<u32>>, test: Vec<TestCase>) -> Split {
        Split { protocol: Protocol::Warm, train, validation: vec![], test, new_items: vec![] }
    }

    #[test]
    fn popularity_counts_only_training_sequences() {
        let test = vec![TestCase { user: 0, history: vec![0, 1], target: 3 }];
        let s = split(vec![vec![0, 1, 1], vec![2, 1]], test);
        let pop = Popularity::from_split(&s, 4).unwrap();
        assert_eq!(pop.counts(), &[1.0, 3.0, 1.0, 0.0]);
        let scores = pop.score_batch(&[&[0], &[]]).unwrap();
        assert_eq!(scores.to_vec2::<f32>().unwrap(), vec![vec![1.0, 3.0, 1.0, 0.0]; 2]);
    }

    #[test]
    fn popularity_refuses_unknown_items() {
        let s = split(vec![vec![0], vec![7]], vec![]);
        let err = Popularity::from_split(&s, 4).unwrap_err();
        assert!(matches!(err, EvalError::TrainingItemOutOfRange { user: 1, item: 7, n_items: 4 }), "{err}");
    }

    #[test]
    fn knn_scores_cosine_to_last_item_with_content() {
        // Item 2 has no content: a history ending in it falls back to item 1.
        let vectors = Tensor::new(&[[1f32, 0.0], [0.0, 2.0], [0.0, 0.0], [3.0, 3.0]], &Device::Cpu).unwrap();
        let knn = ContentKnn::new("knn", &vectors).unwrap();
        let scores = knn.score_batch(&[&[0], &[0, 1, 2], &[2]]).unwrap().to_vec2::<f32>().unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let expect = [[1.0, 0.0, 0.0, h], [0.0, 1.0, 0.0, h], [0.0, 0.0, 0.0, 0.0]];
        for (got, want) in scores.iter().zip(expect) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{scores:?}");
            }
        }
    }

    #[test]
    fn modalities_are_centred_normalised_and_averaged() {
        // Text: items 0 and 1 identical after centring; image missing for item 1.
        let text = Tensor::new(&[[1f32, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]], &Device::Cpu).unwrap();
        let image = Tensor::new(&[[5f32, 1.0], [9.0, 9.0], [5.0, 0.0], [5.0, -1.0]], &Device::Cpu).unwrap();
        let knn = ContentKnn::from_modalities(
            "knn",
            4,
            &[
                Modality { features: &text, present: &[true; 4] },
                Modality { features: &image, present: &[true, false, true, true] },
            ],
        )
        .unwrap();
        let s = knn.score_batch(&[&[0]]).unwrap().to_vec2::<f32>().unwrap().remove(0);
        // Image mean over present rows = (5, 0): item 0 → (0, 1), item 3 → (0, −1); item 2 → zero.
        assert!((s[0] - 1.0).abs() < 1e-6);
        assert!((s[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6, "text-only item: {s:?}");
        assert!((s[2] - (-std::f32::consts::FRAC_1_SQRT_2)).abs() < 1e-6, "{s:?}");
        assert!((s[3] - (-1.0)).abs() < 1e-6, "{s:?}");
    }
}
