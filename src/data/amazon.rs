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
use std::io::BufRead;
use std::path::Path;

use serde_json::{Map, Value};

use super::catalogue::{CatalogueBuilder, ItemsRead};
use super::histories::HistoryBuilder;
use super::jsonl::{for_each_object, json_type};
use super::lines::{excerpt, open_reported};
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
    let meta_reader = open_reported(meta, &meta_name, &mut problems);
    let reviews_reader = open_reported(reviews, &reviews_name, &mut problems);
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

// ---------------------------------------------------------------------------------------------
// meta

fn read_meta<R: BufRead>(reader: R, file: &str) -> ItemsRead {
    let mut problems = Vec::new();
    let mut catalogue = CatalogueBuilder::default();
    let rows = for_each_object(reader, file, &mut problems, |line, object, problems| {
        if let Some(item) = parse_product(object, file, line, problems) {
            catalogue.push(item, line, file, PARENT_ASIN, problems);
        }
    });
    catalogue.finish(rows, file, problems)
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
            problems.push(Problem::located(ProblemKind::WrongFieldType, file, line, "title", message));
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
        problems.push(Problem::located(ProblemKind::WrongFieldType, file, line, "description", message));
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
            problems.push(Problem::located(ProblemKind::WrongFieldType, file, line, "images", message));
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
    super::problem::sort_by_line(&mut out.problems);
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
            problems.push(Problem::located(ProblemKind::UnknownItemId, file, line, PARENT_ASIN, message));
        }
        index
    });
    let timestamp = match fields.get(TIMESTAMP) {
        None | Some(Value::Null) => {
            let message = "timestamp is missing; review skipped";
            problems.push(Problem::located(ProblemKind::MissingField, file, line, TIMESTAMP, message));
            None
        }
        Some(value) => {
            let seconds = value.as_f64().filter(|ms| ms.is_finite()).map(|ms| ms / 1000.0);
            if seconds.is_none() {
                let message = format!(
                    "timestamp must be a number of milliseconds, found {}; review skipped",
                    excerpt(&value.to_string(), QUOTE_CHARS)
                );
                problems.push(Problem::located(ProblemKind::BadTimestamp, file, line, TIMESTAMP, message));
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
                problems.push(Problem::located(ProblemKind::BadRating, file, line, RATING, message));
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
            problems.push(Problem::located(ProblemKind::MissingField, file, line, key, message));
            None
        }
        Some(other) => {
            let message = format!("{key} must be a string, found {}; row skipped", json_type(other));
            problems.push(Problem::located(ProblemKind::WrongFieldType, file, line, key, message));
            None
        }
    }
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
