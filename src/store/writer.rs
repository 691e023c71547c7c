//! The one thread that writes: it owns the only write connection, so SQLite never sees two
//! writers, and it batches records into transactions (500 rows or 100 ms, whichever comes
//! first) because one fsync per request could not keep up with production traffic.

use super::{latency, millis_since_epoch, Outcome, Record, StoreError, StoreOptions};
use crate::compare::Difference;
use http::HeaderMap;
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

const BATCH_ROWS: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// While a batch fills, the writer looks at the queue this often instead of being woken by
/// every record: one wake-up per record costs the proxy more than the writing does.
const BATCH_POLL: Duration = Duration::from_millis(5);

/// Counters summed in memory over one batch, then added to the tables in one upsert each:
/// a batch of 500 matches on one route costs one row write, not 500.
#[derive(Default)]
struct BatchCounters {
    outcomes: HashMap<(i64, String, &'static str, String), u64>,
    latencies: HashMap<(i64, String, &'static str, i64), u64>,
    paths: HashMap<(i64, String, String), u64>,
    hidden: HashMap<(i64, String, String), u64>,
}

pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) run_id: i64,
    pub(super) options: StoreOptions,
    /// Examples kept so far in this run per (route, signature).
    examples: HashMap<(String, String), u32>,
    examples_stopped: bool,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        path: PathBuf,
        run_id: i64,
        options: StoreOptions,
    ) -> Writer {
        Writer {
            conn,
            path,
            run_id,
            options,
            examples: HashMap::new(),
            examples_stopped: false,
        }
    }

    /// Drains the channel until every sender is gone, then closes the run. A failed batch
    /// is logged and the thread keeps going: losing one batch beats stalling the pipeline;
    /// the first error is still returned at the end so the exit status tells.
    pub(super) fn run(mut self, records: flume::Receiver<Record>) -> Result<(), StoreError> {
        let mut first_error = None;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        while let Ok(record) = records.recv() {
            batch.push(record);
            let deadline = Instant::now() + BATCH_WAIT;
            loop {
                let room = BATCH_ROWS - batch.len();
                batch.extend(records.try_iter().take(room));
                let now = Instant::now();
                if batch.len() >= BATCH_ROWS || now >= deadline || records.is_disconnected() {
                    break;
                }
                std::thread::sleep(BATCH_POLL.min(deadline - now));
            }
            if let Err(e) = self.write_batch(&batch) {
                tracing::error!(error = %e, rows = batch.len(), "store: a batch could not be written");
                self.options.write_errors.fetch_add(1, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
            batch.clear();
        }
        let closed = self.close_run();
        match first_error {
            Some(e) => Err(e),
            None => closed,
        }
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            error: source,
        }
    }

    fn close_run(&self) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_ms = ?1, dropped = ?2 WHERE id = ?3",
                params![
                    millis_since_epoch(SystemTime::now()),
                    self.options.dropped.load(Ordering::Relaxed) as i64,
                    self.run_id
                ],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    fn write_batch(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        let mut counters = BatchCounters::default();
        let path = &self.path;
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            error: source,
        };
        let tx = self.conn.unchecked_transaction().map_err(sqlite)?;
        let mut slots = ExampleSlots {
            kept: &mut self.examples,
            per_signature: self.options.examples_per_signature,
            stopped: self.examples_stopped,
        };
        for record in batch {
            let minute = millis_since_epoch(record.at).div_euclid(60_000);
            let (outcome, reason) = outcome_columns(record.outcome);
            *counters
                .outcomes
                .entry((minute, record.route.clone(), outcome, reason))
                .or_default() += 1;
            for (leg, value) in [
                ("primary", record.primary_latency),
                ("secondary", record.secondary_latency),
            ] {
                if let Some(value) = value {
                    *counters
                        .latencies
                        .entry((minute, record.route.clone(), leg, latency::bucket_of(value)))
                        .or_default() += 1;
                }
            }
            for hidden in &record.hidden {
                *counters
                    .hidden
                    .entry((minute, record.route.clone(), hidden.rule.clone()))
                    .or_default() += hidden.count;
            }
            if record.outcome == Outcome::Mismatched {
                if let Some(detail) = &record.mismatch {
                    let signature = signature_of(&detail.differences);
                    for path in signature.split(", ").filter(|p| !p.is_empty()) {
                        *counters
                            .paths
                            .entry((minute, record.route.clone(), path.to_string()))
                            .or_default() += 1;
                    }
                    let keep_bodies = slots.take(&record.route, &signature);
                    insert_mismatch(&tx, self.run_id, record, signature, keep_bodies)
                        .map_err(sqlite)?;
                }
            }
        }
        write_counters(&tx, self.run_id, counters).map_err(sqlite)?;
        tx.execute(
            "UPDATE runs SET dropped = ?1 WHERE id = ?2",
            params![
                self.options.dropped.load(Ordering::Relaxed) as i64,
                self.run_id
            ],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        self.check_size()
    }

    fn check_size(&mut self) -> Result<(), StoreError> {
        let Some(limit) = self.options.max_db_size else {
            return Ok(());
        };
        if self.examples_stopped {
            return Ok(());
        }
        let size: i64 = self
            .conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        if size as u64 >= limit {
            self.examples_stopped = true;
            tracing::warn!(
                size,
                limit,
                "store: --max-db-size reached; examples are no longer stored (counts continue)"
            );
            self.conn
                .execute(
                    "UPDATE runs SET examples_stopped_ms = ?1 WHERE id = ?2",
                    params![millis_since_epoch(SystemTime::now()), self.run_id],
                )
                .map_err(|e| self.sqlite(e))?;
        }
        Ok(())
    }
}

/// Whether a mismatch keeps its request and bodies: the first N per (route, signature),
/// until the file reaches --max-db-size.
struct ExampleSlots<'a> {
    kept: &'a mut HashMap<(String, String), u32>,
    per_signature: u32,
    stopped: bool,
}

impl ExampleSlots<'_> {
    fn take(&mut self, route: &str, signature: &str) -> bool {
        if self.stopped {
            return false;
        }
        let kept = self
            .kept
            .entry((route.to_string(), signature.to_string()))
            .or_default();
        if *kept >= self.per_signature {
            return false;
        }
        *kept += 1;
        true
    }
}

/// The `outcome` and `reason` columns of a record.
fn outcome_columns(outcome: Outcome) -> (&'static str, String) {
    match outcome {
        Outcome::Matched => ("matched", String::new()),
        Outcome::Mismatched => ("mismatched", String::new()),
        Outcome::Error { leg, kind } => ("error", format!("{}:{}", leg.as_str(), kind.as_str())),
        Outcome::Skipped(reason) => ("skipped", reason.as_str().to_string()),
    }
}

/// The sorted set of differing paths: mismatches that differ in the same places are one
/// kind of problem, and examples are bounded per kind.
pub fn signature_of(differences: &[Difference]) -> String {
    let mut paths: Vec<&str> = differences.iter().map(|d| d.path.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    paths.join(", ")
}

fn headers_json(headers: &HeaderMap) -> String {
    let pairs: Vec<(&str, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

fn insert_mismatch(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    record: &Record,
    signature: String,
    keep_bodies: bool,
) -> rusqlite::Result<()> {
    let Some(detail) = &record.mismatch else {
        return Ok(());
    };
    let micros = |d: Option<Duration>| d.map(|d| d.as_micros() as i64).unwrap_or(0);
    let mut insert = tx.prepare_cached(
        "INSERT INTO mismatches (run_id, at_ms, route, signature, method, uri, primary_status,
             secondary_status, primary_latency_us, secondary_latency_us, is_example,
             request_headers, request_body, primary_headers, primary_body, secondary_headers,
             secondary_body, body_diff)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    let kept = |value: String| keep_bodies.then_some(value);
    insert.execute(params![
        run_id,
        millis_since_epoch(record.at),
        record.route,
        signature,
        detail.request.method.as_str(),
        detail.request.uri.to_string(),
        detail.primary.status.as_u16(),
        detail.secondary.status.as_u16(),
        micros(record.primary_latency.or(Some(detail.primary.latency))),
        micros(record.secondary_latency.or(Some(detail.secondary.latency))),
        keep_bodies,
        kept(headers_json(&detail.request.headers)),
        keep_bodies.then_some(&detail.request.body[..]),
        kept(headers_json(&detail.primary.headers)),
        keep_bodies.then_some(&detail.primary.body[..]),
        kept(headers_json(&detail.secondary.headers)),
        keep_bodies.then_some(&detail.secondary.body[..]),
        detail.body_diff.clone().filter(|_| keep_bodies),
    ])?;
    let mismatch_id = tx.last_insert_rowid();
    let mut insert_difference = tx.prepare_cached(
        "INSERT INTO differences (mismatch_id, path, kind, primary_value, secondary_value)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for difference in &detail.differences {
        insert_difference.execute(params![
            mismatch_id,
            difference.path,
            difference.kind.as_str(),
            difference.primary,
            difference.secondary,
        ])?;
    }
    Ok(())
}

fn write_counters(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    counters: BatchCounters,
) -> rusqlite::Result<()> {
    let mut outcomes = tx.prepare_cached(
        "INSERT INTO outcome_counts (run_id, minute, route, outcome, reason, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, outcome, reason), count) in counters.outcomes {
        outcomes.execute(params![
            run_id,
            minute,
            route,
            outcome,
            reason,
            count as i64
        ])?;
    }
    let mut latencies = tx.prepare_cached(
        "INSERT INTO latency_buckets (run_id, minute, route, leg, bucket, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, leg, bucket), count) in counters.latencies {
        latencies.execute(params![run_id, minute, route, leg, bucket, count as i64])?;
    }
    let mut paths = tx.prepare_cached(
        "INSERT INTO path_counts (run_id, minute, route, path, count)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, path), count) in counters.paths {
        paths.execute(params![run_id, minute, route, path, count as i64])?;
    }
    let mut hidden = tx.prepare_cached(
        "INSERT INTO hidden_counts (run_id, minute, route, rule, count)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, rule), count) in counters.hidden {
        hidden.execute(params![run_id, minute, route, rule, count as i64])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::DiffKind;

    fn at(path: &str) -> Difference {
        Difference {
            path: path.into(),
            kind: DiffKind::Changed,
            primary: None,
            secondary: None,
        }
    }

    #[test]
    fn signature_is_the_sorted_set_of_paths() {
        let a = [at("status"), at("body/b"), at("body/a"), at("body/b")];
        let b = [at("body/a"), at("status"), at("body/b")];
        assert_eq!(signature_of(&a), "body/a, body/b, status");
        assert_eq!(signature_of(&a), signature_of(&b));
        assert_eq!(signature_of(&[]), "");
    }
}
