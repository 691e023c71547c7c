//! The store: an SQLite file embedded by default, or a PostgreSQL database a fleet of
//! instances shares. One writer thread per process owns the only write connection; reports
//! open read-only connections.
//!
//! The pipeline writes through [`StoreWriter`]; `report`, `gate`, `show` and `suggest` read
//! through [`StoreReader`], which never blocks or alters a running writer. The schema is
//! documented in docs/STORE.md.
//!
//! - [`location`]: where a store is (`sqlite:PATH`, `postgres://…`), shown without secrets.
//! - `inspect`: what a file is (mark, version, tables), found read-only before anything
//!   writes to it; read-only media.
//! - [`schema`]: SQLite's tables and migrations (`PRAGMA user_version`), the oldest-writer
//!   rule, the digest key; `pg_schema`: the same for PostgreSQL.
//! - `writer`: the writer thread and its batches; `sqlite_sink` and `pg_sink` write them.
//! - `db`: one connection of either engine, for the readers and the store commands.
//! - [`read`]: the queries reports are built from.
//! - [`manage`]: `store copy`, `store prune`, `store migrate`.
//! - [`latency`]: latency histogram buckets.
//! - [`workload`]: synthetic mismatches for benchmarks and demos.

mod db;
mod inspect;
pub(crate) mod latency;
pub mod location;
pub mod manage;
mod pg_schema;
mod pg_sink;
pub(crate) mod read;
pub mod schema;
mod sqlite_sink;
pub mod workload;
mod writer;

pub use location::Location;
pub use read::{ReadFilter, StoreReader};
pub use schema::SCHEMA_VERSION;

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
    /// SQLite's message is part of the line and not also a `source()`, so an error chain
    /// printed with `{:#}` names it (and the path) once.
    #[error("{path}: {}", sqlite_detail(.path, .error))]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("{path}: schema version {found} is newer than this shadowdiff (version {SCHEMA_VERSION}) and only schema {min_writer} or newer may use it; use a newer shadowdiff")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        min_writer: i64,
    },
    #[error("{path}: the store was not closed cleanly and its write-ahead log {wal} cannot be replayed here (read-only directory or filesystem); copy both files to a writable place and read the copy")]
    NeedsRecovery { path: PathBuf, wal: PathBuf },
    #[error("{path}: not a shadowdiff database: {reason}")]
    NotAStore { path: PathBuf, reason: String },
    #[error("{path}: damaged shadowdiff store: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("{path}: cannot make the store's digest key: {reason}")]
    DigestKey { path: PathBuf, reason: String },
    #[error("{path}: cannot be opened for writing: {reason}")]
    Unwritable { path: PathBuf, reason: String },
    #[error("{path}: no stored mismatch with id {id}")]
    NoSuchMismatch { path: PathBuf, id: i64 },
    #[error("the store writer thread panicked")]
    WriterPanicked,
    /// A PostgreSQL store: `store` is its location as shown (no password).
    #[error("{store}: {error}")]
    Postgres { store: String, error: db::DbError },
    #[error("{store}: not connected (the next attempt in {retry_in_ms} ms)")]
    Unavailable { store: String, retry_in_ms: u64 },
    #[error("{store}: {error}")]
    PgSchema {
        store: String,
        error: pg_schema::PgSchemaError,
    },
    #[error("{path}: schema version {found} needs `shadowdiff store migrate` to reach {SCHEMA_VERSION}: the change is not additive, so it is never applied by serve or replay starting up")]
    NeedsMigrate { path: PathBuf, found: i64 },
    #[error("{0}")]
    Location(#[from] location::LocationError),
    #[error("{store}: {reason}")]
    Manage { store: String, reason: String },
}

impl StoreError {
    /// Names the usual ways a file turns out not to be a readable store ("file is not a
    /// database", corruption, missing file) in words, keeping SQLite's detail.
    pub(crate) fn from_sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ffi::ErrorCode;
        let reason = match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => Some("the file is not an SQLite database"),
            Some(ErrorCode::DatabaseCorrupt) => Some("the SQLite file is corrupt"),
            Some(ErrorCode::CannotOpen) => Some("the file cannot be opened"),
            _ => None,
        };
        match reason {
            Some(reason) => StoreError::NotAStore {
                path: path.to_path_buf(),
                reason: format!("{reason} ({})", sqlite_detail(path, &source)),
            },
            None => StoreError::Sqlite {
                path: path.to_path_buf(),
                error: source,
            },
        }
    }
}

/// SQLite's message without the path rusqlite appends to open errors ("unable to open
/// database file: PATH"): every store error already starts with the path, once.
fn sqlite_detail(path: &Path, error: &rusqlite::Error) -> String {
    let text = error.to_string();
    let suffix = format!(": {}", path.display());
    match text.strip_suffix(&suffix) {
        Some(short) => short.to_string(),
        None => text,
    }
}

/// Milliseconds since the Unix epoch; times before it (a broken clock) count as 0.
pub(crate) fn millis_since_epoch(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
    /// Which instance of a fleet ran it (`--instance`; empty: the host name).
    pub instance: String,
    /// Which leg's responses the clients got (`--answer-from`); a replay answers nobody
    /// and says primary.
    pub answered_by: Leg,
}

/// The name an instance goes by when `--instance` is not given: the host name (a pod's
/// name under Kubernetes), or `unknown`.
pub fn default_instance() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// A run's identity across stores (`runs.uid`): 128 random bits, so `store copy` can tell
/// a run it has copied before from a new one, whichever store it comes from.
fn new_run_uid() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: time and process id still make a collision unlikely.
        let seed =
            millis_since_epoch(SystemTime::now()) as u64 ^ u64::from(std::process::id()) << 40;
        bytes[..8].copy_from_slice(&seed.to_be_bytes());
        bytes[8..].copy_from_slice(&fastrand::u64(..).to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Matched,
    Mismatched,
    Error { leg: Leg, kind: ErrorKind },
    Skipped(SkipReason),
}

impl Outcome {
    pub fn kind(self) -> OutcomeKind {
        match self {
            Outcome::Matched => OutcomeKind::Matched,
            Outcome::Mismatched => OutcomeKind::Mismatched,
            Outcome::Error { .. } => OutcomeKind::Error,
            Outcome::Skipped(_) => OutcomeKind::Skipped,
        }
    }
}

/// The four ways a request ends, without their detail: the one spelling of the store's
/// `outcome` column and of the `outcome` label of `shadowdiff_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeKind {
    Matched,
    Mismatched,
    Error,
    Skipped,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 4] = [
        OutcomeKind::Matched,
        OutcomeKind::Mismatched,
        OutcomeKind::Error,
        OutcomeKind::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Matched => "matched",
            OutcomeKind::Mismatched => "mismatched",
            OutcomeKind::Error => "error",
            OutcomeKind::Skipped => "skipped",
        }
    }

    /// The kind a stored `outcome` column names; `None` for a value no release writes.
    pub fn parse(text: &str) -> Option<OutcomeKind> {
        OutcomeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Its index in [`OutcomeKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Everything stored about a mismatch beyond its counters. Secrets are already redacted.
#[derive(Clone, Debug)]
pub struct MismatchDetail {
    pub request: RecordedRequest,
    pub primary: Captured,
    pub secondary: Captured,
    pub differences: Vec<Difference>,
    pub body_diff: Option<String>,
    /// What `[[rewrite]]` changed in the secondary's copy, one redacted line each.
    pub rewrites: Vec<String>,
}

/// One request's result, as the pipeline hands it to the writer.
#[derive(Clone, Debug)]
pub struct Record {
    /// How many requests this record stands for: 1, or skipped requests of one route,
    /// reason and minute that the compare thread counted as one record.
    pub count: u64,
    pub at: SystemTime,
    pub route: String,
    pub outcome: Outcome,
    pub primary_status: Option<u16>,
    pub secondary_status: Option<u16>,
    pub primary_latency: Option<Duration>,
    pub secondary_latency: Option<Duration>,
    pub hidden: Vec<HiddenCount>,
    pub mismatch: Option<Box<MismatchDetail>>,
    /// How the baseline served this comparison, when one is configured.
    pub baseline: Option<BaselineUse>,
}

/// What a configured baseline did for one compared request (`baseline_counts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineUse {
    /// Its differences from the primary were this request's noise.
    Used,
    Unusable(crate::exchange::BaselineUnusable),
}

impl Record {
    /// One request's record with only its outcome known: a skip as it stands, and the
    /// start of every other record.
    pub fn new(at: SystemTime, route: String, outcome: Outcome) -> Record {
        Record {
            count: 1,
            at,
            route,
            outcome,
            primary_status: None,
            secondary_status: None,
            primary_latency: None,
            secondary_latency: None,
            hidden: Vec::new(),
            mismatch: None,
            baseline: None,
        }
    }
}

/// Why observations never reached the store, as the `losses` table, the log and the
/// `shadowdiff_store_lost_total` metric name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossReason {
    /// SQLite could not grow the file or its write-ahead log (`SQLITE_FULL`).
    DiskFull,
    /// Any other failed write (I/O error, a read-only file, a damaged file, a refused
    /// statement).
    WriteError,
    /// The database could not be reached: down, restarting, or the connection broke.
    Unavailable,
}

impl LossReason {
    pub const ALL: [LossReason; 3] = [
        LossReason::DiskFull,
        LossReason::WriteError,
        LossReason::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::DiskFull => "disk_full",
            LossReason::WriteError => "write_error",
            LossReason::Unavailable => "store_unavailable",
        }
    }

    /// Words for reports: "N observations lost: disk full".
    pub fn describe(reason: &str) -> &str {
        match reason {
            "disk_full" => "disk full",
            "write_error" => "write error",
            "store_unavailable" => "the database could not be reached",
            other => other,
        }
    }
}

/// Observations the writer gave up on, per reason, counted as they are lost (for metrics).
#[derive(Debug, Default)]
pub struct LossCounters([AtomicU64; 3]);

/// Whether the writer's store is reachable, for `/status`: an SQLite file always is once
/// open; a database connection comes and goes.
#[derive(Debug)]
pub struct StoreState {
    connected: std::sync::atomic::AtomicBool,
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// The location as shown.
    pub shown: String,
}

impl StoreState {
    pub(crate) fn new(location: &Location) -> StoreState {
        StoreState {
            connected: std::sync::atomic::AtomicBool::new(true),
            engine: match location {
                Location::Sqlite(_) => "sqlite",
                Location::Postgres(_) => "postgres",
            },
            shown: location.shown(),
        }
    }

    pub fn connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_connected(&self, on: bool) {
        self.connected
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }
}

impl LossCounters {
    pub fn add(&self, reason: LossReason, count: u64) {
        self.0[reason as usize].fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self, reason: LossReason) -> u64 {
        self.0[reason as usize].load(std::sync::atomic::Ordering::Relaxed)
    }
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
    /// Batches that could not be written, counted as they fail (for metrics).
    pub write_errors: Arc<AtomicU64>,
    /// Observations lost after the writer stopped retrying, by reason (for metrics).
    pub lost: Arc<LossCounters>,
    /// Records held while the database is unreachable, written when it is back; past this,
    /// the oldest are counted lost (`store_unavailable`).
    pub backlog_records: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            examples_per_signature: 20,
            max_db_size: None,
            dropped: Arc::new(AtomicU64::new(0)),
            write_errors: Arc::new(AtomicU64::new(0)),
            lost: Arc::new(LossCounters::default()),
            backlog_records: 10_000,
        }
    }
}

/// The writer thread and the channel into it.
pub struct StoreWriter {
    tx: flume::Sender<Record>,
    thread: JoinHandle<Result<(), StoreError>>,
    run_id: i64,
    digest_key: [u8; schema::DIGEST_KEY_LEN],
    state: Arc<StoreState>,
}

impl StoreWriter {
    /// Opens (creating or migrating by additive steps) the store, records the run and
    /// starts the writer thread. Fails here, before any listener opens, when the store
    /// cannot be written; a store that is refused is left unchanged.
    pub fn open(
        location: impl Into<Location>,
        run: RunInfo,
        options: StoreOptions,
    ) -> Result<StoreWriter, StoreError> {
        let location = &location.into();
        let state = Arc::new(StoreState::new(location));
        let (sink, run_id, digest_key): (Box<dyn writer::Sink>, i64, _) = match location {
            Location::Sqlite(path) => {
                let (conn, run_id, key) = open_sqlite(path, &run)?;
                (
                    Box::new(sqlite_sink::SqliteSink::new(conn, path.clone())),
                    run_id,
                    key,
                )
            }
            // The client blocks on its own runtime, which must not be started from within
            // the caller's (serve opens the store on its runtime): the connection is made
            // on a thread of its own, and used from the writer's.
            Location::Postgres(target) => std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        let (client, run_id, key) = open_postgres(target, &run)?;
                        let sink = pg_sink::PgSink::new((**target).clone(), client, state.clone())?;
                        Ok::<_, StoreError>((Box::new(sink) as Box<dyn writer::Sink>, run_id, key))
                    })
                    .join()
                    .map_err(|_| StoreError::WriterPanicked)?
            })?,
        };
        let (tx, rx) = flume::bounded::<Record>(4096);
        let writer = writer::Writer::new(sink, run_id, options);
        let thread = std::thread::Builder::new()
            .name("shadowdiff-store".into())
            .spawn(move || writer.run(rx))
            .expect("spawning the store thread");
        Ok(StoreWriter {
            tx,
            thread,
            run_id,
            digest_key,
            state,
        })
    }

    /// The id of the run this writer records, as `report --run` takes it.
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// The store's secret key for keyed digests of redacted values (see docs/STORE.md,
    /// `meta`). Never print or log it.
    pub fn digest_key(&self) -> [u8; 32] {
        self.digest_key
    }

    /// Whether the store is reachable now, for `/status`.
    pub fn state(&self) -> Arc<StoreState> {
        self.state.clone()
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

fn schema_error(path: &Path, e: schema::SchemaError) -> StoreError {
    match e {
        schema::SchemaError::Newer { found, min_writer } => StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            min_writer,
        },
        schema::SchemaError::NeedsMigrate { found } => StoreError::NeedsMigrate {
            path: path.to_path_buf(),
            found,
        },
        schema::SchemaError::Sqlite(source) => StoreError::from_sqlite(path, source),
        schema::SchemaError::Entropy(reason) => StoreError::DigestKey {
            path: path.to_path_buf(),
            reason,
        },
        other @ schema::SchemaError::DamagedDigestKey => StoreError::Damaged {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// The SQLite half of [`StoreWriter::open`]: the write connection, the run's id, the key.
fn open_sqlite(
    path: &Path,
    run: &RunInfo,
) -> Result<(rusqlite::Connection, i64, [u8; schema::DIGEST_KEY_LEN]), StoreError> {
    let (conn, digest_key) = prepare_sqlite(path)?;
    conn.execute(
        "INSERT INTO runs (mode, primary_url, secondary_url, config_digest, tool_version,
             rules, started_ms, instance, uid, answered_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        rusqlite::params![
            run.mode,
            run.primary,
            run.secondary,
            run.config_digest,
            env!("CARGO_PKG_VERSION"),
            serde_json::to_string(&run.rules).unwrap_or_else(|_| "[]".into()),
            millis_since_epoch(SystemTime::now()),
            instance_of(run),
            new_run_uid(),
            run.answered_by.as_str(),
        ],
    )
    .map_err(|e| StoreError::from_sqlite(path, e))?;
    let run_id = conn.last_insert_rowid();
    Ok((conn, run_id, digest_key))
}

/// Opens an SQLite store for writing: refused unchanged unless it is a store this build
/// may write (or nothing yet), then brought up to date by its additive steps.
fn prepare_sqlite(
    path: &Path,
) -> Result<(rusqlite::Connection, [u8; schema::DIGEST_KEY_LEN]), StoreError> {
    let sqlite = |source| StoreError::from_sqlite(path, source);
    // Refuse before anything below writes: a refused file keeps every byte.
    let found = inspect::inspect_for_writing(path)?;
    let mut conn = rusqlite::Connection::open(path).map_err(|e| StoreError::Unwritable {
        path: path.to_path_buf(),
        reason: sqlite_detail(path, &e),
    })?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite)?;
    // WAL lets report and gate read while serve writes; NORMAL sync is durable across
    // process crashes, which is what a sidecar needs, at a fraction of FULL's fsyncs.
    conn.pragma_update_and_check(None, "journal_mode", "wal", |_| Ok(()))
        .map_err(sqlite)?;
    conn.pragma_update(None, "synchronous", "normal")
        .map_err(sqlite)?;
    schema::migrate(&mut conn).map_err(|e| schema_error(path, e))?;
    if !matches!(found, inspect::Found::Store { marked: true }) {
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .map_err(sqlite)?;
    }
    let digest_key = schema::digest_key(&conn).map_err(|e| schema_error(path, e))?;
    Ok((conn, digest_key))
}

/// A connection to a PostgreSQL store, its error naming the store as shown.
fn connect(target: &location::PgTarget) -> Result<postgres::Client, StoreError> {
    db::connect_pg(target).map_err(|error| StoreError::Postgres {
        store: target.shown().to_string(),
        error,
    })
}

/// A schema refusal of a PostgreSQL store, naming it.
fn schema_refused(target: &location::PgTarget, error: pg_schema::PgSchemaError) -> StoreError {
    StoreError::PgSchema {
        store: target.shown().to_string(),
        error,
    }
}

/// A store opened for writing by the store commands (copy, prune): the same refusals and
/// additive steps as a writer starting up, without a run of its own.
fn open_for_managing(location: &Location) -> Result<db::Conn, StoreError> {
    match location {
        Location::Sqlite(path) => Ok(db::Conn::Sqlite(prepare_sqlite(path)?.0)),
        Location::Postgres(target) => {
            let mut client = connect(target)?;
            pg_schema::prepare_for_writing(&mut client).map_err(|e| schema_refused(target, e))?;
            Ok(db::Conn::Postgres(Box::new(std::cell::RefCell::new(
                client,
            ))))
        }
    }
}

fn instance_of(run: &RunInfo) -> String {
    match run.instance.is_empty() {
        true => default_instance(),
        false => run.instance.clone(),
    }
}

/// The PostgreSQL half of [`StoreWriter::open`].
fn open_postgres(
    target: &location::PgTarget,
    run: &RunInfo,
) -> Result<(postgres::Client, i64, [u8; schema::DIGEST_KEY_LEN]), StoreError> {
    let store = || target.shown().to_string();
    let mut client = db::connect_pg(target).map_err(|error| StoreError::Postgres {
        store: store(),
        error,
    })?;
    let prepared =
        pg_schema::prepare_for_writing(&mut client).map_err(|error| StoreError::PgSchema {
            store: store(),
            error,
        })?;
    let row = client
        .query_one(
            "INSERT INTO runs (uid, instance, mode, primary_url, secondary_url, config_digest,
                 tool_version, rules, started_ms, answered_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &new_run_uid(),
                &instance_of(run),
                &run.mode,
                &run.primary,
                &run.secondary,
                &run.config_digest,
                &env!("CARGO_PKG_VERSION"),
                &serde_json::to_string(&run.rules).unwrap_or_else(|_| "[]".into()),
                &millis_since_epoch(SystemTime::now()),
                &run.answered_by.as_str(),
            ],
        )
        .map_err(|e| StoreError::Postgres {
            store: store(),
            error: db::DbError::Postgres(e),
        })?;
    Ok((client, row.get(0), prepared.digest_key))
}
