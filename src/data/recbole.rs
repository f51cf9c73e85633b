//! Importer for RecBole atomic files: `.inter` (interactions) and `.item` (catalogue).
//!
//! Format (RecBole's `field_separator` and `seq_separator` defaults): tab-separated, no quoting, a
//! typed header `name:type` per column with type `token`, `token_seq`, `float` or `float_seq`;
//! sequences are separated by spaces. Columns use RecBole's default field names:
//! - `.inter`: `user_id`, `item_id`, `timestamp` (required), `rating` (optional); others are ignored.
//! - `.item`: `item_id` (required). The first of `title`, `movie_title`, `item_name`, `name` becomes
//!   [`Item::title`], `description` becomes [`Item::description`]; `release_year`/`year` are kept as
//!   metadata `year` (a number when the token is an integer, else the raw token), `class`/`genre`/
//!   `genres` as metadata `genres` (the list of tokens). Every other column is kept under its own name:
//!   token → string, token_seq → list of strings, float → number, float_seq → list of numbers; an empty
//!   value → null (an empty list for sequences).
//!
//! Values are kept raw: ML-100K's item 1412 keeps the "(1995)" in its title and year "V", item 267 its
//! "unkonwn" (see the ml100k-mm README); fixing source data is not an importer's job.
//!
//! Rows that cannot be used are [`Problem`]s at their line, handled as their kind says (`.inter` rows
//! go through `interactions.csv`'s own row check, [`read_row`]): wrong column count, empty id,
//! unknown item, non-numeric timestamp (skipped); a bad rating (kept without rating); a bad float in
//! an item column (field left out); a repeated item id (later row skipped). A file that is missing, empty, lacks the typed header or a
//! required column is fatal. Users come in first-appearance order, each history sorted by timestamp
//! with ties in row order ([`HistoryBuilder`]).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::catalogue::{CatalogueBuilder, ItemsRead};
use super::histories::HistoryBuilder;
use super::interactions::{read_row, wrong_column_count, InteractionColumns, ITEM_ID, RATING, TIMESTAMP, USER_ID};
use super::lines::{excerpt, open_reported};
use super::load::Loaded;
use super::records::{CsvRecords, Record};
use super::{Dataset, Item, Problem, ProblemKind};

/// Longest value quoted in a message.
const QUOTE_CHARS: usize = 60;

/// What an unknown item id is missing from, in `.inter` messages.
const CATALOGUE: &str = "the .item file";
/// Columns that can hold the title, in order of preference.
const TITLE_COLUMNS: [&str; 4] = ["title", "movie_title", "item_name", "name"];
const DESCRIPTION_COLUMN: &str = "description";
const YEAR_COLUMNS: [&str; 2] = ["release_year", "year"];
const GENRE_COLUMNS: [&str; 3] = ["class", "genre", "genres"];

/// A RecBole column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Token,
    TokenSeq,
    Float,
    FloatSeq,
}

impl FieldType {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "token" => Some(FieldType::Token),
            "token_seq" => Some(FieldType::TokenSeq),
            "float" => Some(FieldType::Float),
            "float_seq" => Some(FieldType::FloatSeq),
            _ => None,
        }
    }
}

/// One column of a typed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: FieldType,
}

/// Imports `inter` and `item` files. Never fails: missing or unreadable files are fatal problems,
/// named by the paths as given. `item_lines` holds each item's line in the `.item` file.
pub fn import_recbole(inter: &Path, item: &Path) -> Loaded {
    let inter_name = inter.display().to_string();
    let item_name = item.display().to_string();
    let mut problems = Vec::new();
    let item_reader = open_reported(item, &item_name, &mut problems);
    let inter_reader = open_reported(inter, &inter_name, &mut problems);
    let mut loaded = match (inter_reader, item_reader) {
        (Some(inter), Some(item)) => read_recbole(inter, &inter_name, item, &item_name),
        (None, Some(item)) => {
            // Still report the catalogue's own problems.
            let items = read_item_file(item, &item_name);
            Loaded { problems: items.problems, ..Default::default() }
        }
        _ => Loaded::default(),
    };
    problems.append(&mut loaded.problems);
    loaded.problems = problems;
    loaded
}

/// Imports from readers; `inter_name` and `item_name` name the files in problems.
/// Problems: the `.item` file's, then the `.inter` file's, each in line order.
pub fn read_recbole<I: BufRead, C: BufRead>(inter: I, inter_name: &str, item: C, item_name: &str) -> Loaded {
    let items = read_item_file(item, item_name);
    let mut problems = items.problems;
    let users = if items.items.is_empty() {
        Vec::new() // every row would be an unknown item; the catalogue's problem says why
    } else {
        let index: HashMap<&str, u32> =
            items.items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i as u32)).collect();
        let read = read_inter_file(inter, inter_name, |id| index.get(id).copied());
        problems.extend(read.problems);
        read.users
    };
    Loaded { dataset: Dataset::new(None, items.items, users), item_lines: items.lines, problems }
}

/// Parses a typed header line, or reports why it is not one (fatal).
pub fn parse_header(record: &Record, file: &str, problems: &mut Vec<Problem>) -> Option<Vec<Column>> {
    let mut columns = Vec::with_capacity(record.len());
    for field in record.iter() {
        let parsed = field
            .split_once(':')
            .and_then(|(name, ty)| Some(Column { name: name.trim().to_string(), ty: FieldType::parse(ty.trim())? }));
        match parsed {
            Some(column) if !column.name.is_empty() => columns.push(column),
            _ => {
                let message = format!(
                    "\"{}\" is not a typed column (name:token|token_seq|float|float_seq); \
                     the first line must be RecBole's typed header",
                    excerpt(field, QUOTE_CHARS)
                );
                problems.push(Problem::new(ProblemKind::MissingHeader, file, message).at_line(record.line));
                return None;
            }
        }
    }
    Some(columns)
}

/// Index of each required column, or a fatal [`ProblemKind::MissingColumn`] for each one absent.
fn require(
    columns: &[Column],
    names: &[&str],
    record: &Record,
    file: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<usize>> {
    let found: Vec<Option<usize>> = names.iter().map(|name| position(columns, name)).collect();
    for (name, index) in names.iter().zip(&found) {
        if index.is_none() {
            let message = format!("the header has no \"{name}\" column");
            problems.push(Problem::new(ProblemKind::MissingColumn, file, message).at_line(record.line).in_field(*name));
        }
    }
    found.into_iter().collect()
}

fn position(columns: &[Column], name: &str) -> Option<usize> {
    columns.iter().position(|c| c.name == name)
}

/// Yields the records of a tab-separated atomic file, reporting a read error as it happens.
fn next_record<R: BufRead>(records: &mut CsvRecords<R>, problems: &mut Vec<Problem>) -> Option<Record> {
    match records.next_record(problems) {
        Ok(record) => record,
        Err(err) => {
            let message = format!("read error: {err}; the rest of the file is ignored");
            problems.push(Problem::new(ProblemKind::FileUnreadable, records.file(), message));
            None
        }
    }
}

fn atomic_records<R: BufRead>(reader: R, file: &str) -> CsvRecords<R> {
    // RecBole splits on the tab and knows no quoting: a quote is data.
    CsvRecords::with_delimiter(reader, file, b'\t', false)
}

// ---------------------------------------------------------------------------------------------
// .item

/// What an `.item` column becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Id,
    Title,
    Description,
    Year,
    Genres,
    Metadata,
}

/// Assigns each column its role: the first title-like column is the title, and so on.
fn item_roles(columns: &[Column]) -> Vec<Role> {
    let first_of = |names: &[&str]| columns.iter().position(|c| names.contains(&c.name.as_str()));
    let mut roles = vec![Role::Metadata; columns.len()];
    // Later assignments win only over Metadata, so the id column can never be re-purposed.
    for (role, index) in [
        (Role::Genres, first_of(&GENRE_COLUMNS)),
        (Role::Year, first_of(&YEAR_COLUMNS)),
        (Role::Description, first_of(&[DESCRIPTION_COLUMN])),
        (Role::Title, first_of(&TITLE_COLUMNS)),
        (Role::Id, first_of(&[ITEM_ID])),
    ] {
        if let Some(index) = index {
            roles[index] = role;
        }
    }
    roles
}

fn read_item_file<R: BufRead>(reader: R, file: &str) -> ItemsRead {
    let mut records = atomic_records(reader, file);
    let mut problems = Vec::new();
    let catalogue = CatalogueBuilder::default();
    let Some(header) = next_record(&mut records, &mut problems) else {
        return catalogue.finish(0, file, problems);
    };
    let Some(columns) = parse_header(&header, file, &mut problems) else {
        return ItemsRead { problems, ..Default::default() };
    };
    if require(&columns, &[ITEM_ID], &header, file, &mut problems).is_none() {
        return ItemsRead { problems, ..Default::default() };
    }
    let roles = item_roles(&columns);
    let mut catalogue = catalogue;
    let mut rows = 0;
    while let Some(record) = next_record(&mut records, &mut problems) {
        rows += 1;
        if wrong_column_count(&record, columns.len(), file, &mut problems) {
            continue;
        }
        if let Some(item) = parse_item(&record, &columns, &roles, file, &mut problems) {
            catalogue.push(item, record.line, file, ITEM_ID, &mut problems);
        }
    }
    catalogue.finish(rows, file, problems)
}

/// One `.item` row as an [`Item`], or `None` (reported) when its id is empty.
fn parse_item(
    record: &Record,
    columns: &[Column],
    roles: &[Role],
    file: &str,
    problems: &mut Vec<Problem>,
) -> Option<Item> {
    let mut item = Item {
        id: String::new(),
        title: String::new(),
        description: String::new(),
        image: None,
        metadata: serde_json::Map::new(),
    };
    for ((column, role), raw) in columns.iter().zip(roles).zip(record.iter()) {
        match role {
            Role::Id => item.id = raw.to_string(),
            Role::Title => item.title = raw.to_string(),
            Role::Description => item.description = raw.to_string(),
            Role::Year => {
                item.metadata.insert("year".into(), year_value(raw));
            }
            Role::Genres => {
                item.metadata.insert("genres".into(), token_seq(raw));
            }
            Role::Metadata => {
                if let Some(value) = typed_value(raw, column, record.line, file, problems) {
                    item.metadata.insert(column.name.clone(), value);
                }
            }
        }
    }
    if item.id.trim().is_empty() {
        let message = "empty item_id; row skipped";
        problems.push(Problem::new(ProblemKind::MissingField, file, message).at_line(record.line).in_field(ITEM_ID));
        return None;
    }
    Some(item)
}

/// A year token: a JSON integer when it is one, null when empty, else the raw token (e.g. "V").
fn year_value(raw: &str) -> Value {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Value::Null;
    }
    trimmed.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(raw))
}

/// A token sequence: the space-separated tokens (RecBole's default `seq_separator`).
fn token_seq(raw: &str) -> Value {
    Value::Array(raw.split(' ').filter(|t| !t.is_empty()).map(Value::from).collect())
}

/// A metadata value by its declared type; `None` (reported) when a float does not parse.
fn typed_value(raw: &str, column: &Column, line: usize, file: &str, problems: &mut Vec<Problem>) -> Option<Value> {
    let bad_float = |token: &str, problems: &mut Vec<Problem>| {
        let message = format!("\"{}\" is not a finite number; field left out", excerpt(token, QUOTE_CHARS));
        problems.push(Problem::new(ProblemKind::WrongFieldType, file, message).at_line(line).in_field(&column.name));
    };
    match column.ty {
        FieldType::Token if raw.is_empty() => Some(Value::Null),
        FieldType::Token => Some(Value::from(raw)),
        FieldType::TokenSeq => Some(token_seq(raw)),
        FieldType::Float if raw.trim().is_empty() => Some(Value::Null),
        FieldType::Float => match parse_finite(raw) {
            Some(v) => Some(Value::from(v)),
            None => {
                bad_float(raw, problems);
                None
            }
        },
        FieldType::FloatSeq => {
            let mut values = Vec::new();
            for token in raw.split(' ').filter(|t| !t.is_empty()) {
                match parse_finite(token) {
                    Some(v) => values.push(Value::from(v)),
                    None => {
                        bad_float(token, problems);
                        return None;
                    }
                }
            }
            Some(Value::Array(values))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// .inter

/// What was read from an `.inter` file.
#[derive(Debug, Default)]
struct InterFile {
    users: Vec<super::UserHistory>,
    problems: Vec<Problem>,
}

fn read_inter_file<R: BufRead>(reader: R, file: &str, item_index: impl Fn(&str) -> Option<u32>) -> InterFile {
    let mut records = atomic_records(reader, file);
    let mut out = InterFile::default();
    let Some(header) = next_record(&mut records, &mut out.problems) else {
        out.problems.push(Problem::new(ProblemKind::EmptyFile, file, "no header and no rows"));
        return out;
    };
    let Some(columns) = parse_header(&header, file, &mut out.problems) else {
        return out;
    };
    let Some(required) = require(&columns, &[USER_ID, ITEM_ID, TIMESTAMP], &header, file, &mut out.problems) else {
        super::problem::sort_by_line(&mut out.problems);
        return out;
    };
    let cols = InteractionColumns {
        count: columns.len(),
        user: required[0],
        item: required[1],
        timestamp: required[2],
        rating: position(&columns, RATING),
    };
    let mut histories = HistoryBuilder::default();
    let mut rows = 0;
    while let Some(record) = next_record(&mut records, &mut out.problems) {
        rows += 1;
        if let Some((user, event)) = read_row(&record, &cols, file, CATALOGUE, &item_index, &mut out.problems) {
            histories.push(user, event);
        }
    }
    if rows == 0 {
        out.problems.push(Problem::new(ProblemKind::EmptyFile, file, "a header but no rows"));
    } else if histories.is_empty() {
        let message = format!("none of the {rows} rows is a usable interaction");
        out.problems.push(Problem::new(ProblemKind::NoUsableRows, file, message));
    }
    out.users = histories.finish();
    super::problem::sort_by_line(&mut out.problems);
    out
}

/// `typed_value`'s floats: `raw` trimmed, as a finite number.
fn parse_finite(raw: &str) -> Option<f64> {
    raw.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEM: &str = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tprice:float\n\
        1\tToy Story\t1995\tAnimation Children's Comedy\t9.5\n\
        2\tLand Before Time III (1995)\tV\tAnimation\t\n\
        3\t\t\t\tcheap\n\
        1\tDuplicate\t2000\tDrama\t1\n\
        \tNo id\t2000\tDrama\t1\n";

    fn kinds(loaded: &Loaded) -> Vec<(ProblemKind, Option<usize>, Option<&str>)> {
        loaded.problems.iter().map(|p| (p.kind, p.line, p.field.as_deref())).collect()
    }

    fn import(inter: &str) -> Loaded {
        read_recbole(inter.as_bytes(), "x.inter", ITEM.as_bytes(), "x.item")
    }

    #[test]
    fn items_map_to_title_year_genres_and_typed_metadata() {
        let loaded = import("user_id:token\titem_id:token\ttimestamp:float\nu\t1\t5\n");
        let items = &loaded.dataset.items;
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].title, "Toy Story");
        assert_eq!(items[0].metadata["year"], Value::from(1995));
        assert_eq!(items[0].metadata["genres"], serde_json::json!(["Animation", "Children's", "Comedy"]));
        assert_eq!(items[0].metadata["price"], Value::from(9.5));
        // Raw values are kept, not repaired.
        assert_eq!(items[1].title, "Land Before Time III (1995)");
        assert_eq!(items[1].metadata["year"], Value::from("V"));
        assert_eq!(items[1].metadata["price"], Value::Null);
        assert_eq!(items[2].metadata["genres"], serde_json::json!([]));
        assert!(!items[2].metadata.contains_key("price"));
        assert_eq!(loaded.item_lines, vec![2, 3, 4]);
        assert_eq!(
            kinds(&loaded),
            vec![
                (ProblemKind::WrongFieldType, Some(4), Some("price")),
                (ProblemKind::EmptyText, Some(4), None),
                (ProblemKind::DuplicateItemId, Some(5), Some("item_id")),
                (ProblemKind::MissingField, Some(6), Some("item_id")),
            ]
        );
    }

    #[test]
    fn bad_inter_rows_are_located_and_users_ordered() {
        let inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
            b\t1\t3\t20\n\
            a\t2\t4\t10\n\
            b\t2\tx\t10\n\
            b\t9\t1\t5\n\
            b\t1\t1\tsoon\n\
            b\t1\n\
            \t1\t1\t1\n\
            b\t3\t5\t20\n";
        let loaded = import(inter);
        let item_kinds: Vec<_> = kinds(&loaded).into_iter().filter(|(_, _, f)| *f != Some("price")).collect();
        assert_eq!(
            &item_kinds[3..],
            &[
                (ProblemKind::BadRating, Some(4), Some("rating")),
                (ProblemKind::UnknownItemId, Some(5), Some("item_id")),
                (ProblemKind::BadTimestamp, Some(6), Some("timestamp")),
                (ProblemKind::WrongColumnCount, Some(7), None),
                (ProblemKind::MissingField, Some(8), Some("user_id")),
            ]
        );
        let users = &loaded.dataset.users;
        assert_eq!(users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        // b: item 2 at 10 (rating dropped), then items 1 and 3 at 20 in row order.
        let b: Vec<_> = users[0].events.iter().map(|e| (e.item, e.timestamp, e.rating)).collect();
        assert_eq!(b, vec![(1, 10.0, None), (0, 20.0, Some(3.0)), (2, 20.0, Some(5.0))]);
    }

    #[test]
    fn untyped_header_and_missing_columns_are_fatal() {
        let loaded = import("user_id\titem_id\ttimestamp\nu\t1\t5\n");
        assert!(!loaded.is_usable());
        assert!(kinds(&loaded).contains(&(ProblemKind::MissingHeader, Some(1), None)));

        let loaded = import("user_id:token\titem_id:token\n");
        assert!(kinds(&loaded).contains(&(ProblemKind::MissingColumn, Some(1), Some("timestamp"))));

        let loaded = import("");
        assert!(kinds(&loaded).contains(&(ProblemKind::EmptyFile, None, None)));
    }
}
