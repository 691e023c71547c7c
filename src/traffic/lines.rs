//! Lines of a traffic file read one at a time into one reused buffer, each at most an
//! [`EntryBound`]: the one bounded line reader of the line formats (JSON Lines, access
//! logs) and of GoReplay files, whose payloads are runs of lines.
//!
//! A line longer than the bound is refused while it streams: its bytes past the bound are
//! skipped in the read buffer, never appended, so a 100 MB line costs no more memory than
//! a short one.

use super::EntryBound;
use std::io::BufRead;

/// What one call to [`BoundedLines::read_line`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The file ended before another byte.
    End,
    /// A whole line (or the last, unterminated one) is in the buffer.
    Read,
    /// A line longer than the bound was read past and dropped.
    TooLong,
}

pub(crate) struct BoundedLines<R> {
    reader: R,
    bound: usize,
    buffer: Vec<u8>,
    /// 1-based number of the line last read (0 before the first).
    line: u64,
    /// Whether the line last read ended with `\n` (the last line of a file may not).
    newline: bool,
}

impl<R: BufRead> BoundedLines<R> {
    pub(crate) fn new(reader: R, bound: EntryBound) -> BoundedLines<R> {
        BoundedLines {
            reader,
            bound: usize::try_from(bound.bytes).unwrap_or(usize::MAX),
            buffer: Vec::with_capacity(4096),
            line: 0,
            newline: false,
        }
    }

    /// The line last read, without its `\n`.
    pub(crate) fn text(&self) -> &[u8] {
        &self.buffer
    }

    pub(crate) fn number(&self) -> u64 {
        self.line
    }

    pub(crate) fn ended_with_newline(&self) -> bool {
        self.newline
    }

    /// The next line into the buffer (without its `\n`), at most the bound of it.
    pub(crate) fn read_line(&mut self) -> std::io::Result<Line> {
        self.buffer.clear();
        self.newline = false;
        let (mut started, mut too_long) = (false, false);
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            started = true;
            let (take, done) = match memchr::memchr(b'\n', available) {
                Some(end) => (end, true),
                None => (available.len(), false),
            };
            if !too_long {
                if self.buffer.len() + take > self.bound {
                    too_long = true;
                    self.buffer = Vec::with_capacity(4096);
                } else {
                    self.buffer.extend_from_slice(&available[..take]);
                }
            }
            self.reader.consume(take + usize::from(done));
            if done {
                self.newline = true;
                break;
            }
        }
        Ok(match (started, too_long) {
            (false, _) => Line::End,
            (true, false) => {
                self.line += 1;
                Line::Read
            }
            (true, true) => {
                self.line += 1;
                Line::TooLong
            }
        })
    }
}

/// The requests of a line format (JSON Lines, access logs): every non-blank line parsed
/// by the format, with the one policy for what goes wrong. A line over the bound or one
/// the format refuses is an invalid entry naming `file:line` (reading goes on past it,
/// for `--skip-invalid`); a read error ends the file.
pub(crate) struct LineEntries<R> {
    path: std::path::PathBuf,
    lines: BoundedLines<R>,
    bound: EntryBound,
    failed: bool,
}

impl<R: BufRead> LineEntries<R> {
    pub(crate) fn new(path: &std::path::Path, reader: R, bound: EntryBound) -> LineEntries<R> {
        LineEntries {
            path: path.to_path_buf(),
            lines: BoundedLines::new(reader, bound),
            bound,
            failed: false,
        }
    }

    /// The next entry: `parse` turns a line's text into it, or says what is wrong with it.
    pub(crate) fn next_with(
        &mut self,
        parse: impl FnOnce(&[u8], super::Position) -> Result<super::TrafficEntry, String>,
    ) -> Option<Result<super::TrafficEntry, super::TrafficError>> {
        use super::{Position, TrafficError};
        if self.failed {
            return None;
        }
        loop {
            let line = match self.lines.read_line() {
                Ok(line) => line,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(TrafficError::Unreadable {
                        path: self.path.clone(),
                        problem: format!("after line {}: {e}", self.lines.number()),
                    }));
                }
            };
            let position = Position::Line(self.lines.number());
            let invalid = |problem| TrafficError::Invalid {
                path: self.path.clone(),
                position,
                problem,
            };
            match line {
                Line::End => return None,
                Line::TooLong => return Some(Err(invalid(self.bound.refusal("the line")))),
                Line::Read if self.lines.text().iter().all(u8::is_ascii_whitespace) => continue,
                Line::Read => {}
            }
            return Some(parse(self.lines.text(), position).map_err(invalid));
        }
    }

    /// Whether the bound asks for recorded responses to be kept.
    pub(crate) fn keeps_responses(&self) -> bool {
        self.bound.responses
    }
}
