//! `interactions.csv` (DESIGN.md §2): header required; columns `user_id`, `item_id`, `timestamp`
//! (numeric: seconds or any monotone ordinal), optional `rating`; other columns are ignored.
//!
//! Users come in the order they first appear; each user's events are sorted by timestamp with a
//! stable sort, so ties keep the file order. Every row that cannot be used is a [`Problem`] at its
//! line: wrong column count, missing user or item id, unknown item id, a timestamp that is not a
//! finite number (skipped); a rating that is not a number (kept without rating). A missing or wrong
//! header stops the file (fatal): without it no column can be trusted.

use std::collections::HashMap;
use std::io::BufRead;

use super::lines::excerpt;
use super::records::{CsvRecords, Record};
use super::{Event, Problem, ProblemKind, UserHistory};

const USER_ID: &str = "user_id";
const ITEM_ID: &str = "item_id";
const TIMESTAMP: &str = "timestamp";
const RATING: &str = "rating";

/// Longest value quoted in a message.
const QUOTE_CHARS: usize = 60;

/// What was read from an interactions file.
#[derive(Debug, Default)]
pub struct InteractionsRead {
    /// Users in order of first appearance, each history oldest first.
    pub users: Vec<UserHistory>,
    /// Data rows seen (used or not), header excluded.
    pub rows: usize,
    /// Problems in line order.
    pub problems: Vec<Problem>,
}

/// Where the known columns are.
struct Columns {
    count: usize,
    user: usize,
    item: usize,
    timestamp: usize,
    rating: Option<usize>,
}

/// Reads an interactions file; `item_index` maps a catalogue id to its index in the items.
pub fn read_interactions<R: BufRead>(
    reader: R,
    file: &str,
    item_index: impl Fn(&str) -> Option<u32>,
) -> InteractionsRead {
    let mut records = CsvRecords::new(reader, file);
    let mut out = InteractionsRead::default();
    let mut user_slot: HashMap<String, usize> = HashMap::new();
    let mut columns: Option<Columns> = None;
    loop {
        let record = match records.next_record(&mut out.problems) {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(err) => {
                let message = format!("read error: {err}; the rest of the file is ignored");
                out.problems.push(Problem::new(ProblemKind::FileUnreadable, file, message));
                break;
            }
        };
        let Some(cols) = &columns else {
            match read_header(&record, file, &mut out.problems) {
                Some(found) => {
                    columns = Some(found);
                    continue;
                }
                None => {
                    super::problem::sort_by_line(&mut out.problems);
                    return out; // fatal, already reported
                }
            }
        };
        out.rows += 1;
        let Some((user, event)) = read_row(&record, cols, file, &item_index, &mut out.problems) else {
            continue;
        };
        let slot = *user_slot.entry(user.to_string()).or_insert_with(|| {
            out.users.push(UserHistory { id: user.to_string(), events: Vec::new() });
            out.users.len() - 1
        });
        out.users[slot].events.push(event);
    }
    for user in &mut out.users {
        // `sort_by` is stable: equal timestamps keep their file order.
        user.events.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    }
    if columns.is_none() || out.rows == 0 {
        let message = if columns.is_none() { "no header and no rows" } else { "a header but no rows" };
        out.problems.push(Problem::new(ProblemKind::EmptyFile, file, message));
    } else if out.users.is_empty() {
        let message = format!("none of the {} rows is a usable interaction", out.rows);
        out.problems.push(Problem::new(ProblemKind::NoUsableRows, file, message));
    }
    super::problem::sort_by_line(&mut out.problems);
    out
}

/// Finds the columns in the first record, or reports a missing header or column (fatal).
fn read_header(record: &Record, file: &str, problems: &mut Vec<Problem>) -> Option<Columns> {
    let names: Vec<&str> = record.iter().map(str::trim).collect();
    let position = |name: &str| names.iter().position(|n| *n == name);
    let known = [USER_ID, ITEM_ID, TIMESTAMP, RATING];
    if !names.iter().any(|n| known.contains(n)) {
        let message = format!(
            "the first line \"{}\" is not a header; expected columns {USER_ID},{ITEM_ID},{TIMESTAMP}[,{RATING}]",
            excerpt(&names.join(","), QUOTE_CHARS)
        );
        problems.push(Problem::new(ProblemKind::MissingHeader, file, message).at_line(record.line));
        return None;
    }
    let mut missing = false;
    for required in [USER_ID, ITEM_ID, TIMESTAMP] {
        if position(required).is_none() {
            missing = true;
            let message = format!("the header has no \"{required}\" column");
            problems
                .push(Problem::new(ProblemKind::MissingColumn, file, message).at_line(record.line).in_field(required));
        }
    }
    if missing {
        return None;
    }
    Some(Columns {
        count: names.len(),
        user: position(USER_ID)?,
        item: position(ITEM_ID)?,
        timestamp: position(TIMESTAMP)?,
        rating: position(RATING),
    })
}

/// One data row: the user id and the event, or `None` when the row is skipped (reported).
fn read_row<'r>(
    record: &'r Record,
    cols: &Columns,
    file: &str,
    item_index: &impl Fn(&str) -> Option<u32>,
    problems: &mut Vec<Problem>,
) -> Option<(&'r str, Event)> {
    let line = record.line;
    if record.len() != cols.count {
        let lines =
            if record.end_line > line { format!(" (lines {line}–{})", record.end_line) } else { String::new() };
        let message = format!("{} columns where the header has {}{lines}; row skipped", record.len(), cols.count);
        problems.push(Problem::new(ProblemKind::WrongColumnCount, file, message).at_line(line));
        return None;
    }
    let field = |i: usize| record.get(i).unwrap_or_default();
    let problem =
        |kind: ProblemKind, name: &str, message: String| Problem::new(kind, file, message).at_line(line).in_field(name);
    let mut usable = true;

    let user = field(cols.user);
    if user.trim().is_empty() {
        problems.push(problem(ProblemKind::MissingField, USER_ID, "empty user_id; row skipped".into()));
        usable = false;
    }

    let item_id = field(cols.item);
    let item = if item_id.trim().is_empty() {
        problems.push(problem(ProblemKind::MissingField, ITEM_ID, "empty item_id; row skipped".into()));
        None
    } else {
        let index = item_index(item_id);
        if index.is_none() {
            let message = format!("item \"{}\" is not in the catalogue; row skipped", excerpt(item_id, QUOTE_CHARS));
            problems.push(problem(ProblemKind::UnknownItemId, ITEM_ID, message));
        }
        index
    };

    let raw_time = field(cols.timestamp).trim();
    let timestamp = if raw_time.is_empty() {
        problems.push(problem(ProblemKind::MissingField, TIMESTAMP, "empty timestamp; row skipped".into()));
        None
    } else {
        let parsed = parse_finite(raw_time);
        if parsed.is_none() {
            let message = format!("\"{}\" is not a finite number; row skipped", excerpt(raw_time, QUOTE_CHARS));
            problems.push(problem(ProblemKind::BadTimestamp, TIMESTAMP, message));
        }
        parsed
    };

    let rating = cols.rating.map(|i| field(i).trim()).filter(|raw| !raw.is_empty()).and_then(|raw| {
        let parsed = parse_finite(raw);
        if parsed.is_none() {
            let message = format!("\"{}\" is not a finite number; row kept without rating", excerpt(raw, QUOTE_CHARS));
            problems.push(problem(ProblemKind::BadRating, RATING, message));
        }
        parsed.map(|r| r as f32)
    });

    let (Some(item), Some(timestamp), true) = (item, timestamp, usable) else {
        return None;
    };
    Some((user, Event { item, timestamp, rating }))
}

fn parse_finite(raw: &str) -> Option<f64> {
    raw.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(id: &str) -> Option<u32> {
        ["a", "b", "c"].iter().position(|x| *x == id).map(|i| i as u32)
    }

    #[test]
    fn users_in_first_appearance_order_and_stable_time_sort() {
        let csv = "item_id,extra,timestamp,user_id\nb,x,5,u2\na,x,3,u1\nc,x,3,u2\na,x,5,u2\nb,x,1,u1\n";
        let read = read_interactions(csv.as_bytes(), "interactions.csv", index);
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        let ids: Vec<&str> = read.users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, vec!["u2", "u1"]);
        let items = |u: usize| read.users[u].events.iter().map(|e| e.item).collect::<Vec<_>>();
        // u2: c@3, then b@5 and a@5 in file order.
        assert_eq!(items(0), vec![2, 1, 0]);
        assert_eq!(items(1), vec![1, 0]);
        assert_eq!(read.rows, 5);
    }

    #[test]
    fn bad_rating_keeps_the_row() {
        let csv = "user_id,item_id,timestamp,rating\nu,a,1,five\nu,a,2,\n";
        let read = read_interactions(csv.as_bytes(), "interactions.csv", index);
        let found: Vec<_> = read.problems.iter().map(|p| (p.kind, p.line, p.field.as_deref())).collect();
        assert_eq!(found, vec![(ProblemKind::BadRating, Some(2), Some("rating"))]);
        assert_eq!(read.users[0].events.len(), 2);
        assert_eq!(read.users[0].events[0].rating, None);
    }
}
