//! Importer for Amazon Reviews 2023 (McAuley Lab): a review file and its `meta_` file, both JSONL.
//!
//! Meta lines (one product each), public schema: `parent_asin`, `title`, `description` (list of
//! paragraphs), `images` (list of `{thumb, large, variant, hi_res}`), `features`, `categories`,
//! `price`, `store`, `details`, … They become [`Item`]s:
//! - id = `parent_asin` (required, unique; a later duplicate is skipped);
//! - [`Item::title`] = `title`; [`Item::description`] = the `description` paragraphs joined with a
//!   space (a plain string is accepted as is);
//! - no local image ([`Item::image`] is `None`): the first image's `large` URL (else its `hi_res`) is
//!   kept as metadata `image_url`, for rendering and for a later download step;
//! - every other field, `images` included, is kept verbatim as metadata.
//!
//! Review lines become interactions: `user_id` (required), `parent_asin` (the item; a review of a
//! product absent from the meta file is reported as [`ProblemKind::UnknownItemId`] and skipped, never
//! dropped silently), `timestamp` (required, a JSON number of **milliseconds**, converted to seconds:
//! the unit of the other datasets; the conversion keeps the order) and `rating` (optional). The review's
//! own text, title and images are not part of the model and are ignored.
//!
//! Problems are located at the line: a non-JSON or non-object line, a missing or mistyped field, as in
//! `items.jsonl`. Users come in first-appearance order, each history sorted by timestamp with ties in
//! file order ([`HistoryBuilder`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

use super::histories::HistoryBuilder;
use super::lines::{excerpt, LineReader};
use super::load::Loaded;
use super::{Dataset, Event, Item, Problem, ProblemKind, UserHistory};

/// Longest value quoted in a message.
const QUOTE_CHARS: usize = 60;

const PARENT_ASIN: &str = "parent_asin";
const USER_ID: &str = "user_id";
const TIMESTAMP: &str = "timestamp";
const RATING: &str = "rating";
/// The metadata key the chosen image URL is stored under.
pub const IMAGE_URL: &str = "image_url";

/// Imports a review file and a meta file. Never fails: missing or unreadable files are fatal problems,
/// named by the paths as given. `item_lines` holds each item's line in the meta file.
pub fn import_amazon(reviews: &Path, meta: &Path) -> Loaded {
    let reviews_name = reviews.display().to_string();
    let meta_name = meta.display().to_string();
    let mut problems = Vec::new();
    let meta_reader = open(meta, &meta_name, &mut problems);
    let reviews_reader = open(reviews, &reviews_name, &mut problems);
    let mut loaded = match (reviews_reader, meta_reader) {
        (Some(reviews), Some(meta)) => read_amazon(reviews, &reviews_name, meta, &meta_name),
        (None, Some(meta)) => Loaded { problems: read_meta(meta, &meta_name).problems, ..Default::default() },
        _ => Loaded::default(),
    };
    problems.append(&mut loaded.problems);
    loaded.problems = problems;
    loaded
}

/// Imports from readers; the names locate problems. Problems: the meta file's, then the reviews'.
pub fn read_amazon<R: BufRead, M: BufRead>(reviews: R, reviews_name: &str, meta: M, meta_name: &str) -> Loaded {
    let catalogue = read_meta(meta, meta_name);
    let mut problems = catalogue.problems;
    let users = if catalogue.items.is_empty() {
        Vec::new() // every review would name an unknown item; the meta file's problem says why
    } else {
        let index: HashMap<&str, u32> =
            catalogue.items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i as u32)).collect();
        let read = read_reviews(reviews, reviews_name, |id| index.get(id).copied());
        problems.extend(read.problems);
        read.users
    };
    Loaded { dataset: Dataset::new(None, catalogue.items, users), item_lines: catalogue.lines, problems }
}

fn open(path: &Path, name: &str, problems: &mut Vec<Problem>) -> Option<BufReader<File>> {
    match File::open(path) {
        Ok(file) => Some(BufReader::with_capacity(1 << 16, file)),
        Err(err) => {
            let kind = match err.kind() {
                io::ErrorKind::NotFound => ProblemKind::FileMissing,
                _ => ProblemKind::FileUnreadable,
            };
            problems.push(Problem::new(kind, name, err.to_string()));
            None
        }
    }
}

/// Calls `each(line number, object)` for every JSON object line of a JSONL stream, reporting lines
/// that are not JSON objects. Returns the number of non-blank lines (used or not).
fn for_each_object<R: BufRead>(
    reader: R,
    file: &str,
    problems: &mut Vec<Problem>,
    mut each: impl FnMut(usize, Map<String, Value>, &mut Vec<Problem>),
) -> usize {
    let mut lines = LineReader::new(reader, file);
    let mut rows = 0;
    loop {
        let line = match lines.next_line(problems) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(err) => {
                let message = format!("read error: {err}; the rest of the file is ignored");
                let at = lines.line_number() + 1;
                problems.push(Problem::new(ProblemKind::FileUnreadable, file, message).at_line(at));
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
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => each(number, object, problems),
            Ok(other) => {
                let message = format!("expected a JSON object, found {}; row skipped", json_type(&other));
                problems.push(Problem::new(ProblemKind::NotAnObject, file, message).at_line(number));
            }
            Err(err) => {
                let message = format!("not valid JSON ({err}); row skipped");
                problems.push(Problem::new(ProblemKind::BadJson, file, message).at_line(number));
            }
        }
    }
    rows
}

// ---------------------------------------------------------------------------------------------
// meta

#[derive(Debug, Default)]
struct Catalogue {
    items: Vec<Item>,
    lines: Vec<usize>,
    problems: Vec<Problem>,
}

fn read_meta<R: BufRead>(reader: R, file: &str) -> Catalogue {
    let mut out = Catalogue::default();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    let mut items = Vec::new();
    let mut lines = Vec::new();
    let rows = for_each_object(reader, file, &mut out.problems, |line, object, problems| {
        let Some(item) = parse_product(object, file, line, problems) else {
            return;
        };
        if let Some(&first) = first_line_of.get(&item.id) {
            let message = format!(
                "parent_asin \"{}\" is already defined on line {first}; row skipped",
                excerpt(&item.id, QUOTE_CHARS)
            );
            problems.push(located(ProblemKind::DuplicateItemId, file, line, PARENT_ASIN, message));
            return;
        }
        if item.title.trim().is_empty() && item.description.trim().is_empty() {
            let message = "no title and no description; item kept without text";
            problems.push(Problem::new(ProblemKind::EmptyText, file, message).at_line(line));
        }
        first_line_of.insert(item.id.clone(), line);
        items.push(item);
        lines.push(line);
    });
    out.items = items;
    out.lines = lines;
    if rows == 0 {
        out.problems.push(Problem::new(ProblemKind::EmptyFile, file, "no products"));
    } else if out.items.is_empty() {
        let message = format!("none of the {rows} rows is a usable product");
        out.problems.push(Problem::new(ProblemKind::NoUsableRows, file, message));
    }
    sort_by_line(&mut out.problems);
    out
}

/// One meta object as an [`Item`], or `None` (reported) without a usable `parent_asin`.
fn parse_product(mut fields: Map<String, Value>, file: &str, line: usize, problems: &mut Vec<Problem>) -> Option<Item> {
    let id = required_string(&fields, PARENT_ASIN, file, line, problems)?;
    fields.remove(PARENT_ASIN);
    let title = match fields.remove("title") {
        Some(Value::String(title)) => title,
        None | Some(Value::Null) => String::new(),
        Some(other) => {
            let message = format!("title must be a string, found {}; ignored", json_type(&other));
            problems.push(located(ProblemKind::WrongFieldType, file, line, "title", message));
            String::new()
        }
    };
    let description = description_text(fields.remove("description"), file, line, problems);
    if let Some(url) = first_image_url(fields.get("images"), file, line, problems) {
        fields.insert(IMAGE_URL.into(), Value::from(url));
    }
    Some(Item { id, title, description, image: None, metadata: fields })
}

/// The description paragraphs joined with a space; non-string paragraphs are reported and left out.
fn description_text(value: Option<Value>, file: &str, line: usize, problems: &mut Vec<Problem>) -> String {
    let wrong = |what: &str, problems: &mut Vec<Problem>| {
        let message = format!("description must be a list of strings, found {what}; ignored");
        problems.push(located(ProblemKind::WrongFieldType, file, line, "description", message));
    };
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text,
        Some(Value::Array(paragraphs)) => {
            let mut texts = Vec::with_capacity(paragraphs.len());
            for paragraph in paragraphs {
                match paragraph {
                    Value::String(text) if !text.trim().is_empty() => texts.push(text),
                    Value::String(_) => {}
                    other => wrong(&format!("an element that is {}", json_type(&other)), problems),
                }
            }
            texts.join(" ")
        }
        Some(other) => {
            wrong(json_type(&other), problems);
            String::new()
        }
    }
}

/// The first image's `large` URL, else its `hi_res` one (images without either are passed over).
fn first_image_url(images: Option<&Value>, file: &str, line: usize, problems: &mut Vec<Problem>) -> Option<String> {
    let images = match images? {
        Value::Array(images) => images,
        Value::Null => return None,
        other => {
            let message = format!("images must be a list, found {}; no image URL kept", json_type(other));
            problems.push(located(ProblemKind::WrongFieldType, file, line, "images", message));
            return None;
        }
    };
    images.iter().find_map(|image| {
        ["large", "hi_res"]
            .iter()
            .find_map(|size| image.get(size).and_then(Value::as_str).filter(|url| !url.trim().is_empty()))
            .map(str::to_string)
    })
}

// ---------------------------------------------------------------------------------------------
// reviews

#[derive(Debug, Default)]
struct Reviews {
    users: Vec<UserHistory>,
    problems: Vec<Problem>,
}

fn read_reviews<R: BufRead>(reader: R, file: &str, item_index: impl Fn(&str) -> Option<u32>) -> Reviews {
    let mut out = Reviews::default();
    let mut histories = HistoryBuilder::default();
    let rows = for_each_object(reader, file, &mut out.problems, |line, object, problems| {
        if let Some((user, event)) = parse_review(&object, file, line, &item_index, problems) {
            histories.push(&user, event);
        }
    });
    if rows == 0 {
        out.problems.push(Problem::new(ProblemKind::EmptyFile, file, "no reviews"));
    } else if histories.is_empty() {
        let message = format!("none of the {rows} rows is a usable review");
        out.problems.push(Problem::new(ProblemKind::NoUsableRows, file, message));
    }
    out.users = histories.finish();
    sort_by_line(&mut out.problems);
    out
}

/// One review as (user id, event), or `None` when it is skipped (every reason reported).
fn parse_review(
    fields: &Map<String, Value>,
    file: &str,
    line: usize,
    item_index: &impl Fn(&str) -> Option<u32>,
    problems: &mut Vec<Problem>,
) -> Option<(String, Event)> {
    let user = required_string(fields, USER_ID, file, line, problems);
    let item = required_string(fields, PARENT_ASIN, file, line, problems).and_then(|asin| {
        let index = item_index(&asin);
        if index.is_none() {
            let message =
                format!("product \"{}\" is not in the meta file; review skipped", excerpt(&asin, QUOTE_CHARS));
            problems.push(located(ProblemKind::UnknownItemId, file, line, PARENT_ASIN, message));
        }
        index
    });
    let timestamp = match fields.get(TIMESTAMP) {
        None | Some(Value::Null) => {
            let message = "timestamp is missing; review skipped";
            problems.push(located(ProblemKind::MissingField, file, line, TIMESTAMP, message));
            None
        }
        Some(value) => {
            let seconds = value.as_f64().filter(|ms| ms.is_finite()).map(|ms| ms / 1000.0);
            if seconds.is_none() {
                let message = format!(
                    "timestamp must be a number of milliseconds, found {}; review skipped",
                    excerpt(&value.to_string(), QUOTE_CHARS)
                );
                problems.push(located(ProblemKind::BadTimestamp, file, line, TIMESTAMP, message));
            }
            seconds
        }
    };
    let rating = match fields.get(RATING) {
        None | Some(Value::Null) => None,
        Some(value) => {
            let rating = value.as_f64().filter(|r| r.is_finite()).map(|r| r as f32);
            if rating.is_none() {
                let message = format!(
                    "rating must be a number, found {}; review kept without rating",
                    excerpt(&value.to_string(), QUOTE_CHARS)
                );
                problems.push(located(ProblemKind::BadRating, file, line, RATING, message));
            }
            rating
        }
    };
    Some((user?, Event { item: item?, timestamp: timestamp?, rating }))
}

/// A required non-empty string field, or `None` (reported as missing or mistyped).
fn required_string(
    fields: &Map<String, Value>,
    key: &str,
    file: &str,
    line: usize,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match fields.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            let message = format!("{key} is missing or empty; row skipped");
            problems.push(located(ProblemKind::MissingField, file, line, key, message));
            None
        }
        Some(other) => {
            let message = format!("{key} must be a string, found {}; row skipped", json_type(other));
            problems.push(located(ProblemKind::WrongFieldType, file, line, key, message));
            None
        }
    }
}

fn located(kind: ProblemKind, file: &str, line: usize, field: &str, message: impl Into<String>) -> Problem {
    Problem::new(kind, file, message).at_line(line).in_field(field)
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

/// Orders problems by line (stable; file-level ones last).
fn sort_by_line(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_url_prefers_large_then_hi_res_of_the_first_usable_image() {
        let mut problems = Vec::new();
        let images = json!([
            {"thumb": "t0", "large": "", "hi_res": null, "variant": "MAIN"},
            {"thumb": "t1", "large": null, "hi_res": "h1", "variant": "PT01"},
            {"large": "l2"}
        ]);
        assert_eq!(first_image_url(Some(&images), "m", 1, &mut problems).as_deref(), Some("h1"));
        let images = json!([{"large": "l0", "hi_res": "h0"}]);
        assert_eq!(first_image_url(Some(&images), "m", 1, &mut problems).as_deref(), Some("l0"));
        assert_eq!(first_image_url(Some(&json!([])), "m", 1, &mut problems), None);
        assert!(problems.is_empty());
        assert_eq!(first_image_url(Some(&json!("x.jpg")), "m", 7, &mut problems), None);
        assert_eq!(problems[0].kind, ProblemKind::WrongFieldType);
    }

    #[test]
    fn description_paragraphs_are_joined_and_bad_ones_reported() {
        let mut problems = Vec::new();
        let text = description_text(Some(json!(["First.", "", "Second.", 3])), "m", 2, &mut problems);
        assert_eq!(text, "First. Second.");
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].kind, problems[0].line), (ProblemKind::WrongFieldType, Some(2)));
    }

    #[test]
    fn timestamps_in_milliseconds_become_seconds_and_keep_order() {
        let meta = r#"{"parent_asin": "A", "title": "a"}"#;
        let reviews = "{\"user_id\": \"u\", \"parent_asin\": \"A\", \"timestamp\": 1588687728924}\n\
                       {\"user_id\": \"u\", \"parent_asin\": \"A\", \"timestamp\": 1588687728923, \"rating\": 4.0}\n";
        let loaded = read_amazon(reviews.as_bytes(), "r", meta.as_bytes(), "m");
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let events = &loaded.dataset.users[0].events;
        assert_eq!(events[0].timestamp, 1588687728.923);
        assert_eq!(events[0].rating, Some(4.0));
        assert!(events[1].timestamp > events[0].timestamp);
    }
}
