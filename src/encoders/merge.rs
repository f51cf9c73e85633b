//! Shard files (`omakase encode --shard I/N`, [`super::shard`]) → the one features file that a single
//! `omakase encode` of the whole catalogue writes, byte for byte: row `i` is row `i / N` of slice
//! `i mod N`.
//!
//! The bytes are equal because each row depends only on its own text or picture (the encoders'
//! kernels give an item the same row whatever else shares its batch; `tests/encode_shards.rs`
//! compares the files) and the file is a deterministic function of the rows, ids, encoders and text
//! template ([`Features::to_bytes`]).
//!
//! Every file's header is read and the set checked first — one file per slice, none missing, all of
//! one catalogue, one `N` and one set of encoders — so a wrong set is reported at once rather than
//! after reading gigabytes of rows; then the slices are loaded one at a time, so memory holds the
//! result and one slice.

use std::path::{Path, PathBuf};

use super::features::{read_header, Features, FeaturesError, Header, ModalityFeatures};
use super::shard::{item_ids_sha256, Shard, ShardRecord};

/// Why a set of shard files does not merge; each names the file concerned, or the slices missing.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no shard files to merge")]
    NoFiles,
    /// Boxed: a [`FeaturesError`] is large, and every merge result would carry its size.
    #[error(transparent)]
    Read(Box<FeaturesError>),
    #[error("{}: not a shard file (no shard record: a whole features file, written without --shard)", path.display())]
    NotAShard { path: PathBuf },
    #[error("{}: {what}, unlike {}: not a slice of the same encoding", path.display(), reference.display())]
    Foreign { path: PathBuf, reference: PathBuf, what: String },
    #[error("slice {shard} given twice: {} and {}", first.display(), second.display())]
    Duplicate { shard: Shard, first: PathBuf, second: PathBuf },
    #[error(
        "{} missing: {have} of {count} slices given (run `omakase encode --shard I/{count}` for each missing I)",
        list(missing)
    )]
    Missing { missing: Vec<Shard>, have: usize, count: usize },
    #[error("{}: {reason}", path.display())]
    Content { path: PathBuf, reason: String },
}

impl From<FeaturesError> for MergeError {
    fn from(err: FeaturesError) -> Self {
        MergeError::Read(Box::new(err))
    }
}

fn list(missing: &[Shard]) -> String {
    let names: Vec<String> = missing.iter().map(Shard::to_string).collect();
    match names.len() {
        1 => format!("slice {} is", names[0]),
        _ => format!("slices {} are", names.join(", ")),
    }
}

/// One shard file, as its header describes it.
struct Slice {
    path: PathBuf,
    shard: Shard,
    record: ShardRecord,
    header: Header,
}

/// Merges the shard files at `paths` (any order) into the whole catalogue's features.
pub fn merge_shards(paths: &[PathBuf]) -> Result<Features, MergeError> {
    let slices = paths.iter().map(|path| read_slice(path)).collect::<Result<Vec<_>, _>>()?;
    let slices = check_set(slices)?;
    let merged = interleave(&slices)?;
    let reference = &slices[0];
    if item_ids_sha256(merged.item_ids.iter().map(String::as_str)) != reference.record.item_ids_sha256 {
        let reason = "the slices' item ids, interleaved, are not the catalogue order its shard record holds".into();
        return Err(MergeError::Content { path: reference.path.clone(), reason });
    }
    Ok(merged)
}

/// A file's header and shard record, checked for consistency with itself.
fn read_slice(path: &Path) -> Result<Slice, MergeError> {
    let header = read_header(path)?;
    let record = header.shard.clone().ok_or_else(|| MergeError::NotAShard { path: path.to_owned() })?;
    let content = |reason: String| MergeError::Content { path: path.to_owned(), reason };
    let shard =
        record.shard().ok_or_else(|| content(format!("shard record {}/{}: I ≥ N", record.index, record.count)))?;
    let expected = shard.len_of(record.catalogue_items);
    if header.item_ids.len() != expected {
        let (held, of) = (header.item_ids.len(), record.catalogue_items);
        return Err(content(format!("holds {held} items; slice {shard} of a {of}-item catalogue holds {expected}")));
    }
    Ok(Slice { path: path.to_owned(), shard, record, header })
}

/// Every slice of one encoding exactly once, in slice order (the first file given is the reference
/// the others are compared with).
fn check_set(mut slices: Vec<Slice>) -> Result<Vec<Slice>, MergeError> {
    let Some(reference) = slices.first() else { return Err(MergeError::NoFiles) };
    for slice in &slices[1..] {
        if let Some(what) = difference(slice, reference) {
            return Err(MergeError::Foreign { path: slice.path.clone(), reference: reference.path.clone(), what });
        }
    }
    slices.sort_by_key(|slice| slice.shard);
    if let Some(pair) = slices.windows(2).find(|pair| pair[0].shard == pair[1].shard) {
        let (first, second) = (pair[0].path.clone(), pair[1].path.clone());
        return Err(MergeError::Duplicate { shard: pair[0].shard, first, second });
    }
    let count = slices[0].shard.count();
    if slices.len() < count {
        let missing = slices[0].shard.siblings().filter(|s| !slices.iter().any(|slice| slice.shard == *s)).collect();
        return Err(MergeError::Missing { missing, have: slices.len(), count });
    }
    Ok(slices)
}

/// What makes `slice` part of another encoding than `reference`, if anything.
fn difference(slice: &Slice, reference: &Slice) -> Option<String> {
    let (a, b) = (&slice.record, &reference.record);
    let (ha, hb) = (&slice.header, &reference.header);
    let short = |sha: &str| sha.chars().take(12).collect::<String>();
    if a.count != b.count {
        Some(format!("it is slice {} of {} slices, not of {}", slice.shard, a.count, b.count))
    } else if a.catalogue_items != b.catalogue_items || a.catalogue_sha256 != b.catalogue_sha256 {
        Some(format!(
            "it was taken from another catalogue ({} items, sha256 {}…; not {} items, sha256 {}…)",
            a.catalogue_items,
            short(&a.catalogue_sha256),
            b.catalogue_items,
            short(&b.catalogue_sha256)
        ))
    } else if ha.text_encoder != hb.text_encoder {
        Some("it was encoded by another text encoder (weights or settings)".into())
    } else if ha.image_encoder != hb.image_encoder {
        let name = |h: &Header| h.image_encoder.as_ref().map_or("none (--text-only)".into(), |e| e.model.clone());
        Some(format!("it was encoded by another image encoder ({}, not {})", name(ha), name(hb)))
    } else if ha.text_template != hb.text_template {
        Some("its texts were composed with another text template".into())
    } else {
        None
    }
}

/// Loads the slices one at a time (in slice order) and places each row at its catalogue position.
fn interleave(slices: &[Slice]) -> Result<Features, MergeError> {
    let mut merged: Option<Features> = None;
    for slice in slices {
        let (features, record) = Features::load_with_shard(&slice.path)?;
        let content = |reason: &str| MergeError::Content { path: slice.path.clone(), reason: reason.into() };
        if record.as_ref() != Some(&slice.record) || features.item_ids != slice.header.item_ids {
            return Err(content("changed while being merged"));
        }
        let merged = merged.get_or_insert_with(|| empty_like(&features, slice.record.catalogue_items));
        if (features.text.dim, features.image.dim) != (merged.text.dim, merged.image.dim) {
            return Err(content("its rows have other widths than the first slice's"));
        }
        place(merged, &features, slice.shard);
    }
    Ok(merged.expect("check_set leaves at least one slice"))
}

/// `items` absent rows with `like`'s widths, encoders and template.
fn empty_like(like: &Features, items: usize) -> Features {
    let absent = |m: &ModalityFeatures| ModalityFeatures::absent(items, m.dim, m.encoder.clone());
    Features {
        item_ids: vec![String::new(); items],
        text: absent(&like.text),
        image: absent(&like.image),
        text_template: like.text_template.clone(),
    }
}

/// Copies `slice`'s ids and present rows to their catalogue positions in `merged`.
fn place(merged: &mut Features, slice: &Features, shard: Shard) {
    for (k, id) in slice.item_ids.iter().enumerate() {
        let at = shard.position(k);
        merged.item_ids[at] = id.clone();
        for (to, from) in [(&mut merged.text, &slice.text), (&mut merged.image, &slice.image)] {
            if let (true, Some(hash)) = (from.present[k], from.hashes[k]) {
                to.set_row(at, from.row(k), hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::features::EncoderIdentity;
    use crate::encoders::text::ItemTextSpec;

    fn identity(model: &str) -> EncoderIdentity {
        EncoderIdentity {
            model: model.into(),
            files_sha256: [("w".to_string(), "ab".repeat(32))].into(),
            settings: Default::default(),
        }
    }

    /// A 7-item catalogue: item `i` has text row `[i, -i]` unless `i` is 3, an image row unless `i` is even.
    fn whole() -> Features {
        let n = 7;
        let mut text = ModalityFeatures::absent(n, 2, Some(identity("t")));
        let mut image = ModalityFeatures::absent(n, 3, Some(identity("i")));
        for i in 0..n {
            let v = i as f32;
            if i != 3 {
                text.set_row(i, &[v, -v], [i as u8; 32]);
            }
            if i % 2 == 1 {
                image.set_row(i, &[v, 0.5, v * v], [100 + i as u8; 32]);
            }
        }
        let item_ids = (0..n).map(|i| format!("item-{i}")).collect();
        Features { item_ids, text, image, text_template: Some(ItemTextSpec::default()) }
    }

    /// Slice `shard` of `features` as `encode --shard` writes it, into `dir`.
    fn write_slice(dir: &Path, features: &Features, shard: Shard, catalogue: &str) -> PathBuf {
        let rows: Vec<usize> = (0..features.len()).filter(|&i| shard.holds(i)).collect();
        let pick = |m: &ModalityFeatures| {
            let mut out = ModalityFeatures::absent(rows.len(), m.dim, m.encoder.clone());
            for (k, &i) in rows.iter().enumerate() {
                if let Some(hash) = m.hashes[i] {
                    out.set_row(k, m.row(i), hash);
                }
            }
            out
        };
        let slice = Features {
            item_ids: rows.iter().map(|&i| features.item_ids[i].clone()).collect(),
            text: pick(&features.text),
            image: pick(&features.image),
            text_template: features.text_template.clone(),
        };
        let record = ShardRecord {
            index: shard.index(),
            count: shard.count(),
            catalogue_items: features.len(),
            catalogue_sha256: catalogue.into(),
            item_ids_sha256: item_ids_sha256(features.item_ids.iter().map(String::as_str)),
        };
        let path = dir.join(format!("{catalogue}-{}-of-{}.safetensors", shard.index(), shard.count()));
        slice.save_shard(&path, &record).unwrap();
        path
    }

    fn slices(dir: &Path, features: &Features, count: usize) -> Vec<PathBuf> {
        Shard::new(0, count).unwrap().siblings().map(|s| write_slice(dir, features, s, "shop")).collect()
    }

    #[test]
    fn slices_in_any_order_merge_to_the_whole_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let features = whole();
        for count in [1, 3, 7, 9] {
            let mut paths = slices(dir.path(), &features, count);
            paths.reverse();
            let merged = merge_shards(&paths).unwrap();
            assert_eq!(merged.to_bytes().unwrap(), features.to_bytes().unwrap(), "{count} slices");
        }
    }

    #[test]
    fn a_missing_slice_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = slices(dir.path(), &whole(), 4);
        paths.remove(2);
        let err = merge_shards(&paths).unwrap_err().to_string();
        assert!(err.starts_with("slice 2/4 is missing: 3 of 4 slices given"), "{err}");
        paths.remove(0);
        let err = merge_shards(&paths).unwrap_err().to_string();
        assert!(err.starts_with("slices 0/4, 2/4 are missing"), "{err}");
    }

    #[test]
    fn a_duplicated_slice_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = slices(dir.path(), &whole(), 3);
        let copy = dir.path().join("copy.safetensors");
        std::fs::copy(&paths[1], &copy).unwrap();
        paths.push(copy);
        let err = merge_shards(&paths).unwrap_err().to_string();
        assert!(err.contains("slice 1/3 given twice") && err.contains("copy.safetensors"), "{err}");
        assert!(err.contains("shop-1-of-3.safetensors"), "{err}");
    }

    #[test]
    fn foreign_slices_are_named_with_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let features = whole();
        let mut paths = slices(dir.path(), &features, 2);
        let other_n = write_slice(dir.path(), &features, Shard::new(1, 3).unwrap(), "shop");
        let other_shop = write_slice(dir.path(), &features, Shard::new(1, 2).unwrap(), "elsewhere");
        let mut text_only = features.clone();
        text_only.image = ModalityFeatures::absent(7, 3, None);
        let text_only_path = dir.path().join("text-only");
        std::fs::create_dir(&text_only_path).unwrap();
        let text_only = write_slice(&text_only_path, &text_only, Shard::new(1, 2).unwrap(), "shop");
        for (path, what) in [
            (other_n, "slice 1/3 of 3 slices, not of 2"),
            (other_shop, "another catalogue"),
            (text_only, "another image encoder (none (--text-only), not i)"),
        ] {
            paths[1] = path.clone();
            let err = merge_shards(&paths).unwrap_err();
            assert!(matches!(err, MergeError::Foreign { .. }), "{err}");
            let err = err.to_string();
            assert!(err.starts_with(&path.display().to_string()) && err.contains(what), "{err}");
        }
    }

    #[test]
    fn a_whole_features_file_is_not_a_slice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.safetensors");
        whole().save(&path).unwrap();
        let err = merge_shards(&[path]).unwrap_err().to_string();
        assert!(err.contains("features.safetensors: not a shard file"), "{err}");
        assert!(matches!(merge_shards(&[]), Err(MergeError::NoFiles)));
    }
}
