//! Item rows as the GPU table (and the benchmark's plain-JS loop) read them: a copy of rows the
//! runtime's `ItemStore` already holds in scan form (int8 codes with `1 / ‖codes‖` as the row scale,
//! or unit-length f16 rows), so the GPU scans the very values the CPU scans and the shards are
//! parsed once, by the store.

use std::ops::Range;

use half::f16;

use crate::store::ItemStore;

/// Rows ready for scoring, `[n, dim]` row-major (read by the GPU backend and the benchmark).
#[derive(Debug, Clone)]
pub enum ScoringRows {
    Int8 { codes: Vec<i8>, score_scales: Vec<f32> },
    F16 { unit: Vec<f16> },
}

impl ScoringRows {
    /// Rows `range` of `store` (clamped to its length), as the store scans them.
    pub fn of_store(store: &ItemStore, range: Range<usize>) -> ScoringRows {
        let (start, end) = (range.start.min(store.len()), range.end.min(store.len()));
        let dim = store.dim();
        match (store.int8_rows(), store.f16_rows()) {
            (Some((codes, scales)), _) => ScoringRows::Int8 {
                codes: codes[start * dim..end * dim].to_vec(),
                score_scales: scales[start..end].to_vec(),
            },
            (None, Some(unit)) => ScoringRows::F16 { unit: unit[start * dim..end * dim].to_vec() },
            (None, None) => ScoringRows::F16 { unit: Vec::new() },
        }
    }
}
