//! Encoder throughput on the CPU: MiniLM texts/s and EfficientNet-Lite0 images/s, f32 and Q8_0, batch 1
//! and 32, on the goldens' inputs (the 404 texts of `golden/minilm/texts.jsonl`, the 125 crops of
//! `golden/efficientnet-lite0/crops/`), so `bench/pytorch_reference.py` can time PyTorch on the very same
//! work. `bench/run-encoders.sh` runs both back to back and prints the ratio; `bench/README.md` says more.
//!
//! One measured iteration is one pass over the whole input set (`encode(texts, batch)`: tokenize, sort by
//! length, pad, run; images: one `features` call per batch of the normalised crops, decoding excluded as it
//! is on the PyTorch side). Criterion reports it as items/s (`Throughput::Elements`).
//!
//! `OMAKASE_BENCH_TEXTS=n` / `OMAKASE_BENCH_IMAGES=n` take an evenly spaced subset (quick runs; the
//! Python side reads the same variables and picks the same items). `OMAKASE_BENCH_CLOCK=cpu` measures
//! the process's CPU time (all threads, from `/proc/self/stat`) instead of wall time: on a machine that
//! other work loads, what a pass costs rather than how long it waited for a core.

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "support/clock.rs"]
mod clock;
use clock::measure;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use omakase::encoders::image::{crops_to_input, decode_file, ImageEncoder};
use omakase::encoders::text::TextEncoder;

const BATCH_SIZES: [usize; 2] = [1, 32];

/// Every `total / n`-th of `total` items (all when the variable is unset or not below `total`).
fn subset<T>(items: Vec<T>, variable: &str) -> Vec<T> {
    let total = items.len();
    let wanted = std::env::var(variable).ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(total);
    if wanted == 0 || wanted >= total {
        return items;
    }
    let keep: Vec<usize> = (0..wanted).map(|i| i * total / wanted).collect();
    items.into_iter().enumerate().filter(|(i, _)| keep.binary_search(i).is_ok()).map(|(_, t)| t).collect()
}

fn golden_texts() -> Vec<String> {
    let path = common::shared_dir().join("golden/minilm/texts.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let texts = text
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("texts.jsonl line");
            v["text"].as_str().expect("texts.jsonl: text").to_string()
        })
        .collect();
    subset(texts, "OMAKASE_BENCH_TEXTS")
}

/// The golden crops in `index.jsonl` order, as normalised input `[n, 3, 224, 224]`.
fn golden_crops() -> Tensor {
    let dir = common::shared_dir().join("golden/efficientnet-lite0");
    let index = std::fs::read_to_string(dir.join("index.jsonl")).expect("index.jsonl");
    let paths: Vec<PathBuf> = index
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("index.jsonl line");
            dir.join(v["crop_png"].as_str().expect("index.jsonl: crop_png"))
        })
        .collect();
    let crops: Vec<Vec<u8>> = subset(paths, "OMAKASE_BENCH_IMAGES")
        .iter()
        .map(|p| decode_file(p).unwrap_or_else(|e| panic!("{e}")).view().pixels().to_vec())
        .collect();
    let crops: Vec<&[u8]> = crops.iter().map(Vec::as_slice).collect();
    crops_to_input(&crops, &Device::Cpu).unwrap()
}

/// Few samples of a whole pass each: a run of the eight cases takes minutes, not hours.
fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.sampling_mode(SamplingMode::Flat);
    group
}

fn text(c: &mut Criterion) {
    let f32_encoder = TextEncoder::load(&common::models_dir().join("all-minilm-l6-v2")).unwrap();
    let q8_encoder = f32_encoder.quantized(GgmlDType::Q8_0).unwrap();
    let texts = golden_texts();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut group = configure(c, "text");
    group.throughput(Throughput::Elements(texts.len() as u64));
    for (precision, encoder) in [("f32", &f32_encoder), ("q8_0", &q8_encoder)] {
        for batch in BATCH_SIZES {
            group.bench_with_input(BenchmarkId::new(precision, format!("batch{batch}")), &batch, |b, &batch| {
                measure(b, || encoder.encode(&texts, batch).unwrap())
            });
        }
    }
    group.finish();
}

fn image(c: &mut Criterion) {
    let path = common::models_dir().join("efficientnet-lite0/efficientnet-lite0.safetensors");
    let f32_encoder = ImageEncoder::load(&path).unwrap();
    let q8_encoder = f32_encoder.quantized(GgmlDType::Q8_0).unwrap();
    let input = golden_crops();
    let count = input.dim(0).unwrap();
    let mut group = configure(c, "image");
    group.throughput(Throughput::Elements(count as u64));
    for (precision, encoder) in [("f32", &f32_encoder), ("q8_0", &q8_encoder)] {
        for batch in BATCH_SIZES {
            group.bench_with_input(BenchmarkId::new(precision, format!("batch{batch}")), &batch, |b, &batch| {
                measure(b, || {
                    for start in (0..count).step_by(batch) {
                        let chunk = input.narrow(0, start, batch.min(count - start)).unwrap();
                        black_box(encoder.features(&chunk).unwrap());
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, text, image);
criterion_main!(benches);
