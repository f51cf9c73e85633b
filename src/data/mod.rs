//! The data layer: a dataset directory (README.md § Dataset format) read into an in-memory model of items and of
//! each user's chronologically ordered history, importers from other formats into the same model,
//! validation with located problems, and the evaluation splits.
//!
//! Nothing is silently dropped: every row that cannot be used becomes a [`Problem`] with its file,
//! line and field, and the caller decides (via [`Severity`]) whether the dataset is still usable.

use std::collections::HashMap;
use std::path::PathBuf;

pub mod amazon;
pub mod catalogue;
pub mod histories;
#[cfg(feature = "decode")]
pub mod images;
pub mod interactions;
pub mod items;
pub(crate) mod jsonl;
pub mod lines;
pub mod load;
pub mod problem;
pub mod recbole;
pub mod records;
pub mod split;
pub mod summary;
#[cfg(feature = "native")]
pub mod validate;
pub mod write;

pub use load::{load_dir, Loaded};
pub use problem::{Problem, ProblemKind, Severity};
pub use summary::Summary;

/// One product, known by its words and its picture (a learned ID residual, when a run has them, is
/// only added on top for items seen in training: `model::ItemResiduals`).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The catalogue's own identifier (string, unique within a dataset).
    pub id: String,
    /// Short title; may be empty (reported as a problem when the item has no text at all).
    pub title: String,
    /// Longer free text; empty when absent.
    pub description: String,
    /// Image path relative to the dataset root, as written in `items.jsonl`; `None` when absent.
    pub image: Option<String>,
    /// Every other field of the source record (year, genres, price, url...), kept verbatim.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// One interaction in a user's history. `item` indexes [`Dataset::items`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub item: u32,
    /// Seconds or any monotone ordinal; only the order matters (ties keep file order).
    pub timestamp: f64,
    pub rating: Option<f32>,
}

/// A user and their history, oldest first; events with equal timestamps keep their file order.
#[derive(Debug, Clone, PartialEq)]
pub struct UserHistory {
    pub id: String,
    pub events: Vec<Event>,
}

/// A loaded dataset: the catalogue and the users, in the order they first appear in the source.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Directory image paths are relative to (`None` for importers without images).
    pub root: Option<PathBuf>,
    pub items: Vec<Item>,
    pub users: Vec<UserHistory>,
    item_index: HashMap<String, u32>,
}

impl Dataset {
    /// Builds a dataset from items (ids must be unique: the loaders report duplicates before this).
    pub fn new(root: Option<PathBuf>, items: Vec<Item>, users: Vec<UserHistory>) -> Self {
        let item_index = items.iter().enumerate().map(|(i, item)| (item.id.clone(), i as u32)).collect();
        Dataset { root, items, users, item_index }
    }

    /// Index into [`Dataset::items`] of the item with this catalogue id.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.item_index.get(id).copied()
    }

    /// Total number of interactions over all users.
    pub fn num_interactions(&self) -> usize {
        self.users.iter().map(|u| u.events.len()).sum()
    }
}
