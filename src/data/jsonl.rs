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
            Err(err) => {
                let message = format!("not valid JSON ({err}); row skipped");
                problems.push(Problem::new(ProblemKind::BadJson, file, message).at_line(number));
            }
        }
    }
    rows
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
