//! `omakase encode`: catalogue → cached frozen features. A small synthetic catalogue (generated pictures,
//! one missing, one corrupt, one item without text) checks masks, shapes, caching and the written bytes;
//! ml100k-mm checks the whole real catalogue once and its cache hit (without `../shared`, the recbole
//! wheel's ML-100K does: every title, no picture, recorded as a reduced run).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use omakase::encoders::features::{Features, ModalityFeatures};
use omakase::encoders::pipeline::{encode_dir, EncodeOptions, EncodeReport, Encoders};
use omakase::encoders::text::ItemTextTemplate;

/// Loading both encoders takes a while; the tests share one copy.
fn encoders() -> &'static Encoders {
    static ENCODERS: OnceLock<Encoders> = OnceLock::new();
    ENCODERS.get_or_init(|| Encoders::load(&common::models_dir(), true).expect("encoders load"))
}

fn text_only_encoders() -> Encoders {
    Encoders { text: encoders().text.clone(), image: None }
}

fn options() -> EncodeOptions {
    EncodeOptions { progress: false, ..EncodeOptions::default() }
}

/// Item ids of the synthetic catalogue, in file order.
const IDS: [&str; 5] = ["mug", "pen", "lamp", "chair", "blank"];
/// What the default template makes of the items that have text.
const MUG_TEXT: &str = "Red mug. Kitchen.";
const PEN_TEXT: &str = "Blue pen. Writes smoothly.";

/// A dataset directory: `mug` (PNG) and `pen` (JPEG) are fine, `lamp`'s picture does not exist, `chair`'s
/// is not an image, `blank` has a picture but no text at all.
fn synthetic_dataset(dir: &Path, pen_title: &str) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let items = [
        serde_json::json!({"item_id": "mug", "title": "Red mug", "genres": ["Kitchen"], "image": "images/mug.png"}),
        serde_json::json!({"item_id": "pen", "title": pen_title, "description": "Writes smoothly.",
                           "image": "images/pen.jpg"}),
        serde_json::json!({"item_id": "lamp", "title": "Desk lamp", "image": "images/lamp.jpg"}),
        serde_json::json!({"item_id": "chair", "title": "Chair", "image": "images/chair.jpg"}),
        serde_json::json!({"item_id": "blank", "title": "", "image": "images/blank.png"}),
    ];
    let lines: Vec<String> = items.iter().map(|item| item.to_string()).collect();
    std::fs::write(dir.join("items.jsonl"), lines.join("\n") + "\n").unwrap();
    let mut interactions = String::from("user_id,item_id,timestamp\n");
    for (t, id) in IDS.iter().enumerate() {
        interactions += &format!("u1,{id},{t}\nu2,{id},{t}\n");
    }
    std::fs::write(dir.join("interactions.csv"), interactions).unwrap();

    let picture = |w, h, seed: u32| {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7 + seed) as u8, (y * 5) as u8, (x * y + seed) as u8]))
    };
    picture(40, 30, 3).save(dir.join("images/mug.png")).unwrap();
    picture(50, 70, 90).save(dir.join("images/pen.jpg")).unwrap();
    picture(16, 16, 200).save(dir.join("images/blank.png")).unwrap();
    std::fs::write(dir.join("images/chair.jpg"), b"\xff\xd8\xff\xe0 this is not really a JPEG").unwrap();
}

fn encode(data: &Path, out: &Path, encoders: &Encoders) -> (Features, EncodeReport) {
    encode_dir(data, out, encoders, &options()).expect("encode")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A present row must be non-zero, an absent one all zeros.
fn assert_rows_match_mask(m: &ModalityFeatures) {
    for i in 0..m.len() {
        let zero = m.row(i).iter().all(|&v| v == 0.0);
        assert_eq!(zero, !m.present[i], "row {i}");
        assert_eq!(m.hashes[i].is_some(), m.present[i], "hash of row {i}");
    }
}

fn direct_text(text: &str) -> Vec<f32> {
    encoders().text.encoder.encode_batch(&[text]).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn direct_image(path: &Path) -> Vec<f32> {
    let encoder = &encoders().image.as_ref().unwrap().encoder;
    encoder.encode_files(&[path]).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn masks_and_shapes_of_a_small_catalogue() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("out/features.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    let (features, report) = encode(&data, &out, encoders());

    assert_eq!(features.item_ids, IDS);
    assert_eq!((features.text.dim, features.text.values.len()), (384, 5 * 384));
    assert_eq!((features.image.dim, features.image.values.len()), (1280, 5 * 1280));
    assert_eq!(features.text.present, [true, true, true, true, false]);
    assert_eq!(features.image.present, [true, true, false, false, true]);
    assert_rows_match_mask(&features.text);
    assert_rows_match_mask(&features.image);

    assert_eq!((report.items, report.text.present, report.text.encoded, report.text.reused), (5, 4, 4, 0));
    assert_eq!((report.image.present, report.image.encoded, report.image.reused), (3, 3, 0));
    let unusable: Vec<(Option<usize>, &str)> =
        report.image_problems.iter().map(|p| (p.line, p.message.as_str())).collect();
    assert_eq!(unusable.len(), 2, "{unusable:?}");
    assert!(unusable[0].0 == Some(3) && unusable[0].1.contains("lamp.jpg"), "{unusable:?}");
    assert!(unusable[1].0 == Some(4) && unusable[1].1.contains("chair.jpg"), "{unusable:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // What was written is what was returned, encoder identities included.
    let saved = Features::load(&out).unwrap();
    assert_eq!(saved, features);
    assert_eq!(saved.text.encoder.as_ref().unwrap().model, "all-MiniLM-L6-v2");
    let image_encoder = saved.image.encoder.as_ref().unwrap();
    assert_eq!(image_encoder.files_sha256["efficientnet-lite0.safetensors"].len(), 64);
    assert!(image_encoder.settings["preprocessing"].starts_with("v1"));
    assert_eq!(saved.text_template.as_ref(), Some(ItemTextTemplate::default().spec()));
}

#[test]
fn rows_equal_direct_encoder_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("features.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    let (features, _) = encode(&data, &out, encoders());
    assert!(max_abs_diff(features.text.row(0), &direct_text(MUG_TEXT)) < 1e-5);
    assert!(max_abs_diff(features.text.row(1), &direct_text(PEN_TEXT)) < 1e-5);
    assert!(max_abs_diff(features.image.row(0), &direct_image(&data.join("images/mug.png"))) < 1e-4);
    assert!(max_abs_diff(features.image.row(1), &direct_image(&data.join("images/pen.jpg"))) < 1e-4);
    assert!(max_abs_diff(features.image.row(4), &direct_image(&data.join("images/blank.png"))) < 1e-4);
}

#[test]
fn a_second_run_is_a_full_cache_hit_with_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("features.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    let (first, _) = encode(&data, &out, encoders());
    let first_bytes = std::fs::read(&out).unwrap();

    let (second, report) = encode(&data, &out, encoders());
    assert_eq!((report.text.encoded, report.text.reused), (0, 4));
    assert_eq!((report.image.encoded, report.image.reused), (0, 3));
    assert_eq!(second, first);
    assert_eq!(std::fs::read(&out).unwrap(), first_bytes);
}

#[test]
fn a_changed_title_re_encodes_only_that_text() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("features.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    let (before, _) = encode(&data, &out, encoders());

    synthetic_dataset(&data, "Black pen");
    let (after, report) = encode(&data, &out, encoders());
    assert_eq!((report.text.encoded, report.text.reused), (1, 3));
    assert_eq!((report.image.encoded, report.image.reused), (0, 3));
    for i in [0, 2, 3, 4] {
        assert_eq!(after.text.row(i), before.text.row(i), "text row {i}");
    }
    assert_eq!(after.image, before.image);
    assert_ne!(after.text.hashes[1], before.text.hashes[1]);
    assert!(max_abs_diff(after.text.row(1), &direct_text("Black pen. Writes smoothly.")) < 1e-5);
    assert!(max_abs_diff(after.text.row(1), before.text.row(1)) > 1e-3);
}

#[test]
fn text_only_marks_every_image_missing_and_a_full_run_then_encodes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("features.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    let (features, report) = encode(&data, &out, &text_only_encoders());
    assert_eq!(features.text.present_count(), 4);
    assert_eq!(features.image.present, [false; 5]);
    assert!(features.image.values.iter().all(|&v| v == 0.0));
    assert_eq!(features.image.encoder, None);
    assert_eq!((report.image.encoded, report.image.reused), (0, 0));

    let (_, report) = encode(&data, &out, encoders());
    assert_eq!((report.text.encoded, report.text.reused), (0, 4));
    assert_eq!((report.image.encoded, report.image.reused), (3, 0));
}

#[test]
fn an_unreadable_previous_features_file_is_replaced_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("features.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    encode(&data, &out, encoders());
    // Still an Omakase features file by its header, but its rows no longer load: encoding again is
    // the fix, so it is replaced (with a warning naming it).
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(&out, &bytes[..bytes.len() - 16]).unwrap();
    let (_, report) = encode(&data, &out, encoders());
    assert_eq!((report.text.encoded, report.image.encoded), (4, 3));
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].contains("features.safetensors"), "{:?}", report.warnings);
    assert_eq!(Features::load(&out).unwrap().len(), 5);
}

#[test]
fn a_previous_file_that_is_not_features_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("features.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    std::fs::write(&out, b"half a file").unwrap();
    let err = encode_dir(&data, &out, encoders(), &options()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("features.safetensors") && err.contains("not an Omakase features file"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"half a file");
}

#[test]
fn the_cli_prints_a_summary_and_exits_2_on_an_unusable_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("shop"), tmp.path().join("f.safetensors"));
    synthetic_dataset(&data, "Blue pen");
    let omakase = |data: &Path| {
        Command::new(env!("CARGO_BIN_EXE_omakase"))
            .args(["encode", "--batch", "2", "--image-batch", "2", "--data"])
            .arg(data)
            .arg("--out")
            .arg(&out)
            .arg("--models")
            .arg(common::models_dir())
            .output()
            .unwrap()
    };
    let run = omakase(&data);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("4 items with text: 4 encoded, 0 reused"), "{stdout}");
    assert!(stdout.contains("3 items with a usable image: 3 encoded, 0 reused"), "{stdout}");
    assert_eq!(Features::load(&out).unwrap().image.present_count(), 3);

    let run = omakase(&tmp.path().join("no-such-dataset"));
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("items.jsonl"));
}

/// The whole real catalogue, then a re-run: one test, as the encoding is the slow part. Run with
/// `--nocapture` to see the timings.
#[test]
fn ml100k_encodes_every_item_and_a_second_run_is_a_cache_hit() {
    let ml100k = common::ml100k();
    if !ml100k.multimodal {
        common::note_reduced(common::test_name!(), "the 1,645 posters and the plots of datasets/ml100k-mm");
    }
    let name = ml100k.name();
    let data = ml100k.dir;
    // ml100k-mm has a poster for 1,645 of its 1,682 films; the recbole wheel's ML-100K has none.
    let images = if ml100k.multimodal { 1645 } else { 0 };
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("features.safetensors");
    let encoders = encoders();

    let (features, first) = encode(&data, &out, encoders);
    eprintln!(
        "{name} first run: {:.1} s; text {} in {:.1} s ({:.1}/s); images {} in {:.1} s ({:.1}/s); check {:.1} s",
        first.seconds,
        first.text.encoded,
        first.text.seconds,
        first.text.items_per_second(),
        first.image.encoded,
        first.image.seconds,
        first.image.items_per_second(),
        first.image_check_seconds
    );
    assert_eq!(features.len(), 1682);
    assert_eq!((first.text.encoded, features.text.present_count()), (1682, 1682));
    assert_eq!((first.image.encoded, features.image.present_count()), (images, images));
    assert!(
        first.image_problems.is_empty() && first.warnings.is_empty(),
        "{:?} {:?}",
        first.image_problems,
        first.warnings
    );
    assert_rows_match_mask(&features.text);
    assert_rows_match_mask(&features.image);

    // Rows in catalogue order, equal to direct encoder calls (Toy Story, GoldenEye).
    let items = omakase::data::load_dir(&data).dataset.items;
    assert_eq!(features.item_ids, items.iter().map(|i| i.id.clone()).collect::<Vec<_>>());
    let template = ItemTextTemplate::default();
    let toy_story = template.render(&items[0]);
    if ml100k.multimodal {
        assert!(toy_story.starts_with("Toy Story (1995). Animation, Children's, Comedy. A cowboy"), "{toy_story}");
    } else {
        assert_eq!(toy_story, "Toy Story (1995). Animation, Children's, Comedy.");
    }
    for i in [0, 1] {
        assert!(max_abs_diff(features.text.row(i), &direct_text(&template.render(&items[i]))) < 1e-5);
        match items[i].image.as_deref() {
            Some(image) => assert!(max_abs_diff(features.image.row(i), &direct_image(&data.join(image))) < 1e-4),
            None => assert!(!ml100k.multimodal, "{name}: item {} has no poster", items[i].id),
        }
    }
    let bytes = std::fs::read(&out).unwrap();

    let started = Instant::now();
    let (again, second) = encode(&data, &out, encoders);
    eprintln!(
        "{name} second run: {:.2} s (check {:.2} s)",
        started.elapsed().as_secs_f64(),
        second.image_check_seconds
    );
    assert_eq!((second.text.encoded, second.text.reused), (0, 1682));
    assert_eq!((second.image.encoded, second.image.reused), (0, images));
    assert_eq!(again, features);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}
