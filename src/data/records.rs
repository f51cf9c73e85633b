//! CSV (and tab-separated) records with exact line numbers, read through [`LineReader`].
//!
//! Why not the `csv` crate's `Reader`: it reads bytes on its own, so a line skipped for bad UTF-8 or
//! excessive length could not be reported and still keep the line numbers right, and a record's
//! position is where reading *started* (before any blank lines), not the line it is on. Instead each
//! physical line from [`LineReader`] is fed to `csv_core` (the csv crate's own push parser, which does
//! the quoting), so quoting follows RFC 4180 — a quoted field may even span lines — while every record
//! knows its first and last line, and memory stays bounded.
//!
//! Blank lines between records are skipped (they hold no data). Only `\n` ends a record (a `\r`
//! left inside a line is data): CRLF is already handled by the line reader.

use std::io::{self, BufRead};

use csv_core::{ReadRecordResult, Terminator};

use super::lines::{LineReader, MAX_LINE_BYTES};
use super::{Problem, ProblemKind};

/// One record: its fields and the lines it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line the record starts on.
    pub line: usize,
    /// 1-based line it ends on (greater than `line` only when a quoted field spans lines).
    pub end_line: usize,
    data: String,
    /// End offset in `data` of each field.
    ends: Vec<usize>,
}

impl Record {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the record has no field (never the case for a record read from a line).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The field at `index`, unquoted.
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        Some(&self.data[start..end])
    }

    /// All fields, unquoted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Reads delimited records line by line; problems (with the line reader's) go to the caller.
pub struct CsvRecords<R> {
    lines: LineReader<R>,
    assembler: Assembler,
    max_record_bytes: usize,
}

impl<R: BufRead> CsvRecords<R> {
    /// Comma-separated, with RFC 4180 quoting. `file` names the source in problems.
    pub fn new(reader: R, file: impl Into<String>) -> Self {
        Self::with_delimiter(reader, file, b',', true)
    }

    /// Any one-byte delimiter (`b'\t'` for RecBole atomic files), quoting on or off.
    pub fn with_delimiter(reader: R, file: impl Into<String>, delimiter: u8, quoting: bool) -> Self {
        let parser = csv_core::ReaderBuilder::new()
            .delimiter(delimiter)
            .quoting(quoting)
            .terminator(Terminator::Any(b'\n'))
            .build();
        CsvRecords {
            lines: LineReader::new(reader, file),
            assembler: Assembler { parser, output: vec![0; 1024], ends: vec![0; 16] },
            max_record_bytes: MAX_LINE_BYTES,
        }
    }

    /// Sets the line limit and the record limit (a quoted record spanning lines), in bytes.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.lines = self.lines.with_max_line_bytes(max_bytes);
        self.max_record_bytes = max_bytes;
        self
    }

    /// The name problems are reported against.
    pub fn file(&self) -> &str {
        self.lines.file()
    }

    /// The next record; `Ok(None)` at the end of the file. Skipped lines and records are reported in
    /// `problems`; an I/O error is returned for the caller to report.
    pub fn next_record(&mut self, problems: &mut Vec<Problem>) -> io::Result<Option<Record>> {
        let mut pending = Pending::default();
        loop {
            let Some(line) = self.lines.next_line(problems)? else {
                return Ok(self.finish_at_end_of_file(&mut pending, problems));
            };
            let number = line.number;
            let Some(text) = line.text else {
                // The line itself is reported; a record it was part of cannot be trusted either.
                if let Some(start) = pending.start_line {
                    self.abandon(start, number, "a line inside it was skipped", problems);
                    pending = Pending::default();
                }
                continue;
            };
            if pending.start_line.is_none() && text.trim().is_empty() {
                continue;
            }
            let start = *pending.start_line.get_or_insert(number);
            // Only "\n" ends a record, and it is fed last, so the whole line is always consumed.
            let assembler = &mut self.assembler;
            let complete = assembler.feed(text.as_bytes(), &mut pending) || assembler.feed(b"\n", &mut pending);
            if complete {
                return Ok(Some(assembler.take_record(start, number, &pending)));
            }
            if pending.out_len > self.max_record_bytes {
                let why = format!("a quoted field is still open after {} bytes", self.max_record_bytes);
                self.abandon(start, number, &why, problems);
                pending = Pending::default();
            }
        }
    }

    /// At end of file a record still open has an unclosed quote: it is reported, not returned.
    fn finish_at_end_of_file(&mut self, pending: &mut Pending, problems: &mut Vec<Problem>) -> Option<Record> {
        let start = pending.start_line?;
        let last = self.lines.line_number();
        self.abandon(start, last, "a quoted field is not closed by the end of the file", problems);
        None
    }

    /// Reports the open record from `start` to `last` as skipped and resets the parser.
    fn abandon(&mut self, start: usize, last: usize, why: &str, problems: &mut Vec<Problem>) {
        let message = format!("record on lines {start}–{last} skipped: {why}");
        problems.push(Problem::new(ProblemKind::UnclosedQuote, self.lines.file(), message).at_line(start));
        self.assembler.parser.reset();
    }
}

/// The parser and its output buffers (apart from the line reader, so both can be borrowed at once).
struct Assembler {
    parser: csv_core::Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
}

impl Assembler {
    /// Feeds `input` to the parser; true when a record ended.
    fn feed(&mut self, mut input: &[u8], pending: &mut Pending) -> bool {
        loop {
            let (result, n_in, n_out, n_end) =
                self.parser.read_record(input, &mut self.output[pending.out_len..], &mut self.ends[pending.end_len..]);
            input = &input[n_in..];
            pending.out_len += n_out;
            pending.end_len += n_end;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return false,
                ReadRecordResult::OutputFull => self.output.resize(self.output.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => return true,
            }
        }
    }

    fn take_record(&mut self, line: usize, end_line: usize, pending: &Pending) -> Record {
        // The parser only removes ASCII quotes from valid UTF-8 lines, so this is valid UTF-8.
        let data = String::from_utf8_lossy(&self.output[..pending.out_len]).into_owned();
        Record { line, end_line, data, ends: self.ends[..pending.end_len].to_vec() }
    }
}

/// The record being assembled.
#[derive(Default)]
struct Pending {
    start_line: Option<usize>,
    out_len: usize,
    end_len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, line) of a problem.
    type Located = (ProblemKind, Option<usize>);
    /// (first line, last line, fields) of a record.
    type Read = (usize, usize, Vec<String>);

    fn read_all(bytes: &[u8]) -> (Vec<Read>, Vec<Located>) {
        let mut records = CsvRecords::new(bytes, "f.csv").with_max_bytes(64);
        let mut problems = Vec::new();
        let mut out = Vec::new();
        while let Some(r) = records.next_record(&mut problems).unwrap() {
            out.push((r.line, r.end_line, r.iter().map(str::to_string).collect()));
        }
        (out, problems.iter().map(|p| (p.kind, p.line)).collect())
    }

    fn fields(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plain_records_keep_their_line_numbers_across_blank_lines() {
        let (records, problems) = read_all(b"a,b\n\n1,2\n  \n3,\n");
        assert_eq!(records, vec![(1, 1, fields(&["a", "b"])), (3, 3, fields(&["1", "2"])), (5, 5, fields(&["3", ""]))]);
        assert!(problems.is_empty());
    }

    #[test]
    fn quoted_fields_may_hold_delimiters_quotes_and_newlines() {
        let (records, problems) = read_all(b"\"a,b\",\"say \"\"hi\"\"\"\n\"multi\nline\",x\nlast,1");
        assert_eq!(
            records,
            vec![
                (1, 1, fields(&["a,b", "say \"hi\""])),
                (2, 3, fields(&["multi\nline", "x"])),
                (4, 4, fields(&["last", "1"])),
            ]
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn crlf_and_bom_are_handled_by_the_line_reader() {
        let (records, problems) = read_all(b"\xEF\xBB\xBFa,b\r\n1,2\r\n");
        assert_eq!(records, vec![(1, 1, fields(&["a", "b"])), (2, 2, fields(&["1", "2"]))]);
        assert_eq!(problems, vec![(ProblemKind::CrlfLineEndings, Some(1)), (ProblemKind::Bom, Some(1))]);
    }

    #[test]
    fn unclosed_quote_at_end_of_file_is_reported_not_returned() {
        let (records, problems) = read_all(b"a,b\n1,\"open\n2,3\n");
        assert_eq!(records, vec![(1, 1, fields(&["a", "b"]))]);
        assert_eq!(problems, vec![(ProblemKind::UnclosedQuote, Some(2))]);
    }

    #[test]
    fn runaway_quote_is_cut_at_the_record_limit_and_reading_recovers() {
        let mut bytes = b"1,\"open\n".to_vec();
        for _ in 0..20 {
            bytes.extend_from_slice(b"0123456789\n");
        }
        bytes.extend_from_slice(b"ok,1\n");
        let (records, problems) = read_all(&bytes);
        assert_eq!(problems, vec![(ProblemKind::UnclosedQuote, Some(1))]);
        // Lines after the cut are read as records again.
        assert_eq!(records.last(), Some(&(22, 22, fields(&["ok", "1"]))));
        assert!(records.len() > 1 && records.len() < 21);
    }

    #[test]
    fn tab_separated_without_quoting() {
        let mut records = CsvRecords::with_delimiter(&b"a\"x\tb\n"[..], "f", b'\t', false);
        let record = records.next_record(&mut Vec::new()).unwrap().unwrap();
        assert_eq!(record.iter().collect::<Vec<_>>(), vec!["a\"x", "b"]);
    }
}
