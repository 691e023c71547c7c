//! Batches into a PostgreSQL database shared by a fleet: each batch is one transaction of a
//! few array-bound statements (`unnest`), whatever its size, so the round trips per batch
//! stay constant; counters are upserted, so instances add up.
//!
//! The connection is this sink's to lose: when the server is down or gone, a write fails at
//! once, the sink reconnects with backoff (0.1 s doubling to 5 s) on later batches, and the
//! writer counts what it could not write. Each batch inserts its `(run_id, seq)` into
//! `batches` first: a retry of a batch whose COMMIT went unanswered finds its row and is
//! not written twice.

use super::db::{connect_pg, DbError};
use super::location::PgTarget;
use super::writer::{headers_json, Batch, Sink, SinkError};
use super::{millis_since_epoch, LossReason, StoreError};
use postgres::{Client, Statement};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// PostgreSQL's SQLSTATE for a full disk (`disk_full`, class 53: insufficient resources).
const DISK_FULL: &str = "53100";

const STATEMENTS: Statements<&str> = Statements {
    batch: "INSERT INTO batches (run_id, seq, at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    ids: "SELECT nextval('mismatches_id_seq') FROM generate_series(1, $1::bigint)",
    mismatches: "INSERT INTO mismatches (id, run_id, at_ms, route, signature, method, uri,
             primary_status, secondary_status, primary_latency_us, secondary_latency_us,
             is_example, request_headers, request_body, primary_headers, primary_body,
             secondary_headers, secondary_body, body_diff, rewrites)
         SELECT u.id, $1, u.at_ms, u.route, u.signature, u.method, u.uri, u.ps, u.ss, u.pl,
                u.sl, u.ex, u.rh, u.rb, u.ph, u.pb, u.sh, u.sb, u.bd, u.rw
         FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                     $12::boolean[], $13::text[], $14::bytea[], $15::text[], $16::bytea[],
                     $17::text[], $18::bytea[], $19::text[], $20::text[])
              AS u(id, at_ms, route, signature, method, uri, ps, ss, pl, sl, ex, rh, rb, ph,
                   pb, sh, sb, bd, rw)",
    differences: "INSERT INTO differences (mismatch_id, ordinal, path, kind, primary_value,
             secondary_value, to_path)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[])",
    outcomes: "INSERT INTO outcome_counts (run_id, minute, route, outcome, reason, count)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])
         ON CONFLICT (run_id, minute, route, outcome, reason)
         DO UPDATE SET count = outcome_counts.count + EXCLUDED.count",
    latencies: "INSERT INTO latency_buckets (run_id, minute, route, leg, bucket, count)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
         ON CONFLICT (run_id, minute, route, leg, bucket)
         DO UPDATE SET count = latency_buckets.count + EXCLUDED.count",
    paths: "INSERT INTO path_counts (run_id, minute, route, path, count)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[])
         ON CONFLICT (run_id, minute, route, path)
         DO UPDATE SET count = path_counts.count + EXCLUDED.count",
    hidden: "INSERT INTO hidden_counts (run_id, minute, route, rule, count)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[])
         ON CONFLICT (run_id, minute, route, rule)
         DO UPDATE SET count = hidden_counts.count + EXCLUDED.count",
    seconds: "INSERT INTO second_counts (run_id, second, outcome, count)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[])
         ON CONFLICT (run_id, second, outcome)
         DO UPDATE SET count = second_counts.count + EXCLUDED.count",
    baseline: "INSERT INTO baseline_counts (run_id, minute, route, state, reason, count)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])
         ON CONFLICT (run_id, minute, route, state, reason)
         DO UPDATE SET count = baseline_counts.count + EXCLUDED.count",
    losses: "INSERT INTO losses (run_id, at_ms, reason, count) VALUES ($1, $2, $3, $4)",
    dropped: "UPDATE runs SET dropped = $1 WHERE id = $2",
};

/// The statements a batch runs, prepared once per connection.
struct Statements<S> {
    batch: S,
    ids: S,
    mismatches: S,
    differences: S,
    outcomes: S,
    latencies: S,
    paths: S,
    hidden: S,
    seconds: S,
    baseline: S,
    losses: S,
    dropped: S,
}

impl Statements<Statement> {
    fn prepare(client: &mut Client) -> Result<Statements<Statement>, postgres::Error> {
        let s = &STATEMENTS;
        Ok(Statements {
            batch: client.prepare(s.batch)?,
            ids: client.prepare(s.ids)?,
            mismatches: client.prepare(s.mismatches)?,
            differences: client.prepare(s.differences)?,
            outcomes: client.prepare(s.outcomes)?,
            latencies: client.prepare(s.latencies)?,
            paths: client.prepare(s.paths)?,
            hidden: client.prepare(s.hidden)?,
            seconds: client.prepare(s.seconds)?,
            baseline: client.prepare(s.baseline)?,
            losses: client.prepare(s.losses)?,
            dropped: client.prepare(s.dropped)?,
        })
    }
}

pub(super) struct PgSink {
    target: PgTarget,
    connection: Option<(Client, Statements<Statement>)>,
    /// No connection attempt before this.
    next_attempt: Instant,
    backoff: Duration,
    /// Shared with `/status`: whether the last write reached the database.
    state: std::sync::Arc<super::StoreState>,
}

impl PgSink {
    /// Takes over the connection the store was opened with.
    pub(super) fn new(
        target: PgTarget,
        mut client: Client,
        state: std::sync::Arc<super::StoreState>,
    ) -> Result<PgSink, StoreError> {
        let statements = Statements::prepare(&mut client).map_err(|e| StoreError::Postgres {
            store: target.shown().to_string(),
            error: DbError::Postgres(e),
        })?;
        state.set_connected(true);
        Ok(PgSink {
            target,
            connection: Some((client, statements)),
            next_attempt: Instant::now(),
            backoff: BACKOFF_FIRST,
            state,
        })
    }

    fn error(&self, error: DbError) -> StoreError {
        StoreError::Postgres {
            store: self.target.shown().to_string(),
            error,
        }
    }

    /// A failure as the writer counts it: a broken connection is `unavailable` (and the
    /// connection is dropped, to be made again); a full disk is `disk_full`.
    fn failure(&mut self, error: postgres::Error, during_commit: bool) -> SinkError {
        let broken = self
            .connection
            .as_ref()
            .is_none_or(|(client, _)| client.is_closed())
            || error.as_db_error().is_none();
        let reason = match error.code().map(|code| code.code()) {
            Some(DISK_FULL) => LossReason::DiskFull,
            _ if broken => LossReason::Unavailable,
            _ => LossReason::WriteError,
        };
        if broken {
            self.disconnect();
        }
        SinkError {
            error: self.error(DbError::Postgres(error)),
            reason,
            uncertain: broken && during_commit,
        }
    }

    fn disconnect(&mut self) {
        if self.connection.take().is_some() {
            tracing::warn!(store = %self.target.shown(), "store: the connection to PostgreSQL is lost; reconnecting with backoff");
        }
        self.state.set_connected(false);
        self.next_attempt = Instant::now() + self.backoff;
    }

    /// The connection, made again when it is gone and the backoff allows.
    fn connected(&mut self) -> Result<&mut (Client, Statements<Statement>), SinkError> {
        if self.connection.is_none() {
            let now = Instant::now();
            if now < self.next_attempt {
                return Err(SinkError {
                    error: StoreError::Unavailable {
                        store: self.target.shown().to_string(),
                        retry_in_ms: (self.next_attempt - now).as_millis() as u64,
                    },
                    reason: LossReason::Unavailable,
                    uncertain: false,
                });
            }
            let made = connect_pg(&self.target).and_then(|mut client| {
                let statements = Statements::prepare(&mut client)?;
                Ok((client, statements))
            });
            match made {
                Ok(connection) => {
                    tracing::info!(store = %self.target.shown(), "store: connected to PostgreSQL again");
                    self.connection = Some(connection);
                    self.backoff = BACKOFF_FIRST;
                    self.state.set_connected(true);
                }
                Err(error) => {
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    self.next_attempt = now + self.backoff;
                    return Err(SinkError {
                        error: self.error(error),
                        reason: LossReason::Unavailable,
                        uncertain: false,
                    });
                }
            }
        }
        Ok(self.connection.as_mut().expect("connected just above"))
    }
}

impl Sink for PgSink {
    fn probe(&mut self) {
        if self.connection.is_none() && Instant::now() >= self.next_attempt {
            let _ = self.connected();
        }
    }

    fn ready_in(&self) -> Duration {
        match self.connection {
            Some(_) => Duration::ZERO,
            None => self.next_attempt.saturating_duration_since(Instant::now()),
        }
    }

    fn write(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let (client, statements) = self.connected()?;
        match write_batch(client, statements, batch) {
            Ok(()) => Ok(()),
            Err((error, during_commit)) => Err(self.failure(error, during_commit)),
        }
    }

    fn committed(&mut self, run_id: i64, seq: i64) -> Result<bool, SinkError> {
        let (client, _) = self.connected()?;
        match client.query_opt(
            "SELECT 1 FROM batches WHERE run_id = $1 AND seq = $2",
            &[&run_id, &seq],
        ) {
            Ok(row) => Ok(row.is_some()),
            Err(error) => Err(self.failure(error, false)),
        }
    }

    fn close_run(
        &mut self,
        run_id: i64,
        dropped: i64,
        losses: &BTreeMap<LossReason, u64>,
    ) -> Result<(), SinkError> {
        let (client, statements) = self.connected()?;
        let result = (|| {
            let mut tx = client.transaction().map_err(|e| (e, false))?;
            let now = millis_since_epoch(SystemTime::now());
            tx.execute(
                "UPDATE runs SET finished_ms = $1, dropped = $2 WHERE id = $3",
                &[&now, &dropped, &run_id],
            )
            .map_err(|e| (e, false))?;
            write_losses(&mut tx, statements, run_id, losses).map_err(|e| (e, false))?;
            tx.commit().map_err(|e| (e, true))
        })();
        result.map_err(|(error, during_commit)| self.failure(error, during_commit))
    }

    fn size(&mut self) -> Result<u64, StoreError> {
        let size: i64 = match self.connected() {
            Ok((client, _)) => client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .map_err(DbError::Postgres)
                .map(|row| row.get(0)),
            Err(failure) => return Err(failure.error),
        }
        .map_err(|e| self.error(e))?;
        Ok(size.max(0) as u64)
    }

    fn mark_examples_stopped(&mut self, run_id: i64) -> Result<(), StoreError> {
        let now = millis_since_epoch(SystemTime::now());
        match self.connected() {
            Ok((client, _)) => client
                .execute(
                    "UPDATE runs SET examples_stopped_ms = $1 WHERE id = $2",
                    &[&now, &run_id],
                )
                .map(|_| ())
                .map_err(DbError::Postgres),
            Err(failure) => return Err(failure.error),
        }
        .map_err(|e| self.error(e))
    }

    /// A database has nowhere else to put losses: the log says them, and the metric has
    /// counted them all along.
    fn finish(self: Box<Self>, run_id: i64, unwritten: &BTreeMap<LossReason, u64>) {
        for (reason, count) in unwritten {
            tracing::error!(
                store = %self.target.shown(),
                run = run_id,
                lost = count,
                reason = reason.as_str(),
                "store: losses that could not be written to the store at the end"
            );
        }
        self.state.set_connected(false);
    }

    fn shown(&self) -> String {
        self.target.shown().to_string()
    }
}

/// The batch in one transaction. The error says whether it came from COMMIT, whose outcome
/// is unknown when the connection broke.
fn write_batch(
    client: &mut Client,
    s: &Statements<Statement>,
    batch: &Batch<'_>,
) -> Result<(), (postgres::Error, bool)> {
    let before = |e| (e, false);
    let mut tx = client.transaction().map_err(before)?;
    let now = millis_since_epoch(SystemTime::now());
    let fresh = tx
        .execute(&s.batch, &[&batch.run_id, &batch.seq, &now])
        .map_err(before)?;
    if fresh == 0 {
        // An earlier attempt committed it; its COMMIT's answer was lost on the way.
        return tx.rollback().map_err(before);
    }
    if !batch.mismatches.is_empty() {
        write_mismatches(&mut tx, s, batch).map_err(before)?;
    }
    write_counters(&mut tx, s, batch).map_err(before)?;
    write_losses(&mut tx, s, batch.run_id, batch.losses).map_err(before)?;
    tx.execute(&s.dropped, &[&batch.dropped, &batch.run_id])
        .map_err(before)?;
    tx.commit().map_err(|e| (e, true))
}

fn write_mismatches(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements<Statement>,
    batch: &Batch<'_>,
) -> Result<(), postgres::Error> {
    let n = batch.mismatches.len();
    let ids: Vec<i64> = tx
        .query(&s.ids, &[&(n as i64)])?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut at_ms = Vec::with_capacity(n);
    let mut route = Vec::with_capacity(n);
    let mut signature = Vec::with_capacity(n);
    let mut method = Vec::with_capacity(n);
    let mut uri = Vec::with_capacity(n);
    let mut primary_status = Vec::with_capacity(n);
    let mut secondary_status = Vec::with_capacity(n);
    let mut primary_latency = Vec::with_capacity(n);
    let mut secondary_latency = Vec::with_capacity(n);
    let mut example = Vec::with_capacity(n);
    let mut request_headers = Vec::with_capacity(n);
    let mut request_body = Vec::with_capacity(n);
    let mut primary_headers = Vec::with_capacity(n);
    let mut primary_body = Vec::with_capacity(n);
    let mut secondary_headers = Vec::with_capacity(n);
    let mut secondary_body = Vec::with_capacity(n);
    let mut body_diff = Vec::with_capacity(n);
    let mut rewrites = Vec::with_capacity(n);
    let mut d_mismatch = Vec::new();
    let mut d_ordinal: Vec<i64> = Vec::new();
    let mut d_path = Vec::new();
    let mut d_kind = Vec::new();
    let mut d_primary = Vec::new();
    let mut d_secondary = Vec::new();
    let mut d_to = Vec::new();
    for (mismatch, id) in batch.mismatches.iter().zip(&ids) {
        let detail = mismatch.detail;
        at_ms.push(millis_since_epoch(mismatch.record.at));
        route.push(mismatch.record.route.as_str());
        signature.push(mismatch.signature.as_str());
        method.push(detail.request.method.as_str());
        uri.push(detail.request.uri.to_string());
        primary_status.push(i64::from(detail.primary.status.as_u16()));
        secondary_status.push(i64::from(detail.secondary.status.as_u16()));
        primary_latency.push(mismatch.primary_latency_us());
        secondary_latency.push(mismatch.secondary_latency_us());
        example.push(mismatch.keep_bodies);
        request_headers.push(
            mismatch
                .kept(())
                .map(|()| headers_json(&detail.request.headers)),
        );
        request_body.push(mismatch.kept(&detail.request.body[..]));
        primary_headers.push(
            mismatch
                .kept(())
                .map(|()| headers_json(&detail.primary.headers)),
        );
        primary_body.push(mismatch.kept(&detail.primary.body[..]));
        secondary_headers.push(
            mismatch
                .kept(())
                .map(|()| headers_json(&detail.secondary.headers)),
        );
        secondary_body.push(mismatch.kept(&detail.secondary.body[..]));
        body_diff.push(detail.body_diff.as_deref().filter(|_| mismatch.keep_bodies));
        rewrites.push(mismatch.rewrites_json());
        for (ordinal, difference) in detail.differences.iter().enumerate() {
            d_mismatch.push(*id);
            d_ordinal.push(ordinal as i64);
            d_path.push(difference.path.as_str());
            d_kind.push(difference.kind.as_str());
            d_primary.push(difference.primary.as_deref());
            d_secondary.push(difference.secondary.as_deref());
            d_to.push(difference.to.as_deref());
        }
    }
    tx.execute(
        &s.mismatches,
        &[
            &batch.run_id,
            &ids,
            &at_ms,
            &route,
            &signature,
            &method,
            &uri,
            &primary_status,
            &secondary_status,
            &primary_latency,
            &secondary_latency,
            &example,
            &request_headers,
            &request_body,
            &primary_headers,
            &primary_body,
            &secondary_headers,
            &secondary_body,
            &body_diff,
            &rewrites,
        ],
    )?;
    if !d_mismatch.is_empty() {
        tx.execute(
            &s.differences,
            &[
                &d_mismatch,
                &d_ordinal,
                &d_path,
                &d_kind,
                &d_primary,
                &d_secondary,
                &d_to,
            ],
        )?;
    }
    Ok(())
}

fn write_counters(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements<Statement>,
    batch: &Batch<'_>,
) -> Result<(), postgres::Error> {
    let c = &batch.counters;
    let run = &batch.run_id;
    if !c.outcomes.is_empty() {
        let (mut minute, mut route, mut outcome, mut reason, mut count) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((m, r, o, why), n) in &c.outcomes {
            minute.push(*m);
            route.push(*r);
            outcome.push(*o);
            reason.push(why.as_ref());
            count.push(*n as i64);
        }
        tx.execute(
            &s.outcomes,
            &[run, &minute, &route, &outcome, &reason, &count],
        )?;
    }
    if !c.latencies.is_empty() {
        let (mut minute, mut route, mut leg, mut bucket, mut count) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((m, r, l, b), n) in &c.latencies {
            minute.push(*m);
            route.push(*r);
            leg.push(*l);
            bucket.push(*b);
            count.push(*n as i64);
        }
        tx.execute(&s.latencies, &[run, &minute, &route, &leg, &bucket, &count])?;
    }
    if !c.paths.is_empty() {
        let (mut minute, mut route, mut path, mut count) = (vec![], vec![], vec![], vec![]);
        for ((m, r, p), n) in &c.paths {
            minute.push(*m);
            route.push(*r);
            path.push(p.as_str());
            count.push(*n as i64);
        }
        tx.execute(&s.paths, &[run, &minute, &route, &path, &count])?;
    }
    if !c.hidden.is_empty() {
        let (mut minute, mut route, mut rule, mut count) = (vec![], vec![], vec![], vec![]);
        for ((m, r, rl), n) in &c.hidden {
            minute.push(*m);
            route.push(*r);
            rule.push(*rl);
            count.push(*n as i64);
        }
        tx.execute(&s.hidden, &[run, &minute, &route, &rule, &count])?;
    }
    if !c.seconds.is_empty() {
        let (mut second, mut outcome, mut count) = (vec![], vec![], vec![]);
        for ((at, o), n) in &c.seconds {
            second.push(*at);
            outcome.push(*o);
            count.push(*n as i64);
        }
        tx.execute(&s.seconds, &[run, &second, &outcome, &count])?;
    }
    if !c.baseline.is_empty() {
        let (mut minute, mut route, mut state, mut reason, mut count) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((m, r, st, why), n) in &c.baseline {
            minute.push(*m);
            route.push(*r);
            state.push(*st);
            reason.push(why.as_str());
            count.push(*n as i64);
        }
        tx.execute(
            &s.baseline,
            &[run, &minute, &route, &state, &reason, &count],
        )?;
    }
    Ok(())
}

fn write_losses(
    tx: &mut postgres::Transaction<'_>,
    s: &Statements<Statement>,
    run_id: i64,
    losses: &BTreeMap<LossReason, u64>,
) -> Result<(), postgres::Error> {
    let now = millis_since_epoch(SystemTime::now());
    for (reason, count) in losses {
        tx.execute(
            &s.losses,
            &[&run_id, &now, &reason.as_str(), &(*count as i64)],
        )?;
    }
    Ok(())
}
