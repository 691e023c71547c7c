//! Read-only queries over one store, SQLite or PostgreSQL, in the SQL both speak
//! (`db::Conn`). Reports aggregate the counter tables (a few rows per route and minute),
//! never the mismatch rows, so their cost does not grow with the number of stored
//! mismatches; only examples and `show` touch `mismatches`, by index.

use super::db::{Arg, Conn, DbError, Engine, Row};
use super::{Location, StoreError};
use std::path::{Path, PathBuf};

/// Which part of a store a report covers.
#[derive(Clone, Debug, Default)]
pub struct ReadFilter {
    /// Only this run.
    pub run: Option<i64>,
    /// Only what happened at or after this time (milliseconds since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only runs of this instance (`--instance`).
    pub instance: Option<String>,
}

impl ReadFilter {
    fn since_minute(&self) -> Option<i64> {
        self.since_ms.map(|ms| ms.div_euclid(60_000))
    }

    /// `?1` run, `?2` since (in `unit`), `?3` instance: the arguments of [`RUNS_WHERE`].
    fn args(&self, minutes: bool) -> [Arg<'_>; 3] {
        let since = match minutes {
            true => self.since_minute(),
            false => self.since_ms,
        };
        [
            Arg::Int(self.run),
            Arg::Int(since),
            Arg::Text(self.instance.as_deref()),
        ]
    }
}

/// The run and instance half of every filter, over a table with a `run_id` column:
/// `?1` the run, `?3` the instance.
const RUNS_WHERE: &str = "(CAST(?1 AS BIGINT) IS NULL OR run_id = ?1)
    AND (CAST(?3 AS TEXT) IS NULL OR run_id IN (SELECT id FROM runs WHERE {instance} = ?3))";

/// One row of `runs`.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: i64,
    pub mode: String,
    pub primary: String,
    pub secondary: String,
    pub config_digest: String,
    pub tool_version: String,
    pub rules: Vec<String>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub dropped: u64,
    pub examples_stopped_ms: Option<i64>,
    /// The instance that wrote it (`None` in stores written before instances existed).
    pub instance: Option<String>,
    /// `primary` or `secondary`: whose responses the clients got (`--answer-from`);
    /// `primary` for runs from before the column.
    pub answered_by: String,
}

/// (minute, route, outcome, count): matched or mismatched requests of one route in one
/// minute.
pub type TimelineRow = (i64, String, Option<super::OutcomeKind>, u64);

/// Requests of one route that ended one way, summed over the filter.
#[derive(Clone, Debug)]
pub struct OutcomeRow {
    pub route: String,
    /// `None`: an outcome no release writes (the row is counted apart, never guessed).
    pub outcome: Option<super::OutcomeKind>,
    /// Empty, `<leg>:<error kind>` or a skip reason.
    pub reason: String,
    pub count: u64,
}

/// One difference of a stored mismatch, as stored and as reports show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DifferenceRow {
    pub path: String,
    pub kind: String,
    pub primary: Option<String>,
    pub secondary: Option<String>,
    /// A renamed key's new path; absent from JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl DifferenceRow {
    /// Where the difference is, as every report format writes it: the path, and for a
    /// renamed key where it went (`body/email → body/email_address`).
    pub fn place(&self) -> std::borrow::Cow<'_, str> {
        match &self.to {
            Some(to) => format!("{} → {to}", self.path).into(),
            None => self.path.as_str().into(),
        }
    }
}

/// A stored mismatch. Header and body fields are `None` when it was not kept as an example.
#[derive(Clone, Debug, Default)]
pub struct MismatchRow {
    pub id: i64,
    pub run_id: i64,
    pub at_ms: i64,
    pub route: String,
    pub signature: String,
    pub method: String,
    pub uri: String,
    pub primary_status: u16,
    pub secondary_status: u16,
    pub primary_latency_us: i64,
    pub secondary_latency_us: i64,
    pub is_example: bool,
    pub request_headers: Option<Vec<(String, String)>>,
    pub request_body: Option<Vec<u8>>,
    pub primary_headers: Option<Vec<(String, String)>>,
    pub primary_body: Option<Vec<u8>>,
    pub secondary_headers: Option<Vec<(String, String)>>,
    pub secondary_body: Option<Vec<u8>>,
    pub body_diff: Option<String>,
    /// What `[[rewrite]]` changed in the secondary's copy (redacted lines); empty without.
    pub rewrites: Vec<String>,
    pub differences: Vec<DifferenceRow>,
}

/// A read-only connection to one store.
pub struct StoreReader {
    conn: Conn,
    location: Location,
    /// The location as reports name it: the file's path, or the database's URL without
    /// its password.
    name: PathBuf,
    /// `instance`, or `NULL` in a store written before the column existed.
    instance_column: &'static str,
    /// [`MISMATCH_COLUMNS`] and `rewrites` (`NULL` in a store from before it).
    mismatch_columns: String,
    /// `answered_by`, or `NULL` in a store from before it.
    answered_by_column: &'static str,
}

pub(super) const MISMATCH_COLUMNS: &str = "id, run_id, at_ms, route, signature, method, uri,
    primary_status, secondary_status, primary_latency_us, secondary_latency_us, is_example,
    request_headers, request_body, primary_headers, primary_body, secondary_headers,
    secondary_body, body_diff";

/// `mismatches.rewrites`, the column after [`MISMATCH_COLUMNS`], is in stores of SQLite
/// schema 5 or PostgreSQL version 2 on.
fn mismatch_columns(has_rewrites: bool) -> String {
    let rewrites = if has_rewrites { "rewrites" } else { "NULL" };
    format!("{MISMATCH_COLUMNS}, {rewrites}")
}

impl StoreReader {
    /// Opens the store read-only and checks that it is one this build understands.
    pub fn open(location: impl Into<Location>) -> Result<StoreReader, StoreError> {
        let location = &location.into();
        let conn = match location {
            Location::Sqlite(path) => Conn::Sqlite(super::inspect::open_for_reading(path)?),
            Location::Postgres(target) => {
                let store = || target.shown().to_string();
                let mut client = super::connect(target)?;
                super::pg_schema::check_for_reading(&mut client)
                    .map_err(|e| super::schema_refused(target, e))?;
                // A report reads many tables; one snapshot makes them agree with each other
                // while instances go on writing.
                client
                    .batch_execute(
                        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                    )
                    .map_err(|e| StoreError::Postgres {
                        store: store(),
                        error: DbError::Postgres(e),
                    })?;
                Conn::Postgres(Box::new(std::cell::RefCell::new(client)))
            }
        };
        let name = match location {
            Location::Sqlite(path) => path.clone(),
            Location::Postgres(target) => PathBuf::from(target.shown()),
        };
        let mut reader = StoreReader {
            conn,
            location: location.clone(),
            name,
            instance_column: "NULL",
            mismatch_columns: String::new(),
            answered_by_column: "NULL",
        };
        if reader
            .conn
            .has_column("runs", "instance")
            .map_err(|e| reader.error(e))?
        {
            reader.instance_column = "instance";
        }
        let has_rewrites = reader
            .conn
            .has_column("mismatches", "rewrites")
            .map_err(|e| reader.error(e))?;
        reader.mismatch_columns = mismatch_columns(has_rewrites);
        if has_rewrites {
            // Both came with the same schema step.
            reader.answered_by_column = "answered_by";
        }
        Ok(reader)
    }

    /// The store as reports name it: an SQLite file's path, or a database's URL as shown
    /// (no password).
    pub fn path(&self) -> &Path {
        &self.name
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub(super) fn conn(&self) -> &Conn {
        &self.conn
    }

    /// The columns a mismatch row is read with ([`MISMATCH_COLUMNS`], then `rewrites`).
    pub(super) fn mismatch_columns(&self) -> &str {
        &self.mismatch_columns
    }

    pub(super) fn error(&self, source: DbError) -> StoreError {
        match (source, &self.location) {
            (DbError::Sqlite(e), Location::Sqlite(path)) => StoreError::from_sqlite(path, e),
            (error, _) => StoreError::Postgres {
                store: self.location.shown(),
                error,
            },
        }
    }

    /// [`RUNS_WHERE`] for this store's columns.
    fn runs_where(&self) -> String {
        RUNS_WHERE.replace("{instance}", self.instance_column)
    }

    /// Observations lost before they reached the store, summed per reason (`disk_full`,
    /// `write_error`, `store_unavailable`) over the filter's runs: the `losses` table
    /// (schema 2) plus the sidecar note a writer leaves when an SQLite store stayed
    /// unwritable to the end.
    pub fn losses(&self, filter: &ReadFilter) -> Result<Vec<(String, u64)>, StoreError> {
        let mut sums: std::collections::BTreeMap<String, u64> = Default::default();
        if self.conn.has_table("losses").map_err(|e| self.error(e))? {
            let sql = format!(
                "SELECT reason, CAST(SUM(count) AS BIGINT) FROM losses
                 WHERE {} AND (CAST(?2 AS BIGINT) IS NULL OR at_ms >= ?2)
                 GROUP BY reason",
                self.runs_where()
            );
            let rows = self
                .conn
                .rows(&sql, &filter.args(false), |row| {
                    Ok((row.text(0)?, row.int(1)?))
                })
                .map_err(|e| self.error(e))?;
            for (reason, count) in rows {
                *sums.entry(reason).or_default() += count.max(0) as u64;
            }
        }
        if let Location::Sqlite(path) = &self.location {
            let note = super::inspect::losses_note(path);
            if let Ok(text) = std::fs::read_to_string(&note) {
                let runs: Option<Vec<i64>> = match &filter.instance {
                    Some(_) => Some(self.runs(filter)?.iter().map(|r| r.id).collect()),
                    None => None,
                };
                for line in text.lines() {
                    let Ok(entry) = serde_json::from_str::<LossNote>(line) else {
                        continue;
                    };
                    let in_run = filter.run.is_none_or(|run| run == entry.run);
                    let in_instance = runs.as_ref().is_none_or(|ids| ids.contains(&entry.run));
                    if in_run && in_instance {
                        *sums.entry(entry.reason).or_default() += entry.count;
                    }
                }
            }
        }
        Ok(sums.into_iter().collect())
    }

    /// The runs the filter covers, oldest first.
    pub fn runs(&self, filter: &ReadFilter) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT id, mode, primary_url, secondary_url, config_digest, tool_version, rules,
                    started_ms, finished_ms, dropped, examples_stopped_ms, {instance},
                    {answered_by}
             FROM runs WHERE (CAST(?1 AS BIGINT) IS NULL OR id = ?1)
               AND (CAST(?2 AS BIGINT) IS NULL OR finished_ms IS NULL OR finished_ms >= ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR {instance} = ?3)
             ORDER BY id",
            instance = self.instance_column,
            answered_by = self.answered_by_column
        );
        self.conn
            .rows(&sql, &filter.args(false), |row| {
                let rules = row.text(6)?;
                Ok(RunRow {
                    id: row.int(0)?,
                    mode: row.text(1)?,
                    primary: row.text(2)?,
                    secondary: row.text(3)?,
                    config_digest: row.text(4)?,
                    tool_version: row.text(5)?,
                    rules: serde_json::from_str(&rules).unwrap_or_default(),
                    started_ms: row.int(7)?,
                    finished_ms: row.opt_int(8)?,
                    dropped: row.int(9)?.max(0) as u64,
                    examples_stopped_ms: row.opt_int(10)?,
                    instance: row.opt_text(11)?,
                    answered_by: row.opt_text(12)?.unwrap_or_else(|| "primary".into()),
                })
            })
            .map_err(|e| self.error(e))
    }

    /// Outcome counts per route, outcome and reason.
    pub fn outcome_counts(&self, filter: &ReadFilter) -> Result<Vec<OutcomeRow>, StoreError> {
        self.grouped(
            "SELECT route, outcome, reason, CAST(SUM(count) AS BIGINT) FROM outcome_counts
             WHERE {filter} GROUP BY route, outcome, reason",
            filter,
            |row| {
                Ok(OutcomeRow {
                    route: row.text(0)?,
                    outcome: super::OutcomeKind::parse(&row.text(1)?),
                    reason: row.text(2)?,
                    count: row.int(3)?.max(0) as u64,
                })
            },
        )
    }

    /// Outcome counts per instance, as [`StoreReader::outcome_counts`] per route, for the
    /// report's per-instance breakdown: (instance, row). Runs written before instances
    /// existed count under "".
    pub fn instance_counts(
        &self,
        filter: &ReadFilter,
    ) -> Result<Vec<(String, OutcomeRow)>, StoreError> {
        let sql = format!(
            "SELECT COALESCE(r.{instance}, ''), o.route, o.outcome, o.reason,
                    CAST(SUM(o.count) AS BIGINT)
             FROM outcome_counts o JOIN runs r ON r.id = o.run_id
             WHERE (CAST(?1 AS BIGINT) IS NULL OR o.run_id = ?1)
               AND (CAST(?2 AS BIGINT) IS NULL OR o.minute >= ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR r.{instance} = ?3)
             GROUP BY COALESCE(r.{instance}, ''), o.route, o.outcome, o.reason",
            instance = self.instance_column
        );
        self.conn
            .rows(&sql, &filter.args(true), |row| {
                Ok((
                    row.text(0)?,
                    OutcomeRow {
                        route: row.text(1)?,
                        outcome: super::OutcomeKind::parse(&row.text(2)?),
                        reason: row.text(3)?,
                        count: row.int(4)?.max(0) as u64,
                    },
                ))
            })
            .map_err(|e| self.error(e))
    }

    /// Matched and mismatched counts per minute, for the mismatch-rate-over-time chart.
    pub fn timeline(&self, filter: &ReadFilter) -> Result<Vec<TimelineRow>, StoreError> {
        self.grouped(
            "SELECT minute, route, outcome, CAST(SUM(count) AS BIGINT) FROM outcome_counts
             WHERE {filter} AND outcome IN ('matched', 'mismatched')
             GROUP BY minute, route, outcome ORDER BY minute",
            filter,
            |row| {
                Ok((
                    row.int(0)?,
                    row.text(1)?,
                    super::OutcomeKind::parse(&row.text(2)?),
                    row.int(3)?.max(0) as u64,
                ))
            },
        )
    }

    /// Matched and mismatched counts per second over all routes, (second, matched,
    /// mismatched) ascending: the time chart of a short run. Empty for a store from before
    /// the table (schema 5, PostgreSQL 2).
    pub fn seconds(&self, filter: &ReadFilter) -> Result<Vec<(i64, u64, u64)>, StoreError> {
        if !self
            .conn
            .has_table("second_counts")
            .map_err(|e| self.error(e))?
        {
            return Ok(Vec::new());
        }
        // The same cut as the per-minute tables: from the start of the `since` minute.
        let sql = format!(
            "SELECT second,
                    CAST(SUM(CASE WHEN outcome = 'matched' THEN count ELSE 0 END) AS BIGINT),
                    CAST(SUM(CASE WHEN outcome = 'mismatched' THEN count ELSE 0 END) AS BIGINT)
             FROM second_counts
             WHERE {} AND (CAST(?2 AS BIGINT) IS NULL OR second >= ?2 * 60)
             GROUP BY second ORDER BY second",
            self.runs_where()
        );
        self.conn
            .rows(&sql, &filter.args(true), |row| {
                Ok((
                    row.int(0)?,
                    row.int(1)?.max(0) as u64,
                    row.int(2)?.max(0) as u64,
                ))
            })
            .map_err(|e| self.error(e))
    }

    /// Latency histogram per route and leg: (route, leg, bucket, count), buckets ascending.
    pub fn latency_buckets(
        &self,
        filter: &ReadFilter,
    ) -> Result<Vec<(String, String, i64, u64)>, StoreError> {
        self.grouped(
            "SELECT route, leg, bucket, CAST(SUM(count) AS BIGINT) FROM latency_buckets
             WHERE {filter} GROUP BY route, leg, bucket ORDER BY route, leg, bucket",
            filter,
            |row| {
                Ok((
                    row.text(0)?,
                    row.text(1)?,
                    row.int(2)?,
                    row.int(3)?.max(0) as u64,
                ))
            },
        )
    }

    /// How many mismatches differed at each path, per route: (route, path, count).
    pub fn path_counts(
        &self,
        filter: &ReadFilter,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.grouped(
            "SELECT route, path, CAST(SUM(count) AS BIGINT) FROM path_counts
             WHERE {filter} GROUP BY route, path",
            filter,
            |row| Ok((row.text(0)?, row.text(1)?, row.int(2)?.max(0) as u64)),
        )
    }

    /// How the baseline served the comparisons, per route: (route, state, reason, count).
    /// Empty for a store older than schema 3.
    pub fn baseline_counts(
        &self,
        filter: &ReadFilter,
    ) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        if !self
            .conn
            .has_table("baseline_counts")
            .map_err(|e| self.error(e))?
        {
            return Ok(Vec::new());
        }
        self.grouped(
            "SELECT route, state, reason, CAST(SUM(count) AS BIGINT) FROM baseline_counts
             WHERE {filter} GROUP BY route, state, reason",
            filter,
            |row| {
                Ok((
                    row.text(0)?,
                    row.text(1)?,
                    row.text(2)?,
                    row.int(3)?.max(0) as u64,
                ))
            },
        )
    }

    /// Differences hidden by each rule, per route: (route, rule, count).
    pub fn hidden_counts(
        &self,
        filter: &ReadFilter,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.grouped(
            "SELECT route, rule, CAST(SUM(count) AS BIGINT) FROM hidden_counts
             WHERE {filter} GROUP BY route, rule",
            filter,
            |row| Ok((row.text(0)?, row.text(1)?, row.int(2)?.max(0) as u64)),
        )
    }

    /// A counter table's rows under the filter (`{filter}` in `sql`: run, minute, instance).
    fn grouped<T>(
        &self,
        sql: &str,
        filter: &ReadFilter,
        map: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, StoreError> {
        let condition = format!(
            "{} AND (CAST(?2 AS BIGINT) IS NULL OR minute >= ?2)",
            self.runs_where()
        );
        let sql = sql.replace("{filter}", &condition);
        self.conn
            .rows(&sql, &filter.args(true), map)
            .map_err(|e| self.error(e))
    }

    /// Up to `limit` kept examples of a route, the first of each signature, oldest first.
    pub fn examples(
        &self,
        route: &str,
        filter: &ReadFilter,
        limit: usize,
    ) -> Result<Vec<MismatchRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM mismatches WHERE id IN (
                 SELECT MIN(id) FROM mismatches
                 WHERE route = ?4 AND is_example
                   AND {} AND (CAST(?2 AS BIGINT) IS NULL OR at_ms >= ?2)
                 GROUP BY signature)
             ORDER BY id LIMIT ?5",
            self.mismatch_columns,
            self.runs_where()
        );
        let [run, since, instance] = filter.args(false);
        let args = [
            run,
            since,
            instance,
            Arg::Text(Some(route)),
            Arg::Int(Some(limit.min(i64::MAX as usize) as i64)),
        ];
        self.mismatches_with_differences(&sql, &args)
    }

    /// The newest `limit` kept examples over every route, newest first, with their
    /// differences: what a live view lists.
    pub fn latest_examples(
        &self,
        filter: &ReadFilter,
        limit: usize,
    ) -> Result<Vec<MismatchRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM mismatches
             WHERE is_example AND {} AND (CAST(?2 AS BIGINT) IS NULL OR at_ms >= ?2)
             ORDER BY id DESC LIMIT ?4",
            self.mismatch_columns,
            self.runs_where()
        );
        let [run, since, instance] = filter.args(false);
        let args = [
            run,
            since,
            instance,
            Arg::Int(Some(limit.min(i64::MAX as usize) as i64)),
        ];
        self.mismatches_with_differences(&sql, &args)
    }

    /// The mismatch rows `sql` selects ([`StoreReader::mismatch_columns`]), each with its
    /// differences.
    fn mismatches_with_differences(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<MismatchRow>, StoreError> {
        let mut rows: Vec<MismatchRow> = self
            .conn
            .rows(sql, args, mismatch_row)
            .map_err(|e| self.error(e))?;
        for row in &mut rows {
            row.differences = self.differences(row.id)?;
        }
        Ok(rows)
    }

    /// One stored mismatch with its differences.
    pub fn mismatch(&self, id: i64) -> Result<MismatchRow, StoreError> {
        let sql = format!(
            "SELECT {} FROM mismatches WHERE id = ?1",
            self.mismatch_columns
        );
        let found = self
            .conn
            .first(&sql, &[Arg::Int(Some(id))], mismatch_row)
            .map_err(|e| self.error(e))?;
        let mut row = found.ok_or_else(|| StoreError::NoSuchMismatch {
            path: self.name.clone(),
            id,
        })?;
        row.differences = self.differences(id)?;
        Ok(row)
    }

    /// The order differences were written in, `{dir}` standing for ASC or DESC.
    fn write_order(&self) -> &'static str {
        match self.conn.engine() {
            Engine::Sqlite => "d.rowid {dir}",
            Engine::Postgres => "d.mismatch_id {dir}, d.ordinal {dir}",
        }
    }

    fn differences(&self, mismatch_id: i64) -> Result<Vec<DifferenceRow>, StoreError> {
        let to_path = match self
            .conn
            .has_column("differences", "to_path")
            .map_err(|e| self.error(e))?
        {
            true => "to_path",
            false => "NULL",
        };
        let sql = format!(
            "SELECT path, kind, primary_value, secondary_value, {to_path} FROM differences d
             WHERE mismatch_id = ?1 ORDER BY {}",
            self.write_order().replace("{dir}", "")
        );
        self.conn
            .rows(&sql, &[Arg::Int(Some(mismatch_id))], |row| {
                Ok(DifferenceRow {
                    path: row.text(0)?,
                    kind: row.text(1)?,
                    primary: row.opt_text(2)?,
                    secondary: row.opt_text(3)?,
                    to: row.opt_text(4)?,
                })
            })
            .map_err(|e| self.error(e))
    }
}

/// One stored difference with what `suggest` needs of its mismatch.
#[derive(Clone, Debug)]
pub struct DifferenceFact {
    pub mismatch_id: i64,
    pub route: String,
    pub at_ms: i64,
    pub path: String,
    pub kind: String,
    pub primary: Option<String>,
    pub secondary: Option<String>,
    /// A renamed key's new path (schema 3; `None` in older stores).
    pub to_path: Option<String>,
}

impl StoreReader {
    /// Stored mismatches per route over the filter: (route, count).
    pub fn mismatch_counts(&self, filter: &ReadFilter) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = format!(
            "SELECT route, COUNT(*) FROM mismatches
             WHERE {} AND (CAST(?2 AS BIGINT) IS NULL OR at_ms >= ?2)
             GROUP BY route",
            self.runs_where()
        );
        self.conn
            .rows(&sql, &filter.args(false), |row| {
                Ok((row.text(0)?, row.int(1)?.max(0) as u64))
            })
            .map_err(|e| self.error(e))
    }

    /// Streams every stored difference the filter covers to `visit`, one row at a time, so
    /// a caller's memory does not grow with the store; newest first when `limit` caps it
    /// (the report's bounded look), else in the order they were written.
    pub fn for_each_difference(
        &self,
        filter: &ReadFilter,
        limit: Option<usize>,
        mut visit: impl FnMut(DifferenceFact),
    ) -> Result<(), StoreError> {
        let has_to_path = self
            .conn
            .has_column("differences", "to_path")
            .map_err(|e| self.error(e))?;
        let to_path = if has_to_path { "d.to_path" } else { "NULL" };
        let order = if limit.is_some() { "DESC" } else { "" };
        let runs = self.runs_where().replace("run_id", "m.run_id");
        let sql = format!(
            "SELECT d.mismatch_id, m.route, m.at_ms, d.path, d.kind, d.primary_value,
                    d.secondary_value, {to_path}
             FROM differences d JOIN mismatches m ON m.id = d.mismatch_id
             WHERE {runs} AND (CAST(?2 AS BIGINT) IS NULL OR m.at_ms >= ?2)
             ORDER BY {} LIMIT ?4",
            self.write_order().replace("{dir}", order)
        );
        // PostgreSQL's LIMIT takes NULL as no limit; SQLite's takes -1.
        let cap = match (limit, self.conn.engine()) {
            (Some(n), _) => Some(n.min(i64::MAX as usize) as i64),
            (None, Engine::Sqlite) => Some(-1),
            (None, Engine::Postgres) => None,
        };
        let [run, since, instance] = filter.args(false);
        let args = [run, since, instance, Arg::Int(cap)];
        self.conn
            .each(&sql, &args, |row| {
                visit(DifferenceFact {
                    mismatch_id: row.int(0)?,
                    route: row.text(1)?,
                    at_ms: row.int(2)?,
                    path: row.text(3)?,
                    kind: row.text(4)?,
                    primary: row.opt_text(5)?,
                    secondary: row.opt_text(6)?,
                    to_path: row.opt_text(7)?,
                });
                Ok(())
            })
            .map_err(|e| self.error(e))
    }
}

fn headers_column(value: Option<String>) -> Option<Vec<(String, String)>> {
    value.map(|json| serde_json::from_str(&json).unwrap_or_default())
}

fn mismatch_row(row: &Row<'_>) -> Result<MismatchRow, DbError> {
    let status = |i| row.int(i).map(|n| u16::try_from(n).unwrap_or(0));
    Ok(MismatchRow {
        id: row.int(0)?,
        run_id: row.int(1)?,
        at_ms: row.int(2)?,
        route: row.text(3)?,
        signature: row.text(4)?,
        method: row.text(5)?,
        uri: row.text(6)?,
        primary_status: status(7)?,
        secondary_status: status(8)?,
        primary_latency_us: row.int(9)?,
        secondary_latency_us: row.int(10)?,
        is_example: row.bool(11)?,
        request_headers: headers_column(row.opt_text(12)?),
        request_body: row.opt_bytes(13)?,
        primary_headers: headers_column(row.opt_text(14)?),
        primary_body: row.opt_bytes(15)?,
        secondary_headers: headers_column(row.opt_text(16)?),
        secondary_body: row.opt_bytes(17)?,
        body_diff: row.opt_text(18)?,
        rewrites: row
            .opt_text(19)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
        differences: Vec::new(),
    })
}

/// One line of the sidecar losses note (JSON Lines, appended).
#[derive(serde::Serialize, serde::Deserialize)]
struct LossNote {
    run: i64,
    reason: String,
    count: u64,
}

/// Appends one line per reason to the sidecar note: a few dozen bytes, so it fits where the
/// store's next page did not.
pub(super) fn append_losses_note(
    note: &Path,
    run: i64,
    losses: &std::collections::BTreeMap<super::LossReason, u64>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut text = String::new();
    for (reason, count) in losses {
        let line = LossNote {
            run,
            reason: reason.as_str().to_string(),
            count: *count,
        };
        text.push_str(&serde_json::to_string(&line).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(note)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
