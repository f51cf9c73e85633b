//! `items.jsonl` (README.md § Dataset format): one JSON object per line, read as a stream.
//!
//! Fields: `item_id` (string, required, unique), `title` and `description` (strings, optional),
//! `image` (path relative to the dataset directory, or null); every other key is kept verbatim in
//! [`Item::metadata`].
//!
//! Handling, each reported as a [`Problem`] at the item's line:
//! - a line that is not JSON, or not an object, is skipped;
//! - a missing/empty or non-string `item_id` skips the row; a repeated one skips the later row;
//! - a `title`, `description` or `image` of the wrong type is ignored (the item is kept without it);
//! - an item with neither title nor description is kept ([`ProblemKind::EmptyText`]): the model
//!   handles a missing modality.
//!
//! Blank lines are skipped silently (they hold no data). An empty `image` string counts as no image.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::catalogue::CatalogueBuilder;
pub use super::catalogue::ItemsRead;
use super::jsonl::{for_each_object, json_type};
use super::lines::excerpt;
use super::{Item, Problem, ProblemKind};

/// Reads an items file; `file` names it in problems.
pub fn read_items<R: BufRead>(reader: R, file: &str) -> ItemsRead {
    let mut problems = Vec::new();
    let mut catalogue = CatalogueBuilder::default();
    let rows = for_each_object(reader, file, &mut problems, |line, fields, problems| {
        if let Some(item) = parse_item(fields, file, line, problems) {
            catalogue.push(item, line, file, "item_id", problems);
        }
    });
    catalogue.finish(rows, file, problems)
}

/// One JSON object as an item, or `None` (reported) without a usable `item_id`.
fn parse_item(mut fields: Map<String, Value>, file: &str, line: usize, problems: &mut Vec<Problem>) -> Option<Item> {
    let id = take_id(&mut fields, file, line, problems)?;
    let title = take_string(&mut fields, "title", file, line, problems).unwrap_or_default();
    let description = take_string(&mut fields, "description", file, line, problems).unwrap_or_default();
    let image = take_string(&mut fields, "image", file, line, problems).filter(|path| !path.is_empty());
    Some(Item { id, title, description, image, metadata: fields })
}

/// The required, non-empty string `item_id`.
fn take_id(fields: &mut Map<String, Value>, file: &str, line: usize, problems: &mut Vec<Problem>) -> Option<String> {
    match fields.remove("item_id") {
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            let message = "item_id is missing or empty; row skipped";
            problems.push(Problem::located(ProblemKind::MissingField, file, line, "item_id", message));
            None
        }
        Some(other) => {
            let message = format!("item_id must be a string, found {} {other}; row skipped", json_type(&other));
            problems.push(Problem::located(ProblemKind::WrongFieldType, file, line, "item_id", excerpt(&message, 120)));
            None
        }
    }
}

/// An optional string field; null or absent is `None`, another type is reported and ignored.
fn take_string(
    fields: &mut Map<String, Value>,
    key: &str,
    file: &str,
    line: usize,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match fields.remove(key) {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => None,
        Some(other) => {
            let message = format!("{key} must be a string or null, found {}; ignored", json_type(&other));
            problems.push(Problem::located(ProblemKind::WrongFieldType, file, line, key, message));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(read: &ItemsRead) -> Vec<(ProblemKind, Option<usize>, Option<&str>)> {
        read.problems.iter().map(|p| (p.kind, p.line, p.field.as_deref())).collect()
    }

    #[test]
    fn reads_fields_and_keeps_the_rest_as_metadata() {
        let text = r#"{"item_id": "a", "title": "T", "description": "D", "image": "images/a.jpg", "year": 1995}"#;
        let read = read_items(text.as_bytes(), "items.jsonl");
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        let item = &read.items[0];
        assert_eq!((item.id.as_str(), item.title.as_str(), item.description.as_str()), ("a", "T", "D"));
        assert_eq!(item.image.as_deref(), Some("images/a.jpg"));
        assert_eq!(item.metadata.get("year"), Some(&Value::from(1995)));
        assert_eq!(item.metadata.len(), 1);
        assert_eq!(read.lines, vec![1]);
    }

    #[test]
    fn wrong_types_are_ignored_but_the_item_kept() {
        let text = "{\"item_id\": \"a\", \"title\": 5, \"description\": \"d\", \"image\": null}\n";
        let read = read_items(text.as_bytes(), "items.jsonl");
        assert_eq!(kinds(&read), vec![(ProblemKind::WrongFieldType, Some(1), Some("title"))]);
        assert_eq!(read.items.len(), 1);
        assert_eq!(read.items[0].image, None);
    }

    #[test]
    fn numeric_id_skips_the_row_and_nothing_usable_is_fatal() {
        let read = read_items(&b"{\"item_id\": 5, \"title\": \"t\"}\n"[..], "items.jsonl");
        assert_eq!(
            kinds(&read),
            vec![(ProblemKind::WrongFieldType, Some(1), Some("item_id")), (ProblemKind::NoUsableRows, None, None)]
        );
    }

    #[test]
    fn a_key_named_twice_skips_the_row_naming_the_key() {
        let text = "{\"item_id\": \"d1\", \"item_id\": \"d2\"}\n{\"item_id\": \"e\", \"m\": {\"x\": 1, \"x\": 2}}\n{\"item_id\": \"f\", \"title\": \"F\"}\n";
        let read = read_items(text.as_bytes(), "items.jsonl");
        assert_eq!(kinds(&read), vec![(ProblemKind::BadJson, Some(1), None), (ProblemKind::BadJson, Some(2), None)]);
        assert!(read.problems[0].message.contains("\"item_id\" appears twice"), "{}", read.problems[0].message);
        assert_eq!(read.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["f"]);
    }
}
