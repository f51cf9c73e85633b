//! Full validation of a dataset directory: load both files, check every image, summarise.
//! The engine behind `omakase validate` (the CLI only prints).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::images::{check_images, ImageCheck};
use super::load::{load_dir, Loaded, INTERACTIONS_FILE, ITEMS_FILE};
use super::{Problem, Summary};

/// Everything `validate` found.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The dataset; `loaded.problems` holds every problem, image ones included, ordered by file
    /// (`items.jsonl`, `interactions.csv`) then line (file-level ones last).
    pub loaded: Loaded,
    /// Which items have a usable image.
    pub images: ImageCheck,
    pub summary: Summary,
}

impl Validation {
    /// Every problem, in report order.
    pub fn problems(&self) -> &[Problem] {
        &self.loaded.problems
    }
}

/// Loads `dir`, decodes every image, and summarises. `on_image_checked(done, total)` is called after
/// each image, from any thread (for a progress bar).
pub fn validate_dir(dir: &Path, on_image_checked: &(dyn Fn(usize, usize) + Sync)) -> Validation {
    let mut loaded = load_dir(dir);
    let total = loaded.dataset.items.iter().filter(|item| item.image.is_some()).count();
    let done = AtomicUsize::new(0);
    let tick = || on_image_checked(done.fetch_add(1, Ordering::Relaxed) + 1, total);
    let images = check_images(dir, &loaded.dataset.items, Some(&loaded.item_lines), &tick);

    loaded.problems.extend(images.problems.iter().cloned());
    loaded.problems.sort_by_key(|p| (file_rank(&p.file), p.line.unwrap_or(usize::MAX)));
    let summary = Summary::new(&loaded.dataset, &loaded.problems, Some(images.usable_count()));
    Validation { loaded, images, summary }
}

fn file_rank(file: &str) -> u8 {
    match file {
        ITEMS_FILE => 0,
        INTERACTIONS_FILE => 1,
        _ => 2,
    }
}
