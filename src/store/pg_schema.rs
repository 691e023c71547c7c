//! The PostgreSQL store's schema: the same tables as the SQLite store (docs/STORE.md), in
//! the database's default schema so plain SQL reads them, with their own version count.
//!
//! A database is used only when it is a shadowdiff store or has no tables at all: a
//! database of another application is refused before anything is written, inside a
//! transaction that is rolled back. Several instances starting at once against an empty
//! database take one advisory lock, so exactly one creates the tables.
//!
//! Versioning follows the same rule as SQLite's (`meta.min_writer_schema`, the oldest-writer
//! rule): instances of several releases write one store during a rolling deploy; a step
//! that is not additive is applied only by `shadowdiff store migrate`.

use super::schema::{Migration, DIGEST_KEY_LEN};

/// Steps that take a store from version `i` to `i + 1`. Integers are BIGINT so every
/// count reads as one type; no foreign keys on the written tables: the writer keeps them
/// consistent, as SQLite's (unenforced) references are, and a check per inserted
/// difference would cost the writer a third of its speed. For the same reason the two
/// big tables carry one index each besides a partial one on examples: a difference is
/// keyed by (mismatch, ordinal), which is also how it is read, and SQLite's
/// `differences_by_path` is left out (no query filters on it).
pub(super) const PG_MIGRATIONS: &[Migration] = &[
    Migration {
        additive: true,
        sql: r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE runs (
    id              BIGSERIAL PRIMARY KEY,
    uid             TEXT NOT NULL UNIQUE,   -- the run everywhere: store copy keys on it
    instance        TEXT NOT NULL,          -- --instance, default the host name
    mode            TEXT NOT NULL,
    primary_url     TEXT NOT NULL,
    secondary_url   TEXT NOT NULL,
    config_digest   TEXT NOT NULL,
    tool_version    TEXT NOT NULL,
    rules           TEXT NOT NULL,
    started_ms      BIGINT NOT NULL,
    finished_ms     BIGINT,
    dropped         BIGINT NOT NULL DEFAULT 0,
    examples_stopped_ms BIGINT,
    copied_through  BIGINT                  -- store copy: the source's last mismatch id copied
);

CREATE TABLE outcome_counts (
    run_id   BIGINT NOT NULL,
    minute   BIGINT NOT NULL,
    route    TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (run_id, minute, route, outcome, reason)
);

CREATE TABLE latency_buckets (
    run_id   BIGINT NOT NULL,
    minute   BIGINT NOT NULL,
    route    TEXT NOT NULL,
    leg      TEXT NOT NULL,
    bucket   BIGINT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (run_id, minute, route, leg, bucket)
);

CREATE TABLE path_counts (
    run_id   BIGINT NOT NULL,
    minute   BIGINT NOT NULL,
    route    TEXT NOT NULL,
    path     TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (run_id, minute, route, path)
);

CREATE TABLE hidden_counts (
    run_id   BIGINT NOT NULL,
    minute   BIGINT NOT NULL,
    route    TEXT NOT NULL,
    rule     TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (run_id, minute, route, rule)
);

CREATE TABLE baseline_counts (
    run_id   BIGINT NOT NULL,
    minute   BIGINT NOT NULL,
    route    TEXT NOT NULL,
    state    TEXT NOT NULL,
    reason   TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (run_id, minute, route, state, reason)
);

CREATE TABLE mismatches (
    id                   BIGSERIAL PRIMARY KEY,
    run_id               BIGINT NOT NULL,
    at_ms                BIGINT NOT NULL,
    route                TEXT NOT NULL,
    signature            TEXT NOT NULL,
    method               TEXT NOT NULL,
    uri                  TEXT NOT NULL,
    primary_status       BIGINT NOT NULL,
    secondary_status     BIGINT NOT NULL,
    primary_latency_us   BIGINT NOT NULL,
    secondary_latency_us BIGINT NOT NULL,
    is_example           BOOLEAN NOT NULL,
    request_headers      TEXT,
    request_body         BYTEA,
    primary_headers      TEXT,
    primary_body         BYTEA,
    secondary_headers    TEXT,
    secondary_body       BYTEA,
    body_diff            TEXT
);
-- Only examples are looked up by route; the rest are read by id or in bulk.
CREATE INDEX mismatches_examples ON mismatches (route, id) WHERE is_example;

CREATE TABLE differences (
    mismatch_id     BIGINT NOT NULL,
    ordinal         BIGINT NOT NULL,        -- its place among the mismatch's differences
    path            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    primary_value   TEXT,
    secondary_value TEXT,
    to_path         TEXT,
    PRIMARY KEY (mismatch_id, ordinal)
);
-- A writer takes ids a thousand at a time: each nextval() otherwise writes WAL every 32.
ALTER SEQUENCE mismatches_id_seq CACHE 1000;

CREATE TABLE losses (
    run_id  BIGINT NOT NULL,
    at_ms   BIGINT NOT NULL,
    reason  TEXT NOT NULL,
    count   BIGINT NOT NULL
);

-- One row per committed batch: a batch whose COMMIT was cut off is retried, and finds its
-- row when the first attempt did commit, so nothing is counted twice.
CREATE TABLE batches (
    run_id  BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    at_ms   BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

INSERT INTO meta (key, value) VALUES ('application', 'shadowdiff'), ('min_writer_schema', '1');
"#,
    },
    // Additive (issue 17), as SQLite's step 5.
    Migration {
        additive: true,
        sql: r#"
ALTER TABLE mismatches ADD COLUMN rewrites TEXT;
ALTER TABLE runs ADD COLUMN answered_by TEXT;

CREATE TABLE second_counts (
    run_id   BIGINT NOT NULL,
    second   BIGINT NOT NULL,
    outcome  TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (run_id, second, outcome)
);
"#,
    },
];

/// The PostgreSQL schema version this build writes and understands.
pub const PG_SCHEMA_VERSION: i64 = PG_MIGRATIONS.len() as i64;

/// Key of the advisory lock that serializes schema work across instances: "SHDF".
const SCHEMA_LOCK: i64 = 0x5348_4446;

/// Why a database cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum PgSchemaError {
    #[error("not a shadowdiff database: {0}")]
    Foreign(String),
    #[error("schema version {found} is newer than this shadowdiff ({PG_SCHEMA_VERSION}) and needs schema {min_writer} or newer to write to it; upgrade shadowdiff")]
    Newer { found: i64, min_writer: i64 },
    #[error("schema version {found} needs `shadowdiff store migrate` to reach {PG_SCHEMA_VERSION}: the change is not additive, so it is never applied by serve or replay starting up")]
    NeedsMigrate { found: i64 },
    #[error("damaged shadowdiff store: {0}")]
    Damaged(String),
    #[error("no randomness for a new digest key: {0}")]
    Entropy(String),
    #[error("{}", super::db::pg_detail(.0))]
    Postgres(#[from] postgres::Error),
}

/// What a store told about itself.
pub(super) struct PgStore {
    pub digest_key: [u8; DIGEST_KEY_LEN],
}

/// Makes `client`'s database a store this build writes (creating it in an empty database,
/// applying additive steps), or refuses without changing it.
pub(super) fn prepare_for_writing(client: &mut postgres::Client) -> Result<PgStore, PgSchemaError> {
    prepare(client, PG_MIGRATIONS, false)
}

/// `shadowdiff store migrate`: every pending step, additive or not. Returns the versions
/// before and after.
pub(super) fn migrate_explicitly(
    client: &mut postgres::Client,
) -> Result<(i64, i64), PgSchemaError> {
    let before = {
        let mut tx = client.transaction()?;
        let found = inspect(&mut tx)?.map(|(found, _)| found).unwrap_or(0);
        tx.rollback()?;
        found
    };
    prepare(client, PG_MIGRATIONS, true)?;
    Ok((before, PG_SCHEMA_VERSION.max(before)))
}

/// Checks that a reader can read the database: a store, not newer than the oldest-writer
/// rule allows.
pub(super) fn check_for_reading(client: &mut postgres::Client) -> Result<(), PgSchemaError> {
    let mut tx = client.transaction()?;
    let found = inspect(&mut tx)?;
    tx.rollback()?;
    match found {
        None => Err(PgSchemaError::Foreign(
            "the database has no shadowdiff store (table meta is missing)".into(),
        )),
        Some((found, min_writer))
            if found > PG_SCHEMA_VERSION && min_writer > PG_SCHEMA_VERSION =>
        {
            Err(PgSchemaError::Newer { found, min_writer })
        }
        Some(_) => Ok(()),
    }
}

fn prepare(
    client: &mut postgres::Client,
    migrations: &[Migration],
    explicit: bool,
) -> Result<PgStore, PgSchemaError> {
    let target = migrations.len() as i64;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let found = match inspect(&mut tx)? {
        Some((found, min_writer)) => {
            if found > target && min_writer > target {
                return Err(PgSchemaError::Newer { found, min_writer });
            }
            found
        }
        None => {
            let tables = other_tables(&mut tx)?;
            if !tables.is_empty() {
                return Err(PgSchemaError::Foreign(format!(
                    "it has tables ({}) but no shadowdiff store; give shadowdiff a database of its own",
                    tables.join(", ")
                )));
            }
            0
        }
    };
    let pending = migrations.iter().enumerate().skip(found.max(0) as usize);
    if !explicit {
        if let Some(_blocking) = pending.clone().find(|(_, step)| !step.additive) {
            return Err(PgSchemaError::NeedsMigrate { found });
        }
    }
    for (from, step) in pending {
        tx.batch_execute(step.sql)?;
        let version = (from + 1).to_string();
        upsert_meta(&mut tx, "schema_version", &version)?;
        if !step.additive {
            upsert_meta(&mut tx, "min_writer_schema", &version)?;
        }
    }
    let digest_key = digest_key(&mut tx)?;
    tx.commit()?;
    Ok(PgStore { digest_key })
}

/// `(schema_version, min_writer_schema)` of a store, `None` when the database has none;
/// a `meta` table of something else is a foreign database.
fn inspect(tx: &mut postgres::Transaction<'_>) -> Result<Option<(i64, i64)>, PgSchemaError> {
    let has_meta: bool = tx
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])?
        .get(0);
    if !has_meta {
        return Ok(None);
    }
    let has_columns: bool = tx
        .query_one(
            "SELECT COUNT(*) = 2 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'meta'
               AND column_name IN ('key', 'value')",
            &[],
        )?
        .get(0);
    if !has_columns {
        return Err(PgSchemaError::Foreign(
            "its table meta is not a shadowdiff store's".into(),
        ));
    }
    let rows = tx.query("SELECT key, value::text FROM meta WHERE key IN ('application', 'schema_version', 'min_writer_schema')", &[])?;
    let value = |name: &str| {
        rows.iter()
            .find(|row| row.get::<_, String>(0) == name)
            .map(|row| row.get::<_, String>(1))
    };
    if value("application").as_deref() != Some("shadowdiff") {
        return Err(PgSchemaError::Foreign(
            "its table meta does not mark a shadowdiff store".into(),
        ));
    }
    let number = |name: &str| -> Result<i64, PgSchemaError> {
        value(name)
            .unwrap_or_default()
            .parse()
            .map_err(|_| PgSchemaError::Damaged(format!("meta.{name} is not a number")))
    };
    let found = number("schema_version")?;
    let min_writer = number("min_writer_schema")?;
    Ok(Some((found, min_writer)))
}

/// Tables and views of any user schema: their presence makes a database without a store
/// someone else's.
fn other_tables(tx: &mut postgres::Transaction<'_>) -> Result<Vec<String>, PgSchemaError> {
    let rows = tx.query(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
           AND table_schema NOT LIKE 'pg_toast%' AND table_schema NOT LIKE 'pg_temp%'
         ORDER BY 1 LIMIT 6",
        &[],
    )?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

fn upsert_meta(
    tx: &mut postgres::Transaction<'_>,
    key: &str,
    value: &str,
) -> Result<(), PgSchemaError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&key, &value],
    )?;
    Ok(())
}

/// The store's digest key (hex in `meta`), made from the operating system's CSPRNG on
/// first use; see `schema::digest_key` for why it must not be guessable.
fn digest_key(tx: &mut postgres::Transaction<'_>) -> Result<[u8; DIGEST_KEY_LEN], PgSchemaError> {
    let stored = tx.query_opt("SELECT value FROM meta WHERE key = 'digest_key'", &[])?;
    let hex = match stored {
        Some(row) => row.get::<_, String>(0),
        None => {
            let mut fresh = [0u8; DIGEST_KEY_LEN];
            getrandom::fill(&mut fresh).map_err(|e| PgSchemaError::Entropy(e.to_string()))?;
            let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('digest_key', $1)",
                &[&hex],
            )?;
            hex
        }
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        PgSchemaError::Damaged(format!(
            "its digest key (table meta) is not {DIGEST_KEY_LEN} bytes"
        ))
    })
}
