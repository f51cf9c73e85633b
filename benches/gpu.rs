//! GPU scoring + top-10 (crates/runtime/src/gpu) on whatever adapter wgpu finds, next to the CPU kernels on
//! the same data: int8 and f16 item tables of 10k / 100k / 1M items at d = 64, and a whole session
//! update (sequence tower over 20 items, then top-10 over 100k items).
//!
//! One measured iteration is one `top_k` call as the runtime makes it: query upload, every dispatch,
//! the merge rounds and the readback of the 10 hits (the table is uploaded once, outside the timing).
//! The table's and the tower's persistent buffers and bind groups are made by the upload / load or the
//! first call (criterion's warm-up); the measured calls reuse them (runtime::gpu § Buffer lifetime).
//! The adapter's name is printed first: software adapters (lavapipe, SwiftShader) check that the
//! benchmark runs; their timings mean nothing.
//!
//! `cargo bench --bench gpu` (criterion options after `--`, e.g. `-- --quick`). `OMAKASE_BENCH_ITEMS`
//! = comma-separated table sizes (default `10000,100000,1000000`). No adapter: prints why and exits 0.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use half::f16;
use omakase::runtime::gpu::{GpuContext, GpuItemTable, GpuOptions, GpuRowFormat};
use omakase::runtime::kernels;

const DIM: usize = 64;
const K: usize = 10;

/// xorshift64*: reproducible data, fast enough for 64M values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn sizes() -> Vec<usize> {
    std::env::var("OMAKASE_BENCH_ITEMS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

fn main() {
    let ctx = match pollster::block_on(GpuContext::request(&GpuOptions::default())) {
        Ok(ctx) => ctx,
        Err(error) => {
            eprintln!("gpu bench: skipped ({error})");
            return;
        }
    };
    let info = ctx.adapter_info();
    println!(
        "gpu bench: adapter \"{}\" ({:?}, {:?}, driver {} {}), backend {}, max binding {} MiB",
        info.name,
        info.backend,
        info.device_type,
        info.driver,
        info.driver_info,
        ctx.backend_name(),
        ctx.max_binding_bytes() >> 20
    );
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    top_k(&mut criterion, &ctx);
    session(&mut criterion, &ctx);
    minilm(&mut criterion, &ctx);
    efficientnet(&mut criterion, &ctx);
    criterion.final_summary();
}

/// Scoring + top-10 over int8 and f16 tables, GPU and CPU.
fn top_k(c: &mut Criterion, ctx: &GpuContext) {
    let mut rng = Rng(0x5eed);
    let query: Vec<f32> = (0..DIM).map(|_| rng.f32()).collect();
    let exclude: Vec<usize> = (0..10).map(|i| i * 7).collect();
    let mut group = c.benchmark_group("top10_d64");
    for n in sizes() {
        group.throughput(Throughput::Elements(n as u64));
        let codes: Vec<i8> = (0..n * DIM).map(|_| (rng.next() >> 56) as u8 as i8).collect();
        let scales: Vec<f32> = (0..n).map(|_| 0.01 + 0.001 * rng.f32()).collect();
        let halves: Vec<f16> = codes.iter().map(|&c| f16::from_f32(c as f32 / 127.0)).collect();
        let mut int8 = GpuItemTable::new(GpuRowFormat::Int8, DIM).unwrap();
        pollster::block_on(int8.append_int8(ctx, &codes, &scales)).unwrap();
        let mut f16_table = GpuItemTable::new(GpuRowFormat::F16, DIM).unwrap();
        pollster::block_on(f16_table.append_f16(ctx, &halves)).unwrap();
        group.bench_with_input(BenchmarkId::new("gpu_int8", n), &n, |b, _| {
            b.iter(|| black_box(pollster::block_on(int8.top_k(ctx, &query, K, &exclude)).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("cpu_int8", n), &n, |b, _| {
            b.iter(|| black_box(kernels::top_k_int8(&codes, &scales, DIM, &query, K, &exclude)))
        });
        group.bench_with_input(BenchmarkId::new("gpu_f16", n), &n, |b, _| {
            b.iter(|| black_box(pollster::block_on(f16_table.top_k(ctx, &query, K, &exclude)).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("cpu_f16", n), &n, |b, _| {
            b.iter(|| black_box(kernels::top_k_f16(&halves, DIM, &query, K, &exclude)))
        });
    }
    group.finish();
}

/// A session update: sequence tower (d 64, 2 layers, ffn 256, Q8_0) over 20 items, then top-10 of
/// 100k int8 items; GPU (tower and scan on the device) and CPU.
fn session(c: &mut Criterion, ctx: &GpuContext) {
    use omakase::export::{tower_gguf, TowerPart};
    use omakase::model::ModelConfig;
    use omakase::runtime::gguf::Gguf;
    use omakase::runtime::gpu::GpuSequenceTower;
    use omakase::runtime::tower::SequenceTower;
    use omakase::runtime::WeightsDtype;

    let mut rng = Rng(0xface);
    let config = ModelConfig { dim: DIM, num_heads: 2, num_layers: 2, ffn_dim: 256, max_len: 50, ..Default::default() };
    let tensors = random_sequence_tower(&config, &mut rng);
    let bytes = tower_gguf(&tensors, TowerPart::Sequence, &config, WeightsDtype::Q8_0).unwrap();
    let gguf = Gguf::parse(&bytes, "sequence_tower.gguf").unwrap();
    let cpu_tower = SequenceTower::load(&gguf, "sequence_tower.gguf", &config).unwrap();
    let gpu_tower = GpuSequenceTower::load(ctx, &gguf, "sequence_tower.gguf", &config).unwrap();
    let n = 100_000;
    let codes: Vec<i8> = (0..n * DIM).map(|_| (rng.next() >> 56) as u8 as i8).collect();
    let scales: Vec<f32> = (0..n).map(|_| 0.01 + 0.001 * rng.f32()).collect();
    let mut table = GpuItemTable::new(GpuRowFormat::Int8, DIM).unwrap();
    pollster::block_on(table.append_int8(ctx, &codes, &scales)).unwrap();
    let session: Vec<usize> = (0..20).map(|i| i * 4999).collect();
    let items: Vec<f32> = session
        .iter()
        .flat_map(|&i| codes[i * DIM..(i + 1) * DIM].iter().map(|&c| c as f32 * scales[i]).collect::<Vec<_>>())
        .collect();
    let mut group = c.benchmark_group("session20_top10_100k");
    group.bench_function("gpu", |b| {
        b.iter(|| {
            pollster::block_on(async {
                let user = gpu_tower.user_vector(ctx, &items).await.unwrap();
                black_box(table.top_k(ctx, &user, K, &session).await.unwrap())
            })
        })
    });
    group.bench_function("cpu", |b| {
        b.iter(|| {
            let user = cpu_tower.user_vector(&items);
            black_box(kernels::top_k_int8(&codes, &scales, DIM, &user, K, &session))
        })
    });
    group.finish();
}

/// The text encoder (MiniLM, Q8_0 as the bundle carries it) on one product text of ~32 and ~128
/// tokens: its layers on the GPU (tokenizing, embeddings and pooling on the CPU) vs all on the CPU.
/// The GGUF comes from `OMAKASE_BENCH_TEXT_GGUF`, else is made from the models folder;
/// neither: skipped.
fn minilm(c: &mut Criterion, ctx: &GpuContext) {
    use omakase::encoders::text::TextEncoder;
    use omakase::runtime::gguf::Gguf;
    use omakase::runtime::gpu::GpuBert;

    let bytes = match std::env::var_os("OMAKASE_BENCH_TEXT_GGUF") {
        Some(path) => std::fs::read(path).expect("OMAKASE_BENCH_TEXT_GGUF"),
        None => {
            use omakase::encoders::pipeline::{default_models_dir, TEXT_MODEL_DIR};
            let dir = default_models_dir().join(TEXT_MODEL_DIR);
            if !dir.join("model.safetensors").is_file() {
                eprintln!("gpu bench: minilm skipped (no weights in {})", dir.display());
                return;
            }
            let plan = omakase::encoders::gguf::GgufPlan::for_matrices(candle_core::quantized::GgmlDType::Q8_0);
            omakase::encoders::gguf::write_text_dir(&dir, plan).unwrap().0
        }
    };
    let cpu = TextEncoder::from_gguf_bytes(&bytes).unwrap();
    let gguf = Gguf::parse(&bytes, "text_encoder.gguf").unwrap();
    let layers = GpuBert::load(ctx, &gguf, "text_encoder.gguf", cpu.gpu_shape()).unwrap();
    let short =
        "Harbour Lights (2026). Drama, Mystery. A retired codebreaker decodes a radio signal from a ship lost at sea.";
    let long = format!(
        "{short} {}",
        "The families who stayed behind have kept a secret about the night the ship went down. ".repeat(6)
    );
    let mut group = c.benchmark_group("minilm_q8_0");
    for text in [short, long.as_str()] {
        let tokens = cpu.tokenize(text).len();
        group.bench_with_input(BenchmarkId::new("gpu_layers", tokens), &text, |b, text| {
            b.iter(|| black_box(pollster::block_on(cpu.encode_with_gpu(&layers, ctx, text)).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("cpu", tokens), &text, |b, text| {
            b.iter(|| black_box(cpu.encode_batch(&[*text]).unwrap()))
        });
    }
    group.finish();
}

fn random_sequence_tower(
    config: &omakase::model::ModelConfig,
    rng: &mut Rng,
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
        shapes.extend([
            (format!("{l}.ffn.up.weight"), vec![f, d]),
            (format!("{l}.ffn.up.bias"), vec![f]),
            (format!("{l}.ffn.down.weight"), vec![d, f]),
            (format!("{l}.ffn.down.bias"), vec![d]),
        ]);
    }
    shapes.push(("sequence_tower.final_norm.weight".into(), vec![d]));
    shapes.push(("sequence_tower.final_norm.bias".into(), vec![d]));
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|_| 0.2 * rng.f32()).collect();
            (name, candle_core::Tensor::from_vec(values, shape, &candle_core::Device::Cpu).unwrap())
        })
        .collect()
}

/// The image encoder (EfficientNet-Lite0, from the Q8_0 GGUF the bundle carries, so f32 weights as the
/// browser holds them) on one preprocessed 224×224 picture: the network on the GPU (pixels uploaded,
/// 50 dispatches in one submission, the 1280 features read back) vs the CPU kernels (one image: its
/// layers split across every core). Decoding and cropping are left out of both. The GGUF comes from
/// `OMAKASE_BENCH_IMAGE_GGUF`, else is made from the models folder; neither: skipped.
/// `target/release/deps/gpu-* --bench efficientnet` runs this group alone (without `--bench`, criterion
/// only tests that it runs).
fn efficientnet(c: &mut Criterion, ctx: &GpuContext) {
    use omakase::encoders::image::{crops_to_input, ImageEncoder, INPUT_SIZE};

    let bytes = match std::env::var_os("OMAKASE_BENCH_IMAGE_GGUF") {
        Some(path) => std::fs::read(path).expect("OMAKASE_BENCH_IMAGE_GGUF"),
        None => {
            use omakase::encoders::pipeline::{default_models_dir, IMAGE_WEIGHTS};
            let path = default_models_dir().join(IMAGE_WEIGHTS);
            if !path.is_file() {
                eprintln!("gpu bench: efficientnet skipped (no weights at {})", path.display());
                return;
            }
            let plan = omakase::encoders::gguf::GgufPlan::for_matrices(candle_core::quantized::GgmlDType::Q8_0);
            omakase::encoders::gguf::write_image(&std::fs::read(&path).unwrap(), plan).unwrap().0
        }
    };
    let cpu = ImageEncoder::from_gguf_bytes(&bytes).unwrap();
    let gpu = pollster::block_on(cpu.load_gpu(ctx)).unwrap();
    let mut rng = Rng(0x1a9e);
    let crop: Vec<u8> = (0..INPUT_SIZE * INPUT_SIZE * 3).map(|_| (rng.next() >> 56) as u8).collect();
    let input = crops_to_input(&[&crop], &candle_core::Device::Cpu).unwrap();
    let pixels = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut group = c.benchmark_group("efficientnet_lite0");
    group.bench_function("gpu", |b| {
        b.iter(|| black_box(pollster::block_on(cpu.features_with_gpu(&gpu, ctx, &pixels)).unwrap()))
    });
    group.bench_function("cpu", |b| b.iter(|| black_box(cpu.features(&input).unwrap())));
    group.finish();
}
