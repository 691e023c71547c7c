//! The schema and its migrations, versioned by `PRAGMA user_version`.
//!
//! Each entry of `MIGRATIONS` moves the file one version forward and never changes once
//! released, so any older store can be brought up to date and a newer one is recognised
//! (and refused) instead of being misread.

use rusqlite::Connection;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Statements that take a store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    mode            TEXT NOT NULL,
    primary_url     TEXT NOT NULL,
    secondary_url   TEXT NOT NULL,
    config_digest   TEXT NOT NULL,
    tool_version    TEXT NOT NULL,
    rules           TEXT NOT NULL,          -- JSON array of every configured rule id
    started_ms      INTEGER NOT NULL,
    finished_ms     INTEGER,                -- NULL while running or after a crash
    dropped         INTEGER NOT NULL DEFAULT 0,
    examples_stopped_ms INTEGER             -- when --max-db-size stopped keeping examples
);

CREATE TABLE outcome_counts (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    minute   INTEGER NOT NULL,              -- unix time / 60
    route    TEXT NOT NULL,
    outcome  TEXT NOT NULL,                 -- matched | mismatched | error | skipped
    reason   TEXT NOT NULL,                 -- '' | <leg>:<error kind> | <skip reason>
    count    INTEGER NOT NULL,
    PRIMARY KEY (run_id, minute, route, outcome, reason)
) WITHOUT ROWID;

CREATE TABLE latency_buckets (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    minute   INTEGER NOT NULL,
    route    TEXT NOT NULL,
    leg      TEXT NOT NULL,                 -- primary | secondary
    bucket   INTEGER NOT NULL,              -- see store::latency
    count    INTEGER NOT NULL,
    PRIMARY KEY (run_id, minute, route, leg, bucket)
) WITHOUT ROWID;

CREATE TABLE path_counts (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    minute   INTEGER NOT NULL,
    route    TEXT NOT NULL,
    path     TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (run_id, minute, route, path)
) WITHOUT ROWID;

CREATE TABLE hidden_counts (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    minute   INTEGER NOT NULL,
    route    TEXT NOT NULL,
    rule     TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (run_id, minute, route, rule)
) WITHOUT ROWID;

CREATE TABLE mismatches (
    id                   INTEGER PRIMARY KEY,
    run_id               INTEGER NOT NULL REFERENCES runs(id),
    at_ms                INTEGER NOT NULL,
    route                TEXT NOT NULL,
    signature            TEXT NOT NULL,     -- sorted differing paths, joined by ", "
    method               TEXT NOT NULL,
    uri                  TEXT NOT NULL,
    primary_status       INTEGER NOT NULL,
    secondary_status     INTEGER NOT NULL,
    primary_latency_us   INTEGER NOT NULL,
    secondary_latency_us INTEGER NOT NULL,
    is_example           INTEGER NOT NULL,  -- 1 when the bodies below are kept
    request_headers      TEXT,              -- JSON [[name, value], ...], redacted
    request_body         BLOB,
    primary_headers      TEXT,
    primary_body         BLOB,
    secondary_headers    TEXT,
    secondary_body       BLOB,
    body_diff            TEXT
);
CREATE INDEX mismatches_examples ON mismatches (route, is_example, id);

CREATE TABLE differences (
    mismatch_id     INTEGER NOT NULL REFERENCES mismatches(id),
    path            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    primary_value   TEXT,
    secondary_value TEXT
);
CREATE INDEX differences_by_mismatch ON differences (mismatch_id);
CREATE INDEX differences_by_path ON differences (path);
"#,
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('min_writer_schema', 1);

CREATE TABLE losses (
    run_id  INTEGER NOT NULL REFERENCES runs(id),
    at_ms   INTEGER NOT NULL,               -- when the loss was written down
    reason  TEXT NOT NULL,                  -- disk_full | io | ...
    count   INTEGER NOT NULL                -- observations that never reached the store
);
"#,
    // Additive (issue 15): older writers go on writing without these, so the oldest
    // writer allowed stays the same.
    r#"
ALTER TABLE differences ADD COLUMN to_path TEXT;  -- a renamed key's new path

CREATE TABLE baseline_counts (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    minute   INTEGER NOT NULL,
    route    TEXT NOT NULL,
    state    TEXT NOT NULL,                 -- used | unusable
    reason   TEXT NOT NULL,                 -- '' | baseline:<error kind> | status | ...
    count    INTEGER NOT NULL,
    PRIMARY KEY (run_id, minute, route, state, reason)
) WITHOUT ROWID;
"#,
];

/// Length of the per-store key for keyed digests of redacted values.
pub const DIGEST_KEY_LEN: usize = 32;

/// `PRAGMA application_id` of every shadowdiff store: "SHDF" in ASCII. It tells a store
/// from another application's SQLite file without reading its tables
/// (<https://sqlite.org/fileformat.html#application_id>).
pub const APPLICATION_ID: i32 = 0x5348_4446;

/// A store whose version this build cannot handle.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schema version {found} is newer than this shadowdiff ({SCHEMA_VERSION}) and needs schema {min_writer} or newer to write to it; upgrade shadowdiff")]
    Newer { found: i64, min_writer: i64 },
    #[error("its digest key (table meta) is not {DIGEST_KEY_LEN} bytes")]
    DamagedDigestKey,
    #[error("no randomness for a new digest key: {0}")]
    Entropy(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The oldest-writer rule: a store newer than this build may still be used by it when the
/// store's `meta.min_writer_schema` (the oldest schema whose writers may write to it) is not
/// newer than [`SCHEMA_VERSION`]. Additive changes leave it alone, so instances of several
/// releases can share a store during a rolling deploy; a change older writers would corrupt
/// raises it. A newer store without the row is refused: nothing says older writers are safe.
pub fn check_version(conn: &Connection) -> Result<(), SchemaError> {
    use rusqlite::OptionalExtension;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found <= SCHEMA_VERSION {
        return Ok(());
    }
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
        [],
        |row| row.get(0),
    )?;
    let min_writer: Option<i64> = if has_meta {
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'min_writer_schema'",
            [],
            |row| row.get(0),
        )
        .optional()?
    } else {
        None
    };
    let min_writer = min_writer.unwrap_or(found);
    if min_writer > SCHEMA_VERSION {
        return Err(SchemaError::Newer { found, min_writer });
    }
    Ok(())
}

/// Brings a writable store up to [`SCHEMA_VERSION`], one transaction per step; a newer
/// store that [`check_version`] allows is written as it is.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    check_version(conn)?;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (from, statements) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(statements)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The store's secret key for keyed digests of redacted values, made on first use.
///
/// Digests of a secret are only ever compared within one difference (primary's against
/// secondary's), so the key only has to stay the same for the life of the file; it is kept
/// in `meta` and never printed. The 32 bytes come from the operating system's CSPRNG
/// (`getrandom`), not from `fastrand`: a guessable key would let anyone with the file test
/// candidate secrets against their digests.
pub fn digest_key(conn: &Connection) -> Result<[u8; DIGEST_KEY_LEN], SchemaError> {
    use rusqlite::OptionalExtension;
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'digest_key'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let bytes = match stored {
        Some(bytes) => bytes,
        None => {
            let mut fresh = [0u8; DIGEST_KEY_LEN];
            getrandom::fill(&mut fresh).map_err(|e| SchemaError::Entropy(e.to_string()))?;
            // OR IGNORE: a second writer racing us to create the key keeps the first one.
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('digest_key', ?1)",
                [&fresh[..]],
            )?;
            conn.query_row(
                "SELECT value FROM meta WHERE key = 'digest_key'",
                [],
                |row| row.get(0),
            )?
        }
    };
    bytes.try_into().map_err(|_| SchemaError::DamagedDigestKey)
}
