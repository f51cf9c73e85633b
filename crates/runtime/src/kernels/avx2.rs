//! x86-64 AVX2 (+F16C) paths, chosen at run time when `super::simd_path()` is
//! [`SimdPath::Avx2`](super::cpu::SimdPath::Avx2). Eight rows at a time: one 8-lane
//! accumulator per row, reduced together by a transposing tree of horizontal adds, so that one vector
//! comparison against the top-K threshold filters eight scores. FMA is deliberately not used: the
//! scalar and wasm paths round products and sums separately, and bit-identical results on every CPU
//! matter more here than one instruction per 8 values (the scans are bound by memory anyway).
//!
//! The helpers are `#[inline(always)]` without `#[target_feature]` (Rust does not allow both) and are
//! only called from the `#[target_feature]` entry points, into which they and their intrinsics inline:
//! with `#[inline]` alone, LLVM kept an 8-row block as a call (and a `vzeroupper`) per block.

use std::arch::x86_64::*;

use half::f16;

use super::query::QuantizedQuery;
use super::scalar::{dot_lanes8, int8_row_score};
use super::topk::TopK;

#[inline(always)]
unsafe fn pairs(x: __m256i, y: __m256i) -> __m256i {
    _mm256_add_epi32(_mm256_unpacklo_epi32(x, y), _mm256_unpackhi_epi32(x, y))
}

#[inline(always)]
unsafe fn quads(x: __m256i, y: __m256i) -> __m256i {
    _mm256_add_epi32(_mm256_unpacklo_epi64(x, y), _mm256_unpackhi_epi64(x, y))
}

/// Reduces 8 i32 accumulators to their 8 totals, in row order (integer sums: any order is exact).
#[inline(always)]
unsafe fn reduce8_epi32(acc: &[__m256i; 8]) -> __m256i {
    // In-lane unpacks rather than `vphaddd` (measured slower on Zen 4):
    // [a0+a2 b0+b2 a1+a3 b1+b3 | a4+a6 ...], then [a0..3 b0..3 c0..3 d0..3 | a4..7 ...], then halves.
    let abcd = quads(pairs(acc[0], acc[1]), pairs(acc[2], acc[3]));
    let efgh = quads(pairs(acc[4], acc[5]), pairs(acc[6], acc[7]));
    _mm256_add_epi32(_mm256_permute2x128_si256(abcd, efgh, 0x20), _mm256_permute2x128_si256(abcd, efgh, 0x31))
}

/// Σ_j rows[r·dim + j] · q[j] for the 8 rows r at `rows` (exact i32 sums), in row order; any dim.
#[inline(always)]
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
    let mut sums = reduce8_epi32(&acc);
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

/// The same for rows of exactly `CHUNKS · 16` values at `rows`, the query already in registers: every
/// address a constant offset, no loop (the bundle's dims, 64 to 256, take this path).
/// (Sign-extending half the bytes by shifts instead of `vpmovsxbw` measured no faster on Zen 4.)
#[inline(always)]
unsafe fn int8_sums8_fixed<const CHUNKS: usize>(rows: *const i8, q: &[__m256i; CHUNKS]) -> __m256i {
    let dim = CHUNKS * 16;
    let mut acc = [_mm256_setzero_si256(); 8];
    for (c, qv) in q.iter().enumerate() {
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(rows.add(r * dim + c * 16) as *const __m128i));
            *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, *qv));
        }
    }
    reduce8_epi32(&acc)
}

/// A coarse copy of the query for the first pass of [`scan_int8_fixed`]: 5-bit values (|v| ≤ 31) as
/// i8, so that `vpmaddubsw` multiplies 32 row bytes at once (rows offset to unsigned: (row + 128)
/// · v ≤ 255 · 31, so that two `vpmaddubsw` pair sums still add up within an i16 and one `vpmaddwd`
/// widens 64 products), and a bound on how far a coarse score can be from the exact one.
/// (Measured at d = 64, 100k rows: exact pass alone 1.43 ns/item; coarse 6-bit values with one
/// `vpmaddwd` per 32 bytes 1.27; 5-bit 1.23; with the unpack reduction 1.15. About 1.6% of the blocks
/// of random rows need the exact pass once the top-10 is full.)
const COARSE_MAX: f64 = 31.0;

struct CoarseQuery<const PAIRS: usize> {
    values: [__m256i; PAIRS],
    /// 128 · Σ values: the offset the unsigned rows add.
    offset: __m256i,
    scale: __m256,
    /// |exact − coarse| ≤ row_scale · margin for every row (f32 roundings included, with room).
    margin: __m256,
}

impl<const PAIRS: usize> CoarseQuery<PAIRS> {
    /// None when the query has no finite nonzero scale (the exact pass alone handles those).
    #[inline(always)]
    unsafe fn new(q: &QuantizedQuery) -> Option<Self> {
        let dim = PAIRS * 32;
        assert!(q.values.len() == dim && PAIRS % 2 == 0);
        let max16 = q.values.iter().map(|v| (*v as i32).abs()).max().unwrap_or(0);
        if !(q.scale.is_finite() && q.scale > 0.0) || max16 == 0 {
            return None;
        }
        let ratio = COARSE_MAX / max16 as f64;
        let coarse: Vec<i8> = q.values.iter().map(|&v| (v as f64 * ratio).round() as i8).collect();
        let coarse_scale = q.scale as f64 / ratio;
        // Largest gap between a value of the exact and of the coarse query, times Σ|row| ≤ 128 · dim;
        // plus 1e-6 of the largest possible score for the f32 roundings of both scores.
        let gap = q
            .values
            .iter()
            .zip(&coarse)
            .map(|(&e, &c)| (e as f64 * q.scale as f64 - c as f64 * coarse_scale).abs())
            .fold(0.0, f64::max);
        let largest = max16 as f64 * q.scale as f64;
        let margin = 128.0 * dim as f64 * (gap + 1e-6 * largest) * 1.001;
        let mut values = [_mm256_setzero_si256(); PAIRS];
        for (p, v) in values.iter_mut().enumerate() {
            *v = _mm256_loadu_si256(coarse.as_ptr().add(p * 32) as *const __m256i);
        }
        let offset = 128 * coarse.iter().map(|&v| v as i32).sum::<i32>();
        Some(CoarseQuery {
            values,
            offset: _mm256_set1_epi32(offset),
            scale: _mm256_set1_ps(coarse_scale as f32),
            margin: _mm256_set1_ps(margin as f32),
        })
    }

    /// Upper bounds of the exact scores of the 8 rows at `rows` (`PAIRS · 32` values each).
    #[inline(always)]
    unsafe fn upper_bounds8(&self, rows: *const i8, scales: __m256) -> __m256 {
        let dim = PAIRS * 32;
        let flip = _mm256_set1_epi8(-128);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_si256(); 8];
        for p in (0..PAIRS).step_by(2) {
            for (r, acc) in acc.iter_mut().enumerate() {
                let at = rows.add(r * dim + p * 32);
                let first = _mm256_xor_si256(_mm256_loadu_si256(at as *const __m256i), flip);
                let second = _mm256_xor_si256(_mm256_loadu_si256(at.add(32) as *const __m256i), flip);
                let pairs = _mm256_add_epi16(
                    _mm256_maddubs_epi16(first, self.values[p]),
                    _mm256_maddubs_epi16(second, self.values[p + 1]),
                );
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, ones));
            }
        }
        let sums = _mm256_sub_epi32(reduce8_epi32(&acc), self.offset);
        let coarse = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums), self.scale), scales);
        _mm256_add_ps(coarse, _mm256_mul_ps(scales, self.margin))
    }
}

/// Scores from 8 sums: `(sum as f32 · q.scale) · scale`, as the scalar path.
#[inline(always)]
unsafe fn int8_scores8_from(sums: __m256i, query_scale: __m256, scales: *const f32) -> __m256 {
    _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums), query_scale), _mm256_loadu_ps(scales))
}

/// Scores of 8 int8 rows of any dim.
#[inline(always)]
unsafe fn int8_scores8(rows: &[i8], scales: &[f32], dim: usize, q: &QuantizedQuery) -> __m256 {
    int8_scores8_from(int8_sums8(rows, dim, &q.values), _mm256_set1_ps(q.scale), scales.as_ptr())
}

/// The query as CHUNKS vectors of 16 i16.
#[inline(always)]
unsafe fn query_registers<const CHUNKS: usize>(q: &QuantizedQuery) -> [__m256i; CHUNKS] {
    assert_eq!(q.values.len(), CHUNKS * 16);
    let mut registers = [_mm256_setzero_si256(); CHUNKS];
    for (c, register) in registers.iter_mut().enumerate() {
        *register = _mm256_loadu_si256(q.values.as_ptr().add(c * 16) as *const __m256i);
    }
    registers
}

/// [`scan_int8_quantized`] for dim = CHUNKS · 16 = PAIRS · 32, in two passes per block of 8 rows: a
/// coarse one ([`CoarseQuery`]: 8 instead of 12 vector operations per 64 values) bounds the scores
/// from above, and only a block where a bound reaches the top-K threshold is scored exactly (rarely,
/// once the top-K is full). The bound is rigorous, so the hits are exactly those of the exact pass.
#[target_feature(enable = "avx2")]
unsafe fn scan_int8_fixed<const CHUNKS: usize, const PAIRS: usize>(
    rows: &[i8],
    scales: &[f32],
    q: &QuantizedQuery,
    first_index: usize,
    top: &mut TopK,
) {
    let dim = CHUNKS * 16;
    let n = scales.len();
    assert!(rows.len() == n * dim && PAIRS * 2 == CHUNKS);
    let query = query_registers::<CHUNKS>(q);
    let coarse = CoarseQuery::<PAIRS>::new(q);
    let query_scale = _mm256_set1_ps(q.scale);
    // The threshold only moves when a hit is pushed.
    let mut threshold = _mm256_set1_ps(top.threshold());
    for b in 0..n / 8 {
        let block = rows.as_ptr().add(b * 8 * dim);
        let block_scales = scales.as_ptr().add(b * 8);
        if let Some(coarse) = &coarse {
            let bounds = coarse.upper_bounds8(block, _mm256_loadu_ps(block_scales));
            if _mm256_movemask_ps(_mm256_cmp_ps(bounds, threshold, _CMP_GE_OQ)) == 0 {
                continue;
            }
        }
        let scores = int8_scores8_from(int8_sums8_fixed::<CHUNKS>(block, &query), query_scale, block_scales);
        let mask = _mm256_movemask_ps(_mm256_cmp_ps(scores, threshold, _CMP_GE_OQ));
        if mask != 0 {
            push_lanes(scores, mask, first_index + b * 8, top);
            threshold = _mm256_set1_ps(top.threshold());
        }
    }
    for i in n / 8 * 8..n {
        let score = int8_row_score(&rows[i * dim..(i + 1) * dim], &q.values, q.scale, scales[i]);
        if score >= top.threshold() {
            top.push(first_index + i, score);
        }
    }
}

/// [`score_int8_quantized`] for dim = CHUNKS · 16.
#[target_feature(enable = "avx2")]
unsafe fn score_int8_fixed<const CHUNKS: usize>(rows: &[i8], scales: &[f32], q: &QuantizedQuery, out: &mut [f32]) {
    let dim = CHUNKS * 16;
    let n = scales.len();
    assert!(rows.len() == n * dim && out.len() == n);
    let query = query_registers::<CHUNKS>(q);
    let query_scale = _mm256_set1_ps(q.scale);
    for b in 0..n / 8 {
        let sums = int8_sums8_fixed::<CHUNKS>(rows.as_ptr().add(b * 8 * dim), &query);
        _mm256_storeu_ps(out.as_mut_ptr().add(b * 8), int8_scores8_from(sums, query_scale, scales.as_ptr().add(b * 8)));
    }
    for i in n / 8 * 8..n {
        out[i] = int8_row_score(&rows[i * dim..(i + 1) * dim], &q.values, q.scale, scales[i]);
    }
}

/// Reduces 8 eight-lane accumulators to their 8 totals, each as ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)).
#[inline(always)]
unsafe fn reduce8_ps(acc: &[__m256; 8]) -> __m256 {
    let (ab, cd, ef, gh) =
        (halves(acc[0], acc[1]), halves(acc[2], acc[3]), halves(acc[4], acc[5]), halves(acc[6], acc[7]));
    // [a01 a23 c01 c23 | b01 b23 d01 d23], then [a c e g | b d f h].
    let abcd = _mm256_hadd_ps(ab, cd);
    let efgh = _mm256_hadd_ps(ef, gh);
    let totals = _mm256_hadd_ps(abcd, efgh);
    _mm256_permutevar8x32_ps(totals, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// For a pair of accumulators: [a.lo + a.hi, b.lo + b.hi] = [a: l0+l4 .. l3+l7, b: l0+l4 .. l3+l7].
#[inline(always)]
unsafe fn halves(a: __m256, b: __m256) -> __m256 {
    _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31))
}

/// Adds the products of the last `dim % 8` columns of 8 rows one by one, as the scalar path does.
#[inline(always)]
unsafe fn add_tails8(totals: __m256, dim: usize, row_value: impl Fn(usize, usize) -> f32, x: &[f32]) -> __m256 {
    let whole = dim / 8 * 8;
    if whole == dim {
        return totals;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), totals);
    for (r, lane) in lanes.iter_mut().enumerate() {
        for (j, &xj) in x.iter().enumerate().take(dim).skip(whole) {
            *lane += row_value(r, j) * xj;
        }
    }
    _mm256_loadu_ps(lanes.as_ptr())
}

/// Σ_j f32(rows[r·dim + j]) · x[j] for the 8 f16 rows at `rows`, in the shared lane order.
#[inline(always)]
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
#[inline(always)]
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

/// Offers the scores of the lanes set in `mask` (rows `first + lane`) to `top`.
#[inline(always)]
unsafe fn push_lanes(scores: __m256, mut mask: i32, first: usize, top: &mut TopK) {
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

/// Offers the 8 scores of rows `first..first + 8` to `top`, after one vector comparison.
#[inline(always)]
unsafe fn push8(scores: __m256, first: usize, top: &mut TopK) {
    let mask = _mm256_movemask_ps(_mm256_cmp_ps(scores, _mm256_set1_ps(top.threshold()), _CMP_GE_OQ));
    if mask != 0 {
        push_lanes(scores, mask, first, top);
    }
}

/// See [`super::scalar::score_int8_quantized`]. Safety: the CPU has AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn score_int8_quantized(
    rows: &[i8],
    scales: &[f32],
    dim: usize,
    q: &QuantizedQuery,
    out: &mut [f32],
) {
    match dim {
        64 => return score_int8_fixed::<4>(rows, scales, q, out),
        128 => return score_int8_fixed::<8>(rows, scales, q, out),
        256 => return score_int8_fixed::<16>(rows, scales, q, out),
        _ => {}
    }
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
pub(super) unsafe fn scan_int8_quantized(
    rows: &[i8],
    scales: &[f32],
    dim: usize,
    q: &QuantizedQuery,
    first_index: usize,
    top: &mut TopK,
) {
    match dim {
        64 => return scan_int8_fixed::<4, 2>(rows, scales, q, first_index, top),
        128 => return scan_int8_fixed::<8, 4>(rows, scales, q, first_index, top),
        256 => return scan_int8_fixed::<16, 8>(rows, scales, q, first_index, top),
        _ => {}
    }
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
