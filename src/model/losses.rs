//! Losses and scoring: symmetric InfoNCE (pretraining), full-softmax next-item cross-entropy
//! (training), and MMSRec's four item-level pretraining terms combined.

use candle_core::{DType, Tensor, D};

use super::batch::NextItemBatch;
use super::error::{expect_dims, ModelError};
use super::sequence_tower::real_positions;
use omakase_runtime::config::PretrainWeights;

/// How a query vector scores an item vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// Cosine similarity divided by a temperature (our model: ARCHITECTURE.md § Model).
    Cosine { temperature: f64 },
    /// Plain dot product (ID-based SASRec-CE).
    Dot,
}

impl Scoring {
    /// `queries: [m, d]`, `items: [n, d]` → logits `[m, n]`.
    pub fn scores(&self, queries: &Tensor, items: &Tensor) -> Result<Tensor, ModelError> {
        expect_dims("queries", queries, &[None, Some(items.dim(D::Minus1)?)])?;
        Ok(match *self {
            Scoring::Cosine { temperature } => {
                (l2_normalize(queries)?.matmul(&l2_normalize(items)?.t()?)? / temperature)?
            }
            Scoring::Dot => queries.matmul(&items.t()?)?,
        })
    }
}

/// Rows scaled to unit length: `[m, d]` → `[m, d]` (a zero row stays zero, without NaN).
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor, ModelError> {
    let norm = (xs.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    Ok(xs.broadcast_div(&norm)?)
}

/// Symmetric InfoNCE between two views `a`, `b: [n, d]` whose row `i` is the same item: the mean of
/// the cross-entropies a→b and b→a over cosine / `temperature`, the other rows being negatives.
/// Scalar; `ln n`-ish for unrelated views, near 0 for identical distinct views at low temperature.
pub fn symmetric_info_nce(a: &Tensor, b: &Tensor, temperature: f64) -> Result<Tensor, ModelError> {
    let n = a.dim(0)?;
    expect_dims("InfoNCE second view", b, &[Some(n), Some(a.dim(D::Minus1)?)])?;
    let logits = Scoring::Cosine { temperature }.scores(a, b)?;
    let diagonal = Tensor::arange(0u32, n as u32, a.device())?;
    let a_to_b = candle_nn::loss::cross_entropy(&logits, &diagonal)?;
    let b_to_a = candle_nn::loss::cross_entropy(&logits.t()?, &diagonal)?;
    Ok(((a_to_b + b_to_a)? * 0.5)?)
}

/// Mean cross-entropy of the next item over the *whole* catalogue at every real position of the
/// batch (padded positions are left out). `states: [b, t, d]` from the sequence tower,
/// `items: [n_items, d]`. Scalar.
pub fn next_item_loss(
    states: &Tensor,
    batch: &NextItemBatch,
    items: &Tensor,
    scoring: Scoring,
) -> Result<Tensor, ModelError> {
    let queries = real_positions(states, batch.inputs().lengths())?;
    let logits = scoring.scores(&queries, items)?;
    let targets = batch.real_targets()?.to_dtype(DType::U32)?;
    Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
}

/// The item tower's four MMSRec views of the same `m` items (all with text and image), `[m, d]`.
#[derive(Debug, Clone)]
pub struct PretrainingViews {
    pub text_only: Tensor,
    pub image_only: Tensor,
    pub fused: Tensor,
    /// A second image+text pass: differs from `fused` only by its dropout masks.
    pub fused_again: Tensor,
}

/// Each pretraining term and their weighted mean (the value to minimise).
#[derive(Debug, Clone)]
pub struct PretrainingLoss {
    pub total: Tensor,
    pub image_text: Tensor,
    pub fused_text: Tensor,
    pub fused_image: Tensor,
    pub fused_fused: Tensor,
}

/// MMSRec's item-level pretraining, adapted to catalogues without behaviour: four
/// symmetric InfoNCE terms at `temperature` (≈ 0.05), all pulling views of one item together and
/// pushing the batch's other items apart:
///
/// 1. `image_text`: image-only ↔ text-only — puts a product's picture and words in one space, so
///    an item with one modality lands near where it would with both;
/// 2. `fused_text`: image+text ↔ text-only;
/// 3. `fused_image`: image+text ↔ image-only — 2 and 3 make the fused vector agree with either
///    single-modality vector (the dropout views of a modality);
/// 4. `fused_fused`: image+text ↔ image+text with other dropout masks (SimCSE-style), keeping the
///    fused vectors spread out and robust to dropout.
///
/// `total = Σ wᵢ·termᵢ / Σ wᵢ`. (MMSRec applies its terms to modality-dropped *sequences*; on a
/// catalogue alone the item is the unit.)
pub fn pretraining_loss(
    views: &PretrainingViews,
    weights: &PretrainWeights,
    temperature: f64,
) -> Result<PretrainingLoss, ModelError> {
    let image_text = symmetric_info_nce(&views.image_only, &views.text_only, temperature)?;
    let fused_text = symmetric_info_nce(&views.fused, &views.text_only, temperature)?;
    let fused_image = symmetric_info_nce(&views.fused, &views.image_only, temperature)?;
    let fused_fused = symmetric_info_nce(&views.fused, &views.fused_again, temperature)?;
    let weighted = [
        (&image_text, weights.image_text),
        (&fused_text, weights.fused_text),
        (&fused_image, weights.fused_image),
        (&fused_fused, weights.fused_fused),
    ];
    let weight_sum: f64 = weighted.iter().map(|(_, w)| w).sum();
    let mut total = image_text.zeros_like()?;
    for (term, weight) in weighted {
        total = (total + (term * (weight / weight_sum))?)?;
    }
    Ok(PretrainingLoss { total, image_text, fused_text, fused_image, fused_fused })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn scalar(t: &Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn info_nce_is_near_zero_on_identical_views_and_large_on_shuffled_ones() {
        let dev = Device::Cpu;
        let a = Tensor::randn(0f32, 1.0, (32, 64), &dev).unwrap();
        let identical = scalar(&symmetric_info_nce(&a, &a, 0.05).unwrap());
        assert!(identical < 1e-3, "identical views: {identical}");
        let shuffle: Vec<u32> = (0..32).map(|i| (i * 7 + 3) % 32).collect();
        let shuffled = a.index_select(&Tensor::new(shuffle.as_slice(), &dev).unwrap(), 0).unwrap();
        let mismatched = scalar(&symmetric_info_nce(&a, &shuffled, 0.05).unwrap());
        assert!(mismatched > 5.0, "shuffled views: {mismatched}");
    }

    #[test]
    fn cosine_scores_ignore_length_and_divide_by_temperature() {
        let dev = Device::Cpu;
        let q = Tensor::new(&[[3f32, 0.0]], &dev).unwrap();
        let items = Tensor::new(&[[1f32, 0.0], [0.0, 5.0], [-2.0, 0.0]], &dev).unwrap();
        let s = Scoring::Cosine { temperature: 0.5 }.scores(&q, &items).unwrap().to_vec2::<f32>().unwrap();
        assert!((s[0][0] - 2.0).abs() < 1e-5 && s[0][1].abs() < 1e-5 && (s[0][2] + 2.0).abs() < 1e-5, "{s:?}");
        let dot = Scoring::Dot.scores(&q, &items).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(dot, vec![vec![3.0, 0.0, -6.0]]);
    }

    #[test]
    fn next_item_loss_ignores_padded_positions() {
        let dev = Device::Cpu;
        let items = Tensor::randn(0f32, 1.0, (6, 8), &dev).unwrap();
        let batch = NextItemBatch::new(&[&[0, 1, 2], &[3, 4]], 5, 6, &dev).unwrap();
        let states = Tensor::randn(0f32, 1.0, (2, 2, 8), &dev).unwrap();
        let scoring = Scoring::Cosine { temperature: 0.1 };
        let loss = scalar(&next_item_loss(&states, &batch, &items, scoring).unwrap());
        // Changing the padded position (row 1, position 1) must not change the loss.
        let mut values = states.to_vec3::<f32>().unwrap();
        values[1][1] = vec![100.0; 8];
        let changed = Tensor::new(values, &dev).unwrap();
        let again = scalar(&next_item_loss(&changed, &batch, &items, scoring).unwrap());
        assert_eq!(loss, again);
        // And it equals the plain mean over the three real positions.
        let queries =
            Tensor::cat(&[states.get(0).unwrap(), states.get(1).unwrap().narrow(0, 0, 1).unwrap()], 0).unwrap();
        let logits = scoring.scores(&queries, &items).unwrap();
        let expected = candle_nn::loss::cross_entropy(&logits, &Tensor::new(&[1u32, 2, 4], &dev).unwrap()).unwrap();
        assert!((loss - scalar(&expected)).abs() < 1e-6);
    }
}
