//! [`PartitionSet`]: the partitions of an indexed bundle as they arrive, each one kept only once its
//! file has passed the manifest's size and sha256 (`verify_file`) and parsed. A search over it scans
//! what is here and reports the rest missing, so an answer is built from verified rows or not at
//! all: a truncated or tampered partition is refused (the error names its file) and stays absent.

use std::ops::Range;

use super::ivf::{scan_store, PartitionRows};
use crate::engine::verify_file;
use crate::error::RuntimeError;
use crate::kernels::TopK;
use crate::manifest::Manifest;
use crate::store::ItemStore;

/// The main shards of an indexed bundle (shard `i` = partition `i`), each present or not.
#[derive(Debug, Clone)]
pub struct PartitionSet {
    manifest: Manifest,
    /// Partition `i`'s rows once verified.
    stores: Vec<Option<ItemStore>>,
    ranges: Vec<Range<usize>>,
}

impl PartitionSet {
    /// No partition yet. Refuses a manifest without an index.
    pub fn new(manifest: &Manifest) -> Result<PartitionSet, RuntimeError> {
        if manifest.index.is_none() {
            return Err(RuntimeError::NotInBundle { what: "an index".into(), reason: "export with --index".into() });
        }
        let ranges = manifest.shards.iter().map(|s| s.first_row..s.first_row + s.rows).collect();
        Ok(PartitionSet { manifest: manifest.clone(), stores: vec![None; manifest.shards.len()], ranges })
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.stores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }

    /// Whether partition `p`'s rows are here.
    pub fn has(&self, p: usize) -> bool {
        self.stores.get(p).is_some_and(Option::is_some)
    }

    /// Partitions here.
    pub fn present(&self) -> usize {
        self.stores.iter().filter(|s| s.is_some()).count()
    }

    /// The file of partition `p` (its manifest entry's path).
    pub fn file(&self, p: usize) -> Option<&str> {
        self.manifest.shards.get(p).map(|s| s.file.path.as_str())
    }

    /// Adds partition `p` from its file's bytes: size and sha256 against the manifest, then the rows
    /// (finite scales, no empty row). On any error the partition stays absent.
    pub fn insert(&mut self, p: usize, bytes: &[u8]) -> Result<(), RuntimeError> {
        let shard = self.manifest.shards.get(p).ok_or_else(|| {
            RuntimeError::argument("partition", format!("{p} is not below {}", self.manifest.shards.len()))
        })?;
        verify_file(&shard.file, bytes)?;
        let mut store = ItemStore::new(self.manifest.embedding_dtype, self.manifest.dim);
        store.append_shard(&shard.file.path, bytes, shard.rows)?;
        if let Some(r) = (0..shard.rows).find(|&r| !store.is_present(r)) {
            let reason = format!("row {r} is all zero: a main shard row must hold the item's vector");
            return Err(RuntimeError::format(&shard.file.path, reason));
        }
        self.stores[p] = Some(store);
        Ok(())
    }

    /// Row `row` as stored (the vector the sequence tower reads), when its partition is here.
    pub fn vector(&self, row: usize) -> Option<Vec<f32>> {
        let p = self.ranges.partition_point(|r| r.end <= row);
        let range = self.ranges.get(p)?;
        self.stores[p].as_ref().map(|s| s.vector(row - range.start))
    }

    /// Row `row` at unit length (what explanations compare), when its partition is here.
    pub fn unit_vector(&self, row: usize) -> Option<Vec<f32>> {
        let p = self.ranges.partition_point(|r| r.end <= row);
        let range = self.ranges.get(p)?;
        self.stores[p].as_ref().map(|s| s.unit_vector(row - range.start))
    }

    /// Drops partition `p`'s rows (a bounded reader evicts the least recently used); it is then
    /// absent, as if it had not arrived.
    pub fn remove(&mut self, p: usize) {
        if let Some(slot) = self.stores.get_mut(p) {
            *slot = None;
        }
    }

    /// Bytes of partition `p`'s rows in memory (0 when absent).
    pub fn partition_memory(&self, p: usize) -> usize {
        self.stores.get(p).and_then(Option::as_ref).map_or(0, ItemStore::memory_bytes)
    }

    /// Bytes of the rows held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.stores.iter().flatten().map(ItemStore::memory_bytes).sum()
    }
}

impl PartitionRows for PartitionSet {
    fn row_count(&self) -> usize {
        self.manifest.item_count
    }

    /// Scans `range` when it is one whole partition that is here (the search asks for nothing
    /// else; the empty range past the index is trivially here).
    fn scan_rows(&self, range: Range<usize>, query: &[f32], top: &mut TopK) -> bool {
        if range.is_empty() {
            return true;
        }
        let p = self.ranges.partition_point(|r| r.end <= range.start);
        match (self.ranges.get(p), self.stores.get(p)) {
            (Some(r), Some(Some(store))) if *r == range => scan_store(store, 0..store.len(), range.start, query, top),
            _ => false,
        }
    }
}
