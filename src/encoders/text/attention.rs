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
