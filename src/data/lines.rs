//! A streaming line reader that turns encoding trouble into located [`Problem`]s.
//!
//! Every text file of a dataset is read through [`LineReader`], so all of them treat the edge cases
//! alike, and none is ever read whole into memory:
//! - a UTF-8 byte-order mark at the start of the file is skipped ([`ProblemKind::Bom`], warning);
//! - CRLF line ends are accepted ([`ProblemKind::CrlfLineEndings`], warning, once per file);
//! - a line that is not valid UTF-8 is skipped ([`ProblemKind::NotUtf8`]);
//! - a line longer than the limit ([`MAX_LINE_BYTES`] unless set otherwise) is skipped without
//!   being kept in memory ([`ProblemKind::LineTooLong`]).
//!
//! Line numbers are 1-based and count every physical line, skipped or not, so they match an editor's.
//! `std::io::BufRead::lines` is not used because it would hold an arbitrarily long line in memory and
//! give up on the whole file at the first non-UTF-8 byte.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::{Problem, ProblemKind};

/// Longest line accepted, in bytes, not counting the line end: 1 MiB.
///
/// A real catalogue line (a product with a long description) is a few KiB; a line past 1 MiB is a
/// sign of a broken file (a missing newline, a binary blob) and reading it would only waste memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One physical line. `text` is `None` when the line was skipped (its problem is already reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: usize,
    /// The line without its line end (and without a leading BOM on line 1).
    pub text: Option<&'a str>,
}

/// Reads a file line by line, reporting encoding problems against `file`.
pub struct LineReader<R> {
    reader: R,
    file: String,
    max_line_bytes: usize,
    /// Raw bytes of the line being read.
    buf: Vec<u8>,
    /// The last line read, once validated (its allocation moves back and forth with `buf`).
    line: String,
    number: usize,
    crlf_reported: bool,
}

impl<R: BufRead> LineReader<R> {
    /// `file` names the source in problems (a path relative to the dataset directory).
    pub fn new(reader: R, file: impl Into<String>) -> Self {
        LineReader {
            reader,
            file: file.into(),
            max_line_bytes: MAX_LINE_BYTES,
            buf: Vec::new(),
            line: String::new(),
            number: 0,
            crlf_reported: false,
        }
    }

    /// Sets the longest accepted line (bytes, without the line end).
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// The name problems are reported against.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Number of the last line returned (0 before the first).
    pub fn line_number(&self) -> usize {
        self.number
    }

    /// The next physical line, skipped or not; `Ok(None)` at the end of the file.
    /// Problems about the line are pushed to `problems`. An I/O error is returned as is: the caller
    /// reports it (it knows whether the file is required).
    pub fn next_line(&mut self, problems: &mut Vec<Problem>) -> io::Result<Option<Line<'_>>> {
        Ok(self
            .advance(problems)?
            .map(|(number, readable)| Line { number, text: readable.then_some(self.line.as_str()) }))
    }

    /// The next line that could be read as text, skipping (reported) unreadable ones.
    pub fn next_text_line(&mut self, problems: &mut Vec<Problem>) -> io::Result<Option<(usize, &str)>> {
        while let Some((number, readable)) = self.advance(problems)? {
            if readable {
                return Ok(Some((number, self.line.as_str())));
            }
        }
        Ok(None)
    }

    /// Reads the next physical line into `line`; returns its number and whether it is readable.
    fn advance(&mut self, problems: &mut Vec<Problem>) -> io::Result<Option<(usize, bool)>> {
        // Reuse the last line's allocation for the raw bytes.
        self.buf = std::mem::take(&mut self.line).into_bytes();
        let Some(too_long) = self.read_physical_line()? else {
            return Ok(None);
        };
        self.number += 1;
        if too_long {
            let message = format!("line is longer than {} bytes; skipped", self.max_line_bytes);
            problems.push(Problem::new(ProblemKind::LineTooLong, &self.file, message).at_line(self.number));
            return Ok(Some((self.number, false)));
        }
        self.strip_line_end_and_bom(problems);
        match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(text) => {
                self.line = text;
                Ok(Some((self.number, true)))
            }
            Err(err) => {
                let message =
                    format!("invalid UTF-8 at byte {} of the line; skipped", err.utf8_error().valid_up_to() + 1);
                self.buf = err.into_bytes();
                problems.push(Problem::new(ProblemKind::NotUtf8, &self.file, message).at_line(self.number));
                Ok(Some((self.number, false)))
            }
        }
    }

    /// Reads one physical line into `buf`, keeping at most `max_line_bytes` + the line end.
    /// Returns `None` at end of file, else whether the line was too long (then `buf` is empty).
    fn read_physical_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        // Room for the content plus "\r\n": anything longer is over the limit whatever its line end.
        let cap = self.max_line_bytes + 2;
        let mut read_any = false;
        let mut too_long = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            if available.is_empty() {
                break;
            }
            read_any = true;
            let (chunk_len, found_end) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if !too_long {
                if self.buf.len() + chunk_len > cap {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&available[..chunk_len]);
                }
            }
            self.reader.consume(chunk_len);
            if found_end {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        // The cap allowed two extra bytes for "\r\n"; check the content alone.
        if !too_long && self.content_len() > self.max_line_bytes {
            too_long = true;
            self.buf.clear();
        }
        Ok(Some(too_long))
    }

    /// Drops the line end from `buf` (reporting CRLF once) and a leading BOM on line 1 (reporting it).
    fn strip_line_end_and_bom(&mut self, problems: &mut Vec<Problem>) {
        if self.buf.ends_with(b"\r\n") && !self.crlf_reported {
            self.crlf_reported = true;
            let message = "CRLF line ends (first seen here); accepted";
            problems.push(Problem::new(ProblemKind::CrlfLineEndings, &self.file, message).at_line(self.number));
        }
        self.buf.truncate(self.content_len());
        if self.number == 1 && self.buf.starts_with(BOM) {
            let message = "UTF-8 byte-order mark at the start; skipped";
            problems.push(Problem::new(ProblemKind::Bom, &self.file, message).at_line(1));
            self.buf.drain(..BOM.len());
        }
    }

    /// Length of `buf` without its line end ("\n" or "\r\n").
    fn content_len(&self) -> usize {
        let b = &self.buf;
        if b.ends_with(b"\r\n") {
            b.len() - 2
        } else if b.ends_with(b"\n") {
            b.len() - 1
        } else {
            b.len()
        }
    }
}

/// Opens `path` for buffered reading, or reports it as [`ProblemKind::FileMissing`] /
/// [`ProblemKind::FileUnreadable`] under `name`, the way problems refer to the file.
/// Natively only a regular file is opened: a named pipe would hang the reader and `/dev/zero` would
/// feed it forever (one over-long line after another).
pub fn open_reported(path: &Path, name: &str, problems: &mut Vec<Problem>) -> Option<BufReader<File>> {
    #[cfg(feature = "native")]
    let opened = crate::fs::open_regular(path).map(|(file, _)| file).map_err(|e| e.into_parts().1);
    #[cfg(not(feature = "native"))]
    let opened = File::open(path);
    match opened {
        Ok(file) => Some(BufReader::with_capacity(1 << 16, file)),
        Err(err) => {
            let kind = match err.kind() {
                io::ErrorKind::NotFound => ProblemKind::FileMissing,
                _ => ProblemKind::FileUnreadable,
            };
            problems.push(Problem::new(kind, name, format!("{}: {err}", path.display())));
            None
        }
    }
}

/// At most `max_chars` characters of `text`, with "…" when cut: for quoting values in messages.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, line) of a problem.
    type Located = (ProblemKind, Option<usize>);

    /// All lines as (number, text or None), and the problems as (kind, line).
    fn read_all(bytes: &[u8], max: usize) -> (Vec<(usize, Option<String>)>, Vec<Located>) {
        let mut reader = LineReader::new(bytes, "f.txt").with_max_line_bytes(max);
        let mut problems = Vec::new();
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line(&mut problems).unwrap() {
            lines.push((line.number, line.text.map(str::to_string)));
        }
        (lines, problems.iter().map(|p| (p.kind, p.line)).collect())
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn plain_lines_with_and_without_final_newline() {
        let (lines, problems) = read_all(b"a\nb\n\nc", 100);
        assert_eq!(lines, vec![(1, some("a")), (2, some("b")), (3, some("")), (4, some("c"))]);
        assert!(problems.is_empty());
    }

    #[test]
    fn bom_is_stripped_and_reported_on_line_1() {
        let (lines, problems) = read_all(b"\xEF\xBB\xBFa\nb\n", 100);
        assert_eq!(lines, vec![(1, some("a")), (2, some("b"))]);
        assert_eq!(problems, vec![(ProblemKind::Bom, Some(1))]);
    }

    #[test]
    fn crlf_is_stripped_and_reported_once() {
        let (lines, problems) = read_all(b"a\nb\r\nc\r\n", 100);
        assert_eq!(lines, vec![(1, some("a")), (2, some("b")), (3, some("c"))]);
        assert_eq!(problems, vec![(ProblemKind::CrlfLineEndings, Some(2))]);
    }

    #[test]
    fn non_utf8_line_is_skipped_and_reading_goes_on() {
        let (lines, problems) = read_all(b"ok\nbad \xFF here\nok2\n", 100);
        assert_eq!(lines, vec![(1, some("ok")), (2, None), (3, some("ok2"))]);
        assert_eq!(problems, vec![(ProblemKind::NotUtf8, Some(2))]);
    }

    #[test]
    fn line_limit_is_exact_and_long_lines_are_skipped() {
        // Exactly at the limit (even with CRLF) is fine; one byte more is not.
        let (lines, problems) = read_all(b"12345\r\n123456\n1\n", 5);
        assert_eq!(lines, vec![(1, some("12345")), (2, None), (3, some("1"))]);
        assert_eq!(problems, vec![(ProblemKind::CrlfLineEndings, Some(1)), (ProblemKind::LineTooLong, Some(2))]);
    }

    #[test]
    fn long_line_spanning_many_buffer_fills_is_skipped() {
        let mut bytes = vec![b'x'; 100_000];
        bytes.extend_from_slice(b"\nafter\n");
        let reader = io::BufReader::with_capacity(64, &bytes[..]);
        let mut reader = LineReader::new(reader, "f").with_max_line_bytes(1000);
        let mut problems = Vec::new();
        assert_eq!(reader.next_line(&mut problems).unwrap(), Some(Line { number: 1, text: None }));
        assert_eq!(reader.next_text_line(&mut problems).unwrap(), Some((2, "after")));
        assert_eq!(reader.next_text_line(&mut problems).unwrap(), None);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind, ProblemKind::LineTooLong);
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("hi", 2), "hi");
    }
}
