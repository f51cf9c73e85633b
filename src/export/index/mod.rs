//! The bundle's index (docs/bundle.md § Index): the catalogue partitioned by spherical k-means,
//! rows written partition by partition (the most popular partition first), one main shard per
//! partition, the centroids in `index-centroids.bin`, and a default `nprobe` measured on the
//! catalogue itself.
//!
//! ```text
//! item vectors ─► unit rows ─► k-means on a seeded sample (kmeans.rs) ─► every row's partition
//!   ─► partitions by popularity (training interactions), rows in catalogue order within each
//!   ─► the catalogue permuted to that order (items.json, main and explain shards follow it)
//!   ─► items-NNNNN.bin = partition NNNNN; index-centroids.bin; nprobe = the smallest reaching
//!      the target recall@10 against the exact scan both on sampled item queries ("similar") and
//!      on the user vectors of sampled training histories ("for you"; recall.rs)
//!   ─► a streamed reader's files: per-partition metadata, id directory, popular.json (stream.rs)
//! ```

pub mod kmeans;
pub mod recall;
pub mod stream;

use std::collections::HashMap;

use candle_core::Tensor;

use super::{build_bundle, Bundle, CatalogueVectors, ExportError, ExportJob};
use crate::data::{Dataset, Event, Item, UserHistory};
use crate::runtime::index::{Centroids, Ivf};
use crate::runtime::manifest::{sha256_hex, FileEntry, IndexEntry, IndexKind, Provenance, ShardEntry};
use crate::runtime::store::{encode_shard, ItemStore};
use crate::runtime::EmbeddingDtype;
use kmeans::{cluster, unit_rows, KMeans};
use recall::{recall_curve, Query};

/// When `omakase export` writes an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexChoice {
    /// When the main rows exceed [`AUTO_ROW_BYTES`].
    Auto,
    Always,
    Never,
}

/// Main rows above this many bytes get an index under [`IndexChoice::Auto`]: 16 MiB, about 250k
/// items at d = 64 in int8. Below it the whole catalogue fits the first-download budget of 20 MB
/// (issue 17) with the towers beside it, and the exact scan costs nothing in recall or requests.
pub const AUTO_ROW_BYTES: u64 = 16 << 20;

/// How the index is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexOptions {
    /// Partitions `p`; `None`: `⌈√n⌉` rounded to a power of two (1024 at a million items).
    pub partitions: Option<usize>,
    /// Default `nprobe`; `None`: measured (see [`IndexOptions::target_recall`]).
    pub nprobe: Option<usize>,
    /// Recall@10 against the exact scan that the measured `nprobe` reaches, on item queries and on
    /// user vectors alike.
    pub target_recall: f64,
    /// Rows k-means is fitted on.
    pub sample: usize,
    pub iterations: usize,
    pub seed: u64,
    /// Item queries, and user sessions, the `nprobe` is measured on.
    pub queries: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            partitions: None,
            nprobe: None,
            target_recall: 0.99,
            sample: 65_536,
            iterations: 12,
            seed: 17,
            queries: 256,
        }
    }
}

impl IndexOptions {
    /// The partition count for `n` rows.
    pub fn partitions_for(&self, n: usize) -> usize {
        self.partitions.unwrap_or_else(|| ((n as f64).sqrt().ceil() as usize).next_power_of_two()).clamp(1, n.max(1))
    }
}

/// Whether `choice` indexes a catalogue of `n` rows of `row_bytes` each.
pub fn wants_index(choice: IndexChoice, n: usize, row_bytes: usize) -> bool {
    match choice {
        IndexChoice::Always => true,
        IndexChoice::Never => false,
        IndexChoice::Auto => (n as u64).saturating_mul(row_bytes as u64) > AUTO_ROW_BYTES,
    }
}

/// The partition of a catalogue: centroids and member rows in bundle order.
#[derive(Debug, Clone, PartialEq)]
pub struct Partitioning {
    /// `[p, d]`, unit length, in bundle order.
    pub centroids: Vec<f32>,
    /// Catalogue rows of each partition, in bundle order, each ascending; none empty.
    pub members: Vec<Vec<u32>>,
}

impl Partitioning {
    /// Catalogue row of each bundle row (the permutation the bundle is written in).
    pub fn order(&self) -> Vec<u32> {
        self.members.concat()
    }

    pub fn sizes(&self) -> Vec<usize> {
        self.members.iter().map(Vec::len).collect()
    }
}

/// Partitions `vectors` (`[n, d]`): k-means, empty clusters dropped, partitions by total
/// `popularity` (per row, e.g. training interactions), then size, then centroid, descending.
pub fn partition(vectors: &[f32], d: usize, popularity: &[u64], opts: &IndexOptions) -> Partitioning {
    let n = vectors.len() / d;
    let units = unit_rows(vectors, d);
    let fit = KMeans {
        partitions: opts.partitions_for(n),
        sample: opts.sample,
        iterations: opts.iterations,
        seed: opts.seed,
    };
    let clustering = cluster(&units, d, &fit);
    let p = clustering.centroids.len() / d;
    let mut members = vec![Vec::new(); p];
    let mut weight = vec![0u64; p];
    for (row, &c) in clustering.assignment.iter().enumerate() {
        members[c as usize].push(row as u32);
        weight[c as usize] += popularity.get(row).copied().unwrap_or(0);
    }
    let mut kept: Vec<usize> = (0..p).filter(|&c| !members[c].is_empty()).collect();
    kept.sort_by(|&a, &b| weight[b].cmp(&weight[a]).then(members[b].len().cmp(&members[a].len())).then(a.cmp(&b)));
    Partitioning {
        centroids: kept.iter().flat_map(|&c| clustering.centroids[c * d..(c + 1) * d].iter().copied()).collect(),
        members: kept.iter().map(|&c| std::mem::take(&mut members[c])).collect(),
    }
}

/// Interactions per catalogue row in the training histories (`n` rows).
pub fn popularity(users: &[crate::data::UserHistory], n: usize) -> Vec<u64> {
    let mut counts = vec![0u64; n];
    for event in users.iter().flat_map(|u| &u.events) {
        if let Some(c) = counts.get_mut(event.item as usize) {
            *c += 1;
        }
    }
    counts
}

/// `dataset` with its catalogue in `order` (catalogue row of each new row): items reordered and
/// every interaction pointing at its item's new row, so everything computed from the dataset after
/// it (items.json, popularity, columns) follows the bundle's rows.
pub fn permute_dataset(dataset: &Dataset, order: &[u32]) -> Dataset {
    let mut new_row = vec![0u32; order.len()];
    order.iter().enumerate().for_each(|(new, &old)| new_row[old as usize] = new as u32);
    let items = order.iter().map(|&r| dataset.items[r as usize].clone()).collect();
    let users = dataset
        .users
        .iter()
        .map(|u| UserHistory {
            id: u.id.clone(),
            events: u.events.iter().map(|e| Event { item: new_row[e.item as usize], ..*e }).collect(),
        })
        .collect();
    Dataset::new(dataset.root.clone(), items, users)
}

/// `vectors` (`[n, d]` and per-row explain vectors) in `order`.
pub fn permute_vectors(vectors: &CatalogueVectors, order: &[u32], d: usize) -> CatalogueVectors {
    let at = |r: u32| r as usize;
    CatalogueVectors {
        fused: order.iter().flat_map(|&r| vectors.fused[at(r) * d..(at(r) + 1) * d].iter().copied()).collect(),
        text_only: order.iter().map(|&r| vectors.text_only[at(r)].clone()).collect(),
        image_only: order.iter().map(|&r| vectors.image_only[at(r)].clone()).collect(),
    }
}

/// Turns `bundle`, built from the catalogue already permuted to `partitioning`'s order
/// (`permuted`: its vectors), into an indexed bundle: main shards replaced by one per partition,
/// the centroids file added, `nprobe` measured (unless given), the version its fields need.
///
/// `sessions` (bundle rows, oldest first; e.g. [`recent_sessions`]) are the visitors the measured
/// `nprobe` must serve: their user vectors, from the bundle's own sequence tower, are queries
/// besides the item vectors. A user vector blends several items and lies between partitions more
/// often than an item does, so it usually needs more partitions (amazon-office: 10 of 64 reach
/// 0.99 on item queries, about 28 reach 0.98 on test users). Without sessions (a synthetic
/// catalogue) only item queries are measured.
pub fn attach(
    bundle: &mut Bundle,
    permuted: &CatalogueVectors,
    partitioning: &Partitioning,
    job: &ExportJob,
    opts: &IndexOptions,
    sessions: &[Vec<u32>],
) -> Result<(), ExportError> {
    let d = bundle.manifest.dim;
    let n = bundle.manifest.item_count;
    if partitioning.sizes().iter().sum::<usize>() != n || permuted.fused.len() != n * d {
        let reason = format!("the index partitions {} rows of {n} items", partitioning.sizes().iter().sum::<usize>());
        return Err(ExportError::Invalid { reason });
    }
    // Before the shards are replaced: the bundle as built still loads as a whole.
    let users = match opts.nprobe {
        None => user_queries(bundle, sessions)?,
        Some(_) => Vec::new(),
    };
    let old: Vec<String> = bundle.manifest.shards.iter().map(|s| s.file.path.clone()).collect();
    bundle.files.retain(|(name, _)| !old.contains(name) && name != "manifest.json");
    let mut entry = |path: String, bytes: Vec<u8>| {
        let e = FileEntry { path: path.clone(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) };
        bundle.files.push((path, bytes));
        e
    };
    let mut shards = Vec::with_capacity(partitioning.members.len());
    let mut first_row = 0;
    for (p, size) in partitioning.sizes().into_iter().enumerate() {
        let rows: Vec<Option<&[f32]>> =
            (first_row..first_row + size).map(|r| Some(&permuted.fused[r * d..(r + 1) * d])).collect();
        let file = entry(format!("items-{p:05}.bin"), encode_shard(job.shard, d, &rows));
        shards.push(ShardEntry { file, first_row, rows: size });
        first_row += size;
    }
    let centroids = Centroids::from_values(partitioning.centroids.clone(), d)
        .map_err(|e| ExportError::Invalid { reason: e.to_string() })?;
    let nprobe = match opts.nprobe {
        Some(nprobe) => nprobe.clamp(1, shards.len()),
        None => measured_nprobe(&permuted.fused, d, job.shard, &centroids, &partitioning.sizes(), opts, &users)?,
    };
    let centroids_entry = entry("index-centroids.bin".into(), centroids.to_bytes());
    let manifest = &mut bundle.manifest;
    manifest.shards = shards;
    manifest.index = Some(IndexEntry {
        kind: IndexKind::Ivf,
        item_count: n,
        dim: d,
        partitions: partitioning.members.len(),
        nprobe,
        seed: opts.seed,
        centroids: centroids_entry,
        metadata: None,
        directory: None,
        popular: None,
    });
    manifest.format_version = manifest.format_version.max(manifest.required_version());
    manifest.validate().map_err(|e| ExportError::Invalid { reason: e.to_string() })?;
    bundle.files.push(("manifest.json".into(), bundle.manifest.to_json()));
    Ok(())
}

/// An indexed bundle from the catalogue in its own order: [`permute_vectors`], the items in
/// partition order, [`build_bundle`], [`attach`] (the export does the same with the whole dataset
/// permuted, so that what merchandising computes from it follows the rows too).
#[allow(clippy::too_many_arguments)]
pub fn indexed_bundle(
    model: &crate::model::ModelConfig,
    tensors: &HashMap<String, Tensor>,
    vectors: &CatalogueVectors,
    items: &[Item],
    job: &ExportJob,
    provenance: Provenance,
    partitioning: &Partitioning,
    opts: &IndexOptions,
) -> Result<Bundle, ExportError> {
    let order = partitioning.order();
    let permuted = permute_vectors(vectors, &order, model.dim);
    let permuted_items: Vec<Item> = order.iter().map(|&r| items[r as usize].clone()).collect();
    let mut bundle = build_bundle(model, tensors, &permuted, &permuted_items, job, provenance)?;
    attach(&mut bundle, &permuted, partitioning, job, opts, &[])?;
    stream::attach_stream(&mut bundle)?;
    Ok(bundle)
}

/// A user query for [`measured_nprobe`]: the user vector `[d]` and the bundle rows its answer leaves
/// out (the session's, sorted, deduplicated).
pub type UserQuery = (Vec<f32>, Vec<u32>);

/// The smallest `nprobe` whose recall@10 against the exact scan reaches `opts.target_recall` both
/// on `opts.queries` item vectors of the catalogue (evenly spaced rows; each leaves its own row out)
/// and on `users` (user vectors with the rows their sessions hold, left out as the runtime does),
/// on the rows as the bundle stores them.
pub fn measured_nprobe(
    bundle_rows: &[f32],
    d: usize,
    dtype: EmbeddingDtype,
    centroids: &Centroids,
    sizes: &[usize],
    opts: &IndexOptions,
    users: &[UserQuery],
) -> Result<usize, ExportError> {
    let mut store = ItemStore::new(dtype, d);
    bundle_rows.chunks_exact(d).for_each(|row| store.push(row));
    let ivf =
        Ivf::new(centroids.clone(), sizes, sizes.len()).map_err(|e| ExportError::Invalid { reason: e.to_string() })?;
    let n = store.len();
    let step = (n / opts.queries.max(1)).max(1);
    let rows: Vec<u32> = (0..n).step_by(step).take(opts.queries).map(|r| r as u32).collect();
    let vectors: Vec<Vec<f32>> = rows.iter().map(|&r| store.vector(r as usize)).collect();
    let excludes: Vec<[u32; 1]> = rows.iter().map(|&r| [r]).collect();
    let items: Vec<Query<'_>> = vectors.iter().zip(&excludes).map(|(v, e)| Query { vector: v, exclude: e }).collect();
    let by_items = recall_curve(&store, &ivf, &items, 10).smallest_reaching(opts.target_recall);
    if users.is_empty() {
        return Ok(by_items);
    }
    let users: Vec<Query<'_>> = users.iter().map(|(v, e)| Query { vector: v, exclude: e }).collect();
    Ok(by_items.max(recall_curve(&store, &ivf, &users, 10).smallest_reaching(opts.target_recall)))
}

/// Up to `count` sessions for [`attach`]: the last `max_len` interactions (bundle rows, oldest
/// first) of evenly spaced users with at least two.
pub fn recent_sessions(users: &[UserHistory], max_len: usize, count: usize) -> Vec<Vec<u32>> {
    let eligible: Vec<&UserHistory> = users.iter().filter(|u| u.events.len() >= 2).collect();
    let step = (eligible.len() / count.max(1)).max(1);
    eligible
        .iter()
        .step_by(step)
        .take(count)
        .map(|u| {
            let events = &u.events[u.events.len().saturating_sub(max_len.max(1))..];
            events.iter().map(|e| e.item).collect()
        })
        .collect()
}

/// The user vector of each session through the bundle as built (its sequence tower and rows: the
/// browser's numbers), with the session's rows to leave out.
fn user_queries(bundle: &Bundle, sessions: &[Vec<u32>]) -> Result<Vec<UserQuery>, ExportError> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let files: HashMap<String, Vec<u8>> =
        bundle.files.iter().filter(|(name, _)| name != "manifest.json").cloned().collect();
    let invalid = |e: crate::runtime::RuntimeError| ExportError::Invalid { reason: e.to_string() };
    let runtime = crate::runtime::Runtime::from_manifest(&bundle.manifest, &files).map_err(invalid)?;
    sessions
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut exclude = s.clone();
            exclude.sort_unstable();
            exclude.dedup();
            Ok((runtime.user_vector(s).map_err(invalid)?, exclude))
        })
        .collect()
}
