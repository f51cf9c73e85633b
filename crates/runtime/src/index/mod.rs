//! Approximate search over a large catalogue: a coarse partition of the rows (IVF) whose centroids a
//! page downloads first, so that only the rows of the few partitions nearest to a visitor's user
//! vector need to arrive before a recommendation (docs/bundle.md § Index).
//!
//! ```text
//! user vector ─► unit query ─► cosine with every centroid (p × d f32) ─► the nprobe best partitions
//!   ─► exact int8 (or f16) scores of their rows, the same kernels and numbers as the full scan
//!   ─► rows past the index (products added at run time, delta shards) always scanned ─► top-K
//! ```
//!
//! The answer is a subset of the exact scan's candidates with the exact scan's scores, so an item
//! it returns is ranked exactly as the full scan would rank it; what it can miss is an item of an
//! unprobed partition (recall@10 against the full scan is measured: bench/README.md § Index).
//!
//! - [`centroids`]: the centroids file (parse, probe).
//! - [`ivf`]: [`Ivf`], partitions over rows; the search over a loaded [`crate::store::ItemStore`]
//!   or over the partitions that have arrived ([`PartitionRows`]).
//! - [`partitions`]: [`PartitionSet`], the partitions a page has received, each verified.
//! - [`directory`]: the id directory's hash and bucket files (a streamed page resolves ids by them).
//! - [`popular`]: `popular.json`, the most popular rows with their cards (a streamed first visit).
//! - [`stream`]: [`StreamedCatalogue`], a catalogue that arrives file by file (the browser's
//!   streamed bundle): what a request still needs, answers from what is here, bounded memory.
//! - [`recommend`]: a loaded [`crate::Runtime`]'s recommendations and lists (scenarios, rules)
//!   through the index.

pub mod centroids;
pub mod directory;
pub mod ivf;
pub mod partitions;
pub mod popular;
pub mod recommend;
pub mod stream;

pub use centroids::Centroids;
pub use ivf::{unit_query, Ivf, PartitionRows, Probe, Search};
pub use partitions::PartitionSet;
pub use recommend::{IndexedAnswer, IndexedList};
pub use stream::{StreamAnswer, StreamFile, StreamRequest, StreamSearch, StreamStats, StreamedCatalogue};

#[cfg(test)]
mod tests;
