//! Both encoders as GGUF (`omakase::encoders::gguf`): round trip (written → read back → the same
//! embeddings as the in-memory quantized encoder), accuracy against the f32 goldens (Q8_0: mean
//! cosine ≥ 0.995 on all 404 texts and 125 crops, min printed; Q4_0 printed on a subsample), and
//! malformed files (truncated, wrong magic, missing tensor, wrong shape) → errors, no panic.
//! Without `../shared` the golden checks run on the committed excerpts (the 42 MiniLM edge cases, the 4
//! photos of `tests/fixtures/efficientnet-lite0/`) and record that they did (`tests/common/mod.rs`).
//! Run with `--nocapture` for the sizes and figures.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use omakase::encoders::gguf::{self, GgufError, GgufPlan};
use omakase::encoders::image::{crops_to_input, decode_file, ImageEncoder};
use omakase::encoders::text::TextEncoder;

const Q8_MIN_MEAN_COSINE: f32 = 0.995;

fn text_dir() -> PathBuf {
    common::models_dir().join("all-minilm-l6-v2")
}

fn image_path() -> PathBuf {
    common::models_dir().join("efficientnet-lite0/efficientnet-lite0.safetensors")
}

fn text_weights() -> &'static Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(text_dir().join("model.safetensors")).unwrap())
}

fn tokenizer_json() -> String {
    std::fs::read_to_string(text_dir().join("tokenizer.json")).unwrap()
}

fn config_json() -> String {
    std::fs::read_to_string(text_dir().join("config.json")).unwrap()
}

fn image_weights() -> &'static Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(image_path()).unwrap())
}

fn text_gguf(plan: GgufPlan) -> Vec<u8> {
    gguf::write_text(text_weights(), &tokenizer_json(), Some(&config_json()), 256, plan).unwrap().0
}

fn image_gguf(plan: GgufPlan) -> Vec<u8> {
    gguf::write_image(image_weights(), plan).unwrap().0
}

/// The golden texts and their sentence-transformers embeddings: all 404 with `../shared`, else the 42
/// committed edge cases, the calling test then being recorded as reduced.
macro_rules! text_goldens {
    () => {{
        let golden = common::text_goldens(common::test_name!());
        (&golden.texts, &golden.embeddings)
    }};
}

/// The golden crops (RGB8), the reference features and its top-1 classes: all 125 with `../shared`, else
/// the 4 committed photos, the calling test then being recorded as reduced.
struct ImageGoldens {
    crops: Vec<Vec<u8>>,
    features: Vec<Vec<f32>>,
    top1: Vec<usize>,
}

macro_rules! image_goldens {
    () => {{
        common::image_goldens(common::test_name!());
        image_golden_crops()
    }};
}

fn image_golden_crops() -> &'static ImageGoldens {
    static GOLDEN: OnceLock<ImageGoldens> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        let golden = common::image_golden_set();
        let crops = golden.rows.iter().map(|r| decode_file(&r.crop_png).unwrap().view().pixels().to_vec()).collect();
        let top1 = golden.logits.iter().map(|l| argmax(l)).collect();
        ImageGoldens { crops, features: golden.features.clone(), top1 }
    })
}

/// Every `full_step`-th of `n` golden rows: the full sets are subsampled, the committed excerpts (42 texts,
/// 4 photos) are small enough to take whole.
fn sample(n: usize, full_step: usize, full: bool) -> Vec<usize> {
    every(n, if full { full_step } else { 1 })
}

fn encode_texts(encoder: &TextEncoder, texts: &[String]) -> Vec<Vec<f32>> {
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    encoder.encode(&texts, 32).unwrap().to_vec2().unwrap()
}

/// Features and top-1 classes of crops, 16 at a time.
fn encode_crops(encoder: &ImageEncoder, crops: &[Vec<u8>]) -> (Vec<Vec<f32>>, Vec<usize>) {
    let (mut features, mut top1) = (Vec::new(), Vec::new());
    for chunk in crops.chunks(16) {
        let views: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let out = encoder.forward(&crops_to_input(&views, &Device::Cpu).unwrap()).unwrap();
        features.extend(out.features.to_vec2::<f32>().unwrap());
        top1.extend(out.logits.to_vec2::<f32>().unwrap().iter().map(|l| argmax(l)));
    }
    (features, top1)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// (mean, min) cosine of matching rows.
fn cosines(got: &[Vec<f32>], want: &[Vec<f32>]) -> (f32, f32) {
    assert_eq!(got.len(), want.len());
    let all: Vec<f32> = got.iter().zip(want).map(|(a, b)| cosine(a, b)).collect();
    (all.iter().sum::<f32>() / all.len() as f32, all.iter().copied().fold(f32::INFINITY, f32::min))
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Every k-th index of `n` (the Q4_0 subsample).
fn every(n: usize, k: usize) -> Vec<usize> {
    (0..n).step_by(k).collect()
}

#[test]
fn text_round_trip_equals_the_in_memory_quantized_encoder() {
    // Tables and small tensors as f32: the file then holds exactly what `quantized` computes with.
    let plan = GgufPlan { matrices: GgmlDType::Q8_0, tables: GgmlDType::F32, rest: GgmlDType::F32 };
    let from_file = TextEncoder::from_gguf_bytes(&text_gguf(plan)).unwrap();
    let in_memory = TextEncoder::load(&text_dir()).unwrap().quantized(GgmlDType::Q8_0).unwrap();
    let (golden, _) = text_goldens!();
    let texts: Vec<String> = sample(golden.len(), 8, golden.len() == 404).iter().map(|&i| golden[i].clone()).collect();
    let diff = max_abs_diff(&encode_texts(&from_file, &texts), &encode_texts(&in_memory, &texts));
    println!("text Q8_0 GGUF vs in-memory Q8_0: max |Δ| {diff:.2e} over {} texts", texts.len());
    assert!(diff < 1e-6, "max |Δ| {diff}");
    assert_eq!(from_file.max_seq_len(), 256);
}

#[test]
fn image_round_trip_matches_the_in_memory_quantized_encoder() {
    let plan = GgufPlan::for_matrices(GgmlDType::Q8_0);
    let bytes = image_gguf(plan);
    let from_file = ImageEncoder::from_gguf_bytes(&bytes).unwrap();
    // Written twice, byte for byte the same file.
    assert!(bytes == image_gguf(plan), "writing is not deterministic");
    let in_memory = ImageEncoder::load(&image_path()).unwrap().quantized(GgmlDType::Q8_0).unwrap();
    let golden = image_goldens!();
    let crops: Vec<Vec<u8>> =
        sample(golden.crops.len(), 8, golden.crops.len() == 125).iter().map(|&i| golden.crops[i].clone()).collect();
    let (got, _) = encode_crops(&from_file, &crops);
    let (want, _) = encode_crops(&in_memory, &crops);
    // Quantized before vs after BatchNorm folding: same codes, block scales rounded apart (module docs).
    let (mean, min) = cosines(&got, &want);
    println!("image Q8_0 GGUF vs in-memory Q8_0: cosine mean {mean:.6} min {min:.6} over {} crops", crops.len());
    assert!(min > 0.999, "min cosine {min}");

    // F32 everywhere: the file gives back the f32 encoder exactly.
    let plan = GgufPlan { matrices: GgmlDType::F32, tables: GgmlDType::F32, rest: GgmlDType::F32 };
    let exact = ImageEncoder::from_gguf_bytes(&image_gguf(plan)).unwrap();
    let f32_encoder = ImageEncoder::load(&image_path()).unwrap();
    let diff = max_abs_diff(&encode_crops(&exact, &crops[..4]).0, &encode_crops(&f32_encoder, &crops[..4]).0);
    assert_eq!(diff, 0.0, "F32 GGUF differs from the safetensors encoder");
}

#[test]
fn text_accuracy_against_the_f32_goldens() {
    let (texts, golden) = text_goldens!();
    let q8 = TextEncoder::from_gguf_bytes(&text_gguf(GgufPlan::for_matrices(GgmlDType::Q8_0))).unwrap();
    let (mean, min) = cosines(&encode_texts(&q8, texts), golden);
    println!("text Q8_0 (Q8_0 tables): cosine to f32 goldens mean {mean:.5} min {min:.5} over {} texts", texts.len());
    assert!(mean >= Q8_MIN_MEAN_COSINE, "Q8_0 mean cosine {mean} < {Q8_MIN_MEAN_COSINE}");

    let subsample = sample(texts.len(), 4, texts.len() == 404);
    let texts: Vec<String> = subsample.iter().map(|&i| texts[i].clone()).collect();
    let golden: Vec<Vec<f32>> = subsample.iter().map(|&i| golden[i].clone()).collect();
    let q4 = TextEncoder::from_gguf_bytes(&text_gguf(GgufPlan::for_matrices(GgmlDType::Q4_0))).unwrap();
    let (mean, min) = cosines(&encode_texts(&q4, &texts), &golden);
    println!("text Q4_0 (Q8_0 tables): cosine to f32 goldens mean {mean:.5} min {min:.5} over {} texts", texts.len());
    assert!(mean > 0.8, "Q4_0 mean cosine {mean}: the file is broken, not just coarse");

    // Measured alternative: the embedding tables in F16 (11 MB more).
    let plan = GgufPlan { tables: GgmlDType::F16, ..GgufPlan::for_matrices(GgmlDType::Q8_0) };
    let bytes = text_gguf(plan);
    let q8_tables = TextEncoder::from_gguf_bytes(&bytes).unwrap();
    let (mean, min) = cosines(&encode_texts(&q8_tables, &texts), &golden);
    println!(
        "text Q8_0 with F16 tables ({:.2} MB): cosine mean {mean:.5} min {min:.5} over {} texts",
        bytes.len() as f64 / 1e6,
        texts.len()
    );
    assert!(mean >= Q8_MIN_MEAN_COSINE, "F16 tables: mean cosine {mean}");
}

#[test]
fn image_accuracy_against_the_f32_goldens() {
    let golden = image_goldens!();
    let q8 = ImageEncoder::from_gguf_bytes(&image_gguf(GgufPlan::for_matrices(GgmlDType::Q8_0))).unwrap();
    let (features, top1) = encode_crops(&q8, &golden.crops);
    let (mean, min) = cosines(&features, &golden.features);
    let same = top1.iter().zip(&golden.top1).filter(|(a, b)| a == b).count();
    println!("image Q8_0: feature cosine to f32 goldens mean {mean:.5} min {min:.5}, top-1 same {same}/{}", top1.len());
    assert!(mean >= Q8_MIN_MEAN_COSINE, "Q8_0 mean cosine {mean} < {Q8_MIN_MEAN_COSINE}");

    let subsample = sample(golden.crops.len(), 3, golden.crops.len() == 125);
    let crops: Vec<Vec<u8>> = subsample.iter().map(|&i| golden.crops[i].clone()).collect();
    let q4 = ImageEncoder::from_gguf_bytes(&image_gguf(GgufPlan::for_matrices(GgmlDType::Q4_0))).unwrap();
    let (features, top1) = encode_crops(&q4, &crops);
    let want: Vec<Vec<f32>> = subsample.iter().map(|&i| golden.features[i].clone()).collect();
    let (mean, min) = cosines(&features, &want);
    let same = top1.iter().zip(&subsample).filter(|(a, &i)| **a == golden.top1[i]).count();
    println!("image Q4_0: feature cosine mean {mean:.5} min {min:.5}, top-1 same {same}/{}", crops.len());
    // 4-bit pointwise convs are coarse for this network; the in-memory Q4_0 encoder shows the same.
    let in_memory = ImageEncoder::load(&image_path()).unwrap().quantized(GgmlDType::Q4_0).unwrap();
    let (reference, _) = encode_crops(&in_memory, &crops);
    let (ref_mean, _) = cosines(&reference, &want);
    println!("image Q4_0 in memory (quantized after folding): feature cosine mean {ref_mean:.5}");
    assert!(mean > 0.5 && (mean - ref_mean).abs() < 0.05, "Q4_0 file {mean} vs in-memory {ref_mean}");
}

#[test]
fn files_are_smaller_than_the_f32_safetensors() {
    for (name, dtype) in [("q8_0", GgmlDType::Q8_0), ("q4_0", GgmlDType::Q4_0), ("f16", GgmlDType::F16)] {
        let plan = GgufPlan::for_matrices(dtype);
        let (text, image) = (text_gguf(plan).len(), image_gguf(plan).len());
        println!(
            "{name}: text {:.2} MB (f32 {:.2} MB), image {:.2} MB (f32 {:.2} MB)",
            text as f64 / 1e6,
            text_weights().len() as f64 / 1e6,
            image as f64 / 1e6,
            image_weights().len() as f64 / 1e6
        );
        assert!(text < text_weights().len() / 2 + 1_000_000, "{name} text file {text} bytes");
        assert!(image < image_weights().len() * 6 / 10, "{name} image file {image} bytes");
    }
}

/// A text GGUF of MiniLM's weights after `edit` (valid file, wrong content).
fn edited_text_gguf(edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> Vec<u8> {
    let mut tensors = candle_core::safetensors::load_buffer(text_weights(), &Device::Cpu).unwrap();
    edit(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    gguf::write_text(&bytes, &tokenizer_json(), None, 256, GgufPlan::for_matrices(GgmlDType::Q8_0)).unwrap().0
}

#[test]
fn malformed_files_give_clear_errors() {
    let good = text_gguf(GgufPlan::for_matrices(GgmlDType::Q8_0));
    let message = |bytes: &[u8]| TextEncoder::from_gguf_bytes(bytes).unwrap_err().to_string();

    for cut in [0, 3, 16, 200, good.len() / 2, good.len() - 1] {
        let err = message(&good[..cut]);
        assert!(err.starts_with("GGUF file") || err.starts_with("tensor `"), "truncated at {cut}: {err}");
    }
    let mut wrong_magic = good.clone();
    wrong_magic[..4].copy_from_slice(b"GGML");
    assert!(message(&wrong_magic).contains("GGUF file: reading the header"), "{}", message(&wrong_magic));

    let image = image_gguf(GgufPlan::for_matrices(GgmlDType::Q8_0));
    let err = message(&image);
    assert!(err.contains("expected `omakase-minilm`"), "{err}");
    assert!(matches!(TextEncoder::from_gguf_bytes(&image), Err(GgufError::Architecture { .. })));

    // Valid files of the wrong content: the encoder's own checks name the tensor.
    let name = "encoder.layer.3.output.dense.weight";
    let missing = message(&edited_text_gguf(|t| drop(t.remove(name))));
    assert!(missing.contains(name) && missing.contains("is missing"), "{missing}");
    let wrong = Tensor::zeros((384, 1024), candle_core::DType::F32, &Device::Cpu).unwrap();
    let shape = message(&edited_text_gguf(|t| drop(t.insert(name.to_string(), wrong))));
    assert!(shape.contains(name) && shape.contains("shape"), "{shape}");

    let mut bad_image = image.clone();
    bad_image.truncate(image.len() - 1000);
    let err = ImageEncoder::from_gguf_bytes(&bad_image).unwrap_err().to_string();
    assert!(err.contains("tensor `") && err.contains("remaining"), "{err}");
}
