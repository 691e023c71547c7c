//! The primary leg: the client's request goes to the primary and the primary's response
//! comes back to the client, streamed both ways. When the request is shadowed, the bodies
//! are teed ([`super::capture`]) and a shadow task is started; nothing here awaits it.

use super::body::WatchedBody;
use super::body::{PrimaryBody, ProxyBody};
use super::capture::{PrimaryCapture, RequestTee, ResponseTee};
use super::peer::Peer;
use super::refusal::{refusal, Refusal};
use super::response::{build_response, error_response, passthrough};
use super::shadow::{run_shadow, ShadowBody, ShadowRequest};
use super::Proxy;
use crate::exchange::{Observation, SkipReason};
use crate::upstream::{forwarded_headers, strip_hop_by_hop};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Handles one client request. Never fails: upstream trouble becomes a 502 or 504.
pub async fn handle(
    proxy: Arc<Proxy>,
    request: Request<Incoming>,
    client: &Peer,
) -> Result<Response<ProxyBody>, Infallible> {
    let at = SystemTime::now();
    // No request leaves the base path (issue 12, bug 2), and none whose framing two hops
    // could read differently goes anywhere. Decided here, before the upgrade branch so
    // tunnels are covered too; the normalized target replaces the client's, so every leg,
    // the route key and the stored request see the same path.
    let mut request = request;
    if let Some(refusal) = refusal(&mut request) {
        proxy.pipeline.offer(Observation::Skipped {
            at,
            method: request.method().clone(),
            path: request.uri().path().to_string(),
            reason: SkipReason::Refused,
        });
        return Ok(refusal.response());
    }
    if request.method() == Method::CONNECT || is_upgrade(&request) {
        return Ok(super::tunnel::handle(proxy, request, client, at).await);
    }
    let (mut parts, body) = request.into_parts();
    let (body, body_failed) = WatchedBody::new(body);
    let admitted = proxy.admission.admit(&parts);
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let client_headers = std::mem::take(&mut parts.headers);
    let headers = forwarded_headers(
        client_headers,
        &client.forwarded_for,
        proxy.proto(),
        host.as_ref(),
    );

    let leg = proxy.config.answer_from;
    let permit = match admitted {
        Ok(permit) => permit,
        Err(reason) => {
            proxy.pipeline.offer(Observation::Skipped {
                at,
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                reason,
            });
            let answering = match proxy.answering_request(&parts.method, &parts.uri, headers) {
                Ok(answering) => answering,
                Err(failed) => return Ok(error_response(&failed.leg_error(), leg)),
            };
            let sent = proxy.send_answering(
                Instant::now(),
                parts.method,
                answering.uri.as_ref().unwrap_or(&parts.uri),
                answering.headers,
                PrimaryBody::Client(body),
            );
            return Ok(match sent.await {
                Ok(response) => passthrough(response),
                Err(_) if body_failed.get() => Refusal::MalformedBody.response(),
                Err(error) => error_response(&error, leg),
            });
        }
    };
    // The shadow's copy is the client's request; the answering leg's is rewritten when it
    // is the secondary. Decided before the shadow starts, so it knows what was changed.
    let shadow_headers = headers.clone();
    // HTTP/2 clients send absolute URIs; the recorded request keeps path and query.
    let recorded_uri = crate::upstream::target::origin_form(&parts.uri);
    let mut answering = match proxy.answering_request(&parts.method, &recorded_uri, headers) {
        Ok(answering) => answering,
        Err(failed) => {
            // Nothing can be asked of the secondary, which answers: no shadow either, and
            // the request is counted with why.
            if let Some(breaker) = &proxy.breaker {
                breaker.release(permit.ticket);
            }
            proxy.pipeline.offer(Observation::Skipped {
                at,
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                reason: SkipReason::RewriteFailed,
            });
            return Ok(error_response(&failed.leg_error(), leg));
        }
    };
    let answered_rewrites = std::mem::take(&mut answering.changes);

    // Shadowed: tee the request body unless there is none.
    let (primary_body, shadow_body) = if body.is_end_stream() {
        (
            PrimaryBody::from(Bytes::new()),
            ShadowBody::Ready(Bytes::new()),
        )
    } else {
        let (tee, rx) = RequestTee::new(body, proxy.config.shadow.max_body, permit.memory.clone());
        (PrimaryBody::Teed(Box::new(tee)), ShadowBody::Pending(rx))
    };
    let shadow = ShadowRequest {
        at,
        method: parts.method.clone(),
        uri: recorded_uri,
        headers: shadow_headers,
        body: shadow_body,
        answered_rewrites,
    };
    let (primary_tx, primary_rx) = tokio::sync::oneshot::channel();
    let memory = permit.memory.clone();
    tokio::spawn(run_shadow(proxy.clone(), shadow, primary_rx, permit));

    let started = Instant::now();
    let target = answering.uri.as_ref().unwrap_or(&parts.uri);
    let sent = proxy.send_answering(
        started,
        parts.method,
        target,
        answering.headers,
        primary_body,
    );
    match sent.await {
        Ok(response) => {
            let (mut head, body) = response.into_parts();
            strip_hop_by_hop(&mut head.headers);
            let tee = ResponseTee::new(
                body,
                head.status,
                head.headers.clone(),
                started,
                proxy.config.shadow.max_body,
                memory,
                primary_tx,
            );
            Ok(build_response(
                head.status,
                head.headers,
                ProxyBody::Teed(Box::new(tee)),
            ))
        }
        // The shadow sees the same failed body through the tee and counts the request as
        // `request_incomplete`, so the primary is not blamed there either.
        Err(_) if body_failed.get() => Ok(Refusal::MalformedBody.response()),
        Err(error) => {
            let response = error_response(&error, leg);
            let _ = primary_tx.send(PrimaryCapture::Done(Err(error)));
            Ok(response)
        }
    }
}

/// An HTTP/1.1 upgrade request (RFC 9110 section 7.8), e.g. WebSocket.
fn is_upgrade(request: &Request<Incoming>) -> bool {
    request.headers().contains_key(header::UPGRADE)
        && request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}
