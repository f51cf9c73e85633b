//! The WebGPU kernels (src/runtime/gpu) against the CPU reference kernels (src/runtime/kernels), on
//! random data of awkward sizes, on whatever adapter wgpu finds natively (Mesa lavapipe in CI).
//!
//! No adapter: each test prints a skip line and passes, unless `OMAKASE_REQUIRE_GPU=1` (CI), where it
//! fails. `export XDG_RUNTIME_DIR=$(mktemp -d)` silences a harmless Mesa warning.
#![cfg(feature = "gpu")]

use std::sync::OnceLock;

use half::f16;
use omakase::runtime::gpu::{GpuContext, GpuError, GpuItemTable, GpuRowFormat, MAX_K};
use omakase::runtime::kernels::{self, Hit};

/// The shared context (kernels compile once per test binary), or None after printing a skip line.
fn gpu() -> Option<&'static GpuContext> {
    static CONTEXT: OnceLock<Option<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
            let adapter = match pollster::block_on(instance.request_adapter(&Default::default())) {
                Ok(adapter) => adapter,
                Err(why) => {
                    if std::env::var("OMAKASE_REQUIRE_GPU").as_deref() == Ok("1") {
                        panic!("OMAKASE_REQUIRE_GPU=1 but no GPU adapter: {why}");
                    }
                    eprintln!("SKIP gpu_kernels: no GPU adapter ({why}); install mesa-vulkan-drivers, or set OMAKASE_REQUIRE_GPU=1 to fail");
                    return None;
                }
            };
            let ctx = pollster::block_on(GpuContext::from_adapter(&adapter, true)).expect("device from the adapter");
            let info = ctx.adapter_info();
            eprintln!("gpu_kernels: adapter {} ({:?}, {:?}), backend {}", info.name, info.backend, info.device_type, ctx.backend_name());
            Some(ctx)
        })
        .as_ref()
}

macro_rules! gpu_or_skip {
    () => {
        match gpu() {
            Some(ctx) => ctx,
            None => return,
        }
    };
}

/// A small deterministic generator (xorshift64*): the tests need reproducible data, not quality.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    fn codes(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8 as i8).collect()
    }
    fn scales(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| (self.f32() + 1.5) * 0.01).collect()
    }
    fn halves(&mut self, n: usize) -> Vec<f16> {
        (0..n).map(|_| f16::from_f32(self.f32() * 2.0)).collect()
    }
}

/// |a − b| ≤ tolerance · (1 + |b|) element-wise, naming the first offender.
fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tolerance * (1.0 + w.abs()), "{what}: element {i}: gpu {g}, cpu {w}");
    }
}

async fn int8_table(ctx: &GpuContext, dim: usize, shards: &[(&[i8], &[f32])]) -> GpuItemTable {
    let mut table = GpuItemTable::new(GpuRowFormat::Int8, dim).unwrap();
    for (codes, scales) in shards {
        table.append_int8(ctx, codes, scales).await.unwrap();
    }
    table
}

/// GPU top-K checked against the CPU's: same length; every hit's score is the CPU score of its
/// index; best first; no excluded or repeated index; and the same indices as the CPU's except where
/// two scores tie within `tolerance` (the two sides round differently only there).
fn check_top_k(what: &str, got: &[Hit], want: &[Hit], cpu_scores: &[f32], exclude: &[usize], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: number of hits (gpu {got:?}, cpu {want:?})");
    for (rank, hit) in got.iter().enumerate() {
        let cpu = cpu_scores[hit.index];
        assert!((hit.score - cpu).abs() <= tolerance * (1.0 + cpu.abs()), "{what}: rank {rank} index {}: gpu {}, cpu {cpu}", hit.index, hit.score);
        assert!(!exclude.contains(&hit.index), "{what}: excluded index {} returned", hit.index);
        assert!(!got[..rank].iter().any(|h| h.index == hit.index), "{what}: index {} twice", hit.index);
        if rank > 0 {
            assert!(got[rank - 1].score >= hit.score, "{what}: not best first at rank {rank}");
        }
        let reference = want[rank];
        if hit.index != reference.index {
            assert!(
                (hit.score - reference.score).abs() <= 2.0 * tolerance * (1.0 + reference.score.abs()),
                "{what}: rank {rank}: gpu {hit:?}, cpu {reference:?} (not a tie)"
            );
        }
    }
}

const INT8_TOLERANCE: f32 = 1e-6;
const F16_TOLERANCE: f32 = 1e-5;

#[test]
fn int8_scores_match_cpu_on_awkward_sizes() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(1);
    for &(n, dim) in &[(1, 1), (7, 3), (300, 17), (2049, 64), (5003, 100), (257, 130)] {
        let (codes, scales, query) = (rng.codes(n * dim), rng.scales(n), rng.vec(dim));
        let table = pollster::block_on(int8_table(ctx, dim, &[(&codes, &scales)]));
        let got = pollster::block_on(table.scores(ctx, &query)).unwrap();
        let mut want = vec![0f32; n];
        kernels::score_int8(&codes, &scales, dim, &query, &mut want);
        assert_close(&format!("int8 scores n={n} dim={dim}"), &got, &want, INT8_TOLERANCE);
    }
}

#[test]
fn f16_scores_match_cpu_on_awkward_sizes() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(2);
    for &(n, dim) in &[(1, 1), (9, 5), (300, 17), (2049, 64), (4001, 72), (129, 200)] {
        let (rows, query) = (rng.halves(n * dim), rng.vec(dim));
        let mut table = GpuItemTable::new(GpuRowFormat::F16, dim).unwrap();
        pollster::block_on(table.append_f16(ctx, &rows)).unwrap();
        let got = pollster::block_on(table.scores(ctx, &query)).unwrap();
        let mut want = vec![0f32; n];
        kernels::score_f16(&rows, dim, &query, &mut want);
        assert_close(&format!("f16 scores n={n} dim={dim}"), &got, &want, F16_TOLERANCE);
    }
}

#[test]
fn int8_top_k_matches_cpu_with_exclusions() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(3);
    for &(n, dim, k) in &[(1, 8, 10), (50, 64, 10), (2048, 64, 10), (2049, 33, 1), (20_000, 64, 10), (9_999, 20, 100), (3000, 64, MAX_K)] {
        let (codes, scales, query) = (rng.codes(n * dim), rng.scales(n), rng.vec(dim));
        let mut cpu_scores = vec![0f32; n];
        kernels::score_int8(&codes, &scales, dim, &query, &mut cpu_scores);
        // Exclude some of the true best (the session's items) and some random ones, one out of range.
        let best = kernels::top_k_int8(&codes, &scales, dim, &query, 3, &[]);
        let mut exclude: Vec<usize> = best.iter().step_by(2).map(|h| h.index).collect();
        exclude.extend((0..5).map(|_| rng.below(n)));
        exclude.push(n + 7);
        let want = kernels::top_k_int8(&codes, &scales, dim, &query, k, &exclude);
        let table = pollster::block_on(int8_table(ctx, dim, &[(&codes, &scales)]));
        let got = pollster::block_on(table.top_k(ctx, &query, k, &exclude)).unwrap();
        check_top_k(&format!("int8 top-{k} n={n} dim={dim}"), &got, &want, &cpu_scores, &exclude, INT8_TOLERANCE);
    }
}

#[test]
fn f16_top_k_matches_cpu_with_exclusions() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(4);
    for &(n, dim, k) in &[(3, 64, 10), (2047, 64, 10), (30_001, 64, 10), (5000, 13, 50)] {
        let (rows, query) = (rng.halves(n * dim), rng.vec(dim));
        let mut cpu_scores = vec![0f32; n];
        kernels::score_f16(&rows, dim, &query, &mut cpu_scores);
        let exclude: Vec<usize> = (0..4).map(|_| rng.below(n)).collect();
        let want = kernels::top_k_f16(&rows, dim, &query, k, &exclude);
        let mut table = GpuItemTable::new(GpuRowFormat::F16, dim).unwrap();
        pollster::block_on(table.append_f16(ctx, &rows)).unwrap();
        let got = pollster::block_on(table.top_k(ctx, &query, k, &exclude)).unwrap();
        check_top_k(&format!("f16 top-{k} n={n} dim={dim}"), &got, &want, &cpu_scores, &exclude, F16_TOLERANCE);
    }
}

/// Several shards (one binding each) and several merge rounds: item indices run on across shards.
#[test]
fn top_k_merges_across_shards_and_rounds() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(5);
    let dim = 8;
    let sizes = [1usize, 2047, 300_000, 5, 401_000];
    let n: usize = sizes.iter().sum();
    let (codes, scales, query) = (rng.codes(n * dim), rng.scales(n), rng.vec(dim));
    let mut table = GpuItemTable::new(GpuRowFormat::Int8, dim).unwrap();
    let mut start = 0;
    for size in sizes {
        pollster::block_on(table.append_int8(ctx, &codes[start * dim..(start + size) * dim], &scales[start..start + size])).unwrap();
        start += size;
    }
    assert_eq!(table.len(), n);
    assert_eq!(table.bindings(), sizes.len());
    let mut cpu_scores = vec![0f32; n];
    kernels::score_int8(&codes, &scales, dim, &query, &mut cpu_scores);
    let exclude = vec![rng.below(n), 2047 + 3];
    for k in [1, 10, 64] {
        let want = kernels::top_k_int8(&codes, &scales, dim, &query, k, &exclude);
        let got = pollster::block_on(table.top_k(ctx, &query, k, &exclude)).unwrap();
        check_top_k(&format!("sharded top-{k}"), &got, &want, &cpu_scores, &exclude, INT8_TOLERANCE);
    }
    let got = pollster::block_on(table.scores(ctx, &query)).unwrap();
    assert_close("sharded scores", &got, &cpu_scores, INT8_TOLERANCE);
}

/// A device whose storage bindings are small (injected by the test): one shard is split over several
/// bindings and the results do not change.
#[test]
fn small_binding_limit_splits_a_shard() {
    let Some(_) = gpu() else { return };
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let limits = wgpu::Limits { max_storage_buffer_binding_size: 64 * 1024, ..wgpu::Limits::defaults() };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() })).unwrap();
    let ctx = pollster::block_on(GpuContext::new(adapter.get_info(), device, queue)).unwrap();
    assert_eq!(ctx.backend_name(), "webgpu-f32");
    assert!(ctx.max_binding_bytes() <= 64 * 1024, "device limit {}", ctx.max_binding_bytes());
    let mut rng = Rng::new(6);
    let (n, dim) = (10_000, 64); // 640 KB of codes: 10 bindings of 64 KiB
    let (codes, scales, query) = (rng.codes(n * dim), rng.scales(n), rng.vec(dim));
    let table = pollster::block_on(int8_table(&ctx, dim, &[(&codes, &scales)]));
    assert!(table.bindings() >= 10, "{} bindings", table.bindings());
    let mut cpu_scores = vec![0f32; n];
    kernels::score_int8(&codes, &scales, dim, &query, &mut cpu_scores);
    let want = kernels::top_k_int8(&codes, &scales, dim, &query, 10, &[4]);
    let got = pollster::block_on(table.top_k(&ctx, &query, 10, &[4])).unwrap();
    check_top_k("split binding top-10", &got, &want, &cpu_scores, &[4], INT8_TOLERANCE);
}

#[test]
fn top_k_edge_cases() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(7);
    let (n, dim) = (20, 16);
    let (codes, scales, query) = (rng.codes(n * dim), rng.scales(n), rng.vec(dim));
    let table = pollster::block_on(int8_table(ctx, dim, &[(&codes, &scales)]));
    let top = |query: &[f32], k: usize, exclude: &[usize]| pollster::block_on(table.top_k(ctx, query, k, exclude));
    // k above the item count: every item, ranked.
    let all = top(&query, 50, &[]).unwrap();
    let mut cpu_scores = vec![0f32; n];
    kernels::score_int8(&codes, &scales, dim, &query, &mut cpu_scores);
    let want = kernels::top_k_int8(&codes, &scales, dim, &query, 50, &[]);
    assert_eq!(all.len(), n);
    check_top_k("k above n", &all, &want, &cpu_scores, &[], INT8_TOLERANCE);
    // Everything excluded, k = 0: nothing.
    assert!(top(&query, 10, &(0..n).collect::<Vec<_>>()).unwrap().is_empty());
    assert!(top(&query, 0, &[]).unwrap().is_empty());
    // A zero query: every score 0, ties to the lower index (as the CPU).
    let zero = top(&vec![0.0; dim], 3, &[1]).unwrap();
    assert_eq!(zero.iter().map(|h| h.index).collect::<Vec<_>>(), vec![0, 2, 3]);
    // A NaN in the query: no hits (CPU: NaN scores never enter).
    let mut bad = query.clone();
    bad[3] = f32::NAN;
    assert!(top(&bad, 10, &[]).unwrap().is_empty());
    // Wrong width and k above the limit are errors, not panics.
    assert!(matches!(top(&query[1..], 10, &[]), Err(GpuError::Shape { .. })));
    assert!(matches!(top(&query, MAX_K + 1, &[]), Err(GpuError::Unsupported(_))));
    // An empty table.
    let empty = GpuItemTable::new(GpuRowFormat::F16, dim).unwrap();
    assert!(pollster::block_on(empty.top_k(ctx, &query, 10, &[])).unwrap().is_empty());
    // Mismatched appends.
    let mut table = GpuItemTable::new(GpuRowFormat::Int8, dim).unwrap();
    assert!(pollster::block_on(table.append_int8(ctx, &codes[1..], &scales)).is_err());
    assert!(pollster::block_on(table.append_f16(ctx, &[f16::ZERO; 16])).is_err());
    assert!(GpuItemTable::new(GpuRowFormat::Int8, 0).is_err());
}
