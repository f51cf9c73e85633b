//! What merchandising needs in a bundle (docs/bundle.md § columns.json, § popularity.json): the
//! catalogue's metadata as typed columns for the rules (`omakase_runtime::rules`), and each item's
//! popularity, counted and time-decayed from the dataset's interactions, for `popular` lists and the
//! first visit.
//!
//! Columns come from the fields `items.jsonl` holds besides id, title, description and image. By
//! default ([`ColumnChoice::Auto`]) a field becomes a column when every value it has is of one type
//! — numbers, booleans, or strings / lists of strings with at most [`AUTO_MAX_VALUES`] distinct
//! values (a category) — and its name is a plain field name; links (`url`, `link`) never do. One
//! exception, for catalogues with a stray token in a numeric field (ML-100K's year holds "V" and
//! "unkonwn" on two of 1,682 films): a field of numbers where at most 1% of the items hold a string
//! instead is a number column, those items have no value in it, and the export names them
//! (the notes [`columns_file`] returns). Named columns (`--columns`) must exist and have one type, or the export
//! stops naming the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::{Bundle, ExportError};
use crate::data::{Dataset, Item};
use crate::runtime::manifest::{sha256_hex, FileEntry};
use crate::runtime::popularity::PopularityFile;
use crate::runtime::rules::columns::{is_field_name, Cell, ColumnFile, ColumnKind, MAX_CATEGORY_VALUES, MAX_COLUMNS};
use crate::runtime::rules::ColumnsFile;

/// Most distinct values a field may have to become a category column on its own.
pub const AUTO_MAX_VALUES: usize = 256;
/// Default half-life of the trending score, in days.
pub const DEFAULT_HALF_LIFE_DAYS: f64 = 7.0;
/// Fields that are never columns (links are the card's, not a rule's).
const NOT_COLUMNS: [&str; 2] = ["url", "link"];

/// Which metadata fields become columns.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnChoice {
    Auto,
    Named(Vec<String>),
    None,
}

/// `columns.json` for `items`, or `None` when no field qualifies (or none is asked for). A named
/// field that cannot be a column is bad input naming `items_file` and the field.
///
/// The notes name what an automatic column left out (items whose value is not of its type).
pub fn columns_file(
    items: &[Item],
    choice: &ColumnChoice,
    items_file: &Path,
) -> Result<(Option<ColumnsFile>, Vec<String>), ExportError> {
    let names: Vec<String> = match choice {
        ColumnChoice::None => return Ok((None, Vec::new())),
        ColumnChoice::Named(names) => names.clone(),
        ColumnChoice::Auto => {
            let all: BTreeSet<&String> = items.iter().flat_map(|i| i.metadata.keys()).collect();
            all.into_iter().filter(|k| !NOT_COLUMNS.contains(&k.as_str())).cloned().collect()
        }
    };
    let named = matches!(choice, ColumnChoice::Named(_));
    let mut columns = Vec::new();
    let mut notes = Vec::new();
    for name in names {
        let result = column(items, &name).or_else(|e| {
            if named {
                Err(e)
            } else {
                mostly_numbers(items, &name, &mut notes).ok_or(e)
            }
        });
        match result {
            Ok(c) if !named && c.values.len() > AUTO_MAX_VALUES => {} // free text, not a category
            Ok(c) => columns.push(c),
            Err(_) if !named => {}
            Err(reason) => return Err(ExportError::input(items_file, format!("--columns {name}: {reason}"))),
        }
    }
    if columns.len() > MAX_COLUMNS {
        let reason =
            format!("{} columns, a bundle holds at most {MAX_COLUMNS} (name them with --columns)", columns.len());
        return Err(ExportError::input(items_file, reason));
    }
    let item_count = items.len();
    Ok(((!columns.is_empty()).then_some(ColumnsFile { item_count, columns }), notes))
}

/// A field of numbers where at most 1% of the items holding it have a string instead, as a number
/// column without those items' values; the note names them (at most 10). `None` otherwise.
fn mostly_numbers(items: &[Item], name: &str, notes: &mut Vec<String>) -> Option<ColumnFile> {
    let held: Vec<(&Item, &Value)> =
        items.iter().filter_map(|i| i.metadata.get(name).filter(|v| !v.is_null()).map(|v| (i, v))).collect();
    let strays: Vec<String> =
        held.iter().filter(|(_, v)| v.is_string()).map(|(i, v)| format!("{:?} ({v})", i.id)).collect();
    let numbers = held.iter().filter(|(_, v)| v.is_number()).count();
    if strays.is_empty() || numbers + strays.len() != held.len() || strays.len() * 100 > held.len() {
        return None;
    }
    let rows =
        items.iter().map(|i| i.metadata.get(name).and_then(Value::as_f64).filter(|x| x.is_finite()).map(Cell::Number));
    let shown: Vec<&str> = strays.iter().take(10).map(String::as_str).collect();
    notes.push(format!(
        "columns.json: {name} is a number column; {} of {} items hold no number there and have no {name}: {}",
        strays.len(),
        held.len(),
        shown.join(", ")
    ));
    Some(ColumnFile { name: name.into(), kind: ColumnKind::Number, values: Vec::new(), rows: rows.collect() })
}

/// One field as a column, or why it cannot be one.
fn column(items: &[Item], name: &str) -> Result<ColumnFile, String> {
    if !is_field_name(name) {
        return Err("not a plain field name ([A-Za-z0-9_.-], 1 to 64)".into());
    }
    let kind_of = |v: &Value| match v {
        Value::Bool(_) => Some(ColumnKind::Bool),
        Value::Number(_) => Some(ColumnKind::Number),
        Value::String(_) => Some(ColumnKind::Category),
        Value::Array(a) if a.iter().all(Value::is_string) => Some(ColumnKind::Category),
        _ => None,
    };
    let mut kind = None;
    for item in items {
        match item.metadata.get(name) {
            None | Some(Value::Null) => {}
            Some(v) => match (kind_of(v), kind) {
                (None, _) => {
                    return Err(format!("item {:?}: {v} is not a number, bool, string or list of strings", item.id))
                }
                (Some(k), Some(seen)) if k != seen => {
                    return Err(format!(
                        "item {:?} holds a {} value, earlier items {}",
                        item.id,
                        k.as_str(),
                        seen.as_str()
                    ));
                }
                (Some(k), _) => kind = Some(k),
            },
        }
    }
    let kind = kind.ok_or_else(|| "no item has this field".to_string())?;
    let mut values: BTreeMap<String, u32> = BTreeMap::new();
    if kind == ColumnKind::Category {
        for item in items {
            for s in strings(item.metadata.get(name)) {
                values.entry(s.to_string()).or_insert(0);
            }
        }
        if values.len() > MAX_CATEGORY_VALUES {
            return Err(format!("{} distinct values, a category holds at most {MAX_CATEGORY_VALUES}", values.len()));
        }
        for (code, v) in values.values_mut().enumerate() {
            *v = code as u32;
        }
    }
    let rows = items
        .iter()
        .map(|item| match (kind, item.metadata.get(name)) {
            (_, None | Some(Value::Null)) => None,
            (ColumnKind::Bool, Some(v)) => v.as_bool().map(Cell::Bool),
            (ColumnKind::Number, Some(v)) => v.as_f64().filter(|x| x.is_finite()).map(Cell::Number),
            (ColumnKind::Category, v) => {
                let codes: Vec<u32> = strings(v).map(|s| values[s]).collect();
                match codes.len() {
                    0 => None,
                    1 => Some(Cell::Number(codes[0] as f64)),
                    _ => Some(Cell::Codes(codes)),
                }
            }
        })
        .collect();
    Ok(ColumnFile { name: name.into(), kind, values: values.into_keys().collect(), rows })
}

fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let list: Vec<&str> = match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
}

/// Popularity of every item from every interaction of `dataset` (timestamps read as seconds).
pub fn popularity_file(dataset: &Dataset, half_life_days: f64) -> PopularityFile {
    let events: Vec<(u32, f64)> =
        dataset.users.iter().flat_map(|u| u.events.iter().map(|e| (e.item, e.timestamp))).collect();
    PopularityFile::compute(dataset.items.len(), &events, half_life_days)
}

/// Adds `columns.json` and `popularity.json` to `bundle` (when given), sets the manifest's version
/// to the one its fields need, and writes the manifest again.
pub fn attach(
    bundle: &mut Bundle,
    columns: Option<ColumnsFile>,
    popularity: Option<PopularityFile>,
) -> Result<(), ExportError> {
    let mut add = |name: &str, bytes: Vec<u8>| {
        let entry = FileEntry { path: name.into(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) };
        bundle.files.push((name.into(), bytes));
        entry
    };
    if let Some(c) = columns {
        bundle.manifest.columns = Some(add("columns.json", serde_json::to_vec(&c).expect("columns serialise")));
    }
    if let Some(p) = popularity {
        bundle.manifest.popularity = Some(add("popularity.json", p.to_json()));
    }
    bundle.manifest.format_version = bundle.manifest.required_version();
    bundle.manifest.validate().map_err(|e| ExportError::Invalid { reason: e.to_string() })?;
    bundle.files.retain(|(name, _)| name != "manifest.json");
    bundle.files.push(("manifest.json".into(), bundle.manifest.to_json()));
    Ok(())
}
