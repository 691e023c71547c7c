//! The admin listener: `/metrics`, `/healthz` and `/status`, on an address of its own so that
//! operators and scrapers never share, or get mistaken for, the proxied traffic.

use crate::metrics::Metrics;
use crate::metrics::Snapshot;
use crate::pipeline::Tally;
use crate::store::Record;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;
use tokio::net::TcpListener;

/// What the admin endpoints need from the running proxy. The proxy implements it
/// (src/proxy/mod.rs), so this module depends on nothing of the proxy's.
pub trait Serving: Send + Sync {
    fn inflight_shadows(&self) -> u64;
    fn shadow_memory_bytes(&self) -> u64;
    /// `None` when the breaker is off (`--breaker-threshold 0`).
    fn breaker(&self) -> Option<BreakerStatus>;
    /// `None` without `--baseline`; else the baseline's own breaker, if breakers are on.
    fn baseline(&self) -> Option<Option<BreakerStatus>>;
    /// `primary` or `secondary`: whose responses the clients get (`--answer-from`).
    fn answer_from(&self) -> &'static str;
}

/// The secondary's circuit breaker as `/status` shows it.
pub struct BreakerStatus {
    pub open: bool,
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub cooldown: std::time::Duration,
}

/// What the admin endpoints read. The proxy is held weakly: once it has shut down, the
/// admin reports unhealthy instead of keeping it alive.
pub struct AdminState {
    pub started: Instant,
    pub proxy: Weak<dyn Serving>,
    pub metrics: Arc<Metrics>,
    /// The digest of the configuration in effect (it changes on reload).
    pub config_digest: Arc<ArcSwap<String>>,
    pub tally: Arc<Tally>,
    /// The store writer's queue; weak so it never delays the writer's end.
    pub store: flume::WeakSender<Record>,
    pub dropped: Arc<AtomicU64>,
    pub write_errors: Arc<AtomicU64>,
    pub lost: Arc<crate::store::LossCounters>,
    /// Where the store is and whether it is reachable.
    pub store_state: Arc<crate::store::StoreState>,
    /// What `/shadow/*` changes, and the file's sampling it overrides.
    pub runtime: crate::proxy::control::RuntimeCell,
    pub sampling: Arc<ArcSwap<crate::proxy::admission::Sampling>>,
    /// `--admin-token`: required by the mutating endpoints once set.
    pub token: Option<crate::config::AdminToken>,
    /// Mutating requests refused for a missing or wrong token.
    pub unauthorized: AtomicU64,
    /// The page at `/` and its data, when the store can be read back.
    pub dashboard: Option<crate::dashboard::Dashboard>,
}

impl AdminState {
    fn store_alive(&self) -> bool {
        self.store
            .upgrade()
            .is_some_and(|sender| !sender.is_disconnected())
    }

    fn snapshot(&self, proxy: Option<&dyn Serving>) -> Snapshot {
        Snapshot {
            inflight_shadows: proxy.map_or(0, |p| p.inflight_shadows()),
            shadow_memory_bytes: proxy.map_or(0, |p| p.shadow_memory_bytes()),
            store_queue_depth: self.store.upgrade().map_or(0, |s| s.len() as u64),
            store_dropped: self.dropped.load(Ordering::Relaxed),
            store_write_errors: self.write_errors.load(Ordering::Relaxed),
            store_lost: crate::store::LossReason::ALL.map(|reason| self.lost.get(reason)),
            store_connected: self.store_state.connected(),
            sample_file: self.sampling.load().rate,
            sample_override: self.runtime.load().rate,
            paused: self.runtime.load().paused,
            admin_unauthorized: self.unauthorized.load(Ordering::Relaxed),
            breaker_open: proxy.and_then(|p| p.breaker()).is_some_and(|b| b.open),
        }
    }

    fn status(&self, proxy: Option<&dyn Serving>) -> serde_json::Value {
        let now = self.snapshot(proxy);
        let shown = |b: BreakerStatus| {
            serde_json::json!({
                "state": b.state,
                "consecutive_failures": b.consecutive_failures,
                "cooldown_seconds": b.cooldown.as_secs_f64(),
            })
        };
        let disabled = || serde_json::json!({ "state": "disabled" });
        let breaker = proxy.and_then(|p| p.breaker()).map(shown);
        let baseline = match proxy.and_then(|p| p.baseline()) {
            None => serde_json::json!({ "configured": false }),
            Some(breaker) => serde_json::json!({
                "configured": true,
                "breaker": breaker.map(shown).unwrap_or_else(disabled),
            }),
        };
        let (reloads_applied, reloads_rejected) = self.metrics.reloads();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config_digest": self.config_digest.load().as_str(),
            "serving": proxy.is_some(),
            "answer_from": proxy.map(|p| p.answer_from()),
            "store_alive": self.store_alive(),
            "counters": {
                "matched": self.tally.matched.load(Ordering::Relaxed),
                "mismatched": self.tally.mismatched.load(Ordering::Relaxed),
                "errors": self.tally.errors.load(Ordering::Relaxed),
                "skipped": self.tally.skipped.load(Ordering::Relaxed),
                "dropped": now.store_dropped,
                "store_write_errors": now.store_write_errors,
                "store_lost": now.store_lost.iter().sum::<u64>(),
                "inflight_shadows": now.inflight_shadows,
                "shadow_memory_bytes": now.shadow_memory_bytes,
                "store_queue_depth": now.store_queue_depth,
                "config_reloads_applied": reloads_applied,
                "config_reloads_rejected": reloads_rejected,
            },
            "breaker": breaker.unwrap_or_else(disabled),
            "baseline": baseline,
            "shadow": {
                "sample": {
                    "file": self.sampling.load().rate,
                    "override": self.runtime.load().rate,
                },
                "runtime": self.runtime.load().to_json(),
                "unauthorized_requests": self.unauthorized.load(Ordering::Relaxed),
            },
            "store": {
                "engine": self.store_state.engine,
                "location": self.store_state.shown,
                "connected": self.store_state.connected(),
                "writer_alive": self.store_alive(),
                "queue_depth": now.store_queue_depth,
                "lost": crate::store::LossReason::ALL
                    .iter()
                    .zip(now.store_lost)
                    .map(|(reason, n)| (reason.as_str().to_string(), serde_json::json!(n)))
                    .collect::<serde_json::Map<_, _>>(),
            },
        })
    }
}

/// Serves the admin endpoints until the task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        let (stream, _) = crate::accept::next(&listener, "admin").await;
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move {
                    if let Some(dashboard) = state
                        .dashboard
                        .as_ref()
                        .filter(|_| crate::dashboard::owns(request.uri().path()))
                    {
                        let (method, path, query, headers) = crate::dashboard::parts(&request);
                        let response = crate::dashboard::handle(
                            dashboard,
                            &method,
                            &path,
                            query.as_deref(),
                            &headers,
                            &state.unauthorized,
                        )
                        .await;
                        return Ok::<_, Infallible>(response);
                    }
                    if request.uri().path().starts_with("/shadow/") {
                        return Ok::<_, Infallible>(control(&state, request).await);
                    }
                    Ok::<_, Infallible>(respond(&state, &request))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(state: &AdminState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET only\n".into(),
        );
    }
    let proxy = state.proxy.upgrade();
    match request.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(state.snapshot(proxy.as_deref())),
        ),
        "/healthz" => {
            if proxy.is_some() && state.store_alive() {
                reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
            } else {
                let why = if proxy.is_none() {
                    "not serving\n"
                } else {
                    "store writer stopped\n"
                };
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    why.into(),
                )
            }
        }
        "/status" => reply(
            StatusCode::OK,
            "application/json",
            format!("{:#}\n", state.status(proxy.as_deref())),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics, /healthz or /status\n".into(),
        ),
    }
}

/// `POST /shadow/pause`, `POST /shadow/resume`, `PUT /shadow/sample` (`{"rate": 0.1}` or
/// `{"route": "GET /users/{id}", "rate": 0.5}`), `DELETE /shadow/sample`: runtime changes,
/// answered with the runtime state after them. With a token configured, every one needs
/// `Authorization: Bearer <token>` (RFC 6750 section 2.1), on every address.
async fn control(state: &AdminState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    use crate::proxy::control::{apply, Change};
    use http_body_util::BodyExt;
    let json = "application/json";
    let error = |status, message: String| {
        reply(
            status,
            json,
            format!("{}\n", serde_json::json!({ "error": message })),
        )
    };
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !token.matches(given.trim()) {
            state.unauthorized.fetch_add(1, Ordering::Relaxed);
            let mut refused = error(
                StatusCode::UNAUTHORIZED,
                "a missing or wrong bearer token (--admin-token)".into(),
            );
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"shadowdiff\""),
            );
            return refused;
        }
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let body = match http_body_util::Limited::new(request.into_body(), 64 * 1024)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "a body over 64 KiB".into()),
    };
    let change = match (method.as_str(), path.as_str()) {
        ("POST", "/shadow/pause") => Change::Pause,
        ("POST", "/shadow/resume") => Change::Resume,
        ("DELETE", "/shadow/sample") => Change::DropSamples,
        ("PUT", "/shadow/sample") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Sample {
                rate: serde_json::Value,
                route: Option<String>,
            }
            let asked: Sample = match serde_json::from_slice(&body) {
                Ok(asked) => asked,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("expected {{\"rate\": 0.1}} or {{\"route\": \"GET /x\", \"rate\": 0.5}}: {e}"),
                    )
                }
            };
            let text = match &asked.rate {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match crate::config::parse_rate(&text) {
                Ok(rate) => Change::Sample {
                    route: asked.route,
                    rate,
                },
                Err(reason) => return error(StatusCode::BAD_REQUEST, format!("rate: {reason}")),
            }
        }
        (_, "/shadow/pause" | "/shadow/resume" | "/shadow/sample") => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST /shadow/pause, POST /shadow/resume, PUT or DELETE /shadow/sample".into(),
            )
        }
        _ => return error(StatusCode::NOT_FOUND, format!("no endpoint {path}")),
    };
    match apply(&state.runtime, change) {
        Ok(now) => {
            tracing::info!(change = %format!("{method} {path}"), state = %now.to_json(), "admin: shadow changed at runtime");
            reply(StatusCode::OK, json, format!("{:#}\n", now.to_json()))
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

/// An answer of the admin listener's own: status, media type, body.
pub(crate) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
