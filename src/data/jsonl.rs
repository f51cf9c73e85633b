//! JSON-lines reading shared by `items.jsonl` and the Amazon importer: every non-blank line must be a
//! JSON object naming each key once; anything else is a located problem and the row is skipped.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::lines::LineReader;
use super::{Problem, ProblemKind};

/// Calls `each(line number, object, problems)` for every JSON-object line of `reader`, reporting lines
/// that are not JSON objects (and those the line reader rejects). Returns the number of non-blank
/// lines, used or not. A read error ends the file with a problem at the line it happened.
pub(crate) fn for_each_object<R: BufRead>(
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
        // A key named twice is an error, not a silent pick of one value (see the runtime's `json`).
        match crate::runtime::json::parse_unique_keys(text.as_bytes()) {
            Ok(Value::Object(object)) => each(number, object, problems),
            Ok(other) => {
                let message = format!("expected a JSON object, found {}; row skipped", json_type(&other));
                problems.push(Problem::new(ProblemKind::NotAnObject, file, message).at_line(number));
            }
            Err(err) => match without_out_of_range_numbers(text, &err) {
                // One metadata number beyond f64 (`"year": 1e999`) costs that field, not the item.
                Some((object, dropped)) => {
                    for (key, literal) in dropped {
                        let message = format!(
                            "{key}: the number {} is beyond the range of a 64-bit float; kept as null",
                            super::lines::excerpt(&literal, 40)
                        );
                        problems.push(Problem::located(ProblemKind::WrongFieldType, file, number, &key, message));
                    }
                    each(number, object, problems)
                }
                None => {
                    let message = format!("not valid JSON ({err}); row skipped");
                    problems.push(Problem::new(ProblemKind::BadJson, file, message).at_line(number));
                }
            },
        }
    }
    rows
}

/// An object key and the number literal found under it.
type KeyAndLiteral = (String, String);

/// When `err` is serde_json's "number out of range" (a literal such as `1e999` that is valid JSON but
/// beyond f64), the line parsed again with each such literal replaced by `null`, and the
/// `(key, literal)` pairs replaced. `None` for any other error, or when the line still fails.
fn without_out_of_range_numbers(
    text: &str,
    err: &serde_json::Error,
) -> Option<(Map<String, Value>, Vec<KeyAndLiteral>)> {
    if !err.to_string().starts_with("number out of range") {
        return None;
    }
    let (patched, dropped) = null_out_of_range_numbers(text);
    if dropped.is_empty() {
        return None;
    }
    match crate::runtime::json::parse_unique_keys(patched.as_bytes()) {
        Ok(Value::Object(object)) => Some((object, dropped)),
        _ => None,
    }
}

/// `text` with every number literal outside strings whose value is not a finite f64 replaced by
/// `null`, and for each the nearest preceding object key ("?" at top level) and the literal. A lexer,
/// not a parser: it only has to find number tokens, strings (with escapes) being the only context.
fn null_out_of_range_numbers(text: &str) -> (String, Vec<(String, String)>) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut dropped = Vec::new();
    let mut key = String::from("?");
    let mut last_string: Option<&str> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let end = if b == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            last_string = text.get(i + 1..j.min(bytes.len()));
            end
        } else if b == b'-' || b.is_ascii_digit() {
            let mut j = i + 1;
            while j < bytes.len() && matches!(bytes[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                j += 1;
            }
            let literal = &text[i..j];
            if literal.parse::<f64>().is_ok_and(|v| !v.is_finite()) {
                dropped.push((key.clone(), literal.to_owned()));
                out.push_str("null");
                i = j;
                continue;
            }
            j
        } else {
            if b == b':' {
                if let Some(name) = last_string.take() {
                    // The key as JSON wrote it, escapes decoded (it was valid JSON up to here).
                    key = serde_json::from_str(&format!("\"{name}\"")).unwrap_or_else(|_| name.to_owned());
                }
            } else if !b.is_ascii_whitespace() {
                last_string = None;
            }
            // A whole character: outside strings the line need not be JSON (`1e999é`).
            i + text[i..].chars().next().map_or(1, char::len_utf8)
        };
        out.push_str(&text[i..end]);
        i = end;
    }
    (out, dropped)
}

/// "a number", "an array"...: the JSON type of `value`, for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Map<String, Value>>, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut objects = Vec::new();
        for_each_object(text.as_bytes(), "items.jsonl", &mut problems, |_, object, _| objects.push(object));
        (objects, problems)
    }

    #[test]
    fn a_number_beyond_f64_costs_its_field_not_the_row() {
        let (objects, problems) =
            read(r#"{"item_id": "a", "title": "1e999 in a string", "year": 1e999, "n": [1, -2e400]}"#);
        assert_eq!(objects.len(), 1, "{problems:?}");
        assert_eq!(objects[0]["item_id"], "a");
        assert_eq!(objects[0]["title"], "1e999 in a string");
        assert_eq!(objects[0]["year"], Value::Null);
        assert_eq!(objects[0]["n"], serde_json::json!([1, null]));
        let fields: Vec<_> = problems.iter().map(|p| (p.kind, p.line, p.field.as_deref())).collect();
        assert_eq!(
            fields,
            [(ProblemKind::WrongFieldType, Some(1), Some("year")), (ProblemKind::WrongFieldType, Some(1), Some("n"))]
        );
        assert!(problems[0].message.contains("1e999"), "{}", problems[0].message);
    }

    #[test]
    fn other_json_errors_still_skip_the_row() {
        let (objects, problems) = read("{\"item_id\": \"a\", \"year\": 1e999\n{\"item_id\": \"b\", \"x\": 01}");
        assert!(objects.is_empty());
        assert_eq!(problems.len(), 2);
        assert!(problems.iter().all(|p| p.kind == ProblemKind::BadJson), "{problems:?}");
    }

    #[test]
    fn escaped_quotes_do_not_confuse_the_lexer() {
        let (objects, problems) = read(r#"{"item_id": "a\"1e999", "k\\": 1E+999}"#);
        assert_eq!(objects.len(), 1, "{problems:?}");
        assert_eq!(objects[0]["item_id"], "a\"1e999");
        assert_eq!(problems[0].field.as_deref(), Some("k\\"));
    }
}
