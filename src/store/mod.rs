//! The SQLite store: one writer thread owns the only write connection; reports open
//! read-only connections.
//!
//! This is the interface the pipeline writes through. (Stub: the schema, the batching
//! writer and the read queries land with the store issue.)

use crate::compare::{Difference, HiddenCount};
use crate::exchange::{Captured, ErrorKind, Leg, RecordedRequest, SkipReason};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// A store that could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the store writer thread panicked")]
    WriterPanicked,
}

/// What one invocation of serve or replay was, written once per run.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// `serve` or `replay`.
    pub mode: String,
    pub primary: String,
    pub secondary: String,
    /// SHA-256 of the effective configuration, so reports can tell runs with other rules apart.
    pub config_digest: String,
    /// Identifiers of every configured rule, so a report can name the unused ones.
    pub rules: Vec<String>,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Matched,
    Mismatched,
    Error { leg: Leg, kind: ErrorKind },
    Skipped(SkipReason),
}

/// Everything stored about a mismatch beyond its counters. Secrets are already redacted.
#[derive(Clone, Debug)]
pub struct MismatchDetail {
    pub request: RecordedRequest,
    pub primary: Captured,
    pub secondary: Captured,
    pub differences: Vec<Difference>,
    pub body_diff: Option<String>,
}

/// One request's result, as the pipeline hands it to the writer.
#[derive(Clone, Debug)]
pub struct Record {
    pub at: SystemTime,
    pub route: String,
    pub outcome: Outcome,
    pub primary_status: Option<u16>,
    pub secondary_status: Option<u16>,
    pub primary_latency: Option<Duration>,
    pub secondary_latency: Option<Duration>,
    pub hidden: Vec<HiddenCount>,
    pub mismatch: Option<Box<MismatchDetail>>,
}

/// Limits on what the store keeps.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Full bodies are kept for this many mismatches per (route, difference signature).
    pub examples_per_signature: u32,
    /// Past this size, examples stop being stored (counts never stop).
    pub max_db_size: Option<u64>,
    /// Observations the pipeline had to drop because it was full; persisted with the run.
    pub dropped: Arc<AtomicU64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            examples_per_signature: 20,
            max_db_size: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// The writer thread and the channel into it.
pub struct StoreWriter {
    tx: flume::Sender<Record>,
    thread: JoinHandle<Result<(), StoreError>>,
}

impl StoreWriter {
    /// Opens (creating or migrating) the database and starts the writer thread. Fails here,
    /// before any listener opens, when the file cannot be written.
    pub fn open(
        path: &Path,
        _run: RunInfo,
        _options: StoreOptions,
    ) -> Result<StoreWriter, StoreError> {
        let conn = rusqlite::Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let (tx, rx) = flume::bounded::<Record>(4096);
        let thread = std::thread::Builder::new()
            .name("shadowdiff-store".into())
            .spawn(move || {
                let _conn = conn;
                for _record in rx.iter() {}
                Ok(())
            })
            .expect("spawning the store thread");
        Ok(StoreWriter { tx, thread })
    }

    /// A sender for records; sending blocks while the writer is behind.
    pub fn sender(&self) -> flume::Sender<Record> {
        self.tx.clone()
    }

    /// Commits everything queued and stops the thread.
    pub fn finish(self) -> Result<(), StoreError> {
        drop(self.tx);
        self.thread.join().map_err(|_| StoreError::WriterPanicked)?
    }
}
