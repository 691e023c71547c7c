//! `shadowdiff replay`: requests from a traffic file, sent to both upstreams, judged and
//! stored exactly as `serve` judges and stores what it shadows.
//!
//! Only the source differs from serve: a reader thread streams the file into a small
//! bounded channel, `concurrency` workers send each request to both upstreams at once
//! through [`crate::upstream`], and hand the pair to the same [`Pipeline`] with
//! [`PipelineHandle::submit`], which waits for room instead of dropping: a replay has no
//! client to protect, so it never loses a comparison.
//!
//! Both legs go through serve's upstream client ([`crate::upstream`]): the same request
//! builder, retry rule, timeout and body cap. Each replay thread has its own pools, so a
//! worker's connections stay on the thread that drives it.
//!
//! Starts are paced by `--rate`: evenly at N per second ([`Pacer`]), or with the spacing
//! the file recorded (`original`, [`OriginalClock`]): the reader gives each request the
//! moment it is due, relative to the replay's start, and the worker that takes it waits
//! for that moment. Original spacing schedules starts, not completions, and at most
//! `concurrency` requests are in flight, so a start may wait for a free worker.
//!
//! - [`progress`]: the progress bar on a terminal, periodic lines elsewhere.

mod progress;

use crate::compare::{Comparator, RulesError};
use crate::config::{BaselineTarget, LegConfig, ServeConfig};
use crate::exchange::{is_write, BaselineLeg, BaselineSkip, Exchange, Observation, SkipReason};
use crate::pipeline::{Pipeline, PipelineError, PipelineHandle};
use crate::store::{RunInfo, StoreError, StoreWriter};
use crate::traffic::{self, Format, TrafficEntry, TrafficError};
use crate::upstream::{self, ClientError, Fetch, FetchOptions, Upstream};
use http::{header, HeaderMap, HeaderValue};
use progress::Progress;
pub use progress::ProgressMode;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Observations waiting for the compare thread; enough to keep it busy, small in memory.
const PIPELINE_CAPACITY: usize = 4096;

/// What one replay is asked to do, validated.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub input: PathBuf,
    /// The input's format; `None` recognises it ([`Format::detect`]).
    pub format: Option<Format>,
    /// Upstreams, store path, limits, timeouts and rules: the settings serve uses.
    pub config: ServeConfig,
    pub concurrency: usize,
    /// OS threads the workers are spread over, each a single-threaded runtime (at most
    /// `concurrency`).
    pub threads: usize,
    /// How request starts are paced; as fast as the workers go when `None`.
    pub rate: Option<Rate>,
    pub repeat: u32,
    pub skip_invalid: bool,
    pub progress: ProgressMode,
}

/// What a replay did; every request read is in exactly one of the outcome counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// The store the results went to, for the report that follows.
    pub store: crate::store::Location,
    /// This replay's run in that store.
    pub run: i64,
    /// Requests read from the file (times `--repeat`).
    pub requests: u64,
    pub matched: u64,
    pub mismatched: u64,
    /// A leg failed (connect, timeout, too large...).
    pub errors: u64,
    /// Not sent, with a reason (write methods without `--shadow-writes`).
    pub skipped: u64,
    /// Lines skipped with `--skip-invalid` (counted once, not per repeat).
    pub invalid: u64,
    /// Observations the pipeline lost; always 0 for a replay, reported to prove it.
    pub dropped: u64,
}

/// Why a replay could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("a replay thread panicked; the store holds what was judged before it")]
    Panicked,
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("writing to standard output: {0}")]
    Stdout(std::io::Error),
}

/// How a replay paces the starts of its requests (`--rate`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// At most this many starts per second, evenly spaced.
    PerSecond(f64),
    /// The spacing the file's timestamps record ([`OriginalClock`]).
    Original,
}

/// Requests per second: a positive number.
pub fn parse_rps(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(rps) if rps.is_finite() && rps > 0.0 => Ok(rps),
        _ => Err(format!(
            "{value:?} is not a positive number of requests per second"
        )),
    }
}

/// `--rate`: `original`, or a positive number of requests per second.
pub fn parse_rate(value: &str) -> Result<Rate, String> {
    if value.trim().eq_ignore_ascii_case("original") {
        return Ok(Rate::Original);
    }
    parse_rps(value)
        .map(Rate::PerSecond)
        .map_err(|reason| format!("{reason}, nor \"original\""))
}

/// Runs a replay on its own runtime.
pub fn run(options: ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    // The workers run on threads of their own (see `send_all`); this runtime only reads
    // the file, shows progress and waits.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReplayError::Runtime)?;
    runtime.block_on(replay(options))
}

/// Replays the file into the store; returns when everything is compared and committed.
pub async fn replay(options: ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    // Open the input first: a typo in the file name should not create a database.
    let config = &options.config;
    let bound = traffic::EntryBound::for_max_body(config.shadow.max_body);
    let format = match options.format {
        Some(format) => format,
        None => Format::detect(&options.input)?,
    };
    drop(traffic::open(&options.input, format, bound)?);
    let comparator = Arc::new(Comparator::new(&config.rules)?);
    let dropped = Arc::new(AtomicU64::new(0));
    let store = StoreWriter::open(
        &config.store.location,
        RunInfo {
            mode: "replay".into(),
            primary: crate::redact::url::shown(&config.primary.url),
            secondary: crate::redact::url::shown(&config.secondary.url),
            config_digest: config.digest.clone(),
            rules: comparator.rule_ids(),
            instance: config.store.instance.clone(),
            // Nobody is answered: both legs are asked alike.
            answered_by: crate::exchange::Leg::Primary,
        },
        config.store.options(dropped.clone()),
    )?;
    let run_id = store.run_id();
    let pipeline = Pipeline::start(
        comparator,
        config.redact.clone(),
        store,
        dropped,
        PIPELINE_CAPACITY,
        config.baseline.as_ref().map(|b| b.noise),
    );
    let tally = pipeline.tally();
    // Both upstreams are checked before anything is sent; each thread builds its own.
    let legs = Arc::new(Legs {
        primary: config.primary.clone(),
        secondary: config.secondary.clone(),
        baseline: config
            .baseline
            .as_ref()
            .map(|b| (b.leg.clone(), b.target != BaselineTarget::Instance)),
        max_body: config.shadow.max_body,
        shadow_writes: config.shadow.shadow_writes,
        marker: config.shadow.marker.clone(),
        rewrites: config.rewrites.clone(),
    });
    Links::new(&legs)?;

    let requests = Arc::new(AtomicU64::new(0));
    let invalid = Arc::new(AtomicU64::new(0));
    let original = options.rate == Some(Rate::Original);
    // With original spacing every request is handed over alone, so that whichever worker
    // is free takes the next one when it falls due rather than after a batch-mate.
    let batch = if original { 1 } else { READ_BATCH };
    let (tx, rx) = flume::bounded(options.concurrency.div_ceil(batch) * 2);
    let reader = {
        let (input, repeat, skip_invalid) =
            (options.input.clone(), options.repeat, options.skip_invalid);
        let (requests, invalid) = (requests.clone(), invalid.clone());
        let reading = Reading {
            input,
            format,
            bound,
            repeat,
            skip_invalid,
            batch,
            clock: original.then(OriginalClock::default),
        };
        tokio::task::spawn_blocking(move || reading.run(&requests, &invalid, tx))
    };
    let progress = Progress::start(
        options.progress,
        &options.input,
        format,
        bound,
        options.repeat,
        tally.clone(),
    );

    let pacer = match options.rate {
        Some(Rate::PerSecond(rps)) => Some(Arc::new(Pacer::new(rps))),
        Some(Rate::Original) => Some(Arc::new(Pacer::original())),
        None => None,
    };
    let senders = {
        let (handle, concurrency, threads) =
            (pipeline.handle(), options.concurrency, options.threads);
        tokio::task::spawn_blocking(move || send_all(legs, rx, handle, pacer, concurrency, threads))
    };
    let sent = senders.await.unwrap_or(Err(ReplayError::Panicked));
    let read_result = reader.await.unwrap_or_else(|_| {
        Err(TrafficError::Unreadable {
            path: options.input.clone(),
            problem: "the reader thread panicked".into(),
        })
    });
    let pipeline_dropped = pipeline.handle().dropped();
    tokio::task::spawn_blocking(move || pipeline.finish())
        .await
        .map_err(|_| PipelineError::FinishPanicked)??;
    let summary = ReplaySummary {
        store: config.store.location.clone(),
        run: run_id,
        requests: requests.load(Ordering::Relaxed),
        matched: tally.matched.load(Ordering::Relaxed),
        mismatched: tally.mismatched.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        skipped: tally.skipped.load(Ordering::Relaxed),
        invalid: invalid.load(Ordering::Relaxed),
        dropped: pipeline_dropped,
    };
    progress.finish(&summary, read_result.is_ok() && sent.is_ok());
    sent?;
    read_result?;
    Ok(summary)
}

/// Requests the reader hands over at once: one wake-up of a worker per batch, not per
/// request.
const READ_BATCH: usize = 16;

/// Sends everything the reader produces on `threads` OS threads, each running its share
/// of the `concurrency` workers on a single-threaded runtime, and returns when the reader
/// is done and every worker has handed its last exchange to the pipeline.
///
/// A worker's two requests, their connections and the tasks driving them stay on one
/// thread: a multi-threaded runtime moved them between threads and spent more time waking
/// threads than sending requests (bench/replay.md).
fn send_all(
    legs: Arc<Legs>,
    rx: flume::Receiver<Vec<Due>>,
    pipeline: PipelineHandle,
    pacer: Option<Arc<Pacer>>,
    concurrency: usize,
    threads: usize,
) -> Result<(), ReplayError> {
    let threads = threads.clamp(1, concurrency);
    let shards: Vec<_> = (0..threads)
        .map(|shard| {
            // Spread the workers evenly: the first `concurrency % threads` get one more.
            let workers = concurrency / threads + usize::from(shard < concurrency % threads);
            let (legs, rx, pipeline, pacer) =
                (legs.clone(), rx.clone(), pipeline.clone(), pacer.clone());
            std::thread::Builder::new()
                .name(format!("shadowdiff-replay-{shard}"))
                .spawn(move || -> Result<(), ReplayError> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(ReplayError::Runtime)?;
                    // A pool's connections live on the runtime that opened them, so each
                    // thread has its own.
                    let links = Arc::new(Links::new(&legs)?);
                    runtime.block_on(async move {
                        let tasks: Vec<_> = (0..workers)
                            .map(|_| {
                                let (legs, links, rx, pipeline, pacer) = (
                                    legs.clone(),
                                    links.clone(),
                                    rx.clone(),
                                    pipeline.clone(),
                                    pacer.clone(),
                                );
                                tokio::spawn(async move {
                                    worker(&legs, &links, &rx, &pipeline, pacer.as_deref()).await
                                })
                            })
                            .collect();
                        let mut panicked = false;
                        for task in tasks {
                            panicked |= task.await.is_err();
                        }
                        if panicked {
                            Err(ReplayError::Panicked)
                        } else {
                            Ok(())
                        }
                    })
                })
                .map_err(ReplayError::Runtime)
        })
        .collect::<Result<_, _>>()?;
    drop(rx);
    let mut outcome = Ok(());
    for shard in shards {
        let result = shard.join().unwrap_or(Err(ReplayError::Panicked));
        if outcome.is_ok() {
            outcome = result;
        }
    }
    outcome
}

/// One worker: takes batches of requests until the reader is done, one request at a time.
async fn worker(
    legs: &Legs,
    links: &Links,
    rx: &flume::Receiver<Vec<Due>>,
    pipeline: &PipelineHandle,
    pacer: Option<&Pacer>,
) {
    while let Ok(batch) = rx.recv_async().await {
        for Due { entry, at } in batch {
            if let Some(pacer) = pacer {
                pacer.wait(at).await;
            }
            replay_one(legs, links, pipeline, entry).await;
        }
    }
}

/// A request and, with original spacing, when it is due after the replay's start.
struct Due {
    entry: TrafficEntry,
    at: Option<Duration>,
}

/// What the reader thread streams, and how.
struct Reading {
    input: PathBuf,
    format: Format,
    bound: traffic::EntryBound,
    repeat: u32,
    skip_invalid: bool,
    /// Requests handed to the workers at once.
    batch: usize,
    /// With `--rate original`: when each request is due.
    clock: Option<OriginalClock>,
}

impl Reading {
    /// Streams the file `repeat` times into the workers' channel. Stops at the first
    /// invalid request unless skipping, and when the workers are gone.
    fn run(
        mut self,
        requests: &AtomicU64,
        invalid: &AtomicU64,
        tx: flume::Sender<Vec<Due>>,
    ) -> Result<(), TrafficError> {
        let mut batch = Vec::with_capacity(self.batch);
        for round in 0..self.repeat {
            if let Some(clock) = &mut self.clock {
                clock.next_round();
            }
            for item in traffic::open(&self.input, self.format, self.bound)? {
                match item {
                    Ok(entry) => {
                        requests.fetch_add(1, Ordering::Relaxed);
                        let at = self
                            .clock
                            .as_mut()
                            .map(|clock| clock.due(entry.ts.as_deref()));
                        batch.push(Due { entry, at });
                        if batch.len() == self.batch {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(self.batch));
                            if tx.send(full).is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Err(e) if self.skip_invalid && e.is_skippable() => {
                        if round == 0 {
                            invalid.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        // What was read before the bad request is still sent, as when
                        // unbatched.
                        let _ = tx.send(batch);
                        return Err(e);
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        Ok(())
    }
}

/// `--rate original`: when each request is due, as an offset from the replay's start, from
/// the timestamps of the file in file order.
///
/// The first request with a timestamp is due at once, each later one as long after it as
/// the file recorded. Offsets never go back: logs are written as requests complete, so a
/// timestamp earlier than the one before (or a request without one) is due right after
/// the previous request, and file order is kept. Each `--repeat` starts where the previous
/// one's last request was due, with the same spacing.
#[derive(Debug, Default)]
pub struct OriginalClock {
    /// The first timestamp of this round, and the offset its requests start from.
    first: Option<chrono::DateTime<chrono::FixedOffset>>,
    base: Duration,
    /// The offset of the request last scheduled.
    last: Duration,
}

impl OriginalClock {
    /// The offset at which the next request (with timestamp `ts`, RFC 3339) is due.
    pub fn due(&mut self, ts: Option<&str>) -> Duration {
        let Some(ts) = ts.and_then(|ts| chrono::DateTime::parse_from_rfc3339(ts).ok()) else {
            return self.last;
        };
        let first = *self.first.get_or_insert(ts);
        let since = (ts - first).to_std().unwrap_or(Duration::ZERO);
        self.last = self.last.max(self.base.saturating_add(since));
        self.last
    }

    /// Starts the next pass over the file (`--repeat`) after the last request of this one.
    pub fn next_round(&mut self) {
        self.first = None;
        self.base = self.last;
    }
}

/// Everything needed to send one request to both upstreams, shared by the workers.
#[derive(Clone)]
struct Legs {
    primary: LegConfig,
    secondary: LegConfig,
    /// The baseline's leg, and whether it is the primary itself (`self`: safe methods
    /// only; the replay's own concurrency bounds its copies).
    baseline: Option<(LegConfig, bool)>,
    max_body: usize,
    shadow_writes: bool,
    /// `--shadow-marker`: the header both legs get, `replay` as its value.
    marker: http::HeaderName,
    /// `[[rewrite]]`, for the secondary's copy only, as serve applies it.
    rewrites: crate::rewrite::Rewrites,
}

/// One thread's upstreams, each with its own pool.
struct Links {
    primary: Upstream,
    secondary: Upstream,
    baseline: Option<Upstream>,
}

impl Links {
    fn new(legs: &Legs) -> Result<Links, ClientError> {
        Ok(Links {
            primary: Upstream::new(&legs.primary.url, &legs.primary.connect)?,
            secondary: Upstream::new(&legs.secondary.url, &legs.secondary.connect)?,
            baseline: match &legs.baseline {
                Some((leg, _)) => Some(Upstream::new(&leg.url, &leg.connect)?),
                None => None,
            },
        })
    }
}

async fn replay_one(legs: &Legs, links: &Links, pipeline: &PipelineHandle, entry: TrafficEntry) {
    let mut request = entry.request;
    let at = SystemTime::now();
    // A request its format could not hold whole (an access log's POST): never sent.
    if let Some(reason) = entry.skip {
        pipeline
            .submit(Observation::Skipped {
                at,
                method: request.method,
                path: request.uri.path().to_string(),
                reason,
            })
            .await;
        return;
    }
    // Serve's rule (`exchange::is_write`): writes are sent only when asked for.
    if !legs.shadow_writes && is_write(&request.method, &request.headers) {
        pipeline
            .submit(Observation::Skipped {
                at,
                method: request.method,
                path: request.uri.path().to_string(),
                reason: SkipReason::MethodNotShadowed,
            })
            .await;
        return;
    }
    let headers = outgoing_headers(&request.headers, &legs.marker);
    let rewritten = match legs.rewrites.apply(&request.method, &request.uri, &headers) {
        Ok(rewritten) => rewritten,
        Err(_) => {
            pipeline
                .submit(Observation::Skipped {
                    at,
                    method: request.method,
                    path: request.uri.path().to_string(),
                    reason: SkipReason::RewriteFailed,
                })
                .await;
            return;
        }
    };
    let (secondary_uri, secondary_headers) = match &rewritten {
        Some(r) => (&r.uri, &r.headers),
        None => (&request.uri, &headers),
    };
    let how = |leg: &LegConfig| Fetch {
        memory: None,
        options: FetchOptions {
            preserve_host: leg.preserve_host,
            max_body: legs.max_body,
            timeout: leg.timeout,
            mark: None,
        },
    };
    let (method, uri, body) = (&request.method, &request.uri, &request.body);
    let baseline = async {
        match (&legs.baseline, &links.baseline) {
            (Some((_, true)), Some(_)) if is_write(method, &request.headers) => {
                BaselineLeg::NotSent(BaselineSkip::Write)
            }
            (Some((leg, _)), Some(upstream)) => {
                BaselineLeg::Sent(upstream.fetch(how(leg), method, uri, &headers, body).await)
            }
            _ => BaselineLeg::Absent,
        }
    };
    let (primary, secondary, baseline) = tokio::join!(
        links
            .primary
            .fetch(how(&legs.primary), method, uri, &headers, body),
        links.secondary.fetch(
            how(&legs.secondary),
            method,
            secondary_uri,
            secondary_headers,
            body
        ),
        baseline,
    );
    // What is stored (and `show` prints) is the request as the primary received it, not
    // the Host of wherever the traffic was recorded.
    links
        .primary
        .set_host(&mut request.headers, legs.primary.preserve_host);
    pipeline
        .submit(Observation::Exchange(Box::new(Exchange {
            at,
            request,
            primary,
            secondary,
            baseline,
            rewrites: rewritten.map(|r| r.changes).unwrap_or_default(),
        })))
        .await;
}

/// The recorded headers as both legs receive them: hop-by-hop ones removed, the length
/// left to the client (it knows the body), and the shadow mark on both legs so that a
/// shadowdiff in front of either upstream does not shadow a replay again.
fn outgoing_headers(recorded: &HeaderMap, marker: &http::HeaderName) -> HeaderMap {
    let mut headers = recorded.clone();
    upstream::strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(marker.clone(), HeaderValue::from_static("replay"));
    headers
}

/// Paces request starts, shared by all workers: evenly at `--rate N`, or each at the
/// offset from the start the reader gave it (`--rate original`).
struct Pacer {
    /// `None` for original spacing.
    period: Option<Duration>,
    start: Instant,
    next: Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(rps: f64) -> Pacer {
        Pacer {
            period: Some(Duration::from_secs_f64(1.0 / rps)),
            start: Instant::now(),
            next: Mutex::new(tokio::time::Instant::now()),
        }
    }

    fn original() -> Pacer {
        Pacer {
            period: None,
            ..Pacer::new(1.0)
        }
    }

    async fn wait(&self, due: Option<Duration>) {
        let slot = match (self.period, due) {
            (Some(period), _) => {
                let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                let slot = (*next).max(tokio::time::Instant::now());
                *next = slot + period;
                slot
            }
            (None, Some(due)) => tokio::time::Instant::from_std(self.start + due),
            (None, None) => return,
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The counts of a finished replay, as progress and logs print them.
impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: {} matched, {} mismatched, {} errors, {} skipped",
            self.requests, self.matched, self.mismatched, self.errors, self.skipped
        )?;
        if self.invalid > 0 {
            write!(f, ", {} invalid lines skipped", self.invalid)?;
        }
        if self.dropped > 0 {
            write!(f, ", {} dropped", self.dropped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(rounds: &[&[Option<&str>]]) -> Vec<u64> {
        let mut clock = OriginalClock::default();
        let mut out = Vec::new();
        for round in rounds {
            clock.next_round();
            for ts in *round {
                out.push(clock.due(*ts).as_millis() as u64);
            }
        }
        out
    }

    #[test]
    fn original_spacing_follows_timestamps_never_back_and_repeats_after_the_last() {
        let file: &[Option<&str>] = &[
            Some("2026-01-01T00:00:10Z"),
            Some("2026-01-01T00:00:10.250Z"),
            None,
            // Out of order (written at completion): right after the previous one.
            Some("2026-01-01T00:00:10.100Z"),
            Some("2026-01-01T01:00:11+01:00"),
            Some("not a time"),
        ];
        assert_eq!(offsets(&[file]), [0, 250, 250, 250, 1000, 1000]);
        assert_eq!(
            offsets(&[file, file]),
            [0, 250, 250, 250, 1000, 1000, 1000, 1250, 1250, 1250, 2000, 2000]
        );
        // Requests before the first timestamp are due at once.
        assert_eq!(
            offsets(&[&[
                None,
                Some("2026-01-01T00:00:00Z"),
                Some("2026-01-01T00:00:02Z")
            ]]),
            [0, 0, 2000]
        );
    }

    #[test]
    fn rate_is_original_or_a_positive_number() {
        assert_eq!(parse_rate("original"), Ok(Rate::Original));
        assert_eq!(parse_rate("2.5"), Ok(Rate::PerSecond(2.5)));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").unwrap_err().contains("original"));
    }
}
