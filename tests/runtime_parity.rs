//! Parity of the exported bundle (Q8_0 towers, int8 item shards) run by `omakase::runtime` with the
//! f32 candle model it came from, on MovieLens-100K's warm-protocol test users: the top-10 (session
//! items excluded) overlap on average ≥ 0.9 and Recall@10 / NDCG@10 agree within 2 % (relative).
//!
//! The CI test trains a small model here (a few epochs) on ml100k-mm; the features file is reused when
//! `out/ml100k-mm/features.safetensors` exists, else encoded. Without `../shared` it trains on the
//! recbole wheel's ML-100K (`common::ml100k`: text features only, encoded here), which checks the same
//! parity. The same check on a full run of ml100k-mm:
//! `OMAKASE_PARITY_RUN=out/runs/e2 cargo test --test runtime_parity -- --ignored --nocapture`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use omakase::data::load::load_dir;
use omakase::encoders::features::Features;
use omakase::eval::{EvalPlan, EvalProtocol};
use omakase::export::{export, ExportJob};
use omakase::runtime::{EmbeddingDtype, Manifest, Runtime, WeightsDtype};
use omakase::train::run::{TrainJob, TrainedModel};
use omakase::train::{train, Progress, TrainConfig};

const K: usize = 10;

struct Parity {
    overlap: f64,
    recall_f32: f64,
    recall_bundle: f64,
    ndcg_f32: f64,
    ndcg_bundle: f64,
    cases: usize,
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.max(1e-12)
}

/// Top-`K` of `scores` (higher first, ties to the lower index) leaving out `exclude`.
fn top_k(scores: &[f32], exclude: &[u32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).filter(|i| !exclude.contains(i)).collect();
    order.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]).then(a.cmp(&b)));
    order.truncate(K);
    order
}

/// (recall@K, ndcg@K) of one case from its top-K list.
fn hit(top: &[u32], target: u32) -> (f64, f64) {
    match top.iter().position(|&r| r == target) {
        Some(p) => (1.0, 1.0 / ((p + 2) as f64).log2()),
        None => (0.0, 0.0),
    }
}

fn load_bundle(dir: &Path) -> Runtime {
    let manifest = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let files: HashMap<String, Vec<u8>> = manifest
        .files()
        .into_iter()
        .map(|(_, e)| (e.path.clone(), std::fs::read(dir.join(&e.path)).unwrap()))
        .collect();
    Runtime::from_manifest(&manifest, &files).unwrap()
}

fn parity(run: &Path, data: &Path, features_path: &Path) -> Parity {
    let bundle = tempfile::tempdir().unwrap();
    let out = bundle.path().join("bundle");
    let job = ExportJob {
        features: Some(features_path.to_owned()),
        weights: WeightsDtype::Q8_0,
        shard: EmbeddingDtype::Int8,
        ..ExportJob::new(run, data, &out)
    };
    let manifest = export(&job).unwrap();
    let runtime = load_bundle(&out);

    let features = Features::load(features_path).unwrap();
    let (config, _, model) = TrainedModel::load(run, &features, true).unwrap();
    let scorer = model.scorer("f32", config.model.max_len).unwrap();
    let dataset = load_dir(data).dataset;
    let plan = EvalPlan::new(&dataset, EvalProtocol::Warm);
    let cases: Vec<_> = plan.cases.iter().filter(|c| !c.history.is_empty()).collect();
    assert!(cases.len() > 500, "ML-100K has 943 test users, got {}", cases.len());

    let (mut overlap, mut r32, mut rq, mut n32, mut nq) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for chunk in cases.chunks(128) {
        let histories: Vec<&[u32]> = chunk.iter().map(|c| c.history.as_slice()).collect();
        let scores = scorer.score_batch(&histories).unwrap().to_vec2::<f32>().unwrap();
        for (case, row) in chunk.iter().zip(&scores) {
            assert_eq!(row.len(), manifest.item_count);
            let reference = top_k(row, &case.history);
            let bundle_top: Vec<u32> =
                runtime.recommend_rows(&case.history, K).unwrap().items.iter().map(|r| r.row).collect();
            assert_eq!(bundle_top.len(), K);
            assert!(bundle_top.iter().all(|r| !case.history.contains(r)), "a session item was recommended");
            overlap += reference.iter().filter(|r| bundle_top.contains(r)).count() as f64 / K as f64;
            let (a, b) = (hit(&reference, case.target), hit(&bundle_top, case.target));
            r32 += a.0;
            n32 += a.1;
            rq += b.0;
            nq += b.1;
        }
    }
    let n = cases.len() as f64;
    Parity {
        overlap: overlap / n,
        recall_f32: r32 / n,
        recall_bundle: rq / n,
        ndcg_f32: n32 / n,
        ndcg_bundle: nq / n,
        cases: cases.len(),
    }
}

fn check(p: &Parity, what: &str) {
    eprintln!(
        "{what}: {} cases; mean top-{K} overlap {:.4}; Recall@10 f32 {:.4} bundle {:.4} ({:.2} %); NDCG@10 f32 {:.4} bundle {:.4} ({:.2} %)",
        p.cases,
        p.overlap,
        p.recall_f32,
        p.recall_bundle,
        100.0 * relative(p.recall_f32, p.recall_bundle),
        p.ndcg_f32,
        p.ndcg_bundle,
        100.0 * relative(p.ndcg_f32, p.ndcg_bundle)
    );
    assert!(p.recall_f32 > 0.0, "the model must recommend something right for the comparison to mean anything");
    assert!(p.overlap >= 0.9, "mean top-10 overlap {:.4} < 0.9", p.overlap);
    assert!(relative(p.recall_f32, p.recall_bundle) <= 0.02, "Recall@10 {} vs {}", p.recall_f32, p.recall_bundle);
    assert!(relative(p.ndcg_f32, p.ndcg_bundle) <= 0.02, "NDCG@10 {} vs {}", p.ndcg_f32, p.ndcg_bundle);
}

/// The features file of the dataset: for ml100k-mm the shared cache when present (read only), else
/// encoded into `tmp`.
fn features_file(tmp: &Path, ml100k: &common::Ml100k) -> (PathBuf, bool) {
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("out/ml100k-mm/features.safetensors");
    match ml100k.multimodal && cached.is_file() {
        true => (cached, false),
        false => (tmp.join("features.safetensors"), true),
    }
}

#[test]
fn bundle_matches_the_f32_model_on_ml100k_warm_test_users() {
    let ml100k = common::ml100k();
    let data = ml100k.dir.clone();
    let tmp = tempfile::tempdir().unwrap();
    let (features, encode) = features_file(tmp.path(), &ml100k);
    let mut config = TrainConfig::default();
    config.pretrain.epochs = 2;
    config.train.epochs = 4;
    config.encode.features = features.clone();
    let run = tmp.path().join("run");
    let job = TrainJob {
        data: data.clone(),
        out: run.clone(),
        config: Some(config),
        init: None,
        encode,
        progress: Progress::Silent,
        main: true,
        baselines: Vec::new(),
        stop_after_epochs: None,
        device: Default::default(),
    };
    train(&job).unwrap();
    check(&parity(&run, &data, &features), &format!("small model trained here on {}", ml100k.name()));
}

#[test]
#[ignore = "needs a full run: OMAKASE_PARITY_RUN=out/runs/e2"]
fn bundle_matches_a_full_run() {
    let shared = common::needs_shared!("datasets/ml100k-mm");
    let run = PathBuf::from(std::env::var("OMAKASE_PARITY_RUN").unwrap_or_else(|_| "out/runs/e2".into()));
    let data = shared.join("datasets/ml100k-mm");
    let features = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("out/ml100k-mm/features.safetensors");
    check(&parity(&run, &data, &features), &format!("full run {}", run.display()));
}
