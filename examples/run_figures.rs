//! Validation and test figures of a trained RUN and its baselines (warm or cold protocol), unmasked
//! (primary) and history-masked — a stand-in until `omakase eval` reads runs.
//!
//! `cargo run --release --example run_figures -- RUN [DATA_DIR]` (DATA_DIR defaults to run.json's).

use std::path::{Path, PathBuf};

use omakase::data::load::load_dir;
use omakase::data::split::{self, TestCase};
use omakase::encoders::features::Features;
use omakase::eval::{evaluate, Metrics};
use omakase::train::{RunInfo, TrainedModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = PathBuf::from(args.first().ok_or("usage: run_figures RUN [DATA_DIR]")?);
    let info = RunInfo::load(&run)?;
    let data = args.get(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(&info.data_dir));
    let dataset = load_dir(&data).dataset;
    let features = Features::load(Path::new(&info.features))?;
    let protocol = if info.protocol == "cold" { split::Protocol::Cold } else { split::Protocol::Warm };
    let split = split::split(&dataset, protocol);
    let n = features.len();

    let mut runs = vec![("model".to_string(), run.clone())];
    if let Ok(entries) = std::fs::read_dir(run.join("baselines")) {
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        runs.extend(names.into_iter().map(|name| (name.clone(), run.join("baselines").join(name))));
    }
    println!(
        "{} ({} protocol): {} validation, {} test cases, {} items",
        info.dataset,
        info.protocol,
        split.validation.len(),
        split.test.len(),
        n
    );
    println!(
        "{:<14} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "model", "epoch", "val N@10", "val R@10", "test N@10", "test R@10", "N@50", "masked N", "masked R"
    );
    let mut json = serde_json::Map::new();
    for (name, dir) in runs {
        let Ok(run_info) = RunInfo::load(&dir) else { continue };
        if !dir.join("model.safetensors").is_file() {
            continue;
        }
        let (config, _, model) = TrainedModel::load(&dir, &features, true)?;
        let scorer = model.scorer(&name, config.model.max_len)?;
        let score = |cases: &[TestCase]| evaluate(scorer.as_ref(), cases, n, 256);
        let valid = score(&split.validation)?.metrics();
        let test = score(&split.test)?;
        let (unmasked, masked): (Metrics, Metrics) = (test.metrics(), test.metrics_masked());
        println!(
            "{:<14} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
            name,
            run_info.best_epoch.map_or("-".into(), |e| e.to_string()),
            valid.ndcg_at_10,
            valid.recall_at_10,
            unmasked.ndcg_at_10,
            unmasked.recall_at_10,
            unmasked.ndcg_at_50,
            masked.ndcg_at_10,
            masked.recall_at_10
        );
        json.insert(
            name,
            serde_json::json!({"valid": valid, "test": unmasked, "test_masked": masked,
                               "best_epoch": run_info.best_epoch, "seconds": run_info.seconds,
                               "cpu_seconds": run_info.cpu_seconds}),
        );
    }
    std::fs::write(run.join("figures.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
