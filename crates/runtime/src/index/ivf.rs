//! [`Ivf`]: the bundle's partitions (partition `i` = main shard `i`, rows contiguous) with their
//! centroids, and the search: probe the nearest centroids, score the probed partitions' rows with
//! the scan kernels, keep the top-K.
//!
//! The rows come through [`PartitionRows`], so the same search runs over a fully loaded
//! [`ItemStore`] (native, `omakase recommend`) and over the partitions a page has received so far
//! (`crate::index::stream`): a partition that is not there is reported missing, never guessed.

use std::ops::Range;

use super::centroids::Centroids;
use crate::engine::{verify_file, FileSource};
use crate::error::RuntimeError;
use crate::kernels::{self, TopK};
use crate::manifest::Manifest;
use crate::store::ItemStore;

/// Rows a search can scan: the catalogue's rows by their row number.
pub trait PartitionRows {
    /// Rows in the catalogue. The index covers the first [`Ivf::item_count`]; rows after them
    /// (products added at run time, delta shards) belong to no partition and are always scanned.
    fn row_count(&self) -> usize;
    /// Scans rows `range` into `top` (row `r` as index `r`) with the unit-length `query`, as the
    /// full scan scores them. Returns false, scanning nothing, when those rows are not here.
    fn scan_rows(&self, range: Range<usize>, query: &[f32], top: &mut TopK) -> bool;
}

impl PartitionRows for ItemStore {
    fn row_count(&self) -> usize {
        self.len()
    }

    fn scan_rows(&self, range: Range<usize>, query: &[f32], top: &mut TopK) -> bool {
        let first = range.start;
        scan_store(self, range, first, query, top)
    }
}

/// Scans `store`'s rows `local` into `top`, its row `local.start` as index `first_index` (the
/// scan kernels' own numbering, so a partition held in a store of its own reports catalogue rows
/// and the selection's exclusions apply to them). False when `local` is not within the store.
pub(crate) fn scan_store(
    store: &ItemStore,
    local: Range<usize>,
    first_index: usize,
    query: &[f32],
    top: &mut TopK,
) -> bool {
    let d = store.dim();
    if local.end > store.len() || local.start > local.end {
        return false;
    }
    if local.is_empty() {
        return true;
    }
    let values = local.start * d..local.end * d;
    match (store.int8_rows(), store.f16_rows()) {
        (Some((codes, scales)), _) => kernels::scan_int8(&codes[values], &scales[local], d, query, first_index, top),
        (None, Some(unit)) => kernels::scan_f16(&unit[values], d, query, first_index, top),
        (None, None) => return false,
    }
    true
}

/// The result of one search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// `(row, cosine)`, best first (ties to the lower row), as the full scan scores them.
    pub hits: Vec<(u32, f32)>,
    /// The partitions the query probed, nearest centroid first.
    pub probed: Vec<usize>,
    /// The probed partitions whose rows were not there (not arrived yet, or refused): the answer
    /// is then the best of what was scanned, and fetching these improves it.
    pub missing: Vec<usize>,
}

/// The partitions one [`Ivf::scan`] probed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// Nearest centroid first.
    pub probed: Vec<usize>,
    /// Probed but not there (see [`Search::missing`]).
    pub missing: Vec<usize>,
}

/// An inverted-file index: `p` centroids and the row range of each partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Ivf {
    centroids: Centroids,
    /// Contiguous from row 0, in partition order; each non-empty.
    partitions: Vec<Range<usize>>,
    nprobe: usize,
}

impl Ivf {
    /// An index of `centroids` over partitions of `sizes[i]` rows (partition `i` follows `i − 1`),
    /// probing `nprobe` partitions by default.
    pub fn new(centroids: Centroids, sizes: &[usize], nprobe: usize) -> Result<Ivf, RuntimeError> {
        if sizes.len() != centroids.len() {
            let reason = format!("{} partitions for {} centroids", sizes.len(), centroids.len());
            return Err(RuntimeError::argument("index partitions", reason));
        }
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return Err(RuntimeError::argument("index partitions", format!("partition {i} is empty")));
        }
        if nprobe == 0 || nprobe > sizes.len() {
            return Err(RuntimeError::argument("nprobe", format!("{nprobe} is not in 1..={}", sizes.len())));
        }
        let mut first = 0;
        let partitions = sizes
            .iter()
            .map(|&s| {
                first += s;
                first - s..first
            })
            .collect();
        Ok(Ivf { centroids, partitions, nprobe })
    }

    /// The bundle's index, `None` when it has none. The manifest was validated (the index agrees
    /// with the shards in count and width); the centroids file is checked (size, sha256) before
    /// it is parsed, and refused naming it.
    pub fn load(manifest: &Manifest, files: &dyn FileSource) -> Result<Option<Ivf>, RuntimeError> {
        let Some(index) = &manifest.index else { return Ok(None) };
        let entry = &index.centroids;
        let bytes = files.get(&entry.path).ok_or_else(|| RuntimeError::MissingFile { file: entry.path.clone() })?;
        verify_file(entry, bytes)?;
        let centroids = Centroids::parse(bytes, &entry.path, index.partitions, index.dim)?;
        let sizes: Vec<usize> = manifest.shards.iter().map(|s| s.rows).collect();
        Ivf::new(centroids, &sizes, index.nprobe).map(Some)
    }

    pub fn centroids(&self) -> &Centroids {
        &self.centroids
    }

    /// Row range of every partition, in partition order.
    pub fn partitions(&self) -> &[Range<usize>] {
        &self.partitions
    }

    /// Partitions probed by default (the manifest's `index.nprobe`).
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Rows the index covers (`item_count` of its bundle).
    pub fn item_count(&self) -> usize {
        self.partitions.last().map_or(0, |p| p.end)
    }

    /// The partition holding `row`, `None` past the index.
    pub fn partition_of(&self, row: usize) -> Option<usize> {
        (row < self.item_count()).then(|| self.partitions.partition_point(|p| p.end <= row))
    }

    /// The `k` best rows for the unit-length `query` among the `nprobe` partitions nearest to it
    /// and every row past the index, never one of `exclude`. With `nprobe` = every partition it is
    /// exactly the full scan's answer.
    pub fn top_k(&self, rows: &dyn PartitionRows, query: &[f32], k: usize, exclude: &[u32], nprobe: usize) -> Search {
        let exclude: Vec<usize> = exclude.iter().map(|&r| r as usize).collect();
        let mut top = TopK::with_excluded(k, &exclude);
        let Probe { probed, missing } = self.scan(rows, query, nprobe, &mut top);
        let hits = top.into_sorted().into_iter().map(|h| (h.index as u32, h.score)).collect();
        Search { hits, probed, missing }
    }

    /// The search's scan into a selection the caller made: the `nprobe` partitions nearest to the
    /// unit-length `query`, then every row past the index, pushed into `top` as the full scan
    /// pushes them. `top` carries the exclusions and, for a ruled list ([`TopK::ruled`]), the
    /// merchandising rules, which then act on the probed rows exactly as on the full scan's.
    pub fn scan(&self, rows: &dyn PartitionRows, query: &[f32], nprobe: usize, top: &mut TopK<'_>) -> Probe {
        let probed = self.centroids.probe(query, nprobe);
        let mut missing = Vec::new();
        for &p in &probed {
            if !rows.scan_rows(self.partitions[p].clone(), query, top) {
                missing.push(p);
            }
        }
        let past = self.item_count()..rows.row_count().max(self.item_count());
        rows.scan_rows(past, query, top);
        Probe { probed, missing }
    }

    /// [`Ivf::scan`], then, while `top` holds fewer than its `k` hits, the next-nearest partitions
    /// one at a time until it is full or every partition was scanned. Merchandising rules keep a
    /// list at `k` items by admitting further candidates; a filter that keeps few of the probed
    /// rows would otherwise shorten the list only because the index was used. Without rules the
    /// probed partitions fill `top` (they hold far more than `k` rows), so this is [`Ivf::scan`].
    pub fn scan_filling(&self, rows: &dyn PartitionRows, query: &[f32], nprobe: usize, top: &mut TopK<'_>) -> Probe {
        let mut probe = self.scan(rows, query, nprobe, top);
        if top.len() < top.k() {
            // The full ranking's first `nprobe` are the partitions just scanned (same order, ties
            // to the lower partition either way).
            for p in self.centroids.probe(query, self.partitions.len()).into_iter().skip(probe.probed.len()) {
                if top.len() >= top.k() {
                    break;
                }
                if !rows.scan_rows(self.partitions[p].clone(), query, top) {
                    probe.missing.push(p);
                }
                probe.probed.push(p);
            }
        }
        probe
    }
}

/// `user` at unit length, exactly as the runtime's full scan normalises it (so both paths score a
/// row identically); refuses a wrong width or a non-finite value.
pub fn unit_query(user: &[f32], dim: usize) -> Result<Vec<f32>, RuntimeError> {
    if user.len() != dim || user.iter().any(|v| !v.is_finite()) {
        return Err(RuntimeError::argument("user vector", format!("need {dim} finite values, got {}", user.len())));
    }
    let norm = user.iter().zip(user).map(|(x, y)| x * y).sum::<f32>().sqrt();
    let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    Ok(user.iter().map(|v| v * inv).collect())
}
