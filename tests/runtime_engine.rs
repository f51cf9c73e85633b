//! The runtime against the candle model it was exported from (synthetic seeded model, tests/bundle_fixture):
//! the towers' outputs, the recommendations and their explanations, f16 and several shards, new items.

mod bundle_fixture;

use bundle_fixture::{file_map, fixture, has_image, has_text, Lcg, N_ITEMS};
use candle_core::{Device, Tensor};
use omakase::export::{tower_gguf, TowerPart};
use omakase::model::{Histories, ItemView, Mode, SequentialRecommender};
use omakase::runtime::manifest::MAX_SHARD_BYTES;
use omakase::runtime::{EmbeddingDtype, ItemMeta, Runtime, WeightsDtype};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn runtime(weights: WeightsDtype, shard: EmbeddingDtype, max_shard_bytes: u64) -> Runtime {
    let files = file_map(&fixture().bundle(weights, shard, max_shard_bytes));
    Runtime::load(&files["manifest.json"], &files).unwrap()
}

/// The candle model's user vector for one session of rows.
fn candle_user(f: &bundle_fixture::Fixture, session: &[u32]) -> Vec<f32> {
    let items = f.model.item_vectors(&f.catalogue, Mode::Eval).unwrap();
    let histories = Histories::new(&[session], 8, N_ITEMS, &Device::Cpu).unwrap();
    f.model.forward(&items, &histories, Mode::Eval).unwrap().squeeze(0).unwrap().to_vec1().unwrap()
}

#[test]
fn sequence_tower_matches_candle() {
    let f = fixture();
    let sessions: [&[u32]; 4] = [&[3], &[1, 2, 3, 4, 5], &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12], &[47, 5, 12]];
    for weights in [WeightsDtype::F16, WeightsDtype::Q8_0, WeightsDtype::Q4_0] {
        let runtime = runtime(weights, EmbeddingDtype::F16, MAX_SHARD_BYTES);
        for session in sessions {
            let ours = runtime.user_vector(session).unwrap();
            let reference = candle_user(&f, session);
            let c = cosine(&ours, &reference);
            let floor = match weights {
                WeightsDtype::F16 => 0.9999,
                WeightsDtype::Q8_0 => 0.999,
                WeightsDtype::Q4_0 => 0.98,
            };
            assert!(c >= floor, "{weights:?} session {session:?}: cosine {c} < {floor}");
        }
    }
}

#[test]
fn item_tower_matches_candle_for_every_modality_combination() {
    let f = fixture();
    let runtime = runtime(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    let fused =
        f.model.item_tower().forward(&f.catalogue, ItemView::Both, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
    for i in [0usize, 3, 5, 12, 47] {
        let text = has_text(i).then(|| f.features.text.row(i).to_vec());
        let image = has_image(i).then(|| f.features.image.row(i).to_vec());
        let ours = runtime.embed_item(text.as_deref(), image.as_deref()).unwrap();
        let c = cosine(&ours.fused, &fused[i]);
        assert!(c > 0.999, "item {i}: cosine {c}");
        assert_eq!(ours.text_only.is_some(), has_text(i));
        assert_eq!(ours.image_only.is_some(), has_image(i));
    }
    assert!(runtime.embed_item(None, None).is_err());
    let err = runtime.embed_item(Some(&[0.0; 3]), None).unwrap_err();
    assert!(err.to_string().contains("text feature"), "{err}");
}

#[test]
fn recommendations_follow_the_f32_ranking_and_exclude_the_session() {
    let f = fixture();
    let items = f.model.item_vectors(&f.catalogue, Mode::Eval).unwrap();
    for shard in [EmbeddingDtype::Int8, EmbeddingDtype::F16] {
        let runtime = runtime(WeightsDtype::Q8_0, shard, MAX_SHARD_BYTES);
        let mut overlap = 0;
        for start in 0..20u32 {
            let session: Vec<u32> = (start..start + 4).map(|r| (r * 7) % N_ITEMS as u32).collect();
            let user = Tensor::new(candle_user(&f, &session).as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let scores = f.model.scoring().scores(&user, &items).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
            let mut order: Vec<u32> = (0..N_ITEMS as u32).filter(|r| !session.contains(r)).collect();
            order.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
            let result = runtime.recommend_rows(&session, 10).unwrap();
            assert_eq!(result.items.len(), 10);
            assert!(result.items.iter().all(|r| !session.contains(&r.row)));
            assert!(result.items.windows(2).all(|w| w[0].score >= w[1].score), "best first");
            overlap += result.items.iter().filter(|r| order[..10].contains(&r.row)).count();
        }
        assert!(overlap >= 180, "{shard:?}: {overlap} of 200 top-10 entries agree with f32");
    }
}

#[test]
fn explanations_name_the_closest_session_item_and_split_text_and_image() {
    let runtime = runtime(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    let session = [1u32, 2, 47]; // item 47 has text only
    let result = runtime.recommend_rows(&session, 8).unwrap();
    for rec in &result.items {
        let e = &rec.explanation;
        assert!(session.contains(&e.session_row));
        let target = runtime.item_vector(rec.row).unwrap();
        let best = session
            .iter()
            .map(|&s| cosine(&target, &runtime.item_vector(s).unwrap()))
            .fold(f32::NEG_INFINITY, f32::max);
        assert!((e.similarity - best).abs() < 1e-4, "{} vs best {best}", e.similarity);
        let (r, s) = (rec.row as usize, e.session_row as usize);
        assert_eq!(e.text_similarity.is_some(), has_text(r) && has_text(s));
        assert_eq!(e.image_similarity.is_some(), has_image(r) && has_image(s));
        assert_eq!(e.text_share.is_some(), e.text_similarity.is_some() && e.image_similarity.is_some());
        if let Some(share) = e.text_share {
            assert!((0.0..=1.0).contains(&share));
        }
    }
}

#[test]
fn several_shards_give_the_same_answers_as_one() {
    let one = runtime(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    // 36 bytes per row (32 codes + scale): 7 rows per shard, 9 shards.
    let files = file_map(&fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, 7 * 36));
    assert_eq!(files.keys().filter(|k| k.starts_with("items-")).count(), N_ITEMS.div_ceil(7));
    let many = Runtime::load(&files["manifest.json"], &files).unwrap();
    let session = ["p3", "p10", "p22"];
    assert_eq!(one.recommend(&session, 10).unwrap(), many.recommend(&session, 10).unwrap());
}

#[test]
fn an_added_item_is_recommended_like_a_bundle_item() {
    let f = fixture();
    let mut runtime = runtime(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES);
    let session = ["p1", "p2", "p3"];
    let before = runtime.recommend(&session, 1).unwrap();
    let top = before.items[0].row as usize;
    // A "new" product with the same features as the current best: it must land at the top too.
    let vectors =
        runtime.embed_item(Some(f.features.text.row(top)), has_image(top).then(|| f.features.image.row(top))).unwrap();
    let meta = ItemMeta { id: "new".into(), title: "New product".into(), image: None, link: None };
    let row = runtime.add_item(meta, &vectors).unwrap();
    assert_eq!(row as usize, N_ITEMS);
    assert_eq!(runtime.item_count(), N_ITEMS + 1);
    let after = runtime.recommend(&session, 2).unwrap();
    let ids: Vec<&str> = after.items.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&"new"), "{ids:?}");
    // It can be part of a session as well, and its explain vectors are used.
    let with_new = runtime.recommend(&["p1", "new"], 5).unwrap();
    assert!(with_new.items.iter().all(|r| r.id != "new"));

    let err = runtime.add_item_vector("new", &vectors.fused).unwrap_err();
    assert!(err.to_string().contains("already"), "{err}");
    let err = runtime.add_item_vector("other", &[1.0; 5]).unwrap_err();
    assert!(err.to_string().contains("32"), "{err}");
}

#[test]
fn from_parts_builds_a_runtime_from_memory() {
    let f = fixture();
    let config = bundle_fixture::config();
    let gguf = tower_gguf(&f.tensors(), TowerPart::Sequence, &config, WeightsDtype::Q8_0).unwrap();
    let mut rng = Lcg(3);
    let n = 500;
    let vectors = rng.vec(n * config.dim);
    let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let runtime = Runtime::from_parts(config.clone(), &gguf, &vectors, ids, EmbeddingDtype::Int8).unwrap();
    let result = runtime.recommend(&["s1", "s2"], 10).unwrap();
    assert_eq!(result.items.len(), 10);
}

/// Writes the fuzz targets' seed inputs (fuzz/fuzz_targets/*.rs): `OMAKASE_FUZZ_SEED=fuzz/corpus
/// cargo test --test runtime_engine -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files: set OMAKASE_FUZZ_SEED"]
fn write_fuzz_seeds() {
    let dir = std::path::PathBuf::from(std::env::var("OMAKASE_FUZZ_SEED").expect("OMAKASE_FUZZ_SEED=DIR"));
    for (name, shard) in [("int8", EmbeddingDtype::Int8), ("f16", EmbeddingDtype::F16)] {
        let bundle = fixture().bundle(WeightsDtype::Q8_0, shard, 20 * 36);
        let files = file_map(&bundle);
        let mut seed = files["manifest.json"].clone();
        for (_, entry) in bundle.manifest.files() {
            seed.extend_from_slice(b"\n--\n");
            seed.extend_from_slice(&files[&entry.path]);
        }
        std::fs::create_dir_all(dir.join("bundle")).unwrap();
        std::fs::write(dir.join("bundle").join(name), seed).unwrap();
        std::fs::create_dir_all(dir.join("gguf")).unwrap();
        std::fs::write(dir.join("gguf").join(format!("sequence-{name}")), &files["sequence_tower.gguf"]).unwrap();
        std::fs::write(dir.join("gguf").join(format!("item-{name}")), &files["item_tower.gguf"]).unwrap();
    }
}

#[test]
fn synthetic_runtime_for_benchmarks() {
    let config = bundle_fixture::config();
    for shard in [EmbeddingDtype::Int8, EmbeddingDtype::F16] {
        let runtime = omakase::export::synthetic_runtime(&config, 5000, shard, 1).unwrap();
        assert_eq!(runtime.item_count(), 5000);
        let result = runtime.recommend(&["1", "17", "4999"], 10).unwrap();
        assert_eq!(result.items.len(), 10);
        assert!(result.items.iter().all(|r| !["1", "17", "4999"].contains(&r.id.as_str())));
        assert_eq!(runtime.items().int8_rows().is_some(), shard == EmbeddingDtype::Int8);
    }
}
