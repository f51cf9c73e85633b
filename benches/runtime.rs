//! Session → top-10 on the CPU: the runtime's scan + streaming top-K (`kernels::top_k_int8`,
//! `kernels::top_k_f16`) over synthetic item shards of 10k, 100k and 1M items at the bundle's
//! dimension (64; 256 up to 100k), next to, in the same run and on the very same bytes:
//! - `bound`: the memory-bandwidth bound, every byte of the shard (rows and scales) summed by the
//!   fastest loop we could write (AVX2 `vpsadbw`, four accumulators, 128 bytes per iteration);
//! - `scalar`: a straightforward loop (f32 dot per row, accumulated in order, pushed into the same
//!   top-K), what one writes without thinking about speed.
//!
//! `session/*`: the sequence tower's latency per session update (`Runtime::user_vector`, sessions of 1,
//! 10 and 50 items, d = 64, ffn 256, 1 and 2 layers, Q8_0 weights, as `export::synthetic_runtime`
//! builds them) and the whole update → top-10 with explanations (`Runtime::recommend_rows`) over
//! 100k int8 items.
//!
//! Before criterion's groups, each int8 shard is also timed in **pairs**: a top-10 pass and a bound
//! pass back to back, 101 times, and the median of the per-pair ratios is printed (`paired:` lines):
//! both sides of a ratio then see the same moment's load, which a shared machine needs.
//!
//! One iteration = one whole shard; criterion reports items/s (`Throughput::Elements`).
//! `bench/runtime-table.py` turns the medians into ns/item and the two ratios (bench/README.md).
//! `OMAKASE_BENCH_CLOCK=cpu` times by the process's CPU time instead of wall time (loaded machines).
//! `OMAKASE_BENCH_SIZES=10000,100000` picks the shard sizes.

#[path = "support/clock.rs"]
mod clock;
use clock::measure;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::f16;
use omakase::runtime::kernels::{self, Hit, TopK};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const K: usize = 10;

/// Sum of all bytes, as fast as this CPU reads them: the bandwidth bound of one scan.
fn sum_bytes(bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 checked just above.
            return unsafe { sum_bytes_avx2(bytes) };
        }
    }
    bytes.iter().map(|&b| b as u64).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_bytes_avx2(bytes: &[u8]) -> u64 {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_si256();
    let mut acc = [zero; 4];
    let chunks = bytes.chunks_exact(128);
    let tail = chunks.remainder();
    for chunk in chunks {
        let p = chunk.as_ptr() as *const __m256i;
        for (i, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_add_epi64(*acc, _mm256_sad_epu8(_mm256_loadu_si256(p.add(i)), zero));
        }
    }
    let total = _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
    let mut lanes = [0u64; 4];
    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, total);
    lanes.iter().sum::<u64>() + tail.iter().map(|&b| b as u64).sum::<u64>()
}

fn as_bytes<T>(values: &[T]) -> &[u8] {
    // SAFETY: plain numbers (i8, f32, f16), any byte pattern is a valid u8.
    unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) }
}

/// The straightforward int8 loop: an f32 dot per row, summed in order, then the top-K.
fn scalar_top_k_int8(rows: &[i8], scales: &[f32], dim: usize, query: &[f32], exclude: &[usize]) -> Vec<Hit> {
    let mut top = TopK::with_excluded(K, exclude);
    for (i, (row, &scale)) in rows.chunks_exact(dim).zip(scales).enumerate() {
        let mut dot = 0f32;
        for j in 0..dim {
            dot += row[j] as f32 * query[j];
        }
        top.push(i, scale * dot);
    }
    top.into_sorted()
}

/// The straightforward f16 loop.
fn scalar_top_k_f16(rows: &[f16], dim: usize, query: &[f32], exclude: &[usize]) -> Vec<Hit> {
    let mut top = TopK::with_excluded(K, exclude);
    for (i, row) in rows.chunks_exact(dim).enumerate() {
        let mut dot = 0f32;
        for j in 0..dim {
            dot += row[j].to_f32() * query[j];
        }
        top.push(i, dot);
    }
    top.into_sorted()
}

/// Times `top` and `bound` alternately (101 pairs, after 3 warm-up pairs) and prints the median ns/item
/// of each and the median of the per-pair ratios.
fn paired_ratios<A, B>(name: &str, n: usize, mut top: impl FnMut() -> A, mut bound: impl FnMut() -> B) {
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
    let (mut tops, mut bounds, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pass in 0..104 {
        let t = time(&mut || {
            black_box(top());
        });
        let b = time(&mut || {
            black_box(bound());
        });
        if pass >= 3 {
            tops.push(t);
            bounds.push(b);
            ratios.push(t / b);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let per_item = |s: f64| s * 1e9 / n as f64;
    eprintln!(
        "paired: {name} {n} items: top-10 {:.3} ns/item, bound {:.3} ns/item, median ratio {:.2} (load {})",
        per_item(median(&mut tops)),
        per_item(median(&mut bounds)),
        median(&mut ratios),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?")
    );
}

fn sizes() -> Vec<usize> {
    std::env::var("OMAKASE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().parse().expect("OMAKASE_BENCH_SIZES: numbers")).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

/// A session's worth of excluded items (its own items), spread over the shard.
fn session(n: usize) -> Vec<usize> {
    (0..20).map(|i| i * n / 20).collect()
}

fn scan(c: &mut Criterion) {
    eprintln!(
        "kernel path: {}; load: {}",
        kernels::path(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for dim in [64, 256] {
        for n in sizes() {
            if dim == 256 && n > 100_000 {
                continue;
            }
            let rows: Vec<i8> = (0..n * dim).map(|_| rng.next_u32() as u8 as i8).collect();
            let scales: Vec<f32> = (0..n).map(|_| 0.5 + (rng.next_u32() % 1000) as f32 / 1000.0).collect();
            let query: Vec<f32> = (0..dim).map(|_| (rng.next_u32() % 2001) as f32 / 1000.0 - 1.0).collect();
            let exclude = session(n);

            paired_ratios(
                &format!("int8-d{dim}"),
                n,
                || kernels::top_k_int8(&rows, &scales, dim, &query, K, &exclude),
                || sum_bytes(as_bytes(&rows)) + sum_bytes(as_bytes(&scales)),
            );
            let mut group = c.benchmark_group(format!("int8-d{dim}"));
            group.throughput(Throughput::Elements(n as u64));
            group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(20);
            group.bench_function(BenchmarkId::new("top10", n), |b| {
                measure(b, || kernels::top_k_int8(&rows, &scales, dim, &query, K, &exclude))
            });
            group.bench_function(BenchmarkId::new("bound", n), |b| {
                measure(b, || sum_bytes(as_bytes(&rows)) + sum_bytes(as_bytes(&scales)))
            });
            group.bench_function(BenchmarkId::new("scalar", n), |b| {
                measure(b, || scalar_top_k_int8(&rows, &scales, dim, &query, &exclude))
            });
            group.finish();
            drop(rows);

            if dim == 64 {
                let halves: Vec<f16> =
                    (0..n * dim).map(|_| f16::from_f32((rng.next_u32() % 2001) as f32 / 4000.0 - 0.25)).collect();
                let mut group = c.benchmark_group(format!("f16-d{dim}"));
                group.throughput(Throughput::Elements(n as u64));
                group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(20);
                group.bench_function(BenchmarkId::new("top10", n), |b| {
                    measure(b, || kernels::top_k_f16(&halves, dim, &query, K, &exclude))
                });
                group.bench_function(BenchmarkId::new("bound", n), |b| measure(b, || sum_bytes(as_bytes(&halves))));
                group.bench_function(BenchmarkId::new("scalar", n), |b| {
                    measure(b, || scalar_top_k_f16(&halves, dim, &query, &exclude))
                });
                group.finish();
            }
        }
    }
}

/// Sequence tower latency per session update, and the whole update → top-10 with explanations.
#[cfg(feature = "native")]
fn session_update(c: &mut Criterion) {
    use omakase::model::ModelConfig;
    use omakase::runtime::EmbeddingDtype;
    let mut group = c.benchmark_group("session");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    for layers in [1, 2] {
        let config = ModelConfig {
            dim: 64,
            num_heads: 2,
            num_layers: layers,
            ffn_dim: 256,
            max_len: 50,
            ..ModelConfig::default()
        };
        let items = if layers == 1 { 100_000 } else { 1_000 };
        let runtime =
            omakase::export::synthetic_runtime(&config, items, EmbeddingDtype::Int8, 3).expect("synthetic runtime");
        for length in [1u32, 10, 50] {
            let session: Vec<u32> = (0..length).map(|i| i * 7 % items as u32).collect();
            group.bench_function(BenchmarkId::new(format!("tower-d64-l{layers}"), length), |b| {
                measure(b, || runtime.user_vector(&session).expect("user vector"))
            });
            if layers == 1 {
                group.bench_function(BenchmarkId::new("recommend-100k-d64-l1", length), |b| {
                    measure(b, || runtime.recommend_rows(&session, K).expect("recommend"))
                });
            }
        }
    }
    group.finish();
}

#[cfg(not(feature = "native"))]
fn session_update(_: &mut Criterion) {}

criterion_group!(benches, scan, session_update);
criterion_main!(benches);
