//! Training on a tiny synthetic catalogue (fast): a killed run resumes to bit-identical weights and
//! figures, same seed ⇒ same metrics, the model learns an obvious pattern, baselines land in their
//! directories, and a RUN is never continued under another config.
//!
//! The catalogue: `N` items whose random "text" and "image" features are fixed by a seed; users walk
//! the items in steps of +1 (mod N) from random starts, so the next item is fully predictable from
//! the last one — a model whose gradients flow learns it within a few epochs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use omakase::encoders::features::{Features, ModalityFeatures};
use omakase::train::checkpoint::EpochRecord;
use omakase::train::{train, Baseline, Progress, RunInfo, TrainConfig, TrainError, TrainJob, TrainedModel};

const ITEMS: usize = 30;
const USERS: usize = 24;
/// Users who come late (see `synthetic`) and the items only they see.
const LATE_USERS: usize = 4;
const NEW_ITEMS: usize = 5;

/// Deterministic pseudo-random numbers (SplitMix64), so the fixture needs no RNG crate.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Writes the dataset directory and its features file; returns (data dir, features path).
fn synthetic(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut items = String::new();
    for i in 0..ITEMS {
        items += &format!("{{\"item_id\": \"i{i}\", \"title\": \"item {i}\", \"image\": null}}\n");
    }
    std::fs::write(data.join("items.jsonl"), items).unwrap();
    let mut numbers = Numbers(7);
    let mut interactions = String::from("user_id,item_id,timestamp\n");
    for user in 0..USERS {
        let start = numbers.next() as usize % ITEMS;
        let len = 6 + numbers.next() as usize % 12;
        // The last users come much later and are the only ones to reach the last items: under the
        // cold protocol those items are new.
        let (first_time, span) = if user < USERS - LATE_USERS { (user * 3, ITEMS - NEW_ITEMS) } else { (1000, ITEMS) };
        for t in 0..len {
            interactions += &format!("u{user},i{},{}\n", (start + t) % span, first_time + t);
        }
    }
    std::fs::write(data.join("interactions.csv"), interactions).unwrap();

    let mut text = ModalityFeatures::absent(ITEMS, 384, None);
    let mut image = ModalityFeatures::absent(ITEMS, 1280, None);
    for i in 0..ITEMS {
        let row: Vec<f32> = (0..384).map(|_| numbers.uniform()).collect();
        text.set_row(i, &row, [i as u8; 32]);
        // Two thirds of the items have a picture: pretraining has pairs, the rest tests absence.
        if i % 3 != 0 {
            let row: Vec<f32> = (0..1280).map(|_| numbers.uniform()).collect();
            image.set_row(i, &row, [i as u8 + 100; 32]);
        }
    }
    let features =
        Features { item_ids: (0..ITEMS).map(|i| format!("i{i}")).collect(), text, image, text_template: None };
    let path = dir.join("features.safetensors");
    features.save(&path).unwrap();
    (data, path)
}

fn small_config(features: &Path, epochs: usize) -> TrainConfig {
    let text = format!(
        r#"
        [model]
        dim = 16
        num_heads = 2
        num_layers = 1
        ffn_dim = 16
        max_len = 6
        [pretrain]
        epochs = 2
        batch = 8
        [train]
        epochs = {epochs}
        batch = 8
        lr = 0.005
        item_tower_lr = 0.005
        warmup_steps = 2
        patience = 50
        [encode]
        features = "{}"
        "#,
        features.display()
    );
    TrainConfig::parse(&text, "test config").unwrap()
}

fn job(data: &Path, out: &Path, config: TrainConfig) -> TrainJob {
    TrainJob {
        data: data.to_owned(),
        out: out.to_owned(),
        config: Some(config),
        init: None,
        encode: false,
        progress: Progress::Silent,
        main: true,
        baselines: Vec::new(),
        stop_after_epochs: None,
        device: Default::default(),
    }
}

fn history(run: &Path) -> Vec<EpochRecord> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// One epoch's stage, number, loss, validation figures and gradient norm.
type EpochFigures = (String, usize, f64, Option<Vec<(String, f64)>>, f64);

/// Loss and figures of each epoch (times differ from run to run, of course).
fn figures(run: &Path) -> Vec<EpochFigures> {
    history(run)
        .into_iter()
        .map(|r| {
            let valid = r.valid.map(|v| v.into_iter().collect());
            (r.stage.as_str().to_string(), r.epoch, r.loss, valid, r.grad_norm)
        })
        .collect()
}

fn weights(run: &Path) -> HashMap<String, Vec<f32>> {
    candle_core::safetensors::load(run.join("model.safetensors"), &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn a_killed_run_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let config = small_config(&features, 4);

    let straight = dir.path().join("straight");
    train(&job(&data, &straight, config.clone())).unwrap();

    // Killed after pretraining epoch 1, then after train epochs 1 and 3 (two sessions of 2 epochs),
    // then resumed to the end.
    let resumed = dir.path().join("resumed");
    for budget in [1, 2, 2] {
        let session = TrainJob { stop_after_epochs: Some(budget), ..job(&data, &resumed, config.clone()) };
        let err = train(&session).unwrap_err();
        assert!(matches!(err, TrainError::Interrupted { .. }), "{err}");
        assert_eq!(RunInfo::load(&resumed).unwrap().status, "running");
    }
    // A process killed by a signal never writes its seconds: run.json keeps what the session's
    // start wrote. The resumed run still counts the checkpointed epochs' time.
    let mut killed = RunInfo::load(&resumed).unwrap();
    killed.seconds = 0.0;
    killed.cpu_seconds = None;
    std::fs::write(resumed.join("run.json"), serde_json::to_vec(&killed).unwrap()).unwrap();
    let checkpointed: f64 = history(&resumed).iter().map(|r| r.seconds).sum();
    // Resuming needs no --config: the RUN's own config.toml is used.
    let summary = train(&TrainJob { config: None, ..job(&data, &resumed, config.clone()) }).unwrap();
    let done = summary.main.unwrap();
    assert_eq!(done.status, "done");
    assert!(done.seconds >= checkpointed && checkpointed > 0.0, "{} < {checkpointed}", done.seconds);

    assert_eq!(figures(&resumed), figures(&straight));
    assert_eq!(figures(&straight).len(), 2 + 4, "2 pretraining + 4 training epochs");
    assert_eq!(weights(&resumed), weights(&straight), "bit-identical best weights");
    let (a, b) = (RunInfo::load(&resumed).unwrap(), RunInfo::load(&straight).unwrap());
    assert_eq!((a.best_epoch, a.best_valid_ndcg_at_10), (b.best_epoch, b.best_valid_ndcg_at_10));

    // A finished run is not trained again.
    let again = train(&job(&data, &resumed, config)).unwrap();
    assert_eq!(again.main.unwrap().best_valid_ndcg_at_10, a.best_valid_ndcg_at_10);
    assert_eq!(figures(&resumed).len(), 6);
}

#[test]
fn same_seed_same_metrics_and_the_pattern_is_learned() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let config = small_config(&features, 12);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    train(&job(&data, &a, config.clone())).unwrap();
    train(&job(&data, &b, config.clone())).unwrap();
    assert_eq!(figures(&a), figures(&b));

    // Random ranking of 30 items gives NDCG@10 ≈ 0.15; the +1 successor is learnable.
    let best = RunInfo::load(&a).unwrap().best_valid_ndcg_at_10.unwrap();
    assert!(best > 0.6, "validation NDCG@10 {best}");
    let losses: Vec<f64> = history(&a).iter().filter(|r| r.stage.as_str() == "train").map(|r| r.loss).collect();
    assert!(losses.last().unwrap() < &(losses[0] * 0.7), "training loss {losses:?}");

    let mut other = config;
    other.train.seed = 43;
    let c = dir.path().join("c");
    train(&job(&data, &c, other)).unwrap();
    assert_ne!(figures(&a), figures(&c), "another seed, another run");
}

#[test]
fn baselines_land_in_their_directories_and_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let run = dir.path().join("run");
    let summary =
        train(&TrainJob { baselines: Baseline::ALL.to_vec(), ..job(&data, &run, small_config(&features, 2)) }).unwrap();
    let names: Vec<&str> = summary.baselines.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["sasrec_id", "text_only", "image_only", "no_pretrain"]);

    let features = Features::load(&features).unwrap();
    for name in names {
        let base = run.join("baselines").join(name);
        let (config, info, model) = TrainedModel::load(&base, &features, true).unwrap();
        assert_eq!(info.status, "done");
        // No pretraining epochs in any baseline; the main run has 2.
        assert!(history(&base).iter().all(|r| r.stage.as_str() == "train"), "{name}");
        let scorer = model.scorer(name, config.model.max_len).unwrap();
        let scores = scorer.score_batch(&[&[1, 2, 3], &[4]]).unwrap();
        assert_eq!(scores.dims(), [2, ITEMS]);
    }
    let sasrec = TrainedModel::load(&run.join("baselines/sasrec_id"), &features, true).unwrap().1;
    assert_eq!(sasrec.model_kind, omakase::train::ModelKind::SasrecId);
    assert_eq!(history(&run).iter().filter(|r| r.stage.as_str() == "pretrain").count(), 2);
}

#[test]
fn init_transfers_weights_and_a_run_keeps_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let source = dir.path().join("source");
    train(&job(&data, &source, small_config(&features, 2))).unwrap();

    // Zero epochs of anything: the transferred model is exactly the source's best weights.
    let mut config = small_config(&features, 1);
    config.pretrain.epochs = 0;
    config.train.lr = 1e-12;
    config.train.item_tower_lr = 1e-12;
    let target = dir.path().join("target");
    train(&TrainJob { init: Some(source.clone()), ..job(&data, &target, config.clone()) }).unwrap();
    let (before, after) = (weights(&source), weights(&target));
    for (name, values) in &before {
        let moved = values.iter().zip(&after[name]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(moved < 1e-6, "{name} moved by {moved}");
    }

    let mut changed = config;
    changed.train.batch = 4;
    let err = train(&job(&data, &target, changed)).unwrap_err().to_string();
    assert!(err.contains("another config"), "{err}");

    // A model of other shapes cannot start from these weights; the error names the tensor.
    let mut wider = small_config(&features, 1);
    wider.model.dim = 32;
    wider.model.ffn_dim = 32;
    let err = train(&TrainJob { init: Some(source), ..job(&data, &dir.path().join("w"), wider) }).unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
}

#[test]
fn cold_items_are_left_out_of_training() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features) = synthetic(dir.path());
    let mut config = small_config(&features, 2);
    config.data.protocol = omakase::train::config::TrainProtocol::Cold;
    let run = dir.path().join("cold");
    train(&TrainJob { baselines: vec![Baseline::SasrecId], ..job(&data, &run, config) }).unwrap();

    // The ID baseline's embeddings of new items never received a gradient: they keep their seeded
    // initial values, which a fresh model of the same seed reproduces.
    let dataset = omakase::data::load::load_dir(&data).dataset;
    let split = omakase::data::split::cold(&dataset);
    let new: Vec<usize> = (0..ITEMS).filter(|&i| split.new_items[i]).collect();
    assert!(!new.is_empty(), "the fixture has new items");
    let trained = weights(&run.join("baselines/sasrec_id"))["item_embedding"].clone();
    let varmap = candle_nn::VarMap::new();
    let config = TrainConfig::load(&run.join("baselines/sasrec_id/config.toml")).unwrap();
    let vb = omakase::model::seeded_var_builder(&varmap, config.train.seed, &Device::Cpu);
    let fresh = omakase::model::SasRecId::new(&config.model, ITEMS, vb).unwrap();
    let initial = omakase::model::SequentialRecommender::item_vectors(&fresh, &(), omakase::model::Mode::Eval)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let d = config.model.dim;
    let row = |values: &[f32], i: usize| values[i * d..(i + 1) * d].to_vec();
    for &i in &new {
        assert_eq!(row(&trained, i), row(&initial, i), "new item {i} was trained");
    }
    let warm =
        (0..ITEMS).find(|i| !split.new_items[*i] && split.train.iter().any(|s| s.contains(&(*i as u32)))).unwrap();
    assert_ne!(row(&trained, warm), row(&initial, warm), "warm item {warm} was not trained");
}

/// Training runs on standardized features; `model.safetensors` is folded back onto raw features.
/// Loaded the way eval loads it, it must reproduce the validation figure training recorded.
#[test]
fn saved_weights_on_raw_features_reproduce_the_validation_figure() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features_path) = synthetic(dir.path());
    let run = dir.path().join("run");
    let config = small_config(&features_path, 3);
    assert!(config.train.standardize_features, "the default trains on standardized features");
    train(&job(&data, &run, config)).unwrap();

    let features = Features::load(&features_path).unwrap();
    let (config, info, model) = TrainedModel::load(&run, &features, true).unwrap();
    let dataset = omakase::data::load::load_dir(&data).dataset;
    let split = omakase::data::split::warm(&dataset);
    let scorer = model.scorer("model", config.model.max_len).unwrap();
    let valid = omakase::eval::evaluate(scorer.as_ref(), &split.validation, ITEMS, 64).unwrap().metrics();
    let recorded = info.best_valid_ndcg_at_10.unwrap();
    assert!((valid.ndcg_at_10 - recorded).abs() < 1e-9, "loaded {} vs recorded {recorded}", valid.ndcg_at_10);
}

/// ID residuals: trained for items seen in training only (new items' rows stay exactly zero), found
/// again by id when the catalogue is reordered, and left out for another shop's catalogue.
#[test]
fn id_residuals_follow_item_ids_and_skip_new_items() {
    let dir = tempfile::tempdir().unwrap();
    let (data, features_path) = synthetic(dir.path());
    let mut config = small_config(&features_path, 3);
    config.data.protocol = omakase::train::config::TrainProtocol::Cold;
    config.train.id_residuals = true;
    config.train.id_residual_dropout = 0.25;
    config.train.id_residual_l2 = 0.01;
    let run = dir.path().join("run");
    train(&job(&data, &run, config)).unwrap();

    let residuals = weights(&run)["item_residuals"].clone();
    let dataset = omakase::data::load::load_dir(&data).dataset;
    let split = omakase::data::split::cold(&dataset);
    let d = 16;
    let row = |values: &[f32], i: usize| values[i * d..(i + 1) * d].to_vec();
    for i in 0..ITEMS {
        let zero = row(&residuals, i).iter().all(|v| *v == 0.0);
        assert_eq!(zero, split.new_items[i], "item {i}: new {}, residual zero {zero}", split.new_items[i]);
    }

    let vectors = |features: &Features, own: bool| -> Vec<f32> {
        let (_, _, model) = TrainedModel::load(&run, features, own).unwrap();
        let TrainedModel::Multimodal { model, catalogue } = model else { panic!("a multimodal run") };
        let items = omakase::model::SequentialRecommender::item_vectors(&model, &catalogue, omakase::model::Mode::Eval)
            .unwrap();
        items.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let features = Features::load(&features_path).unwrap();
    let own = vectors(&features, true);
    let other_shop = vectors(&features, false);
    for i in 0..ITEMS {
        let content: Vec<f32> = row(&other_shop, i);
        let with_residual: Vec<f32> = content.iter().zip(row(&residuals, i)).map(|(c, r)| c + r).collect();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&row(&own, i), &with_residual), "item {i}: content + residual");
    }
    // The same catalogue in reverse order: each item keeps its own residual.
    let reversed: Vec<usize> = (0..ITEMS).rev().collect();
    let pick = |modality: &ModalityFeatures| {
        let mut out = ModalityFeatures::absent(ITEMS, modality.dim, modality.encoder.clone());
        for (position, &i) in reversed.iter().enumerate() {
            if let Some(hash) = modality.hashes[i] {
                out.set_row(position, modality.row(i), hash);
            }
        }
        out
    };
    let reordered = Features {
        item_ids: reversed.iter().map(|&i| features.item_ids[i].clone()).collect(),
        text: pick(&features.text),
        image: pick(&features.image),
        text_template: None,
    };
    let again = vectors(&reordered, true);
    for (position, &i) in reversed.iter().enumerate() {
        let (a, b) = (row(&again, position), row(&own, i));
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5), "item {i} moved to row {position}");
    }
}
