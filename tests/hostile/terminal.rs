//! Terminal escapes (issue 14, point 8): text from data — titles, ids, paths, problem messages —
//! reaches the terminal with its control characters escaped. A title holding `ESC ] 0 ; … BEL`
//! would retitle the terminal, `ESC [ 31 m` recolour it. `--json` stays JSON (serde escapes it).

use std::path::Path;
use std::process::{Command, Output};

use crate::bundle_fixture::{config, fixture, items};
use omakase::export::{build_bundle, catalogue_vectors, write_atomic_dir, ExportJob};
use omakase::runtime::manifest::{Provenance, MAX_SHARD_BYTES};
use omakase::runtime::{EmbeddingDtype, WeightsDtype};

const TITLE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[31mRed tea\u{0}\r";
const ID: &str = "p5\u{1b}[2J\u{7}";

fn omakase(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omakase")).args(args).output().unwrap()
}

/// The control characters of `bytes` (C0 but newline, DEL, and C1 as UTF-8), if any.
fn raw_controls(bytes: &[u8]) -> Vec<char> {
    String::from_utf8_lossy(bytes).chars().filter(|&c| c.is_control() && c != '\n').collect()
}

/// The fixture bundle with item p4 titled [`TITLE`] and item p5 known as [`ID`].
fn write_hostile_bundle(dir: &Path) {
    let mut fixture = fixture();
    fixture.features.item_ids[5] = ID.to_string();
    let mut items = items();
    items[4].title = TITLE.to_string();
    items[5].id = ID.to_string();
    items[5].title = format!("{TITLE} five");
    let vectors = catalogue_vectors(&fixture.model, &fixture.catalogue, &fixture.features, true).unwrap();
    let job = ExportJob {
        weights: WeightsDtype::Q8_0,
        shard: EmbeddingDtype::Int8,
        max_shard_bytes: MAX_SHARD_BYTES,
        ..ExportJob::new("run", "data", "out")
    };
    let bundle = build_bundle(&config(), &fixture.tensors(), &vectors, &items, &job, Provenance::default()).unwrap();
    write_atomic_dir(dir, &bundle.files).unwrap();
}

#[test]
fn recommend_table_escapes_titles_and_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_hostile_bundle(&dir);
    let bundle = dir.to_str().unwrap();
    // Every item recommended (k = all), the hostile ones in the session and as recommendations, and
    // an unknown id with ESC in it.
    for session in [format!("p4,{ID},ghost\u{1b}[1m"), "p1".to_string()] {
        let out = omakase(&["recommend", "--bundle", bundle, "--session", &session, "--k", "59"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout.clone()).unwrap();
        assert_eq!(raw_controls(&out.stdout), vec![], "{stdout}");
        assert_eq!(raw_controls(&out.stderr), vec![]);
        // Shown, escaped: what it was is still readable.
        assert!(stdout.contains(r"\u{1b}]0;pwned\u{7}\u{1b}[31mRed tea"), "{stdout}");
        if session == "p1" {
            assert!(stdout.contains(r"p5\u{1b}[2J\u{7}"), "{stdout}");
        } else {
            assert!(stdout.contains(r"ghost\u{1b}[1m"), "{stdout}");
        }
    }
    // --json is JSON: the title reads back as itself.
    let out = omakase(&["recommend", "--bundle", bundle, "--session", "p1", "--k", "59", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let titles: Vec<&str> =
        json["recommendations"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert!(titles.contains(&TITLE), "{titles:?}");
}

#[test]
fn validate_escapes_ids_and_paths_in_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    // An image path with ESC and NUL that does not exist, a duplicate id with ESC and BEL, and an
    // interaction naming an unknown item id with ESC.
    let items = concat!(
        r#"{"item_id": "a\u001b]0;pwned\u0007", "title": "A", "image": "images/\u001b[2J\u0000x.png"}"#,
        "\n",
        r#"{"item_id": "a\u001b]0;pwned\u0007", "title": "A again"}"#,
        "\n",
        r#"{"item_id": "b", "title": "B"}"#,
        "\n",
    );
    std::fs::write(data.join("items.jsonl"), items).unwrap();
    std::fs::write(data.join("interactions.csv"), "user_id,item_id,timestamp\nu1,b,1\nu1,\u{1b}[31mz\u{7},2\nu2,b,3\n")
        .unwrap();
    let out = omakase(&["validate", "--data", data.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(raw_controls(&out.stdout), vec![], "{stdout}");
    assert_eq!(raw_controls(&out.stderr), vec![], "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(r"images/\u{1b}[2J\u{0}x.png"), "{stdout}");
    assert!(stdout.contains(r"\u{1b}[31mz\u{7}"), "{stdout}");
    // --json is JSON: the path reads back as itself.
    let out = omakase(&["validate", "--data", data.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages: Vec<&str> =
        json["problems"].as_array().unwrap().iter().map(|p| p["message"].as_str().unwrap()).collect();
    assert!(messages.iter().any(|m| m.contains("images/\u{1b}[2J\u{0}x.png")), "{messages:?}");
}
