//! Behaviour of the model definitions (src/model): shapes, modality masking, history padding and
//! causality, and that gradients train both models on a tiny synthetic task.

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use omakase::model::{
    seeded_var_builder, user_vectors, DropoutRng, Histories, ItemFeatures, ItemView, Mode, ModelConfig, ModelError,
    MultimodalRecommender, NextItemBatch, SasRecId, SequentialRecommender,
};

const N_ITEMS: usize = 20;

fn tiny_config() -> ModelConfig {
    ModelConfig {
        dim: 32,
        num_heads: 2,
        num_layers: 2,
        fusion_layers: 1,
        ffn_dim: 32,
        max_len: 8,
        dropout: 0.1,
        attention_dropout: 0.1,
        text_dim: 12,
        image_dim: 20,
        ..ModelConfig::default()
    }
}

/// A seeded standard-normal tensor (the test data stays the same from run to run).
fn randn(shape: (usize, usize), name: &str) -> Tensor {
    let vb = seeded_var_builder(&VarMap::new(), 99, &Device::Cpu);
    vb.get_with_hints(shape, name, candle_nn::Init::Randn { mean: 0.0, stdev: 1.0 }).unwrap().detach()
}

/// Seeded random features for `n` items with the given presence masks.
fn features(n: usize, has_text: &[f32], has_image: &[f32], config: &ModelConfig) -> ItemFeatures {
    let dev = Device::Cpu;
    let text = randn((n, config.text_dim), "text");
    let image = randn((n, config.image_dim), "image");
    ItemFeatures::new(text, image, &Tensor::new(has_text, &dev).unwrap(), &Tensor::new(has_image, &dev).unwrap())
        .unwrap()
}

fn all_present(n: usize, config: &ModelConfig) -> ItemFeatures {
    features(n, &vec![1.0; n], &vec![1.0; n], config)
}

fn model(config: &ModelConfig, seed: u64) -> (VarMap, MultimodalRecommender) {
    let varmap = VarMap::new();
    let model = MultimodalRecommender::new(config, seeded_var_builder(&varmap, seed, &Device::Cpu)).unwrap();
    (varmap, model)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn scalar(t: &Tensor) -> f32 {
    t.to_scalar::<f32>().unwrap()
}

#[test]
fn shapes_follow_the_contracts() {
    let config = tiny_config();
    let (_, model) = model(&config, 1);
    let catalogue = all_present(N_ITEMS, &config);
    let items = model.item_vectors(&catalogue, Mode::Eval).unwrap();
    assert_eq!(items.dims(), &[N_ITEMS, 32]);

    let histories = Histories::new(&[&[1, 2, 3], &[4], &[5, 6]], 8, N_ITEMS, &Device::Cpu).unwrap();
    let states = model.sequence_states(&items, &histories, Mode::Eval).unwrap();
    assert_eq!(states.dims(), &[3, 3, 32]);
    assert_eq!(model.forward(&items, &histories, Mode::Eval).unwrap().dims(), &[3, 32]);
    assert_eq!(model.full_sort_predict(&items, &histories).unwrap().dims(), &[3, N_ITEMS]);

    let batch = NextItemBatch::new(&[&[1, 2, 3], &[4, 5]], 8, N_ITEMS, &Device::Cpu).unwrap();
    assert_eq!(model.calculate_loss(&items, &batch, Mode::Eval).unwrap().dims(), &[] as &[usize]);

    let varmap = VarMap::new();
    let sasrec = SasRecId::new(&config, N_ITEMS, seeded_var_builder(&varmap, 1, &Device::Cpu)).unwrap();
    let ids = sasrec.item_vectors(&(), Mode::Eval).unwrap();
    assert_eq!(ids.dims(), &[N_ITEMS, 32]);
    assert_eq!(sasrec.full_sort_predict(&ids, &histories).unwrap().dims(), &[3, N_ITEMS]);
}

#[test]
fn an_item_with_only_text_gets_the_text_only_view_vector() {
    let config = tiny_config();
    let (_, model) = model(&config, 2);
    let tower = model.item_tower();
    // Item 0 has text and image, item 1 text only, item 2 image only.
    let mixed = features(3, &[1.0, 1.0, 0.0], &[1.0, 0.0, 1.0], &config);
    let full = all_present(3, &config);
    let vectors = tower.forward(&mixed, ItemView::Both, Mode::Eval).unwrap();
    let text_view = tower.forward(&full, ItemView::TextOnly, Mode::Eval).unwrap();
    let image_view = tower.forward(&full, ItemView::ImageOnly, Mode::Eval).unwrap();
    let row = |t: &Tensor, i: usize| t.get(i).unwrap();
    assert!(max_abs_diff(&row(&vectors, 1), &row(&text_view, 1)) < 1e-6);
    assert!(max_abs_diff(&row(&vectors, 2), &row(&image_view, 2)) < 1e-6);
    // With both modalities the fused vector is neither single-modality one.
    assert!(max_abs_diff(&row(&vectors, 0), &row(&text_view, 0)) > 1e-3);
    assert!(max_abs_diff(&row(&vectors, 0), &row(&image_view, 0)) > 1e-3);
}

#[test]
fn an_absent_modality_has_no_influence_at_all() {
    // Whatever the image branch computes must not move a text-only item's vector: change the
    // image projection's parameters and only items that have an image may change.
    let config = tiny_config();
    let (varmap, model) = model(&config, 12);
    let items = features(2, &[1.0, 1.0], &[0.0, 1.0], &config);
    let before = model.item_tower().forward(&items, ItemView::Both, Mode::Eval).unwrap();
    {
        let vars = varmap.data().lock().unwrap();
        let bias = vars.get("item_tower.image_projection.bias").unwrap();
        bias.set(&(randn((1, 32), "bias").squeeze(0).unwrap() * 5.0).unwrap()).unwrap();
    }
    let after = model.item_tower().forward(&items, ItemView::Both, Mode::Eval).unwrap();
    assert!(max_abs_diff(&before.get(0).unwrap(), &after.get(0).unwrap()) < 1e-6, "text-only item moved");
    assert!(max_abs_diff(&before.get(1).unwrap(), &after.get(1).unwrap()) > 1e-3, "the image does count");
}

#[test]
fn an_absent_modality_is_never_read_even_if_it_holds_nan() {
    let config = tiny_config();
    let (_, model) = model(&config, 3);
    let clean = features(2, &[1.0, 1.0], &[1.0, 0.0], &config);
    let dev = Device::Cpu;
    let text = randn((2, 12), "text");
    let image = Tensor::full(f32::NAN, (2, 20), &dev).unwrap();
    let nan_image =
        ItemFeatures::new(text, image, &Tensor::new(&[1u8, 1], &dev).unwrap(), &Tensor::new(&[0u8, 0], &dev).unwrap())
            .unwrap();
    let vectors = model.item_tower().forward(&nan_image, ItemView::Both, Mode::Eval).unwrap();
    let values = vectors.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
    // An item with neither modality in the chosen view is refused, by row.
    let err = model.item_tower().forward(&clean, ItemView::ImageOnly, Mode::Eval).unwrap_err();
    assert!(matches!(err, ModelError::NoModality { row: 1, view: ItemView::ImageOnly }), "{err}");
}

#[test]
fn padding_does_not_change_a_user_vector() {
    let config = tiny_config();
    let (_, model) = model(&config, 4);
    let items = model.item_vectors(&all_present(N_ITEMS, &config), Mode::Eval).unwrap();
    let short: &[u32] = &[3, 7, 1];
    let alone = Histories::new(&[short], 8, N_ITEMS, &Device::Cpu).unwrap();
    let padded = Histories::new(&[&[9, 8, 7, 6, 5, 4, 2], short], 8, N_ITEMS, &Device::Cpu).unwrap();
    assert_eq!(padded.items().dims(), &[2, 7]);
    let u_alone = model.forward(&items, &alone, Mode::Eval).unwrap();
    let u_padded = model.forward(&items, &padded, Mode::Eval).unwrap().get(1).unwrap().unsqueeze(0).unwrap();
    assert!(max_abs_diff(&u_alone, &u_padded) < 1e-5, "{}", max_abs_diff(&u_alone, &u_padded));
}

#[test]
fn outputs_are_causal() {
    let config = tiny_config();
    let (_, model) = model(&config, 5);
    let items = model.item_vectors(&all_present(N_ITEMS, &config), Mode::Eval).unwrap();
    let states = |seq: &[u32]| {
        let h = Histories::new(&[seq], 8, N_ITEMS, &Device::Cpu).unwrap();
        model.sequence_states(&items, &h, Mode::Eval).unwrap().squeeze(0).unwrap()
    };
    let a = states(&[1, 2, 3, 4, 5, 6]);
    let b = states(&[1, 2, 3, 17, 18, 19]);
    assert!(max_abs_diff(&a.narrow(0, 0, 3).unwrap(), &b.narrow(0, 0, 3).unwrap()) < 1e-6);
    assert!(max_abs_diff(&a.get(3).unwrap(), &b.get(3).unwrap()) > 1e-3, "a later position does see the change");
    // user_vectors picks the last real position.
    let h = Histories::new(&[&[1, 2, 3, 4, 5, 6]], 8, N_ITEMS, &Device::Cpu).unwrap();
    let whole = model.sequence_states(&items, &h, Mode::Eval).unwrap();
    let users = user_vectors(&whole, &[4]).unwrap();
    assert!(max_abs_diff(&users.squeeze(0).unwrap(), &a.get(3).unwrap()) < 1e-6);
}

/// Histories `[i-2, i-1, i]` (mod 20), each followed by `i+1`: the rule to learn is "next = last + 1".
fn successor_sequences() -> Vec<Vec<u32>> {
    let n = N_ITEMS as u32;
    (0..n).map(|i| (0..5).map(|k| (i + k) % n).collect()).collect()
}

/// AdamW on `calculate_loss`; returns (first loss, last loss, fraction of items whose successor
/// ranks first after `[i-2, i-1, i]`).
fn train_successor<M: SequentialRecommender>(
    label: &str,
    model: &M,
    varmap: &VarMap,
    catalogue: &M::Catalogue,
    steps: usize,
) -> (f32, f32, f32) {
    let sequences = successor_sequences();
    let refs: Vec<&[u32]> = sequences.iter().map(|s| s.as_slice()).collect();
    let batch = NextItemBatch::new(&refs, 8, N_ITEMS, &Device::Cpu).unwrap();
    let params = ParamsAdamW { lr: 3e-3, weight_decay: 0.0, ..Default::default() };
    let mut optimiser = AdamW::new(varmap.all_vars(), params).unwrap();
    let rng = DropoutRng::new(7);
    let mut losses = Vec::new();
    for _ in 0..steps {
        let items = model.item_vectors(catalogue, Mode::Train(&rng)).unwrap();
        let loss = model.calculate_loss(&items, &batch, Mode::Train(&rng)).unwrap();
        losses.push(scalar(&loss));
        optimiser.backward_step(&loss).unwrap();
    }
    let items = model.item_vectors(catalogue, Mode::Eval).unwrap();
    let histories: Vec<Vec<u32>> = sequences.iter().map(|s| s[2..5].to_vec()).collect();
    let refs: Vec<&[u32]> = histories.iter().map(|s| s.as_slice()).collect();
    let histories = Histories::new(&refs, 8, N_ITEMS, &Device::Cpu).unwrap();
    let best = model.full_sort_predict(&items, &histories).unwrap().argmax(1).unwrap().to_vec1::<u32>().unwrap();
    let right = best.iter().enumerate().filter(|(i, b)| **b == ((*i as u32 + 5) % N_ITEMS as u32)).count();
    let figures = (losses[0], *losses.last().unwrap(), right as f32 / N_ITEMS as f32);
    eprintln!(
        "{label}: loss {} -> {} after {steps} steps; successor ranked first for {right}/{N_ITEMS}",
        figures.0, figures.1
    );
    figures
}

#[test]
fn adamw_teaches_the_multimodal_model_the_next_item() {
    let config = tiny_config();
    let (varmap, model) = model(&config, 6);
    let catalogue = all_present(N_ITEMS, &config);
    let (first, last, right) = train_successor("multimodal", &model, &varmap, &catalogue, 150);
    assert!(last < first * 0.2, "loss {first} → {last}");
    assert!(right >= 0.9, "successor ranked first for {right} of the items");
}

#[test]
fn adamw_teaches_id_sasrec_the_next_item() {
    let config = tiny_config();
    let varmap = VarMap::new();
    let model = SasRecId::new(&config, N_ITEMS, seeded_var_builder(&varmap, 6, &Device::Cpu)).unwrap();
    let (first, last, right) = train_successor("ID-SASRec", &model, &varmap, &(), 150);
    assert!(last < first * 0.2, "loss {first} → {last}");
    assert!(right >= 0.9, "successor ranked first for {right} of the items");
}

#[test]
fn every_parameter_gets_a_gradient() {
    let config = tiny_config();
    let (varmap, model) = model(&config, 8);
    let catalogue = all_present(N_ITEMS, &config);
    let rng = DropoutRng::new(1);
    let items = model.item_vectors(&catalogue, Mode::Train(&rng)).unwrap();
    let batch = NextItemBatch::new(&[&[1, 2, 3, 4], &[5, 6]], 8, N_ITEMS, &Device::Cpu).unwrap();
    let next_item = model.calculate_loss(&items, &batch, Mode::Train(&rng)).unwrap();
    let pretrain = model.pretraining_loss(&catalogue, Mode::Train(&rng)).unwrap().total;
    let grads = (next_item + pretrain).unwrap().backward().unwrap();
    let data = varmap.data().lock().unwrap();
    let mut missing: Vec<&String> =
        data.iter().filter(|(_, var)| grads.get(var.as_tensor()).is_none()).map(|(n, _)| n).collect();
    missing.sort();
    assert!(missing.is_empty(), "no gradient for {missing:?}");
    assert!(data.keys().any(|n| n == "item_tower.fusion.0.attention.query.weight"));
    assert!(data.keys().any(|n| n == "sequence_tower.layers.1.ffn.down.bias"));
}

#[test]
fn pretraining_aligns_image_and_text() {
    // Image and text are two different random projections of one latent per item: alignable.
    let config = ModelConfig { dropout: 0.0, attention_dropout: 0.0, ..tiny_config() };
    let dev = Device::Cpu;
    let n = 32;
    let latent = randn((n, 6), "latent");
    let text = latent.matmul(&randn((6, 12), "to_text")).unwrap();
    let image = latent.matmul(&randn((6, 20), "to_image")).unwrap();
    let ones = Tensor::ones(n, DType::F32, &dev).unwrap();
    let catalogue = ItemFeatures::new(text, image, &ones, &ones).unwrap();
    let (varmap, model) = model(&config, 9);
    let mut optimiser = AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 3e-3, ..Default::default() }).unwrap();
    let first = model.pretraining_loss(&catalogue, Mode::Eval).unwrap();
    for _ in 0..100 {
        let loss = model.pretraining_loss(&catalogue, Mode::Eval).unwrap();
        optimiser.backward_step(&loss.total).unwrap();
    }
    let last = model.pretraining_loss(&catalogue, Mode::Eval).unwrap();
    let (before, after) = (scalar(&first.image_text), scalar(&last.image_text));
    eprintln!("image<->text InfoNCE {before} -> {after}; total {} -> {}", scalar(&first.total), scalar(&last.total));
    assert!(after < before * 0.5, "image↔text InfoNCE {before} → {after}");
    assert!(scalar(&last.total) < scalar(&first.total));
}

#[test]
fn saved_weights_load_back_under_the_same_names() {
    let config = tiny_config();
    let (varmap, model) = model(&config, 10);
    let catalogue = all_present(N_ITEMS, &config);
    let histories = Histories::new(&[&[1, 2, 3], &[4, 5]], 8, N_ITEMS, &Device::Cpu).unwrap();
    let items = model.item_vectors(&catalogue, Mode::Eval).unwrap();
    let expected = model.full_sort_predict(&items, &histories).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    varmap.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu).unwrap();
    let loaded = MultimodalRecommender::new(&config, vb).unwrap();
    let items = loaded.item_vectors(&catalogue, Mode::Eval).unwrap();
    let got = loaded.full_sort_predict(&items, &histories).unwrap();
    assert!(max_abs_diff(&expected, &got) < 1e-5);
}

#[test]
fn same_seeds_give_the_same_training_loss() {
    let config = tiny_config();
    let catalogue = all_present(N_ITEMS, &config);
    let batch = NextItemBatch::new(&[&[1, 2, 3, 4], &[5, 6]], 8, N_ITEMS, &Device::Cpu).unwrap();
    let loss = |init_seed: u64, dropout_seed: u64| {
        let (_, model) = model(&config, init_seed);
        let rng = DropoutRng::new(dropout_seed);
        let items = model.item_vectors(&catalogue, Mode::Train(&rng)).unwrap();
        scalar(&model.calculate_loss(&items, &batch, Mode::Train(&rng)).unwrap())
    };
    assert_eq!(loss(1, 2), loss(1, 2));
    assert_ne!(loss(1, 2), loss(1, 3));
    assert_ne!(loss(1, 2), loss(4, 2));
}

#[test]
fn detached_item_vectors_freeze_the_item_tower() {
    let config = tiny_config();
    let (varmap, model) = model(&config, 11);
    let catalogue = all_present(N_ITEMS, &config);
    let items = model.item_vectors(&catalogue, Mode::Eval).unwrap().detach();
    let batch = NextItemBatch::new(&[&[1, 2, 3]], 8, N_ITEMS, &Device::Cpu).unwrap();
    let grads = model.calculate_loss(&items, &batch, Mode::Eval).unwrap().backward().unwrap();
    for (name, var) in varmap.data().lock().unwrap().iter() {
        let has_gradient = grads.get(var.as_tensor()).is_some();
        assert_eq!(has_gradient, name.starts_with("sequence_tower."), "{name}");
    }
}
