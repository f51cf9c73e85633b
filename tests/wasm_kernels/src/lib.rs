//! The runtime kernels as a bare wasm module (no imports, no JS glue) for `run.mjs` under node:
//! `check` compares the dispatched kernels (the simd128 path in this build) with the scalar reference,
//! bit for bit; the `bench_*` exports time one scan of a synthetic shard against a bandwidth bound
//! (simd128 byte sum) and the scalar reference, and expose the shard to a plain-JS loop.

use std::cell::RefCell;

use half::f16;
use omakase_runtime::kernels::{self, scalar, QuantizedQuery, TopK};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next() % 2001) as f32 / 1000.0 - 1.0
    }
}

/// 1 when the kernels take the simd128 path in this build.
#[no_mangle]
pub extern "C" fn simd128_path() -> u32 {
    (kernels::path() == "simd128") as u32
}

/// Number of disagreements between the dispatched kernels and the scalar reference (0 expected).
#[no_mangle]
pub extern "C" fn check() -> u32 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut failures = 0;
    for dim in [1, 3, 7, 8, 15, 16, 17, 33, 64, 100, 128, 256] {
        for n in [0, 1, 3, 4, 5, 9, 37, 500] {
            let rows: Vec<i8> = (0..n * dim).map(|_| rng.next() as i8).collect();
            let scales: Vec<f32> = (0..n).map(|_| 0.01 + (rng.next() % 100) as f32 / 1000.0).collect();
            let query: Vec<f32> = (0..dim).map(|_| rng.f32()).collect();
            let q = QuantizedQuery::new(&query);
            let (mut fast, mut reference) = (vec![0f32; n], vec![0f32; n]);
            kernels::score_int8(&rows, &scales, dim, &query, &mut fast);
            scalar::score_int8_quantized(&rows, &scales, dim, &q, &mut reference);
            failures += (fast != reference) as u32;

            let mut top = TopK::with_excluded(10, &[1, 4]);
            scalar::scan_int8_quantized(&rows, &scales, dim, &q, 0, &mut top);
            failures += (kernels::top_k_int8(&rows, &scales, dim, &query, 10, &[1, 4]) != top.into_sorted()) as u32;

            // Any bit pattern but Inf/NaN (whose sums would be NaN on both sides): subnormals included.
            let halves: Vec<f16> = (0..n * dim)
                .map(|_| f16::from_bits(rng.next() as u16))
                .map(|h| if h.is_finite() { h } else { f16::ONE })
                .collect();
            kernels::score_f16(&halves, dim, &query, &mut fast);
            scalar::score_f16(&halves, dim, &query, &mut reference);
            failures += (fast.iter().zip(&reference).any(|(a, b)| a.to_bits() != b.to_bits())) as u32;

            let mut top = TopK::with_excluded(10, &[1, 4]);
            scalar::scan_f16(&halves, dim, &query, 0, &mut top);
            failures += (kernels::top_k_f16(&halves, dim, &query, 10, &[1, 4]) != top.into_sorted()) as u32;

            let w: Vec<f32> = (0..n * dim).map(|_| rng.f32()).collect();
            let x: Vec<f32> = (0..3 * dim).map(|_| rng.f32()).collect();
            let (mut fast, mut reference) = (vec![0f32; 3 * n], vec![0f32; 3 * n]);
            kernels::matmul_f32(&x, 3, &w, n, dim, &mut fast);
            scalar::matmul_f32(&x, 3, &w, n, dim, &mut reference);
            failures += (fast.iter().zip(&reference).any(|(a, b)| a.to_bits() != b.to_bits())) as u32;
        }
    }
    // Every f16 bit pattern (NaNs aside) through the simd128 conversion.
    let values: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).filter(|v| !v.is_nan()).collect();
    let rows: Vec<f16> = values
        .iter()
        .flat_map(|&v| [v, f16::ZERO, f16::ZERO, f16::ZERO, f16::ZERO, f16::ZERO, f16::ZERO, f16::ZERO])
        .collect();
    let mut out = vec![0f32; values.len()];
    kernels::score_f16(&rows, 8, &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], &mut out);
    failures += values.iter().zip(&out).filter(|(v, s)| v.to_f32() != **s).count() as u32;
    failures
}

struct Shard {
    dim: usize,
    rows: Vec<i8>,
    scales: Vec<f32>,
    query: Vec<f32>,
}

thread_local! {
    static SHARD: RefCell<Shard> = RefCell::new(Shard { dim: 0, rows: Vec::new(), scales: Vec::new(), query: Vec::new() });
}

/// Makes a synthetic int8 shard of `n` rows of `dim`.
#[no_mangle]
pub extern "C" fn bench_setup(n: usize, dim: usize) {
    let mut rng = Rng(7);
    SHARD.with(|s| {
        *s.borrow_mut() = Shard {
            dim,
            rows: (0..n * dim).map(|_| rng.next() as i8).collect(),
            scales: (0..n).map(|_| 0.5 + (rng.next() % 1000) as f32 / 1000.0).collect(),
            query: (0..dim).map(|_| rng.f32()).collect(),
        }
    });
}

#[no_mangle]
pub extern "C" fn bench_rows() -> *const i8 {
    SHARD.with(|s| s.borrow().rows.as_ptr())
}

#[no_mangle]
pub extern "C" fn bench_scales() -> *const f32 {
    SHARD.with(|s| s.borrow().scales.as_ptr())
}

#[no_mangle]
pub extern "C" fn bench_query() -> *const f32 {
    SHARD.with(|s| s.borrow().query.as_ptr())
}

/// The runtime's top-10 (simd128 path); returns the best index.
#[no_mangle]
pub extern "C" fn bench_top10() -> usize {
    SHARD.with(|s| {
        let s = s.borrow();
        kernels::top_k_int8(&s.rows, &s.scales, s.dim, &s.query, 10, &[0, 1, 2])[0].index
    })
}

/// The scalar reference's top-10; returns the best index.
#[no_mangle]
pub extern "C" fn bench_top10_scalar() -> usize {
    SHARD.with(|s| {
        let s = s.borrow();
        let mut top = TopK::with_excluded(10, &[0, 1, 2]);
        scalar::scan_int8_quantized(&s.rows, &s.scales, s.dim, &QuantizedQuery::new(&s.query), 0, &mut top);
        top.into_sorted()[0].index
    })
}

/// Bandwidth bound: every byte of rows and scales summed with simd128 (widening pairwise adds).
#[no_mangle]
pub extern "C" fn bench_bound() -> u32 {
    SHARD.with(|s| {
        let s = s.borrow();
        let scales = unsafe { std::slice::from_raw_parts(s.scales.as_ptr() as *const u8, s.scales.len() * 4) };
        let rows = unsafe { std::slice::from_raw_parts(s.rows.as_ptr() as *const u8, s.rows.len()) };
        sum_bytes(rows).wrapping_add(sum_bytes(scales))
    })
}

fn sum_bytes(bytes: &[u8]) -> u32 {
    use core::arch::wasm32::*;
    let chunks = bytes.chunks_exact(64);
    let tail: u32 = chunks.remainder().iter().map(|&b| b as u32).sum();
    let mut acc = [u32x4_splat(0); 4];
    for chunk in chunks {
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: 16 bytes at 16·i inside a 64-byte chunk.
            let v = unsafe { v128_load(chunk.as_ptr().add(16 * i) as *const v128) };
            *acc = i32x4_add(*acc, u32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(v)));
        }
    }
    let total = i32x4_add(i32x4_add(acc[0], acc[1]), i32x4_add(acc[2], acc[3]));
    (0..4)
        .map(|l| match l {
            0 => u32x4_extract_lane::<0>(total),
            1 => u32x4_extract_lane::<1>(total),
            2 => u32x4_extract_lane::<2>(total),
            _ => u32x4_extract_lane::<3>(total),
        })
        .fold(tail, u32::wrapping_add)
}

// ---- merchandising rules inside the scan (issue 16, point 1): benches/support/rules_workload.rs ----

#[path = "../../../benches/support/rules_workload.rs"]
mod rules_workload;

struct RulesBench {
    workload: rules_workload::Workload,
    compiled: omakase_runtime::rules::CompiledRules,
}

thread_local! {
    static RULES: RefCell<Option<RulesBench>> = const { RefCell::new(None) };
}

/// Builds the rules workload of `n` items at d = 64 (the same as `cargo bench --bench rules`);
/// returns the per-mille of rows the filter keeps.
#[no_mangle]
pub extern "C" fn bench_rules_setup(n: usize) -> u32 {
    let workload = rules_workload::workload(n, 64);
    let compiled = workload.compile();
    let kept = (workload.kept(&compiled) * 1000.0).round() as u32;
    RULES.with(|r| *r.borrow_mut() = Some(RulesBench { workload, compiled }));
    kept
}

fn with_rules<R>(f: impl FnOnce(&RulesBench) -> R) -> R {
    RULES.with(|r| f(r.borrow().as_ref().expect("bench_rules_setup first")))
}

/// The unfiltered top-10; returns its first hit.
#[no_mangle]
pub extern "C" fn bench_rules_plain() -> usize {
    with_rules(|b| b.workload.plain()[0])
}

/// The top-10 under the filter and the boost (rules compiled once); returns how many hits the
/// filter keeps (10 expected).
#[no_mangle]
pub extern "C" fn bench_rules_ruled() -> usize {
    with_rules(|b| b.workload.ruled(&b.compiled).iter().filter(|&&h| b.compiled.allows(h as u32)).count())
}

/// The same, compiling the rules in the pass.
#[no_mangle]
pub extern "C" fn bench_rules_compile_ruled() -> usize {
    with_rules(|b| b.workload.ruled(&b.workload.compile()).len())
}
