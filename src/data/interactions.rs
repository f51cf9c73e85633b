//! `interactions.csv` (README.md § Dataset format): header required; columns `user_id`, `item_id`, `timestamp`
//! (numeric: seconds or any monotone ordinal), optional `rating`; other columns are ignored.
//!
//! Users come in the order they first appear; each user's events are sorted by timestamp with a
//! stable sort, so ties keep the file order. Every row that cannot be used is a [`Problem`] at its
//! line: wrong column count, missing user or item id, unknown item id, a timestamp that is not a
//! finite number (skipped); a rating that is not a number (kept without rating). A missing or wrong
//! header stops the file (fatal): without it no column can be trusted.

use std::io::BufRead;

use super::histories::HistoryBuilder;
use super::lines::excerpt;
use super::records::{CsvRecords, Record};
use super::{Event, Problem, ProblemKind, UserHistory};

/// The interaction columns' names, the same in `interactions.csv` and RecBole's `.inter` header.
pub const USER_ID: &str = "user_id";
pub const ITEM_ID: &str = "item_id";
pub const TIMESTAMP: &str = "timestamp";
pub const RATING: &str = "rating";

/// Longest value quoted in a message.
const QUOTE_CHARS: usize = 60;

/// What an unknown item id is missing from, in `interactions.csv`'s messages.
const CATALOGUE: &str = "the catalogue";

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

/// Where the interaction columns are in a header (`interactions.csv`'s or a RecBole `.inter` file's).
pub struct InteractionColumns {
    /// Columns in the header; a row with any other count is skipped.
    pub count: usize,
    pub user: usize,
    pub item: usize,
    pub timestamp: usize,
    pub rating: Option<usize>,
}

/// Reads an interactions file; `item_index` maps a catalogue id to its index in the items.
pub fn read_interactions<R: BufRead>(
    reader: R,
    file: &str,
    item_index: impl Fn(&str) -> Option<u32>,
) -> InteractionsRead {
    let mut records = CsvRecords::new(reader, file);
    let mut out = InteractionsRead::default();
    let mut histories = HistoryBuilder::default();
    let mut columns: Option<InteractionColumns> = None;
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
        if let Some((user, event)) = read_row(&record, cols, file, CATALOGUE, &item_index, &mut out.problems) {
            histories.push(user, event);
        }
    }
    out.users = histories.finish();
    if columns.is_none() || out.rows == 0 {
        let message = if columns.is_none() { "no header and no rows" } else { "a header but no rows" };
        out.problems.push(Problem::new(ProblemKind::EmptyFile, file, message));
    } else if out.users.is_empty() {
        let message = format!("none of the {} rows is a usable interaction", out.rows);
        out.problems.push(Problem::new(ProblemKind::NoUsableRows, file, message));
    } else if out.users.iter().all(|u| u.events.len() < 2) {
        // Nothing to learn or evaluate: next-item training needs a user with a previous item.
        let message = format!(
            "each of the {} users has a single usable interaction: training needs a user with at least 2",
            out.users.len()
        );
        out.problems.push(Problem::new(ProblemKind::NoUsableRows, file, message));
    }
    super::problem::sort_by_line(&mut out.problems);
    out
}

/// Finds the columns in the first record, or reports a missing header or column (fatal).
fn read_header(record: &Record, file: &str, problems: &mut Vec<Problem>) -> Option<InteractionColumns> {
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
    Some(InteractionColumns {
        count: names.len(),
        user: position(USER_ID)?,
        item: position(ITEM_ID)?,
        timestamp: position(TIMESTAMP)?,
        rating: position(RATING),
    })
}

/// One interaction row, checked the same way in every format that has one (`interactions.csv`,
/// RecBole's `.inter`): the user id and the event, or `None` when the row is skipped. Each problem is
/// reported at the row's line and field: a wrong column count, an empty user or item id, an item not
/// in `catalogue` (named in the message: "the catalogue", "the .item file"), an empty or non-finite
/// timestamp (row skipped); a non-finite rating (row kept without rating).
pub fn read_row<'r>(
    record: &'r Record,
    cols: &InteractionColumns,
    file: &str,
    catalogue: &str,
    item_index: &impl Fn(&str) -> Option<u32>,
    problems: &mut Vec<Problem>,
) -> Option<(&'r str, Event)> {
    if wrong_column_count(record, cols.count, file, problems) {
        return None;
    }
    let line = record.line;
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
            let message = format!("item \"{}\" is not in {catalogue}; row skipped", excerpt(item_id, QUOTE_CHARS));
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
        // Ratings are stored as f32: a value finite in f64 but not in f32 (1e300) would be written back
        // as `inf`, so it counts as not finite here.
        let parsed = parse_finite(raw).map(|r| r as f32).filter(|r| r.is_finite());
        if parsed.is_none() {
            let message = format!("\"{}\" is not a finite number; row kept without rating", excerpt(raw, QUOTE_CHARS));
            problems.push(problem(ProblemKind::BadRating, RATING, message));
        }
        parsed
    });

    let (Some(item), Some(timestamp), true) = (item, timestamp, usable) else {
        return None;
    };
    Some((user, Event { item, timestamp, rating }))
}

/// Reports a row whose column count differs from the header's (with its line range when a quoted
/// field spans lines); true when it does, and the row is skipped. Any delimited format's rows.
pub fn wrong_column_count(record: &Record, expected: usize, file: &str, problems: &mut Vec<Problem>) -> bool {
    if record.len() == expected {
        return false;
    }
    let line = record.line;
    let lines = if record.end_line > line { format!(" (lines {line}–{})", record.end_line) } else { String::new() };
    let message = format!("{} columns where the header has {expected}{lines}; row skipped", record.len());
    problems.push(Problem::new(ProblemKind::WrongColumnCount, file, message).at_line(line));
    true
}

/// `raw` (already trimmed) as a finite number.
fn parse_finite(raw: &str) -> Option<f64> {
    raw.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Severity;

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

    #[test]
    fn users_with_one_interaction_each_are_unusable() {
        let csv = "user_id,item_id,timestamp\nu,a,1\nv,a,2\n";
        let read = read_interactions(csv.as_bytes(), "interactions.csv", index);
        let found: Vec<_> = read.problems.iter().map(|p| (p.kind, p.severity)).collect();
        assert_eq!(found, vec![(ProblemKind::NoUsableRows, Severity::Fatal)]);
        assert!(read.problems[0].message.contains("at least 2"), "{}", read.problems[0].message);
        let csv = "user_id,item_id,timestamp\nu,a,1\nv,a,2\nv,a,3\n";
        assert!(read_interactions(csv.as_bytes(), "interactions.csv", index).problems.is_empty());
    }

    #[test]
    fn a_rating_beyond_f32_is_not_finite() {
        let csv = "user_id,item_id,timestamp,rating\nu,a,1,1e300\nu,a,2,-1e39\nu,a,3,4.5\n";
        let read = read_interactions(csv.as_bytes(), "interactions.csv", index);
        let found: Vec<_> = read.problems.iter().map(|p| (p.kind, p.line)).collect();
        assert_eq!(found, vec![(ProblemKind::BadRating, Some(2)), (ProblemKind::BadRating, Some(3))]);
        let ratings: Vec<_> = read.users[0].events.iter().map(|e| e.rating).collect();
        assert_eq!(ratings, vec![None, None, Some(4.5)]);
    }
}
