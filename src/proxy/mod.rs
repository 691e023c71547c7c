//! The shadowing proxy: the listener, the primary leg ([`forward`]), the shadow leg
//! ([`shadow`]) and what decides whether a request is shadowed ([`admission`]).
//!
//! [`run`] takes a bound listener and a shutdown future, so tests bind `127.0.0.1:0` and
//! drive the real thing.

pub mod admission;
pub mod capture;
pub mod forward;
pub mod shadow;
pub mod tunnel;

use crate::compare::{Comparator, RulesError};
use crate::config::ServeConfig;
use crate::exchange::LegError;
use crate::pipeline::{Pipeline, PipelineHandle};
use crate::store::{RunInfo, StoreError, StoreWriter};
use crate::traffic::recorder::{Recorder, RecorderError, RecorderOptions};
use crate::upstream::{build_client, Upstream};
use admission::Admission;
use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body the proxy returns: streamed from the primary, or a short error text.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Why the proxy could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("{}: {source}", path.display())]
    Store {
        path: std::path::PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("--record: {0}")]
    Record(#[from] RecorderError),
}

/// What is ready before the listener opens: if any of it fails, nothing is listening yet.
pub struct Prepared {
    comparator: Arc<Comparator>,
    store: StoreWriter,
    dropped: Arc<AtomicU64>,
    client: reqwest::Client,
    recorder: Option<Arc<Recorder>>,
}

/// Compiles the rules, opens the store and the record file, and builds the client.
pub fn prepare(config: &ServeConfig) -> Result<Prepared, ServeError> {
    let comparator = Arc::new(Comparator::new(&config.rules)?);
    let dropped = Arc::new(AtomicU64::new(0));
    let run = RunInfo {
        mode: "serve".into(),
        primary: config.primary.to_string(),
        secondary: config.secondary.to_string(),
        config_digest: config.digest.clone(),
        rules: comparator.rule_ids(),
    };
    let options = config.store_options(dropped.clone());
    let store =
        StoreWriter::open(&config.db, run, options).map_err(|source| ServeError::Store {
            path: config.db.clone(),
            source,
        })?;
    let recorder = match &config.record {
        Some(record) => Some(Arc::new(Recorder::open(
            &record.path,
            RecorderOptions {
                max_size: Some(record.max_size),
                keep_secrets: record.keep_secrets,
            },
        )?)),
        None => None,
    };
    Ok(Prepared {
        comparator,
        store,
        dropped,
        client: build_client()?,
        recorder,
    })
}

/// The state every connection shares.
pub struct Proxy {
    pub(crate) config: ServeConfig,
    pub(crate) client: reqwest::Client,
    pub(crate) primary: Upstream,
    pub(crate) secondary: Upstream,
    pub(crate) admission: Admission,
    pub(crate) pipeline: PipelineHandle,
    /// `--record`: shadowed requests are appended here for a later replay.
    pub(crate) recorder: Option<Arc<Recorder>>,
    /// Set when the drain timeout has run out: shadows still running record themselves as
    /// shutdown errors and stop.
    pub(crate) abandon: watch::Sender<bool>,
}

impl Proxy {
    /// The primary's response headers within the primary timeout, or a timeout error.
    pub(crate) async fn primary_deadline(
        &self,
        sent: impl Future<Output = Result<reqwest::Response, LegError>>,
    ) -> Result<reqwest::Response, LegError> {
        let started = Instant::now();
        match tokio::time::timeout(self.config.primary_timeout, sent).await {
            Ok(result) => result,
            Err(_) => Err(LegError {
                kind: crate::exchange::ErrorKind::Timeout,
                message: format!(
                    "no response within {}",
                    humantime::format_duration(self.config.primary_timeout)
                ),
                latency: started.elapsed(),
            }),
        }
    }
}

/// Opens the store and serves until `shutdown` resolves, then drains (see [`serve`]).
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let prepared = prepare(&config)?;
    serve(listener, config, prepared, shutdown).await
}

/// Accepts connections until `shutdown` resolves. Then: stop accepting, let the client
/// requests in flight finish, wait up to the drain timeout for shadows, record the ones
/// still running as shutdown errors, and commit everything to the store.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    prepared: Prepared,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let Prepared {
        comparator,
        store,
        dropped,
        client,
        recorder,
    } = prepared;
    let pipeline = Pipeline::start(comparator, store, dropped, config.max_inflight.max(1024));
    let (abandon, _) = watch::channel(false);
    let drain_timeout = config.drain_timeout;
    let proxy = Arc::new(Proxy {
        admission: Admission::new(
            config.sample,
            config.sample_by.clone(),
            config.shadow_writes,
            config.max_body,
            config.max_inflight,
        ),
        primary: Upstream::new(&config.primary),
        secondary: Upstream::new(&config.secondary),
        client,
        pipeline: pipeline.handle(),
        recorder: recorder.clone(),
        abandon,
        config,
    });

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: keep serving the
                        // connections we have, try again shortly.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let proxy = proxy.clone();
                let service = service_fn(move |request| forward::handle(proxy.clone(), request, client));
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %client, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    let deadline = Instant::now() + drain_timeout;
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("client connections still open after the drain timeout");
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if !proxy.admission.drained(left).await {
        tracing::warn!(
            inflight = proxy.admission.inflight(),
            "shadows still running after the drain timeout; recording them as shutdown"
        );
        let _ = proxy.abandon.send(true);
        let _ = proxy.admission.drained(Duration::from_secs(1)).await;
    }
    drop(proxy);
    if let Some(recorder) = recorder {
        let finished = tokio::task::spawn_blocking(move || {
            let result = recorder.finish();
            (result, recorder.dropped())
        })
        .await;
        match finished {
            Ok((Ok(()), 0)) => {}
            Ok((Ok(()), dropped)) => {
                tracing::warn!(
                    dropped,
                    "requests not recorded: the record file fell behind"
                )
            }
            Ok((Err(error), _)) => tracing::error!(%error, "closing the record file"),
            Err(_) => tracing::error!("the record file's writer panicked"),
        }
    }
    tokio::task::spawn_blocking(move || pipeline.finish())
        .await
        .map_err(|_| ServeError::Store {
            path: Default::default(),
            source: StoreError::WriterPanicked,
        })?
        .map_err(|source| ServeError::Store {
            path: Default::default(),
            source,
        })
}
