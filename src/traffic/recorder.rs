//! Appends the requests `serve` shadows to a JSONL traffic file, for replay later.
//!
//! The proxy only hands the request (reference-counted body, copied headers) to a writer
//! thread through a bounded channel; formatting and writing happen there, never on the
//! async runtime, and nothing waits on the disk. A full channel counts the line as dropped, like
//! every other thing shadowdiff does not do. The file rotates when the next line would
//! take it past the maximum size: `FILE` becomes `FILE.1` (then `FILE.2`, ..., the lowest
//! number being the oldest) and a fresh `FILE` starts, so no line is ever split.
//!
//! A write that fails (a full disk) never stops serving: the file is cut back to its last
//! whole line, the lines that did not make it are counted, a log line names the file, and
//! later lines are tried again. [`Recorder::finish`] then fails with the count, so serve's
//! exit status tells that the record is incomplete.

use super::jsonl::{to_line, to_line_with_response};
use crate::exchange::{Captured, RecordedRequest};
use crate::redact::{RedactRules, Redactor};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

/// How the recorder writes.
#[derive(Clone, Debug, Default)]
pub struct RecorderOptions {
    /// Rotate before a line would take the file past this many bytes; `None`: never.
    pub max_size: Option<u64>,
    /// Keep Authorization, Cookie and the other secrets (query, body fields) as they were
    /// sent.
    pub keep_secrets: bool,
    /// What is secret; record files carry `[redacted]` without a digest (nothing compares
    /// their values, so no key is kept for them).
    pub redact: Arc<RedactRules>,
    /// `--record-responses`: the primary's response is written beside each request, for
    /// `replay --against-recorded`.
    pub responses: bool,
}

/// The record file could not be opened, written or rotated.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The I/O error is part of the line and not also a `source()`, so a chain printed
    /// with `{:#}` names the file and the error once.
    #[error("record file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("record file {path}: {count} requests not recorded: {reason}")]
    Incomplete {
        path: PathBuf,
        count: u64,
        reason: String,
    },
    #[error("the recorder thread panicked")]
    WriterPanicked,
}

/// Bytes gathered before they are written: one write per this much, or whenever the queue
/// is empty.
const BUFFER: usize = 64 * 1024;

/// What the writer thread receives.
enum Message {
    Request(SystemTime, Box<RecordedRequest>, Option<Box<Captured>>),
    /// Flush and stop, even while request senders are still alive (a proxy connection
    /// that outlives the drain).
    Close,
}

/// A running recorder. Share it behind an `Arc`; [`Recorder::finish`] flushes and stops it.
pub struct Recorder {
    tx: flume::Sender<Message>,
    responses: bool,
    dropped: Arc<AtomicU64>,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<Result<(), RecorderError>>>>,
}

impl Recorder {
    /// Opens `path` for appending (creating it) and starts the writer thread. Fails here,
    /// before serving starts, when the file cannot be written.
    pub fn open(path: &Path, options: RecorderOptions) -> Result<Recorder, RecorderError> {
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|source| io_error(path, source))?
            .len();
        let (tx, rx) = flume::bounded::<Message>(8192);
        let redactor = (!options.keep_secrets).then(|| Redactor::without_digests(options.redact));
        let mut writer = RecordFile {
            path: path.to_path_buf(),
            file,
            buffer: Vec::with_capacity(BUFFER),
            buffered_lines: 0,
            size,
            max_size: options.max_size,
            unrecorded: 0,
            failure: None,
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("shadowdiff-recorder".into())
            .spawn(move || {
                while let Ok(Message::Request(at, mut request, response)) = rx.recv() {
                    let ts = chrono::DateTime::<chrono::Utc>::from(at)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                    let line = match response {
                        None => {
                            if let Some(redactor) = &redactor {
                                redactor.request(&mut request);
                            }
                            to_line(Some(&ts), &request)
                        }
                        Some(mut response) => {
                            if let Some(redactor) = &redactor {
                                redactor.recorded_exchange(&mut request, &mut response);
                            }
                            to_line_with_response(Some(&ts), &request, &response)
                        }
                    };
                    writer.write_line(&line);
                    // Flush whenever the queue is empty, so a crash loses little.
                    if rx.is_empty() {
                        writer.flush();
                    }
                }
                writer.flush();
                writer.outcome()
            })
            .expect("spawning the recorder thread");
        Ok(Recorder {
            tx,
            responses: options.responses,
            dropped: Arc::new(AtomicU64::new(0)),
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues one request, stamped with the current time; never waits. Secret values are
    /// redacted (on the writer thread) unless the recorder keeps secrets.
    pub fn record(&self, request: &RecordedRequest) {
        self.record_at(SystemTime::now(), request)
    }

    /// Queues one request with the time it was received; a full queue or a closed
    /// recorder counts it as dropped.
    pub fn record_at(&self, at: SystemTime, request: &RecordedRequest) {
        self.send(Message::Request(at, Box::new(request.clone()), None));
    }

    /// Whether lines carry the primary's response (`--record-responses`): the proxy then
    /// records once that response is known, with [`Recorder::record_exchange`].
    pub fn records_responses(&self) -> bool {
        self.responses
    }

    /// Queues a request with the primary's response (`None` when the primary gave none:
    /// the line then holds the request alone).
    pub fn record_exchange(
        &self,
        at: SystemTime,
        request: &RecordedRequest,
        response: Option<&Captured>,
    ) {
        let response = response.map(|r| Box::new(r.clone()));
        self.send(Message::Request(at, Box::new(request.clone()), response));
    }

    fn send(&self, message: Message) {
        if self.closed.load(Ordering::Acquire) || self.tx.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests not recorded because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes everything queued and closes the file. Later calls do nothing.
    pub fn finish(&self) -> Result<(), RecorderError> {
        self.closed.store(true, Ordering::Release);
        let Some(thread) = self
            .thread
            .lock()
            .map_err(|_| RecorderError::WriterPanicked)?
            .take()
        else {
            return Ok(());
        };
        let _ = self.tx.send(Message::Close);
        thread.join().map_err(|_| RecorderError::WriterPanicked)?
    }
}

struct RecordFile {
    path: PathBuf,
    file: File,
    /// Whole lines not yet written.
    buffer: Vec<u8>,
    buffered_lines: u64,
    /// Bytes of `file` on disk, all whole lines.
    size: u64,
    max_size: Option<u64>,
    /// Lines lost to failed writes.
    unrecorded: u64,
    /// The first failed write, for the error at the end.
    failure: Option<std::io::Error>,
    /// Whether the last write failed (so a long outage is logged once, not per line).
    failing: bool,
}

impl RecordFile {
    fn write_line(&mut self, line: &str) {
        let len = line.len() as u64 + 1;
        if let Some(max) = self.max_size {
            let pending = self.size + self.buffer.len() as u64;
            if pending > 0 && pending + len > max {
                if let Err(error) = self.rotate() {
                    self.failed(error, 1);
                    return;
                }
            }
        }
        self.buffer.extend_from_slice(line.as_bytes());
        self.buffer.push(b'\n');
        self.buffered_lines += 1;
        if self.buffer.len() >= BUFFER {
            self.flush();
        }
    }

    /// Writes the buffered lines. On failure the file is cut back to its last whole line
    /// (a partial line would corrupt the one appended after it) and the lines are counted.
    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        match self.file.write_all(&self.buffer) {
            Ok(()) => {
                self.size += self.buffer.len() as u64;
                if self.failing {
                    tracing::info!(file = %self.path.display(), "record file: writable again");
                    self.failing = false;
                }
            }
            Err(error) => {
                // Appending writes at the end, so after the cut the next write follows the
                // last whole line.
                let _ = self.file.set_len(self.size);
                self.failed(error, self.buffered_lines);
            }
        }
        self.buffer.clear();
        self.buffered_lines = 0;
    }

    fn failed(&mut self, error: std::io::Error, lines: u64) {
        self.unrecorded += lines;
        if !self.failing {
            tracing::error!(
                file = %self.path.display(),
                %error,
                "record file: cannot write; requests are not recorded while this lasts (counted)"
            );
            self.failing = true;
        }
        self.failure.get_or_insert(error);
    }

    fn outcome(self) -> Result<(), RecorderError> {
        match self.failure {
            None => Ok(()),
            Some(error) => Err(RecorderError::Incomplete {
                path: self.path,
                count: self.unrecorded,
                reason: error.to_string(),
            }),
        }
    }

    /// Moves the full file to the first free `FILE.N` and starts an empty one.
    fn rotate(&mut self) -> Result<(), std::io::Error> {
        self.flush();
        let mut n = 1u32;
        let rotated = loop {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            let candidate = PathBuf::from(name);
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        std::fs::rename(&self.path, &rotated)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, RecorderError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, error: std::io::Error) -> RecorderError {
    RecorderError::Io {
        path: path.to_path_buf(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn request(n: usize) -> RecordedRequest {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
        headers.insert("x-n", HeaderValue::from_str(&n.to_string()).unwrap());
        RecordedRequest {
            method: Method::GET,
            uri: format!("/items/{n}").parse().unwrap(),
            headers,
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn redacts_and_rotates_without_splitting_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let recorder = Recorder::open(
            &path,
            RecorderOptions {
                max_size: Some(400),
                keep_secrets: false,
                ..RecorderOptions::default()
            },
        )
        .unwrap();
        for n in 0..10 {
            recorder.record(&request(n));
        }
        recorder.finish().unwrap();
        let mut files = vec![];
        let mut n = 1;
        loop {
            let p = dir.path().join(format!("rec.jsonl.{n}"));
            if !p.exists() {
                break;
            }
            files.push(p);
            n += 1;
        }
        files.push(path);
        assert!(files.len() > 1, "rotated at least once");
        let mut seen = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.len() <= 400);
            for line in text.lines() {
                let (_, req) = crate::traffic::jsonl::parse_line(line.as_bytes()).unwrap();
                assert_eq!(req.headers["authorization"], crate::redact::REDACTED);
                assert_eq!(req.uri, format!("/items/{seen}").as_str());
                seen += 1;
            }
        }
        assert_eq!(seen, 10);
    }
}
