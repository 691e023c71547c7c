//! Upgrade (WebSocket) requests: a tunnel between the client and the primary, never
//! shadowed, because a byte stream in both directions has no single response to compare.
//! They are counted as skipped with reason `upgrade`.

use super::body::{PrimaryBody, ProxyBody};
use super::peer::Peer;
use super::refusal::{upgrade_with_body, Refusal};
use super::response::{build_response, error_response, passthrough, plain_text};
use super::Proxy;
use crate::exchange::{Observation, SkipReason};
use crate::upstream::forwarded_headers;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::SystemTime;

pub async fn handle(
    proxy: Arc<Proxy>,
    mut request: Request<Incoming>,
    client: &Peer,
    at: SystemTime,
) -> Response<ProxyBody> {
    let refused = upgrade_with_body(&request);
    proxy.pipeline.offer(Observation::Skipped {
        at,
        method: request.method().clone(),
        path: request.uri().path().to_string(),
        reason: if refused {
            SkipReason::Refused
        } else {
            SkipReason::Upgrade
        },
    });
    if refused {
        return Refusal::UpgradeWithBody.response();
    }
    if request.method() == Method::CONNECT {
        // A reverse proxy has no business opening arbitrary tunnels (RFC 9110 section 9.3.6
        // is for forward proxies); nginx answers the same way.
        return plain_text(
            StatusCode::METHOD_NOT_ALLOWED,
            "shadowdiff: CONNECT is not supported by a reverse proxy\n",
        );
    }
    let client_upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    let host = parts.headers.get(header::HOST).cloned();
    let mut headers = forwarded_headers(
        parts.headers,
        &client.forwarded_for,
        proxy.proto(),
        host.as_ref(),
    );
    // No body is sent (one that was declared is refused above): no framing header either.
    headers.remove(header::CONTENT_LENGTH);
    // The hop-by-hop pair that asks for the upgrade is what this hop is for.
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(protocol) = protocol {
        headers.insert(header::UPGRADE, protocol);
    }
    let leg = proxy.config.answer_from;
    let answering = match proxy.answering_request(&parts.method, &parts.uri, headers) {
        Ok(answering) => answering,
        Err(failed) => return error_response(&failed.leg_error(), leg),
    };
    let sent = proxy.send_answering(
        std::time::Instant::now(),
        parts.method,
        answering.uri.as_ref().unwrap_or(&parts.uri),
        answering.headers,
        PrimaryBody::from(Bytes::new()),
    );
    let mut response = match sent.await {
        Ok(response) => response,
        Err(error) => return error_response(&error, leg),
    };
    let status = response.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return passthrough(response);
    }
    // The 101's Connection and Upgrade headers are what the client's hop needs.
    let response_headers = std::mem::take(response.headers_mut());
    let upstream_upgrade = hyper::upgrade::on(response);
    tokio::spawn(async move {
        let upstream = match upstream_upgrade.await {
            Ok(upstream) => upstream,
            Err(error) => {
                tracing::debug!(%error, "primary upgrade failed");
                return;
            }
        };
        let client = match client_upgrade.await {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(%error, "client upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
    build_response(status, response_headers, ProxyBody::empty())
}
