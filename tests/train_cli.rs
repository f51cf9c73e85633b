//! `omakase train` as a process: killed with SIGKILL at an arbitrary moment it resumes to the same
//! result as an uninterrupted run; it encodes the catalogue first (a cache hit the second time);
//! bad input exits 2 naming the problem.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use candle_core::Device;
use omakase::encoders::features::{Features, ModalityFeatures};

const ITEMS: usize = 24;

/// A dataset whose users walk the items in +1 steps, and (optionally) random features for it.
fn dataset(dir: &Path, with_features: bool) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let items: String = (0..ITEMS)
        .map(|i| format!("{{\"item_id\": \"i{i}\", \"title\": \"Product number {i}\", \"image\": null}}\n"))
        .collect();
    std::fs::write(data.join("items.jsonl"), items).unwrap();
    let mut interactions = String::from("user_id,item_id,timestamp\n");
    for user in 0..20 {
        for t in 0..(6 + user % 9) {
            interactions += &format!("u{user},i{},{t}\n", (user * 5 + t) % ITEMS);
        }
    }
    std::fs::write(data.join("interactions.csv"), interactions).unwrap();
    let features = dir.join("features.safetensors");
    if with_features {
        let mut state = 11u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let mut text = ModalityFeatures::absent(ITEMS, 384, None);
        let mut image = ModalityFeatures::absent(ITEMS, 1280, None);
        for i in 0..ITEMS {
            text.set_row(i, &(0..384).map(|_| next()).collect::<Vec<_>>(), [i as u8; 32]);
            if i % 2 == 0 {
                image.set_row(i, &(0..1280).map(|_| next()).collect::<Vec<_>>(), [i as u8; 32]);
            }
        }
        let ids = (0..ITEMS).map(|i| format!("i{i}")).collect();
        Features { item_ids: ids, text, image, text_template: None }.save(&features).unwrap();
    }
    (data, features)
}

fn config(dir: &Path, features: &Path, epochs: usize) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[model]\ndim = 16\nffn_dim = 32\nmax_len = 8\n[pretrain]\nepochs = 3\nbatch = 6\n\
         [train]\nepochs = {epochs}\nbatch = 4\npatience = 100\n[encode]\nfeatures = \"{}\"\n",
        features.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn omakase(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_omakase"));
    command.args(args);
    command
}

fn train_args<'a>(data: &'a Path, out: &'a Path, config: &'a Path) -> Vec<String> {
    ["train", "--quiet", "--no-encode", "--data", &data.display().to_string(), "--out", &out.display().to_string()]
        .into_iter()
        .map(String::from)
        .chain(["--config".to_string(), config.display().to_string()])
        .collect()
}

fn run(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    omakase(&args).output().unwrap()
}

fn weights(run: &Path) -> HashMap<String, Vec<f32>> {
    candle_core::safetensors::load(run.join("model.safetensors"), &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

/// Each epoch's stage, epoch, loss and validation figures (not its timings).
fn figures(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
            let object = record.as_object_mut().unwrap();
            object.remove("seconds");
            object.remove("cpu_seconds");
            record
        })
        .collect()
}

#[test]
fn a_process_killed_at_any_moment_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = dataset(dir.path(), true);
    let config = config(dir.path(), &features, 12);

    let straight = dir.path().join("straight");
    let output = run(&train_args(&data, &straight, &config));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // Kill as soon as a checkpoint exists (wherever the process is then: mid-epoch, mid-write...).
    let killed = dir.path().join("killed");
    let args = train_args(&data, &killed, &config);
    let mut child = omakase(&args.iter().map(String::as_str).collect::<Vec<_>>()).spawn().unwrap();
    let start = Instant::now();
    while !killed.join("checkpoint").exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("run.json")).unwrap()).unwrap();
    assert_eq!(status["status"], "running", "the kill must land before the end");

    let output = run(&train_args(&data, &killed, &config));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(figures(&killed), figures(&straight));
    assert_eq!(weights(&killed), weights(&straight));
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = dataset(dir.path(), true);
    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, "[train]\nepochz = 3\n").unwrap();
    let out = dir.path().join("run");
    let output = run(&train_args(&data, &out, &bad_config));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("epochz"));

    let output = run(&train_args(&dir.path().join("nowhere"), &out, &config(dir.path(), &features, 1)));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("items.jsonl"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A GPU that cannot be had is a named error before any work: this build (CI's) has no CUDA, so
/// `--device cuda` exits 2 naming the fallback and makes no RUN folder; `auto` trains on the CPU,
/// says why, and run.json records the device.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_device_that_cannot_be_had_is_refused_by_name_and_auto_falls_back_to_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = dataset(dir.path(), true);
    let config = config(dir.path(), &features, 1);
    let out = dir.path().join("run");
    let with_device =
        |device: &str| [train_args(&data, &out, &config), vec!["--device".into(), device.into()]].concat();

    let output = run(&with_device("cuda"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--device cuda:0") && stderr.contains("built without CUDA"), "{stderr}");
    assert!(stderr.contains("--device cpu"), "the fallback is named: {stderr}");
    assert!(!out.exists(), "nothing is made before the device opens");

    let output = run(&with_device("tpu"));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`tpu` is not a device"));

    let mut auto = with_device("auto");
    auto.retain(|arg| arg != "--quiet");
    let output = run(&auto);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let said = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("auto: on the CPU (this omakase was built without CUDA"), "{said}");
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["device"], "cpu");
}

/// Needs the text encoder's weights (`models/`): `train` encodes a text-only catalogue, and a second
/// run finds every row in the cache.
#[test]
fn train_encodes_the_catalogue_and_reuses_the_features() {
    let models = common::models_dir();
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = dataset(dir.path(), false);
    let config = config(dir.path(), &features, 1);
    let encode_line = |out: &str| {
        let output = omakase(&["train", "--data", &data.display().to_string(), "--out", out])
            .args(["--config", &config.display().to_string()])
            .env("OMAKASE_MODELS", &models)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        stderr.lines().find(|l| l.starts_with("encode:")).unwrap_or_default().to_string()
    };
    let first = encode_line(&dir.path().join("a").display().to_string());
    assert!(first.contains(&format!("text {ITEMS} encoded / 0 cached")), "{first}");
    assert!(features.is_file());
    let second = encode_line(&dir.path().join("b").display().to_string());
    assert!(second.contains(&format!("text 0 encoded / {ITEMS} cached")), "{second}");
}
