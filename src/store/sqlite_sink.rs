//! Batches into an SQLite file: one transaction each on the only write connection. A
//! full disk is the failure this engine has to live with, so the sink keeps a little room
//! aside (`FILE.losses-reserve`) for the sidecar note that records losses when even the
//! run's last row cannot be written.

use super::writer::{headers_json, Batch, BatchCounters, MismatchOut, Sink, SinkError};
use super::{millis_since_epoch, LossReason, StoreError};
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

/// Bytes set aside next to the store while it is written (`FILE.losses-reserve`), given back
/// when the disk stays full to the end so that the sidecar losses note still fits.
const NOTE_RESERVE: usize = 16 * 1024;

pub(super) struct SqliteSink {
    conn: Option<Connection>,
    path: PathBuf,
    /// The room kept for the sidecar note, when it could be made.
    reserve: Option<PathBuf>,
}

impl SqliteSink {
    pub(super) fn new(conn: Connection, path: PathBuf) -> SqliteSink {
        let reserve = make_reserve(&path);
        SqliteSink {
            conn: Some(conn),
            path,
            reserve,
        }
    }

    fn conn(&self) -> Result<&Connection, StoreError> {
        self.conn.as_ref().ok_or(StoreError::WriterPanicked)
    }

    fn failure(&self, error: rusqlite::Error) -> SinkError {
        let reason = match error.sqlite_error_code() {
            Some(rusqlite::ffi::ErrorCode::DiskFull) => LossReason::DiskFull,
            _ => LossReason::WriteError,
        };
        SinkError {
            error: self.sqlite(error),
            reason,
            uncertain: false,
        }
    }

    fn sqlite(&self, error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            error,
        }
    }

    fn try_write(&self, batch: &Batch<'_>) -> rusqlite::Result<()> {
        let Some(conn) = &self.conn else {
            return Err(rusqlite::Error::InvalidQuery);
        };
        let tx = conn.unchecked_transaction()?;
        for mismatch in &batch.mismatches {
            insert_mismatch(&tx, batch.run_id, mismatch)?;
        }
        write_counters(&tx, batch.run_id, &batch.counters)?;
        write_losses(&tx, batch.run_id, batch.losses)?;
        tx.execute(
            "UPDATE runs SET dropped = ?1 WHERE id = ?2",
            params![batch.dropped, batch.run_id],
        )?;
        tx.commit()
    }
}

impl Sink for SqliteSink {
    fn write(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.try_write(batch).map_err(|e| self.failure(e))
    }

    /// A local commit's outcome is always known.
    fn committed(&mut self, _run_id: i64, _seq: i64) -> Result<bool, SinkError> {
        Ok(false)
    }

    fn close_run(
        &mut self,
        run_id: i64,
        dropped: i64,
        losses: &BTreeMap<LossReason, u64>,
    ) -> Result<(), SinkError> {
        let result = (|| {
            let Some(conn) = &self.conn else {
                return Err(rusqlite::Error::InvalidQuery);
            };
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                "UPDATE runs SET finished_ms = ?1, dropped = ?2 WHERE id = ?3",
                params![millis_since_epoch(SystemTime::now()), dropped, run_id],
            )?;
            write_losses(&tx, run_id, losses)?;
            tx.commit()
        })();
        result.map_err(|e| self.failure(e))
    }

    fn size(&mut self) -> Result<u64, StoreError> {
        let size: i64 = self
            .conn()?
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(size.max(0) as u64)
    }

    fn mark_examples_stopped(&mut self, run_id: i64) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "UPDATE runs SET examples_stopped_ms = ?1 WHERE id = ?2",
                params![millis_since_epoch(SystemTime::now()), run_id],
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    /// Truncates the write-ahead log, which otherwise only grows until an automatic
    /// checkpoint at 1000 pages and can by itself fill a small filesystem.
    fn make_room(&mut self) {
        if let Some(conn) = &self.conn {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }

    /// The note is written after the connection is closed: closing removes the
    /// write-ahead log, which frees the room a small note needs.
    fn finish(mut self: Box<Self>, run_id: i64, unwritten: &BTreeMap<LossReason, u64>) {
        drop(self.conn.take());
        if let Some(reserve) = &self.reserve {
            let _ = std::fs::remove_file(reserve);
        }
        if unwritten.is_empty() {
            return;
        }
        let note = super::inspect::losses_note(&self.path);
        match super::read::append_losses_note(&note, run_id, unwritten) {
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

    fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

fn insert_mismatch(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    mismatch: &MismatchOut<'_>,
) -> rusqlite::Result<()> {
    let detail = mismatch.detail;
    let record = mismatch.record;
    let mut insert = tx.prepare_cached(
        "INSERT INTO mismatches (run_id, at_ms, route, signature, method, uri, primary_status,
             secondary_status, primary_latency_us, secondary_latency_us, is_example,
             request_headers, request_body, primary_headers, primary_body, secondary_headers,
             secondary_body, body_diff, rewrites)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19)",
    )?;
    insert.execute(params![
        run_id,
        millis_since_epoch(record.at),
        record.route,
        mismatch.signature,
        detail.request.method.as_str(),
        detail.request.uri.to_string(),
        detail.primary.status.as_u16(),
        detail.secondary.status.as_u16(),
        mismatch.primary_latency_us(),
        mismatch.secondary_latency_us(),
        mismatch.keep_bodies,
        mismatch
            .kept(())
            .map(|()| headers_json(&detail.request.headers)),
        mismatch.kept(&detail.request.body[..]),
        mismatch
            .kept(())
            .map(|()| headers_json(&detail.primary.headers)),
        mismatch.kept(&detail.primary.body[..]),
        mismatch
            .kept(())
            .map(|()| headers_json(&detail.secondary.headers)),
        mismatch.kept(&detail.secondary.body[..]),
        detail.body_diff.as_deref().filter(|_| mismatch.keep_bodies),
        mismatch.rewrites_json(),
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
    losses: &BTreeMap<LossReason, u64>,
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
    counters: &BatchCounters<'_>,
) -> rusqlite::Result<()> {
    let mut outcomes = tx.prepare_cached(
        "INSERT INTO outcome_counts (run_id, minute, route, outcome, reason, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, outcome, reason), count) in &counters.outcomes {
        outcomes.execute(params![
            run_id,
            minute,
            route,
            outcome,
            reason.as_ref(),
            *count as i64
        ])?;
    }
    let mut latencies = tx.prepare_cached(
        "INSERT INTO latency_buckets (run_id, minute, route, leg, bucket, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, leg, bucket), count) in &counters.latencies {
        latencies.execute(params![run_id, minute, route, leg, bucket, *count as i64])?;
    }
    let mut paths = tx.prepare_cached(
        "INSERT INTO path_counts (run_id, minute, route, path, count)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, path), count) in &counters.paths {
        paths.execute(params![run_id, minute, route, path, *count as i64])?;
    }
    let mut hidden = tx.prepare_cached(
        "INSERT INTO hidden_counts (run_id, minute, route, rule, count)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((minute, route, rule), count) in &counters.hidden {
        hidden.execute(params![run_id, minute, route, rule, *count as i64])?;
    }
    let mut seconds = tx.prepare_cached(
        "INSERT INTO second_counts (run_id, second, outcome, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((second, outcome), count) in &counters.seconds {
        seconds.execute(params![run_id, second, outcome, *count as i64])?;
    }
    if !counters.baseline.is_empty() {
        let mut baseline = tx.prepare_cached(
            "INSERT INTO baseline_counts (run_id, minute, route, state, reason, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO UPDATE SET count = count + excluded.count",
        )?;
        for ((minute, route, state, reason), count) in &counters.baseline {
            baseline.execute(params![run_id, minute, route, state, reason, *count as i64])?;
        }
    }
    Ok(())
}
