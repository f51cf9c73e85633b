//! The encoders' candle path (`TextEncoder::on_device`, `ImageEncoder::on_device`: what `omakase encode
//! --device cuda` runs) against the CPU kernels and the goldens, on the CPU device: the committed fixtures
//! (42 edge-case texts, 4 CC0 photos), within the goldens' tolerances (text 1e-5 per value and cosine ≥
//! 0.99999, `tests/text_encoder_golden.rs`; image features 1e-4, `tests/image_encoder_golden.rs`).
//! Then the CLI: the candle path writes a features file of the same format, hashes and identities
//! (`--device cpu --candle`), and a device that cannot be had is refused by name.
//!
//! Needs the weights of `scripts/fetch-models.sh`, as the golden tests do.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use candle_core::Device;
use omakase::encoders::features::Features;
use omakase::encoders::image::{crops_to_input, decode_file, ImageEncoder};
use omakase::encoders::text::TextEncoder;

const TEXT_MAX_ABS_DIFF: f32 = 1e-5;
const TEXT_MIN_COSINE: f32 = 0.99999;
const IMAGE_MAX_ABS_DIFF: f32 = 1e-4;

fn text_encoder() -> &'static TextEncoder {
    static ENCODER: OnceLock<TextEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| TextEncoder::load(&common::models_dir().join("all-minilm-l6-v2")).unwrap())
}

fn image_encoder() -> &'static ImageEncoder {
    static ENCODER: OnceLock<ImageEncoder> = OnceLock::new();
    let path = common::models_dir().join("efficientnet-lite0/efficientnet-lite0.safetensors");
    ENCODER.get_or_init(|| ImageEncoder::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (norm(a) * norm(b))) as f32
}

/// Worst |Δ| and cosine over paired rows.
fn worst(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0f32, 1f32), |(d, c), (x, y)| (d.max(max_abs_diff(x, y)), c.min(cosine(x, y))))
}

#[test]
fn text_on_the_candle_path_equals_the_kernels_and_the_goldens() {
    let golden = common::committed_text_goldens();
    let texts: Vec<&str> = golden.texts.iter().map(String::as_str).collect();
    let kernels = text_encoder();
    let on_device = kernels.on_device(&Device::Cpu).unwrap();
    assert!(kernels.device().is_none() && on_device.device().is_some_and(Device::is_cpu));

    // Batches of similar lengths (as the pipeline sends them), then one batch padded to 256 tokens.
    let want = kernels.encode(&texts, 8).unwrap().to_vec2::<f32>().unwrap();
    let sorted = on_device.encode(&texts, 8).unwrap().to_vec2::<f32>().unwrap();
    let padded = on_device.encode_batch(&texts).unwrap().to_vec2::<f32>().unwrap();
    for (what, got) in [("sorted batches", &sorted), ("one padded batch", &padded)] {
        let (diff, cos) = worst(got, &want);
        let (golden_diff, golden_cos) = worst(got, &golden.embeddings);
        eprintln!(
            "{what}: vs kernels |Δ| {diff:.2e} cos {cos:.8}; vs goldens |Δ| {golden_diff:.2e} cos {golden_cos:.8}"
        );
        assert!(diff <= TEXT_MAX_ABS_DIFF && cos >= TEXT_MIN_COSINE, "{what}: vs kernels {diff} {cos}");
        assert!(golden_diff <= TEXT_MAX_ABS_DIFF && golden_cos >= TEXT_MIN_COSINE, "{what}: vs goldens");
    }
    // The same errors as the kernels, before anything runs.
    let too_long = vec![vec![101u32; on_device.max_seq_len() + 1]];
    assert!(on_device.encode_ids(&too_long).unwrap_err().to_string().contains("257"));
    assert!(on_device.encode_ids(&[vec![101, 40_000, 102]]).is_err());
    assert_eq!(on_device.encode_batch(&[]).unwrap().dims(), &[0, 384]);
}

#[test]
fn images_on_the_candle_path_equal_the_kernels_and_the_goldens() {
    let golden = common::committed_image_goldens();
    let crops: Vec<Vec<u8>> =
        golden.rows.iter().map(|r| decode_file(&r.crop_png).unwrap().view().pixels().to_vec()).collect();
    let views: Vec<&[u8]> = crops.iter().map(Vec::as_slice).collect();
    let input = crops_to_input(&views, &Device::Cpu).unwrap();
    let kernels = image_encoder();
    let on_device = kernels.on_device(&Device::Cpu).unwrap();
    assert!(kernels.device().is_none() && on_device.device().is_some_and(Device::is_cpu));

    let want = kernels.forward(&input).unwrap();
    let got = on_device.forward(&input).unwrap();
    let (want_features, got_features) =
        (want.features.to_vec2::<f32>().unwrap(), got.features.to_vec2::<f32>().unwrap());
    let (diff, cos) = worst(&got_features, &want_features);
    let (golden_diff, _) = worst(&got_features, &golden.features);
    eprintln!("{} photos: vs kernels |Δ| {diff:.2e} cos {cos:.8}; vs goldens |Δ| {golden_diff:.2e}", crops.len());
    assert!(diff <= IMAGE_MAX_ABS_DIFF, "vs kernels {diff}");
    assert!(golden_diff <= IMAGE_MAX_ABS_DIFF, "vs goldens {golden_diff}");
    let argmax = |v: &Vec<f32>| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    let top1: Vec<usize> = got.logits.to_vec2::<f32>().unwrap().iter().map(argmax).collect();
    assert_eq!(top1, golden.rows.iter().map(|r| r.top1).collect::<Vec<_>>());

    // One at a time equals the batch (the pipeline's batches hold whatever items are left to encode).
    let single = on_device.features(&input.narrow(0, 2, 1).unwrap()).unwrap().to_vec2::<f32>().unwrap();
    assert!(max_abs_diff(&single[0], &got_features[2]) <= IMAGE_MAX_ABS_DIFF);
    // The same input checks as the kernels.
    let grey = candle_core::Tensor::zeros((1, 1, 224, 224), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(on_device.features(&grey).is_err());
}

// ---------------------------------------------------------------------------------------------
// The command line

/// A catalogue of the 4 committed photos and 4 of the edge-case texts, one item without a picture.
fn photo_shop(dir: &Path) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let golden = common::committed_text_goldens();
    let mut items = Vec::new();
    for (i, row) in common::committed_image_goldens().rows.iter().enumerate() {
        let name = format!("images/{i}.{}", row.source.extension().unwrap().to_string_lossy());
        std::fs::copy(&row.source, dir.join(&name)).unwrap();
        items.push(serde_json::json!({"item_id": format!("p{i}"), "title": golden.texts[10 + i], "image": name}));
    }
    items.push(serde_json::json!({"item_id": "words", "title": golden.texts[39]}));
    let lines: Vec<String> = items.iter().map(|item| item.to_string()).collect();
    std::fs::write(dir.join("items.jsonl"), lines.join("\n") + "\n").unwrap();
    let mut interactions = String::from("user_id,item_id,timestamp\n");
    for (t, item) in items.iter().enumerate() {
        interactions +=
            &format!("u1,{},{t}\nu2,{},{t}\n", item["item_id"].as_str().unwrap(), item["item_id"].as_str().unwrap());
    }
    std::fs::write(dir.join("interactions.csv"), interactions).unwrap();
}

/// `omakase encode --data DATA --out OUT --models MODELS EXTRA...`.
fn encode(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_omakase"));
    command.arg("encode").arg("--data").arg(data).arg("--out").arg(out);
    command.arg("--models").arg(common::models_dir()).args(extra);
    command.output().unwrap()
}

fn stdout_of_success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[test]
fn the_candle_path_writes_the_same_file_within_the_tolerances() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shop");
    photo_shop(&data);
    let (kernels_out, candle_out) = (tmp.path().join("kernels.safetensors"), tmp.path().join("candle.safetensors"));
    let stdout = stdout_of_success(&encode(&data, &kernels_out, &[]));
    assert!(stdout.contains("device         cpu (CPU kernels)"), "{stdout}");
    // Two batches of pictures: the second is prepared while the first runs.
    let candle_args = ["--device", "cpu", "--candle", "--batch", "2", "--image-batch", "3"];
    let stdout = stdout_of_success(&encode(&data, &candle_out, &candle_args));
    assert!(stdout.contains("device         cpu (candle)"), "{stdout}");
    assert!(stdout.contains("5 items with text: 5 encoded") && stdout.contains("4 encoded"), "{stdout}");

    let (kernels, candle) = (Features::load(&kernels_out).unwrap(), Features::load(&candle_out).unwrap());
    // Everything but the values is the same: ids, masks, content hashes, identities, template...
    assert_eq!((&candle.item_ids, &candle.text_template), (&kernels.item_ids, &kernels.text_template));
    for (got, want) in [(&candle.text, &kernels.text), (&candle.image, &kernels.image)] {
        assert_eq!(
            (got.dim, &got.present, &got.hashes, &got.encoder),
            (want.dim, &want.present, &want.hashes, &want.encoder)
        );
    }
    // ... so the file has the same header and length: only the values' bytes differ.
    assert_eq!(std::fs::metadata(&candle_out).unwrap().len(), std::fs::metadata(&kernels_out).unwrap().len());
    let rows = |m: &omakase::encoders::features::ModalityFeatures| -> Vec<Vec<f32>> {
        (0..m.len()).filter(|&i| m.present[i]).map(|i| m.row(i).to_vec()).collect()
    };
    let (text_diff, text_cos) = worst(&rows(&candle.text), &rows(&kernels.text));
    let (image_diff, _) = worst(&rows(&candle.image), &rows(&kernels.image));
    assert!(text_diff <= TEXT_MAX_ABS_DIFF && text_cos >= TEXT_MIN_COSINE, "text {text_diff} {text_cos}");
    assert!(image_diff <= IMAGE_MAX_ABS_DIFF, "image {image_diff}");

    // The kernels' file is the candle path's cache and the other way round: same identities.
    let stdout = stdout_of_success(&encode(&data, &candle_out, &[]));
    assert!(stdout.contains("0 encoded, 5 reused") && stdout.contains("0 encoded, 4 reused"), "{stdout}");
}

/// A binary built without CUDA asked for a GPU: exit 2 naming the fallback, before any file is made;
/// `auto` encodes on the CPU kernels and says why.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_gpu_that_cannot_be_had_is_refused_by_name_and_auto_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shop");
    photo_shop(&data);
    let out = tmp.path().join("features.safetensors");
    for (device, named) in [("cuda", "--device cuda:0"), ("cuda:1", "--device cuda:1")] {
        let output = encode(&data, &out, &["--device", device]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
        assert!(stderr.contains("built without CUDA"), "{stderr}");
        assert!(stderr.contains("encode on the CPU with --device cpu"), "the fallback is named: {stderr}");
        assert!(!out.exists(), "nothing is written before the device opens");
    }
    let output = encode(&data, &out, &["--device", "tpu"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`tpu` is not a device"));

    let output = encode(&data, &out, &["--device", "auto", "--text-only"]);
    let stdout = stdout_of_success(&output);
    assert!(String::from_utf8_lossy(&output.stderr).contains("auto: on the CPU (this omakase was built without CUDA"));
    assert!(stdout.contains("device         cpu (CPU kernels)"), "{stdout}");
}
