//! Loading a dataset directory (README.md § Dataset format) into a [`Dataset`] plus every [`Problem`] found.
//!
//! Both files are streamed. Problem paths are relative to the dataset directory (`items.jsonl`,
//! `interactions.csv`). Images are not touched here: [`super::images::check_images`] checks them
//! (native only), so loading stays cheap and also works without a file system for images.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::interactions::read_interactions;
use super::items::read_items;
use super::lines::open_reported;
use super::{Dataset, Problem, Severity};

/// The catalogue file of a dataset directory.
pub const ITEMS_FILE: &str = "items.jsonl";
/// The interactions file of a dataset directory.
pub const INTERACTIONS_FILE: &str = "interactions.csv";

/// A loaded dataset and everything wrong with it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// What could be used; `root` is the dataset directory.
    pub dataset: Dataset,
    /// For each item of `dataset.items`, its 1-based line in `items.jsonl`.
    pub item_lines: Vec<usize>,
    /// Items file problems (by line), then interactions file problems (by line).
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// Whether no problem is fatal.
    pub fn is_usable(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Fatal)
    }
}

/// Loads `dir/items.jsonl` and `dir/interactions.csv`.
///
/// Never fails: a missing or unreadable file is a fatal problem. When no item could be read, the
/// interactions are not parsed (every row would be an unknown item); only their absence is reported.
pub fn load_dir(dir: &Path) -> Loaded {
    load_with(Some(dir.to_path_buf()), |name, problems| open_reported(&dir.join(name), name, problems))
}

/// [`load_dir`] on files that `open(name, problems)` opens ([`ITEMS_FILE`], then
/// [`INTERACTIONS_FILE`]), reporting to `problems` a file it cannot open (`None`); `root` becomes
/// [`Dataset::root`]. In-memory files load the same way as a directory (the fuzz target does so).
pub fn load_with<R: BufRead>(
    root: Option<PathBuf>,
    mut open: impl FnMut(&str, &mut Vec<Problem>) -> Option<R>,
) -> Loaded {
    let mut problems = Vec::new();

    let items = match open(ITEMS_FILE, &mut problems) {
        Some(reader) => read_items(reader, ITEMS_FILE),
        None => Default::default(),
    };
    problems.extend(items.problems);

    let users = match open(INTERACTIONS_FILE, &mut problems) {
        Some(reader) if !items.items.is_empty() => {
            let index: std::collections::HashMap<&str, u32> =
                items.items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i as u32)).collect();
            let read = read_interactions(reader, INTERACTIONS_FILE, |id| index.get(id).copied());
            problems.extend(read.problems);
            read.users
        }
        _ => Vec::new(),
    };

    Loaded { dataset: Dataset::new(root, items.items, users), item_lines: items.lines, problems }
}
