//! The bounded hand-off between whoever produces exchanges (the proxy, a replay) and the
//! compare and store stages.
//!
//! The proxy never waits here: [`PipelineHandle::offer`] either queues or counts a drop.
//! Replay, which has no client to protect, uses [`PipelineHandle::submit`] and waits for
//! room instead, so a replay never loses anything. Comparison runs on a plain OS thread,
//! not on the async runtime, so a 1 MB JSON diff cannot delay proxying.

use crate::budget::Reservation;
use crate::compare::Comparator;
use crate::config::NoiseConfig;
use crate::exchange::{BaselineLeg, BaselineUnusable, Exchange, Observation};
use crate::metrics::Metrics;
use crate::noise::NoiseMemory;
use crate::redact::{RedactRules, Redactor};
use crate::store::{BaselineUse, MismatchDetail, Outcome, Record, StoreError, StoreWriter};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Why the pipeline did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: observations it had not judged yet are not in the store.
    #[error("the compare thread panicked; the store holds what it judged before")]
    ComparePanicked,
    /// A bug in whoever ended the pipeline (the proxy's or replay's shutdown).
    #[error("the pipeline's shutdown panicked; the store may miss its last records")]
    FinishPanicked,
}

/// The producers' side: cheap to clone, shared by every connection task.
#[derive(Clone)]
pub struct PipelineHandle {
    tx: flume::Sender<Queued>,
    dropped: Arc<AtomicU64>,
    /// Set by [`Pipeline::finish`]: from then on nothing is read, so offers count as drops.
    closing: Arc<AtomicBool>,
}

/// An observation waiting for the compare thread, with the share of the shadow memory
/// budget its buffers hold: given back once it has been judged (or dropped).
struct Queued {
    observation: Observation,
    _memory: Option<Reservation>,
}

impl PipelineHandle {
    /// Queues without waiting; a full queue counts the observation as dropped.
    pub fn offer(&self, observation: Observation) {
        self.enqueue(Queued {
            observation,
            _memory: None,
        });
    }

    /// [`PipelineHandle::offer`] for an exchange whose buffers are counted in `memory`:
    /// they stay counted while it waits for the compare thread.
    pub fn offer_held(&self, observation: Observation, memory: Reservation) {
        self.enqueue(Queued {
            observation,
            _memory: Some(memory),
        });
    }

    fn enqueue(&self, queued: Queued) {
        if self.closing.load(Ordering::Acquire) || self.tx.try_send(queued).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues, waiting for room: for replay, where completeness beats latency.
    pub async fn submit(&self, observation: Observation) {
        let queued = Queued {
            observation,
            _memory: None,
        };
        if self.tx.send_async(queued).await.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many observations have been dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Running counts of judged outcomes, for progress displays and status pages.
#[derive(Debug, Default)]
pub struct Tally {
    pub matched: AtomicU64,
    pub mismatched: AtomicU64,
    pub errors: AtomicU64,
    pub skipped: AtomicU64,
}

impl Tally {
    fn count(&self, outcome: &Outcome, requests: u64) {
        let counter = match outcome {
            Outcome::Matched => &self.matched,
            Outcome::Mismatched => &self.mismatched,
            Outcome::Error { .. } => &self.errors,
            Outcome::Skipped(_) => &self.skipped,
        };
        counter.fetch_add(requests, Ordering::Relaxed);
    }

    /// Every observation judged so far.
    pub fn judged(&self) -> u64 {
        self.matched.load(Ordering::Relaxed)
            + self.mismatched.load(Ordering::Relaxed)
            + self.errors.load(Ordering::Relaxed)
            + self.skipped.load(Ordering::Relaxed)
    }
}

/// The running compare thread and the store behind it.
pub struct Pipeline {
    handle: PipelineHandle,
    tally: Arc<Tally>,
    compare_thread: JoinHandle<()>,
    store: StoreWriter,
}

impl Pipeline {
    /// Starts the compare thread. `capacity` bounds the observations waiting for it.
    /// Everything stored is redacted under `redact`, with digests keyed by the store's key.
    pub fn start(
        comparator: Arc<Comparator>,
        redact: Arc<RedactRules>,
        store: StoreWriter,
        dropped: Arc<AtomicU64>,
        capacity: usize,
        noise: Option<NoiseConfig>,
    ) -> Pipeline {
        let rules = Arc::new(ArcSwap::new(comparator));
        Pipeline::start_live(rules, redact, store, dropped, capacity, None, noise)
    }

    /// Like [`Pipeline::start`], for a running proxy: the rules can be swapped while it runs
    /// (each observation is judged by the rules current when the compare thread takes it),
    /// and every judged record is counted in `metrics`. With a baseline configured,
    /// `noise` says how its differences from the primary are remembered per route.
    pub fn start_live(
        rules: Arc<ArcSwap<Comparator>>,
        redact: Arc<RedactRules>,
        store: StoreWriter,
        dropped: Arc<AtomicU64>,
        capacity: usize,
        metrics: Option<Arc<Metrics>>,
        noise: Option<NoiseConfig>,
    ) -> Pipeline {
        let (tx, rx) = flume::bounded::<Queued>(capacity.max(1));
        let records = store.sender();
        let redactor = Redactor::new(redact, store.digest_key());
        let closing = Arc::new(AtomicBool::new(false));
        let stop = closing.clone();
        let late = dropped.clone();
        let tally = Arc::new(Tally::default());
        let counts = tally.clone();
        let compare_thread = std::thread::Builder::new()
            .name("shadowdiff-compare".into())
            .spawn(move || {
                let mut noise = noise.map(NoiseMemory::new);
                compare_loop(
                    &rules,
                    &redactor,
                    &rx,
                    &records,
                    &stop,
                    &counts,
                    metrics.as_deref(),
                    noise.as_mut(),
                );
                // An offer racing with the close may have slipped in after the last read.
                let left = rx.drain().count() as u64;
                late.fetch_add(left, Ordering::Relaxed);
            })
            .expect("spawning the compare thread");
        Pipeline {
            handle: PipelineHandle {
                tx,
                dropped,
                closing,
            },
            tally,
            compare_thread,
            store,
        }
    }

    pub fn handle(&self) -> PipelineHandle {
        self.handle.clone()
    }

    /// Outcome counts, updated as the compare thread judges.
    pub fn tally(&self) -> Arc<Tally> {
        self.tally.clone()
    }

    /// Compares and commits everything queued, then stops. Later offers count as drops.
    pub fn finish(self) -> Result<(), PipelineError> {
        self.handle.closing.store(true, Ordering::Release);
        drop(self.handle);
        let compared = self.compare_thread.join();
        // The store is committed either way: what was judged before a panic is kept.
        self.store.finish()?;
        compared.map_err(|_| PipelineError::ComparePanicked)
    }
}

/// Producers may outlive the pipeline (a connection stuck past the drain timeout), so the
/// end is the closing flag and an empty queue, not only a disconnected channel.
#[allow(clippy::too_many_arguments)]
fn compare_loop(
    rules: &ArcSwap<Comparator>,
    redactor: &Redactor,
    rx: &flume::Receiver<Queued>,
    records: &flume::Sender<crate::store::Record>,
    stop: &AtomicBool,
    tally: &Tally,
    metrics: Option<&Metrics>,
    mut noise: Option<&mut NoiseMemory>,
) {
    // Counts a record and hands it to the store; false once the store is gone.
    let deliver = |record: Record| -> bool {
        tally.count(&record.outcome, record.count);
        if let Some(mismatch) = &record.mismatch {
            tracing::debug!(
                route = %record.route,
                differences = mismatch.differences.len(),
                first = %mismatch.differences.first().map(|d| d.to_string()).unwrap_or_default(),
                "mismatch"
            );
        }
        if let Some(metrics) = metrics {
            metrics.observe(&record);
        }
        records.send(record).is_ok()
    };
    // Skipped requests of one batch go on as one record per route, reason and minute: with
    // a low sample rate nearly every request is a skip, and one record each would cost the
    // store and the metrics more than the proxy spends on the request.
    let mut skips: Vec<Record> = Vec::new();
    let mut judge_one = |queued: Queued, skips: &mut Vec<Record>| -> bool {
        let Queued {
            observation,
            _memory: memory,
        } = queued;
        let record = judge(&rules.load(), redactor, observation, noise.as_deref_mut());
        // Compared: the buffers the comparison needed are gone. (A mismatch's copy goes on
        // to the store's queue, which is bounded by its own length, not by this budget.)
        drop(memory);
        match merge_skip(skips, record) {
            None => true,
            Some(record) => deliver(record),
        }
    };
    let flush = |skips: &mut Vec<Record>| -> bool { skips.drain(..).all(&deliver) };
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(observation) => {
                if !judge_one(observation, &mut skips) {
                    return;
                }
                // Under load, take what has queued up meanwhile and then look again a
                // moment later, instead of being woken by the proxy for every request:
                // a wake-up per request costs the proxy more than the comparison does.
                loop {
                    let mut took = 0;
                    for observation in rx.try_iter().take(COMPARE_BATCH) {
                        took += 1;
                        if !judge_one(observation, &mut skips) {
                            return;
                        }
                    }
                    // Nothing waits longer than one batch.
                    if !flush(&mut skips) {
                        return;
                    }
                    if took == 0 {
                        break;
                    }
                    std::thread::sleep(COMPARE_POLL);
                }
            }
            Err(flume::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Acquire) && rx.is_empty() {
                    return;
                }
            }
            Err(flume::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Most distinct skip records one batch holds before further ones go on alone.
const MAX_BATCH_SKIPS: usize = 64;

/// Adds a skipped request's record to the one of its route, reason and minute in `skips`,
/// or keeps it there as a new one; gives back a record that is to go on as it is (not a
/// skip, or no room).
fn merge_skip(skips: &mut Vec<Record>, record: Record) -> Option<Record> {
    if !matches!(record.outcome, Outcome::Skipped(_)) {
        return Some(record);
    }
    let minute = minute_of(record.at);
    if let Some(same) = skips.iter_mut().find(|kept| {
        kept.outcome == record.outcome && kept.route == record.route && minute_of(kept.at) == minute
    }) {
        same.count += record.count;
        return None;
    }
    if skips.len() < MAX_BATCH_SKIPS {
        skips.push(record);
        return None;
    }
    Some(record)
}

/// The minute a record is counted in, as the store buckets it.
fn minute_of(at: SystemTime) -> i64 {
    crate::store::millis_since_epoch(at).div_euclid(60_000)
}

/// Observations judged between two looks at the queue while it keeps filling.
const COMPARE_BATCH: usize = 256;
/// How long the compare thread lets observations accumulate while busy; well below what
/// the queue (at least 1,024 deep) fills in at any realistic request rate.
const COMPARE_POLL: Duration = Duration::from_millis(1);

/// Turns one observation into the record the store keeps, redacted by `redactor`; with a
/// baseline, `noise` decides what of the verdict is noise.
fn judge(
    comparator: &Comparator,
    redactor: &Redactor,
    observation: Observation,
    noise: Option<&mut NoiseMemory>,
) -> Record {
    match observation {
        Observation::Skipped {
            at,
            method,
            path,
            reason,
        } => Record::new(
            at,
            comparator.route_of(&method, &path),
            Outcome::Skipped(reason),
        ),
        Observation::Exchange(exchange) => judge_exchange(comparator, redactor, *exchange, noise),
    }
}

fn judge_exchange(
    comparator: &Comparator,
    redactor: &Redactor,
    exchange: Exchange,
    noise: Option<&mut NoiseMemory>,
) -> Record {
    let Exchange {
        at,
        request,
        primary,
        secondary,
        baseline,
        rewrites,
    } = exchange;
    // The route and its rules, found once.
    let (route, rules) = comparator.route(&request.method, request.path());
    let mut record = Record {
        primary_status: primary.as_ref().ok().map(|c| c.status.as_u16()),
        secondary_status: secondary.as_ref().ok().map(|c| c.status.as_u16()),
        primary_latency: Some(match &primary {
            Ok(c) => c.latency,
            Err(e) => e.latency,
        }),
        secondary_latency: Some(match &secondary {
            Ok(c) => c.latency,
            Err(e) => e.latency,
        }),
        ..Record::new(at, route, Outcome::Matched)
    };
    let (primary, secondary) = match (primary, secondary) {
        // A shadow abandoned at shutdown never saw the primary finish either; the leg that
        // was cut short is the secondary.
        (_, Err(e)) if e.kind == crate::exchange::ErrorKind::Shutdown => {
            record.outcome = Outcome::Error {
                leg: crate::exchange::Leg::Secondary,
                kind: e.kind,
            };
            return record;
        }
        (Err(e), _) => {
            record.outcome = Outcome::Error {
                leg: crate::exchange::Leg::Primary,
                kind: e.kind,
            };
            return record;
        }
        (_, Err(e)) => {
            record.outcome = Outcome::Error {
                leg: crate::exchange::Leg::Secondary,
                kind: e.kind,
            };
            return record;
        }
        (Ok(p), Ok(s)) => (p, s),
    };
    let mut verdict = comparator.compare_in(rules, &primary, &secondary);
    if !matches!(baseline, BaselineLeg::Absent) {
        // The baseline is judged under the same rules: what they hide is not noise to learn.
        let usable = match baseline {
            BaselineLeg::Absent => unreachable!("checked above"),
            BaselineLeg::NotSent(why) => Err(BaselineUnusable::NotSent(why)),
            BaselineLeg::Sent(Err(error)) => Err(BaselineUnusable::Failed(error.kind)),
            BaselineLeg::Sent(Ok(b)) if b.status != primary.status => Err(BaselineUnusable::Status),
            BaselineLeg::Sent(Ok(b)) => Ok(comparator.compare_in(rules, &primary, &b).differences),
        };
        record.baseline = Some(match &usable {
            Ok(_) => BaselineUse::Used,
            Err(why) => BaselineUse::Unusable(*why),
        });
        if let Some(noise) = noise {
            noise.apply(&record.route, &mut verdict, usable.as_deref().ok());
        }
    }
    record.hidden = verdict.hidden;
    if !verdict.differences.is_empty() {
        record.outcome = Outcome::Mismatched;
        // Only now, after the comparison saw the real values.
        let mut detail = MismatchDetail {
            request,
            primary,
            secondary,
            differences: verdict.differences,
            body_diff: verdict.body_diff,
            rewrites: rewrites
                .iter()
                .map(|change| change.describe(redactor.rules()))
                .collect(),
        };
        redactor.mismatch(&mut detail);
        record.mismatch = Some(Box::new(detail));
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::SkipReason;
    use std::time::{Duration, UNIX_EPOCH};

    fn skipped(route: &str, reason: SkipReason, second: u64) -> Record {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + second);
        Record::new(at, route.into(), Outcome::Skipped(reason))
    }

    #[test]
    fn skips_of_one_route_reason_and_minute_become_one_record_that_counts_them_all() {
        let mut skips = Vec::new();
        let sampled = SkipReason::SampledOut;
        for second in 0..30 {
            assert!(merge_skip(&mut skips, skipped("GET /a", sampled, second)).is_none());
        }
        // Another route, another reason, another minute: records of their own.
        assert!(merge_skip(&mut skips, skipped("GET /b", sampled, 1)).is_none());
        assert!(merge_skip(&mut skips, skipped("GET /a", SkipReason::Loop, 1)).is_none());
        assert!(merge_skip(&mut skips, skipped("GET /a", sampled, 60)).is_none());
        let counts: Vec<(&str, u64)> = skips.iter().map(|r| (r.route.as_str(), r.count)).collect();
        assert_eq!(
            counts,
            [("GET /a", 30), ("GET /b", 1), ("GET /a", 1), ("GET /a", 1)]
        );
        assert_eq!(skips.iter().map(|r| r.count).sum::<u64>(), 33);

        // What is not a skip goes on as it is, and so does a skip once the batch is full.
        let mut matched = skipped("GET /a", sampled, 0);
        matched.outcome = Outcome::Matched;
        assert!(merge_skip(&mut skips, matched).is_some());
        let mut full: Vec<Record> = (0..MAX_BATCH_SKIPS)
            .map(|i| skipped(&format!("GET /{i}"), sampled, 0))
            .collect();
        assert!(merge_skip(&mut full, skipped("GET /new", sampled, 0)).is_some());
        assert!(merge_skip(&mut full, skipped("GET /0", sampled, 0)).is_none());
        assert_eq!(full[0].count, 2);
    }
}
