//! The WebGPU kernels (crates/runtime/src/gpu) against the CPU reference kernels (crates/runtime/src/kernels), on
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
        assert!(
            (hit.score - cpu).abs() <= tolerance * (1.0 + cpu.abs()),
            "{what}: rank {rank} index {}: gpu {}, cpu {cpu}",
            hit.index,
            hit.score
        );
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

/// int8 scores are bit-identical on lavapipe (the same integer dot product and f32 products as the
/// CPU), but WGSL lets an i32 → f32 conversion round to either neighbour, so other GPUs may differ
/// by an ulp.
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
    for &(n, dim, k) in &[
        (1, 8, 10),
        (50, 64, 10),
        (2048, 64, 10),
        (2049, 33, 1),
        (20_000, 64, 10),
        (9_999, 20, 100),
        (3000, 64, MAX_K),
    ] {
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
        pollster::block_on(table.append_int8(
            ctx,
            &codes[start * dim..(start + size) * dim],
            &scales[start..start + size],
        ))
        .unwrap();
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
    let (device, queue) = pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() }),
    )
    .unwrap();
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

/// `top_k` keeps its buffers and bind groups between calls (scoring.rs § Buffer lifetime): calls on
/// one table with different queries, k (so different merge rounds) and exclusion lists (growing the
/// excluded buffer, then shrinking the list again) each give the CPU's answer.
#[test]
fn repeated_top_k_calls_reuse_buffers() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(8);
    let (n, dim) = (30_000, 48);
    let (codes, scales) = (rng.codes(n * dim), rng.scales(n));
    let halves = rng.halves(n * dim);
    let int8 = pollster::block_on(int8_table(ctx, dim, &[(&codes, &scales)]));
    let mut f16_table = GpuItemTable::new(GpuRowFormat::F16, dim).unwrap();
    pollster::block_on(f16_table.append_f16(ctx, &halves)).unwrap();
    for (call, &(k, excluded)) in
        [(10, 0), (1, 3), (MAX_K, 40), (10, 300), (64, 5000), (10, 2), (MAX_K, 0), (3, 70)].iter().enumerate()
    {
        let query = rng.vec(dim);
        let exclude: Vec<usize> = (0..excluded).map(|_| rng.below(n + 10)).collect();
        let what = format!("call {call}: k={k}, {excluded} excluded");
        let mut cpu_scores = vec![0f32; n];
        kernels::score_int8(&codes, &scales, dim, &query, &mut cpu_scores);
        let want = kernels::top_k_int8(&codes, &scales, dim, &query, k, &exclude);
        let got = pollster::block_on(int8.top_k(ctx, &query, k, &exclude)).unwrap();
        check_top_k(&format!("int8 {what}"), &got, &want, &cpu_scores, &exclude, INT8_TOLERANCE);
        kernels::score_f16(&halves, dim, &query, &mut cpu_scores);
        let want = kernels::top_k_f16(&halves, dim, &query, k, &exclude);
        let got = pollster::block_on(f16_table.top_k(ctx, &query, k, &exclude)).unwrap();
        check_top_k(&format!("f16 {what}"), &got, &want, &cpu_scores, &exclude, F16_TOLERANCE);
    }
}

/// A shard appended after `top_k` ran (the persistent state then describes the old bindings) is
/// scanned by the next call: the answers are the CPU's over the grown table, appended items included.
#[test]
fn top_k_after_the_table_grows() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(9);
    let dim = 32;
    let (codes, mut scales) = (rng.codes(12_000 * dim), rng.scales(12_000));
    // The appended shard's rows score higher (larger scales), so the hits must come from it.
    scales[5_000..].iter_mut().for_each(|s| *s *= 4.0);
    let mut table = GpuItemTable::new(GpuRowFormat::Int8, dim).unwrap();
    let mut start = 0;
    for end in [5_000, 5_001, 12_000] {
        pollster::block_on(table.append_int8(ctx, &codes[start * dim..end * dim], &scales[start..end])).unwrap();
        start = end;
        let (codes, scales) = (&codes[..end * dim], &scales[..end]);
        for k in [10, 100] {
            let query = rng.vec(dim);
            let exclude = vec![rng.below(end), end - 1];
            let mut cpu_scores = vec![0f32; end];
            kernels::score_int8(codes, scales, dim, &query, &mut cpu_scores);
            let want = kernels::top_k_int8(codes, scales, dim, &query, k, &exclude);
            let got = pollster::block_on(table.top_k(ctx, &query, k, &exclude)).unwrap();
            check_top_k(&format!("{end} items, top-{k}"), &got, &want, &cpu_scores, &exclude, INT8_TOLERANCE);
        }
    }
    assert_eq!(table.len(), 12_000);
    assert_eq!(table.bindings(), 3);
}

/// Two threads calling `top_k` on one table at once: the persistent query and parameters are written
/// and submitted under the table's lock, and a call that finds the hit buffer still mapped by the
/// other's reads through a fresh one, so each call gets the CPU's answer for its own query.
#[test]
fn concurrent_top_k_calls_on_one_table() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(18);
    let (n, dim) = (8_000, 32);
    let (codes, scales) = (rng.codes(n * dim), rng.scales(n));
    let table = pollster::block_on(int8_table(ctx, dim, &[(&codes, &scales)]));
    let queries: Vec<Vec<f32>> = (0..24).map(|_| rng.vec(dim)).collect();
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let (table, codes, scales, queries) = (&table, &codes, &scales, &queries);
            scope.spawn(move || {
                for (call, query) in queries.iter().enumerate().filter(|(i, _)| i % 2 == thread) {
                    let (k, exclude) = (5 + call, vec![call, 3 * call]);
                    let mut cpu_scores = vec![0f32; n];
                    kernels::score_int8(codes, scales, dim, query, &mut cpu_scores);
                    let want = kernels::top_k_int8(codes, scales, dim, query, k, &exclude);
                    let got = pollster::block_on(table.top_k(ctx, query, k, &exclude)).unwrap();
                    let what = format!("thread {thread} call {call}");
                    check_top_k(&what, &got, &want, &cpu_scores, &exclude, INT8_TOLERANCE);
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Sequence tower layers.

use omakase::runtime::gpu::{AttentionShape, GpuLayerNorm, GpuLinear, GpuPass, GpuTensor};

/// Runs one kernel through a fresh pass and reads its output back.
fn run_pass(ctx: &GpuContext, record: impl FnOnce(&mut GpuPass<'_>) -> GpuTensor) -> Vec<f32> {
    let mut pass = GpuPass::new(ctx).unwrap();
    let out = record(&mut pass);
    pollster::block_on(pass.read_all(&out)).unwrap()
}

fn add_bias(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
    }
}

/// Random GGML Q8_0 blocks for `[n, k]`: an f16 scale then 32 i8 per block.
fn random_q8_0(rng: &mut Rng, n: usize, k: usize) -> Vec<u8> {
    let mut blocks = Vec::with_capacity(kernels::q8_0_bytes(n, k));
    for _ in 0..n * k / kernels::QK8_0 {
        blocks.extend_from_slice(&f16::from_f32(rng.f32() * 0.02).to_le_bytes());
        blocks.extend(rng.codes(kernels::QK8_0).iter().map(|&c| c as u8));
    }
    blocks
}

#[test]
fn linear_f32_matches_cpu() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(10);
    for &(t, n, k) in &[(1, 1, 1), (3, 5, 7), (50, 64, 64), (7, 256, 64), (50, 64, 256), (2, 9, 17)] {
        let (x, w, bias) = (rng.vec(t * k), rng.vec(n * k), rng.vec(n));
        let mut want = vec![0f32; t * n];
        kernels::matmul_f32(&x, t, &w, n, k, &mut want);
        add_bias(&mut want, &bias);
        let layer = GpuLinear::from_f32(ctx, &w, &bias, n, k).unwrap();
        let got = run_pass(ctx, |p| p.linear(&layer, &GpuTensor::from_slice(ctx, &x), t).unwrap());
        assert_close(&format!("linear_f32 t={t} n={n} k={k}"), &got, &want, 1e-5);
    }
}

#[test]
fn linear_q8_0_matches_cpu() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(11);
    for &(t, n, k) in &[(1, 1, 32), (3, 5, 96), (50, 64, 64), (50, 256, 64), (50, 64, 256)] {
        let (x, w, bias) = (rng.vec(t * k), random_q8_0(&mut rng, n, k), rng.vec(n));
        let mut want = vec![0f32; t * n];
        kernels::matmul_q8_0(&x, t, &w, n, k, &mut want);
        add_bias(&mut want, &bias);
        let layer = GpuLinear::from_q8_0(ctx, &w, &bias, n, k).unwrap();
        let got = run_pass(ctx, |p| p.linear(&layer, &GpuTensor::from_slice(ctx, &x), t).unwrap());
        assert_close(&format!("linear_q8_0 t={t} n={n} k={k}"), &got, &want, 1e-5);
    }
    assert!(GpuLinear::from_q8_0(ctx, &[0; 34], &[0.0], 1, 31).is_err());
    assert!(GpuLinear::from_q8_0(ctx, &[0; 33], &[0.0], 1, 32).is_err());
}

/// The tower's LayerNorm (two passes in f32).
fn layer_norm_reference(x: &[f32], weight: &[f32], bias: &[f32], eps: f32) -> Vec<f32> {
    let d = weight.len();
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(d) {
        let mean = row.iter().sum::<f32>() / d as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
    out
}

#[test]
fn layer_norm_matches_cpu() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(12);
    for &(t, d) in &[(1, 1), (1, 64), (50, 64), (3, 17), (9, 256)] {
        let (x, weight, bias) =
            (rng.vec(t * d).iter().map(|v| v * 3.0 + 0.5).collect::<Vec<_>>(), rng.vec(d), rng.vec(d));
        let want = layer_norm_reference(&x, &weight, &bias, 1e-5);
        let norm = GpuLayerNorm::new(ctx, &weight, &bias, 1e-5).unwrap();
        let got = run_pass(ctx, |p| p.layer_norm(&norm, &GpuTensor::from_slice(ctx, &x), t).unwrap());
        assert_close(&format!("layer_norm t={t} d={d}"), &got, &want, 1e-5);
    }
}

fn softmax_reference(xs: &mut [f32]) {
    let max = xs.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in xs.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    xs.iter_mut().for_each(|v| *v /= sum);
}

/// The tower's multi-head attention (heads side by side).
fn attention_reference(q: &[f32], k: &[f32], v: &[f32], t: usize, d: usize, heads: usize, causal: bool) -> Vec<f32> {
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut mixed = vec![0f32; t * d];
    for h in 0..heads {
        let cols = h * hd..(h + 1) * hd;
        for i in 0..t {
            let visible = if causal { i + 1 } else { t };
            let qi = &q[i * d..][cols.clone()];
            let mut weights: Vec<f32> = (0..visible)
                .map(|j| qi.iter().zip(&k[j * d..][cols.clone()]).map(|(a, b)| a * b).sum::<f32>() * scale)
                .collect();
            softmax_reference(&mut weights);
            let out = &mut mixed[i * d..][cols.clone()];
            for (j, w) in weights.iter().enumerate() {
                out.iter_mut().zip(&v[j * d..][cols.clone()]).for_each(|(o, v)| *o += w * v);
            }
        }
    }
    mixed
}

#[test]
fn attention_matches_cpu() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(13);
    for &(t, d, heads) in &[(1, 64, 2), (2, 8, 1), (50, 64, 2), (13, 64, 4), (5, 12, 3)] {
        for causal in [true, false] {
            let scale = |v: Vec<f32>| v.iter().map(|x| x * 2.0).collect::<Vec<_>>();
            let (q, k, v) = (scale(rng.vec(t * d)), scale(rng.vec(t * d)), rng.vec(t * d));
            let want = attention_reference(&q, &k, &v, t, d, heads, causal);
            let got = run_pass(ctx, |p| {
                let (q, k, v) =
                    (GpuTensor::from_slice(ctx, &q), GpuTensor::from_slice(ctx, &k), GpuTensor::from_slice(ctx, &v));
                p.attention(&q, &k, &v, AttentionShape { rows: t, dim: d, heads, causal }).unwrap()
            });
            assert_close(&format!("attention t={t} d={d} heads={heads} causal={causal}"), &got, &want, 1e-5);
        }
    }
    let mut pass = GpuPass::new(ctx).unwrap();
    let x = GpuTensor::from_slice(ctx, &[0.0; 12]);
    assert!(matches!(
        pass.attention(&x, &x, &x, AttentionShape { rows: 2, dim: 6, heads: 4, causal: true }),
        Err(GpuError::Shape { .. })
    ));
}

#[test]
fn gelu_softmax_and_add_match_cpu() {
    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(14);
    // GELU over a wide range, both tails included.
    let x: Vec<f32> =
        (0..1001).map(|i| (i as f32 - 500.0) / 50.0).chain(rng.vec(333).iter().map(|v| v * 4.0)).collect();
    let want: Vec<f32> = x.iter().map(|&v| 0.5 * v * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2))).collect();
    let got = run_pass(ctx, |p| {
        let t = GpuTensor::from_slice(ctx, &x);
        p.gelu(&t).unwrap();
        t
    });
    assert_close("gelu", &got, &want, 1e-6);
    // Softmax over rows of awkward widths.
    for &(rows, cols) in &[(1, 1), (3, 50), (50, 7)] {
        let x: Vec<f32> = rng.vec(rows * cols).iter().map(|v| v * 10.0).collect();
        let mut want = x.clone();
        want.chunks_exact_mut(cols).for_each(softmax_reference);
        let got = run_pass(ctx, |p| {
            let t = GpuTensor::from_slice(ctx, &x);
            p.softmax(&t, rows, cols).unwrap();
            t
        });
        assert_close(&format!("softmax {rows}x{cols}"), &got, &want, 1e-6);
        for row in got.chunks_exact(cols) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
    // x += y with y longer than x (position embeddings).
    let (x, y) = (rng.vec(130), rng.vec(200));
    let want: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
    let got = run_pass(ctx, |p| {
        let (tx, ty) = (GpuTensor::from_slice(ctx, &x), GpuTensor::from_slice(ctx, &y));
        p.add(&tx, &ty).unwrap();
        tx
    });
    assert_eq!(got, want);
}

/// The whole sequence tower: GPU user vectors equal the CPU runtime's for the same GGUF file, with
/// Q8_0 and F16 matrices, for sessions of 1 to max_len items.
#[cfg(feature = "native")]
#[test]
fn sequence_tower_matches_cpu_runtime() {
    use omakase::export::{tower_gguf, TowerPart};
    use omakase::model::ModelConfig;
    use omakase::runtime::gguf::Gguf;
    use omakase::runtime::gpu::GpuSequenceTower;
    use omakase::runtime::tower::SequenceTower;
    use omakase::runtime::WeightsDtype;

    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(15);
    let config = ModelConfig { dim: 64, num_heads: 2, num_layers: 2, ffn_dim: 256, max_len: 50, ..Default::default() };
    let d = config.dim;
    let tensors = random_sequence_tower(&mut rng, &config);
    let file = "sequence_tower.gguf";
    for weights in [WeightsDtype::Q8_0, WeightsDtype::F16] {
        let bytes = tower_gguf(&tensors, TowerPart::Sequence, &config, weights).unwrap();
        let gguf = Gguf::parse(&bytes, file).unwrap();
        let cpu = SequenceTower::load(&gguf, file, &config).unwrap();
        let gpu = GpuSequenceTower::load(ctx, &gguf, file, &config).unwrap();
        for t in [1, 2, 17, config.max_len] {
            let items = rng.vec(t * d);
            let want = cpu.user_vector(&items);
            let got = pollster::block_on(gpu.user_vector(ctx, &items)).unwrap();
            assert_close(&format!("user vector {weights:?} t={t}"), &got, &want, 1e-4);
        }
        assert!(matches!(pollster::block_on(gpu.user_vector(ctx, &[])), Err(GpuError::Shape { .. })));
        let too_long = rng.vec((config.max_len + 1) * d);
        assert!(matches!(pollster::block_on(gpu.user_vector(ctx, &too_long)), Err(GpuError::Shape { .. })));
    }
    // A tower file missing a tensor is refused with the file and tensor named.
    let mut partial = tensors.clone();
    partial.remove("sequence_tower.final_norm.bias");
    let bytes = tower_gguf(&partial, TowerPart::Sequence, &config, WeightsDtype::Q8_0).unwrap();
    let gguf = Gguf::parse(&bytes, file).unwrap();
    let error = GpuSequenceTower::load(ctx, &gguf, file, &config).unwrap_err().to_string();
    assert!(error.contains(file) && error.contains("final_norm.bias"), "{error}");
}

/// A sequence tower's tensors (export's names and shapes), random: LayerNorm weights near 1.
#[cfg(feature = "native")]
fn random_sequence_tower(
    rng: &mut Rng,
    config: &omakase::model::ModelConfig,
) -> std::collections::HashMap<String, candle_core::Tensor> {
    let (d, f) = (config.dim, config.ffn_dim);
    let mut shapes: Vec<(String, Vec<usize>)> =
        vec![("sequence_tower.position_embedding".into(), vec![config.max_len, d])];
    for i in 0..config.num_layers {
        let l = format!("sequence_tower.layers.{i}");
        for norm in ["attention_norm", "ffn_norm"] {
            shapes.push((format!("{l}.{norm}.weight"), vec![d]));
            shapes.push((format!("{l}.{norm}.bias"), vec![d]));
        }
        for name in ["query", "key", "value", "output"] {
            shapes.push((format!("{l}.attention.{name}.weight"), vec![d, d]));
            shapes.push((format!("{l}.attention.{name}.bias"), vec![d]));
        }
        shapes.push((format!("{l}.ffn.up.weight"), vec![f, d]));
        shapes.push((format!("{l}.ffn.up.bias"), vec![f]));
        shapes.push((format!("{l}.ffn.down.weight"), vec![d, f]));
        shapes.push((format!("{l}.ffn.down.bias"), vec![d]));
    }
    shapes.push(("sequence_tower.final_norm.weight".into(), vec![d]));
    shapes.push(("sequence_tower.final_norm.bias".into(), vec![d]));
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                rng.vec(n).iter().map(|v| 1.0 + 0.1 * v).collect()
            } else {
                rng.vec(n).iter().map(|v| v * 0.2).collect()
            };
            (name, candle_core::Tensor::from_vec(values, shape, &candle_core::Device::Cpu).unwrap())
        })
        .collect()
}

/// The GPU tower keeps its activation buffers, uniform slots and bind groups between calls (tower.rs
/// § Buffer lifetime): calls alternating between session lengths (a longer one leaves values beyond
/// a shorter one's positions) each give the CPU tower's user vector.
#[cfg(feature = "native")]
#[test]
fn sequence_tower_reuses_buffers_across_session_lengths() {
    use omakase::export::{tower_gguf, TowerPart};
    use omakase::model::ModelConfig;
    use omakase::runtime::gguf::Gguf;
    use omakase::runtime::gpu::GpuSequenceTower;
    use omakase::runtime::tower::SequenceTower;
    use omakase::runtime::WeightsDtype;

    let ctx = gpu_or_skip!();
    let mut rng = Rng::new(17);
    let config = ModelConfig { dim: 32, num_heads: 4, num_layers: 3, ffn_dim: 96, max_len: 20, ..Default::default() };
    let tensors = random_sequence_tower(&mut rng, &config);
    let file = "sequence_tower.gguf";
    let bytes = tower_gguf(&tensors, TowerPart::Sequence, &config, WeightsDtype::Q8_0).unwrap();
    let gguf = Gguf::parse(&bytes, file).unwrap();
    let cpu = SequenceTower::load(&gguf, file, &config).unwrap();
    let gpu = GpuSequenceTower::load(ctx, &gguf, file, &config).unwrap();
    for (call, t) in [20, 3, 20, 7, 3, 1, 20].into_iter().enumerate() {
        let items = rng.vec(t * config.dim);
        let want = cpu.user_vector(&items);
        let got = pollster::block_on(gpu.user_vector(ctx, &items)).unwrap();
        assert_close(&format!("call {call}: user vector t={t}"), &got, &want, 1e-4);
    }
}

/// After the device is lost (here: destroyed), calls return errors (the runtime then finishes on the
/// CPU) and `lost()` says why; nothing panics.
#[test]
fn lost_device_gives_errors_not_panics() {
    let Some(_) = gpu() else { return };
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let ctx = pollster::block_on(GpuContext::from_adapter(&adapter, false)).unwrap();
    let mut rng = Rng::new(16);
    let (n, dim) = (100, 16);
    let (codes, scales, query) = (rng.codes(n * dim), rng.scales(n), rng.vec(dim));
    let table = pollster::block_on(int8_table(&ctx, dim, &[(&codes, &scales)]));
    assert_eq!(pollster::block_on(table.top_k(&ctx, &query, 5, &[])).unwrap().len(), 5);
    assert!(ctx.lost().is_none());
    ctx.device().destroy();
    let result = pollster::block_on(table.top_k(&ctx, &query, 5, &[]));
    assert!(result.is_err(), "top-k on a destroyed device: {result:?}");
    assert!(ctx.lost().is_some(), "lost() after destroy");
    assert!(matches!(pollster::block_on(table.top_k(&ctx, &query, 5, &[])), Err(GpuError::DeviceLost(_))));
    assert!(GpuPass::new(&ctx).is_err());
}

/// MiniLM's layers on the GPU ([`omakase::runtime::gpu::GpuBert`], from the Q8_0 text encoder GGUF the
/// bundle carries) against the CPU text encoder read from the same file: same vectors for texts of
/// 3 to 256 tokens. Needs the weights (`scripts/fetch-models.sh`; CI has them); skipped without.
#[test]
fn minilm_layers_match_cpu_text_encoder() {
    use candle_core::quantized::GgmlDType;
    use omakase::encoders::gguf::{write_text_dir, GgufPlan};
    use omakase::encoders::pipeline::{default_models_dir, TEXT_MODEL_DIR};
    use omakase::encoders::text::TextEncoder;
    use omakase::runtime::gguf::Gguf;
    use omakase::runtime::gpu::GpuBert;

    let ctx = gpu_or_skip!();
    let dir = default_models_dir().join(TEXT_MODEL_DIR);
    if !dir.join("model.safetensors").is_file() {
        eprintln!("SKIP minilm_layers_match_cpu_text_encoder: no weights in {}", dir.display());
        return;
    }
    let (bytes, _) = write_text_dir(&dir, GgufPlan::for_matrices(GgmlDType::Q8_0)).unwrap();
    let cpu = TextEncoder::from_gguf_bytes(&bytes).unwrap();
    let gguf = Gguf::parse(&bytes, "text_encoder.gguf").unwrap();
    let layers = GpuBert::load(ctx, &gguf, "text_encoder.gguf", cpu.gpu_shape()).unwrap();
    let long = "A retired codebreaker decodes a radio signal from a ship lost at sea forty years ago. ".repeat(30);
    for text in ["Toy Story", "Star Wars (1977). Action, Adventure, Romance, Sci-Fi, War.", long.as_str()] {
        let want = cpu.encode_batch(&[text]).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = pollster::block_on(cpu.encode_with_gpu(&layers, ctx, text)).unwrap();
        let tokens = cpu.tokenize(text).len();
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let cosine: f32 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
        assert!(cosine > 0.9999 && worst < 2e-3, "{tokens} tokens: cosine {cosine}, largest difference {worst}");
    }
    assert!(
        pollster::block_on(layers.forward(ctx, &[0.0; 100])).is_err(),
        "input not a multiple of the width is refused"
    );
}

// ---------------------------------------------------------------------------------------------
// EfficientNet-Lite0 on the GPU (issue 15 point 3): each conv.wgsl kernel against the CPU encoder's
// own layer on random data (`omakase::encoders::image::cpu_layers`), then the whole network against
// the CPU encoder on the committed photos.

mod efficientnet {
    use super::{gpu, Rng};
    use omakase::encoders::image::cpu_layers;
    use omakase::runtime::gpu::efficientnet::{single, ConvWeights, DepthwiseWeights, PointwiseWeights};

    /// Per value: the GPU sums the same products as the CPU in another order (and may fuse
    /// multiply-adds), so a value of magnitude m over n products differs by about √n·m·2⁻²⁴; 1e-5
    /// relative (at least 1e-5 absolute) leaves a wide margin for the ≤ 144-term sums here while
    /// still catching any wrong tap, pad or index (those are off by whole products, ≥ 1e-3).
    fn assert_close(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{what}: value {i}: GPU {g}, CPU {w}");
        }
    }

    #[test]
    fn depthwise_matches_the_cpu_layer() {
        let Some(ctx) = gpu() else { return };
        let mut rng = Rng::new(71);
        for (kernel, stride) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            for (h, w) in [(8, 8), (7, 9), (1, 1), (2, 5), (14, 13)] {
                let c = 43;
                let (taps, bias, x) = (rng.vec(kernel * kernel * c), rng.vec(c), rng.vec(h * w * c));
                let x: Vec<f32> = x.iter().map(|v| v * 3.0).collect();
                let weights = DepthwiseWeights { taps: &taps, bias: &bias, kernel, stride };
                let want = cpu_layers::depthwise(&weights, &x, (h, w)).unwrap();
                let got = pollster::block_on(single::depthwise(ctx, &weights, &x, (h, w))).unwrap();
                assert_close(&format!("depthwise k{kernel} s{stride} {h}x{w}"), &got, &want);
            }
        }
    }

    #[test]
    fn pointwise_matches_the_cpu_layer() {
        let Some(ctx) = gpu() else { return };
        let mut rng = Rng::new(72);
        // Widths off the kernel's 4×4 tile (43 outputs, 37 or 1 pixels) and the network's own.
        for (pixels, c_in, c_out) in [(37, 24, 43), (1, 16, 5), (49, 144, 24), (16, 32, 16)] {
            let (weight_t, bias, x) = (rng.vec(c_in * c_out), rng.vec(c_out), rng.vec(pixels * c_in));
            let residual = rng.vec(pixels * c_out);
            for (relu6, with_residual) in [(true, false), (false, true), (false, false)] {
                let weights = PointwiseWeights { weight_t: &weight_t, bias: &bias, c_in, relu6 };
                let residual = with_residual.then_some(residual.as_slice());
                let want = cpu_layers::pointwise(&weights, &x, residual).unwrap();
                let got = pollster::block_on(single::pointwise(ctx, &weights, &x, residual)).unwrap();
                let what = format!("pointwise {pixels}×{c_in}→{c_out} relu6 {relu6} residual {with_residual}");
                assert_close(&what, &got, &want);
            }
        }
    }

    #[test]
    fn stem_matches_the_cpu_layer() {
        let Some(ctx) = gpu() else { return };
        let mut rng = Rng::new(73);
        for (h, w, stride) in [(9, 9, 2), (8, 11, 2), (6, 5, 1), (224, 224, 2)] {
            let (c_in, c_out, kernel) = (3, 32, 3);
            let (weight_t, bias) = (rng.vec(c_in * kernel * kernel * c_out), rng.vec(c_out));
            let x = rng.vec(c_in * h * w);
            let weights = ConvWeights { weight_t: &weight_t, bias: &bias, c_in, kernel, stride, relu6: true };
            let want = cpu_layers::stem(&weights, &x, (h, w)).unwrap();
            let got = pollster::block_on(single::stem(ctx, &weights, &x, (h, w))).unwrap();
            assert_close(&format!("stem {h}x{w} s{stride}"), &got, &want);
        }
    }

    #[test]
    fn pool_is_the_mean_over_pixels() {
        let Some(ctx) = gpu() else { return };
        let mut rng = Rng::new(74);
        let (pixels, c) = (49, 1280);
        let x = rng.vec(pixels * c);
        let want: Vec<f32> = (0..c).map(|ch| (0..pixels).map(|p| x[p * c + ch]).sum::<f32>() / pixels as f32).collect();
        let got = pollster::block_on(single::pool(ctx, &x, c)).unwrap();
        assert_close("pool", &got, &want);
    }

    /// Features of the committed photos: the GPU network built from the CPU encoder's folded weights
    /// (the Q8_0 GGUF the bundle carries, as the browser reads it) against that CPU encoder. Cosine
    /// ≥ 0.9999 and |Δ| ≤ 1e-4 per value (values lie in [0, 6]): the same f32 products summed in
    /// another order through 18 layers; 1e-4 is the bound the CPU encoder's own candle path (another
    /// order again) is held to (tests/encode_device.rs). Measured on lavapipe: |Δ| ≤ 5.0e-6, cosine
    /// 1 − 1e-12 on the four photos. A wrong layer moves the features by far more.
    /// Then an odd input size (every stride-2 padding case) and a wrong input length.
    /// Needs the weights (`scripts/fetch-models.sh`); skipped without.
    #[test]
    fn network_matches_the_cpu_image_encoder() {
        use candle_core::quantized::GgmlDType;
        use candle_core::{Device, Tensor};
        use omakase::encoders::gguf::{write_image, GgufPlan};
        use omakase::encoders::image::{decode_file, ImageEncoder};
        use omakase::encoders::pipeline::{default_models_dir, IMAGE_WEIGHTS};
        use omakase::runtime::gpu::GpuEfficientNet;

        let Some(ctx) = gpu() else { return };
        let path = default_models_dir().join(IMAGE_WEIGHTS);
        if !path.is_file() {
            eprintln!("SKIP network_matches_the_cpu_image_encoder: no weights at {}", path.display());
            return;
        }
        let (bytes, _) = write_image(&std::fs::read(&path).unwrap(), GgufPlan::for_matrices(GgmlDType::Q8_0)).unwrap();
        let cpu = ImageEncoder::from_gguf_bytes(&bytes).unwrap();
        let gpu_net = pollster::block_on(cpu.load_gpu(ctx)).unwrap();
        assert_eq!(gpu_net.dispatches(), 50);
        let photos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/efficientnet-lite0/photos");
        for photo in ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"] {
            let image = decode_file(&photos.join(photo)).unwrap();
            let want = cpu.encode_rgb(&[image.view()]).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got = pollster::block_on(cpu.encode_with_gpu(&gpu_net, ctx, image.view())).unwrap();
            let (worst, cosine) = compare(&got, &want);
            eprintln!("efficientnet {photo}: cosine {cosine}, largest |Δ| {worst:e}");
            assert!(cosine >= 0.9999 && worst <= 1e-4, "{photo}: cosine {cosine}, largest |Δ| {worst}");
        }

        let (h, w) = (37, 50);
        let mut rng = Rng::new(75);
        let x = rng.vec(3 * h * w);
        let input = Tensor::from_vec(x.clone(), (1, 3, h, w), &Device::Cpu).unwrap();
        let want = cpu.network().features(&input).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let odd = pollster::block_on(GpuEfficientNet::new(ctx, &cpu.gpu_weights(), (h, w))).unwrap();
        let got = pollster::block_on(odd.forward(ctx, &x)).unwrap();
        let (worst, cosine) = compare(&got, &want);
        assert!(cosine >= 0.9999 && worst <= 1e-4, "{h}x{w}: cosine {cosine}, largest |Δ| {worst}");

        assert!(pollster::block_on(gpu_net.forward(ctx, &x)).is_err(), "a 37×50 input to the 224×224 network");
    }

    /// Largest |Δ| and cosine.
    fn compare(got: &[f32], want: &[f32]) -> (f32, f64) {
        assert_eq!(got.len(), want.len());
        let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let dot: f64 = got.iter().zip(want).map(|(a, b)| *a as f64 * *b as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        (worst, dot / (norm(got) * norm(want)))
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let Some(ctx) = gpu() else { return };
        let (taps, bias) = (vec![0.0; 9 * 4], vec![0.0; 5]);
        let weights = DepthwiseWeights { taps: &taps, bias: &bias, kernel: 3, stride: 1 };
        assert!(pollster::block_on(single::depthwise(ctx, &weights, &[0.0; 20], (2, 2))).is_err());
        let (weight_t, bias) = (vec![0.0; 12], vec![0.0; 4]);
        let weights = PointwiseWeights { weight_t: &weight_t, bias: &bias, c_in: 3, relu6: false };
        assert!(pollster::block_on(single::pointwise(ctx, &weights, &[0.0; 7], None)).is_err());
    }
}
