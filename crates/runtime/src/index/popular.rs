//! `popular.json` (`index.popular`, docs/bundle.md § Index): the catalogue's most popular rows with
//! their list scores and metadata, so a streamed page shows a first visit's (or a `popular`) list
//! without `popularity.json` (8 bytes per item) or `items.json` (every item's card).
//!
//! ```text
//! { "item_count": 1000000, "rows": [[17, 1.0], [3, 0.93], …], "items": [{ "id": …, "title": … }, …] }
//! ```

use serde::{Deserialize, Serialize};

use crate::engine::{safe_link, ItemMeta};
use crate::error::RuntimeError;
use crate::popularity::Popularity;

/// Rows `popular.json` holds at most: a popular list asks for far fewer (k ≤ 1,000), and a filter
/// that keeps one item in a hundred still leaves ten.
pub const POPULAR_ROWS: usize = 1000;

/// `popular.json` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularFile {
    /// The manifest's `item_count`.
    pub item_count: usize,
    /// `(row, score)` in rank order: score descending, the lower row first on ties (the order the
    /// whole-bundle list ranks by: [`Popularity::score`]).
    pub rows: Vec<(u32, f32)>,
    /// The metadata of `rows[i]`, as its `items.json` entry.
    pub items: Vec<ItemMeta>,
}

impl PopularFile {
    /// The [`POPULAR_ROWS`] best rows of `popularity` with their metadata (`meta`, every row's).
    pub fn compute(popularity: &Popularity, meta: &[ItemMeta]) -> PopularFile {
        let mut rows: Vec<(u32, f32)> = (0..meta.len()).map(|r| (r as u32, popularity.score(r))).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rows.truncate(POPULAR_ROWS);
        let items = rows.iter().map(|&(r, _)| meta[r as usize].clone()).collect();
        PopularFile { item_count: meta.len(), rows, items }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("popular rows serialise")
    }

    /// Parses and checks `popular.json` (`file` names it): as many items as rows, rows below
    /// `item_count` and each once, scores finite in [0, 1] and in rank order, links made safe.
    pub fn parse(bytes: &[u8], file: &str, item_count: usize) -> Result<PopularFile, RuntimeError> {
        let mut parsed: PopularFile =
            serde_json::from_slice(bytes).map_err(|e| RuntimeError::format(file, e.to_string()))?;
        let bad = |why: String| Err(RuntimeError::format(file, why));
        if parsed.item_count != item_count || parsed.items.len() != parsed.rows.len() || parsed.rows.len() > item_count
        {
            return bad(format!(
                "item_count {}, {} rows and {} items; manifest.json's item_count is {item_count}",
                parsed.item_count,
                parsed.rows.len(),
                parsed.items.len()
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(parsed.rows.len());
        for (i, &(row, score)) in parsed.rows.iter().enumerate() {
            if row as usize >= item_count || !seen.insert(row) {
                return bad(format!("rows[{i}]: row {row} is out of range or listed twice"));
            }
            if !(score.is_finite() && (0.0..=1.0).contains(&score)) {
                return bad(format!("rows[{i}]: score {score} is not in [0, 1]"));
            }
            if i > 0 && score > parsed.rows[i - 1].1 {
                return bad(format!("rows[{i}]: score {score} is above the previous row's"));
            }
        }
        for item in &mut parsed.items {
            item.link = item.link.as_deref().and_then(safe_link);
        }
        Ok(parsed)
    }
}
