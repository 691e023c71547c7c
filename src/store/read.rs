//! Read-only queries over one store file. Reports aggregate the counter tables (a few rows
//! per route and minute), never the mismatch rows, so their cost does not grow with the
//! number of stored mismatches; only examples and `show` touch `mismatches`, by index.

use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// Which part of a store a report covers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadFilter {
    /// Only this run.
    pub run: Option<i64>,
    /// Only what happened at or after this time (milliseconds since the Unix epoch).
    pub since_ms: Option<i64>,
}

impl ReadFilter {
    fn since_minute(&self) -> Option<i64> {
        self.since_ms.map(|ms| ms.div_euclid(60_000))
    }
}

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
    pub differences: Vec<DifferenceRow>,
}

/// A read-only connection to one store.
pub struct StoreReader {
    conn: Connection,
    path: PathBuf,
}

const MISMATCH_COLUMNS: &str = "id, run_id, at_ms, route, signature, method, uri,
    primary_status, secondary_status, primary_latency_us, secondary_latency_us, is_example,
    request_headers, request_body, primary_headers, primary_body, secondary_headers,
    secondary_body, body_diff";

impl StoreReader {
    /// Opens `path` read-only and checks that it is a store this build understands.
    pub fn open(path: &Path) -> Result<StoreReader, StoreError> {
        let conn = super::inspect::open_for_reading(path)?;
        Ok(StoreReader {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, source)
    }

    /// Observations lost before they reached the store, summed per reason (`disk_full`,
    /// `write_error`) over the filter's runs: the `losses` table (schema 2) plus the
    /// sidecar note a writer leaves when the store stayed unwritable to the end.
    pub fn losses(&self, filter: ReadFilter) -> Result<Vec<(String, u64)>, StoreError> {
        let mut sums: std::collections::BTreeMap<String, u64> = Default::default();
        if self.has_table("losses")? {
            let mut statement = self
                .conn
                .prepare(
                    "SELECT reason, SUM(count) FROM losses
                     WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR at_ms >= ?2)
                     GROUP BY reason",
                )
                .map_err(|e| self.error(e))?;
            let rows = statement
                .query_map(params![filter.run, filter.since_ms], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.error(e))?;
            for (reason, count) in rows {
                *sums.entry(reason).or_default() += count.max(0) as u64;
            }
        }
        let note = super::inspect::losses_note(&self.path);
        if let Ok(text) = std::fs::read_to_string(&note) {
            for line in text.lines() {
                let Ok(entry) = serde_json::from_str::<LossNote>(line) else {
                    continue;
                };
                if filter.run.is_none_or(|run| run == entry.run) {
                    *sums.entry(entry.reason).or_default() += entry.count;
                }
            }
        }
        Ok(sums.into_iter().collect())
    }

    /// The runs the filter covers, oldest first.
    pub fn runs(&self, filter: ReadFilter) -> Result<Vec<RunRow>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, mode, primary_url, secondary_url, config_digest, tool_version, rules,
                        started_ms, finished_ms, dropped, examples_stopped_ms
                 FROM runs WHERE (?1 IS NULL OR id = ?1)
                   AND (?2 IS NULL OR finished_ms IS NULL OR finished_ms >= ?2)
                 ORDER BY id",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(params![filter.run, filter.since_ms], |row| {
                let rules: String = row.get(6)?;
                Ok(RunRow {
                    id: row.get(0)?,
                    mode: row.get(1)?,
                    primary: row.get(2)?,
                    secondary: row.get(3)?,
                    config_digest: row.get(4)?,
                    tool_version: row.get(5)?,
                    rules: serde_json::from_str(&rules).unwrap_or_default(),
                    started_ms: row.get(7)?,
                    finished_ms: row.get(8)?,
                    dropped: row.get::<_, i64>(9)? as u64,
                    examples_stopped_ms: row.get(10)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// Outcome counts per route, outcome and reason.
    pub fn outcome_counts(&self, filter: ReadFilter) -> Result<Vec<OutcomeRow>, StoreError> {
        self.grouped(
            "SELECT route, outcome, reason, SUM(count) FROM outcome_counts
             WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR minute >= ?2)
             GROUP BY route, outcome, reason",
            filter,
            |row| {
                Ok(OutcomeRow {
                    route: row.get(0)?,
                    outcome: super::OutcomeKind::parse(&row.get::<_, String>(1)?),
                    reason: row.get(2)?,
                    count: row.get::<_, i64>(3)? as u64,
                })
            },
        )
    }

    /// Matched and mismatched counts per minute, for the mismatch-rate-over-time chart.
    pub fn timeline(&self, filter: ReadFilter) -> Result<Vec<TimelineRow>, StoreError> {
        self.grouped(
            "SELECT minute, route, outcome, SUM(count) FROM outcome_counts
             WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR minute >= ?2)
               AND outcome IN ('matched', 'mismatched')
             GROUP BY minute, route, outcome ORDER BY minute",
            filter,
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    super::OutcomeKind::parse(&row.get::<_, String>(2)?),
                    row.get::<_, i64>(3)? as u64,
                ))
            },
        )
    }

    /// Latency histogram per route and leg: (route, leg, bucket, count), buckets ascending.
    pub fn latency_buckets(
        &self,
        filter: ReadFilter,
    ) -> Result<Vec<(String, String, i64, u64)>, StoreError> {
        self.grouped(
            "SELECT route, leg, bucket, SUM(count) FROM latency_buckets
             WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR minute >= ?2)
             GROUP BY route, leg, bucket ORDER BY route, leg, bucket",
            filter,
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? as u64,
                ))
            },
        )
    }

    /// How many mismatches differed at each path, per route: (route, path, count).
    pub fn path_counts(
        &self,
        filter: ReadFilter,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.grouped(
            "SELECT route, path, SUM(count) FROM path_counts
             WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR minute >= ?2)
             GROUP BY route, path",
            filter,
            |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64)),
        )
    }

    /// Whether the store has `table`: a store of an older schema, read as it is, lacks the
    /// newer ones.
    fn has_table(&self, table: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
                [table],
                |row| row.get(0),
            )
            .map_err(|e| self.error(e))
    }

    /// How the baseline served the comparisons, per route: (route, state, reason, count).
    /// Empty for a store older than schema 3.
    pub fn baseline_counts(
        &self,
        filter: ReadFilter,
    ) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        if !self.has_table("baseline_counts")? {
            return Ok(Vec::new());
        }
        self.grouped(
            "SELECT route, state, reason, SUM(count) FROM baseline_counts
             WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR minute >= ?2)
             GROUP BY route, state, reason",
            filter,
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? as u64,
                ))
            },
        )
    }

    /// Differences hidden by each rule, per route: (route, rule, count).
    pub fn hidden_counts(
        &self,
        filter: ReadFilter,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.grouped(
            "SELECT route, rule, SUM(count) FROM hidden_counts
             WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR minute >= ?2)
             GROUP BY route, rule",
            filter,
            |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64)),
        )
    }

    fn grouped<T>(
        &self,
        sql: &str,
        filter: ReadFilter,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = self.conn.prepare(sql).map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(params![filter.run, filter.since_minute()], map)
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// Up to `limit` kept examples of a route, the first of each signature, oldest first.
    pub fn examples(
        &self,
        route: &str,
        filter: ReadFilter,
        limit: usize,
    ) -> Result<Vec<MismatchRow>, StoreError> {
        let sql = format!(
            "SELECT {MISMATCH_COLUMNS} FROM mismatches WHERE id IN (
                 SELECT MIN(id) FROM mismatches
                 WHERE route = ?1 AND is_example = 1
                   AND (?2 IS NULL OR run_id = ?2) AND (?3 IS NULL OR at_ms >= ?3)
                 GROUP BY signature)
             ORDER BY id LIMIT ?4"
        );
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(
                params![route, filter.run, filter.since_ms, limit as i64],
                mismatch_row,
            )
            .map_err(|e| self.error(e))?;
        let mut examples: Vec<MismatchRow> =
            rows.collect::<Result<_, _>>().map_err(|e| self.error(e))?;
        for example in &mut examples {
            example.differences = self.differences(example.id)?;
        }
        Ok(examples)
    }

    /// One stored mismatch with its differences.
    pub fn mismatch(&self, id: i64) -> Result<MismatchRow, StoreError> {
        let sql = format!("SELECT {MISMATCH_COLUMNS} FROM mismatches WHERE id = ?1");
        let found = self
            .conn
            .query_row(&sql, [id], mismatch_row)
            .optional()
            .map_err(|e| self.error(e))?;
        let mut row = found.ok_or_else(|| StoreError::NoSuchMismatch {
            path: self.path.clone(),
            id,
        })?;
        row.differences = self.differences(id)?;
        Ok(row)
    }

    fn differences(&self, mismatch_id: i64) -> Result<Vec<DifferenceRow>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT path, kind, primary_value, secondary_value, to_path FROM differences
                 WHERE mismatch_id = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([mismatch_id], |row| {
                Ok(DifferenceRow {
                    path: row.get(0)?,
                    kind: row.get(1)?,
                    primary: row.get(2)?,
                    secondary: row.get(3)?,
                    to: row.get(4)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
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
    pub fn mismatch_counts(&self, filter: ReadFilter) -> Result<Vec<(String, u64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT route, COUNT(*) FROM mismatches
                 WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR at_ms >= ?2)
                 GROUP BY route",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(params![filter.run, filter.since_ms], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?.max(0) as u64,
                ))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// Streams every stored difference the filter covers to `visit`, one row at a time, so
    /// a caller's memory does not grow with the store; newest first when `limit` caps it
    /// (the report's bounded look), else in the order they were written.
    pub fn for_each_difference(
        &self,
        filter: ReadFilter,
        limit: Option<usize>,
        mut visit: impl FnMut(DifferenceFact),
    ) -> Result<(), StoreError> {
        let has_to_path: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('differences') WHERE name = 'to_path')",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.error(e))?;
        let to_path = if has_to_path { "d.to_path" } else { "NULL" };
        let order = if limit.is_some() { "DESC" } else { "" };
        let sql = format!(
            "SELECT d.mismatch_id, m.route, m.at_ms, d.path, d.kind, d.primary_value,
                    d.secondary_value, {to_path}
             FROM differences d JOIN mismatches m ON m.id = d.mismatch_id
             WHERE (?1 IS NULL OR m.run_id = ?1) AND (?2 IS NULL OR m.at_ms >= ?2)
             ORDER BY d.rowid {order} LIMIT ?3"
        );
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.error(e))?;
        let cap = limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64);
        let mut rows = statement
            .query(params![filter.run, filter.since_ms, cap])
            .map_err(|e| self.error(e))?;
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            let fact = (|| {
                Ok::<_, rusqlite::Error>(DifferenceFact {
                    mismatch_id: row.get(0)?,
                    route: row.get(1)?,
                    at_ms: row.get(2)?,
                    path: row.get(3)?,
                    kind: row.get(4)?,
                    primary: row.get(5)?,
                    secondary: row.get(6)?,
                    to_path: row.get(7)?,
                })
            })()
            .map_err(|e| self.error(e))?;
            visit(fact);
        }
        Ok(())
    }
}

fn headers_column(value: Option<String>) -> Option<Vec<(String, String)>> {
    value.map(|json| serde_json::from_str(&json).unwrap_or_default())
}

fn mismatch_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MismatchRow> {
    Ok(MismatchRow {
        id: row.get(0)?,
        run_id: row.get(1)?,
        at_ms: row.get(2)?,
        route: row.get(3)?,
        signature: row.get(4)?,
        method: row.get(5)?,
        uri: row.get(6)?,
        primary_status: row.get(7)?,
        secondary_status: row.get(8)?,
        primary_latency_us: row.get(9)?,
        secondary_latency_us: row.get(10)?,
        is_example: row.get(11)?,
        request_headers: headers_column(row.get(12)?),
        request_body: row.get(13)?,
        primary_headers: headers_column(row.get(14)?),
        primary_body: row.get(15)?,
        secondary_headers: headers_column(row.get(16)?),
        secondary_body: row.get(17)?,
        body_diff: row.get(18)?,
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
