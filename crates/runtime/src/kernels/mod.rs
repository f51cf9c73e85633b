//! CPU kernels of the inference runtime: scoring every item embedding against the session vector
//! (int8 rows with a per-row scale, or f16 rows), a streaming top-K, and the sequence tower's small
//! products (f32 or GGML Q8_0 weights).
//!
//! # Paths
//! Each kernel has a scalar reference ([`scalar`]), an x86-64 AVX2 (+F16C) path chosen at run time,
//! and a wasm32 `simd128` path compiled in when the crate is built with `+simd128`
//! (`.cargo/config.toml`).
//!
//! The dispatch convention, shared with the encoders' kernels (`omakase::encoders::kernels`), which
//! follow it with the same detection ([`cpu`]):
//! - the CPU is asked once ([`cpu::features`]) and the family's path is fixed once: [`simd_path`],
//!   cached; [`path`] is its name;
//! - every dispatched kernel `f` matches on [`simd_path`] (the `dispatch!` macro here) and calls
//!   `avx2::f`, `simd128::f` or `scalar::f`;
//! - the scalar reference is always compiled; tests force it by calling `scalar::f` directly and
//!   compare it with the dispatched `f` bit for bit (`tests.rs`).
//!
//! Hand-written rather than left to the compiler: the int8 scan runs on integer multiply-add
//! instructions (`pmaddwd`, `i32x4.dot_i16x8`) that the autovectoriser does not pick for this shape,
//! and the scans reduce several rows at once.
//!
//! # Numerical contract (identical on every path, bit for bit)
//! - int8: the query is quantized once to i16 ([`QuantizedQuery`]); a row's score is
//!   `(Σ_j row[j] · q[j]) as f32 · q.scale · row_scale` with the sum exact in i32. It differs from the
//!   real product `row_scale · Σ row[j] · query[j]` by at most `row_scale · Σ_j |row[j]| · q.scale / 2`
//!   (plus two f32 roundings).
//! - f16 and f32: products and sums rounded separately (no FMA), summed in eight lanes in a fixed order
//!   ([`scalar::dot_lanes8`]).
//! - top-K: higher score first, ties to the lower index; NaN scores never selected.
//!
//! Shape mismatches between arguments are programming errors and panic (the runtime validates bundle
//! shapes before calling these).

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod cpu;
mod q8_0;
mod query;
pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
mod topk;

use half::f16;

pub use q8_0::{dequantize_q8_0, q8_0_bytes, BLOCK_Q8_0_BYTES, QK8_0};
pub use query::QuantizedQuery;
pub use topk::{Admission, Hit, TopK};

pub use cpu::SimdPath;

/// Calls `$name($args)` on the path [`simd_path`] chose: `avx2::$name`, `simd128::$name` or
/// `scalar::$name`.
macro_rules! dispatch {
    ($name:ident($($arg:expr),* $(,)?)) => {{
        match simd_path() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `simd_path` is Avx2 only when the CPU has AVX2 and F16C.
            SimdPath::Avx2 => unsafe { avx2::$name($($arg),*) },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            SimdPath::Simd128 => simd128::$name($($arg),*),
            _ => scalar::$name($($arg),*),
        }
    }};
}

/// The path the scoring kernels take on this CPU / build, chosen once: AVX2 when the CPU has AVX2 and
/// F16C, simd128 when compiled in, scalar otherwise.
pub fn simd_path() -> SimdPath {
    static PATH: std::sync::OnceLock<SimdPath> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| {
        let cpu = cpu::features();
        SimdPath::best(cpu.avx2 && cpu.f16c)
    })
}

/// Which kernel path [`score_int8`] and the others take here: `"avx2"`, `"simd128"` or `"scalar"`.
pub fn path() -> &'static str {
    simd_path().name()
}

fn check_rows(what: &str, rows: usize, dim: usize, n: usize) {
    assert!(dim > 0, "{what}: dim is 0");
    assert_eq!(rows % dim, 0, "{what}: {rows} values are not whole rows of {dim}");
    assert_eq!(rows / dim, n, "{what}: {} rows but {n} scales/outputs", rows / dim);
}

/// Scores of int8 rows: `out[i] ≈ scales[i] · Σ_j rows[i·dim + j] · query[j]` (module docs: exact
/// definition). `rows` is `[n, dim]` row-major, `scales` and `out` are `[n]`, `query` is `[dim]`.
pub fn score_int8(rows: &[i8], scales: &[f32], dim: usize, query: &[f32], out: &mut [f32]) {
    check_rows("score_int8", rows.len(), dim, scales.len());
    assert_eq!(out.len(), scales.len(), "score_int8: output length");
    assert_eq!(query.len(), dim, "score_int8: query length");
    let q = QuantizedQuery::new(query);
    dispatch!(score_int8_quantized(rows, scales, dim, &q, out))
}

/// Scores of f16 rows: `out[i] = Σ_j f32(rows[i·dim + j]) · query[j]`. `rows` `[n, dim]`, `out` `[n]`.
pub fn score_f16(rows: &[f16], dim: usize, query: &[f32], out: &mut [f32]) {
    check_rows("score_f16", rows.len(), dim, out.len());
    assert_eq!(query.len(), dim, "score_f16: query length");
    dispatch!(score_f16(rows, dim, query, out))
}

/// Scans int8 rows (`[n, dim]`, scales `[n]`) into `top`, row i as index `first_index + i`; call once per
/// shard with the shard's first item index. Scores as [`score_int8`].
pub fn scan_int8(rows: &[i8], scales: &[f32], dim: usize, query: &[f32], first_index: usize, top: &mut TopK) {
    check_rows("scan_int8", rows.len(), dim, scales.len());
    assert_eq!(query.len(), dim, "scan_int8: query length");
    let q = QuantizedQuery::new(query);
    dispatch!(scan_int8_quantized(rows, scales, dim, &q, first_index, top))
}

/// Scans f16 rows (`[n, dim]`) into `top`, row i as index `first_index + i`. Scores as [`score_f16`].
pub fn scan_f16(rows: &[f16], dim: usize, query: &[f32], first_index: usize, top: &mut TopK) {
    check_rows("scan_f16", rows.len(), dim, rows.len() / dim.max(1));
    assert_eq!(query.len(), dim, "scan_f16: query length");
    dispatch!(scan_f16(rows, dim, query, first_index, top))
}

/// Rows a sparse scan gathers before scoring them together ([`scan_int8_rows`]).
const GATHER: usize = 32;

/// Scans only the int8 rows `indices` (`[n, dim]` rows, scales `[n]`) into `top`: for a filter that
/// keeps few rows, cheaper than every row. The rows are gathered [`GATHER`] at a time into a small
/// buffer and scored there by the same dispatched kernel as [`score_int8`], so a row scores exactly
/// what [`scan_int8`] gives it.
pub fn scan_int8_rows(
    rows: &[i8],
    scales: &[f32],
    dim: usize,
    query: &[f32],
    indices: &mut dyn Iterator<Item = usize>,
    top: &mut TopK,
) {
    check_rows("scan_int8_rows", rows.len(), dim, scales.len());
    assert_eq!(query.len(), dim, "scan_int8_rows: query length");
    let q = QuantizedQuery::new(query);
    let mut block = vec![0i8; GATHER * dim];
    let mut block_scales = [0f32; GATHER];
    let mut block_rows = [0usize; GATHER];
    let mut out = [0f32; GATHER];
    loop {
        let mut m = 0;
        for i in (&mut *indices).take(GATHER) {
            block[m * dim..(m + 1) * dim].copy_from_slice(&rows[i * dim..(i + 1) * dim]);
            block_scales[m] = scales[i];
            block_rows[m] = i;
            m += 1;
        }
        if m == 0 {
            return;
        }
        let (b, s, o) = (&block[..m * dim], &block_scales[..m], &mut out[..m]);
        dispatch!(score_int8_quantized(b, s, dim, &q, o));
        for (&i, &score) in block_rows[..m].iter().zip(out[..m].iter()) {
            if score >= top.threshold() {
                top.push(i, score);
            }
        }
        if m < GATHER {
            return;
        }
    }
}

/// [`scan_int8_rows`] for f16 rows (`[n, dim]`): scores as [`scan_f16`].
pub fn scan_f16_rows(
    rows: &[f16],
    dim: usize,
    query: &[f32],
    indices: &mut dyn Iterator<Item = usize>,
    top: &mut TopK,
) {
    assert_eq!(query.len(), dim, "scan_f16_rows: query length");
    let mut block = vec![f16::ZERO; GATHER * dim];
    let mut block_rows = [0usize; GATHER];
    let mut out = [0f32; GATHER];
    loop {
        let mut m = 0;
        for i in (&mut *indices).take(GATHER) {
            block[m * dim..(m + 1) * dim].copy_from_slice(&rows[i * dim..(i + 1) * dim]);
            block_rows[m] = i;
            m += 1;
        }
        if m == 0 {
            return;
        }
        let (b, o) = (&block[..m * dim], &mut out[..m]);
        dispatch!(score_f16(b, dim, query, o));
        for (&i, &score) in block_rows[..m].iter().zip(out[..m].iter()) {
            if score >= top.threshold() {
                top.push(i, score);
            }
        }
        if m < GATHER {
            return;
        }
    }
}

/// The `k` best int8 rows for `query`, never one of `exclude`, best first (fused scan + selection).
pub fn top_k_int8(rows: &[i8], scales: &[f32], dim: usize, query: &[f32], k: usize, exclude: &[usize]) -> Vec<Hit> {
    let mut top = TopK::with_excluded(k, exclude);
    scan_int8(rows, scales, dim, query, 0, &mut top);
    top.into_sorted()
}

/// The `k` best f16 rows for `query`, never one of `exclude`, best first.
pub fn top_k_f16(rows: &[f16], dim: usize, query: &[f32], k: usize, exclude: &[usize]) -> Vec<Hit> {
    let mut top = TopK::with_excluded(k, exclude);
    scan_f16(rows, dim, query, 0, &mut top);
    top.into_sorted()
}

/// `out = x · Wᵀ`: x `[t, k]`, w `[n, k]` (PyTorch's Linear layout), out `[t, n]`, all row-major f32.
pub fn matmul_f32(x: &[f32], t: usize, w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    assert_eq!(x.len(), t * k, "matmul_f32: x is not [t, k]");
    assert_eq!(w.len(), n * k, "matmul_f32: w is not [n, k]");
    assert_eq!(out.len(), t * n, "matmul_f32: out is not [t, n]");
    dispatch!(matmul_f32(x, t, w, n, k, out))
}

/// `out = x · Wᵀ` with W `[n, k]` as Q8_0 blocks along k (`q8_0_bytes(n, k)` bytes, k a multiple of 32):
/// bit for bit [`matmul_f32`] with the dequantized W. x `[t, k]`, out `[t, n]`.
pub fn matmul_q8_0(x: &[f32], t: usize, w: &[u8], n: usize, k: usize, out: &mut [f32]) {
    assert_eq!(k % QK8_0, 0, "matmul_q8_0: k = {k} is not a multiple of {QK8_0}");
    assert_eq!(w.len(), q8_0_bytes(n, k), "matmul_q8_0: w is not [n, k] in Q8_0 blocks");
    assert_eq!(x.len(), t * k, "matmul_q8_0: x is not [t, k]");
    assert_eq!(out.len(), t * n, "matmul_q8_0: out is not [t, n]");
    // Eight weight rows at a time expanded to f32 (8 KiB at k = 256), multiplied by every position.
    const ROWS: usize = 8;
    let row_bytes = q8_0_bytes(1, k);
    let mut rows = vec![0f32; ROWS * k];
    let mut columns = vec![0f32; t * ROWS];
    for first in (0..n).step_by(ROWS) {
        let count = ROWS.min(n - first);
        let rows = &mut rows[..count * k];
        let columns = &mut columns[..t * count];
        dequantize_q8_0(&w[first * row_bytes..(first + count) * row_bytes], rows);
        matmul_f32(x, t, rows, count, k, columns);
        for r in 0..t {
            out[r * n + first..r * n + first + count].copy_from_slice(&columns[r * count..(r + 1) * count]);
        }
    }
}

/// `out = W · x`: one position through a Q8_0 `[n, k]` weight (x `[k]`, out `[n]`).
pub fn matvec_q8_0(w: &[u8], n: usize, k: usize, x: &[f32], out: &mut [f32]) {
    matmul_q8_0(x, 1, w, n, k, out);
}

#[cfg(test)]
mod tests;
