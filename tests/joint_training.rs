//! Joint training (`[data] joint`, docs/evaluation.md § Transfer): another shop's visitors train the
//! model beside the dataset's own. Checked on two tiny synthetic shops (tests/common/synthetic.rs):
//! every window of both shops is trained once per epoch, in batches of one shop each (the joint
//! run's optimiser steps are the two shops' own, added), under both protocols; the saved model is
//! an ordinary one of the dataset (same tensors, validation on the dataset's users) that differs from
//! the one trained on the dataset alone; and joint shops that cannot be read are refused naming them.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::synthetic::{shop, ShopSpec};
use omakase::encoders::features::{Features, ModalityFeatures};
use omakase::train::config::TrainProtocol;
use omakase::train::{train, RunInfo, TrainConfig, TrainJob};

fn config(features: &Path, protocol: TrainProtocol, joint: &[(&Path, &Path)]) -> TrainConfig {
    let mut config = TrainConfig::parse(
        &format!(
            "[model]\ndim = 16\nnum_heads = 2\nffn_dim = 16\nmax_len = 6\n\
             [pretrain]\nepochs = 1\nbatch = 8\n\
             [train]\nepochs = 2\nbatch = 8\nwarmup_steps = 2\npatience = 50\n\
             [encode]\nfeatures = \"{}\"\n",
            features.display()
        ),
        "test",
    )
    .unwrap();
    config.data.protocol = protocol;
    config.data.joint = joint.iter().map(|(data, _)| data.to_path_buf()).collect();
    config.data.joint_features = joint.iter().map(|(_, features)| features.to_path_buf()).collect();
    config
}

fn job(data: &Path, out: PathBuf, config: TrainConfig) -> TrainJob {
    TrainJob { encode: false, ..TrainJob::quiet(data.to_owned(), out, config) }
}

/// The optimiser steps a finished run took in its sequence stage (checkpoint/state.json).
fn steps(run: &Path) -> u64 {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    state["step"].as_u64().unwrap()
}

fn two_shops(dir: &Path) -> ((PathBuf, PathBuf), (PathBuf, PathBuf)) {
    let a = shop(&dir.join("a"), ShopSpec::default());
    let b = shop(&dir.join("b"), ShopSpec { items: 15, users: 14, late_users: 3, new_items: 3, seed: 5, prefix: 'b' });
    (a, b)
}

#[test]
fn a_joint_run_trains_every_window_of_both_shops_and_stays_the_dataset_s_model() {
    let dir = tempfile::tempdir().unwrap();
    let ((a, a_features), (b, b_features)) = two_shops(dir.path());
    for protocol in [TrainProtocol::Warm, TrainProtocol::Cold] {
        let out = dir.path().join(protocol.as_str());
        train(&job(&a, out.join("a"), config(&a_features, protocol, &[]))).unwrap();
        train(&job(&b, out.join("b"), config(&b_features, protocol, &[]))).unwrap();
        let joint = train(&job(&a, out.join("joint"), config(&a_features, protocol, &[(&b, &b_features)])))
            .unwrap()
            .main
            .unwrap();

        // Two epochs, every batch of one shop: the joint run's steps are the two shops' own.
        let (alone_a, alone_b, together) = (steps(&out.join("a")), steps(&out.join("b")), steps(&out.join("joint")));
        assert_eq!(together, alone_a + alone_b, "{protocol:?}: {alone_a} + {alone_b}");

        // The dataset's model: its items, its validation users, the same tensors as alone.
        assert_eq!(joint.n_items, 24);
        let info = RunInfo::load(&out.join("joint")).unwrap();
        assert_eq!((info.status.as_str(), info.dataset.as_str()), ("done", "data"));
        let load =
            |run: &str| candle_core::safetensors::load(out.join(run).join("model.safetensors"), &Device::Cpu).unwrap();
        let (alone, with_b) = (load("a"), load("joint"));
        let mut names: Vec<&String> = alone.keys().collect();
        names.sort();
        let mut joint_names: Vec<&String> = with_b.keys().collect();
        joint_names.sort();
        assert_eq!(names, joint_names);
        for &name in &names {
            assert_eq!(alone[name].dims(), with_b[name].dims(), "{name}");
        }
        let moved = |name: &str| {
            let diff = (&alone[name] - &with_b[name]).unwrap().abs().unwrap().max_all().unwrap();
            diff.to_scalar::<f32>().unwrap()
        };
        assert!(joint_names.iter().any(|name| moved(name) > 0.0), "the other shop's windows changed nothing");
        let config = TrainConfig::load(&out.join("joint/config.toml")).unwrap();
        assert_eq!(config.data.joint, std::slice::from_ref(&b));
        // An ordinary run's config.toml does not mention joint training at all.
        let plain = std::fs::read_to_string(out.join("a/config.toml")).unwrap();
        assert!(!plain.contains("joint"), "{plain}");
    }
}

#[test]
fn joint_shops_that_cannot_be_read_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let ((a, a_features), (b, b_features)) = two_shops(dir.path());
    let run = |joint: &[(&Path, &Path)], n: usize| {
        let config = config(&a_features, TrainProtocol::Warm, joint);
        train(&job(&a, dir.path().join(format!("run-{n}")), config)).unwrap_err().to_string()
    };
    let missing = dir.path().join("nowhere.safetensors");
    let err = run(&[(&b, &missing)], 1);
    assert!(err.contains("nowhere.safetensors") && err.contains("omakase encode"), "{err}");

    let err = run(&[(&b, &a_features)], 2);
    assert!(err.contains(&a_features.display().to_string()) && err.contains("another catalogue"), "{err}");

    let narrow = dir.path().join("narrow.safetensors");
    let ids: Vec<String> = (0..15).map(|i| format!("b{i}")).collect();
    let mut text = ModalityFeatures::absent(15, 8, None);
    for i in 0..15 {
        text.set_row(i, &[0.5; 8], [i as u8; 32]);
    }
    let features =
        Features { item_ids: ids, text, image: ModalityFeatures::absent(15, 1280, None), text_template: None };
    features.save(&narrow).unwrap();
    let err = run(&[(&b, &narrow)], 3);
    assert!(err.contains("narrow.safetensors") && err.contains("dimensions"), "{err}");

    let err = run(&[(&dir.path().join("no-shop"), &b_features)], 4);
    assert!(err.contains("no-shop"), "{err}");

    let mut config = config(&a_features, TrainProtocol::Warm, &[(&b, &b_features)]);
    config.train.id_residuals = true;
    assert!(config.validate().unwrap_err().contains("data.joint"));
    config.train.id_residuals = false;
    config.data.joint_features.push(b_features.clone());
    assert!(config.validate().unwrap_err().contains("data.joint_features"));
}
