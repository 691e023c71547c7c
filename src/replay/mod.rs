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
//! - [`progress`]: the progress bar on a terminal, periodic lines elsewhere.

mod progress;

use crate::compare::{Comparator, RulesError};
use crate::config::{BaselineTarget, LegConfig, ServeConfig};
use crate::exchange::{is_write, BaselineLeg, BaselineSkip, Exchange, Observation, SkipReason};
use crate::pipeline::{Pipeline, PipelineError, PipelineHandle};
use crate::store::{RunInfo, StoreError, StoreWriter};
use crate::traffic::{self, TrafficEntry, TrafficError};
use crate::upstream::{self, ClientError, Fetch, FetchOptions, Upstream};
use http::{header, HeaderMap, HeaderValue};
use progress::Progress;
pub use progress::ProgressMode;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Observations waiting for the compare thread; enough to keep it busy, small in memory.
const PIPELINE_CAPACITY: usize = 4096;

/// What one replay is asked to do, validated.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub input: PathBuf,
    /// Upstreams, store path, limits, timeouts and rules: the settings serve uses.
    pub config: ServeConfig,
    pub concurrency: usize,
    /// OS threads the workers are spread over, each a single-threaded runtime (at most
    /// `concurrency`).
    pub threads: usize,
    /// Most requests started per second.
    pub rate: Option<f64>,
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

/// Requests per second: a positive number.
pub fn parse_rps(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(rps) if rps.is_finite() && rps > 0.0 => Ok(rps),
        _ => Err(format!(
            "{value:?} is not a positive number of requests per second"
        )),
    }
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
    drop(traffic::open(&options.input, bound)?);
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
    let (tx, rx) = flume::bounded(options.concurrency.div_ceil(READ_BATCH) * 2);
    let reader = {
        let (input, repeat, skip_invalid) =
            (options.input.clone(), options.repeat, options.skip_invalid);
        let (requests, invalid) = (requests.clone(), invalid.clone());
        tokio::task::spawn_blocking(move || {
            read_traffic(input, bound, repeat, skip_invalid, &requests, &invalid, tx)
        })
    };
    let progress = Progress::start(
        options.progress,
        &options.input,
        bound,
        options.repeat,
        tally.clone(),
    );

    let pacer = options.rate.map(|rps| Arc::new(Pacer::new(rps)));
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
    rx: flume::Receiver<Vec<TrafficEntry>>,
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
    rx: &flume::Receiver<Vec<TrafficEntry>>,
    pipeline: &PipelineHandle,
    pacer: Option<&Pacer>,
) {
    while let Ok(batch) = rx.recv_async().await {
        for entry in batch {
            if let Some(pacer) = pacer {
                pacer.wait().await;
            }
            replay_one(legs, links, pipeline, entry).await;
        }
    }
}

/// Streams the file `repeat` times into the workers' channel. Stops at the first invalid
/// request unless skipping, and when the workers are gone.
fn read_traffic(
    input: PathBuf,
    bound: traffic::EntryBound,
    repeat: u32,
    skip_invalid: bool,
    requests: &AtomicU64,
    invalid: &AtomicU64,
    tx: flume::Sender<Vec<TrafficEntry>>,
) -> Result<(), TrafficError> {
    let mut batch = Vec::with_capacity(READ_BATCH);
    for round in 0..repeat {
        for item in traffic::open(&input, bound)? {
            match item {
                Ok(entry) => {
                    requests.fetch_add(1, Ordering::Relaxed);
                    batch.push(entry);
                    if batch.len() == READ_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(READ_BATCH));
                        if tx.send(full).is_err() {
                            return Ok(());
                        }
                    }
                }
                Err(e) if skip_invalid && e.is_skippable() => {
                    if round == 0 {
                        invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    // What was read before the bad request is still sent, as when unbatched.
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
        links
            .secondary
            .fetch(how(&legs.secondary), method, secondary_uri, secondary_headers, body),
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

/// Spaces request starts evenly at `--rate`, shared by all workers.
struct Pacer {
    period: Duration,
    next: Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(rps: f64) -> Pacer {
        Pacer {
            period: Duration::from_secs_f64(1.0 / rps),
            next: Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.period;
            slot
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
