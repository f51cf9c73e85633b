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
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = shapes
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
        .collect();
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
