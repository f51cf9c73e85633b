//! `omakase delta` on a small model trained here (docs/bundle.md § Deltas): new products (words and a
//! picture) appended to an exported bundle as a delta shard, embedded as `omakase embed --quantized`
//! embeds them and stored with export's quantization; only manifest.json changes among the bundle's
//! files; `recommend` serves them; appending twice works; and bad input (an id already in the
//! catalogue or twice, a delta of another model, a foreign or tampered file, a bundle without
//! encoders) exits 2 naming the file.
//!
//! The catalogue is the first 40 films of ML-100K (`common::ml100k`: ml100k-mm with its posters when
//! `../shared` is there, else the recbole wheel's, each film given a window of a committed photo).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use omakase::runtime::delta::{self, DeltaHeader};
use omakase::runtime::store::quantize_int8;
use omakase::runtime::{Manifest, Runtime};
use omakase::train::run::TrainJob;
use omakase::train::{train, TrainConfig};
use serde_json::Value;

const ITEMS: usize = 40;
const PHOTOS: [&str; 4] = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"];

fn omakase(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omakase")).args(args).output().unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn models_present() -> bool {
    let dir = std::env::var_os("OMAKASE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    let present = dir.join("all-minilm-l6-v2/model.safetensors").is_file()
        && dir.join("efficientnet-lite0/efficientnet-lite0.safetensors").is_file();
    if !present {
        eprintln!("skipped: encoder weights not found in {} (run scripts/fetch-models.sh)", dir.display());
    }
    present
}

/// A square window of one of the committed photos, placed by `i`, saved as PNG at `to`.
fn photo_window(i: usize, to: &Path) {
    let photo =
        image::open(common::fixture("efficientnet-lite0/photos").join(PHOTOS[i % PHOTOS.len()])).unwrap().to_rgb8();
    let side = photo.width().min(photo.height()) / 2;
    let (x, y) = ((i as u32 * 37) % (photo.width() - side), (i as u32 * 23) % (photo.height() - side));
    image::imageops::crop_imm(&photo, x, y, side, side).to_image().save(to).unwrap();
}

/// The first [`ITEMS`] films with pictures, and the ratings of users who rated five of them.
fn small_catalogue(dir: &Path) {
    let ml100k = common::ml100k();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let items = std::fs::read_to_string(ml100k.dir.join("items.jsonl")).unwrap();
    let mut kept = std::collections::HashSet::new();
    let mut lines = Vec::new();
    for (i, line) in items.lines().take(ITEMS).enumerate() {
        let mut item: Value = serde_json::from_str(line).unwrap();
        let id = item["item_id"].as_str().unwrap().to_string();
        match item["image"].as_str() {
            Some(image) if ml100k.multimodal => {
                std::fs::copy(ml100k.dir.join(image), dir.join(image)).unwrap();
            }
            _ => {
                let image = format!("images/{id}.png");
                photo_window(i, &dir.join(&image));
                item["image"] = Value::from(image);
            }
        }
        kept.insert(id);
        lines.push(item.to_string());
    }
    std::fs::write(dir.join("items.jsonl"), lines.join("\n") + "\n").unwrap();
    let ratings = std::fs::read_to_string(ml100k.dir.join("interactions.csv")).unwrap();
    let mut rows = ratings.lines();
    let header = rows.next().unwrap();
    let rows: Vec<&str> = rows.filter(|r| kept.contains(r.split(',').nth(1).unwrap())).collect();
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    rows.iter().for_each(|r| *per_user.entry(r.split(',').next().unwrap()).or_default() += 1);
    let rows: Vec<&str> = rows.into_iter().filter(|r| per_user[r.split(',').next().unwrap()] >= 5).collect();
    std::fs::write(dir.join("interactions.csv"), format!("{header}\n{}\n", rows.join("\n"))).unwrap();
}

/// A one-epoch model of the small catalogue, exported with the encoders: `(data, run, bundle)`.
fn exported(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let models = common::models_dir();
    let data = tmp.join("data");
    small_catalogue(&data);
    let mut config = TrainConfig::default();
    config.model.dim = 32;
    config.model.ffn_dim = 32;
    config.pretrain.epochs = 0;
    config.train.epochs = 1;
    config.encode.features = tmp.join("features.safetensors");
    config.encode.models = models.clone();
    let run = tmp.join("run");
    train(&TrainJob::quiet(data.clone(), run.clone(), config)).unwrap();
    let bundle = tmp.join("bundle");
    let out =
        omakase(&["export", "--model", s(&run), "--data", s(&data), "--out", s(&bundle), "--encoders", s(&models)]);
    assert!(out.status.success(), "{}", stderr(&out));
    (data, run, bundle)
}

/// Every file of a folder by name.
fn folder(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn manifest(bundle: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// The bundle as `omakase recommend` loads it, deltas included.
fn runtime(bundle: &Path) -> Runtime {
    let m = manifest(bundle);
    let files: HashMap<String, Vec<u8>> =
        m.files().into_iter().map(|(_, e)| (e.path.clone(), std::fs::read(bundle.join(&e.path)).unwrap())).collect();
    delta::load(&m, &files).unwrap()
}

/// Writes `lines` as NEW.jsonl in `dir` (its pictures beside it), returning its path.
fn products(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    std::fs::create_dir_all(dir.join("pictures")).unwrap();
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    let path = dir.join(name);
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
    path
}

fn delta_cli(bundle: &Path, flag: &str, file: &Path) -> Output {
    omakase(&["delta", "--bundle", s(bundle), flag, s(file), "--json"])
}

#[test]
fn new_products_reach_the_bundle_as_a_delta_and_bad_input_is_named() {
    if !models_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (data, run, bundle) = exported(tmp.path());
    let exported_files = folder(&bundle);
    let new = tmp.path().join("new");
    std::fs::create_dir_all(new.join("pictures")).unwrap();
    photo_window(7, &new.join("pictures/lights.png"));
    let harbour = serde_json::json!({"item_id": "new-harbour", "title": "Harbour Lights", "year": 2026,
        "genres": ["Drama", "Mystery"], "description": "A retired codebreaker decodes a signal from a boat lost at sea.",
        "image": "pictures/lights.png", "url": "/p/new-harbour"});
    let orbit = serde_json::json!({"item_id": "new-orbit", "title": "Orbit of Two", "year": 2026, "genres": ["Sci-Fi"],
        "description": "Two engineers stranded on a failing space station.", "url": "javascript:alert(1)"});
    let first = products(&new, "first.jsonl", &[harbour.clone(), orbit]);

    let out = delta_cli(&bundle, "--items", &first);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = report["file"].as_str().unwrap().to_string();
    assert_eq!(report["rows"], 2);
    assert!(name.starts_with("delta-") && name.ends_with(".bin"), "{name}");
    // Only manifest.json changed; the delta is the one new file, and nothing else was left behind.
    let now = folder(&bundle);
    for (file, bytes) in &exported_files {
        if file != "manifest.json" {
            assert!(now[file] == *bytes, "{file} changed");
        }
    }
    let mut names: Vec<&String> = now.keys().filter(|f| !exported_files.contains_key(*f)).collect();
    names.sort();
    assert_eq!(names, vec![&name]);
    assert_eq!(report["bytes"].as_u64().unwrap(), now[&name].len() as u64);
    let m = manifest(&bundle);
    assert_eq!((m.deltas.len(), m.deltas[0].file.path.as_str(), m.deltas[0].rows), (1, name.as_str(), 2));
    assert_eq!(delta::base(&m), Manifest::from_json(&exported_files["manifest.json"]).unwrap());

    // The row is what `embed --quantized` computes for the product, quantized as export quantizes.
    let metadata =
        serde_json::json!({"year": 2026, "genres": ["Drama", "Mystery"], "url": "/p/new-harbour"}).to_string();
    let embedded = omakase(&[
        "embed",
        "--bundle",
        s(&bundle),
        "--quantized",
        "--json",
        "--title",
        "Harbour Lights",
        "--description",
        "A retired codebreaker decodes a signal from a boat lost at sea.",
        "--metadata",
        &metadata,
        "--image",
        s(&new.join("pictures/lights.png")),
    ]);
    assert!(embedded.status.success(), "{}", stderr(&embedded));
    let vector: Vec<f32> = serde_json::from_slice::<Value>(&embedded.stdout).unwrap()["vector"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let rt = runtime(&bundle);
    let row = rt.row_of("new-harbour").unwrap();
    assert_eq!(row as usize, ITEMS);
    let (codes, scale) = quantize_int8(&vector);
    let stored = rt.item_vector(row).unwrap();
    for (j, (&c, &v)) in codes.iter().zip(&stored).enumerate() {
        assert!((c as f32 * scale - v).abs() <= scale * 1.001, "value {j}: {v} against {}", c as f32 * scale);
    }
    let card = rt.item(row).unwrap();
    assert_eq!(
        (card.title.as_str(), card.image.as_deref(), card.link.as_deref()),
        ("Harbour Lights", Some("pictures/lights.png"), Some("/p/new-harbour"))
    );
    assert_eq!(rt.item(rt.row_of("new-orbit").unwrap()).unwrap().link, None, "a javascript: link is dropped");

    // `recommend` serves the new products: from a session holding one, and in a full ranking.
    let out = omakase(&["recommend", "--bundle", s(&bundle), "--item", "new-harbour", "--k", "5", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first_film = rt.item(0).unwrap().id.clone();
    let out = omakase(&[
        "recommend",
        "--bundle",
        s(&bundle),
        "--item",
        &first_film,
        "--k",
        &(ITEMS + 1).to_string(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ranked = String::from_utf8_lossy(&out.stdout);
    assert!(ranked.contains("\"new-harbour\"") && ranked.contains("\"new-orbit\""), "{ranked}");

    // Appending twice: a second delta after the first.
    let lantern = serde_json::json!({"item_id": "new-lantern", "title": "The Lantern Keeper", "description": "A lighthouse keeper's last winter."});
    let out = delta_cli(&bundle, "--items", &products(&new, "second.jsonl", &[lantern]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(manifest(&bundle).deltas.len(), 2);
    assert_eq!(runtime(&bundle).row_of("new-lantern"), Some(ITEMS as u32 + 2));

    // Bad input exits 2 naming the file, and leaves the bundle as it was.
    let before = folder(&bundle);
    let again = products(&new, "again.jsonl", std::slice::from_ref(&harbour));
    let known = products(&new, "known.jsonl", &[serde_json::json!({"item_id": first_film, "title": "Again"})]);
    let twice = products(
        &new,
        "twice.jsonl",
        &[serde_json::json!({"item_id": "x", "title": "A"}), serde_json::json!({"item_id": "x", "title": "B"})],
    );
    let for_text_only = products(&new, "nothing.jsonl", &[serde_json::json!({"item_id": "y"})]);
    for (file, said) in [
        (&again, "\"new-harbour\" is already in the catalogue"),
        (&known, "is already in the catalogue"),
        (&twice, "twice.jsonl:2"),
        (&for_text_only, "nothing.jsonl:1"),
    ] {
        let out = delta_cli(&bundle, "--items", file);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(said), "expected {said:?}: {}", stderr(&out));
    }
    // A delta made for another model (its item tower's digest differs), garbage, and /dev/zero.
    let ours = &before[&name];
    let parsed = delta::Delta::parse(ours, &name).unwrap();
    let mut header: DeltaHeader = parsed.header.clone();
    header.space.item_tower = "0".repeat(64);
    let h = u32::from_le_bytes(ours[8..12].try_into().unwrap()) as usize;
    let foreign = new.join("foreign.bin");
    std::fs::write(&foreign, delta::encode(&header, &ours[12 + h..])).unwrap();
    let garbage = new.join("garbage.bin");
    std::fs::write(&garbage, b"not a delta at all").unwrap();
    let zero = new.join("zero.bin");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (file, said) in [(&foreign, "made with the item tower"), (&garbage, "OMKDELTA"), (&zero, "not a regular file")]
    {
        let out = delta_cli(&bundle, "--add", file);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(s(file)) && err.contains(said), "expected {said:?} naming {}: {err}", file.display());
    }
    assert!(folder(&bundle) == before, "a refused append changed the bundle");

    // A delta from the admin page (`--add`): checked and appended under its own name.
    let mut header = parsed.header.clone();
    header.items.iter_mut().for_each(|m| m.id = format!("{}-admin", m.id));
    let admin = new.join("from-admin.bin");
    std::fs::write(&admin, delta::encode(&header, &ours[12 + h..])).unwrap();
    let out = delta_cli(&bundle, "--add", &admin);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(runtime(&bundle).row_of("new-orbit-admin"), Some(ITEMS as u32 + 4));

    // A tampered delta in the bundle: recommend and delta both refuse the bundle, naming the file.
    let mut bytes = std::fs::read(bundle.join(&name)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(bundle.join(&name), bytes).unwrap();
    let out = omakase(&["recommend", "--bundle", s(&bundle), "--item", &first_film, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&name) && stderr(&out).contains("sha256"), "{}", stderr(&out));
    let out = delta_cli(
        &bundle,
        "--items",
        &products(&new, "more.jsonl", &[serde_json::json!({"item_id": "z", "title": "Z"})]),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&name), "{}", stderr(&out));

    // A re-export replaces the folder, deltas included (they are its files), with the dataset's catalogue.
    let out = omakase(&["export", "--model", s(&run), "--data", s(&data), "--out", s(&bundle)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(manifest(&bundle).deltas.is_empty());

    // A bundle without the encoders takes no delta: it cannot embed, and nothing would check one.
    let out = delta_cli(&bundle, "--items", &first);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--encoders"), "{}", stderr(&out));
}
