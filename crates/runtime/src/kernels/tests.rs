//! Every dispatched kernel against the scalar reference and against f64 arithmetic, on random data with
//! awkward sizes; the top-K against a full sort.

use half::f16;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
}

fn random_f32(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| uniform(rng)).collect()
}

fn random_i8(rng: &mut ChaCha8Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.next_u32() as u8 as i8).collect()
}

fn random_scales(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| (uniform(rng) + 1.5) / 127.0).collect()
}

const DIMS: [usize; 12] = [1, 3, 7, 8, 15, 16, 17, 33, 64, 100, 128, 256];
const COUNTS: [usize; 7] = [0, 1, 2, 7, 8, 9, 37];

/// The expected top-K by sorting every (index, score) pair.
fn sorted_reference(scores: &[f32], k: usize, exclude: &[usize]) -> Vec<Hit> {
    let mut all: Vec<Hit> = scores
        .iter()
        .enumerate()
        .filter(|(i, s)| !s.is_nan() && !exclude.contains(i))
        .map(|(index, &score)| Hit { index, score })
        .collect();
    all.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap().then(a.index.cmp(&b.index)));
    all.truncate(k);
    all
}

#[test]
fn int8_scores_match_the_scalar_reference_and_the_real_product() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for dim in DIMS {
        for n in COUNTS {
            let (rows, scales, query) =
                (random_i8(&mut rng, n * dim), random_scales(&mut rng, n), random_f32(&mut rng, dim));
            let mut fast = vec![0f32; n];
            score_int8(&rows, &scales, dim, &query, &mut fast);
            let q = QuantizedQuery::new(&query);
            let mut reference = vec![0f32; n];
            scalar::score_int8_quantized(&rows, &scales, dim, &q, &mut reference);
            assert_eq!(fast, reference, "dim {dim} n {n}");
            for i in 0..n {
                let row = &rows[i * dim..(i + 1) * dim];
                let exact: f64 =
                    row.iter().zip(&query).map(|(&r, &v)| r as f64 * v as f64).sum::<f64>() * scales[i] as f64;
                let abs_row: f64 = row.iter().map(|&r| (r as f64).abs()).sum();
                let bound = scales[i] as f64 * abs_row * q.scale as f64 / 2.0 + 1e-6 * exact.abs() + 1e-12;
                assert!(
                    (fast[i] as f64 - exact).abs() <= bound,
                    "dim {dim} row {i}: {} vs {exact} (bound {bound})",
                    fast[i]
                );
            }
        }
    }
}

#[test]
fn f16_scores_match_the_scalar_reference_and_the_real_product() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for dim in DIMS {
        for n in COUNTS {
            let rows: Vec<f16> = random_f32(&mut rng, n * dim).into_iter().map(f16::from_f32).collect();
            let query = random_f32(&mut rng, dim);
            let mut fast = vec![0f32; n];
            score_f16(&rows, dim, &query, &mut fast);
            let mut reference = vec![0f32; n];
            scalar::score_f16(&rows, dim, &query, &mut reference);
            assert_eq!(fast, reference, "dim {dim} n {n}");
            for i in 0..n {
                let row = &rows[i * dim..(i + 1) * dim];
                let exact: f64 = row.iter().zip(&query).map(|(r, &v)| r.to_f64() * v as f64).sum();
                let magnitude: f64 = row.iter().zip(&query).map(|(r, &v)| (r.to_f64() * v as f64).abs()).sum();
                assert!((fast[i] as f64 - exact).abs() <= 1e-6 * dim as f64 * magnitude + 1e-30, "dim {dim} row {i}");
            }
        }
    }
}

#[test]
fn f16_conversion_is_exact_for_every_bit_pattern() {
    // Rows holding all 65536 f16 values (NaNs excepted: NaN payloads aside, a NaN score is a NaN),
    // scored against a one-hot query: each score must be the value itself (−0 sums to +0).
    let values: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).filter(|v| !v.is_nan()).collect();
    let dim = 8;
    let rows: Vec<f16> =
        values.iter().flat_map(|&v| std::iter::once(v).chain(std::iter::repeat_n(f16::ZERO, dim - 1))).collect();
    let mut query = vec![0f32; dim];
    query[0] = 1.0;
    let mut out = vec![0f32; values.len()];
    score_f16(&rows, dim, &query, &mut out);
    for (v, s) in values.iter().zip(&out) {
        assert_eq!(v.to_f32(), *s, "f16 bits {:#06x}", v.to_bits());
    }
}

#[test]
fn top_k_matches_a_full_sort_with_exclusions_ties_and_awkward_k() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for dim in [1, 16, 17, 64] {
        for n in [0, 1, 5, 9, 100, 1000] {
            // Few distinct row values, so that many scores tie exactly.
            let rows: Vec<i8> = (0..n * dim).map(|_| (rng.next_u32() % 3) as i8 - 1).collect();
            let scales = vec![0.01f32; n];
            let query = random_f32(&mut rng, dim);
            let mut scores = vec![0f32; n];
            score_int8(&rows, &scales, dim, &query, &mut scores);
            let exclude: Vec<usize> = (0..n).filter(|_| rng.next_u32() % 7 == 0).chain([n + 3, 0]).collect();
            for k in [0, 1, 3, 10, n, n + 5] {
                let expected = sorted_reference(&scores, k, &exclude);
                assert_eq!(
                    top_k_int8(&rows, &scales, dim, &query, k, &exclude),
                    expected,
                    "int8 dim {dim} n {n} k {k}"
                );
                let halves: Vec<f16> = rows.iter().map(|&r| f16::from_f32(r as f32 * 0.25)).collect();
                let mut f16_scores = vec![0f32; n];
                score_f16(&halves, dim, &query, &mut f16_scores);
                assert_eq!(top_k_f16(&halves, dim, &query, k, &exclude), sorted_reference(&f16_scores, k, &exclude));
            }
        }
    }
}

#[test]
fn top_k_is_independent_of_push_order_and_ignores_nan() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let scores: Vec<f32> =
        (0..500).map(|i| if i % 50 == 0 { f32::NAN } else { (rng.next_u32() % 20) as f32 }).collect();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.next_u32() as usize % (i + 1));
    }
    let mut top = TopK::with_excluded(17, &[3, 3, 499]);
    for &i in &order {
        top.push(i, scores[i]);
    }
    assert_eq!(top.into_sorted(), sorted_reference(&scores, 17, &[3, 499]));
}

#[test]
fn scans_over_shards_equal_one_scan() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (dim, n) = (24, 301);
    let (rows, scales, query) = (random_i8(&mut rng, n * dim), random_scales(&mut rng, n), random_f32(&mut rng, dim));
    let mut top = TopK::with_excluded(10, &[7]);
    for (s, start) in [0, 100, 250].into_iter().enumerate() {
        let end = [100, 250, n][s];
        scan_int8(&rows[start * dim..end * dim], &scales[start..end], dim, &query, start, &mut top);
    }
    assert_eq!(top.into_sorted(), top_k_int8(&rows, &scales, dim, &query, 10, &[7]));
}

#[test]
fn quantized_query_stays_in_range_and_handles_zero_and_nan() {
    for dim in [1, 64, 600, 100_000] {
        let query: Vec<f32> = (0..dim).map(|j| (j as f32 * 0.37).sin() * 3.0).collect();
        let q = QuantizedQuery::new(&query);
        let qmax = QuantizedQuery::qmax(dim);
        assert!(q.values.iter().all(|&v| (v as i32).abs() <= qmax));
        assert!(128i64 * qmax as i64 * dim as i64 <= i32::MAX as i64);
        for (v, x) in q.values.iter().zip(&query) {
            assert!((*v as f32 * q.scale - x).abs() <= q.scale * 0.5001);
        }
    }
    assert_eq!(QuantizedQuery::new(&[0.0; 4]).scale, 0.0);
    assert!(QuantizedQuery::new(&[1.0, f32::NAN]).scale.is_nan());
    assert!(top_k_int8(&[1, 2], &[1.0, 1.0], 1, &[f32::INFINITY], 5, &[]).is_empty());
}

#[test]
fn matmuls_match_the_reference_and_the_dequantized_product() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for (t, n, k) in [(1, 1, 32), (1, 7, 64), (3, 5, 96), (50, 64, 64), (17, 256, 64), (50, 64, 256)] {
        let x = random_f32(&mut rng, t * k);
        // Q8_0 blocks: f16 scale then 32 i8.
        let mut blocks = Vec::new();
        for _ in 0..n * k / QK8_0 {
            blocks.extend_from_slice(&f16::from_f32(uniform(&mut rng).abs() / 127.0).to_le_bytes());
            blocks.extend(random_i8(&mut rng, QK8_0).into_iter().map(|v| v as u8));
        }
        let mut w = vec![0f32; n * k];
        dequantize_q8_0(&blocks, &mut w);
        let mut from_blocks = vec![0f32; t * n];
        matmul_q8_0(&x, t, &blocks, n, k, &mut from_blocks);
        let mut dense = vec![0f32; t * n];
        matmul_f32(&x, t, &w, n, k, &mut dense);
        let mut reference = vec![0f32; t * n];
        scalar::matmul_f32(&x, t, &w, n, k, &mut reference);
        assert_eq!(from_blocks, reference, "t {t} n {n} k {k}");
        assert_eq!(dense, reference, "t {t} n {n} k {k}");
        for r in 0..t {
            for o in 0..n {
                let exact: f64 = (0..k).map(|j| x[r * k + j] as f64 * w[o * k + j] as f64).sum();
                let magnitude: f64 = (0..k).map(|j| (x[r * k + j] as f64 * w[o * k + j] as f64).abs()).sum();
                assert!((dense[r * n + o] as f64 - exact).abs() <= 1e-6 * k as f64 * magnitude + 1e-30);
            }
        }
        if t == 1 {
            let mut v = vec![0f32; n];
            matvec_q8_0(&blocks, n, k, &x, &mut v);
            assert_eq!(v, reference);
        }
    }
}

#[test]
fn two_pass_int8_scan_keeps_exactly_the_exact_top_k() {
    // The bundle dims take a coarse first pass that skips blocks by an upper bound; whatever the
    // query looks like, the hits must be those of the exact scores (long shards, so the top-K fills
    // and the filter works; rows over the full i8 range, -128 included).
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for dim in [64, 128, 256] {
        let n = 3001;
        let rows = random_i8(&mut rng, n * dim);
        let scales = random_scales(&mut rng, n);
        let mut queries = vec![random_f32(&mut rng, dim)];
        // One dominant value: the coarse query rounds every other one to 0.
        let mut spiky = random_f32(&mut rng, dim);
        spiky.iter_mut().for_each(|v| *v *= 0.01);
        spiky[dim / 3] = 5.0;
        queries.push(spiky);
        // Magnitudes over many octaves.
        queries.push((0..dim).map(|j| (uniform(&mut rng)) * 2f32.powi(-((j % 12) as i32))).collect());
        for query in &queries {
            let mut scores = vec![0f32; n];
            scalar::score_int8_quantized(&rows, &scales, dim, &QuantizedQuery::new(query), &mut scores);
            let exclude = [5, 77, 2999];
            for k in [1, 10, 100, 1000] {
                assert_eq!(
                    top_k_int8(&rows, &scales, dim, query, k, &exclude),
                    sorted_reference(&scores, k, &exclude),
                    "dim {dim} k {k}"
                );
            }
        }
        // Identical rows: every block reaches the threshold; ties go to the lower index.
        let same: Vec<i8> = rows[..dim].iter().copied().cycle().take(n * dim).collect();
        let ones = vec![0.5f32; n];
        let hits = top_k_int8(&same, &ones, dim, &queries[0], 10, &[0, 3]);
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![1, 2, 4, 5, 6, 7, 8, 9, 10, 11]);
    }
}

#[test]
fn the_coarse_pass_never_hides_a_row_it_underestimates() {
    // A query whose values all lose magnitude in the coarse copy, and a row aligned with it: the
    // coarse score falls short of the exact one. Row 8 (second block) beats row 0 by 0.1% exactly,
    // less than the coarse shortfall; the first pass must still let its block through.
    for dim in [64, 128, 256] {
        let query: Vec<f32> = (0..dim)
            .map(|j| if j == 0 { 1.0 } else { (1 + j % 29) as f32 + 0.4 } / if j == 0 { 1.0 } else { 31.0 } * if j % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let aligned: Vec<i8> = query.iter().map(|&v| if v > 0.0 { 127 } else { -127 }).collect();
        let n = 16;
        let mut rows = vec![0i8; n * dim];
        rows[..dim].copy_from_slice(&aligned);
        rows[8 * dim..9 * dim].copy_from_slice(&aligned);
        let mut scales = vec![1.0f32; n];
        scales[0] = 0.999;
        let hits = top_k_int8(&rows, &scales, dim, &query, 1, &[]);
        assert_eq!(hits[0].index, 8, "dim {dim}");
    }
}
