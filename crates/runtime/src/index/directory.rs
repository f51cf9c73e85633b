//! The id directory of a streamed catalogue (`index.directory`, docs/bundle.md § Index): an id's
//! bucket is FNV-1a 64-bit of its UTF-8 bytes mod `B`; bucket file `b` (`ids-NNNNN.json`) is a JSON
//! array of `[id, row]` pairs sorted by id. A page resolves a session's ids by fetching only their
//! buckets (about 2,048 ids each) instead of the whole `items.json`.

use crate::error::RuntimeError;

/// Ids per bucket the writer aims at: `B` is the smallest power of two ≥ `n / 2048` (≥ 1), so a
/// bucket file is about 50 KB whatever the catalogue's size.
pub const IDS_PER_BUCKET: usize = 2048;

/// FNV-1a, 64-bit, of `bytes` (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The bucket of `id` among `buckets` (≥ 1).
pub fn bucket_of(id: &str, buckets: usize) -> usize {
    (fnv1a64(id.as_bytes()) % buckets.max(1) as u64) as usize
}

/// The writer's bucket count for `n` ids: the smallest power of two ≥ `n / 2048`, at least 1.
pub fn bucket_count(n: usize) -> usize {
    n.div_ceil(IDS_PER_BUCKET).max(1).next_power_of_two()
}

/// One bucket file, parsed and checked: `(id, row)` sorted by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pairs: Vec<(String, u32)>,
}

impl Bucket {
    /// Parses bucket `b` of `buckets` (`file` names it in errors): pairs sorted by id, each id once
    /// and in this bucket, each row below `item_count`.
    pub fn parse(
        bytes: &[u8],
        file: &str,
        b: usize,
        buckets: usize,
        item_count: usize,
    ) -> Result<Bucket, RuntimeError> {
        let pairs: Vec<(String, u32)> =
            serde_json::from_slice(bytes).map_err(|e| RuntimeError::format(file, e.to_string()))?;
        for (i, (id, row)) in pairs.iter().enumerate() {
            if i > 0 && pairs[i - 1].0.as_str() >= id.as_str() {
                return Err(RuntimeError::format(file, format!("entry {i}: id {id:?} is not after the previous one")));
            }
            if *row as usize >= item_count {
                return Err(RuntimeError::format(file, format!("entry {i}: row {row} is not below {item_count}")));
            }
            if bucket_of(id, buckets) != b {
                return Err(RuntimeError::format(file, format!("entry {i}: id {id:?} belongs to another bucket")));
            }
        }
        Ok(Bucket { pairs })
    }

    /// `pairs` as a writer builds them (sorted here).
    pub fn from_pairs(mut pairs: Vec<(String, u32)>) -> Bucket {
        pairs.sort();
        Bucket { pairs }
    }

    /// The file's bytes (what [`Bucket::parse`] reads).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.pairs).expect("pairs serialise")
    }

    /// The row of `id`, `None` when this bucket does not hold it.
    pub fn row_of(&self, id: &str) -> Option<u32> {
        self.pairs.binary_search_by(|(k, _)| k.as_str().cmp(id)).ok().map(|i| self.pairs[i].1)
    }

    pub fn pairs(&self) -> &[(String, u32)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!((bucket_count(1), bucket_count(2048), bucket_count(2049), bucket_count(1_000_000)), (1, 1, 2, 512));
    }

    #[test]
    fn a_bucket_round_trips_and_refuses_what_is_not_its_own() {
        let ids = ["b", "a", "zz", "q"];
        let pairs: Vec<(String, u32)> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| bucket_of(id, 2) == 0)
            .map(|(r, id)| (id.to_string(), r as u32))
            .collect();
        let bucket = Bucket::from_pairs(pairs.clone());
        let parsed = Bucket::parse(&bucket.to_json(), "ids-00000.json", 0, 2, 4).unwrap();
        for (id, row) in &pairs {
            assert_eq!(parsed.row_of(id), Some(*row));
        }
        assert_eq!(parsed.row_of("nope"), None);
        let wrong = Bucket::parse(&bucket.to_json(), "ids-00001.json", 1, 2, 4);
        assert!(pairs.is_empty() || wrong.unwrap_err().to_string().contains("belongs to another bucket"));
        let err = Bucket::parse(br#"[["b",0],["a",1]]"#, "ids-00000.json", 0, 1, 4).unwrap_err();
        assert!(err.to_string().starts_with("ids-00000.json: entry 1"), "{err}");
        let err = Bucket::parse(br#"[["a",9]]"#, "ids-00000.json", 0, 1, 4).unwrap_err();
        assert!(err.to_string().contains("row 9 is not below 4"), "{err}");
    }
}
