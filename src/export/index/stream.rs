//! The files a streamed reader fetches instead of the whole-catalogue ones (docs/bundle.md § Index):
//! per-partition metadata (`meta-NNNNN.json`), the id directory (`ids-NNNNN.json`) and the most
//! popular rows with their cards (`popular.json`). Written whenever the bundle has an index, from
//! the bundle's own `items.json` and `popularity.json`, so they hold exactly the same data.
//!
//! ```text
//! items.json ─► rows of partition i ─► meta-0000i.json          (index.metadata[i])
//!            ─► (id, row) by FNV-1a 64 mod B ─► ids-0000b.json   (index.directory.files[b])
//! popularity.json + items.json ─► the 1,000 best rows ─► popular.json   (index.popular)
//! ```

use super::super::{Bundle, ExportError};
use crate::runtime::index::directory::{bucket_count, bucket_of, Bucket};
use crate::runtime::index::popular::PopularFile;
use crate::runtime::manifest::{sha256_hex, Directory, FileEntry, DIRECTORY_HASH};
use crate::runtime::popularity::Popularity;
use crate::runtime::ItemMeta;

/// Adds (or replaces) the streamed reader's files of an indexed `bundle` and writes its manifest
/// again. `popular.json` only when the bundle has `popularity.json`. A bundle without an index is
/// left as it is.
pub fn attach_stream(bundle: &mut Bundle) -> Result<(), ExportError> {
    let Some(index) = bundle.manifest.index.clone() else { return Ok(()) };
    let invalid = |reason: String| ExportError::Invalid { reason };
    // Earlier stream files (an export attaches them again after merchandising adds popularity).
    let old: Vec<String> = bundle.manifest.stream_files().into_iter().map(|(_, f)| f.path.clone()).collect();
    bundle.files.retain(|(name, _)| !old.contains(name) && name != "manifest.json");
    let file = |name: &str| bundle.files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice());
    let items = file(&bundle.manifest.items.path).ok_or_else(|| invalid("items.json is not in the bundle".into()))?;
    let meta: Vec<ItemMeta> = serde_json::from_slice(items).map_err(|e| invalid(format!("items.json: {e}")))?;
    let popularity = match &bundle.manifest.popularity {
        Some(entry) => {
            let bytes = file(&entry.path).ok_or_else(|| invalid("popularity.json is not in the bundle".into()))?;
            Some(Popularity::parse(bytes, &entry.path, meta.len()).map_err(|e| invalid(e.to_string()))?)
        }
        None => None,
    };
    let mut added: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entry = |path: String, bytes: Vec<u8>| {
        let e = FileEntry { path: path.clone(), bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) };
        added.push((path, bytes));
        e
    };
    let metadata = bundle
        .manifest
        .shards
        .iter()
        .enumerate()
        .map(|(p, s)| {
            let rows = &meta[s.first_row..s.first_row + s.rows];
            entry(format!("meta-{p:05}.json"), serde_json::to_vec(rows).expect("metadata serialises"))
        })
        .collect();
    let buckets = bucket_count(meta.len());
    let mut pairs: Vec<Vec<(String, u32)>> = vec![Vec::new(); buckets];
    for (row, m) in meta.iter().enumerate() {
        pairs[bucket_of(&m.id, buckets)].push((m.id.clone(), row as u32));
    }
    let files = pairs
        .into_iter()
        .enumerate()
        .map(|(b, pairs)| entry(format!("ids-{b:05}.json"), Bucket::from_pairs(pairs).to_json()))
        .collect();
    let popular = popularity.map(|p| entry("popular.json".into(), PopularFile::compute(&p, &meta).to_json()));
    bundle.files.extend(added);
    bundle.manifest.index = Some(crate::runtime::manifest::IndexEntry {
        metadata: Some(metadata),
        directory: Some(Directory { hash: DIRECTORY_HASH.into(), buckets, files }),
        popular,
        ..index
    });
    bundle.manifest.validate().map_err(|e| invalid(e.to_string()))?;
    bundle.files.push(("manifest.json".into(), bundle.manifest.to_json()));
    Ok(())
}
