//! x86-64 AVX2 (+F16C) paths, chosen at run time ([`available`]). Eight rows at a time: one 8-lane
//! accumulator per row, reduced together by a transposing tree of horizontal adds, so that one vector
//! comparison against the top-K threshold filters eight scores. FMA is deliberately not used: the
//! scalar and wasm paths round products and sums separately, and bit-identical results on every CPU
//! matter more here than one instruction per 8 values (the scans are bound by memory anyway).

use std::arch::x86_64::*;

use half::f16;

use super::query::QuantizedQuery;
use super::scalar::{dot_lanes8, int8_row_score};
use super::topk::TopK;

/// Whether this CPU has AVX2 and F16C (std caches the answer).
#[inline]
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
}

/// Σ_j rows[r·dim + j] · q[j] for the 8 rows r at `rows` (exact i32 sums), in row order.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn int8_sums8(rows: &[i8], dim: usize, q: &[i16]) -> __m256i {
    debug_assert!(rows.len() >= 8 * dim && q.len() == dim);
    let whole = dim / 16 * 16;
    let base = rows.as_ptr();
    let mut acc = [_mm256_setzero_si256(); 8];
    let mut j = 0;
    while j < whole {
        let qv = _mm256_loadu_si256(q.as_ptr().add(j) as *const __m256i);
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(base.add(r * dim + j) as *const __m128i));
            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, qv));
        }
        j += 16;
    }
    // [a01 a23 b01 b23 | a45 a67 b45 b67] → [a b c d | a' b' c' d'] → lanes added across halves.
    let s01 = _mm256_hadd_epi32(acc[0], acc[1]);
    let s23 = _mm256_hadd_epi32(acc[2], acc[3]);
    let s45 = _mm256_hadd_epi32(acc[4], acc[5]);
    let s67 = _mm256_hadd_epi32(acc[6], acc[7]);
    let t0 = _mm256_hadd_epi32(s01, s23);
    let t1 = _mm256_hadd_epi32(s45, s67);
    let mut sums = _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
    if whole < dim {
        let mut lanes = [0i32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, sums);
        for (r, lane) in lanes.iter_mut().enumerate() {
            let row = &rows[r * dim..(r + 1) * dim];
            *lane += row[whole..].iter().zip(&q[whole..]).map(|(&a, &b)| a as i32 * b as i32).sum::<i32>();
        }
        sums = _mm256_loadu_si256(lanes.as_ptr() as *const __m256i);
    }
    sums
}

/// Scores of 8 int8 rows: `(sum as f32 · q.scale) · scale`, as the scalar path.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn int8_scores8(rows: &[i8], scales: &[f32], dim: usize, q: &QuantizedQuery) -> __m256 {
    let sums = _mm256_cvtepi32_ps(int8_sums8(rows, dim, &q.values));
    _mm256_mul_ps(_mm256_mul_ps(sums, _mm256_set1_ps(q.scale)), _mm256_loadu_ps(scales.as_ptr()))
}

/// Reduces 8 eight-lane accumulators to their 8 totals, each as ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn reduce8_ps(acc: &[__m256; 8]) -> __m256 {
    let (ab, cd, ef, gh) = (halves(acc[0], acc[1]), halves(acc[2], acc[3]), halves(acc[4], acc[5]), halves(acc[6], acc[7]));
    // [a01 a23 c01 c23 | b01 b23 d01 d23], then [a c e g | b d f h].
    let abcd = _mm256_hadd_ps(ab, cd);
    let efgh = _mm256_hadd_ps(ef, gh);
    let totals = _mm256_hadd_ps(abcd, efgh);
    _mm256_permutevar8x32_ps(totals, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// For a pair of accumulators: [a.lo + a.hi, b.lo + b.hi] = [a: l0+l4 .. l3+l7, b: l0+l4 .. l3+l7].
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn halves(a: __m256, b: __m256) -> __m256 {
    _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31))
}

/// Adds the products of the last `dim % 8` columns of 8 rows one by one, as the scalar path does.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn add_tails8(totals: __m256, dim: usize, row_value: impl Fn(usize, usize) -> f32, x: &[f32]) -> __m256 {
    let whole = dim / 8 * 8;
    if whole == dim {
        return totals;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), totals);
    for (r, lane) in lanes.iter_mut().enumerate() {
        for j in whole..dim {
            *lane += row_value(r, j) * x[j];
        }
    }
    _mm256_loadu_ps(lanes.as_ptr())
}

/// Σ_j f32(rows[r·dim + j]) · x[j] for the 8 f16 rows at `rows`, in the shared lane order.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_dots8(rows: &[f16], dim: usize, x: &[f32]) -> __m256 {
    debug_assert!(rows.len() >= 8 * dim && x.len() == dim);
    let whole = dim / 8 * 8;
    let base = rows.as_ptr() as *const u16;
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut j = 0;
    while j < whole {
        let xv = _mm256_loadu_ps(x.as_ptr().add(j));
        for (r, acc) in acc.iter_mut().enumerate() {
            let v = _mm256_cvtph_ps(_mm_loadu_si128(base.add(r * dim + j) as *const __m128i));
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(v, xv));
        }
        j += 8;
    }
    add_tails8(reduce8_ps(&acc), dim, |r, j| rows[r * dim + j].to_f32(), x)
}

/// Σ_j w[r·k + j] · x[j] for the 8 f32 rows at `w`, in the shared lane order.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn f32_dots8(w: &[f32], k: usize, x: &[f32]) -> __m256 {
    debug_assert!(w.len() >= 8 * k && x.len() == k);
    let whole = k / 8 * 8;
    let base = w.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut j = 0;
    while j < whole {
        let xv = _mm256_loadu_ps(x.as_ptr().add(j));
        for (r, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(_mm256_loadu_ps(base.add(r * k + j)), xv));
        }
        j += 8;
    }
    add_tails8(reduce8_ps(&acc), k, |r, j| w[r * k + j], x)
}

/// Offers the 8 scores of rows `first..first + 8` to `top`, after one vector comparison.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn push8(scores: __m256, first: usize, top: &mut TopK) {
    let mut mask = _mm256_movemask_ps(_mm256_cmp_ps(scores, _mm256_set1_ps(top.threshold()), _CMP_GE_OQ));
    if mask == 0 {
        return;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), scores);
    while mask != 0 {
        let lane = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        if lanes[lane] >= top.threshold() {
            top.push(first + lane, lanes[lane]);
        }
    }
}

/// See [`super::scalar::score_int8_quantized`]. Safety: the CPU has AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn score_int8_quantized(rows: &[i8], scales: &[f32], dim: usize, q: &QuantizedQuery, out: &mut [f32]) {
    let n = scales.len();
    let blocks = n / 8;
    for b in 0..blocks {
        let scores = int8_scores8(&rows[b * 8 * dim..], &scales[b * 8..], dim, q);
        _mm256_storeu_ps(out.as_mut_ptr().add(b * 8), scores);
    }
    for i in blocks * 8..n {
        out[i] = int8_row_score(&rows[i * dim..(i + 1) * dim], &q.values, q.scale, scales[i]);
    }
}

/// See [`super::scalar::scan_int8_quantized`]. Safety: the CPU has AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn scan_int8_quantized(rows: &[i8], scales: &[f32], dim: usize, q: &QuantizedQuery, first_index: usize, top: &mut TopK) {
    let n = scales.len();
    let blocks = n / 8;
    for b in 0..blocks {
        let scores = int8_scores8(&rows[b * 8 * dim..], &scales[b * 8..], dim, q);
        push8(scores, first_index + b * 8, top);
    }
    for i in blocks * 8..n {
        let score = int8_row_score(&rows[i * dim..(i + 1) * dim], &q.values, q.scale, scales[i]);
        if score >= top.threshold() {
            top.push(first_index + i, score);
        }
    }
}

/// See [`super::scalar::score_f16`]. Safety: the CPU has AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn score_f16(rows: &[f16], dim: usize, query: &[f32], out: &mut [f32]) {
    let n = out.len();
    let blocks = n / 8;
    for b in 0..blocks {
        _mm256_storeu_ps(out.as_mut_ptr().add(b * 8), f16_dots8(&rows[b * 8 * dim..], dim, query));
    }
    for i in blocks * 8..n {
        out[i] = dot_lanes8(rows[i * dim..(i + 1) * dim].iter().map(|v| v.to_f32()), query);
    }
}

/// See [`super::scalar::scan_f16`]. Safety: the CPU has AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn scan_f16(rows: &[f16], dim: usize, query: &[f32], first_index: usize, top: &mut TopK) {
    let n = rows.len() / dim;
    let blocks = n / 8;
    for b in 0..blocks {
        push8(f16_dots8(&rows[b * 8 * dim..], dim, query), first_index + b * 8, top);
    }
    for i in blocks * 8..n {
        let score = dot_lanes8(rows[i * dim..(i + 1) * dim].iter().map(|v| v.to_f32()), query);
        if score >= top.threshold() {
            top.push(first_index + i, score);
        }
    }
}

/// See [`super::scalar::matmul_f32`]. Safety: the CPU has AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn matmul_f32(x: &[f32], t: usize, w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    let blocks = n / 8;
    for r in 0..t {
        let xr = &x[r * k..(r + 1) * k];
        for b in 0..blocks {
            _mm256_storeu_ps(out.as_mut_ptr().add(r * n + b * 8), f32_dots8(&w[b * 8 * k..], k, xr));
        }
        for o in blocks * 8..n {
            out[r * n + o] = dot_lanes8(w[o * k..(o + 1) * k].iter().copied(), xr);
        }
    }
}
