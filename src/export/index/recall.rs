//! Recall of the index against the exact scan, for every `nprobe` at once: for each query, the exact
//! int8 top-`k` (the runtime's full scan) and the rank of each hit's partition in the query's
//! probe order; the index at `nprobe` finds exactly the hits whose partition ranks below `nprobe`
//! (it scans those partitions with the same kernel and scores), so one pass gives the whole curve.
//! The export picks its default `nprobe` from this curve, and `omakase index-recall` reports it.

use crate::runtime::index::{unit_query, Ivf};
use crate::runtime::kernels::TopK;
use crate::runtime::store::ItemStore;

/// Mean recall@k of the index against the exact scan, by `nprobe` (`curve[i]` is at `nprobe = i + 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecallCurve {
    pub k: usize,
    pub queries: usize,
    pub curve: Vec<f64>,
}

impl RecallCurve {
    /// Recall at `nprobe` (clamped to the partitions).
    pub fn at(&self, nprobe: usize) -> f64 {
        self.curve[nprobe.clamp(1, self.curve.len()) - 1]
    }

    /// The smallest `nprobe` whose recall reaches `target` (every partition when none does).
    pub fn smallest_reaching(&self, target: f64) -> usize {
        self.curve.iter().position(|&r| r >= target).map_or(self.curve.len(), |i| i + 1)
    }
}

/// One query: a user (or item) vector `[d]` and the rows its answer must leave out.
pub struct Query<'a> {
    pub vector: &'a [f32],
    pub exclude: &'a [u32],
}

/// The curve over `queries` on `store` (the bundle's rows, in partition order) and `ivf`.
pub fn recall_curve(store: &ItemStore, ivf: &Ivf, queries: &[Query<'_>], k: usize) -> RecallCurve {
    let p = ivf.partitions().len();
    let mut found_by = vec![0f64; p + 1];
    let mut counted = 0;
    for query in queries {
        let Ok(unit) = unit_query(query.vector, store.dim()) else { continue };
        let exclude: Vec<usize> = query.exclude.iter().map(|&r| r as usize).collect();
        let mut top = TopK::with_excluded(k, &exclude);
        store.scan(&unit, &mut top);
        let hits = top.into_sorted();
        if hits.is_empty() {
            continue;
        }
        let order = ivf.centroids().probe(&unit, p);
        let mut rank_of = vec![0usize; p];
        order.iter().enumerate().for_each(|(rank, &partition)| rank_of[partition] = rank);
        for hit in &hits {
            // A row past the index is always scanned: found at any nprobe.
            let rank = ivf.partition_of(hit.index).map_or(0, |partition| rank_of[partition]);
            found_by[rank + 1] += 1.0 / hits.len() as f64;
        }
        counted += 1;
    }
    let mut curve = Vec::with_capacity(p);
    let mut cumulative = found_by[0];
    for found in &found_by[1..] {
        cumulative += found;
        curve.push(if counted == 0 { 1.0 } else { cumulative / counted as f64 });
    }
    RecallCurve { k, queries: counted, curve }
}
