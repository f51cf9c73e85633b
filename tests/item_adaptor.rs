//! The `moe` text adaptor (UniSRec's whitening + mixture of experts, `[model] text_adaptor = "moe"`)
//! in the runtime against the candle model it was exported from: a bundle built with it loads as any
//! other, and the runtime's item tower gives candle's item vectors for every modality combination
//! (random weights, the whitening and gate made non-trivial).

mod bundle_fixture;

use bundle_fixture::{file_map, fixture, has_image, has_text, items, Lcg};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use omakase::export::{build_bundle, catalogue_vectors, ExportJob};
use omakase::model::{seeded_var_builder, ItemView, Mode, ModelConfig, MultimodalRecommender, TextAdaptor};
use omakase::runtime::manifest::{Provenance, MAX_SHARD_BYTES};
use omakase::runtime::{EmbeddingDtype, Runtime, WeightsDtype};

const EXPERTS: usize = 4;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn config() -> ModelConfig {
    ModelConfig { text_adaptor: TextAdaptor::Moe, adaptor_experts: EXPERTS, ..bundle_fixture::config() }
}

/// A seeded model with the adaptor, its whitening and gate set to random values (their init is 0).
fn model() -> (MultimodalRecommender, VarMap) {
    let varmap = VarMap::new();
    let model = MultimodalRecommender::new(&config(), seeded_var_builder(&varmap, 11, &Device::Cpu)).unwrap();
    let mut rng = Lcg(5);
    let text_dim = bundle_fixture::TEXT_DIM;
    for (name, n) in [
        ("item_tower.text_adaptor.whitening", EXPERTS * text_dim),
        ("item_tower.text_adaptor.gate.weight", EXPERTS * text_dim),
        ("item_tower.text_adaptor.gate.bias", EXPERTS),
    ] {
        let vars = varmap.data().lock().unwrap();
        let var = vars.get(name).unwrap_or_else(|| panic!("no {name}"));
        let values = Tensor::from_vec(rng.vec(n), var.shape(), &Device::Cpu).unwrap();
        var.set(&values).unwrap();
    }
    assert!(!varmap.data().lock().unwrap().contains_key("item_tower.text_projection.weight"));
    (model, varmap)
}

#[test]
fn a_moe_bundle_loads_and_its_item_tower_matches_candle() {
    let f = fixture(); // its features and catalogue; the model is ours
    let (model, varmap) = model();
    let fused = model.item_tower().forward(&f.catalogue, ItemView::Both, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
    let tensors = varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let vectors = catalogue_vectors(&model, &f.catalogue, &f.features, true).unwrap();
    for (weights, floor) in [(WeightsDtype::F16, 0.9999), (WeightsDtype::Q8_0, 0.999)] {
        let job = ExportJob {
            weights,
            shard: EmbeddingDtype::F16,
            max_shard_bytes: MAX_SHARD_BYTES,
            ..ExportJob::new("run", "data", "out")
        };
        let bundle = build_bundle(&config(), &tensors, &vectors, &items(), &job, Provenance::default()).unwrap();
        let files = file_map(&bundle);
        let runtime = Runtime::load(&files["manifest.json"], &files).unwrap();
        for i in [0usize, 3, 5, 12, 47] {
            let text = has_text(i).then(|| f.features.text.row(i).to_vec());
            let image = has_image(i).then(|| f.features.image.row(i).to_vec());
            let ours = runtime.embed_item(text.as_deref(), image.as_deref()).unwrap();
            let c = cosine(&ours.fused, &fused[i]);
            assert!(c >= floor, "{weights:?} item {i}: cosine {c} < {floor}");
        }
        // The bundle's own vectors rank like candle's.
        let session = ["p1", "p2", "p3"];
        assert_eq!(runtime.recommend(&session, 5).unwrap().items.len(), 5);
    }
}

#[test]
fn the_text_only_view_goes_through_the_adaptor() {
    // An item with text only: the runtime's vector must equal candle's text-only view, so the
    // adaptor alone (not the image path) decides it.
    let f = fixture();
    let (model, varmap) = model();
    let rows: Vec<u32> = (0..20u32).filter(|&i| has_text(i as usize)).collect();
    let with_text = f.catalogue.select(&Tensor::new(rows.as_slice(), &Device::Cpu).unwrap()).unwrap();
    let text_only =
        model.item_tower().forward(&with_text, ItemView::TextOnly, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
    let tensors = varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let vectors = catalogue_vectors(&model, &f.catalogue, &f.features, true).unwrap();
    let job = ExportJob { weights: WeightsDtype::F16, ..ExportJob::new("run", "data", "out") };
    let bundle = build_bundle(&config(), &tensors, &vectors, &items(), &job, Provenance::default()).unwrap();
    let files = file_map(&bundle);
    let runtime = Runtime::load(&files["manifest.json"], &files).unwrap();
    for (at, &i) in rows.iter().enumerate() {
        let ours = runtime.embed_item(Some(f.features.text.row(i as usize)), None).unwrap();
        let c = cosine(&ours.fused, &text_only[at]);
        assert!(c >= 0.9999, "item {i}: cosine {c}");
    }
}
