//! A dataset directory on arbitrary bytes: `items.jsonl`, then `interactions.csv`, split at the first
//! `\n--\n` (no separator: all of it is `items.jsonl` and `interactions.csv` is empty). Both are
//! loaded by `omakase::data::load::load_with`, the code `load_dir` runs (line reading, JSON and CSV
//! parsing, the catalogue's id rules, joining interactions to items, the histories' ordering); a
//! usable dataset is then summarised and split as `validate`, `train` and `eval` do.
//!
//! Any panic is a finding, and so is a broken invariant of the loader's contract (README.md § Dataset
//! format, `src/data/{items,interactions,catalogue,histories}.rs`): problems name a line inside the
//! file they name; loaded items have unique, non-blank ids and their lines in order; every event
//! names a loaded item, has a finite timestamp and a finite rating, and each history is in time order.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use omakase::data::load::{load_with, INTERACTIONS_FILE, ITEMS_FILE};
use omakase::data::split::{split, Protocol};
use omakase::data::{Severity, Summary};

const SEPARATOR: &[u8] = b"\n--\n";

/// Physical lines of a file as an editor counts them (a last line without its "\n" counts).
fn line_count(bytes: &[u8]) -> usize {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(!bytes.is_empty() && !bytes.ends_with(b"\n"))
}

fuzz_target!(|data: &[u8]| {
    let (items, interactions) = match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        // The separator's first "\n" ends the items file's last line.
        Some(at) => (&data[..at + 1], &data[at + SEPARATOR.len()..]),
        None => (data, &b""[..]),
    };
    let loaded = load_with(None, |name, _| Some(if name == ITEMS_FILE { items } else { interactions }));
    let dataset = &loaded.dataset;

    // Problems: each names one of the two files, and a line inside it.
    for problem in &loaded.problems {
        let lines = match problem.file.as_str() {
            ITEMS_FILE => line_count(items),
            INTERACTIONS_FILE => line_count(interactions),
            other => panic!("a problem names {other:?}: {problem}"),
        };
        if let Some(line) = problem.line {
            assert!((1..=lines).contains(&line), "line {line} of {lines}: {problem}");
        }
        assert_eq!(problem.severity, problem.kind.severity(), "{problem}");
    }
    // Items file problems come first, each file's in line order (file-level ones last).
    let files: Vec<&str> = loaded.problems.iter().map(|p| p.file.as_str()).collect();
    let first_interaction = files.iter().position(|&f| f == INTERACTIONS_FILE).unwrap_or(files.len());
    assert!(files[first_interaction..].iter().all(|&f| f == INTERACTIONS_FILE), "{files:?}");
    for file in [ITEMS_FILE, INTERACTIONS_FILE] {
        let lines: Vec<usize> =
            loaded.problems.iter().filter(|p| p.file == file).map(|p| p.line.unwrap_or(usize::MAX)).collect();
        assert!(lines.is_sorted(), "{file} problems out of line order: {lines:?}");
    }

    // Items: unique, non-blank ids, each at its own line, in file order.
    assert_eq!(loaded.item_lines.len(), dataset.items.len());
    let mut ids = HashSet::new();
    for (i, item) in dataset.items.iter().enumerate() {
        assert!(!item.id.trim().is_empty(), "blank item id {:?}", item.id);
        assert!(ids.insert(item.id.as_str()), "item id {:?} loaded twice", item.id);
        assert_eq!(dataset.item_index(&item.id), Some(i as u32));
        assert!(item.image.as_deref() != Some(""), "an empty image path is no image");
        for key in ["item_id", "title", "description", "image"] {
            assert!(!item.metadata.contains_key(key), "{key} kept as metadata");
        }
    }
    assert!(loaded.item_lines.windows(2).all(|w| w[0] < w[1]), "{:?}", loaded.item_lines);
    assert!(loaded.item_lines.iter().all(|&line| (1..=line_count(items)).contains(&line)));

    // Users and events: unique ids, known items, finite values, time order.
    let mut users = HashSet::new();
    for user in &dataset.users {
        assert!(!user.id.trim().is_empty(), "blank user id {:?}", user.id);
        assert!(users.insert(user.id.as_str()), "user {:?} listed twice", user.id);
        assert!(!user.events.is_empty(), "user {:?} without events", user.id);
        for event in &user.events {
            assert!((event.item as usize) < dataset.items.len(), "event names item {}", event.item);
            assert!(event.timestamp.is_finite(), "timestamp {}", event.timestamp);
            assert!(event.rating.is_none_or(f32::is_finite), "rating {:?}", event.rating);
        }
        assert!(user.events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "{:?}", user.events);
    }
    // At most one event per data row (a record spans one line or more; the header is one).
    assert!(dataset.num_interactions() <= line_count(interactions).saturating_sub(1));

    let summary = Summary::new(dataset, &loaded.problems, None);
    assert_eq!(summary.usable, loaded.is_usable());
    assert_eq!(summary.fatal_problems, loaded.problems.iter().filter(|p| p.severity == Severity::Fatal).count());
    assert_eq!((summary.items, summary.users), (dataset.items.len(), dataset.users.len()));
    if loaded.is_usable() {
        // Usable: some user has a previous item to learn from.
        assert!(dataset.users.iter().any(|u| u.events.len() >= 2));
        for protocol in [Protocol::Warm, Protocol::Cold] {
            let _ = split(dataset, protocol);
        }
    }
});
