//! Row-wise kernels over row-major `[rows, width]` slices: LayerNorm (with the residual added first, as
//! BERT's post-norm layers do) and softmax.

use super::activation::exp;
use super::multiversion;

/// Sum with eight independent accumulators, so it vectorises without reassociating (the order is fixed,
/// whatever the vector width).
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let mut total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for v in tail {
        total += v;
    }
    total
}

/// Σ (v − mean)², same lane structure as [`sum`].
#[inline(always)]
fn squared_deviations(values: &[f32], mean: f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += (v - mean) * (v - mean);
        }
    }
    let mut total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for v in tail {
        total += (v - mean) * (v - mean);
    }
    total
}

/// Largest value (−∞ for an empty slice), eight lanes at a time.
#[inline(always)]
fn max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    tail.iter().copied().fold(lanes.into_iter().fold(f32::NEG_INFINITY, f32::max), f32::max)
}

multiversion! {
    /// Per row of `x` (`[rows, gamma.len()]`): `x ← LayerNorm(x + residual) · gamma + beta`, the variance
    /// biased (÷ width) as in PyTorch. `residual` has the shape of `x`, or is empty for none.
    pub(crate) fn add_layer_norm(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        debug_assert!(residual.is_empty() || residual.len() == x.len());
        for (r, row) in x.chunks_exact_mut(width).enumerate() {
            if !residual.is_empty() {
                for (v, add) in row.iter_mut().zip(&residual[r * width..(r + 1) * width]) {
                    *v += add;
                }
            }
            let mean = sum(row) / width as f32;
            let inv_std = 1.0 / (squared_deviations(row, mean) / width as f32 + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv_std * g + b;
            }
        }
    }
}

multiversion! {
    /// Softmax of each row of `x` (`[rows, width]`) in place; rows sum to 1 (max subtracted first).
    pub(crate) fn softmax_rows(x: &mut [f32], width: usize) {
        for row in x.chunks_exact_mut(width) {
            let max = max(row);
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let scale = 1.0 / sum(row);
            for v in row.iter_mut() {
                *v *= scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_of_a_row_plus_residual() {
        let mut x = vec![1.0f32, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        let residual = vec![0.0f32, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0];
        add_layer_norm(&mut x, &residual, &[1.0, 1.0, 2.0, 2.0], &[0.0, 0.0, 0.0, 1.0], 0.0);
        // Row 1: mean 2.5, variance 1.25.
        let s = 1.25f32.sqrt();
        let want = [-1.5 / s, -0.5 / s, 2.0 * 0.5 / s, 2.0 * 1.5 / s + 1.0];
        for (got, want) in x[..4].iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{x:?}");
        }
        // Row 2: constant → zero deviation; with eps 0 that is 0/0, so check a real eps instead.
        let mut y = vec![5.0f32; 4];
        add_layer_norm(&mut y, &[], &[1.0; 4], &[0.5; 4], 1e-12);
        assert_eq!(y, vec![0.5; 4]);
    }

    #[test]
    fn layer_norm_of_a_wide_row_matches_the_two_pass_formula() {
        let row: Vec<f32> = (0..384).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let mut x = row.clone();
        add_layer_norm(&mut x, &[], &vec![1.0; 384], &vec![0.0; 384], 1e-12);
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / 384.0;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 384.0;
        for (got, v) in x.iter().zip(&row) {
            let want = (*v as f64 - mean) / var.sqrt();
            assert!((*got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_ignore_minus_infinity_like_scores() {
        let mut x = vec![1.0f32, 2.0, 3.0, f32::MIN, 0.0, 0.0, 0.0, 0.0];
        softmax_rows(&mut x, 4);
        let e = [1f32.exp(), 2f32.exp(), 3f32.exp()];
        let total: f32 = e.iter().sum();
        for (got, want) in x[..3].iter().zip(e.iter().map(|v| v / total)) {
            assert!((got - want).abs() < 1e-6, "{x:?}");
        }
        assert_eq!(x[3], 0.0);
        assert_eq!(&x[4..], &[0.25; 4]);
    }

    /// Awkward sizes with values of both signs.
    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 % 1000) as f32 / 125.0 - 4.0) * if i % 3 == 0 { 1.5 } else { 0.7 }).collect()
    }

    #[test]
    fn dispatched_kernels_equal_the_forced_scalar_path_bit_for_bit() {
        for width in [1, 7, 8, 33, 384] {
            let (x, residual) = (values(3 * width), values(3 * width + 1)[1..].to_vec());
            let (gamma, beta) = (values(width + 2)[2..].to_vec(), values(width + 5)[5..].to_vec());

            let (mut got, mut want) = (x.clone(), x.clone());
            add_layer_norm(&mut got, &residual, &gamma, &beta, 1e-12);
            add_layer_norm::scalar(&mut want, &residual, &gamma, &beta, 1e-12);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );

            let (mut got, mut want) = (x.clone(), x);
            softmax_rows(&mut got, width);
            softmax_rows::scalar(&mut want, width);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
