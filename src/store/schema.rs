//! The schema and its migrations, versioned by `PRAGMA user_version`.
//!
//! Each entry of `MIGRATIONS` moves the file one version forward and never changes once
//! released, so any older store can be brought up to date and a newer one is recognised
//! (and refused) instead of being misread.

use rusqlite::Connection;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One step of a schema: its statements, and whether writers of the version before may
/// still write after it. An additive step (a new table, a new nullable column) is applied
/// by any writer starting up; one that is not raises `min_writer_schema` to its version and
/// is applied only by `shadowdiff store migrate`, so a rolling deploy never breaks the
/// instances still running the older release.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub sql: &'static str,
    pub additive: bool,
}

/// Statements that take a store from version `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        additive: true,
        sql: r#"
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
    },
    Migration {
        additive: true,
        sql: r#"
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
    },
    // Additive (issue 15): older writers go on writing without these, so the oldest
    // writer allowed stays the same.
    Migration {
        additive: true,
        sql: r#"
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
    },
    // Additive (issue 16): the instance that wrote a run, and the run's identity across
    // stores (store copy keys on it; NULL for runs written before, which copy derives).
    Migration {
        additive: true,
        sql: r#"
ALTER TABLE runs ADD COLUMN instance TEXT;
ALTER TABLE runs ADD COLUMN uid TEXT;
ALTER TABLE runs ADD COLUMN copied_through INTEGER;  -- store copy: the source's last mismatch id copied
CREATE UNIQUE INDEX runs_by_uid ON runs (uid);
CREATE INDEX mismatches_by_run ON mismatches (run_id, id);
"#,
    },
    // Additive (issues 17, 18): what `[[rewrite]]` changed in the secondary's copy of a
    // kept mismatch, which leg answered the clients during a run, per-second counts.
    Migration {
        additive: true,
        sql: r#"
ALTER TABLE mismatches ADD COLUMN rewrites TEXT;  -- JSON ["path /v1/a -> /v2/a", ...], redacted
ALTER TABLE runs ADD COLUMN answered_by TEXT;     -- primary | secondary; NULL before: primary

-- Compared requests per second over all routes: the time chart of a short run (a demo, a
-- CI replay) in seconds, where the per-minute tables give one bar.
CREATE TABLE second_counts (
    run_id   INTEGER NOT NULL REFERENCES runs(id),
    second   INTEGER NOT NULL,              -- unix time in seconds
    outcome  TEXT NOT NULL,                 -- matched | mismatched
    count    INTEGER NOT NULL,
    PRIMARY KEY (run_id, second, outcome)
) WITHOUT ROWID;
"#,
    },
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
    #[error("schema version {found} needs `shadowdiff store migrate` to reach {SCHEMA_VERSION}: the change is not additive, so it is never applied by serve or replay starting up")]
    NeedsMigrate { found: i64 },
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

/// Brings a writable store up to [`SCHEMA_VERSION`] by its additive steps, one transaction
/// per step; a newer store that [`check_version`] allows is written as it is. A pending
/// step that is not additive is refused: only `shadowdiff store migrate` applies it.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    apply(conn, MIGRATIONS, false)
}

/// `shadowdiff store migrate`: every pending step. Returns the versions before and after.
pub fn migrate_explicitly(conn: &mut Connection) -> Result<(i64, i64), SchemaError> {
    let before: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    apply(conn, MIGRATIONS, true)?;
    let after: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok((before, after))
}

fn apply(
    conn: &mut Connection,
    migrations: &[Migration],
    explicit: bool,
) -> Result<(), SchemaError> {
    check_version(conn)?;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let pending = || migrations.iter().enumerate().skip(found.max(0) as usize);
    if !explicit && pending().any(|(_, step)| !step.additive) {
        return Err(SchemaError::NeedsMigrate { found });
    }
    for (from, step) in pending() {
        let tx = conn.transaction()?;
        tx.execute_batch(step.sql)?;
        let version = from as i64 + 1;
        if !step.additive {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('min_writer_schema', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [version],
            )?;
        }
        tx.pragma_update(None, "user_version", version)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Migration] = &[
        Migration {
            additive: true,
            sql: "CREATE TABLE meta (key TEXT PRIMARY KEY, value); CREATE TABLE a (x);",
        },
        Migration {
            additive: false,
            sql: "ALTER TABLE a RENAME TO b;",
        },
    ];

    #[test]
    fn a_step_that_is_not_additive_waits_for_store_migrate() {
        let mut conn = Connection::open_in_memory().unwrap();
        let refused = apply(&mut conn, STEPS, false).unwrap_err();
        assert!(
            matches!(refused, SchemaError::NeedsMigrate { found: 0 }),
            "{refused}"
        );
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0, "nothing applied before the refusal");
        apply(&mut conn, &STEPS[..1], false).unwrap();
        assert!(matches!(
            apply(&mut conn, STEPS, false),
            Err(SchemaError::NeedsMigrate { found: 1 })
        ));
        apply(&mut conn, STEPS, true).unwrap();
        let (version, min_writer): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), value FROM meta WHERE key = 'min_writer_schema'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (version, min_writer),
            (2, 2),
            "the step raised the oldest writer allowed"
        );
    }
}
