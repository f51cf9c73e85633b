//! Writes a [`Dataset`] as a dataset directory (README.md § Dataset format): `items.jsonl` and `interactions.csv`.
//!
//! Each file is written to a temporary sibling and renamed into place ([`crate::fs::write_atomically`]),
//! so a reader (or a crash) never sees half a file. Image files are not copied: `image` paths are
//! written as they are, relative to the dataset directory, so they only resolve when the output
//! directory holds those images (the importers produce no local images).
//!
//! Layout, chosen so that loading the written directory gives back the same dataset:
//! - `items.jsonl`: one object per item in catalogue order, keys `item_id`, `title`, `description`
//!   (only when non-empty), `image` (path or null), then the metadata fields in their map order. A
//!   metadata key that collides with one of those four is not written (the typed field wins).
//! - `interactions.csv`: header `user_id,item_id,timestamp` (plus `rating` when any event has one),
//!   users in dataset order, each user's events in their (chronological, tie-stable) order, so file
//!   order reproduces every tie-break. Numbers are written in Rust's shortest round-trip form.

use std::fmt::Write as _;
#[cfg(feature = "native")]
use std::fs;
#[cfg(feature = "native")]
use std::path::Path;
use std::path::PathBuf;

#[cfg(feature = "native")]
use crate::fs::AtomicWriteError;

use super::{Dataset, Item};

/// The keys the writer sets itself; metadata never overrides them.
const RESERVED_KEYS: [&str; 4] = ["item_id", "title", "description", "image"];

/// Failure to write a dataset directory (always with the path concerned).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot move {from} to {to}: {source}")]
    Rename { from: PathBuf, to: PathBuf, source: std::io::Error },
    #[error("cannot serialise item {item_id:?}: {source}")]
    Json { item_id: String, source: serde_json::Error },
}

/// Writes `dataset` into `dir` (created if missing), replacing `items.jsonl` and `interactions.csv`.
/// Native only: in the browser there is no file system (and no process id for the temporary name).
#[cfg(feature = "native")]
pub fn write_dataset(dataset: &Dataset, dir: &Path) -> Result<(), WriteError> {
    fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir { path: dir.to_path_buf(), source })?;
    write_atomically(&dir.join("items.jsonl"), items_jsonl(dataset)?.as_bytes())?;
    write_atomically(&dir.join("interactions.csv"), interactions_csv(dataset).as_bytes())?;
    Ok(())
}

/// The text of `items.jsonl`.
pub fn items_jsonl(dataset: &Dataset) -> Result<String, WriteError> {
    let mut out = String::new();
    for item in &dataset.items {
        out.push_str(&item_line(item)?);
        out.push('\n');
    }
    Ok(out)
}

/// One item as a JSON object on one line, keys in the documented order.
fn item_line(item: &Item) -> Result<String, WriteError> {
    let json = |value: &dyn ErasedJson| {
        value.to_json().map_err(|source| WriteError::Json { item_id: item.id.clone(), source })
    };
    let mut line = format!("{{\"item_id\":{},\"title\":{}", json(&item.id)?, json(&item.title)?);
    if !item.description.is_empty() {
        write!(line, ",\"description\":{}", json(&item.description)?).expect("writing to a String");
    }
    write!(line, ",\"image\":{}", json(&item.image)?).expect("writing to a String");
    for (key, value) in &item.metadata {
        if RESERVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        write!(line, ",{}:{}", json(key)?, json(value)?).expect("writing to a String");
    }
    line.push('}');
    Ok(line)
}

/// The text of `interactions.csv`.
pub fn interactions_csv(dataset: &Dataset) -> String {
    let with_rating = dataset.users.iter().flat_map(|u| &u.events).any(|e| e.rating.is_some());
    let mut out =
        String::from(if with_rating { "user_id,item_id,timestamp,rating\n" } else { "user_id,item_id,timestamp\n" });
    for user in &dataset.users {
        let user_id = csv_field(&user.id);
        for event in &user.events {
            let item_id = csv_field(&dataset.items[event.item as usize].id);
            write!(out, "{user_id},{item_id},{}", event.timestamp).expect("writing to a String");
            if with_rating {
                out.push(',');
                if let Some(rating) = event.rating {
                    write!(out, "{rating}").expect("writing to a String");
                }
            }
            out.push('\n');
        }
    }
    out
}

/// Quotes a CSV field when it needs it (RFC 4180: separators, quotes or line breaks inside).
/// Hand-written because it is the only CSV the writer needs and the rule is four lines long.
fn csv_field(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\"")).into()
    } else {
        value.into()
    }
}

/// [`crate::fs::write_atomically`], its failure as this module's error (same paths, same messages).
#[cfg(feature = "native")]
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    crate::fs::write_atomically(path, bytes).map_err(|err| match err {
        AtomicWriteError::Write { path, source } => WriteError::Write { path, source },
        AtomicWriteError::Rename { from, to, source } => WriteError::Rename { from, to, source },
    })
}

/// Object-safe JSON serialisation, so `item_line` can run differently typed fields through one closure
/// that attaches the item id to any error.
trait ErasedJson {
    fn to_json(&self) -> Result<String, serde_json::Error>;
}

impl<T: serde::Serialize> ErasedJson for T {
    fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("B00X"), "B00X");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn metadata_cannot_override_typed_fields() {
        let mut metadata = serde_json::Map::new();
        metadata.insert("title".into(), "spoofed".into());
        metadata.insert("year".into(), 1995.into());
        let item =
            Item { id: "1".into(), title: "Toy Story".into(), description: String::new(), image: None, metadata };
        let line = item_line(&item).unwrap();
        assert_eq!(line, r#"{"item_id":"1","title":"Toy Story","image":null,"year":1995}"#);
    }

    /// Ids with separators, quotes and non-ASCII text, fractional timestamps, ratings on some events
    /// only, ties, and an image path: all come back unchanged through the loader.
    #[cfg(feature = "native")]
    #[test]
    fn awkward_values_survive_a_round_trip_through_the_loader() {
        use super::super::{load_dir, Event, UserHistory};
        let item = |id: &str, title: &str, description: &str, image: Option<&str>| Item {
            id: id.into(),
            title: title.into(),
            description: description.into(),
            image: image.map(String::from),
            metadata: serde_json::json!({"tags": ["a,b", "\"q\""], "price": 1.25}).as_object().cloned().unwrap(),
        };
        let items = vec![
            item("a,1", "Caf\u{e9} \"Noir\"", "line one\nline two", Some("images/a 1.jpg")),
            item("say \"b\"", "<script>x</script>", "", None),
        ];
        let event = |item, timestamp, rating| Event { item, timestamp, rating };
        let users = vec![
            UserHistory {
                id: "user,\"one\"".into(),
                events: vec![
                    event(1, 0.5, None),
                    event(0, 1_588_687_728.923, Some(4.5)),
                    event(1, 1_588_687_728.923, None),
                ],
            },
            UserHistory { id: "ユーザー".into(), events: vec![event(0, -3.0, Some(1.0))] },
        ];
        let dataset = Dataset::new(None, items, users);
        let dir = tempfile::tempdir().unwrap();
        write_dataset(&dataset, dir.path()).unwrap();
        let back = load_dir(dir.path());
        // The image file does not exist, but loading does not check images.
        assert!(back.problems.is_empty(), "{:#?}", back.problems);
        assert_eq!(back.dataset.items, dataset.items);
        assert_eq!(back.dataset.users, dataset.users);
    }
}
