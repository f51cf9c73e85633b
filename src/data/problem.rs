//! A located problem found while reading a dataset.

use serde::Serialize;

/// How bad a problem is: `Fatal` makes the dataset unusable (exit code 2), `Warning` keeps it usable
/// (the affected row or field is reported, and handled as documented for its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Fatal,
}

/// What went wrong. Each kind has one stable snake_case name (used in `--json` and in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    // --- whole files (fatal: the dataset cannot be read) ---
    /// A required file does not exist.
    FileMissing,
    /// A file exists but cannot be read (permissions, I/O error).
    FileUnreadable,
    /// A required file has no data rows (or no bytes at all).
    EmptyFile,
    /// A CSV/atomic file has no header line, or its first line is not a header.
    MissingHeader,
    /// The header lacks a required column (named in `field`).
    MissingColumn,
    /// After reading everything, no usable item or no usable interaction is left.
    NoUsableRows,

    // --- encoding and lines (warnings: reported, and handled as documented) ---
    /// The file starts with a UTF-8 byte-order mark; it is skipped and the file read normally.
    Bom,
    /// The file uses CRLF line ends; they are accepted (reported once per file).
    CrlfLineEndings,
    /// A line is not valid UTF-8; the row is skipped.
    NotUtf8,
    /// A line is longer than the loader's limit; the row is skipped without being parsed.
    LineTooLong,

    // --- rows (warnings: the row is skipped, or the field is dropped as stated) ---
    /// A JSONL line is not valid JSON; the row is skipped.
    BadJson,
    /// A JSONL line is valid JSON but not an object; the row is skipped.
    NotAnObject,
    /// A required field is absent or empty (e.g. `item_id`); the row is skipped.
    MissingField,
    /// A field has the wrong JSON type (e.g. a numeric `title`); the field is ignored.
    WrongFieldType,
    /// A CSV row has a different number of columns than the header; the row is skipped.
    WrongColumnCount,
    /// A quoted CSV field is not closed (by the end of the file, or within the line limit); the
    /// lines it swallowed are skipped as one record, and reading resumes after them.
    UnclosedQuote,
    /// An item id appears a second time; the later row is skipped (the first one wins).
    DuplicateItemId,
    /// An item id equals an earlier one after Unicode normalisation (NFC: "é" as one code point or as
    /// "e" + combining accent) but not byte for byte; both are kept as separate items, and a page or
    /// interaction that spells it the other way finds the other one.
    LookalikeItemId,
    /// An interaction names an item id not in the catalogue; the row is skipped.
    UnknownItemId,
    /// A timestamp is not a finite number; the row is skipped.
    BadTimestamp,
    /// A rating is present but not a finite number; the row is kept without a rating.
    BadRating,

    // --- item content (warnings: the item is kept, with the modality missing) ---
    /// An item has neither title nor description.
    EmptyText,
    /// An item's image file does not exist.
    ImageMissing,
    /// An item's image path is absolute or leaves the dataset directory; it is not opened.
    ImagePathOutsideDataset,
    /// An item's image file exists but cannot be decoded (truncated, corrupt, not an image).
    ImageUndecodable,
}

impl ProblemKind {
    /// Whether this kind makes the dataset unusable.
    pub fn severity(self) -> Severity {
        use ProblemKind::*;
        match self {
            FileMissing | FileUnreadable | EmptyFile | MissingHeader | MissingColumn | NoUsableRows => Severity::Fatal,
            _ => Severity::Warning,
        }
    }
}

/// One problem, located as precisely as the source allows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub severity: Severity,
    /// Path of the file as given to the loader (or relative to the dataset directory).
    pub file: String,
    /// 1-based line number, when the problem belongs to a line.
    pub line: Option<usize>,
    /// The field (column or JSON key) concerned, when there is one.
    pub field: Option<String>,
    /// Human-readable detail, e.g. the offending value (truncated).
    pub message: String,
}

impl Problem {
    /// A problem of `kind` in `file`, with the severity the kind implies.
    pub fn new(kind: ProblemKind, file: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { kind, severity: kind.severity(), file: file.into(), line: None, field: None, message: message.into() }
    }

    /// A problem of `kind` at a 1-based `line` of `file`, in `field`.
    pub fn located(kind: ProblemKind, file: &str, line: usize, field: &str, message: impl Into<String>) -> Self {
        Problem::new(kind, file, message).at_line(line).in_field(field)
    }

    /// Locates the problem on a 1-based line.
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// Names the field (column or JSON key) concerned.
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// Orders problems by line (stable: problems of one line keep their order; file-level ones last).
pub(crate) fn sort_by_line(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
}

impl std::fmt::Display for Problem {
    /// `file:line: kind (field): message`, the form editors and terminals make clickable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let kind = serde_json::to_value(self.kind).ok();
        let kind = kind.as_ref().and_then(|v| v.as_str()).unwrap_or("problem");
        write!(f, ": {kind}")?;
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        write!(f, ": {}", self.message)
    }
}
