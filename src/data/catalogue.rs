//! The rules every catalogue reader shares (`items.jsonl`, RecBole `.item`, the Amazon meta file):
//! item ids are unique (the first row wins, later ones are reported and skipped), an item without any
//! text is kept and reported (the model handles a missing modality), ids that differ only in Unicode
//! normalisation are reported (kept apart: ids are matched byte for byte everywhere, as a browser's
//! `data-item-id` is), and a file without a usable row is fatal.

use std::collections::HashMap;

use unicode_normalization_alignments::UnicodeNormalization;

use super::lines::excerpt;
use super::{Item, Problem, ProblemKind};

/// Longest id quoted in a message.
const QUOTE_CHARS: usize = 60;

/// What was read from a catalogue file.
#[derive(Debug, Default)]
pub struct ItemsRead {
    /// The usable items, in file order.
    pub items: Vec<Item>,
    /// For each item, the 1-based line it was read from (to locate later problems, e.g. images).
    pub lines: Vec<usize>,
    /// Problems, in line order; fatal ones (unreadable, empty, nothing usable) make the file unusable.
    pub problems: Vec<Problem>,
}

/// Collects a catalogue's items in file order while its reader reports row-level problems.
#[derive(Debug, Default)]
pub(crate) struct CatalogueBuilder {
    items: Vec<Item>,
    lines: Vec<usize>,
    first_line_of: HashMap<String, usize>,
    /// NFC form of each id → the first line with that form and its spelling there.
    first_of_nfc: HashMap<String, (usize, String)>,
}

impl CatalogueBuilder {
    /// Adds `item`, read from `line`, unless its id was defined before (reported at `id_field`).
    pub fn push(&mut self, item: Item, line: usize, file: &str, id_field: &str, problems: &mut Vec<Problem>) {
        if let Some(&first) = self.first_line_of.get(&item.id) {
            let id = excerpt(&item.id, QUOTE_CHARS);
            let message = format!("{id_field} \"{id}\" is already defined on line {first}; row skipped");
            problems.push(Problem::located(ProblemKind::DuplicateItemId, file, line, id_field, message));
            return;
        }
        if item.title.trim().is_empty() && item.description.trim().is_empty() {
            let message = "no title and no description; item kept without text";
            problems.push(Problem::new(ProblemKind::EmptyText, file, message).at_line(line));
        }
        self.report_lookalike(&item.id, line, file, id_field, problems);
        self.first_line_of.insert(item.id.clone(), line);
        self.items.push(item);
        self.lines.push(line);
    }

    /// Reports `id` when an earlier id has the same NFC form but other bytes.
    fn report_lookalike(&mut self, id: &str, line: usize, file: &str, id_field: &str, problems: &mut Vec<Problem>) {
        let nfc: String = id.nfc().map(|(c, _)| c).collect();
        match self.first_of_nfc.get(&nfc) {
            Some((first, spelling)) if spelling != id => {
                let (id, spelling) = (excerpt(id, QUOTE_CHARS), excerpt(spelling, QUOTE_CHARS));
                let message = format!(
                    "{id_field} {id:?} equals {spelling:?} (line {first}) after Unicode normalisation (NFC) but not byte \
                     for byte; kept as a separate item"
                );
                problems.push(Problem::located(ProblemKind::LookalikeItemId, file, line, id_field, message));
            }
            Some(_) => {}
            None => {
                self.first_of_nfc.insert(nfc, (line, id.to_owned()));
            }
        }
    }

    /// The catalogue, after reporting a file with no data `rows` (empty) or no usable one; problems
    /// end up in line order.
    pub fn finish(self, rows: usize, file: &str, mut problems: Vec<Problem>) -> ItemsRead {
        if rows == 0 {
            problems.push(Problem::new(ProblemKind::EmptyFile, file, "no items"));
        } else if self.items.is_empty() {
            let message = format!("none of the {rows} rows is a usable item");
            problems.push(Problem::new(ProblemKind::NoUsableRows, file, message));
        }
        super::problem::sort_by_line(&mut problems);
        ItemsRead { items: self.items, lines: self.lines, problems }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Item {
        let metadata = Default::default();
        Item { id: id.into(), title: "t".into(), description: String::new(), image: None, metadata }
    }

    #[test]
    fn ids_equal_after_normalisation_are_kept_and_reported() {
        let mut builder = CatalogueBuilder::default();
        let mut problems = Vec::new();
        for (line, id) in [(1, "caf\u{e9}"), (2, "cafe\u{301}"), (3, "other"), (4, "cafe\u{301}")] {
            builder.push(item(id), line, "items.jsonl", "item_id", &mut problems);
        }
        let read = builder.finish(4, "items.jsonl", problems);
        assert_eq!(read.items.len(), 3);
        let found: Vec<_> = read.problems.iter().map(|p| (p.kind, p.line)).collect();
        assert_eq!(found, [(ProblemKind::LookalikeItemId, Some(2)), (ProblemKind::DuplicateItemId, Some(4))]);
        assert!(read.problems[0].message.contains("line 1"), "{}", read.problems[0].message);
    }
}
