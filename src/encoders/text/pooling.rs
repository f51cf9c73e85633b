//! Sentence embedding from token states: masked mean pooling, then L2 normalisation
//! (sentence-transformers' `Pooling(mean)` + `Normalize`).

use candle_core::{Result, Tensor, D};

use super::attention::Span;

/// [`masked_mean`] then [`l2_normalize`] on packed token states: `states` [tokens, H] → one row per
/// span, [spans, H] row-major (an empty span gives zeros).
pub fn mean_normalized(states: &[f32], hidden: usize, spans: &[Span]) -> Vec<f32> {
    let mut pooled = vec![0f32; spans.len() * hidden];
    for (row, span) in pooled.chunks_exact_mut(hidden).zip(spans) {
        for token in states[span.start * hidden..(span.start + span.len) * hidden].chunks_exact(hidden) {
            for (p, v) in row.iter_mut().zip(token) {
                *p += v;
            }
        }
        let count = (span.len as f32).max(1e-9);
        row.iter_mut().for_each(|p| *p /= count);
        let norm = row.iter().map(|p| p * p).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|p| *p /= norm);
    }
    pooled
}

/// Mean of the token states over the real tokens: `hidden` [b, L, H], `mask` [b, L] (1.0 for a
/// real token, 0.0 for padding) → [b, H]. The token count is clamped at 1e-9, as in
/// sentence-transformers, so an all-padding row gives zeros rather than NaN.
pub fn masked_mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.unsqueeze(D::Minus1)?; // [b, L, 1]
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // [b, H]
    let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?; // [b, 1]
    summed.broadcast_div(&counts)
}

/// Rows scaled to unit L2 norm: [b, H] → [b, H]; the norm is clamped at 1e-12 as in
/// `torch.nn.functional.normalize`, so a zero row stays zero.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norms = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
    x.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn padding_is_left_out_of_the_mean() -> Result<()> {
        let hidden = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &Device::Cpu)?;
        let mask = Tensor::new(&[[1f32, 1., 0.]], &Device::Cpu)?;
        assert_eq!(masked_mean(&hidden, &mask)?.to_vec2::<f32>()?, vec![vec![2f32, 3.]]);
        Ok(())
    }

    #[test]
    fn packed_spans_pool_like_the_masked_tensor_path() -> Result<()> {
        let states = [1f32, 2., 3., 4., 100., 100., 6., 8.];
        let spans = [Span { start: 0, len: 2 }, Span { start: 2, len: 0 }, Span { start: 3, len: 1 }];
        let pooled = mean_normalized(&states, 2, &spans);
        let hidden = Tensor::new(&[[[1f32, 2.], [3., 4.]], [[0., 0.], [0., 0.]], [[6., 8.], [0., 0.]]], &Device::Cpu)?;
        let mask = Tensor::new(&[[1f32, 1.], [0., 0.], [1., 0.]], &Device::Cpu)?;
        let want = l2_normalize(&masked_mean(&hidden, &mask)?)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(pooled, want);
        Ok(())
    }

    #[test]
    fn rows_get_unit_norm_and_zero_stays_zero() -> Result<()> {
        let x = Tensor::new(&[[3f32, 4.], [0., 0.]], &Device::Cpu)?;
        assert_eq!(l2_normalize(&x)?.to_vec2::<f32>()?, vec![vec![0.6f32, 0.8], vec![0., 0.]]);
        Ok(())
    }
}
