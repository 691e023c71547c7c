//! The one thread that writes: it owns the only write connection, so SQLite never sees two
//! writers and PostgreSQL sees one session per instance, and it batches records into
//! transactions (500 rows or 100 ms, whichever comes first) because one commit per request
//! could not keep up with production traffic.
//!
//! What a batch holds is decided here, once, whatever the engine ([`Batch`]); a [`Sink`]
//! writes it: `sqlite_sink` to a file, `pg_sink` to a PostgreSQL database.

use super::{
    latency, millis_since_epoch, LossReason, MismatchDetail, Outcome, Record, StoreError,
    StoreOptions,
};
use crate::compare::Difference;
use http::HeaderMap;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const BATCH_ROWS: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// While a batch fills, the writer looks at the queue this often instead of being woken by
/// every record: one wake-up per record costs the proxy more than the writing does.
const BATCH_POLL: Duration = Duration::from_millis(5);
/// A batch that fails is tried this many times in all before its records count as lost,
/// waiting `RETRY_BACKOFF` doubled after each failure (0.1 + 0.2 + 0.4 + 0.8 s): long
/// enough to ride out a log rotation, an operator freeing space or a database failover,
/// short enough that the bounded queue in front of the writer, not the proxy, absorbs the
/// wait.
const BATCH_ATTEMPTS: u32 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// With nothing arriving, the writer still looks this often whether a waiting backlog can
/// be written.
const IDLE_FLUSH: Duration = Duration::from_millis(500);
/// The backlog holds at most this many bytes of bodies, whatever `--store-backlog` allows:
/// an outage must not take the proxy's memory with it.
const BACKLOG_BYTES: usize = 64 << 20;
/// How long the end of a run waits for an unreachable database to take the backlog.
const CLOSE_WAIT: Duration = Duration::from_secs(6);

/// Counters summed in memory over one batch, then added to the tables in one upsert each:
/// a batch of 500 matches on one route costs one row write, not 500. Keys borrow the
/// batch's routes and rule ids: counting a record copies no string.
#[derive(Default)]
pub(super) struct BatchCounters<'a> {
    pub outcomes: HashMap<(i64, &'a str, &'static str, Cow<'static, str>), u64>,
    pub latencies: HashMap<(i64, &'a str, &'static str, i64), u64>,
    pub paths: HashMap<(i64, &'a str, String), u64>,
    pub hidden: HashMap<(i64, &'a str, &'a str), u64>,
    /// (second, `matched` | `mismatched`): the time chart of a short run.
    pub seconds: HashMap<(i64, &'static str), u64>,
    pub baseline: HashMap<(i64, &'a str, &'static str, String), u64>,
}

/// A mismatch as it is stored: its record, the signature its examples are bounded by, and
/// whether its request and bodies are kept.
pub(super) struct MismatchOut<'a> {
    pub record: &'a Record,
    pub detail: &'a MismatchDetail,
    pub signature: String,
    pub keep_bodies: bool,
}

impl MismatchOut<'_> {
    pub fn primary_latency_us(&self) -> i64 {
        micros(
            self.record
                .primary_latency
                .unwrap_or(self.detail.primary.latency),
        )
    }

    pub fn secondary_latency_us(&self) -> i64 {
        micros(
            self.record
                .secondary_latency
                .unwrap_or(self.detail.secondary.latency),
        )
    }

    /// A kept part: `None` when the mismatch is not an example.
    pub fn kept<T>(&self, value: T) -> Option<T> {
        self.keep_bodies.then_some(value)
    }

    /// `mismatches.rewrites` of an example: a JSON array of lines, `None` without any.
    pub fn rewrites_json(&self) -> Option<String> {
        let rewrites = &self.detail.rewrites;
        (self.keep_bodies && !rewrites.is_empty())
            .then(|| serde_json::to_string(rewrites).unwrap_or_default())
    }
}

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

/// One transaction's worth of records, engine-neutral.
pub(super) struct Batch<'a> {
    /// The batch's number within its run: how a retried batch is recognised as committed.
    pub seq: i64,
    pub run_id: i64,
    pub counters: BatchCounters<'a>,
    pub mismatches: Vec<MismatchOut<'a>>,
    /// Losses not yet in the store, written with this batch.
    pub losses: &'a BTreeMap<LossReason, u64>,
    /// The pipeline's drop count so far (`runs.dropped`).
    pub dropped: i64,
}

/// A failed write, with what the writer needs to count it.
#[derive(Debug)]
pub(super) struct SinkError {
    pub error: StoreError,
    pub reason: LossReason,
    /// The connection broke while COMMIT was on its way: the batch may be stored.
    pub uncertain: bool,
}

/// Where batches go: one engine's transactions.
pub(super) trait Sink: Send {
    /// Writes the batch in one transaction; a batch already committed (its `seq` found) is
    /// not written again.
    fn write(&mut self, batch: &Batch<'_>) -> Result<(), SinkError>;
    /// Whether batch `seq` of the run was committed; asked after an uncertain COMMIT.
    fn committed(&mut self, run_id: i64, seq: i64) -> Result<bool, SinkError>;
    /// Ends the run: its finish time, the final drop count, losses not yet written.
    fn close_run(
        &mut self,
        run_id: i64,
        dropped: i64,
        losses: &BTreeMap<LossReason, u64>,
    ) -> Result<(), SinkError>;
    /// The store's size in bytes, for `--max-db-size`.
    fn size(&mut self) -> Result<u64, StoreError>;
    fn mark_examples_stopped(&mut self, run_id: i64) -> Result<(), StoreError>;
    /// On a full disk: whatever frees room (SQLite's write-ahead log).
    fn make_room(&mut self) {}
    /// How long until the sink will try to reach its database again.
    fn ready_in(&self) -> Duration {
        Duration::ZERO
    }
    /// With nothing to write: reconnect if the backoff allows, so `/status` tells when the
    /// database is back before traffic does.
    fn probe(&mut self) {}
    /// Last: losses that could not be written to the store go wherever still works (a
    /// sidecar note next to an SQLite file; the log for a database).
    fn finish(self: Box<Self>, run_id: i64, unwritten: &BTreeMap<LossReason, u64>);
    /// The store as logs name it.
    fn shown(&self) -> String;
}

pub(super) struct Writer {
    sink: Box<dyn Sink>,
    run_id: i64,
    options: StoreOptions,
    /// Examples kept so far in this run per (route, signature).
    examples: HashMap<(String, String), u32>,
    examples_stopped: bool,
    /// Observations lost and not yet written to `losses`: written with the next batch that
    /// commits, or at the end to the store or wherever the sink can.
    unwritten_losses: BTreeMap<LossReason, u64>,
    /// Whether the last batch was lost: then the next batch is tried once, not retried,
    /// so a store that stays unwritable does not hold every batch for seconds.
    failing: bool,
    /// The next batch's number.
    next_seq: i64,
    /// Batches whose COMMIT outcome is unknown: (seq, observations, reason). Each is
    /// counted lost only once the store says it never arrived.
    uncertain: Vec<(i64, u64, LossReason)>,
    /// Batches waiting for an unreachable database, oldest first, and their size.
    backlog: std::collections::VecDeque<Held>,
    backlog_records: usize,
    backlog_bytes: usize,
}

/// A batch in the backlog: its number (so a retry is recognised) and its records.
struct Held {
    seq: i64,
    records: Vec<Record>,
    bytes: usize,
}

/// What a held record costs in memory, roughly: its bodies, which are most of it.
fn held_bytes(record: &Record) -> usize {
    256 + record.mismatch.as_ref().map_or(0, |d| {
        d.request.body.len() + d.primary.body.len() + d.secondary.body.len()
    })
}

impl Writer {
    pub(super) fn new(sink: Box<dyn Sink>, run_id: i64, options: StoreOptions) -> Writer {
        Writer {
            sink,
            run_id,
            options,
            examples: HashMap::new(),
            examples_stopped: false,
            unwritten_losses: Default::default(),
            failing: false,
            next_seq: 1,
            uncertain: Vec::new(),
            backlog: Default::default(),
            backlog_records: 0,
            backlog_bytes: 0,
        }
    }

    /// Drains the channel until every sender is gone, then closes the run. A failed batch
    /// is retried with backoff, then counted as lost (metric, log line, `losses` row) and
    /// the thread keeps going: losing one batch beats stalling the pipeline; the first error
    /// is still returned at the end so the exit status tells. While the database is
    /// unreachable, batches wait in the backlog instead (in order, up to its bound), and are
    /// written when it is back.
    pub(super) fn run(mut self, records: flume::Receiver<Record>) -> Result<(), StoreError> {
        let mut first_error = None;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        loop {
            match records.recv_timeout(IDLE_FLUSH) {
                Ok(record) => {
                    batch.push(record);
                    let deadline = Instant::now() + BATCH_WAIT;
                    loop {
                        let room = BATCH_ROWS - batch.len();
                        batch.extend(records.try_iter().take(room));
                        let now = Instant::now();
                        if batch.len() >= BATCH_ROWS || now >= deadline || records.is_disconnected()
                        {
                            break;
                        }
                        std::thread::sleep(BATCH_POLL.min(deadline - now));
                    }
                }
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => break,
            }
            if !self.backlog.is_empty() {
                self.flush_backlog();
            }
            if batch.is_empty() {
                self.sink.probe();
                continue;
            }
            let records = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            let seq = self.next_seq;
            self.next_seq += 1;
            if !self.backlog.is_empty() {
                // Behind what waits already: batches reach the store in order.
                self.hold(seq, records);
                continue;
            }
            if let Err(e) = self.write_with_retries(seq, records) {
                first_error.get_or_insert(e);
            }
        }
        let closed = self.close_run();
        match first_error {
            Some(e) => Err(e),
            None => closed,
        }
    }

    /// Keeps a batch the database could not take, dropping the oldest ones (counted lost)
    /// past the backlog's bound.
    fn hold(&mut self, seq: i64, records: Vec<Record>) {
        let bytes = records.iter().map(held_bytes).sum::<usize>();
        self.backlog_records += records.len();
        self.backlog_bytes += bytes;
        self.backlog.push_back(Held {
            seq,
            records,
            bytes,
        });
        while self.backlog_records > self.options.backlog_records
            || self.backlog_bytes > BACKLOG_BYTES
        {
            let Some(oldest) = self.backlog.pop_front() else {
                break;
            };
            self.backlog_records -= oldest.records.len();
            self.backlog_bytes -= oldest.bytes;
            let observations = oldest.records.iter().map(|r| r.count).sum();
            self.lose(
                LossReason::Unavailable,
                observations,
                &"the database stayed unreachable past the backlog's bound (--store-backlog)",
            );
        }
    }

    /// Writes what waits, oldest first, until the database refuses again.
    fn flush_backlog(&mut self) {
        while let Some(held) = self.backlog.pop_front() {
            match self.attempt(held.seq, &held.records) {
                Ok(()) => {
                    self.backlog_records -= held.records.len();
                    self.backlog_bytes -= held.bytes;
                    if self.backlog.is_empty() {
                        tracing::info!(store = %self.sink.shown(), "store: the backlog is written");
                    }
                }
                Err(failure) if failure.reason == LossReason::Unavailable && !failure.uncertain => {
                    self.backlog.push_front(held);
                    return;
                }
                Err(failure) => {
                    self.backlog_records -= held.records.len();
                    self.backlog_bytes -= held.bytes;
                    let observations = held.records.iter().map(|r| r.count).sum();
                    self.failed(held.seq, observations, failure);
                }
            }
        }
    }

    /// One try at writing a batch: its counters and examples summed, the sink called once.
    fn attempt(&mut self, seq: i64, records: &[Record]) -> Result<(), SinkError> {
        if !self.uncertain.is_empty() {
            self.settle_uncertain();
        }
        let mut slots = ExampleSlots {
            kept: &mut self.examples,
            per_signature: self.options.examples_per_signature,
            stopped: self.examples_stopped,
        };
        let batch = prepare(
            records,
            seq,
            self.run_id,
            &mut slots,
            &self.unwritten_losses,
            self.options.dropped.load(Ordering::Relaxed) as i64,
        );
        let result = self.sink.write(&batch);
        drop(batch);
        match result {
            Ok(()) => {
                if self.failing {
                    tracing::info!(store = %self.sink.shown(), "store: writable again");
                }
                self.failing = false;
                self.unwritten_losses.clear();
                Ok(())
            }
            Err(failure) => {
                self.options.write_errors.fetch_add(1, Ordering::Relaxed);
                if failure.reason == LossReason::DiskFull {
                    if !self.examples_stopped {
                        self.examples_stopped = true;
                        tracing::warn!(
                            store = %self.sink.shown(),
                            "store: the disk is full; examples are no longer stored (counts continue)"
                        );
                    }
                    self.sink.make_room();
                }
                Err(failure)
            }
        }
    }

    /// A batch that is not coming back: lost now, or (its COMMIT unanswered) once the store
    /// says it never arrived.
    fn failed(&mut self, seq: i64, observations: u64, failure: SinkError) -> StoreError {
        self.failing = true;
        if failure.uncertain {
            tracing::warn!(
                store = %self.sink.shown(),
                observations,
                error = %failure.error,
                "store: a batch's commit went unanswered; it is counted once the store says whether it arrived"
            );
            self.uncertain.push((seq, observations, failure.reason));
        } else {
            self.lose(failure.reason, observations, &failure.error);
        }
        failure.error
    }

    /// Counts `lost` observations as lost for `reason`: metric, log, and the next batch.
    fn lose(&mut self, reason: LossReason, lost: u64, error: &dyn std::fmt::Display) {
        self.options.lost.add(reason, lost);
        *self.unwritten_losses.entry(reason).or_default() += lost;
        tracing::error!(
            store = %self.sink.shown(),
            lost,
            reason = reason.as_str(),
            %error,
            "store: {lost} observations lost: {}",
            LossReason::describe(reason.as_str())
        );
    }

    /// Asks the store about batches whose COMMIT went unanswered: those it has are done,
    /// those it lacks are lost. Unanswered again, they wait for the next batch.
    fn settle_uncertain(&mut self) {
        let pending = std::mem::take(&mut self.uncertain);
        for (seq, observations, reason) in pending {
            match self.sink.committed(self.run_id, seq) {
                Ok(true) => {}
                Ok(false) => self.lose(reason, observations, &"the batch never reached the store"),
                Err(_) => self.uncertain.push((seq, observations, reason)),
            }
        }
    }

    /// Writes one batch, retrying a failure; what is finally not written is counted lost.
    /// A database that cannot be reached is not retried here: the batch waits in the
    /// backlog, and the next batches behind it.
    fn write_with_retries(&mut self, seq: i64, records: Vec<Record>) -> Result<(), StoreError> {
        // After a full disk the retries write counts only: bodies are what fills a store,
        // and `attempt` stops keeping them.
        let attempts = if self.failing { 1 } else { BATCH_ATTEMPTS };
        let mut backoff = RETRY_BACKOFF;
        let mut attempt = 1;
        let failure = loop {
            let failure = match self.attempt(seq, &records) {
                Ok(()) => return self.check_size(),
                Err(failure) => failure,
            };
            if failure.reason == LossReason::Unavailable && !failure.uncertain {
                self.hold(seq, records);
                return Ok(());
            }
            if attempt >= attempts {
                break failure;
            }
            tracing::warn!(error = %failure.error, attempt, "store: a batch could not be written; retrying");
            std::thread::sleep(backoff);
            backoff *= 2;
            attempt += 1;
        };
        let observations = records.iter().map(|r| r.count).sum();
        Err(self.failed(seq, observations, failure))
    }

    /// Ends the run. When even that cannot be written (after making room once), the losses
    /// go wherever the sink still can.
    fn close_run(mut self) -> Result<(), StoreError> {
        // What waits for the database gets until the sink's next reconnect, a few times.
        let until = Instant::now() + CLOSE_WAIT;
        while !self.backlog.is_empty() && Instant::now() < until {
            std::thread::sleep(self.sink.ready_in().min(until - Instant::now()));
            self.flush_backlog();
        }
        for held in std::mem::take(&mut self.backlog) {
            let observations = held.records.iter().map(|r| r.count).sum();
            self.lose(
                LossReason::Unavailable,
                observations,
                &"the database was still unreachable when the run ended",
            );
        }
        if !self.uncertain.is_empty() {
            self.settle_uncertain();
        }
        // What is still unanswered after the last try is counted lost: it may be stored,
        // which the log says; counting it nowhere would hide it.
        for (_, observations, reason) in std::mem::take(&mut self.uncertain) {
            self.lose(
                reason,
                observations,
                &"the store never answered whether the batch arrived (it may be stored)",
            );
        }
        let dropped = self.options.dropped.load(Ordering::Relaxed) as i64;
        let mut result = self
            .sink
            .close_run(self.run_id, dropped, &self.unwritten_losses);
        if result.is_err() {
            self.sink.make_room();
            result = self
                .sink
                .close_run(self.run_id, dropped, &self.unwritten_losses);
        }
        // A database that just went away may be back within the wait.
        while matches!(&result, Err(f) if f.reason == LossReason::Unavailable)
            && Instant::now() < until
        {
            std::thread::sleep(
                self.sink
                    .ready_in()
                    .max(RETRY_BACKOFF)
                    .min(until.saturating_duration_since(Instant::now())),
            );
            result = self
                .sink
                .close_run(self.run_id, dropped, &self.unwritten_losses);
        }
        let outcome = match result {
            Ok(()) => {
                self.unwritten_losses.clear();
                Ok(())
            }
            Err(failure) => Err(failure.error),
        };
        self.sink.finish(self.run_id, &self.unwritten_losses);
        outcome
    }

    fn check_size(&mut self) -> Result<(), StoreError> {
        let Some(limit) = self.options.max_db_size else {
            return Ok(());
        };
        if self.examples_stopped {
            return Ok(());
        }
        let size = self.sink.size()?;
        if size >= limit {
            self.examples_stopped = true;
            tracing::warn!(
                size,
                limit,
                "store: --max-db-size reached; examples are no longer stored (counts continue)"
            );
            self.sink.mark_examples_stopped(self.run_id)?;
        }
        Ok(())
    }
}

/// Sums a batch's counters and picks its examples.
fn prepare<'a>(
    records: &'a [Record],
    seq: i64,
    run_id: i64,
    slots: &mut ExampleSlots<'_>,
    losses: &'a BTreeMap<LossReason, u64>,
    dropped: i64,
) -> Batch<'a> {
    let mut counters = BatchCounters::default();
    let mut mismatches = Vec::new();
    for record in records {
        let at_ms = millis_since_epoch(record.at);
        let minute = at_ms.div_euclid(60_000);
        let (outcome, reason) = outcome_columns(record.outcome);
        if matches!(record.outcome, Outcome::Matched | Outcome::Mismatched) {
            *counters
                .seconds
                .entry((at_ms.div_euclid(1000), outcome))
                .or_default() += record.count;
        }
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
                mismatches.push(MismatchOut {
                    record,
                    detail,
                    signature,
                    keep_bodies,
                });
            }
        }
    }
    Batch {
        seq,
        run_id,
        counters,
        mismatches,
        losses,
        dropped,
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

pub(super) fn headers_json(headers: &HeaderMap) -> String {
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
