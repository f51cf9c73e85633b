//! Hostile input around the features file (issue 14).
//!
//! Point 6: a NaN or infinite feature is refused where a features file enters, naming
//! the file, the item and the modality (it became a silent all-zero int8 row in `export`, or a
//! non-finite loss in `train` blamed on the learning rate). The bundle side (tower weights, shard
//! scales) is in `tests/bundle_malformed.rs`.

use std::process::Command;

use omakase::encoders::features::{check_replaceable, Features, ModalityFeatures};

fn two_items() -> Features {
    let mut text = ModalityFeatures::absent(2, 2, None);
    text.values = vec![0.5, -0.5, 1.0, 2.0];
    text.present = vec![true, true];
    text.hashes = vec![Some([0; 32]); 2];
    Features {
        item_ids: vec!["a".into(), "b".into()],
        text,
        image: ModalityFeatures::absent(2, 3, None),
        text_template: None,
    }
}

#[test]
fn a_non_finite_feature_is_refused_on_load_naming_item_and_modality() {
    let features = two_items();
    let bytes = features.to_bytes().unwrap();
    assert_eq!(Features::from_bytes(&bytes, "f.safetensors").unwrap(), features);

    for (modality, value) in [("text", f32::NAN), ("image", f32::INFINITY)] {
        let mut bad = two_items();
        match modality {
            "text" => bad.text.values[3] = value,
            _ => bad.image.values[4] = value,
        }
        let err = bad.check_finite("f.safetensors").unwrap_err().to_string();
        assert!(err.contains("f.safetensors") && err.contains("item \"b\"") && err.contains(modality), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.safetensors");
        std::fs::write(&path, bad.to_bytes().unwrap()).unwrap();
        let err = Features::load(&path).unwrap_err().to_string();
        assert!(err.contains("features.safetensors") && err.contains("item \"b\""), "{err}");
        assert!(err.contains(&format!("{modality} feature 1 is {value}")), "{err}");
    }
}

#[test]
fn encode_refuses_to_overwrite_a_file_that_is_not_a_features_file() {
    // Point 1: `encode --out FILE` replaced whatever FILE was. Now only a features file (or nothing)
    // may be replaced; anything else is refused before the encoders even load, and left as it was.
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("thesis.txt");
    std::fs::write(&victim, "precious").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_omakase"))
        .args(["encode", "--data", dir.path().join("no-such-data").to_str().unwrap()])
        .args(["--out", victim.to_str().unwrap(), "--models", dir.path().join("no-models").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("thesis.txt") && stderr.contains("not an Omakase features file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // What may be replaced: nothing, or a features file (even one whose rows no longer load).
    let features = dir.path().join("features.safetensors");
    assert!(check_replaceable(&features).is_ok());
    let mut nan = two_items();
    nan.text.values[0] = f32::NAN;
    std::fs::write(&features, nan.to_bytes().unwrap()).unwrap();
    assert!(check_replaceable(&features).is_ok());
    // Not: a folder, a short file, another safetensors file.
    assert!(check_replaceable(dir.path()).is_err());
    std::fs::write(&features, b"tiny").unwrap();
    assert!(check_replaceable(&features).is_err());
    let header = br#"{"__metadata__":{"format":"pt"}}"#;
    let other = [&(header.len() as u64).to_le_bytes()[..], header].concat();
    std::fs::write(&features, other).unwrap();
    let err = check_replaceable(&features).unwrap_err().to_string();
    assert!(err.contains("features.safetensors") && err.contains("refusing to replace"), "{err}");
}
