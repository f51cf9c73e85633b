//! `columns.json`: the item metadata rules read (docs/bundle.md § "columns.json"), one column per
//! field, one entry per bundle row, so the browser holds a few bytes per item and per field rather
//! than the catalogue's records:
//!
//! ```text
//! { "item_count": 3, "columns": [
//!   { "name": "genres", "type": "category", "values": ["Comedy", "Drama"], "rows": [0, [0, 1], null] },
//!   { "name": "price",  "type": "number",   "rows": [9.5, null, 12] },
//!   { "name": "in_stock", "type": "bool",   "rows": [true, false, null] } ] }
//! ```
//!
//! A category cell is a code into `values` or a list of codes (an item in several categories);
//! `null` (or `[]`) is no value. The file is untrusted: every count, code and name is checked
//! ([`RuntimeError::Format`] naming the column and row) before use. Loaded, each column also keeps
//! the index its rules need to be fast: the rows of each category value, and the rows in order of
//! their number, so a filter costs a few microseconds per request rather than a pass over the rows.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::bits::Bits;
use crate::error::RuntimeError;

/// Most columns a bundle may carry.
pub const MAX_COLUMNS: usize = 64;
/// Most distinct values one category column may have.
pub const MAX_CATEGORY_VALUES: usize = 65_536;
/// Most codes one item may hold in one category column.
pub const MAX_CODES_PER_ITEM: usize = 256;

/// `columns.json` as written (docs/bundle.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsFile {
    pub item_count: usize,
    pub columns: Vec<ColumnFile>,
}

/// One column as written: `type` is `category`, `number` or `bool`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnFile {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnKind,
    /// A category column's values (codes index it); absent for the other types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    pub rows: Vec<Option<Cell>>,
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Category,
    Number,
    Bool,
}

impl ColumnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::Category => "category",
            ColumnKind::Number => "number",
            ColumnKind::Bool => "bool",
        }
    }
}

/// One cell as written: a boolean, a number (or one category code), or several category codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Bool(bool),
    Number(f64),
    Codes(Vec<u32>),
}

/// A column's values by row, with the index rules read.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Category {
        values: Vec<String>,
        /// Row `r`'s codes are `codes[starts[r]..starts[r + 1]]` (`starts` has `item_count + 1` entries).
        starts: Vec<u32>,
        codes: Vec<u32>,
        /// The rows holding each value, ascending.
        postings: Vec<Vec<u32>>,
    },
    Number {
        /// NaN: no value.
        values: Vec<f64>,
        /// Rows with a value, by value ascending (ties by row).
        order: Vec<u32>,
    },
    Bool {
        /// `None`: no value.
        values: Vec<Option<bool>>,
        /// The rows whose value is true, and those whose value is false.
        trues: Bits,
        falses: Bits,
    },
}

/// One loaded column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

impl Column {
    pub fn kind(&self) -> ColumnKind {
        match self.data {
            ColumnData::Category { .. } => ColumnKind::Category,
            ColumnData::Number { .. } => ColumnKind::Number,
            ColumnData::Bool { .. } => ColumnKind::Bool,
        }
    }

    /// Rows this column covers (the bundle's item count).
    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Category { starts, .. } => starts.len() - 1,
            ColumnData::Number { values, .. } => values.len(),
            ColumnData::Bool { values, .. } => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row`'s category codes (empty for no value or a row beyond the column).
    pub fn codes(&self, row: usize) -> &[u32] {
        match &self.data {
            ColumnData::Category { starts, codes, .. } if row + 1 < starts.len() => {
                &codes[starts[row] as usize..starts[row + 1] as usize]
            }
            _ => &[],
        }
    }
}

/// Every column of a bundle (none for a bundle without `columns.json`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Columns {
    columns: Vec<Column>,
}

impl Columns {
    /// Parses and checks `columns.json` (`file` names it in errors) for a catalogue of `item_count`.
    pub fn parse(bytes: &[u8], file: &str, item_count: usize) -> Result<Columns, RuntimeError> {
        let parsed: ColumnsFile =
            serde_json::from_slice(bytes).map_err(|e| RuntimeError::format(file, e.to_string()))?;
        Columns::from_file(parsed, file, item_count)
    }

    /// [`Columns::parse`] on a parsed file.
    pub fn from_file(parsed: ColumnsFile, file: &str, item_count: usize) -> Result<Columns, RuntimeError> {
        if parsed.item_count != item_count {
            return Err(RuntimeError::format(
                file,
                format!("item_count is {}, manifest.json's is {item_count}", parsed.item_count),
            ));
        }
        if parsed.columns.len() > MAX_COLUMNS {
            return Err(RuntimeError::format(file, format!("{} columns, at most {MAX_COLUMNS}", parsed.columns.len())));
        }
        let mut names = HashSet::new();
        let mut columns = Vec::with_capacity(parsed.columns.len());
        for column in parsed.columns {
            if !is_field_name(&column.name) {
                return Err(RuntimeError::format(
                    file,
                    format!("column name {:?} is not a plain field name ([A-Za-z0-9_.-], 1 to 64)", column.name),
                ));
            }
            if !names.insert(column.name.clone()) {
                return Err(RuntimeError::format(file, format!("column {:?} appears twice", column.name)));
            }
            columns.push(load_column(column, file, item_count)?);
        }
        Ok(Columns { columns })
    }

    pub fn get(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The columns' names and types, e.g. `genres (category), year (number)`, for error messages.
    pub fn describe(&self) -> String {
        if self.columns.is_empty() {
            return "none (export the bundle with item metadata, or give facts)".into();
        }
        self.columns.iter().map(|c| format!("{} ({})", c.name, c.kind().as_str())).collect::<Vec<_>>().join(", ")
    }
}

/// A field name rules may use: 1 to 64 of `[A-Za-z0-9_.-]`.
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn load_column(column: ColumnFile, file: &str, item_count: usize) -> Result<Column, RuntimeError> {
    let name = column.name;
    let at = |row: usize, what: String| RuntimeError::format(file, format!("column {name:?}, row {row}: {what}"));
    if column.rows.len() != item_count {
        return Err(RuntimeError::format(
            file,
            format!("column {name:?} has {} rows, the catalogue {item_count}", column.rows.len()),
        ));
    }
    if column.kind != ColumnKind::Category && !column.values.is_empty() {
        return Err(RuntimeError::format(file, format!("column {name:?}: only a category column has values")));
    }
    let data = match column.kind {
        ColumnKind::Category => {
            let values = column.values;
            if values.len() > MAX_CATEGORY_VALUES {
                return Err(RuntimeError::format(
                    file,
                    format!("column {name:?} has {} values, at most {MAX_CATEGORY_VALUES}", values.len()),
                ));
            }
            let mut starts = Vec::with_capacity(item_count + 1);
            let mut codes = Vec::new();
            let mut postings = vec![Vec::new(); values.len()];
            starts.push(0u32);
            for (row, cell) in column.rows.into_iter().enumerate() {
                let row_codes: Vec<u32> = match cell {
                    None => Vec::new(),
                    Some(Cell::Codes(list)) => list,
                    Some(Cell::Number(x)) if x.fract() == 0.0 && (0.0..u32::MAX as f64).contains(&x) => vec![x as u32],
                    Some(other) => return Err(at(row, format!("{other:?} is not a category code or a list of codes"))),
                };
                if row_codes.len() > MAX_CODES_PER_ITEM {
                    return Err(at(row, format!("{} codes, at most {MAX_CODES_PER_ITEM}", row_codes.len())));
                }
                let mut seen = Vec::with_capacity(row_codes.len());
                for code in row_codes {
                    if code as usize >= values.len() {
                        return Err(at(row, format!("code {code} is not below the {} values", values.len())));
                    }
                    if !seen.contains(&code) {
                        seen.push(code);
                        postings[code as usize].push(row as u32);
                    }
                }
                codes.extend_from_slice(&seen);
                if codes.len() > u32::MAX as usize {
                    return Err(at(row, "too many codes in one column".into()));
                }
                starts.push(codes.len() as u32);
            }
            ColumnData::Category { values, starts, codes, postings }
        }
        ColumnKind::Number => {
            let mut values = Vec::with_capacity(item_count);
            for (row, cell) in column.rows.into_iter().enumerate() {
                values.push(match cell {
                    None => f64::NAN,
                    Some(Cell::Number(x)) if x.is_finite() => x,
                    Some(other) => return Err(at(row, format!("{other:?} is not a number"))),
                });
            }
            let mut order: Vec<u32> = (0..item_count as u32).filter(|&r| !values[r as usize].is_nan()).collect();
            order.sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]).then(a.cmp(&b)));
            ColumnData::Number { values, order }
        }
        ColumnKind::Bool => {
            let mut values = Vec::with_capacity(item_count);
            for (row, cell) in column.rows.into_iter().enumerate() {
                values.push(match cell {
                    None => None,
                    Some(Cell::Bool(b)) => Some(b),
                    Some(other) => return Err(at(row, format!("{other:?} is not true, false or null"))),
                });
            }
            let trues = Bits::of_rows(item_count, (0..item_count as u32).filter(|&r| values[r as usize] == Some(true)));
            let falses =
                Bits::of_rows(item_count, (0..item_count as u32).filter(|&r| values[r as usize] == Some(false)));
            ColumnData::Bool { values, trues, falses }
        }
    };
    Ok(Column { name, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, n: usize) -> Result<Columns, RuntimeError> {
        Columns::parse(json.as_bytes(), "columns.json", n)
    }

    #[test]
    fn reads_each_type_with_its_index() {
        let c = parse(
            r#"{"item_count":3,"columns":[
              {"name":"genres","type":"category","values":["Comedy","Drama"],"rows":[0,[0,1,1],null]},
              {"name":"price","type":"number","rows":[9.5,null,2]},
              {"name":"in_stock","type":"bool","rows":[true,false,null]}]}"#,
            3,
        )
        .unwrap();
        let genres = c.get("genres").unwrap();
        assert_eq!(genres.codes(1), &[0, 1]);
        assert_eq!(genres.codes(2), &[] as &[u32]);
        assert_eq!(genres.codes(7), &[] as &[u32]);
        let ColumnData::Category { postings, .. } = &genres.data else { panic!() };
        assert_eq!(postings, &vec![vec![0, 1], vec![1]]);
        let ColumnData::Number { order, .. } = &c.get("price").unwrap().data else { panic!() };
        assert_eq!(order, &vec![2, 0]);
        assert_eq!(c.describe(), "genres (category), price (number), in_stock (bool)");
    }

    #[test]
    fn refuses_bad_files_naming_column_and_row() {
        let bad = [
            (r#"{"item_count":2,"columns":[]}"#, "item_count is 2"),
            (
                r#"{"item_count":1,"columns":[{"name":"g","type":"category","values":["a"],"rows":[3]}]}"#,
                "row 0: code 3",
            ),
            (r#"{"item_count":1,"columns":[{"name":"p","type":"number","rows":[true]}]}"#, "\"p\", row 0"),
            (r#"{"item_count":1,"columns":[{"name":"b","type":"bool","rows":[1]}]}"#, "not true, false or null"),
            (r#"{"item_count":1,"columns":[{"name":"a b","type":"bool","rows":[null]}]}"#, "not a plain field name"),
            (
                r#"{"item_count":1,"columns":[{"name":"x","type":"bool","rows":[null]},{"name":"x","type":"bool","rows":[null]}]}"#,
                "twice",
            ),
            (r#"{"item_count":1,"columns":[{"name":"x","type":"date","rows":[null]}]}"#, "unknown variant"),
            (r#"{"item_count":1,"columns":[{"name":"x","type":"number","rows":[1,2]}]}"#, "has 2 rows"),
            (r#"{"item_count":1,"columns":[],"extra":1}"#, "unknown field"),
        ];
        for (json, expected) in bad {
            let e = parse(json, 1).unwrap_err().to_string();
            assert!(e.starts_with("columns.json: ") && e.contains(expected), "{json}: {e}");
        }
    }
}
