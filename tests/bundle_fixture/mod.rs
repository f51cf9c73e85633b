//! A small synthetic bundle built in memory from a seeded, untrained model (no dataset, no training):
//! the fixture of the runtime and malformed-bundle tests.
#![allow(dead_code)]

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use omakase::data::Item;
use omakase::encoders::features::{Features, ModalityFeatures};
use omakase::export::{build_bundle, catalogue_vectors, Bundle, ExportJob};
use omakase::model::{seeded_var_builder, ItemFeatures, ModelConfig, MultimodalRecommender};
use omakase::runtime::manifest::Provenance;
use omakase::runtime::{EmbeddingDtype, WeightsDtype};

pub const N_ITEMS: usize = 60;
pub const TEXT_DIM: usize = 64;
pub const IMAGE_DIM: usize = 96;

pub fn config() -> ModelConfig {
    ModelConfig {
        dim: 32,
        num_heads: 2,
        num_layers: 2,
        fusion_layers: 1,
        ffn_dim: 64,
        max_len: 8,
        text_dim: TEXT_DIM,
        image_dim: IMAGE_DIM,
        next_item_temperature: 0.1,
        ..ModelConfig::default()
    }
}

/// Deterministic pseudo-random values in [-1, 1).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn unit(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.unit()).collect()
    }
}

/// Item `i` has text unless `i % 11 == 3`, an image unless `i % 7 == 5` (and it has text).
pub fn has_text(i: usize) -> bool {
    i % 11 != 3
}

pub fn has_image(i: usize) -> bool {
    i % 7 != 5 || !has_text(i)
}

pub struct Fixture {
    pub model: MultimodalRecommender,
    pub features: Features,
    pub catalogue: ItemFeatures,
    pub varmap: VarMap,
}

pub fn fixture() -> Fixture {
    let config = config();
    let varmap = VarMap::new();
    let model = MultimodalRecommender::new(&config, seeded_var_builder(&varmap, 7, &Device::Cpu)).unwrap();
    let mut rng = Lcg(42);
    let mut text = ModalityFeatures::absent(N_ITEMS, TEXT_DIM, None);
    let mut image = ModalityFeatures::absent(N_ITEMS, IMAGE_DIM, None);
    for i in 0..N_ITEMS {
        if has_text(i) {
            text.values[i * TEXT_DIM..(i + 1) * TEXT_DIM].copy_from_slice(&rng.vec(TEXT_DIM));
            text.present[i] = true;
        }
        if has_image(i) {
            image.values[i * IMAGE_DIM..(i + 1) * IMAGE_DIM].copy_from_slice(&rng.vec(IMAGE_DIM));
            image.present[i] = true;
        }
    }
    let mask = |m: &ModalityFeatures| {
        Tensor::new(m.present.iter().map(|&p| p as u8).collect::<Vec<_>>(), &Device::Cpu).unwrap()
    };
    let catalogue = ItemFeatures::new(
        Tensor::from_vec(text.values.clone(), (N_ITEMS, TEXT_DIM), &Device::Cpu).unwrap(),
        Tensor::from_vec(image.values.clone(), (N_ITEMS, IMAGE_DIM), &Device::Cpu).unwrap(),
        &mask(&text),
        &mask(&image),
    )
    .unwrap();
    let features =
        Features { item_ids: (0..N_ITEMS).map(|i| format!("p{i}")).collect(), text, image, text_template: None };
    Fixture { model, features, catalogue, varmap }
}

pub fn items() -> Vec<Item> {
    (0..N_ITEMS)
        .map(|i| Item {
            id: format!("p{i}"),
            title: if i == 4 { "<script>alert(1)</script>".into() } else { format!("Product {i}") },
            description: String::new(),
            image: has_image(i).then(|| format!("images/{i}.jpg")),
            metadata: Default::default(),
        })
        .collect()
}

impl Fixture {
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
    }

    pub fn bundle(&self, weights: WeightsDtype, shard: EmbeddingDtype, max_shard_bytes: u64) -> Bundle {
        let vectors = catalogue_vectors(&self.model, &self.catalogue, &self.features, true).unwrap();
        let job = ExportJob { weights, shard, max_shard_bytes, ..ExportJob::new("run", "data", "out") };
        build_bundle(&config(), &self.tensors(), &vectors, &items(), &job, Provenance::default()).unwrap()
    }
}

/// The bundle's files by name (manifest.json included).
pub fn file_map(bundle: &Bundle) -> HashMap<String, Vec<u8>> {
    bundle.files.iter().cloned().collect()
}

/// The `omakase` binary run with `args`.
pub fn omakase(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_omakase")).args(args).output().unwrap()
}

/// `omakase recommend --bundle DIR --json EXTRA…`, which must succeed, as JSON.
pub fn cli_json(dir: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["recommend", "--bundle", dir, "--json"];
    args.extend_from_slice(extra);
    let out = omakase(&args);
    assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
