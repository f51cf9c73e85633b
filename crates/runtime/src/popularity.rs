//! `popularity.json`: how popular each item is, computed at export from the shop's interactions and
//! stored in the bundle, so a first-time visitor (no history) and the `popular` scenario get a list
//! without any request leaving the device (docs/bundle.md § "popularity.json"):
//!
//! ```text
//! { "item_count": 3, "half_life_days": 7.0, "reference_time": 893286638.0, "interactions": 42,
//!   "count": [30, 12, 0], "trending": [3.25, 11.5, 0.0] }
//! ```
//!
//! `count` is every interaction with the item; `trending` weighs each by
//! `0.5 ^ ((reference_time − t) / half_life)` (timestamps read as seconds, `reference_time` the
//! latest one), so the last weeks count most. Lists rank by `trending` scaled to [0, 1] (its maximum
//! is 1), the scale boosts are written in; equal scores go to the lower row.

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// Seconds in a day: the half-life is given in days, timestamps are read as seconds.
pub const DAY_SECONDS: f64 = 86_400.0;

/// `popularity.json` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularityFile {
    pub item_count: usize,
    pub half_life_days: f64,
    pub reference_time: f64,
    pub interactions: u64,
    pub count: Vec<u64>,
    pub trending: Vec<f32>,
}

impl PopularityFile {
    /// Counts and time-decayed counts of `events` (`(row, timestamp)`, rows below `item_count`;
    /// others are skipped) with a half-life of `half_life_days`.
    pub fn compute(item_count: usize, events: &[(u32, f64)], half_life_days: f64) -> PopularityFile {
        let reference_time = events.iter().map(|e| e.1).filter(|t| t.is_finite()).fold(f64::NEG_INFINITY, f64::max);
        let reference_time = if reference_time.is_finite() { reference_time } else { 0.0 };
        let half_life = (half_life_days * DAY_SECONDS).max(f64::MIN_POSITIVE);
        let mut count = vec![0u64; item_count];
        let mut trending = vec![0f64; item_count];
        let mut interactions = 0;
        for &(row, t) in events {
            let Some(c) = count.get_mut(row as usize) else { continue };
            *c += 1;
            interactions += 1;
            let age = if t.is_finite() { (reference_time - t).max(0.0) } else { 0.0 };
            trending[row as usize] += 0.5f64.powf(age / half_life);
        }
        PopularityFile {
            item_count,
            half_life_days,
            reference_time,
            interactions,
            count,
            trending: trending.into_iter().map(|x| round_significant(x, 5) as f32).collect(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("popularity serialises")
    }
}

fn round_significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// Loaded popularity: the list score of every bundle row.
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    count: Vec<u64>,
    /// `trending / max(trending)`, in [0, 1].
    score: Vec<f32>,
    half_life_days: f64,
}

impl Popularity {
    /// Parses and checks `popularity.json` (`file` names it in errors).
    pub fn parse(bytes: &[u8], file: &str, item_count: usize) -> Result<Popularity, RuntimeError> {
        let parsed: PopularityFile =
            serde_json::from_slice(bytes).map_err(|e| RuntimeError::format(file, e.to_string()))?;
        Popularity::from_file(&parsed, file, item_count)
    }

    pub fn from_file(parsed: &PopularityFile, file: &str, item_count: usize) -> Result<Popularity, RuntimeError> {
        let bad = |why: String| Err(RuntimeError::format(file, why));
        if parsed.item_count != item_count || parsed.count.len() != item_count || parsed.trending.len() != item_count {
            return bad(format!(
                "item_count {}, {} counts and {} trending values; manifest.json's item_count is {item_count}",
                parsed.item_count,
                parsed.count.len(),
                parsed.trending.len()
            ));
        }
        if let Some(r) = parsed.trending.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
            return bad(format!("trending[{r}] is {}, not a finite non-negative number", parsed.trending[r]));
        }
        if !(parsed.half_life_days.is_finite() && parsed.half_life_days > 0.0) {
            return bad(format!("half_life_days {} must be positive", parsed.half_life_days));
        }
        let max = parsed.trending.iter().fold(0f32, |m, &x| m.max(x));
        let score = parsed.trending.iter().map(|&x| if max > 0.0 { x / max } else { 0.0 }).collect();
        Ok(Popularity { count: parsed.count.clone(), score, half_life_days: parsed.half_life_days })
    }

    /// The list score of `row` in [0, 1] (0 for a row added after export).
    pub fn score(&self, row: usize) -> f32 {
        self.score.get(row).copied().unwrap_or(0.0)
    }

    /// Interactions with `row` in the export's data.
    pub fn count(&self, row: usize) -> u64 {
        self.count.get(row).copied().unwrap_or(0)
    }

    pub fn half_life_days(&self) -> f64 {
        self.half_life_days
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_interactions_weigh_more() {
        let day = DAY_SECONDS;
        // Item 0: 4 views 28 days before the last event; item 1: 2 views on the last day; 2: none.
        let events = [(0, 0.0), (0, 0.0), (0, 0.0), (0, 0.0), (1, 28.0 * day), (1, 28.0 * day), (9, 5.0)];
        let file = PopularityFile::compute(3, &events, 7.0);
        assert_eq!(file.count, vec![4, 2, 0]);
        assert_eq!(file.interactions, 6);
        assert_eq!(file.reference_time, 28.0 * day);
        assert_eq!(file.trending, vec![0.25, 2.0, 0.0]); // 4 · 0.5^4
        let p = Popularity::parse(&file.to_json(), "popularity.json", 3).unwrap();
        assert_eq!((p.score(0), p.score(1), p.score(2), p.score(99)), (0.125, 1.0, 0.0, 0.0));
        let e = Popularity::parse(&file.to_json(), "popularity.json", 4).unwrap_err().to_string();
        assert!(e.starts_with("popularity.json: ") && e.contains("item_count is 4"), "{e}");
    }
}
