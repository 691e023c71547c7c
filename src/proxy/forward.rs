//! The primary leg: the client's request goes to the primary and the primary's response
//! comes back to the client, streamed both ways. When the request is shadowed, the bodies
//! are teed ([`super::capture`]) and a shadow task is started; nothing here awaits it.

use super::capture::{PrimaryCapture, RequestTee, ResponseTee};
use super::refusal::{refusal, Refusal, WatchedBody};
use super::shadow::{run_shadow, ShadowBody, ShadowRequest};
use super::{Proxy, ProxyBody};
use crate::exchange::{ErrorKind, LegError, Observation, SkipReason};
use crate::upstream::{forwarded_headers, strip_hop_by_hop};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Handles one client request. Never fails: upstream trouble becomes a 502 or 504.
pub async fn handle(
    proxy: Arc<Proxy>,
    request: Request<Incoming>,
    client: SocketAddr,
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
    let (parts, body) = request.into_parts();
    let (body, body_failed) = WatchedBody::new(body);
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let headers = forwarded_headers(&parts.headers, client.ip(), proxy.proto(), host.as_ref());
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .to_string();

    let admitted = proxy.admission.admit(&parts);
    let permit = match admitted {
        Ok(permit) => permit,
        Err(reason) => {
            proxy.pipeline.offer(Observation::Skipped {
                at,
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                reason,
            });
            let upstream = proxy.primary.send(
                &proxy.client,
                parts.method,
                &path_and_query,
                headers,
                proxy.config.preserve_host,
                reqwest::Body::wrap(body),
            );
            return Ok(match proxy.primary_deadline(upstream).await {
                Ok(response) => passthrough(response),
                Err(_) if body_failed.get() => Refusal::MalformedBody.response(),
                Err(error) => error_response(&error),
            });
        }
    };

    // Shadowed: tee the request body unless there is none.
    let (primary_body, shadow_body) = if body.is_end_stream() {
        (
            reqwest::Body::from(Bytes::new()),
            ShadowBody::Ready(Bytes::new()),
        )
    } else {
        let (tee, rx) = RequestTee::new(body, proxy.config.max_body, permit.memory.clone());
        (reqwest::Body::wrap(tee), ShadowBody::Pending(rx))
    };
    let shadow = ShadowRequest {
        at,
        method: parts.method.clone(),
        uri: origin_form(&parts.uri),
        headers: headers.clone(),
        body: shadow_body,
    };
    let (primary_tx, primary_rx) = tokio::sync::oneshot::channel();
    let memory = permit.memory.clone();
    tokio::spawn(run_shadow(proxy.clone(), shadow, primary_rx, permit));

    let started = Instant::now();
    let upstream = proxy.primary.send(
        &proxy.client,
        parts.method,
        &path_and_query,
        headers,
        proxy.config.preserve_host,
        primary_body,
    );
    match proxy.primary_deadline(upstream).await {
        Ok(response) => {
            let status = response.status();
            let mut response_headers = response.headers().clone();
            strip_hop_by_hop(&mut response_headers);
            let tee = ResponseTee::new(
                reqwest::Body::from(response),
                status,
                response_headers.clone(),
                started,
                proxy.config.max_body,
                memory,
                primary_tx,
            );
            Ok(build_response(
                status,
                response_headers,
                tee.map_err(box_error).boxed_unsync(),
            ))
        }
        // The shadow sees the same failed body through the tee and counts the request as
        // `request_incomplete`, so the primary is not blamed there either.
        Err(_) if body_failed.get() => Ok(Refusal::MalformedBody.response()),
        Err(error) => {
            let response = error_response(&error);
            let _ = primary_tx.send(PrimaryCapture::Done(Err(error)));
            Ok(response)
        }
    }
}

/// The primary's response as the client gets it: hop-by-hop headers removed, body streamed.
pub(super) fn passthrough(response: reqwest::Response) -> Response<ProxyBody> {
    let status = response.status();
    let mut headers = response.headers().clone();
    strip_hop_by_hop(&mut headers);
    let body = reqwest::Body::from(response)
        .map_err(box_error)
        .boxed_unsync();
    build_response(status, headers, body)
}

pub(super) fn build_response(
    status: StatusCode,
    headers: http::HeaderMap,
    body: ProxyBody,
) -> Response<ProxyBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// 502 when the primary cannot be reached or answers garbage, 504 when it is too slow:
/// one plain-text line that says which.
pub fn error_response(error: &LegError) -> Response<ProxyBody> {
    let status = match error.kind {
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    tracing::debug!(%error, "primary failed");
    // The error's message can name the upstream's address or URL; the client's page names
    // only the kind, so a 502 tells an outsider nothing about the topology behind it.
    let text = format!("shadowdiff: primary {}\n", error.kind.as_str());
    plain_text(status, text)
}

/// A short plain-text answer of shadowdiff's own.
pub(super) fn plain_text(status: StatusCode, text: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let body = Full::new(text.into()).map_err(box_error).boxed_unsync();
    build_response(status, headers, body)
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

/// HTTP/2 clients send absolute URIs; the recorded request keeps path and query only.
fn origin_form(uri: &http::Uri) -> http::Uri {
    match uri.path_and_query() {
        Some(pq) if uri.scheme().is_some() => pq.as_str().parse().unwrap_or_else(|_| uri.clone()),
        _ => uri.clone(),
    }
}

pub fn box_error<E: Into<super::BoxError>>(error: E) -> super::BoxError {
    error.into()
}
