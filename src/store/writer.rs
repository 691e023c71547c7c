//! The one thread that writes: it owns the only write connection, so SQLite never sees two
//! writers, and it batches records into transactions (500 rows or 100 ms, whichever comes
//! first) because one fsync per request could not keep up with production traffic.

use super::{latency, millis_since_epoch, LossReason, Outcome, Record, StoreError, StoreOptions};
use crate::compare::Difference;
use http::HeaderMap;
use rusqlite::{params, Connection};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

const BATCH_ROWS: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// While a batch fills, the writer looks at the queue this often instead of being woken by
/// every record: one wake-up per record costs the proxy more than the writing does.
const BATCH_POLL: Duration = Duration::from_millis(5);
/// A batch that fails is tried this many times in all before its records count as lost,
/// waiting `RETRY_BACKOFF` doubled after each failure (0.1 + 0.2 + 0.4 + 0.8 s): long
/// enough to ride out a log rotation or an operator freeing space, short enough that the
/// bounded queue in front of the writer, not the proxy, absorbs the wait.
const BATCH_ATTEMPTS: u32 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Bytes set aside next to the store while it is written (`FILE.losses-reserve`), given back
/// when the disk stays full to the end so that the sidecar losses note still fits.
const NOTE_RESERVE: usize = 16 * 1024;

/// Counters summed in memory over one batch, then added to the tables in one upsert each:
/// a batch of 500 matches on one route costs one row write, not 500.
#[derive(Default)]
/// Keys borrow the batch's routes and rule ids: counting a record copies no string.
struct BatchCounters<'a> {
    outcomes: HashMap<(i64, &'a str, &'static str, Cow<'static, str>), u64>,
    latencies: HashMap<(i64, &'a str, &'static str, i64), u64>,
    paths: HashMap<(i64, &'a str, String), u64>,
    hidden: HashMap<(i64, &'a str, &'a str), u64>,
    baseline: HashMap<(i64, &'a str, &'static str, String), u64>,
}

pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) run_id: i64,
    pub(super) options: StoreOptions,
    /// Examples kept so far in this run per (route, signature).
    examples: HashMap<(String, String), u32>,
    examples_stopped: bool,
    /// Observations lost and not yet written to `losses`: written with the next batch that
    /// commits, or at the end to the store or its sidecar note.
    unwritten_losses: std::collections::BTreeMap<LossReason, u64>,
    /// Whether the last batch was lost: then the next batch is tried once, not retried,
    /// so a store that stays unwritable does not hold every batch for seconds.
    failing: bool,
    /// The room kept for the sidecar note, when it could be made.
    reserve: Option<PathBuf>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        path: PathBuf,
        run_id: i64,
        options: StoreOptions,
    ) -> Writer {
        let reserve = make_reserve(&path);
        Writer {
            reserve,
            conn,
            path,
            run_id,
            options,
            examples: HashMap::new(),
            examples_stopped: false,
            unwritten_losses: Default::default(),
            failing: false,
        }
    }

    /// Drains the channel until every sender is gone, then closes the run. A failed batch
    /// is retried with backoff, then counted as lost (metric, log line, `losses` row) and
    /// the thread keeps going: losing one batch beats stalling the pipeline; the first error
    /// is still returned at the end so the exit status tells.
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
            if let Err(e) = self.write_with_retries(&batch) {
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

    /// Writes one batch, retrying a failure; what is finally not written is counted lost.
    fn write_with_retries(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        let attempts = if self.failing { 1 } else { BATCH_ATTEMPTS };
        let mut backoff = RETRY_BACKOFF;
        let mut attempt = 1;
        loop {
            let error = match self.write_batch(batch) {
                Ok(()) => {
                    if self.failing {
                        tracing::info!(path = %self.path.display(), "store: writable again");
                    }
                    self.failing = false;
                    return Ok(());
                }
                Err(error) => error,
            };
            self.options.write_errors.fetch_add(1, Ordering::Relaxed);
            let reason = match &error {
                StoreError::Sqlite { error, .. } => LossReason::of(error),
                _ => LossReason::WriteError,
            };
            if reason == LossReason::DiskFull {
                self.make_room();
            }
            if attempt >= attempts {
                let lost = batch.iter().map(|record| record.count).sum::<u64>();
                self.options.lost.add(reason, lost);
                *self.unwritten_losses.entry(reason).or_default() += lost;
                self.failing = true;
                tracing::error!(
                    path = %self.path.display(),
                    lost,
                    reason = reason.as_str(),
                    %error,
                    "store: {lost} observations lost: {}",
                    LossReason::describe(reason.as_str())
                );
                return Err(error);
            }
            tracing::warn!(%error, attempt, "store: a batch could not be written; retrying");
            std::thread::sleep(backoff);
            backoff *= 2;
            attempt += 1;
        }
    }

    /// On a full disk: stop keeping examples (their bodies are what fills a store; counts
    /// stay small) and truncate the write-ahead log, which otherwise only grows until an
    /// automatic checkpoint at 1000 pages and can by itself fill a small filesystem.
    fn make_room(&mut self) {
        if !self.examples_stopped {
            self.examples_stopped = true;
            tracing::warn!(
                path = %self.path.display(),
                "store: the disk is full; examples are no longer stored (counts continue)"
            );
        }
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            error: source,
        }
    }

    /// Ends the run: its finish time, the final drop count and any losses not yet written.
    /// When even that cannot be written, the losses go to the sidecar note next to the
    /// store (`FILE.losses`), which `report` reads, after the connection is closed: closing
    /// removes the write-ahead log, which frees the room a small note needs.
    fn close_run(mut self) -> Result<(), StoreError> {
        let mut result = self.try_close_run();
        if result.is_err() {
            self.make_room();
            result = self.try_close_run();
        }
        let Err(error) = result else {
            if let Some(reserve) = &self.reserve {
                let _ = std::fs::remove_file(reserve);
            }
            return Ok(());
        };
        let Writer {
            conn,
            path,
            run_id,
            unwritten_losses,
            reserve,
            ..
        } = self;
        drop(conn);
        if let Some(reserve) = reserve {
            let _ = std::fs::remove_file(reserve);
        }
        if !unwritten_losses.is_empty() {
            let note = super::inspect::losses_note(&path);
            match super::read::append_losses_note(&note, run_id, &unwritten_losses) {
                Ok(()) => tracing::warn!(
                    note = %note.display(),
                    "store: losses written to the sidecar note"
                ),
                Err(e) => tracing::error!(
                    note = %note.display(),
                    error = %e,
                    "store: the losses could not be written anywhere"
                ),
            }
        }
        Err(error)
    }

    fn try_close_run(&mut self) -> Result<(), StoreError> {
        let path = &self.path;
        let sqlite = |error| StoreError::Sqlite {
            path: path.clone(),
            error,
        };
        let tx = self.conn.unchecked_transaction().map_err(sqlite)?;
        tx.execute(
            "UPDATE runs SET finished_ms = ?1, dropped = ?2 WHERE id = ?3",
            params![
                millis_since_epoch(SystemTime::now()),
                self.options.dropped.load(Ordering::Relaxed) as i64,
                self.run_id
            ],
        )
        .map_err(sqlite)?;
        write_losses(&tx, self.run_id, &self.unwritten_losses).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        self.unwritten_losses.clear();
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
                .entry((minute, record.route.as_str(), outcome, reason))
                .or_default() += record.count;
            for (leg, value) in [
                ("primary", record.primary_latency),
                ("secondary", record.secondary_latency),
            ] {
                if let Some(value) = value {
                    *counters
                        .latencies
                        .entry((
                            minute,
                            record.route.as_str(),
                            leg,
                            latency::bucket_of(value),
                        ))
                        .or_default() += 1;
                }
            }
            if let Some(baseline) = record.baseline {
                let (state, reason) = match baseline {
                    super::BaselineUse::Used => ("used", String::new()),
                    super::BaselineUse::Unusable(why) => ("unusable", why.as_string()),
                };
                *counters
                    .baseline
                    .entry((minute, record.route.as_str(), state, reason))
                    .or_default() += record.count;
            }
            for hidden in &record.hidden {
                *counters
                    .hidden
                    .entry((minute, record.route.as_str(), hidden.rule.as_str()))
                    .or_default() += hidden.count;
            }
            if record.outcome == Outcome::Mismatched {
                if let Some(detail) = &record.mismatch {
                    let signature = signature_of(&detail.differences);
                    for path in signature.split(", ").filter(|p| !p.is_empty()) {
                        *counters
                            .paths
                            .entry((minute, record.route.as_str(), path.to_string()))
                            .or_default() += 1;
                    }
                    let keep_bodies = slots.take(&record.route, &signature);
                    insert_mismatch(&tx, self.run_id, record, signature, keep_bodies)
                        .map_err(sqlite)?;
                }
            }
        }
        write_counters(&tx, self.run_id, counters).map_err(sqlite)?;
        write_losses(&tx, self.run_id, &self.unwritten_losses).map_err(sqlite)?;
        tx.execute(
            "UPDATE runs SET dropped = ?1 WHERE id = ?2",
            params![
                self.options.dropped.load(Ordering::Relaxed) as i64,
                self.run_id
            ],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        self.unwritten_losses.clear();
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
fn outcome_columns(outcome: Outcome) -> (&'static str, Cow<'static, str>) {
    let reason = match outcome {
        Outcome::Matched | Outcome::Mismatched => Cow::Borrowed(""),
        Outcome::Error { leg, kind } => Cow::Owned(format!("{}:{}", leg.as_str(), kind.as_str())),
        Outcome::Skipped(reason) => Cow::Borrowed(reason.as_str()),
    };
    (outcome.kind().as_str(), reason)
}

/// The sorted set of differing paths: mismatches that differ in the same places are one
/// kind of problem, and examples are bounded per kind. The lines of a text body count as
/// one place (`body#L*`): otherwise every mismatch of a text endpoint that differs on
/// other lines would be a kind of its own and keep its own examples.
pub fn signature_of(differences: &[Difference]) -> String {
    let mut paths: Vec<&str> = differences
        .iter()
        .map(|d| match d.path.starts_with("body#L") {
            true => "body#L*",
            false => d.path.as_str(),
        })
        .collect();
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
        "INSERT INTO differences (mismatch_id, path, kind, primary_value, secondary_value, to_path)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for difference in &detail.differences {
        insert_difference.execute(params![
            mismatch_id,
            difference.path,
            difference.kind.as_str(),
            difference.primary,
            difference.secondary,
            difference.to,
        ])?;
    }
    Ok(())
}

/// Sets aside [`NOTE_RESERVE`] bytes of real data (a sparse file would reserve nothing);
/// best effort: without it the note is still tried.
fn make_reserve(store: &std::path::Path) -> Option<PathBuf> {
    let reserve = super::inspect::sibling(store, ".losses-reserve");
    match std::fs::write(&reserve, vec![0u8; NOTE_RESERVE]) {
        Ok(()) => Some(reserve),
        Err(_) => {
            let _ = std::fs::remove_file(&reserve);
            None
        }
    }
}

/// One `losses` row per reason.
fn write_losses(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    losses: &std::collections::BTreeMap<LossReason, u64>,
) -> rusqlite::Result<()> {
    let now = millis_since_epoch(SystemTime::now());
    for (reason, count) in losses {
        tx.execute(
            "INSERT INTO losses (run_id, at_ms, reason, count) VALUES (?1, ?2, ?3, ?4)",
            params![run_id, now, reason.as_str(), *count as i64],
        )?;
    }
    Ok(())
}

fn write_counters(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    counters: BatchCounters<'_>,
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
            reason.as_ref(),
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
    if !counters.baseline.is_empty() {
        let mut baseline = tx.prepare_cached(
            "INSERT INTO baseline_counts (run_id, minute, route, state, reason, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO UPDATE SET count = count + excluded.count",
        )?;
        for ((minute, route, state, reason), count) in counters.baseline {
            baseline.execute(params![run_id, minute, route, state, reason, count as i64])?;
        }
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
            to: None,
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
