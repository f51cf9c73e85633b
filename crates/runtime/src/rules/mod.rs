//! Merchandising rules inside the scan (docs/rules.md): filters on item metadata, exclusions,
//! boosts, pins and diversity, applied before the top-K so that a filtered list still has k items
//! and costs about what an unfiltered one does.
//!
//! ```text
//! attribute / flag text ─► parse (Rules) ─┐
//! columns.json (bundle) ─► Columns ───────┼─► compile (CompiledRules: row sets, boosts, groups)
//! facts (run time) ─► Facts ──────────────┘        │
//! scan (kernels) ─► TopK::ruled ◄── Admission ─────┘ ─► pins inserted ─► the list (crate::scenario)
//! ```
//!
//! - [`bits`]: row sets.
//! - [`columns`]: `columns.json`, the bundle's metadata columns and their indexes.
//! - [`facts`]: run-time facts that replace column values (stock, price).
//! - [`parse`]: the rules' text grammar.
//! - [`compile`]: rules against a catalogue, the top-K's [`crate::kernels::Admission`].

pub mod bits;
pub mod columns;
pub mod compile;
pub mod facts;
pub mod parse;

pub use bits::Bits;
pub use columns::{Column, ColumnData, ColumnKind, Columns, ColumnsFile};
pub use compile::CompiledRules;
pub use facts::{Fact, Facts};
pub use parse::{RuleText, Rules};

#[cfg(test)]
mod tests;
