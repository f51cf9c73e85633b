//! The validation summary: what a dataset holds and how many problems of each kind it has.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Dataset, Problem, ProblemKind, Severity};

/// Counts describing a loaded dataset, plus problem counts. Serialises to the `--json` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// Items whose image was checked and decodes; `None` when images were not checked.
    pub items_with_image: Option<usize>,
    /// Items that name an image path (usable or not).
    pub items_with_image_path: usize,
    /// Items with a non-blank title or description.
    pub items_with_text: usize,
    /// `None` when there is no user.
    pub interactions_per_user: Option<PerUser>,
    /// First and last timestamp; `None` when there is no interaction.
    pub time_span: Option<TimeSpan>,
    /// Number of problems of each kind (kinds with none are left out).
    pub problem_counts: BTreeMap<ProblemKind, usize>,
    pub fatal_problems: usize,
    pub warnings: usize,
    /// No fatal problem: the dataset can be trained on.
    pub usable: bool,
}

/// Interactions per user.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PerUser {
    pub min: usize,
    /// The middle value; the mean of the two middle values for an even number of users.
    pub median: f64,
    pub max: usize,
}

/// Earliest and latest timestamp, raw, and as UTC dates (`YYYY-MM-DD`) when they look like unix
/// seconds (see [`TimeSpan::looks_like_unix_seconds`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeSpan {
    pub first: f64,
    pub last: f64,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
}

impl Summary {
    /// Summarises `dataset` and `problems`; `items_with_image` comes from an image check, if one ran.
    pub fn new(dataset: &Dataset, problems: &[Problem], items_with_image: Option<usize>) -> Self {
        let mut problem_counts = BTreeMap::new();
        for problem in problems {
            *problem_counts.entry(problem.kind).or_insert(0) += 1;
        }
        let fatal_problems = problems.iter().filter(|p| p.severity == Severity::Fatal).count();
        Summary {
            users: dataset.users.len(),
            items: dataset.items.len(),
            interactions: dataset.num_interactions(),
            items_with_image,
            items_with_image_path: dataset.items.iter().filter(|i| i.image.is_some()).count(),
            items_with_text: dataset
                .items
                .iter()
                .filter(|i| !i.title.trim().is_empty() || !i.description.trim().is_empty())
                .count(),
            interactions_per_user: PerUser::of(dataset),
            time_span: TimeSpan::of(dataset),
            problem_counts,
            fatal_problems,
            warnings: problems.len() - fatal_problems,
            usable: fatal_problems == 0,
        }
    }
}

impl PerUser {
    fn of(dataset: &Dataset) -> Option<Self> {
        let mut counts: Vec<usize> = dataset.users.iter().map(|u| u.events.len()).collect();
        counts.sort_unstable();
        let n = counts.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => counts[n / 2] as f64,
            _ => (counts[n / 2 - 1] + counts[n / 2]) as f64 / 2.0,
        };
        Some(PerUser { min: counts[0], median, max: counts[n - 1] })
    }
}

impl TimeSpan {
    /// Unix seconds between 1973-03-03 (1e8) and 2100-01-01: small ordinals (1, 2, 3...) and
    /// milliseconds (1.6e12) fall outside, and are shown as raw numbers only.
    pub fn looks_like_unix_seconds(first: f64, last: f64) -> bool {
        const YEAR_2100: f64 = 4_102_444_800.0;
        first >= 1e8 && last < YEAR_2100
    }

    fn of(dataset: &Dataset) -> Option<Self> {
        let times = dataset.users.iter().flat_map(|u| u.events.iter().map(|e| e.timestamp));
        let (first, last) = times.fold(None, |span: Option<(f64, f64)>, t| match span {
            None => Some((t, t)),
            Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
        })?;
        let dates = Self::looks_like_unix_seconds(first, last);
        Some(TimeSpan {
            first,
            last,
            first_date: dates.then(|| utc_date(first)).flatten(),
            last_date: dates.then(|| utc_date(last)).flatten(),
        })
    }
}

/// `YYYY-MM-DD` (UTC) of a unix time in seconds.
fn utc_date(seconds: f64) -> Option<String> {
    let time = time::OffsetDateTime::from_unix_timestamp(seconds.floor() as i64).ok()?;
    Some(time.date().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Event, Item, UserHistory};

    fn user(id: &str, times: &[f64]) -> UserHistory {
        let events = times.iter().map(|&timestamp| Event { item: 0, timestamp, rating: None }).collect();
        UserHistory { id: id.into(), events }
    }

    fn item(title: &str, image: Option<&str>) -> Item {
        Item {
            id: title.into(),
            title: title.into(),
            description: String::new(),
            image: image.map(String::from),
            metadata: Default::default(),
        }
    }

    #[test]
    fn counts_median_and_dates() {
        let items = vec![item("a", Some("images/a.jpg")), item(" ", None)];
        let users = vec![user("u1", &[874_965_478.0, 880_000_000.0]), user("u2", &[893_286_638.0; 4])];
        let problems = vec![Problem::new(ProblemKind::EmptyText, "items.jsonl", "x").at_line(2)];
        let summary = Summary::new(&Dataset::new(None, items, users), &problems, Some(1));
        assert_eq!((summary.users, summary.items, summary.interactions), (2, 2, 6));
        assert_eq!((summary.items_with_image_path, summary.items_with_text), (1, 1));
        assert_eq!(summary.interactions_per_user, Some(PerUser { min: 2, median: 3.0, max: 4 }));
        let span = summary.time_span.unwrap();
        assert_eq!(span.first_date.as_deref(), Some("1997-09-22"));
        assert_eq!(span.last_date.as_deref(), Some("1998-04-22"));
        assert_eq!(summary.problem_counts.get(&ProblemKind::EmptyText), Some(&1));
        assert!(summary.usable);
    }

    #[test]
    fn ordinals_stay_raw_numbers() {
        let summary = Summary::new(&Dataset::new(None, vec![], vec![user("u", &[1.0, 7.0])]), &[], None);
        let span = summary.time_span.unwrap();
        assert_eq!((span.first, span.last, span.first_date), (1.0, 7.0, None));
    }
}
