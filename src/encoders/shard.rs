//! Sharded encoding: slice `I` of `N` of a catalogue (`omakase encode --shard I/N`), and the record a
//! shard file carries so that [`super::merge`] can tell whether slices belong together.
//!
//! Slice `I` of `N` holds the items at catalogue positions `i` with `i mod N == I` (strided), rather
//! than `N` contiguous ranges:
//! - balance: catalogues are often ordered by category, source or age, which go with text length and
//!   with whether there is a picture, so one contiguous range can take far longer than another, and a
//!   job lasts as long as its slowest slice; every strided slice gets the same mix;
//! - a catalogue that grows at its end keeps every existing item in its slice (its position, so
//!   `i mod N`, is unchanged), so each slice's previous file, its cache, still holds its rows;
//!   contiguous ranges would all shift and miss;
//! - a slice's size follows from the catalogue size, `I` and `N` alone, so merge checks counts without
//!   a table of positions.
//!
//! Pure code (no file system): it compiles for wasm32.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::Item;

/// Slice `index` of `count` (0-based, `index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// Why `I/N` is not a slice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a slice I/N (0-based I < N, e.g. 0/4 ... 3/4): {why}")]
pub struct ShardParseError {
    given: String,
    why: &'static str,
}

impl Shard {
    /// Slice `index` of `count`; `None` unless `index < count`.
    pub fn new(index: usize, count: usize) -> Option<Self> {
        (index < count).then_some(Shard { index, count })
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether the item at catalogue `position` belongs to this slice.
    pub fn holds(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// How many of a catalogue's `items` this slice holds.
    pub fn len_of(&self, items: usize) -> usize {
        (items + self.count - 1 - self.index) / self.count
    }

    /// The catalogue position of this slice's `k`-th item.
    pub fn position(&self, k: usize) -> usize {
        self.index + k * self.count
    }

    /// Every slice of this one's `count`, in order.
    pub fn siblings(&self) -> impl Iterator<Item = Shard> {
        let count = self.count;
        (0..count).map(move |index| Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |why| ShardParseError { given: s.to_string(), why };
        let (index, count) = s.split_once('/').ok_or_else(|| refuse("no `/`"))?;
        let index: usize = index.trim().parse().map_err(|_| refuse("I is not a whole number"))?;
        let count: usize = count.trim().parse().map_err(|_| refuse("N is not a whole number"))?;
        if count == 0 {
            return Err(refuse("N must be at least 1"));
        }
        Shard::new(index, count).ok_or_else(|| refuse("I must be less than N (slices count from 0)"))
    }
}

/// What a shard file belongs to, kept in its header (`shard` in the features metadata): merge accepts
/// slices only when all have the same `count`, catalogue and encoders (the encoders are the file's
/// own `text_encoder` / `image_encoder`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// `I`: this file holds the items at positions `i` with `i mod count == index`.
    pub index: usize,
    /// `N`, the number of slices.
    pub count: usize,
    /// Items in the whole catalogue.
    pub catalogue_items: usize,
    /// [`catalogue_sha256`] of the catalogue the slice was taken from: slices of an edited catalogue
    /// do not merge (their texts or pictures may disagree).
    pub catalogue_sha256: String,
    /// [`item_ids_sha256`] of the whole catalogue: merge recomputes it from the slices' ids interleaved,
    /// which checks that every row lands at its item's position.
    pub item_ids_sha256: String,
}

impl ShardRecord {
    /// The record of `shard` of `items`.
    pub fn new(shard: Shard, items: &[Item]) -> Self {
        ShardRecord {
            index: shard.index,
            count: shard.count,
            catalogue_items: items.len(),
            catalogue_sha256: catalogue_sha256(items),
            item_ids_sha256: item_ids_sha256(items.iter().map(|item| item.id.as_str())),
        }
    }

    /// The slice it describes; `None` for a record whose index is not below its count.
    pub fn shard(&self) -> Option<Shard> {
        Shard::new(self.index, self.count)
    }
}

/// sha256 over every item as loaded (id, title, description, image path, other fields), in catalogue
/// order. The loaded items rather than the bytes of `items.jsonl`: they are what encoding reads, so
/// a reformatted file is the same catalogue, and a re-ordered or edited one is not.
pub fn catalogue_sha256(items: &[Item]) -> String {
    let mut hasher = Sha256::new();
    for item in items {
        let metadata = serde_json::to_string(&item.metadata).unwrap_or_default();
        let image = item.image.as_deref().map_or_else(|| "\0none".to_string(), |path| format!("\u{1}{path}"));
        for field in [item.id.as_str(), &item.title, &item.description, &image, &metadata] {
            put(&mut hasher, field);
        }
    }
    // sha2's digest formats itself as lowercase hex (cache::hex would make an import circle:
    // cache → features → shard).
    format!("{:x}", hasher.finalize())
}

/// sha256 over the item ids, in order.
pub fn item_ids_sha256<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        put(&mut hasher, id);
    }
    // sha2's digest formats itself as lowercase hex (cache::hex would make an import circle:
    // cache → features → shard).
    format!("{:x}", hasher.finalize())
}

/// A length prefix keeps neighbouring fields from running into each other (`ab`,`c` vs `a`,`bc`).
fn put(hasher: &mut Sha256, field: &str) {
    hasher.update((field.len() as u64).to_le_bytes());
    hasher.update(field.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, title: &str) -> Item {
        Item {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            image: None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn parses_i_of_n_and_refuses_the_rest() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::new(2, 4).unwrap());
        assert_eq!("0/1".parse::<Shard>().unwrap().to_string(), "0/1");
        for (bad, why) in [("4/4", "less than N"), ("1/0", "at least 1"), ("a/2", "I is not"), ("3", "no `/`")] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn the_slices_of_a_catalogue_cover_every_position_once() {
        for (items, count) in [(10, 4), (3, 5), (0, 2), (7, 1)] {
            let mut seen = vec![0; items];
            for shard in Shard::new(0, count).unwrap().siblings() {
                let held: Vec<usize> = (0..items).filter(|&i| shard.holds(i)).collect();
                assert_eq!(held.len(), shard.len_of(items), "{shard} of {items}");
                assert_eq!(held, (0..held.len()).map(|k| shard.position(k)).collect::<Vec<_>>());
                held.iter().for_each(|&i| seen[i] += 1);
            }
            assert!(seen.iter().all(|&n| n == 1), "{items} items, {count} slices: {seen:?}");
        }
    }

    #[test]
    fn the_record_changes_with_the_catalogue() {
        let items = [item("a", "Mug"), item("b", "Pen")];
        let record = ShardRecord::new(Shard::new(1, 2).unwrap(), &items);
        assert_eq!((record.index, record.count, record.catalogue_items), (1, 2, 2));
        assert_eq!(record.item_ids_sha256, item_ids_sha256(["a", "b"]));
        let edited = [item("a", "Mug"), item("b", "Blue pen")];
        assert_ne!(catalogue_sha256(&edited), record.catalogue_sha256);
        assert_eq!(item_ids_sha256(edited.iter().map(|i| i.id.as_str())), record.item_ids_sha256);
        assert_ne!(item_ids_sha256(["ab", "c"]), item_ids_sha256(["a", "bc"]));
    }
}
