//! Malformed bundles (untrusted input: ARCHITECTURE.md § Invariants): each gives a clear `RuntimeError` naming the
//! file or manifest field, never a panic. The bundle is a small synthetic one (tests/bundle_fixture).

mod bundle_fixture;

use std::collections::HashMap;

use bundle_fixture::{file_map, fixture, N_ITEMS};
use omakase::encoders::bundle::{BundleEncoders, BundleEncodersError};
use omakase::runtime::manifest::{sha256_hex, MAX_SHARD_BYTES};
use omakase::runtime::{EmbeddingDtype, Manifest, Runtime, RuntimeError, WeightsDtype};
use serde_json::{json, Value};

type Files = HashMap<String, Vec<u8>>;

fn valid() -> Files {
    file_map(&fixture().bundle(WeightsDtype::Q8_0, EmbeddingDtype::Int8, MAX_SHARD_BYTES))
}

fn load(files: &Files) -> Result<Runtime, RuntimeError> {
    Runtime::load(&files["manifest.json"], files)
}

fn manifest(files: &Files) -> Value {
    serde_json::from_slice(&files["manifest.json"]).unwrap()
}

fn set_manifest(files: &mut Files, value: &Value) {
    files.insert("manifest.json".into(), serde_json::to_vec(value).unwrap());
}

/// Replaces a file and rewrites its manifest entry (bytes, sha256) so only its content is wrong.
fn replace_consistently(files: &mut Files, path: &str, bytes: Vec<u8>) {
    let mut m = manifest(files);
    fn visit(v: &mut Value, path: &str, len: usize, sha: &str) {
        match v {
            Value::Object(map) => {
                if map.get("path").and_then(|p| p.as_str()) == Some(path) {
                    map.insert("bytes".into(), len.into());
                    map.insert("sha256".into(), sha.into());
                }
                map.values_mut().for_each(|c| visit(c, path, len, sha));
            }
            Value::Array(items) => items.iter_mut().for_each(|c| visit(c, path, len, sha)),
            _ => {}
        }
    }
    visit(&mut m, path, bytes.len(), &sha256_hex(&bytes));
    set_manifest(files, &m);
    files.insert(path.into(), bytes);
}

/// The error, with its message containing every one of `needles`.
fn expect_error(files: &Files, needles: &[&str]) -> RuntimeError {
    let err = load(files).expect_err("a malformed bundle must be refused");
    let message = err.to_string();
    for needle in needles {
        assert!(message.contains(needle), "`{message}` should name `{needle}`");
    }
    err
}

#[test]
fn the_valid_bundle_loads() {
    let files = valid();
    let runtime = load(&files).unwrap();
    assert_eq!(runtime.item_count(), N_ITEMS);
    assert!(runtime.has_explain() && runtime.has_item_tower());
}

#[test]
fn truncated_shard_is_refused_by_size() {
    let mut files = valid();
    let shard = files.get_mut("items-00000.bin").unwrap();
    shard.truncate(shard.len() - 7);
    let err = expect_error(&files, &["items-00000.bin", "bytes"]);
    assert!(matches!(err, RuntimeError::FileSize { .. }), "{err:?}");
}

#[test]
fn truncated_tower_is_refused_by_size() {
    let mut files = valid();
    files.get_mut("sequence_tower.gguf").unwrap().truncate(100);
    expect_error(&files, &["sequence_tower.gguf", "100 bytes"]);
}

#[test]
fn flipped_byte_is_a_checksum_mismatch() {
    for file in ["sequence_tower.gguf", "items-00000.bin", "items.json", "explain-image-00000.bin"] {
        let mut files = valid();
        let bytes = files.get_mut(file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        let err = expect_error(&files, &[file, "sha256"]);
        assert!(matches!(err, RuntimeError::Checksum { .. }), "{err:?}");
    }
}

#[test]
fn unknown_manifest_version_is_refused_by_name() {
    let mut files = valid();
    let mut m = manifest(&files);
    m["format_version"] = 3.into();
    // A future version may change anything else too: the version is checked first.
    m["shards"] = "something new".into();
    set_manifest(&mut files, &m);
    let err = expect_error(&files, &["manifest.json", "format_version", "3"]);
    assert!(matches!(err, RuntimeError::UnsupportedVersion { found: 3, .. }), "{err:?}");

    let mut m = manifest(&valid());
    m["format"] = "zip".into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["manifest.json", "format"]);
}

#[test]
fn shard_rows_disagreeing_with_bytes_are_refused() {
    let mut files = valid();
    let mut m = manifest(&files);
    m["shards"][0]["rows"] = (N_ITEMS - 1).into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["manifest.json", "shards[0]"]);

    // A shard file one row longer, listed with its true size and sha256, but the same row count.
    let mut files = valid();
    let mut longer = files["items-00000.bin"].clone();
    longer.extend(std::iter::repeat_n(0u8, 32 + 4));
    replace_consistently(&mut files, "items-00000.bin", longer);
    expect_error(&files, &["manifest.json", "shards[0].bytes"]);
}

#[test]
fn shards_must_cover_the_catalogue_contiguously() {
    let mut files = valid();
    let mut m = manifest(&files);
    m["shards"][0]["first_row"] = 1.into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["shards[0].first_row"]);

    let mut files = valid();
    let mut m = manifest(&files);
    m["item_count"] = (N_ITEMS + 5).into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["manifest.json", "shards"]);
}

#[test]
fn absurd_dimensions_are_refused_before_allocating() {
    for (field, value) in
        [("dim", Value::from(1u64 << 40)), ("item_count", Value::from(1u64 << 40)), ("item_count", Value::from(0))]
    {
        let mut files = valid();
        let mut m = manifest(&files);
        m[field] = value;
        set_manifest(&mut files, &m);
        expect_error(&files, &["manifest.json", field]);
    }
    for (field, value) in [("max_len", 1u64 << 40), ("num_layers", 100_000), ("image_dim", 1 << 30)] {
        let mut files = valid();
        let mut m = manifest(&files);
        m["model"][field] = value.into();
        set_manifest(&mut files, &m);
        expect_error(&files, &["manifest.json", field]);
    }
}

#[test]
fn missing_files_are_named() {
    for file in ["items.json", "items-00000.bin", "sequence_tower.gguf"] {
        let mut files = valid();
        files.remove(file);
        let err = expect_error(&files, &[file, "missing"]);
        assert!(matches!(err, RuntimeError::MissingFile { .. }), "{err:?}");
    }
    // Explain shards are optional as a whole, not one of two.
    let mut files = valid();
    files.remove("explain-image-00000.bin");
    expect_error(&files, &["explain-image-00000.bin", "missing"]);
    let mut files = valid();
    files.remove("explain-image-00000.bin");
    files.remove("explain-text-00000.bin");
    assert!(!load(&files).unwrap().has_explain());
}

#[test]
fn bad_json_is_refused_with_its_file() {
    let mut files = valid();
    let manifest = files["manifest.json"].clone();
    files.insert("manifest.json".into(), manifest[..manifest.len() / 2].to_vec());
    let err = expect_error(&files, &["manifest.json"]);
    assert!(matches!(err, RuntimeError::ManifestJson { .. }), "{err:?}");

    let mut files = valid();
    replace_consistently(&mut files, "items.json", b"[{\"id\": \"p0\", \"title\": 3}]".to_vec());
    expect_error(&files, &["items.json"]);

    let mut files = valid();
    let mut m = manifest_value(&files);
    m["unexpected_field"] = true.into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["manifest.json", "unexpected_field"]);
}

fn manifest_value(files: &Files) -> Value {
    manifest(files)
}

#[test]
fn item_metadata_must_match_the_catalogue() {
    let mut files = valid();
    let mut items: Vec<Value> = serde_json::from_slice(&files["items.json"]).unwrap();
    items[3]["id"] = "p0".into();
    replace_consistently(&mut files, "items.json", serde_json::to_vec(&items).unwrap());
    expect_error(&files, &["items.json", "p0", "twice"]);

    let mut files = valid();
    items.truncate(10);
    replace_consistently(&mut files, "items.json", serde_json::to_vec(&items).unwrap());
    expect_error(&files, &["items.json", "item_count"]);
}

#[test]
fn malformed_gguf_with_a_matching_checksum_is_refused() {
    let mut files = valid();
    let gguf = files["sequence_tower.gguf"].clone();
    replace_consistently(&mut files, "sequence_tower.gguf", gguf[..gguf.len() - 1000].to_vec());
    expect_error(&files, &["sequence_tower.gguf", "beyond the end"]);

    let mut files = valid();
    replace_consistently(&mut files, "sequence_tower.gguf", b"GGML not really".to_vec());
    expect_error(&files, &["sequence_tower.gguf", "GGUF"]);

    // A tensor count of 2^60: refused before any allocation.
    let mut files = valid();
    let mut bytes = gguf.clone();
    bytes[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    replace_consistently(&mut files, "sequence_tower.gguf", bytes);
    expect_error(&files, &["sequence_tower.gguf", "absurd"]);

    // A string length of 2^62 for the first metadata key.
    let mut files = valid();
    let mut bytes = gguf.clone();
    bytes[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
    replace_consistently(&mut files, "sequence_tower.gguf", bytes);
    expect_error(&files, &["sequence_tower.gguf", "metadata key"]);
}

#[test]
fn tensor_shapes_must_match_the_manifest_model() {
    let mut files = valid();
    let mut m = manifest(&files);
    m["model"]["ffn_dim"] = 128.into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["sequence_tower.gguf", "sequence_tower.layers.0.ffn.up.weight", "shape"]);
}

#[test]
fn non_finite_shard_values_are_refused() {
    let mut files = valid();
    let mut shard = files["items-00000.bin"].clone();
    shard[4..8].copy_from_slice(&f32::NAN.to_le_bytes()); // row 1's scale
    replace_consistently(&mut files, "items-00000.bin", shard);
    expect_error(&files, &["items-00000.bin", "row 1", "scale"]);
}

#[test]
fn a_main_shard_row_of_zeros_is_refused_naming_it() {
    let mut files = valid();
    // Row 2 zeroed (scale and codes): a broken export, not an item that can never be recommended.
    let mut shard = files["items-00000.bin"].clone();
    let dim = manifest(&files)["dim"].as_u64().unwrap() as usize;
    shard[8..12].fill(0);
    let codes = N_ITEMS * 4 + 2 * dim;
    shard[codes..codes + dim].fill(0);
    replace_consistently(&mut files, "items-00000.bin", shard);
    expect_error(&files, &["items-00000.bin", "row 2", "all zero"]);

    // The whole shard zeroed.
    let mut files = valid();
    let zeros = vec![0; files["items-00000.bin"].len()];
    replace_consistently(&mut files, "items-00000.bin", zeros);
    expect_error(&files, &["items-00000.bin", "row 0", "all zero"]);
}

#[test]
fn paths_must_be_plain_file_names() {
    let mut files = valid();
    let mut m = manifest(&files);
    m["items"]["path"] = "../../etc/passwd".into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["items.path", "plain file name"]);
}

#[test]
fn empty_and_unknown_sessions() {
    let runtime = load(&valid()).unwrap();
    let err = runtime.recommend::<&str>(&[], 10).unwrap_err();
    assert!(matches!(err, RuntimeError::EmptySession { .. }), "{err:?}");
    assert!(err.to_string().contains("empty session"), "{err}");

    let err = runtime.recommend(&["nope", "nada"], 10).unwrap_err();
    assert!(err.to_string().contains("nope, nada"), "{err}");

    let result = runtime.recommend(&["p1", "ghost", "p2"], 5).unwrap();
    assert_eq!(result.unknown, vec!["ghost".to_string()]);
    assert_eq!(result.items.len(), 5);
    assert!(result.items.iter().all(|r| r.id != "p1" && r.id != "p2"));

    let err = runtime.recommend(&["p1"], 0).unwrap_err();
    assert!(err.to_string().contains("k"), "{err}");
    let err = runtime.recommend_rows(&[N_ITEMS as u32 + 3], 3).unwrap_err();
    assert!(err.to_string().contains("session"), "{err}");
}

/// The valid bundle plus an `encoders` section listing a text file holding `text` and, when given, an
/// image file holding `image` (not real GGUF: these cases fail before or at parsing).
fn with_encoders(text: &[u8], image: Option<&[u8]>) -> Files {
    let mut files = valid();
    let mut m = manifest(&files);
    let entry = |path: &str, bytes: &[u8]| json!({"path": path, "bytes": bytes.len(), "sha256": sha256_hex(bytes)});
    m["encoders"] = json!({
        "text": entry("text_encoder.gguf", text),
        "image": image.map(|bytes| entry("image_encoder.gguf", bytes)),
        "text_template": {"parts": ["{title}[ ({year})].", "{description}"], "separator": " ", "list_separator": ", "},
    });
    set_manifest(&mut files, &m);
    files.insert("text_encoder.gguf".into(), text.to_vec());
    if let Some(bytes) = image {
        files.insert("image_encoder.gguf".into(), bytes.to_vec());
    }
    files
}

fn load_encoders(files: &Files) -> Result<BundleEncoders, BundleEncodersError> {
    let manifest = Manifest::from_json(&files["manifest.json"])?;
    BundleEncoders::load(&manifest, files)
}

/// The encoders' error, with its message containing every one of `needles`.
fn expect_encoders_error(files: &Files, needles: &[&str]) -> BundleEncodersError {
    let err = load_encoders(files).expect_err("malformed encoders must be refused");
    let message = err.to_string();
    for needle in needles {
        assert!(message.contains(needle), "`{message}` should name `{needle}`");
    }
    err
}

#[test]
fn encoder_files_are_checked_and_named() {
    // Recommending never reads the encoders: the bundle loads whatever they hold.
    let files = with_encoders(b"GGUF not really", Some(b"nor this"));
    assert!(load(&files).is_ok());
    let err = expect_encoders_error(&files, &["text_encoder.gguf", "encoders.text"]);
    assert!(matches!(err, BundleEncodersError::Gguf { .. }), "{err:?}");

    let mut files = with_encoders(b"GGUF not really", Some(b"nor this"));
    files.remove("text_encoder.gguf");
    let err = expect_encoders_error(&files, &["text_encoder.gguf", "missing"]);
    assert!(matches!(err, BundleEncodersError::File(RuntimeError::MissingFile { .. })), "{err:?}");

    // Files are checked before any is parsed: the missing image is named, not the bad text GGUF.
    let mut files = with_encoders(b"GGUF not really", Some(b"nor this"));
    files.remove("image_encoder.gguf");
    expect_encoders_error(&files, &["image_encoder.gguf", "missing"]);

    let mut files = with_encoders(b"GGUF not really", None);
    files.get_mut("text_encoder.gguf").unwrap()[0] ^= 1;
    let err = expect_encoders_error(&files, &["text_encoder.gguf", "sha256"]);
    assert!(matches!(err, BundleEncodersError::File(RuntimeError::Checksum { .. })), "{err:?}");

    let mut files = with_encoders(b"GGUF not really", None);
    files.get_mut("text_encoder.gguf").unwrap().push(0);
    expect_encoders_error(&files, &["text_encoder.gguf", "bytes"]);

    // A bundle exported without --encoders says how to get them.
    expect_encoders_error(&valid(), &["encoders", "--encoders"]);
}

#[test]
fn malformed_encoders_section_is_refused_by_field() {
    let base = with_encoders(b"GGUF not really", None);

    let mut files = base.clone();
    let mut m = manifest(&files);
    m["encoders"]["text"]["sha256"] = "not-a-hash".into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["encoders.text.sha256", "hex"]);
    expect_encoders_error(&files, &["encoders.text.sha256"]);

    let mut files = base.clone();
    let mut m = manifest(&files);
    m["encoders"]["text_template"]["parts"] = json!(["{title"]);
    set_manifest(&mut files, &m);
    expect_error(&files, &["encoders.text_template"]);

    let mut files = base.clone();
    let mut m = manifest(&files);
    m["encoders"]["vocabulary"] = json!("extra");
    set_manifest(&mut files, &m);
    expect_error(&files, &["manifest.json", "vocabulary"]);

    let mut files = base.clone();
    let mut m = manifest(&files);
    m["encoders"]["text"]["dtype"] = json!("q8_0");
    set_manifest(&mut files, &m);
    expect_error(&files, &["manifest.json", "dtype"]);

    let mut files = base.clone();
    let mut m = manifest(&files);
    m["encoders"].as_object_mut().unwrap().remove("text");
    set_manifest(&mut files, &m);
    expect_error(&files, &["manifest.json", "text"]);

    let mut files = base;
    let mut m = manifest(&files);
    m["encoders"]["text"]["path"] = "items.json".into();
    set_manifest(&mut files, &m);
    expect_error(&files, &["encoders.text.path", "twice"]);
}

/// `file` with the first value of its tensor `name` replaced: f32 `value` for an F32 tensor, else
/// (Q8_0) the first block's f16 scale set to the bits `f16_bits`.
fn poison_tensor(files: &mut Files, file: &str, name: &str, value: f32, f16_bits: u16) {
    let mut bytes = files[file].clone();
    let (at, dtype) = {
        let gguf = omakase::runtime::gguf::Gguf::parse(&files[file], file).unwrap();
        let tensor = &gguf.tensors[name];
        (tensor.data.as_ptr() as usize - files[file].as_ptr() as usize, tensor.dtype)
    };
    match dtype {
        omakase::runtime::gguf::TensorType::F32 => bytes[at..at + 4].copy_from_slice(&value.to_le_bytes()),
        _ => bytes[at..at + 2].copy_from_slice(&f16_bits.to_le_bytes()),
    }
    replace_consistently(files, file, bytes);
}

#[test]
fn non_finite_weights_and_shard_scales_are_refused_at_load_naming_the_tensor_or_row() {
    // Issue 14, point 6: these loaded, then every answer failed as "user vector: need 64 finite
    // values, got 64" (or `embed` printed `norm NaN`), naming no file.
    for (file, tensor, value) in [
        ("sequence_tower.gguf", "sequence_tower.final_norm.weight", f32::NAN),
        ("sequence_tower.gguf", "sequence_tower.position_embedding", f32::INFINITY),
        ("item_tower.gguf", "item_tower.output_norm.bias", f32::NAN),
    ] {
        let mut files = valid();
        poison_tensor(&mut files, file, tensor, value, 0);
        expect_error(&files, &[file, tensor, "finite"]);
    }
    // A Q8_0 matrix whose first block scale is an f16 NaN.
    let mut files = valid();
    let name = {
        let gguf = omakase::runtime::gguf::Gguf::parse(&files["sequence_tower.gguf"], "s").unwrap();
        let q8 = gguf.tensors.iter().filter(|(_, t)| t.dtype == omakase::runtime::gguf::TensorType::Q8_0);
        q8.map(|(n, _)| n.clone()).min().expect("the Q8_0 fixture has Q8_0 matrices")
    };
    poison_tensor(&mut files, "sequence_tower.gguf", &name, f32::NAN, 0x7e00);
    expect_error(&files, &["sequence_tower.gguf", &name, "finite"]);

    // An int8 shard scale of 3e38: finite itself, but 127 · 3e38 is not.
    let mut files = valid();
    let mut shard = files["items-00000.bin"].clone();
    shard[0..4].copy_from_slice(&3e38f32.to_le_bytes());
    replace_consistently(&mut files, "items-00000.bin", shard);
    expect_error(&files, &["items-00000.bin", "row 0", "non-finite"]);
}
