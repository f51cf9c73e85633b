//! `omakase sweep` on a tiny synthetic catalogue: the default and two settings, two seeds, two epochs
//! each — the run folders and the table's files are written with every row, a second invocation
//! trains nothing and gives the same figures, and a bad `--setting` is refused naming its key.
//!
//! The catalogue: tests/common/synthetic.rs (seeded random "text" and "image" features; users walk
//! the items in steps of +1 from random starts, so a few epochs learn something).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Device;
use common::synthetic::ShopSpec;
use omakase::eval::report_html::gather;
use omakase::model::TextAdaptor;
use omakase::train::config::TrainProtocol;
use omakase::train::sweep::{run_dir, sweep, Setting, SweepJob};
use omakase::train::{Progress, TrainConfig};

/// The synthetic catalogue (tests/common/synthetic.rs) and its features file.
fn synthetic(dir: &Path) -> (PathBuf, PathBuf) {
    common::synthetic::shop(dir, ShopSpec::default())
}

fn base_config(features: &Path) -> String {
    format!(
        "[model]\ndim = 16\nnum_heads = 2\nffn_dim = 16\nmax_len = 6\n\
         [pretrain]\nepochs = 1\nbatch = 8\n\
         [train]\nepochs = 2\nbatch = 8\nwarmup_steps = 2\npatience = 50\n\
         [encode]\nfeatures = \"{}\"\n",
        features.display()
    )
}

fn job(data: &Path, out: &Path, features: &Path) -> SweepJob {
    SweepJob {
        data: data.to_owned(),
        base: TrainConfig::parse(&base_config(features), "base").unwrap(),
        settings: vec![
            Setting::parse("fast=train.lr=0.01,train.item_tower_lr=0.02").unwrap(),
            // UniSRec's adaptor end to end: trained on standardized features, folded, evaluated raw.
            Setting::parse("moe=model.text_adaptor=moe,model.adaptor_experts=3").unwrap(),
        ],
        seeds: vec![42, 43],
        protocols: vec![TrainProtocol::Warm],
        out: out.to_owned(),
        device: Default::default(),
        encode: false,
        progress: Progress::Silent,
        quiet: true,
        jobs: 2,
    }
}

#[test]
fn a_sweep_writes_its_table_and_a_second_run_trains_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let out = dir.path().join("sweep");
    let first = sweep(&job(&data, &out, &features)).unwrap();

    for name in ["default", "fast", "moe"] {
        for seed in [42, 43] {
            let run = run_dir(&out, name, seed, TrainProtocol::Warm);
            assert_eq!(run, out.join(name).join(format!("seed-{seed}")));
            for file in ["config.toml", "run.json", "model.safetensors", "history.jsonl"] {
                assert!(run.join(file).is_file(), "{}", run.join(file).display());
            }
            let config = TrainConfig::load(&run.join("config.toml")).unwrap();
            assert_eq!(config.train.seed, seed);
            assert_eq!(config.train.lr, if name == "fast" { 0.01 } else { TrainConfig::default().train.lr });
        }
    }
    let table = &first.tables[0];
    assert_eq!(table.protocol, "warm");
    assert_eq!(table.runs.len(), 6);
    assert!(table.runs.iter().all(|r| r.trained_now && r.best_epoch.is_some() && r.test_ndcg10.is_finite()));
    let names: Vec<&str> = table.settings.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["default", "fast", "moe"]);
    let moe = TrainConfig::load(&out.join("moe/seed-42/config.toml")).unwrap();
    assert_eq!((moe.model.text_adaptor, moe.model.adaptor_experts), (TextAdaptor::Moe, 3));
    let weights = candle_core::safetensors::load(out.join("moe/seed-42/model.safetensors"), &Device::Cpu).unwrap();
    assert!(weights.contains_key("item_tower.text_adaptor.experts.weight"));
    assert!(!weights.contains_key("item_tower.text_projection.weight"));
    assert!(table.settings[0].vs_default.is_none());
    let vs = table.settings[1].vs_default.as_ref().expect("the setting is compared with the default");
    assert_eq!(vs.per_seed.len(), 2);
    let [low, high] = vs.ndcg10.ci95;
    assert!(low <= vs.ndcg10.difference && vs.ndcg10.difference <= high, "{vs:?}");
    // The pooled difference is the mean of the per-seed ones, and of the rows' means.
    let per_seed_mean = vs.per_seed.values().map(|d| d.difference).sum::<f64>() / 2.0;
    assert!((vs.ndcg10.difference - per_seed_mean).abs() < 1e-12);
    let of_means = table.settings[1].test_ndcg10.mean - table.settings[0].test_ndcg10.mean;
    assert!((vs.ndcg10.difference - of_means).abs() < 1e-9, "{} vs {of_means}", vs.ndcg10.difference);

    let markdown = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(markdown.contains("| default |"), "{markdown}");
    assert!(markdown.contains("| fast (`train.item_tower_lr=0.02`, `train.lr=0.01`) |"), "{markdown}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json["tables"][0]["settings"][1]["name"], "fast");
    assert!(json["tables"][0]["settings"][1]["vs_default"]["ndcg@10"]["ci95"].is_array());

    // Each run's report finds its sweep (the seed-spread section of report.html).
    let place = gather(&out.join("moe/seed-43")).unwrap().sweep.expect("a sweep's run finds its sweep");
    assert_eq!((place.setting.as_str(), place.seed, place.table.runs.len()), ("moe", 43, 6));
    let stray = out.join("moe/seed-7");
    std::fs::create_dir_all(&stray).unwrap();
    let inputs = gather(&stray).unwrap();
    assert!(inputs.sweep.is_none());
    assert!(inputs.notes.iter().any(|n| n.contains("does not list this run")), "{:?}", inputs.notes);
    std::fs::remove_dir(&stray).unwrap();

    // Again: nothing is trained, the figures are the same.
    let history = std::fs::read(out.join("fast/seed-43/history.jsonl")).unwrap();
    let second = sweep(&job(&data, &out, &features)).unwrap();
    assert!(second.tables[0].runs.iter().all(|r| !r.trained_now));
    assert_eq!(second.tables[0].settings, first.tables[0].settings);
    assert_eq!(std::fs::read(out.join("fast/seed-43/history.jsonl")).unwrap(), history);

    // The same name with other values is refused, not mixed into the old runs.
    let mut changed = job(&data, &out, &features);
    changed.settings = vec![Setting::parse("fast=train.lr=0.02").unwrap()];
    let err = sweep(&changed).unwrap_err().to_string();
    assert!(err.contains("seed-42") && err.contains("another config"), "{err}");
}

#[test]
fn a_bad_setting_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let config = dir.path().join("base.toml");
    std::fs::write(&config, base_config(&features)).unwrap();
    let out = dir.path().join("sweep");
    let sweep = |setting: &str| {
        Command::new(env!("CARGO_BIN_EXE_omakase"))
            .arg("sweep")
            .arg(&data)
            .args(["--config".as_ref(), config.as_os_str(), "--out".as_ref(), out.as_os_str()])
            .args(["--no-encode", "--seeds", "42", "--setting", setting])
            .output()
            .unwrap()
    };
    for (setting, says) in [
        ("long=train.epochz=400", "train.epochz"),
        ("long=train.epochs=many", "train.epochs"),
        ("moe=model.dim=-3", "model.dim"),
        ("long=train.seed=7", "train.seed"),
        ("long", "NAME=key=value"),
    ] {
        let output = sweep(setting);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{setting}: {stderr}");
        assert!(stderr.contains(says), "{setting}: {stderr}");
    }
    assert!(!out.exists(), "nothing is made before every setting is checked");
}

#[test]
fn the_cli_trains_in_child_processes_with_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let config = dir.path().join("base.toml");
    std::fs::write(&config, base_config(&features)).unwrap();
    let out = dir.path().join("sweep");
    let output = Command::new(env!("CARGO_BIN_EXE_omakase"))
        .arg("sweep")
        .arg(&data)
        .args(["--config".as_ref(), config.as_os_str(), "--out".as_ref(), out.as_os_str()])
        .args(["--no-encode", "--seeds", "42,43", "--jobs", "3", "--setting", "moe=model.text_adaptor=moe"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("| default |") && stdout.contains("| moe (`model.text_adaptor=\"moe\"`) |"), "{stdout}");
    assert!(stderr.contains("training 4/4"), "{stderr}");
    for run in ["default/seed-42", "default/seed-43", "moe/seed-42", "moe/seed-43"] {
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(run).join("run.json")).unwrap()).unwrap();
        assert_eq!(info["status"], "done", "{run}");
        assert!(out.join(format!("{run}.log")).is_file(), "{run}.log");
    }
    assert!(out.join("sweep.md").is_file() && out.join("sweep.json").is_file());
}

#[test]
fn both_protocols_give_a_table_each() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let out = dir.path().join("sweep");
    let job = SweepJob {
        seeds: vec![42],
        protocols: vec![TrainProtocol::Warm, TrainProtocol::Cold],
        settings: vec![Setting::parse("moe=model.text_adaptor=moe").unwrap()],
        jobs: 1,
        ..job(&data, &out, &features)
    };
    let report = sweep(&job).unwrap();
    let protocols: Vec<&str> = report.tables.iter().map(|t| t.protocol.as_str()).collect();
    assert_eq!(protocols, ["warm", "cold"]);
    let cold = TrainConfig::load(&out.join("moe/seed-42-cold/config.toml")).unwrap();
    assert_eq!(cold.data.protocol, TrainProtocol::Cold);
    let (warm_users, cold_users) = (report.tables[0].users, report.tables[1].users);
    assert!(cold_users > 0 && cold_users < warm_users, "cold {cold_users}, warm {warm_users}");
    assert!(report.tables[1].settings[1].vs_default.is_some());
    let markdown = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(markdown.contains("warm protocol on") && markdown.contains("cold protocol on"), "{markdown}");
}
