//! The store commands: `store copy` (a local store merged into a central one), `store
//! prune` (retention) and `store migrate` (the steps serve never applies by itself).
//!
//! Copy is idempotent by construction: a run is found in the destination by its `uid`
//! (written by every writer since schema 4, derived from the source store's key and the
//! run's id for older runs); its counters are set to the source's values, not added to
//! them; mismatches are copied past the run's `copied_through` mark, which is committed with
//! them. Copying a store twice changes nothing the second time, and copying it again after
//! it grew adds exactly what is new.

use super::db::{Arg, Conn, DbError, Engine, Row};
use super::{open_for_managing, Location, StoreError, StoreReader};
use std::time::{Duration, SystemTime};

/// Mismatches copied per destination transaction.
const COPY_CHUNK: i64 = 500;

/// The counter tables and their key columns (after `run_id`); `true` marks an integer.
const COUNTERS: &[(&str, &[(&str, bool)])] = &[
    ("second_counts", &[("second", true), ("outcome", false)]),
    (
        "outcome_counts",
        &[
            ("minute", true),
            ("route", false),
            ("outcome", false),
            ("reason", false),
        ],
    ),
    (
        "latency_buckets",
        &[
            ("minute", true),
            ("route", false),
            ("leg", false),
            ("bucket", true),
        ],
    ),
    (
        "path_counts",
        &[("minute", true), ("route", false), ("path", false)],
    ),
    (
        "hidden_counts",
        &[("minute", true), ("route", false), ("rule", false)],
    ),
    (
        "baseline_counts",
        &[
            ("minute", true),
            ("route", false),
            ("state", false),
            ("reason", false),
        ],
    ),
];

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// Runs the destination did not have.
    pub new_runs: u64,
    /// Runs it had, brought up to the source's counts.
    pub updated_runs: u64,
    pub mismatches: u64,
    pub differences: u64,
}

/// What a prune removed, per table, and from when on the store is whole.
#[derive(Clone, Debug, Default)]
pub struct PruneSummary {
    /// Everything before this time (milliseconds since the Unix epoch, the start of a
    /// minute) is gone; from it on, nothing was touched.
    pub kept_from_ms: i64,
    pub removed: Vec<(&'static str, u64)>,
}

/// A value read from one store to be written to another.
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Value {
    fn arg(&self) -> Arg<'_> {
        match self {
            Value::Int(n) => Arg::Int(*n),
            Value::Text(s) => Arg::Text(s.as_deref()),
        }
    }
}

fn manage_error(location: &Location, reason: impl Into<String>) -> StoreError {
    StoreError::Manage {
        store: location.shown(),
        reason: reason.into(),
    }
}

/// Runs `work` in one transaction of `conn`, rolled back when it fails.
fn in_transaction<T>(conn: &Conn, work: impl FnOnce() -> Result<T, DbError>) -> Result<T, DbError> {
    conn.batch("BEGIN")?;
    match work() {
        Ok(value) => {
            conn.batch("COMMIT")?;
            Ok(value)
        }
        Err(error) => {
            let _ = conn.batch("ROLLBACK");
            Err(error)
        }
    }
}

/// Merges every run of `from` into `to`; see the module's comment for why it is idempotent.
pub fn copy(from: &Location, to: &Location) -> Result<CopySummary, StoreError> {
    if from == to {
        return Err(manage_error(to, "--from and --to are the same store"));
    }
    let source = StoreReader::open(from)?;
    let dest = open_for_managing(to)?;
    let dest_error = |error: DbError| match (error, to) {
        (DbError::Sqlite(e), Location::Sqlite(path)) => StoreError::from_sqlite(path, e),
        (error, _) => StoreError::Postgres {
            store: to.shown(),
            error,
        },
    };
    let src = source.conn();
    let store_id = store_identity(&source).map_err(|e| source.error(e))?;
    let column = |table: &str, name: &'static str| -> Result<&'static str, StoreError> {
        match src.has_column(table, name).map_err(|e| source.error(e))? {
            true => Ok(name),
            false => Ok("NULL"),
        }
    };
    let uid = column("runs", "uid")?;
    let instance = column("runs", "instance")?;
    let to_path = column("differences", "to_path")?;
    let answered_by = column("runs", "answered_by")?;
    let runs = src
        .rows(
            &format!(
                "SELECT id, {uid}, {instance}, mode, primary_url, secondary_url, config_digest,
                        tool_version, rules, started_ms, finished_ms, dropped, examples_stopped_ms,
                        {answered_by}
                 FROM runs ORDER BY id"
            ),
            &[],
            |row| {
                Ok((
                    row.int(0)?,
                    row.opt_text(1)?,
                    row.opt_text(2)?,
                    // mode … rules, then started_ms.
                    (3..=9)
                        .map(|i| match i {
                            9 => row.int(i).map(|n| Value::Int(Some(n))),
                            _ => row.text(i).map(|t| Value::Text(Some(t))),
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    row.opt_int(10)?,
                    row.int(11)?,
                    row.opt_int(12)?,
                    row.opt_text(13)?,
                ))
            },
        )
        .map_err(|e| source.error(e))?;
    let mut summary = CopySummary::default();
    for (source_id, uid, instance, fields, finished, dropped, stopped, answered_by) in runs {
        let uid = uid.unwrap_or_else(|| format!("{store_id}-{source_id}"));
        // The run row, its counters and losses: one transaction, set to the source's values.
        let (dest_id, mark) = in_transaction(&dest, || {
            let found = dest.first(
                "SELECT id, copied_through FROM runs WHERE uid = ?1",
                &[Arg::Text(Some(&uid))],
                |row| Ok((row.int(0)?, row.opt_int(1)?.unwrap_or(0))),
            )?;
            let (dest_id, mark) = match found {
                Some((id, mark)) => {
                    dest.execute(
                        "UPDATE runs SET finished_ms = ?1, dropped = ?2, examples_stopped_ms = ?3
                         WHERE id = ?4",
                        &[
                            Arg::Int(finished),
                            Arg::Int(Some(dropped)),
                            Arg::Int(stopped),
                            Arg::Int(Some(id)),
                        ],
                    )?;
                    summary.updated_runs += 1;
                    (id, mark)
                }
                None => {
                    let mut args = vec![Arg::Text(Some(&uid)), Arg::Text(instance.as_deref())];
                    args.extend(fields.iter().map(Value::arg));
                    args.extend([
                        Arg::Int(finished),
                        Arg::Int(Some(dropped)),
                        Arg::Int(stopped),
                        Arg::Text(answered_by.as_deref()),
                    ]);
                    let id = dest
                        .first(
                            "INSERT INTO runs (uid, instance, mode, primary_url, secondary_url,
                                 config_digest, tool_version, rules, started_ms, finished_ms,
                                 dropped, examples_stopped_ms, answered_by)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                             RETURNING id",
                            &args,
                            |row| row.int(0),
                        )?
                        .ok_or(DbError::Invalid("INSERT … RETURNING gave no id".into()))?;
                    summary.new_runs += 1;
                    (id, 0)
                }
            };
            for (table, keys) in COUNTERS {
                if !src.has_table(table)? {
                    continue;
                }
                copy_counters(src, &dest, table, keys, source_id, dest_id)?;
            }
            if src.has_table("losses")? {
                dest.execute(
                    "DELETE FROM losses WHERE run_id = ?1",
                    &[Arg::Int(Some(dest_id))],
                )?;
                let losses = src.rows(
                    "SELECT at_ms, reason, count FROM losses WHERE run_id = ?1",
                    &[Arg::Int(Some(source_id))],
                    |row| Ok((row.int(0)?, row.text(1)?, row.int(2)?)),
                )?;
                for (at, reason, count) in &losses {
                    dest.execute(
                        "INSERT INTO losses (run_id, at_ms, reason, count) VALUES (?1, ?2, ?3, ?4)",
                        &[
                            Arg::Int(Some(dest_id)),
                            Arg::Int(Some(*at)),
                            Arg::Text(Some(reason)),
                            Arg::Int(Some(*count)),
                        ],
                    )?;
                }
            }
            Ok((dest_id, mark))
        })
        .map_err(dest_error)?;
        // Mismatches past the mark, a chunk per transaction with the mark moved along.
        let mut mark = mark;
        loop {
            let chunk = src
                .rows(
                    &format!(
                        "SELECT {} FROM mismatches WHERE run_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                        source.mismatch_columns()
                    ),
                    &[Arg::Int(Some(source_id)), Arg::Int(Some(mark)), Arg::Int(Some(COPY_CHUNK))],
                    mismatch_values,
                )
                .map_err(|e| source.error(e))?;
            let Some(last) = chunk.last().map(|m| m.0) else {
                break;
            };
            let mut differences = Vec::with_capacity(chunk.len());
            for (id, _) in &chunk {
                let order = match src.engine() {
                    Engine::Sqlite => "rowid",
                    Engine::Postgres => "ordinal",
                };
                differences.push(
                    src.rows(
                        &format!(
                            "SELECT path, kind, primary_value, secondary_value, {to_path}
                             FROM differences WHERE mismatch_id = ?1 ORDER BY {order}"
                        ),
                        &[Arg::Int(Some(*id))],
                        |row| {
                            Ok([
                                row.opt_text(0)?,
                                row.opt_text(1)?,
                                row.opt_text(2)?,
                                row.opt_text(3)?,
                                row.opt_text(4)?,
                            ])
                        },
                    )
                    .map_err(|e| source.error(e))?,
                );
            }
            let insert_difference = match dest.engine() {
                Engine::Sqlite => {
                    "INSERT INTO differences (mismatch_id, path, kind, primary_value,
                         secondary_value, to_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                }
                Engine::Postgres => {
                    "INSERT INTO differences (mismatch_id, path, kind, primary_value,
                         secondary_value, to_path, ordinal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                }
            };
            let (mismatches, written) = in_transaction(&dest, || {
                let mut written = 0;
                for ((_, columns), differences) in chunk.iter().zip(&differences) {
                    let new_id = insert_mismatch(&dest, dest_id, columns)?;
                    for (ordinal, d) in differences.iter().enumerate() {
                        dest.execute(
                            insert_difference,
                            &[
                                Arg::Int(Some(new_id)),
                                Arg::Text(d[0].as_deref()),
                                Arg::Text(d[1].as_deref()),
                                Arg::Text(d[2].as_deref()),
                                Arg::Text(d[3].as_deref()),
                                Arg::Text(d[4].as_deref()),
                                Arg::Int(Some(ordinal as i64)),
                            ],
                        )?;
                        written += 1;
                    }
                }
                dest.execute(
                    "UPDATE runs SET copied_through = ?1 WHERE id = ?2",
                    &[Arg::Int(Some(last)), Arg::Int(Some(dest_id))],
                )?;
                Ok((chunk.len() as u64, written))
            })
            .map_err(dest_error)?;
            summary.mismatches += mismatches;
            summary.differences += written;
            mark = last;
        }
    }
    Ok(summary)
}

/// Sets the destination run's counters of `table` to the source run's.
fn copy_counters(
    src: &Conn,
    dest: &Conn,
    table: &str,
    keys: &[(&str, bool)],
    source_id: i64,
    dest_id: i64,
) -> Result<(), DbError> {
    let names: Vec<&str> = keys.iter().map(|(name, _)| *name).collect();
    let rows = src.rows(
        &format!(
            "SELECT {}, count FROM {table} WHERE run_id = ?1",
            names.join(", ")
        ),
        &[Arg::Int(Some(source_id))],
        |row| {
            let mut values = Vec::with_capacity(keys.len() + 1);
            for (i, (_, integer)) in keys.iter().enumerate() {
                values.push(match integer {
                    true => Value::Int(Some(row.int(i)?)),
                    false => Value::Text(Some(row.text(i)?)),
                });
            }
            values.push(Value::Int(Some(row.int(keys.len())?)));
            Ok(values)
        },
    )?;
    let placeholders: Vec<String> = (2..=keys.len() + 2).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table} (run_id, {}, count) VALUES (?1, {})
         ON CONFLICT (run_id, {}) DO UPDATE SET count = excluded.count",
        names.join(", "),
        placeholders.join(", "),
        names.join(", ")
    );
    for values in &rows {
        let mut args = vec![Arg::Int(Some(dest_id))];
        args.extend(values.iter().map(Value::arg));
        dest.execute(&sql, &args)?;
    }
    Ok(())
}

/// A source mismatch: its id and its columns after `id, run_id`, as read.
type MismatchValues = (i64, Vec<Cell>);

/// One column of a mismatch row.
enum Cell {
    Int(i64),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(bool),
}

fn mismatch_values(row: &Row<'_>) -> Result<MismatchValues, DbError> {
    // MISMATCH_COLUMNS: id, run_id, at_ms, route, signature, method, uri, primary_status,
    // secondary_status, primary_latency_us, secondary_latency_us, is_example,
    // request_headers, request_body, primary_headers, primary_body, secondary_headers,
    // secondary_body, body_diff, then rewrites
    Ok((
        row.int(0)?,
        vec![
            Cell::Int(row.int(2)?),
            Cell::Text(Some(row.text(3)?)),
            Cell::Text(Some(row.text(4)?)),
            Cell::Text(Some(row.text(5)?)),
            Cell::Text(Some(row.text(6)?)),
            Cell::Int(row.int(7)?),
            Cell::Int(row.int(8)?),
            Cell::Int(row.int(9)?),
            Cell::Int(row.int(10)?),
            Cell::Bool(row.bool(11)?),
            Cell::Text(row.opt_text(12)?),
            Cell::Bytes(row.opt_bytes(13)?),
            Cell::Text(row.opt_text(14)?),
            Cell::Bytes(row.opt_bytes(15)?),
            Cell::Text(row.opt_text(16)?),
            Cell::Bytes(row.opt_bytes(17)?),
            Cell::Text(row.opt_text(18)?),
            Cell::Text(row.opt_text(19)?),
        ],
    ))
}

fn insert_mismatch(dest: &Conn, run_id: i64, columns: &[Cell]) -> Result<i64, DbError> {
    let mut args = vec![Arg::Int(Some(run_id))];
    args.extend(columns.iter().map(|cell| match cell {
        Cell::Int(n) => Arg::Int(Some(*n)),
        Cell::Text(s) => Arg::Text(s.as_deref()),
        Cell::Bytes(b) => Arg::Bytes(b.as_deref()),
        Cell::Bool(b) => Arg::Bool(*b),
    }));
    dest.first(
        "INSERT INTO mismatches (run_id, at_ms, route, signature, method, uri, primary_status,
             secondary_status, primary_latency_us, secondary_latency_us, is_example,
             request_headers, request_body, primary_headers, primary_body, secondary_headers,
             secondary_body, body_diff, rewrites)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19)
         RETURNING id",
        &args,
        |row| row.int(0),
    )?
    .ok_or(DbError::Invalid("INSERT … RETURNING gave no id".into()))
}

/// A stable name for a store without run uids: a digest of its secret key (never the key),
/// or of its location when it has none.
fn store_identity(source: &StoreReader) -> Result<String, DbError> {
    use sha2::Digest;
    let conn = source.conn();
    let key = match conn.has_table("meta")? {
        true => {
            let sql = match conn.engine() {
                Engine::Sqlite => "SELECT hex(value) FROM meta WHERE key = 'digest_key'",
                Engine::Postgres => "SELECT value FROM meta WHERE key = 'digest_key'",
            };
            conn.first(sql, &[], |row| row.text(0))?
        }
        false => None,
    };
    let seed = key.unwrap_or_else(|| source.location().shown());
    let digest = sha2::Sha256::digest(seed.as_bytes());
    Ok(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes what happened before `older_than` ago, rounded down to the minute so the span
/// that remains keeps every count it had; runs left with nothing are removed too.
pub fn prune(location: &Location, older_than: Duration) -> Result<PruneSummary, StoreError> {
    let conn = open_for_managing(location)?;
    let error = |error: DbError| match (error, location) {
        (DbError::Sqlite(e), Location::Sqlite(path)) => StoreError::from_sqlite(path, e),
        (error, _) => StoreError::Postgres {
            store: location.shown(),
            error,
        },
    };
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let minute = super::millis_since_epoch(cutoff).div_euclid(60_000);
    let kept_from_ms = minute * 60_000;
    let removed = in_transaction(&conn, || {
        let mut removed = Vec::new();
        for (table, _) in COUNTERS {
            if conn.has_table(table)? {
                // Every counter table is keyed by its minute but one, by its second.
                let (column, cutoff) = match *table {
                    "second_counts" => ("second", minute * 60),
                    _ => ("minute", minute),
                };
                let n = conn.execute(
                    &format!("DELETE FROM {table} WHERE {column} < ?1"),
                    &[Arg::Int(Some(cutoff))],
                )?;
                removed.push((*table, n));
            }
        }
        let n = conn.execute(
            "DELETE FROM differences WHERE mismatch_id IN
                 (SELECT id FROM mismatches WHERE at_ms < ?1)",
            &[Arg::Int(Some(kept_from_ms))],
        )?;
        removed.push(("differences", n));
        let n = conn.execute(
            "DELETE FROM mismatches WHERE at_ms < ?1",
            &[Arg::Int(Some(kept_from_ms))],
        )?;
        removed.push(("mismatches", n));
        if conn.has_table("losses")? {
            let n = conn.execute(
                "DELETE FROM losses WHERE at_ms < ?1",
                &[Arg::Int(Some(kept_from_ms))],
            )?;
            removed.push(("losses", n));
        }
        if conn.has_table("batches")? {
            conn.execute(
                "DELETE FROM batches WHERE at_ms < ?1",
                &[Arg::Int(Some(kept_from_ms))],
            )?;
        }
        // A finished run with nothing left is history; a running one stays (its rows are
        // still coming), and so does one that still has a mismatch or a count.
        let n = conn.execute(
            "DELETE FROM runs WHERE finished_ms IS NOT NULL AND finished_ms < ?1
               AND NOT EXISTS (SELECT 1 FROM outcome_counts o WHERE o.run_id = runs.id)
               AND NOT EXISTS (SELECT 1 FROM mismatches m WHERE m.run_id = runs.id)",
            &[Arg::Int(Some(kept_from_ms))],
        )?;
        removed.push(("runs", n));
        Ok(removed)
    })
    .map_err(error)?;
    Ok(PruneSummary {
        kept_from_ms,
        removed,
    })
}

/// Applies every pending schema step, additive or not: the versions before and after.
pub fn migrate(location: &Location) -> Result<(i64, i64), StoreError> {
    match location {
        Location::Sqlite(path) => {
            super::inspect::inspect_for_writing(path)?;
            if !path.exists() {
                return Err(manage_error(location, "no such file"));
            }
            let mut conn =
                rusqlite::Connection::open(path).map_err(|e| StoreError::from_sqlite(path, e))?;
            super::schema::migrate_explicitly(&mut conn).map_err(|e| super::schema_error(path, e))
        }
        Location::Postgres(target) => {
            let mut client = super::connect(target)?;
            super::pg_schema::migrate_explicitly(&mut client)
                .map_err(|e| super::schema_refused(target, e))
        }
    }
}
