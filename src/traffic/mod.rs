//! Traffic files: requests recorded once and replayed any number of times.
//!
//! Two formats are read (see `docs/TRAFFIC.md`): JSON Lines, one request per line, which
//! `serve --record` writes, and HAR 1.2, which browsers and common proxies export. Both are
//! read as a stream, one request at a time, so a file of any size needs constant memory;
//! one request is held up to an [`EntryBound`] tied to max-body, so a hostile or broken
//! file (one 100 MB line) is refused while it streams rather than buffered whole.
//!
//! - [`jsonl`]: the line format, parsed and written.
//! - [`har`]: every entry's request of a HAR log.
//! - [`recorder`]: appends what `serve` shadows to a JSONL file, rotating it by size.

pub mod har;
pub mod jsonl;
pub mod recorder;

use crate::exchange::RecordedRequest;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

pub use recorder::{Recorder, RecorderError, RecorderOptions};

/// One request read from a traffic file, with where it came from.
#[derive(Clone, Debug)]
pub struct TrafficEntry {
    /// 1-based line (JSONL) or entry number (HAR), for messages.
    pub position: Position,
    /// When the request was originally made, as written in the file (RFC 3339).
    pub ts: Option<String>,
    pub request: RecordedRequest,
}

/// Where in a traffic file something is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Line(u64),
    /// HAR entries are numbered from 1 in file order.
    Entry(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "{n}"),
            Position::Entry(n) => write!(f, "entry {n}"),
        }
    }
}

/// Which format a traffic file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Har,
}

impl Format {
    /// `.har` files are HAR; everything else is read as JSON Lines.
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("har") => Format::Har,
            _ => Format::JsonLines,
        }
    }
}

/// A traffic file that cannot be read, or one request in it that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// One request is unusable; the rest of the file may still be read (`--skip-invalid`).
    #[error("{path}:{position}: {problem}")]
    Invalid {
        path: PathBuf,
        position: Position,
        problem: String,
    },
    /// The file as a whole cannot be read further (I/O error, HAR that is not JSON).
    #[error("{path}: {problem}")]
    Unreadable { path: PathBuf, problem: String },
}

impl TrafficError {
    /// Whether reading can go on past this error.
    pub fn is_skippable(&self) -> bool {
        matches!(self, TrafficError::Invalid { .. })
    }
}

/// The most bytes of one request a traffic file may take: a JSONL line (without its
/// newline), or what a HAR entry holds besides the parts that are skipped unread
/// (`response`, `timings`, ...).
///
/// It is `6 × max-body + 2 MiB`, so that every line `serve --record` writes replays: a
/// recorded body is at most max-body bytes, and JSON escapes a UTF-8 body's control
/// characters as `\u00XX` (6 bytes for 1; base64 for other bodies is only 4/3), and the
/// 2 MiB cover method, URL, headers (hyper's HTTP/1.1 head is at most about 400 KiB,
/// which escaping and lossy UTF-8 at most triple) and the JSON around them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryBound {
    /// The bound itself, in bytes.
    pub bytes: u64,
    /// The max-body it was derived from, for messages.
    pub max_body: u64,
}

impl EntryBound {
    /// What a request's line or entry needs besides its body.
    pub const HEAD_ALLOWANCE: u64 = 2 * 1024 * 1024;
    /// Worst-case growth of a body written as a JSON string.
    pub const BODY_FACTOR: u64 = 6;

    pub fn for_max_body(max_body: usize) -> EntryBound {
        let max_body = max_body as u64;
        EntryBound {
            bytes: max_body
                .saturating_mul(Self::BODY_FACTOR)
                .saturating_add(Self::HEAD_ALLOWANCE),
            max_body,
        }
    }

    /// The reason given for a line or an entry over the bound.
    pub(crate) fn refusal(&self, what: &str) -> String {
        format!(
            "{what} is longer than {} bytes, the bound for max-body {} (6 × max-body + 2 MiB)",
            self.bytes, self.max_body
        )
    }
}

/// Reads a traffic file as a stream of requests; the format follows the file extension.
/// A request longer than `bound` is refused without being held whole.
pub fn open(path: &Path, bound: EntryBound) -> Result<TrafficReader, TrafficError> {
    let file = File::open(path).map_err(|source| TrafficError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = BufReader::with_capacity(64 * 1024, file);
    Ok(match Format::of_path(path) {
        Format::JsonLines => {
            TrafficReader::JsonLines(jsonl::JsonLinesReader::new(path, reader, bound))
        }
        Format::Har => TrafficReader::Har(har::HarReader::spawn(path, reader, bound)),
    })
}

/// Requests in a traffic file, counted without keeping them: non-blank lines of a JSONL
/// file (counted in the read buffer, however long a line is), entries of a HAR log.
/// `None` when the file cannot be read.
pub fn count_requests(path: &Path, bound: EntryBound) -> Option<u64> {
    match Format::of_path(path) {
        Format::Har => Some(open(path, bound).ok()?.count() as u64),
        Format::JsonLines => {
            let file = File::open(path).ok()?;
            let mut reader = BufReader::with_capacity(64 * 1024, file);
            let (mut count, mut blank) = (0, true);
            loop {
                let chunk = match std::io::BufRead::fill_buf(&mut reader) {
                    Ok([]) | Err(_) => break,
                    Ok(chunk) => chunk,
                };
                for &byte in chunk {
                    if byte == b'\n' {
                        count += u64::from(!blank);
                        blank = true;
                    } else if !byte.is_ascii_whitespace() {
                        blank = false;
                    }
                }
                let n = chunk.len();
                std::io::BufRead::consume(&mut reader, n);
            }
            Some(count + u64::from(!blank))
        }
    }
}

/// The requests of one traffic file, in file order.
pub enum TrafficReader {
    JsonLines(jsonl::JsonLinesReader<BufReader<File>>),
    Har(har::HarReader),
}

impl Iterator for TrafficReader {
    type Item = Result<TrafficEntry, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            TrafficReader::JsonLines(r) => r.next(),
            TrafficReader::Har(r) => r.next(),
        }
    }
}

/// The request target of a recorded request, written either as a path or a full URL, in
/// origin form (`/path?query`, [`crate::upstream::target::origin_form`]). The path passes
/// the same check as serve's ([`crate::upstream::target`]): one that would leave the base
/// path makes the request invalid, dot segments are removed.
pub(crate) fn recorded_target(target: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = target
        .parse()
        .map_err(|e| format!("{target:?} is not a valid path or URL: {e}"))?;
    if uri.scheme().is_none() && !target.starts_with('/') {
        return Err(format!(
            "{target:?} is neither a path starting with / nor an absolute URL"
        ));
    }
    let uri = crate::upstream::target::origin_form(&uri);
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let normalized = crate::upstream::target::normalize(pq)
        .map_err(|e| format!("{target:?} is refused: {e}"))?;
    normalized
        .parse()
        .map_err(|e| format!("{target:?} has no usable path: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_a_jsonl_file_counts_non_blank_lines_without_holding_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        // One line far longer than the bound: counted, not buffered.
        let long = "x".repeat(200 * 1024);
        std::fs::write(&path, format!("{{}}\n\n  \n{long}\n{{}}")).unwrap();
        let bound = EntryBound {
            bytes: 16,
            max_body: 0,
        };
        assert_eq!(count_requests(&path, bound), Some(3));
        assert_eq!(
            count_requests(&dir.path().join("missing.jsonl"), bound),
            None
        );
    }
}
