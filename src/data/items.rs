//! `items.jsonl` (DESIGN.md §2): one JSON object per line, read as a stream.
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

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::{Map, Value};

use super::lines::{excerpt, LineReader};
use super::{Item, Problem, ProblemKind};

/// Longest value quoted in a message.
const QUOTE_CHARS: usize = 60;

/// What was read from an items file.
#[derive(Debug, Default)]
pub struct ItemsRead {
    /// The usable items, in file order.
    pub items: Vec<Item>,
    /// For each item, the 1-based line it was read from (to locate later problems, e.g. images).
    pub lines: Vec<usize>,
    /// Problems, in line order; fatal ones (unreadable, empty, nothing usable) make the file unusable.
    pub problems: Vec<Problem>,
}

/// Reads an items file; `file` names it in problems.
pub fn read_items<R: BufRead>(reader: R, file: &str) -> ItemsRead {
    let mut lines = LineReader::new(reader, file);
    let mut out = ItemsRead::default();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    let mut rows = 0usize;
    loop {
        let line = match lines.next_line(&mut out.problems) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(err) => {
                let at = lines.line_number() + 1;
                let message = format!("read error: {err}; the rest of the file is ignored");
                out.problems
                    .push(Problem::new(ProblemKind::FileUnreadable, file, message).at_line(at));
                break;
            }
        };
        let number = line.number;
        let Some(text) = line.text else {
            rows += 1; // reported by the line reader
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        rows += 1;
        let Some(item) = parse_item(text, file, number, &mut out.problems) else {
            continue;
        };
        if let Some(&first) = first_line_of.get(&item.id) {
            let message = format!(
                "item id \"{}\" is already defined on line {first}; row skipped",
                excerpt(&item.id, QUOTE_CHARS)
            );
            out.problems.push(located(
                ProblemKind::DuplicateItemId,
                file,
                number,
                "item_id",
                message,
            ));
            continue;
        }
        if item.title.trim().is_empty() && item.description.trim().is_empty() {
            let message = "no title and no description; item kept without text";
            out.problems
                .push(Problem::new(ProblemKind::EmptyText, file, message).at_line(number));
        }
        first_line_of.insert(item.id.clone(), number);
        out.items.push(item);
        out.lines.push(number);
    }
    if rows == 0 {
        out.problems
            .push(Problem::new(ProblemKind::EmptyFile, file, "no items"));
    } else if out.items.is_empty() {
        let message = format!("none of the {rows} rows is a usable item");
        out.problems
            .push(Problem::new(ProblemKind::NoUsableRows, file, message));
    }
    sort_by_line(&mut out.problems);
    out
}

/// Parses one JSON line into an item, or reports why the row is skipped.
fn parse_item(text: &str, file: &str, line: usize, problems: &mut Vec<Problem>) -> Option<Item> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            let message = format!("not valid JSON ({err}); row skipped");
            problems.push(Problem::new(ProblemKind::BadJson, file, message).at_line(line));
            return None;
        }
    };
    let Value::Object(mut fields) = value else {
        let message = format!(
            "expected a JSON object, found {}; row skipped",
            json_type(&value)
        );
        problems.push(Problem::new(ProblemKind::NotAnObject, file, message).at_line(line));
        return None;
    };
    let id = take_id(&mut fields, file, line, problems)?;
    let title = take_string(&mut fields, "title", file, line, problems).unwrap_or_default();
    let description =
        take_string(&mut fields, "description", file, line, problems).unwrap_or_default();
    let image =
        take_string(&mut fields, "image", file, line, problems).filter(|path| !path.is_empty());
    Some(Item {
        id,
        title,
        description,
        image,
        metadata: fields,
    })
}

/// The required, non-empty string `item_id`.
fn take_id(
    fields: &mut Map<String, Value>,
    file: &str,
    line: usize,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match fields.remove("item_id") {
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            let message = "item_id is missing or empty; row skipped";
            problems.push(located(
                ProblemKind::MissingField,
                file,
                line,
                "item_id",
                message,
            ));
            None
        }
        Some(other) => {
            let message = format!(
                "item_id must be a string, found {} {other}; row skipped",
                json_type(&other)
            );
            problems.push(located(
                ProblemKind::WrongFieldType,
                file,
                line,
                "item_id",
                excerpt(&message, 120),
            ));
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
            let message = format!(
                "{key} must be a string or null, found {}; ignored",
                json_type(&other)
            );
            problems.push(located(
                ProblemKind::WrongFieldType,
                file,
                line,
                key,
                message,
            ));
            None
        }
    }
}

fn located(
    kind: ProblemKind,
    file: &str,
    line: usize,
    field: &str,
    message: impl Into<String>,
) -> Problem {
    Problem::new(kind, file, message)
        .at_line(line)
        .in_field(field)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Orders problems by line (stable: problems of one line keep their order; file-level ones last).
pub(crate) fn sort_by_line(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(read: &ItemsRead) -> Vec<(ProblemKind, Option<usize>, Option<&str>)> {
        read.problems
            .iter()
            .map(|p| (p.kind, p.line, p.field.as_deref()))
            .collect()
    }

    #[test]
    fn reads_fields_and_keeps_the_rest_as_metadata() {
        let text = r#"{"item_id": "a", "title": "T", "description": "D", "image": "images/a.jpg", "year": 1995}"#;
        let read = read_items(text.as_bytes(), "items.jsonl");
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        let item = &read.items[0];
        assert_eq!(
            (
                item.id.as_str(),
                item.title.as_str(),
                item.description.as_str()
            ),
            ("a", "T", "D")
        );
        assert_eq!(item.image.as_deref(), Some("images/a.jpg"));
        assert_eq!(item.metadata.get("year"), Some(&Value::from(1995)));
        assert_eq!(item.metadata.len(), 1);
        assert_eq!(read.lines, vec![1]);
    }

    #[test]
    fn wrong_types_are_ignored_but_the_item_kept() {
        let text = "{\"item_id\": \"a\", \"title\": 5, \"description\": \"d\", \"image\": null}\n";
        let read = read_items(text.as_bytes(), "items.jsonl");
        assert_eq!(
            kinds(&read),
            vec![(ProblemKind::WrongFieldType, Some(1), Some("title"))]
        );
        assert_eq!(read.items.len(), 1);
        assert_eq!(read.items[0].image, None);
    }

    #[test]
    fn numeric_id_skips_the_row_and_nothing_usable_is_fatal() {
        let read = read_items(&b"{\"item_id\": 5, \"title\": \"t\"}\n"[..], "items.jsonl");
        assert_eq!(
            kinds(&read),
            vec![
                (ProblemKind::WrongFieldType, Some(1), Some("item_id")),
                (ProblemKind::NoUsableRows, None, None)
            ]
        );
    }
}
