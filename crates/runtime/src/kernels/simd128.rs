//! wasm32 `simd128` paths (compiled in when the crate is built with `+simd128`; every engine that runs
//! WebGPU-era browsers supports it). Four rows at a time; f32 accumulators are kept as two 4-lane
//! halves per row so that the eight lanes and their reduction order are those of the other paths.

use core::arch::wasm32::*;

use half::f16;

use super::query::QuantizedQuery;
use super::scalar::{dot_lanes8, int8_row_score};
use super::topk::TopK;

/// Σ_j rows[r·dim + j] · q[j] for the 4 rows at `rows` (exact i32 sums), in row order, as one vector
/// (built from lanes only for the tail of a dim that is not a multiple of 16).
#[inline(always)]
fn int8_sums4(rows: &[i8], dim: usize, q: &[i16]) -> v128 {
    assert!(rows.len() >= 4 * dim && q.len() == dim);
    let whole = dim / 16 * 16;
    let mut acc = [i32x4_splat(0); 4];
    let mut j = 0;
    while j < whole {
        // SAFETY: j + 16 ≤ dim, so the loads stay inside row r (asserted above) and inside q.
        let (q_lo, q_hi) =
            unsafe { (v128_load(q.as_ptr().add(j) as *const v128), v128_load(q.as_ptr().add(j + 8) as *const v128)) };
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = unsafe { v128_load(rows.as_ptr().add(r * dim + j) as *const v128) };
            let products = i32x4_add(
                i32x4_dot_i16x8(i16x8_extend_low_i8x16(x), q_lo),
                i32x4_dot_i16x8(i16x8_extend_high_i8x16(x), q_hi),
            );
            *acc = i32x4_add(*acc, products);
        }
        j += 16;
    }
    // Transpose-add: [a0+a1, a2+a3, b0+b1, b2+b3] etc., then the row totals.
    let ab = i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(acc[0], acc[1]), i32x4_shuffle::<1, 3, 5, 7>(acc[0], acc[1]));
    let cd = i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(acc[2], acc[3]), i32x4_shuffle::<1, 3, 5, 7>(acc[2], acc[3]));
    let totals = i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(ab, cd), i32x4_shuffle::<1, 3, 5, 7>(ab, cd));
    if whole == dim {
        return totals;
    }
    let tail = |r: usize| -> i32 {
        let row = &rows[r * dim..(r + 1) * dim];
        row[whole..].iter().zip(&q[whole..]).map(|(&a, &b)| a as i32 * b as i32).sum()
    };
    i32x4_add(totals, i32x4(tail(0), tail(1), tail(2), tail(3)))
}

#[inline(always)]
fn int8_scores4(rows: &[i8], scales: &[f32], dim: usize, q: &QuantizedQuery) -> v128 {
    let sums = f32x4_convert_i32x4(int8_sums4(rows, dim, &q.values));
    assert!(scales.len() >= 4);
    // SAFETY: four scales, asserted just above.
    let scales = unsafe { v128_load(scales.as_ptr() as *const v128) };
    f32x4_mul(f32x4_mul(sums, f32x4_splat(q.scale)), scales)
}

/// Four f16 values (the low or high half of 8 loaded as u16) to f32, exactly: the exponent and
/// mantissa shifted into place and rescaled by 2¹¹², which also makes subnormals exact; Inf/NaN get
/// the all-ones exponent; the sign is put back last.
#[inline(always)]
fn f16x4_to_f32(bits: v128) -> v128 {
    let magnitude = v128_and(bits, u32x4_splat(0x7fff));
    let shifted = u32x4_shl(magnitude, 13);
    let finite = f32x4_mul(shifted, f32x4_splat(f32::from_bits(0x7780_0000))); // 2^112
    let special = v128_or(shifted, u32x4_splat(0x7f80_0000));
    let is_special = u32x4_ge(magnitude, u32x4_splat(0x7c00));
    let value = v128_bitselect(special, finite, is_special);
    v128_or(value, u32x4_shl(v128_and(bits, u32x4_splat(0x8000)), 16))
}

/// Row totals of four (lo, hi) accumulator pairs: ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)) each.
#[inline(always)]
fn reduce4(acc: &[[v128; 2]; 4]) -> [f32; 4] {
    let s: [v128; 4] = core::array::from_fn(|r| f32x4_add(acc[r][0], acc[r][1]));
    let ab = f32x4_add(i32x4_shuffle::<0, 2, 4, 6>(s[0], s[1]), i32x4_shuffle::<1, 3, 5, 7>(s[0], s[1]));
    let cd = f32x4_add(i32x4_shuffle::<0, 2, 4, 6>(s[2], s[3]), i32x4_shuffle::<1, 3, 5, 7>(s[2], s[3]));
    let totals = f32x4_add(i32x4_shuffle::<0, 2, 4, 6>(ab, cd), i32x4_shuffle::<1, 3, 5, 7>(ab, cd));
    [
        f32x4_extract_lane::<0>(totals),
        f32x4_extract_lane::<1>(totals),
        f32x4_extract_lane::<2>(totals),
        f32x4_extract_lane::<3>(totals),
    ]
}

/// Σ_j f32(rows[r·dim + j]) · x[j] for 4 f16 rows, in the shared lane order.
#[inline(always)]
fn f16_dots4(rows: &[f16], dim: usize, x: &[f32]) -> [f32; 4] {
    let whole = dim / 8 * 8;
    let base = rows.as_ptr() as *const u16;
    let mut acc = [[f32x4_splat(0.0); 2]; 4];
    let mut j = 0;
    while j < whole {
        // SAFETY: j + 8 ≤ dim: inside row r and inside x.
        let (x_lo, x_hi) =
            unsafe { (v128_load(x.as_ptr().add(j) as *const v128), v128_load(x.as_ptr().add(j + 4) as *const v128)) };
        for (r, acc) in acc.iter_mut().enumerate() {
            let halves = unsafe { v128_load(base.add(r * dim + j) as *const v128) };
            let lo = f16x4_to_f32(u32x4_extend_low_u16x8(halves));
            let hi = f16x4_to_f32(u32x4_extend_high_u16x8(halves));
            acc[0] = f32x4_add(acc[0], f32x4_mul(lo, x_lo));
            acc[1] = f32x4_add(acc[1], f32x4_mul(hi, x_hi));
        }
        j += 8;
    }
    let mut totals = reduce4(&acc);
    for (r, total) in totals.iter_mut().enumerate() {
        for j in whole..dim {
            *total += rows[r * dim + j].to_f32() * x[j];
        }
    }
    totals
}

/// Σ_j w[r·k + j] · x[j] for 4 f32 rows, in the shared lane order.
#[inline(always)]
fn f32_dots4(w: &[f32], k: usize, x: &[f32]) -> [f32; 4] {
    let whole = k / 8 * 8;
    let mut acc = [[f32x4_splat(0.0); 2]; 4];
    let mut j = 0;
    while j < whole {
        // SAFETY: j + 8 ≤ k: inside row r and inside x.
        let (x_lo, x_hi) =
            unsafe { (v128_load(x.as_ptr().add(j) as *const v128), v128_load(x.as_ptr().add(j + 4) as *const v128)) };
        for (r, acc) in acc.iter_mut().enumerate() {
            let (lo, hi) = unsafe {
                (
                    v128_load(w.as_ptr().add(r * k + j) as *const v128),
                    v128_load(w.as_ptr().add(r * k + j + 4) as *const v128),
                )
            };
            acc[0] = f32x4_add(acc[0], f32x4_mul(lo, x_lo));
            acc[1] = f32x4_add(acc[1], f32x4_mul(hi, x_hi));
        }
        j += 8;
    }
    let mut totals = reduce4(&acc);
    for (r, total) in totals.iter_mut().enumerate() {
        for j in whole..k {
            *total += w[r * k + j] * x[j];
        }
    }
    totals
}

#[inline(always)]
fn push4(scores: v128, first: usize, top: &mut TopK) {
    if !v128_any_true(f32x4_ge(scores, f32x4_splat(top.threshold()))) {
        return;
    }
    let lanes = [
        f32x4_extract_lane::<0>(scores),
        f32x4_extract_lane::<1>(scores),
        f32x4_extract_lane::<2>(scores),
        f32x4_extract_lane::<3>(scores),
    ];
    for (lane, score) in lanes.into_iter().enumerate() {
        if score >= top.threshold() {
            top.push(first + lane, score);
        }
    }
}

pub(super) fn score_int8_quantized(rows: &[i8], scales: &[f32], dim: usize, q: &QuantizedQuery, out: &mut [f32]) {
    let n = scales.len();
    let blocks = n / 4;
    for b in 0..blocks {
        let scores = int8_scores4(&rows[b * 4 * dim..], &scales[b * 4..], dim, q);
        // SAFETY: b·4 + 4 ≤ n = out.len().
        unsafe { v128_store(out.as_mut_ptr().add(b * 4) as *mut v128, scores) };
    }
    for i in blocks * 4..n {
        out[i] = int8_row_score(&rows[i * dim..(i + 1) * dim], &q.values, q.scale, scales[i]);
    }
}

pub(super) fn scan_int8_quantized(
    rows: &[i8],
    scales: &[f32],
    dim: usize,
    q: &QuantizedQuery,
    first_index: usize,
    top: &mut TopK,
) {
    let n = scales.len();
    let blocks = n / 4;
    for b in 0..blocks {
        push4(int8_scores4(&rows[b * 4 * dim..], &scales[b * 4..], dim, q), first_index + b * 4, top);
    }
    for i in blocks * 4..n {
        let score = int8_row_score(&rows[i * dim..(i + 1) * dim], &q.values, q.scale, scales[i]);
        if score >= top.threshold() {
            top.push(first_index + i, score);
        }
    }
}

pub(super) fn score_f16(rows: &[f16], dim: usize, query: &[f32], out: &mut [f32]) {
    let n = out.len();
    let blocks = n / 4;
    for b in 0..blocks {
        out[b * 4..b * 4 + 4].copy_from_slice(&f16_dots4(&rows[b * 4 * dim..], dim, query));
    }
    for i in blocks * 4..n {
        out[i] = dot_lanes8(rows[i * dim..(i + 1) * dim].iter().map(|v| v.to_f32()), query);
    }
}

pub(super) fn scan_f16(rows: &[f16], dim: usize, query: &[f32], first_index: usize, top: &mut TopK) {
    let n = rows.len() / dim;
    let blocks = n / 4;
    for b in 0..blocks {
        let [a, b_, c, d] = f16_dots4(&rows[b * 4 * dim..], dim, query);
        push4(f32x4(a, b_, c, d), first_index + b * 4, top);
    }
    for i in blocks * 4..n {
        let score = dot_lanes8(rows[i * dim..(i + 1) * dim].iter().map(|v| v.to_f32()), query);
        if score >= top.threshold() {
            top.push(first_index + i, score);
        }
    }
}

pub(super) fn matmul_f32(x: &[f32], t: usize, w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    let blocks = n / 4;
    for r in 0..t {
        let xr = &x[r * k..(r + 1) * k];
        for b in 0..blocks {
            out[r * n + b * 4..r * n + b * 4 + 4].copy_from_slice(&f32_dots4(&w[b * 4 * k..], k, xr));
        }
        for o in blocks * 4..n {
            out[r * n + o] = dot_lanes8(w[o * k..(o + 1) * k].iter().copied(), xr);
        }
    }
}
