//! The shadow leg: a task of its own per shadowed request, so nothing the shadowed upstream
//! does (slow, down, resetting, answering garbage) can reach the client's response. The
//! shadow goes to the secondary, or to the primary with `--answer-from secondary`; either
//! way the exchange is judged as primary against secondary.

use super::admission::Admitted;
use super::breaker::Breaker;
use super::capture::{PrimaryCapture, RequestBodyResult};
use super::Proxy;
use crate::budget::Reservation;
use crate::config::{BaselineConfig, BaselineTarget, BreakerConfig, LegConfig};
use crate::exchange::{
    is_write, BaselineLeg, BaselineSkip, ErrorKind, Exchange, Leg, LegError, LegOutcome,
    Observation, RecordedRequest, SkipReason,
};
use crate::rewrite::Rewritten;
use crate::upstream::{Fetch, FetchOptions, Upstream};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, Semaphore};

/// Where the shadow gets the request body from: known at once (no body), or from the tee
/// on the primary's request once the client has sent all of it.
pub enum ShadowBody {
    Ready(Bytes),
    Pending(oneshot::Receiver<RequestBodyResult>),
}

/// Everything a shadow needs, taken from the client's request before it is forwarded.
pub struct ShadowRequest {
    pub at: SystemTime,
    pub method: Method,
    pub uri: Uri,
    /// The prepared end-to-end headers, the same the primary got.
    pub headers: HeaderMap,
    pub body: ShadowBody,
    /// With `--answer-from secondary`: what `[[rewrite]]` changed in the answering leg's
    /// request (the secondary's), for the stored exchange.
    pub answered_rewrites: Vec<crate::rewrite::Change>,
}

/// Sends the shadow, waits for the primary's captured response, and hands the pair to the
/// pipeline. Runs detached; the permit bounds how many exist at once.
pub async fn run_shadow(
    proxy: Arc<Proxy>,
    request: ShadowRequest,
    primary: oneshot::Receiver<PrimaryCapture>,
    admitted: Admitted,
) {
    let (at, method, uri) = (request.at, request.method.clone(), request.uri.clone());
    let mut abandon = proxy.abandon.subscribe();
    let (observation, secondary) = tokio::select! {
        shadowed = shadow_exchange(&proxy, request, primary, &admitted.memory) => shadowed,
        _ = abandon.wait_for(|abandoned| *abandoned) => {
            let observation = shutdown_exchange(at, method, uri);
            (observation, Sent::Yes { failed: false })
        }
    };
    if let Some(breaker) = &proxy.breaker {
        match secondary {
            Sent::Yes { failed } => breaker.record(admitted.ticket, failed),
            // Never sent (the client's body did not complete): says nothing about the secondary.
            Sent::No => breaker.release(admitted.ticket),
        }
    }
    // The buffers stay counted against the budget until the exchange has been compared.
    proxy.pipeline.offer_held(observation, admitted.memory);
    drop(admitted.permit);
}

/// Errors and timeouts count against the shadowed upstream (or the baseline); an answer of
/// any status, or a body over max-body, shows it is up.
fn shadow_failed(outcome: &LegOutcome) -> bool {
    match outcome {
        Ok(_) => false,
        Err(error) => matches!(
            error.kind,
            ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Protocol
                | ErrorKind::HeadTooLarge
                | ErrorKind::Incomplete
        ),
    }
}

/// Whether the secondary got the shadow, and how it did: what the breaker learns.
enum Sent {
    No,
    Yes { failed: bool },
}

async fn shadow_exchange(
    proxy: &Proxy,
    request: ShadowRequest,
    primary: oneshot::Receiver<PrimaryCapture>,
    memory: &Reservation,
) -> (Observation, Sent) {
    let ShadowRequest {
        at,
        method,
        uri,
        headers,
        body,
        answered_rewrites,
    } = request;
    let body = match body {
        ShadowBody::Ready(bytes) => Ok(bytes),
        // A dropped sender means the primary's request was abandoned before its end.
        ShadowBody::Pending(rx) => rx.await.unwrap_or(Err(SkipReason::RequestIncomplete)),
    };
    let body = match body {
        Ok(body) => body,
        Err(reason) => {
            let skipped = Observation::Skipped {
                at,
                method,
                path: uri.path().to_string(),
                reason,
            };
            return (skipped, Sent::No);
        }
    };
    let request = RecordedRequest {
        method,
        uri,
        headers,
        body,
    };
    // With --record-responses the line waits for the primary's answer, below.
    if let Some(recorder) = proxy.recorder.as_ref().filter(|r| !r.records_responses()) {
        recorder.record_at(at, &request);
    }
    // The secondary's copy only: the primary already has the client's request, and the
    // baseline must get exactly what the primary got. After a cutover the shadow is the
    // primary's copy, never rewritten.
    let shadows_secondary = proxy.config.answer_from == Leg::Primary;
    let rewritten = match shadows_secondary
        .then(|| {
            proxy
                .config
                .rewrites
                .apply(&request.method, &request.uri, &request.headers)
        })
        .transpose()
        .map(Option::flatten)
    {
        Ok(rewritten) => rewritten,
        Err(_) => {
            // Counted, never logged: the target may carry a query secret.
            record_request_alone(proxy, at, &request);
            let skipped = Observation::Skipped {
                at,
                method: request.method,
                path: request.uri.path().to_string(),
                reason: SkipReason::RewriteFailed,
            };
            return (skipped, Sent::No);
        }
    };
    // The baseline's copy goes out with the secondary's, under the same permit and budget.
    let (shadowed, baseline) = tokio::join!(
        send_shadow(proxy, &request, rewritten.as_ref(), memory),
        send_baseline(proxy, &request, memory),
    );
    let sent = Sent::Yes {
        failed: shadow_failed(&shadowed),
    };
    if memory.refused() {
        // Part of this shadow (the secondary's answer, or the primary's copy so far) did not
        // fit in the budget: nothing whole to compare. Going now also tells the primary's
        // tee to stop copying.
        record_request_alone(proxy, at, &request);
        let skipped = Observation::Skipped {
            at,
            method: request.method,
            path: request.uri.path().to_string(),
            reason: SkipReason::Overload,
        };
        return (skipped, Sent::Yes { failed: false });
    }
    let answered = match primary.await {
        Ok(PrimaryCapture::Done(outcome)) => outcome,
        Ok(PrimaryCapture::Skipped(reason)) => {
            record_request_alone(proxy, at, &request);
            let skipped = Observation::Skipped {
                at,
                method: request.method,
                path: request.uri.path().to_string(),
                reason,
            };
            return (skipped, sent);
        }
        Err(_) => Err(LegError {
            kind: ErrorKind::Incomplete,
            message: "the answering leg's response was never completed".into(),
            latency: Duration::ZERO,
        }),
    };
    // Judged by system, not by role: the primary's answer on the left whichever answered.
    let (primary, secondary, rewrites) = match shadows_secondary {
        true => (
            answered,
            shadowed,
            rewritten.map(|r| r.changes).unwrap_or_default(),
        ),
        false => (shadowed, answered, answered_rewrites),
    };
    if let Some(recorder) = proxy.recorder.as_ref().filter(|r| r.records_responses()) {
        recorder.record_exchange(at, &request, primary.as_ref().ok());
    }
    let exchange = Exchange {
        at,
        request,
        primary,
        secondary,
        baseline,
        rewrites,
    };
    (Observation::Exchange(Box::new(exchange)), sent)
}

/// With `--record-responses`, a request whose primary answer was not captured whole is
/// still recorded, without one (replay then counts it `no_recorded_response`).
fn record_request_alone(proxy: &Proxy, at: SystemTime, request: &RecordedRequest) {
    if let Some(recorder) = proxy.recorder.as_ref().filter(|r| r.records_responses()) {
        recorder.record_exchange(at, request, None);
    }
}

/// The same request again, built by the same code as the answering leg's, marked as a
/// shadow, with the `[[rewrite]]` changes when there are any, under the shadowed leg's own
/// settings (its timeout, trust and Host).
async fn send_shadow(
    proxy: &Proxy,
    request: &RecordedRequest,
    rewritten: Option<&Rewritten>,
    memory: &Reservation,
) -> LegOutcome {
    let (uri, headers) = match rewritten {
        Some(r) => (&r.uri, &r.headers),
        None => (&request.uri, &request.headers),
    };
    let leg = proxy.config.shadow_leg();
    let how = Fetch {
        memory: Some(memory),
        options: FetchOptions {
            preserve_host: leg.preserve_host,
            max_body: proxy.config.shadow.max_body,
            timeout: leg.timeout,
            mark: Some((&proxy.config.shadow.marker, "shadow")),
        },
    };
    proxy
        .shadow
        .fetch(how, &request.method, uri, headers, &request.body)
        .await
}

/// The baseline leg of a running proxy: its upstream, its own breaker (the secondary's
/// rules, its own state), and for `--baseline self` its own in-flight cap.
pub(crate) struct BaselineLink {
    upstream: Upstream,
    leg: LegConfig,
    breaker: Option<Arc<Breaker>>,
    /// `--baseline self`: the primary's extra copies in flight; safe methods only.
    own_permits: Option<Arc<Semaphore>>,
}

impl BaselineLink {
    pub(crate) fn new(
        upstream: Upstream,
        config: &BaselineConfig,
        breaker: &BreakerConfig,
    ) -> BaselineLink {
        BaselineLink {
            upstream,
            leg: config.leg.clone(),
            breaker: Breaker::from_config(breaker).map(Arc::new),
            own_permits: match config.target {
                BaselineTarget::Instance => None,
                BaselineTarget::Primary { max_inflight } => {
                    Some(Arc::new(Semaphore::new(max_inflight)))
                }
            },
        }
    }

    /// The baseline's own breaker, `None` when breakers are off.
    pub(crate) fn breaker(&self) -> Option<&Breaker> {
        self.breaker.as_deref()
    }

    /// The same link with a pool of its own, for one serve worker.
    pub(crate) fn with_own_pool(&self, max_idle: usize) -> BaselineLink {
        BaselineLink {
            upstream: self.upstream.with_own_pool(max_idle),
            leg: self.leg.clone(),
            breaker: self.breaker.clone(),
            own_permits: self.own_permits.clone(),
        }
    }
}

/// The request again, to the baseline, when one is configured and may take it.
async fn send_baseline(
    proxy: &Proxy,
    request: &RecordedRequest,
    memory: &Reservation,
) -> BaselineLeg {
    let Some(link) = &proxy.baseline else {
        return BaselineLeg::Absent;
    };
    let _permit = match &link.own_permits {
        None => None,
        Some(_) if is_write(&request.method, &request.headers) => {
            return BaselineLeg::NotSent(BaselineSkip::Write)
        }
        Some(permits) => match permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return BaselineLeg::NotSent(BaselineSkip::Overload),
        },
    };
    let ticket = match &link.breaker {
        None => None,
        Some(breaker) => match breaker.admit() {
            Some(ticket) => Some(ticket),
            None => return BaselineLeg::NotSent(BaselineSkip::BreakerOpen),
        },
    };
    let how = Fetch {
        memory: Some(memory),
        options: FetchOptions {
            preserve_host: link.leg.preserve_host,
            max_body: proxy.config.shadow.max_body,
            timeout: link.leg.timeout,
            mark: Some((&proxy.config.shadow.marker, "baseline")),
        },
    };
    let outcome = link
        .upstream
        .fetch(
            how,
            &request.method,
            &request.uri,
            &request.headers,
            &request.body,
        )
        .await;
    if let (Some(breaker), Some(ticket)) = (&link.breaker, ticket) {
        breaker.record(ticket, shadow_failed(&outcome));
    }
    BaselineLeg::Sent(outcome)
}

/// A shadow still running when the drain timeout ran out: counted as a shutdown error of
/// the secondary, not lost.
fn shutdown_exchange(at: SystemTime, method: Method, uri: Uri) -> Observation {
    let error = || LegError {
        kind: ErrorKind::Shutdown,
        message: "still running when the drain timeout ran out".into(),
        latency: Duration::ZERO,
    };
    Observation::Exchange(Box::new(Exchange {
        at,
        request: RecordedRequest {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        },
        primary: Err(error()),
        secondary: Err(error()),
        baseline: BaselineLeg::Absent,
        rewrites: Vec::new(),
    }))
}
