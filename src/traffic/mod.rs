//! Traffic files: requests recorded once and replayed any number of times.
//!
//! Five formats are read (see `docs/TRAFFIC.md`), named by `--format` or recognised by
//! [`Format::detect`]: JSON Lines, one request per line, which `serve --record` writes;
//! HAR 1.2, which browsers and common proxies export; nginx/Apache access logs and Envoy's
//! default access log, which hold a request line but no body; and GoReplay's `.gor`
//! captures. All are read as a stream, one request at a time, so a file of any size needs
//! constant memory; one request is held up to an [`EntryBound`] tied to max-body, so a
//! hostile or broken file (one 100 MB line) is refused while it streams rather than
//! buffered whole. Every format's request target passes the one check,
//! [`recorded_target`].
//!
//! - [`jsonl`]: the line format, parsed and written.
//! - [`har`]: every entry's request of a HAR log.
//! - [`access_log`]: nginx/Apache combined and common lines, and Envoy's default format.
//! - [`gor`]: the request payloads of a GoReplay file.
//! - [`recorder`]: appends what `serve` shadows to a JSONL file, rotating it by size.
//! - `lines`: the bounded line reader the line formats and `.gor` share.

pub mod access_log;
pub mod gor;
pub mod har;
pub mod jsonl;
mod lines;
pub mod recorder;

use crate::exchange::{RecordedRequest, SkipReason};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

pub use recorder::{Recorder, RecorderError, RecorderOptions};

/// One request read from a traffic file, with where it came from.
#[derive(Clone, Debug)]
pub struct TrafficEntry {
    /// 1-based line (JSONL, access logs; a `.gor` payload's first line) or entry number
    /// (HAR), for messages.
    pub position: Position,
    /// When the request was originally made (RFC 3339), as the file says: written so in
    /// JSONL and HAR, converted from an access log's time or a `.gor` timestamp.
    pub ts: Option<String>,
    pub request: RecordedRequest,
    /// Why the request is read but must not be sent: an access log's line whose method
    /// may carry a body the log does not keep. Replay counts it skipped with this reason.
    pub skip: Option<SkipReason>,
    /// The primary's answer as recorded beside the request (`--record-responses`, a HAR
    /// entry's `response`), read only when the bound asks for responses.
    pub response: Option<crate::exchange::Captured>,
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
    /// nginx / Apache combined or common lines.
    AccessLog,
    /// Envoy's default access log format.
    Envoy,
    /// GoReplay's `.gor` capture files.
    Gor,
}

/// The names `--format` takes.
impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::JsonLines => "jsonl",
            Format::Har => "har",
            Format::AccessLog => "access-log",
            Format::Envoy => "envoy",
            Format::Gor => "gor",
        })
    }
}

/// How much of a file's start [`Format::detect`] looks at: the first line of every format
/// but a JSON document fits.
const SNIFF_BYTES: u64 = 64 * 1024;

impl Format {
    /// The format a file name says: `.har`, `.gor`, `.jsonl`/`.ndjson`; `None` for
    /// others (`.log`, `.txt`, none), which [`Format::detect`] recognises by content.
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension().and_then(|e| e.to_str())?;
        [
            ("har", Format::Har),
            ("gor", Format::Gor),
            ("jsonl", Format::JsonLines),
            ("ndjson", Format::JsonLines),
        ]
        .into_iter()
        .find(|(name, _)| ext.eq_ignore_ascii_case(name))
        .map(|(_, format)| format)
    }

    /// The format of a file: by its name ([`Format::of_path`]), else by its first non-blank
    /// line ([`Format::sniff`]). A file with no non-blank line is JSON Lines (no
    /// requests), as every unnamed file was before the other formats.
    pub fn detect(path: &Path) -> Result<Format, TrafficError> {
        if let Some(format) = Format::of_path(path) {
            return Ok(format);
        }
        let open_error = |source| TrafficError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut start = Vec::new();
        File::open(path)
            .map_err(open_error)?
            .take(SNIFF_BYTES)
            .read_to_end(&mut start)
            .map_err(open_error)?;
        let text = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&start);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Format::JsonLines);
        }
        Format::sniff(text).ok_or_else(|| TrafficError::Unrecognised {
            path: path.to_path_buf(),
        })
    }

    /// The format the first non-blank line of `start` has, if any: `{` is JSON Lines (a
    /// HAR file is one JSON document too, so it needs its `.har` name or `--format har`);
    /// GoReplay's separator or a request header `1 ID NANOS` is `.gor`; `[` and an ISO date
    /// is Envoy; words and ` [dd/Mon/yyyy:` is an nginx/Apache log.
    pub fn sniff(start: &[u8]) -> Option<Format> {
        let line = start
            .split(|&b| b == b'\n')
            .map(<[u8]>::trim_ascii)
            .find(|line| !line.is_empty())?;
        let digits = |text: &[u8]| !text.is_empty() && text.iter().all(u8::is_ascii_digit);
        if line.starts_with(b"{") {
            return Some(Format::JsonLines);
        }
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let gor_header = matches!(words.first(), Some(&(b"1" | b"2" | b"3")))
            && words
                .get(1)
                .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_hexdigit))
            && words.get(2).is_some_and(|nanos| digits(nanos));
        if line == gor::SEPARATOR || gor_header {
            return Some(Format::Gor);
        }
        if let Some(date) = line.strip_prefix(b"[") {
            let iso = date.len() > 10
                && digits(&date[..4])
                && date[4] == b'-'
                && digits(&date[5..7])
                && date[7] == b'-'
                && digits(&date[8..10]);
            return iso.then_some(Format::Envoy);
        }
        let open = memchr::memmem::find(line, b" [")?;
        let time = line.get(open + 2..open + 14)?;
        let clf = line[..open].split(|&b| b == b' ').count() >= 3
            && digits(&time[..2])
            && time[2] == b'/'
            && time[3..6].iter().all(u8::is_ascii_alphabetic)
            && time[6] == b'/'
            && digits(&time[7..11])
            && time[11] == b':';
        clf.then_some(Format::AccessLog)
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
    /// Neither its name nor its first line says which format the file is in.
    #[error("{path}: not a traffic file in a format shadowdiff recognises (JSON Lines, HAR, access log, Envoy, GoReplay); name its format with --format")]
    Unrecognised { path: PathBuf },
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
/// which escaping and lossy UTF-8 at most triple) and the JSON around them. Where a
/// response is kept too ([`EntryBound::with_responses`]: JSON Lines, which
/// `--record-responses` writes, and HAR under `replay --against-recorded`) the same holds
/// for two messages: `12 × max-body + 4 MiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryBound {
    /// The bound itself, in bytes.
    pub bytes: u64,
    /// The max-body it was derived from, for messages.
    pub max_body: u64,
    /// Whether an entry's recorded response is read and kept (and covered by the bound).
    pub responses: bool,
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
            responses: false,
        }
    }

    /// The bound for a request and its recorded response, which is then kept.
    pub fn with_responses(self) -> EntryBound {
        EntryBound {
            bytes: self
                .max_body
                .saturating_mul(2 * Self::BODY_FACTOR)
                .saturating_add(2 * Self::HEAD_ALLOWANCE),
            max_body: self.max_body,
            responses: true,
        }
    }

    /// The reason given for a line or an entry over the bound.
    pub(crate) fn refusal(&self, what: &str) -> String {
        let formula = match self.responses {
            false => "6 × max-body + 2 MiB",
            true => "12 × max-body + 4 MiB, a request and its response",
        };
        format!(
            "{what} is longer than {} bytes, the bound for max-body {} ({formula})",
            self.bytes, self.max_body
        )
    }
}

/// Reads a traffic file in `format` as a stream of requests. A request longer than
/// `bound` is refused without being held whole.
pub fn open(path: &Path, format: Format, bound: EntryBound) -> Result<TrafficReader, TrafficError> {
    let reader = buffered(path).map_err(|source| TrafficError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match format {
        Format::JsonLines => {
            TrafficReader::JsonLines(jsonl::JsonLinesReader::new(path, reader, bound))
        }
        Format::Har => TrafficReader::Har(har::HarReader::spawn(path, reader, bound)),
        Format::AccessLog | Format::Envoy => {
            let dialect = if format == Format::Envoy {
                access_log::Dialect::Envoy
            } else {
                access_log::Dialect::Combined
            };
            TrafficReader::AccessLog(access_log::AccessLogReader::new(
                path, dialect, reader, bound,
            ))
        }
        Format::Gor => TrafficReader::Gor(gor::GorReader::new(path, reader, bound)),
    })
}

fn buffered(path: &Path) -> std::io::Result<BufReader<File>> {
    Ok(BufReader::with_capacity(64 * 1024, File::open(path)?))
}

/// Requests in a traffic file, counted without keeping them: non-blank lines of a line
/// format (counted in the read buffer, however long a line is), entries of a HAR log,
/// request payloads of a `.gor` file. `None` when the file cannot be read.
pub fn count_requests(path: &Path, format: Format, bound: EntryBound) -> Option<u64> {
    match format {
        Format::Har => Some(open(path, format, bound).ok()?.count() as u64),
        Format::Gor => gor::count(buffered(path).ok()?, bound),
        Format::JsonLines | Format::AccessLog | Format::Envoy => {
            let mut reader = buffered(path).ok()?;
            let (mut count, mut blank) = (0, true);
            loop {
                let chunk = match reader.fill_buf() {
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
                reader.consume(n);
            }
            Some(count + u64::from(!blank))
        }
    }
}

/// The requests of one traffic file, in file order.
pub enum TrafficReader {
    JsonLines(jsonl::JsonLinesReader<BufReader<File>>),
    Har(har::HarReader),
    AccessLog(access_log::AccessLogReader<BufReader<File>>),
    Gor(gor::GorReader<BufReader<File>>),
}

impl Iterator for TrafficReader {
    type Item = Result<TrafficEntry, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            TrafficReader::JsonLines(r) => r.next(),
            TrafficReader::Har(r) => r.next(),
            TrafficReader::AccessLog(r) => r.next(),
            TrafficReader::Gor(r) => r.next(),
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
            responses: false,
        };
        assert_eq!(count_requests(&path, Format::JsonLines, bound), Some(3));
        assert_eq!(
            count_requests(&dir.path().join("missing.jsonl"), Format::JsonLines, bound),
            None
        );
    }

    #[test]
    fn formats_are_named_by_extension_or_recognised_by_their_first_line() {
        assert_eq!(Format::of_path(Path::new("a.HAR")), Some(Format::Har));
        assert_eq!(Format::of_path(Path::new("a.gor")), Some(Format::Gor));
        assert_eq!(Format::of_path(Path::new("a.log")), None);
        let cases: [(&[u8], Option<Format>); 8] = [
            (b"\n  {\"method\":\"GET\"}", Some(Format::JsonLines)),
            (
                b"1 8e3b2a 1700000000000000000 0\nGET / HTTP/1.1",
                Some(Format::Gor),
            ),
            (
                "\u{1F435}\u{1F648}\u{1F649}\n2 a 1 0".as_bytes(),
                Some(Format::Gor),
            ),
            (
                b"[2016-04-15T20:17:00.310Z] \"GET / HTTP/2\" 200",
                Some(Format::Envoy),
            ),
            (
                b"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1",
                Some(Format::AccessLog),
            ),
            (b"[not a date]", None),
            (b"GET / HTTP/1.1", None),
            (b"h - [10/Oct/2000:13:55:36 -0700]", None),
        ];
        for (start, expected) in cases {
            assert_eq!(
                Format::sniff(start),
                expected,
                "{}",
                String::from_utf8_lossy(start)
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let unknown = dir.path().join("traffic.txt");
        std::fs::write(&unknown, "hello\n").unwrap();
        let error = Format::detect(&unknown).unwrap_err().to_string();
        assert!(
            error.contains("traffic.txt") && error.contains("--format"),
            "{error}"
        );
        // Progress totals: non-blank lines of a log, request payloads of a capture.
        let log = dir.path().join("a.log");
        std::fs::write(
            &log,
            "x - - [01/Jan/2026:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1\n\n-\n",
        )
        .unwrap();
        assert_eq!(
            count_requests(&log, Format::AccessLog, EntryBound::for_max_body(1)),
            Some(2)
        );
        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, "\n\n").unwrap();
        assert_eq!(Format::detect(&empty).unwrap(), Format::JsonLines);
    }
}
