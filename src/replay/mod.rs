//! `shadowdiff replay`: requests from a traffic file, sent to both upstreams, judged and
//! stored exactly as `serve` judges and stores what it shadows.
//!
//! Only the source differs from serve: a reader thread streams the file into a small
//! bounded channel, `concurrency` workers send each request to both upstreams at once
//! through [`crate::upstream`], and hand the pair to the same [`Pipeline`] with
//! [`PipelineHandle::submit`], which waits for room instead of dropping: a replay has no
//! client to protect, so it never loses a comparison.
//!
//! - [`progress`]: the progress bar on a terminal, periodic lines elsewhere.

pub mod progress;

use crate::cli::{ReplayArgs, ReportArgs, ReportFormat, ServeArgs, StoreSelection};
use crate::compare::{Comparator, RulesError};
use crate::config::{ConfigError, ServeConfig};
use crate::exchange::{Exchange, LegOutcome, Observation, SkipReason};
use crate::pipeline::{Pipeline, PipelineHandle};
use crate::report::GateStatus;
use crate::store::{RunInfo, StoreError, StoreWriter};
use crate::traffic::{self, TrafficEntry, TrafficError};
use crate::upstream::{self, Upstream, SHADOW_HEADER};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method};
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
    pub db: PathBuf,
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
    Config(#[from] ConfigError),
    #[error("{flag}: {reason}")]
    Flag { flag: &'static str, reason: String },
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
}

impl ReplayOptions {
    /// Validates the command line; upstreams and rules come through the same
    /// [`ServeConfig`] validation as serve's.
    pub fn from_args(args: ReplayArgs) -> Result<ReplayOptions, ReplayError> {
        let config = ServeConfig::from_args(ServeArgs {
            config: args.config,
            primary: args.primary,
            secondary: args.secondary,
            db: args.db,
            shadow_writes: args.shadow_writes,
            ..ServeArgs::default()
        })?;
        let rate = args
            .rate
            .as_deref()
            .map(parse_rps)
            .transpose()
            .map_err(|reason| ReplayError::Flag {
                flag: "--rate",
                reason,
            })?;
        Ok(ReplayOptions {
            input: args.input,
            config,
            concurrency: args.concurrency as usize,
            rate,
            repeat: args.repeat,
            skip_invalid: args.skip_invalid,
            progress: if args.quiet {
                ProgressMode::Quiet
            } else {
                ProgressMode::Auto
            },
        })
    }
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

/// `shadowdiff replay` as a CI job: replays, prints the text report of this run, and
/// applies the gate's thresholds (0 pass, 1 a threshold broken).
pub fn run_command(args: ReplayArgs) -> Result<GateStatus, ReplayError> {
    let thresholds = args.thresholds.clone();
    let summary = run(args)?;
    if summary.invalid > 0 {
        println!(
            "{} invalid traffic lines skipped (--skip-invalid)",
            summary.invalid
        );
    }
    let run = Some(summary.run);
    let status = crate::report::run_report(&ReportArgs {
        stores: StoreSelection {
            db: vec![summary.db],
            run,
            ..StoreSelection::default()
        },
        format: ReportFormat::Text,
        output: None,
        examples: 3,
        thresholds,
    })?;
    Ok(status)
}

/// Runs `replay` from parsed flags on its own runtime; for `main`.
pub fn run(args: ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    let options = ReplayOptions::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ReplayError::Runtime)?;
    runtime.block_on(replay(options))
}

/// Replays the file into the store; returns when everything is compared and committed.
pub async fn replay(options: ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    // Open the input first: a typo in the file name should not create a database.
    drop(traffic::open(&options.input)?);
    let config = &options.config;
    let comparator = Arc::new(Comparator::new(&config.rules)?);
    let dropped = Arc::new(AtomicU64::new(0));
    let store = StoreWriter::open(
        &config.db,
        RunInfo {
            mode: "replay".into(),
            primary: config.primary.to_string(),
            secondary: config.secondary.to_string(),
            config_digest: config.digest.clone(),
            rules: comparator.rule_ids(),
        },
        config.store_options(dropped.clone()),
    )?;
    let run_id = store.run_id();
    let pipeline = Pipeline::start(comparator, store, dropped, PIPELINE_CAPACITY);
    let tally = pipeline.tally();
    let legs = Arc::new(Legs {
        client: upstream::build_client()?,
        primary: Upstream::new(&config.primary),
        secondary: Upstream::new(&config.secondary),
        preserve_host: config.preserve_host,
        max_body: config.max_body,
        primary_timeout: config.primary_timeout,
        secondary_timeout: config.secondary_timeout,
    });

    let requests = Arc::new(AtomicU64::new(0));
    let invalid = Arc::new(AtomicU64::new(0));
    let (tx, rx) = flume::bounded(options.concurrency * 2);
    let reader = {
        let (input, repeat, skip_invalid) =
            (options.input.clone(), options.repeat, options.skip_invalid);
        let (requests, invalid) = (requests.clone(), invalid.clone());
        tokio::task::spawn_blocking(move || {
            read_traffic(input, repeat, skip_invalid, &requests, &invalid, tx)
        })
    };
    let progress = Progress::start(
        options.progress,
        &options.input,
        options.repeat,
        tally.clone(),
    );

    let pacer = options.rate.map(|rps| Arc::new(Pacer::new(rps)));
    let mut workers = Vec::with_capacity(options.concurrency);
    for _ in 0..options.concurrency {
        let (rx, legs, handle, pacer) =
            (rx.clone(), legs.clone(), pipeline.handle(), pacer.clone());
        let shadow_writes = config.shadow_writes;
        workers.push(tokio::spawn(async move {
            while let Ok(entry) = rx.recv_async().await {
                if let Some(pacer) = &pacer {
                    pacer.wait().await;
                }
                replay_one(&legs, &handle, shadow_writes, entry).await;
            }
        }));
    }
    drop(rx);
    for worker in workers {
        let _ = worker.await;
    }
    let read_result = reader.await.unwrap_or_else(|_| {
        Err(TrafficError::Unreadable {
            path: options.input.clone(),
            problem: "the reader thread panicked".into(),
        })
    });
    let pipeline_dropped = pipeline.handle().dropped();
    tokio::task::spawn_blocking(move || pipeline.finish())
        .await
        .map_err(|_| StoreError::WriterPanicked)??;
    let summary = ReplaySummary {
        db: config.db.clone(),
        run: run_id,
        requests: requests.load(Ordering::Relaxed),
        matched: tally.matched.load(Ordering::Relaxed),
        mismatched: tally.mismatched.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        skipped: tally.skipped.load(Ordering::Relaxed),
        invalid: invalid.load(Ordering::Relaxed),
        dropped: pipeline_dropped,
    };
    progress.finish(&summary, read_result.is_ok());
    read_result?;
    Ok(summary)
}

/// Streams the file `repeat` times into the workers' channel. Stops at the first invalid
/// request unless skipping, and when the workers are gone.
fn read_traffic(
    input: PathBuf,
    repeat: u32,
    skip_invalid: bool,
    requests: &AtomicU64,
    invalid: &AtomicU64,
    tx: flume::Sender<TrafficEntry>,
) -> Result<(), TrafficError> {
    for round in 0..repeat {
        for item in traffic::open(&input)? {
            match item {
                Ok(entry) => {
                    requests.fetch_add(1, Ordering::Relaxed);
                    if tx.send(entry).is_err() {
                        return Ok(());
                    }
                }
                Err(e) if skip_invalid && e.is_skippable() => {
                    if round == 0 {
                        invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Everything needed to send one request to both upstreams, shared by the workers.
struct Legs {
    client: reqwest::Client,
    primary: Upstream,
    secondary: Upstream,
    preserve_host: bool,
    max_body: usize,
    primary_timeout: Duration,
    secondary_timeout: Duration,
}

/// Serve's safe-method rule: only methods without side effects (RFC 9110 section 9.2.1)
/// are sent unless writes are explicitly shadowed.
fn is_shadowed(method: &Method, shadow_writes: bool) -> bool {
    shadow_writes || matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn replay_one(
    legs: &Legs,
    pipeline: &PipelineHandle,
    shadow_writes: bool,
    entry: TrafficEntry,
) {
    let request = entry.request;
    let at = SystemTime::now();
    if !is_shadowed(&request.method, shadow_writes) {
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
    let headers = outgoing_headers(&request.headers);
    let path_and_query = request
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let (primary, secondary) = tokio::join!(
        send_leg(
            legs,
            &legs.primary,
            legs.primary_timeout,
            &request.method,
            path_and_query,
            headers.clone(),
            request.body.clone(),
        ),
        send_leg(
            legs,
            &legs.secondary,
            legs.secondary_timeout,
            &request.method,
            path_and_query,
            headers,
            request.body.clone(),
        ),
    );
    pipeline
        .submit(Observation::Exchange(Box::new(Exchange {
            at,
            request,
            primary,
            secondary,
        })))
        .await;
}

/// The recorded headers as both legs receive them: hop-by-hop ones removed, the length
/// left to the client (it knows the body), and the shadow mark on both legs so that a
/// shadowdiff in front of either upstream does not shadow a replay again.
fn outgoing_headers(recorded: &HeaderMap) -> HeaderMap {
    let mut headers = recorded.clone();
    upstream::strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(SHADOW_HEADER, HeaderValue::from_static("replay"));
    headers
}

async fn send_leg(
    legs: &Legs,
    upstream: &Upstream,
    timeout: Duration,
    method: &Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: Bytes,
) -> LegOutcome {
    let how = upstream::Fetch {
        client: &legs.client,
        preserve_host: legs.preserve_host,
        max_body: legs.max_body,
        timeout,
    };
    upstream
        .fetch(how, method.clone(), path_and_query, headers, body)
        .await
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
