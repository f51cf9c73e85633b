//! Multi-head scaled dot-product attention over packed token rows, one fused task per (text, head).
//!
//! Each task reads its head's query, key and value columns in place from the fused `[tokens, 3·H]`
//! q/k/v rows, computes the scores into a scratch matrix (the key bias, if any, written there first),
//! takes the softmax in place and writes the head's output columns straight into `[tokens, H]`: no
//! head-major copies (the transpose + contiguous of the usual formulation) and no intermediate tensors.
//! Tasks run side by side on the rayon pool, each product on one thread.

use rayon::prelude::*;

use crate::encoders::kernels::matmul::{matmul, MatMut, MatRef, SharedRows, Threads};
use crate::encoders::kernels::rows::softmax_rows;

/// One text's tokens: rows `start..start + len` of the packed token matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// `qkv` [tokens, 3·hidden] (query | key | value, heads side by side in each) → `out` [tokens, hidden].
/// A token attends to the tokens of its own span; `key_bias` ([tokens], or empty for none) is added to
/// the scaled score of every query with that key (0 to keep, f32::MIN to mask out).
pub fn attention(qkv: &[f32], hidden: usize, heads: usize, spans: &[Span], key_bias: &[f32], out: &mut [f32]) {
    let head_dim = hidden / heads;
    let tokens = out.len() / hidden;
    assert!(head_dim * heads == hidden && qkv.len() == 3 * out.len(), "attention: inconsistent sizes");
    assert!(spans.iter().all(|s| s.start + s.len <= tokens), "attention: span outside the tokens");
    // Disjoint spans are what makes the output blocks below disjoint.
    assert!(spans.windows(2).all(|w| w[0].start + w[0].len <= w[1].start), "attention: spans overlap");
    assert!(key_bias.is_empty() || key_bias.len() == tokens, "attention: one key bias per token");
    let scale = 1.0 / (head_dim as f32).sqrt();
    let out = SharedRows::new(out, hidden);
    let tasks: Vec<(Span, usize)> =
        spans.iter().filter(|s| s.len > 0).flat_map(|&s| (0..heads).map(move |h| (s, h))).collect();
    tasks.par_iter().for_each_init(Vec::new, |scores: &mut Vec<f32>, &(span, head)| {
        let (rows, columns) = (span.start * 3 * hidden, head * head_dim);
        let stride = 3 * hidden;
        let query = MatRef::new(&qkv[rows + columns..], span.len, head_dim, stride);
        let key = MatRef::new(&qkv[rows + hidden + columns..], span.len, head_dim, stride);
        let value = MatRef::new(&qkv[rows + 2 * hidden + columns..], span.len, head_dim, stride);
        scores.clear();
        let bias = !key_bias.is_empty();
        if bias {
            for _ in 0..span.len {
                scores.extend_from_slice(&key_bias[span.start..span.start + span.len]);
            }
        } else {
            scores.resize(span.len * span.len, 0.0);
        }
        let score_matrix = MatMut::new(scores, span.len, span.len, span.len);
        matmul(score_matrix, query, key.t(), bias, scale, Threads::One);
        softmax_rows(scores, span.len);
        // SAFETY: tasks are distinct (span, head) pairs; spans do not overlap (rows) and heads own
        // distinct columns, so no two blocks alive at once overlap.
        let block = unsafe { out.block(span.start, columns, span.len, head_dim) };
        matmul(block, MatRef::new(scores, span.len, span.len, span.len), value, false, 1.0, Threads::One);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// softmax(q·kᵀ/√d + bias)·v per head, by candle ops, for one text of `len` tokens from `start`.
    fn reference(qkv: &Tensor, hidden: usize, heads: usize, span: Span, bias: &[f32]) -> candle_core::Result<Tensor> {
        let d = hidden / heads;
        let rows = qkv.narrow(0, span.start, span.len)?;
        let bias = Tensor::from_slice(&bias[span.start..span.start + span.len], (1, span.len), &Device::Cpu)?;
        let mut outputs = Vec::new();
        for h in 0..heads {
            let part = |which: usize| rows.narrow(1, which * hidden + h * d, d);
            let scores = (part(0)?.matmul(&part(1)?.t()?)? / (d as f64).sqrt())?.broadcast_add(&bias)?;
            outputs.push(candle_nn::ops::softmax_last_dim(&scores)?.matmul(&part(2)?)?);
        }
        Tensor::cat(&outputs, 1)
    }

    #[test]
    fn each_text_attends_within_itself_and_masked_keys_get_no_weight() -> candle_core::Result<()> {
        let (hidden, heads, tokens) = (8, 2, 7);
        let qkv = Tensor::randn(0f32, 1.0, (tokens, 3 * hidden), &Device::Cpu)?;
        let spans = [Span { start: 0, len: 3 }, Span { start: 3, len: 0 }, Span { start: 3, len: 4 }];
        let values = qkv.flatten_all()?.to_vec1::<f32>()?;
        // Unmasked, then with the last key of the second text masked out.
        for bias in [vec![0f32; tokens], vec![0., 0., 0., 0., 0., 0., f32::MIN]] {
            let mut out = vec![f32::NAN; tokens * hidden];
            attention(&values, hidden, heads, &spans, &bias, &mut out);
            for span in [spans[0], spans[2]] {
                let want = reference(&qkv, hidden, heads, span, &bias)?.flatten_all()?.to_vec1::<f32>()?;
                let got = &out[span.start * hidden..(span.start + span.len) * hidden];
                let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(diff < 1e-5, "span {span:?}: max |Δ| {diff}");
            }
        }
        // No key bias at all is the same as a zero bias.
        let (mut with_zero, mut without) = (vec![0f32; tokens * hidden], vec![0f32; tokens * hidden]);
        attention(&values, hidden, heads, &spans, &[0.0; 7], &mut with_zero);
        attention(&values, hidden, heads, &spans, &[], &mut without);
        assert_eq!(with_zero, without);
        Ok(())
    }
}
