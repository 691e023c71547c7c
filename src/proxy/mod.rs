//! The shadowing proxy: the listener ([`listener`]: connection cap, head deadline, TLS),
//! the per-core threads that serve the connections ([`workers`]),
//! the requests answered with 400 instead of forwarded ([`refusal`]), the primary leg
//! ([`forward`]), the shadow leg ([`shadow`]) and what decides whether a request is
//! shadowed ([`admission`]).
//!
//! [`run`] takes a bound listener and a shutdown future, so tests bind `127.0.0.1:0` and
//! drive the real thing.

pub(crate) mod admission;
mod body;
mod breaker;
mod capture;
pub(crate) mod control;
mod forward;
mod listener;
mod live;
mod peer;
mod refusal;
mod response;
mod shadow;
mod tls;
mod tunnel;
mod workers;

use crate::admin::AdminState;
use crate::compare::{Comparator, RulesError};
use crate::config::ServeConfig;
use crate::exchange::LegError;
use crate::pipeline::{Pipeline, PipelineError, PipelineHandle};
use crate::store::{RunInfo, StoreError, StoreWriter};
use crate::traffic::recorder::{Recorder, RecorderError, RecorderOptions};
use crate::upstream::{ClientError, Upstream};
use admission::Admission;
use breaker::Breaker;
pub use live::{Live, ReloadError};
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub use body::{PrimaryBody, ProxyBody};

/// Why the proxy could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The store's error names its path itself.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The client's error names the setting (`--secondary-ca`) itself.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The recorder's error names the file; `--record:` says which setting it is.
    #[error("--record: {0}")]
    Record(RecorderError),
    /// Serving went on, but the record file misses requests (a full disk): the exit status
    /// must say so, after the store is committed.
    #[error("--record: {0}")]
    RecordIncomplete(RecorderError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot start the serve workers: {0}")]
    Workers(std::io::Error),
    #[error("--admin {addr}: cannot listen: {source}")]
    Admin {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What is ready before the listener opens: if any of it fails, nothing is listening yet.
pub struct Prepared {
    store: StoreWriter,
    dropped: Arc<AtomicU64>,
    write_errors: Arc<AtomicU64>,
    lost: Arc<crate::store::LossCounters>,
    answering: Upstream<PrimaryBody>,
    shadow: Upstream,
    baseline: Option<Upstream>,
    recorder: Option<Arc<Recorder>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    live: Live,
}

impl Prepared {
    pub fn live(&self) -> Live {
        self.live.clone()
    }
}

/// Compiles the rules, opens the store and the record file, and builds the upstreams'
/// clients.
pub fn prepare(config: &ServeConfig) -> Result<Prepared, ServeError> {
    let comparator = Arc::new(Comparator::new(&config.rules)?);
    // `--answer-from`: the answering leg streams the client's request and response; the
    // other takes the shadow's complete copy. Each is built from its own leg's settings.
    let (answering, shadowed) = (config.answering_leg(), config.shadow_leg());
    let answering = Upstream::new(&answering.url, &answering.connect)?;
    let shadow = Upstream::new(&shadowed.url, &shadowed.connect)?;
    // `--baseline self` builds its own upstream to the primary: its own pool, never the
    // clients' connections.
    let baseline = match &config.baseline {
        Some(baseline) => Some(Upstream::new(&baseline.leg.url, &baseline.leg.connect)?),
        None => None,
    };
    let tls = config
        .listener
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()?;
    let dropped = Arc::new(AtomicU64::new(0));
    let write_errors = Arc::new(AtomicU64::new(0));
    let run = RunInfo {
        mode: "serve".into(),
        primary: crate::redact::url::shown(&config.primary.url),
        secondary: crate::redact::url::shown(&config.secondary.url),
        config_digest: config.digest.clone(),
        rules: comparator.rule_ids(),
        instance: config.store.instance.clone(),
        answered_by: config.answer_from,
    };
    let mut options = config.store.options(dropped.clone());
    options.write_errors = write_errors.clone();
    let lost = options.lost.clone();
    let store = StoreWriter::open(&config.store.location, run, options)?;
    let recorder = match &config.record {
        Some(record) => Some(Arc::new(
            Recorder::open(
                &record.path,
                RecorderOptions {
                    max_size: Some(record.max_size),
                    keep_secrets: record.keep_secrets,
                    redact: config.redact.clone(),
                    responses: record.responses,
                },
            )
            .map_err(ServeError::Record)?,
        )),
        None => None,
    };
    let live = Live::new(config, comparator);
    Ok(Prepared {
        store,
        dropped,
        recorder,
        write_errors,
        lost,
        answering,
        shadow,
        baseline,
        tls,
        live,
    })
}

/// The state every connection shares.
pub struct Proxy {
    pub(crate) config: ServeConfig,
    pub(crate) breaker: Option<Arc<Breaker>>,
    /// The answering leg (the primary, or the secondary with `--answer-from secondary`)
    /// gets the client's body as it streams; the shadow leg a complete copy.
    pub(crate) answering: Upstream<PrimaryBody>,
    pub(crate) shadow: Upstream,
    pub(crate) baseline: Option<shadow::BaselineLink>,
    pub(crate) admission: Admission,
    pub(crate) pipeline: PipelineHandle,
    /// `--record`: shadowed requests are appended here for a later replay.
    pub(crate) recorder: Option<Arc<Recorder>>,
    /// Set when the drain timeout has run out: shadows still running record themselves as
    /// shutdown errors and stop.
    pub(crate) abandon: watch::Sender<bool>,
}

impl Proxy {
    /// A copy for one serve worker: the same settings, limits, breaker, pipeline and
    /// recorder, with upstream pools of its own, sized by [`workers::PoolSizes`].
    fn for_worker(&self, pools: workers::PoolSizes) -> Proxy {
        Proxy {
            config: self.config.clone(),
            breaker: self.breaker.clone(),
            answering: self.answering.with_own_pool(pools.primary),
            shadow: self.shadow.with_own_pool(pools.secondary),
            baseline: self
                .baseline
                .as_ref()
                .map(|b| b.with_own_pool(pools.secondary)),
            admission: self.admission.clone(),
            pipeline: self.pipeline.clone(),
            recorder: self.recorder.clone(),
            abandon: self.abandon.clone(),
        }
    }

    /// X-Forwarded-Proto for requests that reached this listener.
    pub(crate) fn proto(&self) -> &'static str {
        if self.config.listener.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The client's request as the answering leg gets it: unchanged from the primary;
    /// from the secondary (after a cutover) with the `[[rewrite]]` changes, which are
    /// always the secondary's.
    pub(crate) fn answering_request(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: http::HeaderMap,
    ) -> Result<AnsweringRequest, crate::rewrite::RewriteFailed> {
        if self.config.answer_from == crate::exchange::Leg::Primary {
            return Ok(AnsweringRequest {
                uri: None,
                headers,
                changes: Vec::new(),
            });
        }
        Ok(match self.config.rewrites.apply(method, uri, &headers)? {
            Some(rewritten) => AnsweringRequest {
                uri: Some(rewritten.uri),
                headers: rewritten.headers,
                changes: rewritten.changes,
            },
            None => AnsweringRequest {
                uri: None,
                headers,
                changes: Vec::new(),
            },
        })
    }

    /// Sends a request to the answering leg, built by the one request builder, and waits
    /// for its response head within that leg's timeout (counted from `started`).
    pub(crate) async fn send_answering(
        &self,
        started: Instant,
        method: http::Method,
        target: &http::Uri,
        headers: http::HeaderMap,
        body: PrimaryBody,
    ) -> Result<http::Response<hyper::body::Incoming>, LegError> {
        let sent = async {
            let request = self.answering.request(
                method,
                target,
                headers,
                self.config.answering_leg().preserve_host,
                body,
            )?;
            self.answering.send(request, started).await
        };
        let timeout = self.config.answering_leg().timeout;
        crate::upstream::within(timeout, started, "response", sent).await
    }
}

/// [`Proxy::answering_request`]: the target when a rewrite changed it, the headers, and
/// what changed.
pub(crate) struct AnsweringRequest {
    pub uri: Option<http::Uri>,
    pub headers: http::HeaderMap,
    pub changes: Vec<crate::rewrite::Change>,
}

impl crate::admin::Serving for Proxy {
    fn inflight_shadows(&self) -> u64 {
        self.admission.inflight() as u64
    }

    fn shadow_memory_bytes(&self) -> u64 {
        self.admission.memory().used() as u64
    }

    fn breaker(&self) -> Option<crate::admin::BreakerStatus> {
        self.breaker.as_deref().map(breaker_status)
    }

    fn answer_from(&self) -> &'static str {
        self.config.answer_from.as_str()
    }

    fn baseline(&self) -> Option<Option<crate::admin::BreakerStatus>> {
        self.baseline
            .as_ref()
            .map(|b| b.breaker().map(breaker_status))
    }
}

/// A breaker as `/status` shows it.
fn breaker_status(b: &Breaker) -> crate::admin::BreakerStatus {
    crate::admin::BreakerStatus {
        open: b.is_open(),
        state: b.state(),
        consecutive_failures: b.consecutive_failures(),
        cooldown: b.cooldown(),
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

/// [`run`] with the admin endpoint on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn run_with_admin(
    listener: TcpListener,
    admin: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let prepared = prepare(&config)?;
    serve_with_admin(listener, Some(admin), config, prepared, shutdown).await
}

/// Accepts connections until `shutdown` resolves. Then: stop accepting, let the client
/// requests in flight finish, wait up to the drain timeout for shadows, record the ones
/// still running as shutdown errors, and commit everything to the store.
/// The admin endpoint is bound from `config.admin.addr`, if set; see [`serve_with_admin`].
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    prepared: Prepared,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let admin = match config.admin.addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Admin { addr, source })?,
        ),
        None => None,
    };
    serve_with_admin(listener, admin, config, prepared, shutdown).await
}

/// [`serve`] with the admin endpoint (if any) on a listener bound by the caller.
pub async fn serve_with_admin(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: ServeConfig,
    prepared: Prepared,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let Prepared {
        store,
        dropped,
        write_errors,
        lost,
        answering,
        shadow,
        baseline,
        recorder,
        tls,
        live,
    } = prepared;
    let store_link = store.sender().downgrade();
    let store_state = store.state();
    let pipeline = Pipeline::start_live(
        live.rules(),
        config.redact.clone(),
        store,
        dropped.clone(),
        config.shadow.max_inflight.max(1024),
        Some(live.metrics().clone()),
        config.baseline.as_ref().map(|b| b.noise),
    );
    let (abandon, _) = watch::channel(false);
    let drain_timeout = config.listener.drain_timeout;
    let breaker = Breaker::from_config(&config.shadow.breaker).map(Arc::new);
    let runtime: control::RuntimeCell = Default::default();
    let mut admission = Admission::new(&config.shadow)
        .with_sampling(live.sampling())
        .with_runtime(runtime.clone());
    if let Some(breaker) = &breaker {
        admission = admission.with_breaker(breaker.clone());
    }
    let baseline = match (baseline, &config.baseline) {
        (Some(upstream), Some(settings)) => Some(shadow::BaselineLink::new(
            upstream,
            settings,
            &config.shadow.breaker,
        )),
        _ => None,
    };
    let proxy = Arc::new(Proxy {
        admission,
        breaker,
        answering,
        shadow,
        baseline,
        pipeline: pipeline.handle(),
        recorder: recorder.clone(),
        abandon,
        config,
    });

    let admin_task = admin.map(|admin| {
        let serving: std::sync::Weak<dyn crate::admin::Serving> =
            Arc::downgrade(&proxy) as std::sync::Weak<Proxy>;
        let state = AdminState {
            started: Instant::now(),
            proxy: serving,
            metrics: live.metrics().clone(),
            config_digest: live.digest_cell(),
            tally: pipeline.tally(),
            store: store_link,
            dropped,
            write_errors,
            lost,
            store_state,
            runtime: runtime.clone(),
            sampling: live.sampling(),
            token: proxy.config.admin.token.clone(),
            unauthorized: Default::default(),
            dashboard: Some(crate::dashboard::Dashboard {
                location: proxy.config.store.location.clone(),
                started_ms: crate::store::millis_since_epoch(std::time::SystemTime::now()),
                token: proxy.config.admin.token.clone(),
            }),
        };
        tokio::spawn(crate::admin::serve(admin, Arc::new(state)))
    });

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let max_connections = proxy.config.listener.max_connections.unwrap_or_else(|| {
        listener::default_max_connections(
            listener::open_file_limit(),
            proxy.config.shadow.max_inflight,
        )
    });
    let settings = Arc::new(listener::ListenerSettings {
        tls,
        header_read_timeout: proxy.config.listener.header_read_timeout,
        max_connections,
        metrics: live.metrics().connections().clone(),
    });
    let mut workers = workers::Workers::start(workers::default_count(), &proxy, &settings)
        .map_err(ServeError::Workers)?;
    listener::accept_loop(
        &listener,
        proxy.clone(),
        settings,
        |accepted| workers.dispatch(accepted),
        &graceful,
        shutdown,
    )
    .await;
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
    workers.finish().await;
    drop(proxy);
    let mut record_error = None;
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
            Ok((Err(error), _)) => {
                tracing::error!(%error, "closing the record file");
                record_error = Some(error);
            }
            Err(_) => tracing::error!("the record file's writer panicked"),
        }
    }
    if let Some(task) = admin_task {
        task.abort();
    }
    tokio::task::spawn_blocking(move || pipeline.finish())
        .await
        .map_err(|_| PipelineError::FinishPanicked)??;
    match record_error {
        Some(error) => Err(ServeError::RecordIncomplete(error)),
        None => Ok(()),
    }
}
