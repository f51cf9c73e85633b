//! Scalar reference kernels: the definition every SIMD path (and the WebGPU shaders) is tested against.
//! They perform exactly the operations of the SIMD paths, in the same order, so the results are
//! bit-identical (module docs of `kernels` give the contract).

use half::f16;

use super::query::QuantizedQuery;
use super::topk::TopK;

/// `out[i] = (Σ_j rows[i·dim + j] · q.values[j]) as f32 · q.scale · scales[i]`, the sum exact in i32.
pub fn score_int8_quantized(rows: &[i8], scales: &[f32], dim: usize, q: &QuantizedQuery, out: &mut [f32]) {
    for ((row, &scale), out) in rows.chunks_exact(dim).zip(scales).zip(out.iter_mut()) {
        *out = int8_row_score(row, &q.values, q.scale, scale);
    }
}

#[inline(always)]
pub(crate) fn int8_row_score(row: &[i8], query: &[i16], query_scale: f32, row_scale: f32) -> f32 {
    let dot: i32 = row.iter().zip(query).map(|(&r, &q)| r as i32 * q as i32).sum();
    dot as f32 * query_scale * row_scale
}

/// Σ_j a[j]·b[j] in the fixed lane order all paths share: eight partial sums (lane l takes the products
/// j ≡ l mod 8 of the whole chunks of 8, in order), reduced as ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)),
/// then the tail products added one by one. Products and sums are separate roundings (no FMA).
#[inline(always)]
pub(crate) fn dot_lanes8(a: impl Iterator<Item = f32>, b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let whole = b.len() / 8 * 8;
    let mut tail = 0f32;
    let mut tail_started = false;
    for (j, (x, &y)) in a.zip(b).enumerate() {
        if j < whole {
            lanes[j % 8] += x * y;
        } else if tail_started {
            tail += x * y;
        } else {
            tail_started = true;
            tail = reduce_lanes8(&lanes) + x * y;
        }
    }
    if tail_started {
        tail
    } else {
        reduce_lanes8(&lanes)
    }
}

#[inline(always)]
pub(crate) fn reduce_lanes8(l: &[f32; 8]) -> f32 {
    ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]))
}

/// `out[i] = Σ_j f32(rows[i·dim + j]) · query[j]` in the lane order of [`dot_lanes8`].
pub fn score_f16(rows: &[f16], dim: usize, query: &[f32], out: &mut [f32]) {
    for (row, out) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *out = dot_lanes8(row.iter().map(|v| v.to_f32()), query);
    }
}

/// Pushes `first_index + i` with the int8 score of row i into `top`, for every row.
pub fn scan_int8_quantized(
    rows: &[i8],
    scales: &[f32],
    dim: usize,
    q: &QuantizedQuery,
    first_index: usize,
    top: &mut TopK,
) {
    for (i, (row, &scale)) in rows.chunks_exact(dim).zip(scales).enumerate() {
        let score = int8_row_score(row, &q.values, q.scale, scale);
        if score >= top.threshold() {
            top.push(first_index + i, score);
        }
    }
}

/// Pushes `first_index + i` with the f16 score of row i into `top`, for every row.
pub fn scan_f16(rows: &[f16], dim: usize, query: &[f32], first_index: usize, top: &mut TopK) {
    for (i, row) in rows.chunks_exact(dim).enumerate() {
        let score = dot_lanes8(row.iter().map(|v| v.to_f32()), query);
        if score >= top.threshold() {
            top.push(first_index + i, score);
        }
    }
}

/// `out[t·n + o] = Σ_j x[t·k + j] · w[o·k + j]` (x [t, k], w [n, k], out [t, n]) in the lane order of
/// [`dot_lanes8`].
pub fn matmul_f32(x: &[f32], t: usize, w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    for r in 0..t {
        let xr = &x[r * k..(r + 1) * k];
        for o in 0..n {
            out[r * n + o] = dot_lanes8(w[o * k..(o + 1) * k].iter().copied(), xr);
        }
    }
}
