//! Traffic files: requests recorded once and replayed any number of times.
//!
//! Two formats are read (see `docs/TRAFFIC.md`): JSON Lines, one request per line, which
//! `serve --record` writes, and HAR 1.2, which browsers and common proxies export. Both are
//! read as a stream, one request at a time, so a file of any size needs constant memory.
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

/// Reads a traffic file as a stream of requests; the format follows the file extension.
pub fn open(path: &Path) -> Result<TrafficReader, TrafficError> {
    let file = File::open(path).map_err(|source| TrafficError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = BufReader::with_capacity(64 * 1024, file);
    Ok(match Format::of_path(path) {
        Format::JsonLines => TrafficReader::JsonLines(jsonl::JsonLinesReader::new(path, reader)),
        Format::Har => TrafficReader::Har(har::HarReader::spawn(path, reader)),
    })
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

/// Origin-form target (`/path?query`) of a request written either as a path or a full URL.
/// The path passes the same check as serve's ([`crate::upstream::target`]): one that would
/// leave the base path makes the request invalid, dot segments are removed.
pub(crate) fn origin_form(target: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = target
        .parse()
        .map_err(|e| format!("{target:?} is not a valid path or URL: {e}"))?;
    let pq = if uri.scheme().is_some() {
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        if pq.is_empty() {
            "/"
        } else {
            pq
        }
    } else if target.starts_with('/') {
        target
    } else {
        return Err(format!(
            "{target:?} is neither a path starting with / nor an absolute URL"
        ));
    };
    let normalized = crate::upstream::target::normalize(pq)
        .map_err(|e| format!("{target:?} is refused: {e}"))?;
    normalized
        .parse()
        .map_err(|e| format!("{target:?} has no usable path: {e}"))
}
