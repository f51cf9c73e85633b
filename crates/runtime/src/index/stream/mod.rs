//! A catalogue that arrives file by file (issue 17): what a browser holds of an indexed bundle
//! when it streams it instead of downloading every file (docs/bundle.md § Index, "Streamed
//! reader's files").
//!
//! ```text
//! load:    manifest ─► sequence tower + centroids (+ popular.json)         ─► StreamedCatalogue
//! request: session ids ─► their directory buckets ─► the session rows' partitions (vectors)
//!          ─► user vector ─► the nprobe nearest partitions (rows) ─► the hits' partitions' metadata
//! ```
//!
//! [`StreamedCatalogue::needs`] says which files a request still needs, stage by stage (each stage
//! depends on the one before); the caller fetches them and hands each to
//! [`StreamedCatalogue::insert`], which checks its size and sha256 against the manifest before it
//! parses it (a truncated or tampered file is refused naming it, and nothing of it is kept). Then
//! [`StreamedCatalogue::answer`] answers exactly as `index::recommend::answer` answers on the whole
//! bundle (same rows, same scores, same order), or, with `partial`, at once from what is here,
//! reporting the probed partitions that are missing.
//!
//! Memory is bounded: partitions (rows and metadata) beyond [`StreamedCatalogue::memory_limit`]
//! are evicted least recently used first, never one the current request uses.

mod answer;

use std::collections::HashMap;

pub use answer::{StreamAnswer, StreamRequest, StreamSearch};

use super::centroids::Centroids;
use super::directory::Bucket;
use super::ivf::Ivf;
use super::partitions::PartitionSet;
use super::popular::PopularFile;
use crate::engine::{safe_link, verify_file, ItemMeta};
use crate::error::RuntimeError;
use crate::gguf::Gguf;
use crate::manifest::{FileEntry, Manifest};
use crate::rules::Columns;
use crate::tower::SequenceTower;

/// Default bound on the partitions kept (rows and metadata): 96 MiB, so that a worker holding the
/// towers, the centroids, the directory buckets and the wasm heap's slack stays within 150 MB
/// (issue 17's budget) whatever the catalogue's size.
pub const DEFAULT_MEMORY_LIMIT: usize = 96 << 20;

/// What one bundle file is to a streamed reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamFile {
    /// Partition `p`'s rows (main shard `p`).
    Rows(usize),
    /// Partition `p`'s metadata (`index.metadata[p]`).
    Metadata(usize),
    /// Directory bucket `b`.
    Bucket(usize),
    /// `popular.json`.
    Popular,
    /// `columns.json` (only when a rule names a column).
    Columns,
}

/// Counts for a page's progress and memory figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    /// Partitions of the index.
    pub partitions: usize,
    /// Partitions whose rows and metadata are both here.
    pub present: usize,
    /// Bytes the partitions here take in memory (rows and metadata).
    pub memory_bytes: usize,
}

/// An indexed bundle whose files arrive one by one (module docs).
#[derive(Debug, Clone)]
pub struct StreamedCatalogue {
    manifest: Manifest,
    sequence: SequenceTower,
    ivf: Ivf,
    rows: PartitionSet,
    metadata: Vec<Option<Vec<ItemMeta>>>,
    /// Estimated heap bytes of each partition's metadata.
    metadata_bytes: Vec<usize>,
    buckets: Vec<Option<Bucket>>,
    popular: Option<PopularFile>,
    columns: Option<Columns>,
    files: HashMap<String, StreamFile>,
    /// Partition `p` was last used (inserted or read by a request) at this tick.
    last_used: Vec<u64>,
    tick: u64,
    /// The partitions of the request being answered: never evicted.
    current: Vec<usize>,
    memory_limit: usize,
}

impl StreamedCatalogue {
    /// Whether `manifest` can be streamed: an index with its metadata and directory, and no delta
    /// shards (those rows belong to no partition; such a bundle is loaded whole).
    pub fn streamable(manifest: &Manifest) -> bool {
        manifest.deltas.is_empty()
            && manifest.index.as_ref().is_some_and(|i| i.metadata.is_some() && i.directory.is_some())
    }

    /// A catalogue with nothing but the model and the centroids: `sequence_tower` and `centroids`
    /// are those files' bytes, each checked (size, sha256) before it is parsed. Refuses a manifest
    /// that cannot be streamed ([`StreamedCatalogue::streamable`]).
    pub fn new(manifest: &Manifest, sequence_tower: &[u8], centroids: &[u8]) -> Result<Self, RuntimeError> {
        let index = match &manifest.index {
            Some(index) if Self::streamable(manifest) => index,
            _ => {
                return Err(RuntimeError::NotInBundle {
                    what: "a streamed index (index.metadata and index.directory)".into(),
                    reason: "export it again with this omakase; bundles with delta shards load whole".into(),
                })
            }
        };
        let directory = index.directory.as_ref().expect("streamable");
        let tower = &manifest.sequence_tower;
        verify_file(tower, sequence_tower)?;
        let sequence = SequenceTower::load(&Gguf::parse(sequence_tower, &tower.path)?, &tower.path, &manifest.model)?;
        verify_file(&index.centroids, centroids)?;
        let centroids = Centroids::parse(centroids, &index.centroids.path, index.partitions, index.dim)?;
        let sizes: Vec<usize> = manifest.shards.iter().map(|s| s.rows).collect();
        let ivf = Ivf::new(centroids, &sizes, index.nprobe)?;
        let p = index.partitions;
        let mut files = HashMap::new();
        for (i, shard) in manifest.shards.iter().enumerate() {
            files.insert(shard.file.path.clone(), StreamFile::Rows(i));
        }
        for (i, entry) in index.metadata.iter().flatten().enumerate() {
            files.insert(entry.path.clone(), StreamFile::Metadata(i));
        }
        for (b, entry) in directory.files.iter().enumerate() {
            files.insert(entry.path.clone(), StreamFile::Bucket(b));
        }
        if let Some(popular) = &index.popular {
            files.insert(popular.path.clone(), StreamFile::Popular);
        }
        if let Some(columns) = &manifest.columns {
            files.insert(columns.path.clone(), StreamFile::Columns);
        }
        Ok(StreamedCatalogue {
            manifest: manifest.clone(),
            sequence,
            ivf,
            rows: PartitionSet::new(manifest)?,
            metadata: vec![None; p],
            metadata_bytes: vec![0; p],
            buckets: vec![None; directory.buckets],
            popular: None,
            columns: None,
            files,
            last_used: vec![0; p],
            tick: 0,
            current: Vec::new(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn ivf(&self) -> &Ivf {
        &self.ivf
    }

    /// Bytes of partitions (rows and metadata) kept before the least recently used are evicted.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Sets [`StreamedCatalogue::memory_limit`] (evicting now if it is exceeded).
    pub fn set_memory_limit(&mut self, bytes: usize) {
        self.memory_limit = bytes;
        self.evict(None);
    }

    /// What `path` is to this reader, `None` for a file it never needs.
    pub fn kind_of(&self, path: &str) -> Option<StreamFile> {
        self.files.get(path).copied()
    }

    /// The manifest's entry of `file` (`None`: the bundle has no such file).
    pub fn entry(&self, file: StreamFile) -> Option<&FileEntry> {
        let index = self.manifest.index.as_ref()?;
        match file {
            StreamFile::Rows(p) => self.manifest.shards.get(p).map(|s| &s.file),
            StreamFile::Metadata(p) => index.metadata.as_ref()?.get(p),
            StreamFile::Bucket(b) => index.directory.as_ref()?.files.get(b),
            StreamFile::Popular => index.popular.as_ref(),
            StreamFile::Columns => self.manifest.columns.as_ref(),
        }
    }

    /// Whether `file` is here.
    pub fn has(&self, file: StreamFile) -> bool {
        match file {
            StreamFile::Rows(p) => self.rows.has(p),
            StreamFile::Metadata(p) => self.metadata.get(p).is_some_and(Option::is_some),
            StreamFile::Bucket(b) => self.buckets.get(b).is_some_and(Option::is_some),
            StreamFile::Popular => self.popular.is_some(),
            StreamFile::Columns => self.columns.is_some(),
        }
    }

    /// Whether partition `p` can be searched: its rows and its metadata are both here.
    pub fn partition_here(&self, p: usize) -> bool {
        self.rows.has(p) && self.has(StreamFile::Metadata(p))
    }

    /// Adds a file by its manifest path: size and sha256 first, then its content's checks. On any
    /// error nothing of it is kept (the error names the file). Returns what it was.
    pub fn insert(&mut self, path: &str, bytes: &[u8]) -> Result<StreamFile, RuntimeError> {
        let kind = self
            .kind_of(path)
            .ok_or_else(|| RuntimeError::argument(path, "is not a file a streamed reader of this bundle fetches"))?;
        let entry = self.entry(kind).expect("a listed file").clone();
        if !matches!(kind, StreamFile::Rows(_)) {
            verify_file(&entry, bytes)?; // a partition's rows are checked by `PartitionSet::insert`
        }
        let n = self.manifest.item_count;
        match kind {
            StreamFile::Rows(p) => {
                self.rows.insert(p, bytes)?;
                self.touch(p);
                self.evict(Some(p));
            }
            StreamFile::Metadata(p) => {
                let meta = parse_metadata(bytes, &entry.path, self.manifest.shards[p].rows)?;
                self.metadata_bytes[p] = meta.iter().map(meta_heap_bytes).sum();
                self.metadata[p] = Some(meta);
                self.touch(p);
                self.evict(Some(p));
            }
            StreamFile::Bucket(b) => {
                let bucket = Bucket::parse(bytes, &entry.path, b, self.buckets.len(), n)?;
                self.buckets[b] = Some(bucket);
            }
            StreamFile::Popular => self.popular = Some(PopularFile::parse(bytes, &entry.path, n)?),
            StreamFile::Columns => self.columns = Some(Columns::parse(bytes, &entry.path, n)?),
        }
        Ok(kind)
    }

    /// Partitions in file order (= popularity order, most popular first) not yet here, with the
    /// files each still needs: what a page prefetches in the background.
    pub fn prefetch_order(&self) -> Vec<(usize, Vec<StreamFile>)> {
        (0..self.ivf.partitions().len())
            .filter(|&p| !self.partition_here(p))
            .map(|p| {
                let files = [StreamFile::Rows(p), StreamFile::Metadata(p)];
                (p, files.into_iter().filter(|f| !self.has(*f)).collect())
            })
            .collect()
    }

    pub fn stats(&self) -> StreamStats {
        let partitions = self.ivf.partitions().len();
        StreamStats {
            partitions,
            present: (0..partitions).filter(|&p| self.partition_here(p)).count(),
            memory_bytes: self.memory_bytes(),
        }
    }

    /// Bytes the partitions here take (rows and metadata).
    pub fn memory_bytes(&self) -> usize {
        (0..self.metadata.len()).map(|p| self.partition_bytes(p)).sum()
    }

    fn partition_bytes(&self, p: usize) -> usize {
        self.rows.partition_memory(p) + if self.metadata[p].is_some() { self.metadata_bytes[p] } else { 0 }
    }

    fn touch(&mut self, p: usize) {
        self.tick += 1;
        self.last_used[p] = self.tick;
    }

    /// Evicts least recently used partitions while over the limit, never one of the current
    /// request's nor `keep` (the one just inserted).
    fn evict(&mut self, keep: Option<usize>) {
        let mut total = self.memory_bytes();
        while total > self.memory_limit {
            let victim = (0..self.metadata.len())
                .filter(|&p| Some(p) != keep && !self.current.contains(&p) && self.partition_bytes(p) > 0)
                .min_by_key(|&p| (self.last_used[p], p));
            let Some(p) = victim else { break };
            total -= self.partition_bytes(p);
            self.rows.remove(p);
            self.metadata[p] = None;
            self.metadata_bytes[p] = 0;
        }
    }
}

/// Partition metadata: `rows` entries of `items.json`'s shape, ids unique, links made safe.
fn parse_metadata(bytes: &[u8], file: &str, rows: usize) -> Result<Vec<ItemMeta>, RuntimeError> {
    let meta: Vec<ItemMeta> = serde_json::from_slice(bytes).map_err(|e| RuntimeError::format(file, e.to_string()))?;
    if meta.len() != rows {
        return Err(RuntimeError::format(file, format!("{} entries, the partition has {rows} rows", meta.len())));
    }
    let mut seen = std::collections::HashSet::with_capacity(meta.len());
    if let Some((i, m)) = meta.iter().enumerate().find(|(_, m)| !seen.insert(m.id.as_str())) {
        return Err(RuntimeError::format(file, format!("entry {i}: id {:?} appears twice", m.id)));
    }
    Ok(meta.into_iter().map(|m| ItemMeta { link: m.link.as_deref().and_then(safe_link), ..m }).collect())
}

/// Heap bytes of one card: its strings and the struct (an estimate that errs high).
fn meta_heap_bytes(m: &ItemMeta) -> usize {
    let text =
        m.id.len() + m.title.len() + m.image.as_ref().map_or(0, String::len) + m.link.as_ref().map_or(0, String::len);
    text + std::mem::size_of::<ItemMeta>() + 32
}
