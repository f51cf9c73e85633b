//! EfficientNet-Lite0 against the upstream PyTorch reference (`shared/golden/efficientnet-lite0/`):
//! - from the golden crops: features and logits within 1e-4, same top-1 for every image;
//! - from the original files through our decode/resize/crop: the crops themselves, and feature cosine ≥ 0.99;
//! - batched equals one at a time; malformed weights and inputs give errors, not panics.
//!
//! With `../shared` (or `$OMAKASE_SHARED`) every test runs on all 125 rows; without it, on the 4 committed
//! CC0 / public-domain photos (rows 0–3, `tests/fixtures/efficientnet-lite0/`), and records that it did
//! (`tests/common/mod.rs`). Needs `models/efficientnet-lite0/efficientnet-lite0.safetensors` either way.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use common::ImageRow as Row;
use omakase::encoders::image::{
    center_crop, crops_to_input, decode_file, ImageEncoder, ImageEncoderError, FEATURE_DIM, NUM_CLASSES,
};

/// Forward passes go in batches of this many images (the reference used 25 too).
const BATCH: usize = 25;
const MAX_ABS_DIFF: f32 = 1e-4;
const MIN_COSINE_FROM_FILES: f32 = 0.99;

fn weights_path() -> PathBuf {
    common::models_dir().join("efficientnet-lite0/efficientnet-lite0.safetensors")
}

/// Features and logits, one `Vec` per image.
type Rows2 = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Says which golden set the calling test runs on: all 125 rows with `../shared`, else the 4 committed
/// photos, the test then being recorded as reduced (or failing under `OMAKASE_REQUIRE_SHARED=1`).
macro_rules! golden_set {
    () => {
        common::image_goldens(common::test_name!())
    };
}

/// The rows of the golden set (the helpers below use it; each test has called `golden_set!()` first).
fn rows() -> &'static [Row] {
    &golden().rows
}

fn golden() -> &'static common::ImageGoldens {
    let golden = common::image_golden_set();
    assert_eq!((golden.features[0].len(), golden.logits[0].len()), (FEATURE_DIM, NUM_CLASSES));
    golden
}

/// Reference `features` and `logits`, as rows.
fn goldens() -> (&'static [Vec<f32>], &'static [Vec<f32>]) {
    (&golden().features, &golden().logits)
}

fn encoder() -> &'static ImageEncoder {
    static ENCODER: OnceLock<ImageEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| ImageEncoder::load(&weights_path()).unwrap_or_else(|e| panic!("{e}")))
}

/// The golden crops as packed RGB8 (PNG is lossless, so these are the reference's exact inputs).
fn golden_crops() -> Vec<Vec<u8>> {
    rows().iter().map(|r| decode_file(&r.crop_png).unwrap().view().pixels().to_vec()).collect()
}

/// Our crops of the original files: decode → shorter side 224 → centre crop.
fn our_crops() -> &'static [Vec<u8>] {
    static CROPS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CROPS.get_or_init(|| {
        rows().iter().map(|r| center_crop(decode_file(&r.source).unwrap_or_else(|e| panic!("{e}")).view())).collect()
    })
}

/// Features and logits of crops, `BATCH` at a time, as rows.
fn run(encoder: &ImageEncoder, crops: &[Vec<u8>], batch: usize) -> Rows2 {
    let (mut features, mut logits) = (Vec::new(), Vec::new());
    for chunk in crops.chunks(batch) {
        let views: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let out = encoder.forward(&crops_to_input(&views, &Device::Cpu).unwrap()).unwrap();
        features.extend(out.features.to_vec2::<f32>().unwrap());
        logits.extend(out.logits.to_vec2::<f32>().unwrap());
    }
    (features, logits)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (norm(a) * norm(b))) as f32
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap()
}

#[test]
fn our_crops_of_the_original_files_match_the_golden_pngs() {
    golden_set!();
    let golden = golden_crops();
    let (mut identical, mut sum, mut count, mut worst) = (0, 0u64, 0u64, (0u8, 0usize));
    for (row, (ours, theirs)) in rows().iter().zip(our_crops().iter().zip(&golden)) {
        assert_eq!(ours.len(), theirs.len());
        let diffs = ours.iter().zip(theirs).map(|(a, b)| a.abs_diff(*b));
        let (row_sum, row_max) = diffs.fold((0u64, 0u8), |(s, m), d| (s + d as u64, m.max(d)));
        sum += row_sum;
        count += ours.len() as u64;
        if row_max == 0 {
            identical += 1;
        }
        if row_max > worst.0 {
            worst = (row_max, row.index);
        }
        // PNG decoding is exact and the resampler is Pillow's own arithmetic: those crops must be identical.
        if row.source.extension().is_some_and(|e| e == "png") {
            assert_eq!(row_max, 0, "row {} ({}): crop differs from the reference", row.index, row.source.display());
        }
    }
    let mean = sum as f64 / count as f64;
    eprintln!(
        "crops from the original files: {identical}/{} identical to the golden PNGs; \
         mean |Δpixel| {mean:.4}, max |Δpixel| {} (row {})",
        rows().len(),
        worst.0,
        worst.1
    );
    // JPEG decoders differ by a level here and there (zune-jpeg vs libjpeg-turbo), never by much.
    assert!(mean < 0.5, "mean |Δpixel| {mean}");
}

/// Our f32 features and logits of the golden crops (computed once, shared by the tests).
fn golden_crop_outputs() -> &'static Rows2 {
    static OUTPUTS: OnceLock<Rows2> = OnceLock::new();
    OUTPUTS.get_or_init(|| run(encoder(), &golden_crops(), BATCH))
}

#[test]
fn golden_crops_reproduce_the_reference_features_and_logits() {
    golden_set!();
    let (features, logits) = golden_crop_outputs();
    let (want_features, want_logits) = goldens();
    let (mut worst_feature, mut worst_logit) = (0f32, 0f32);
    for row in rows() {
        let i = row.index;
        let (df, dl) = (max_abs_diff(&features[i], &want_features[i]), max_abs_diff(&logits[i], &want_logits[i]));
        worst_feature = worst_feature.max(df);
        worst_logit = worst_logit.max(dl);
        assert!(df <= MAX_ABS_DIFF, "row {i}: features max |Δ| {df}");
        assert!(dl <= MAX_ABS_DIFF, "row {i}: logits max |Δ| {dl}");
        assert_eq!(argmax(&logits[i]), row.top1, "row {i} ({}): top-1 class", row.kind);
        assert_eq!(argmax(&want_logits[i]), row.top1, "index.jsonl and goldens disagree on row {i}");
    }
    eprintln!(
        "golden crops: features max |Δ| {worst_feature:.3e}, logits max |Δ| {worst_logit:.3e}, top-1 same on all {}",
        rows().len()
    );
}

#[test]
fn original_files_through_our_pipeline_stay_close() {
    golden_set!();
    let (features, logits) = run(encoder(), our_crops(), BATCH);
    let (want_features, _) = goldens();
    let (mut min_cosine, mut sum_cosine, mut top1_same) = (f32::INFINITY, 0f64, 0);
    for row in rows() {
        let i = row.index;
        let c = cosine(&features[i], &want_features[i]);
        min_cosine = min_cosine.min(c);
        sum_cosine += c as f64;
        assert!(c >= MIN_COSINE_FROM_FILES, "row {i} ({}): cosine {c}", row.source.display());
        if argmax(&logits[i]) == row.top1 {
            top1_same += 1;
        } else {
            assert_ne!(row.kind, "photo", "row {i}: a photo changed its top-1 class");
        }
    }
    eprintln!(
        "from the original files: feature cosine min {min_cosine:.6}, mean {:.6}; top-1 same on {top1_same}/{}",
        sum_cosine / rows().len() as f64,
        rows().len()
    );
}

#[test]
fn q8_0_pointwise_weights_stay_close_to_f32() {
    golden_set!();
    let q8 = encoder().quantized(GgmlDType::Q8_0).unwrap();
    let (quantized, all) = q8.network().quantized_weight_count();
    let (features, logits) = run(&q8, &golden_crops(), BATCH);
    let (f32_features, f32_logits) = golden_crop_outputs();
    let cosines: Vec<f32> = (0..rows().len()).map(|i| cosine(&features[i], &f32_features[i])).collect();
    let mean = cosines.iter().map(|&c| c as f64).sum::<f64>() / cosines.len() as f64;
    let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    let top1_same = (0..rows().len()).filter(|&i| argmax(&logits[i]) == argmax(&f32_logits[i])).count();
    eprintln!(
        "Q8_0 ({quantized} of {all} pointwise+fc weights quantized): feature cosine to f32 mean {mean:.5}, \
         min {min:.5}; top-1 same as f32 on {top1_same}/{}",
        rows().len()
    );
    assert!(mean >= 0.995, "Q8_0 mean cosine {mean}");
    assert!(min >= 0.98, "Q8_0 min cosine {min}");
    assert!(quantized * 10 >= all * 9, "only {quantized} of {all} weights quantized");
}

#[test]
fn batched_equals_one_at_a_time() {
    golden_set!();
    let crops: Vec<Vec<u8>> = golden_crops().into_iter().take(6).collect();
    let (batched_f, batched_l) = run(encoder(), &crops, crops.len());
    let (single_f, single_l) = run(encoder(), &crops, 1);
    let worst = (0..crops.len())
        .map(|i| max_abs_diff(&batched_f[i], &single_f[i]).max(max_abs_diff(&batched_l[i], &single_l[i])))
        .fold(0f32, f32::max);
    eprintln!("batched vs batch-1: max |Δ| {worst:.3e}");
    assert!(worst <= 1e-5, "batched vs batch-1 max |Δ| {worst}");
}

#[test]
fn encode_files_is_decode_crop_and_forward() {
    // Two photos: the committed ones are enough, nothing here needs ../shared.
    let photos: Vec<&PathBuf> = rows().iter().take(2).map(|r| &r.source).collect();
    let features = encoder().encode_files(&photos).unwrap();
    assert_eq!(features.dims(), &[2, FEATURE_DIM]);
    let (expected, _) = run(encoder(), &our_crops()[..2], 2);
    let got = features.to_vec2::<f32>().unwrap();
    for i in 0..2 {
        assert!(max_abs_diff(&got[i], &expected[i]) <= 1e-6);
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let grey = Tensor::zeros((1, 1, 224, 224), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(encoder().forward(&grey), Err(ImageEncoderError::InvalidInput(_))));
    let flat = Tensor::zeros((3, 224, 224), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(encoder().forward(&flat), Err(ImageEncoderError::InvalidInput(_))));

    let bytes = std::fs::read(weights_path()).unwrap();
    let truncated = ImageEncoder::from_safetensors_bytes(&bytes[..bytes.len() / 2]);
    assert!(matches!(truncated, Err(ImageEncoderError::Weights { .. })));

    // Drop one BatchNorm statistic: the error names it.
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    assert_eq!(tensors.len(), 296);
    tensors.remove("_blocks.7._bn1.running_var");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incomplete.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = ImageEncoder::load(&path).unwrap_err();
    assert!(err.to_string().contains("_blocks.7._bn1.running_var"), "{err}");
}

/// The committed rows (`tests/fixtures/efficientnet-lite0/`) are still rows 0–3 of the shared set: the
/// same photo and crop files, `index.jsonl` lines and reference tensors, bit for bit.
#[test]
fn committed_photos_are_still_the_golden() {
    let shared = common::needs_shared!("golden/efficientnet-lite0");
    let full = common::load_image_goldens(&shared.join("golden/efficientnet-lite0"), Some(&shared));
    let committed = common::committed_image_goldens();
    assert_eq!(committed.len(), 4);
    for (i, row) in committed.rows.iter().enumerate() {
        let theirs = &full.rows[i];
        assert_eq!((row.index, row.kind.as_str()), (i, "photo"));
        assert_eq!(row.line, theirs.line, "index.jsonl line {}", i + 1);
        for (ours, shared) in [(&row.source, &theirs.source), (&row.crop_png, &theirs.crop_png)] {
            assert!(
                std::fs::read(ours).unwrap() == std::fs::read(shared).unwrap(),
                "{} differs from {}",
                ours.display(),
                shared.display()
            );
        }
        assert_eq!(committed.features[i], full.features[i], "features of row {i}");
        assert_eq!(committed.logits[i], full.logits[i], "logits of row {i}");
    }
}
