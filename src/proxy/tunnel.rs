//! Upgrade (WebSocket) requests: a tunnel between the client and the primary, never
//! shadowed, because a byte stream in both directions has no single response to compare.
//! They are counted as skipped with reason `upgrade`.

use super::forward::{box_error, error_response};
use super::{Proxy, ProxyBody};
use crate::exchange::{Observation, SkipReason};
use crate::upstream::{forwarded_headers, strip_hop_by_hop};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

pub async fn handle(
    proxy: Arc<Proxy>,
    mut request: Request<Incoming>,
    client: SocketAddr,
    at: SystemTime,
) -> Response<ProxyBody> {
    proxy.pipeline.offer(Observation::Skipped {
        at,
        method: request.method().clone(),
        path: request.uri().path().to_string(),
        reason: SkipReason::Upgrade,
    });
    if request.method() == Method::CONNECT {
        // A reverse proxy has no business opening arbitrary tunnels (RFC 9110 section 9.3.6
        // is for forward proxies); nginx answers the same way.
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "shadowdiff: CONNECT is not supported by a reverse proxy\n",
        );
    }
    let client_upgrade = hyper::upgrade::on(&mut request);
    let (parts, _body) = request.into_parts();
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    let host = parts.headers.get(header::HOST).cloned();
    let mut headers = forwarded_headers(&parts.headers, client.ip(), "http", host.as_ref());
    // The hop-by-hop pair that asks for the upgrade is what this hop is for.
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(protocol) = protocol {
        headers.insert(header::UPGRADE, protocol);
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let sent = proxy.primary.send(
        &proxy.client,
        parts.method,
        path_and_query,
        headers,
        proxy.config.preserve_host,
        reqwest::Body::from(Bytes::new()),
    );
    let response = match proxy.primary_deadline(sent).await {
        Ok(response) => response,
        Err(error) => return error_response(&error),
    };
    let status = response.status();
    let mut response_headers = response.headers().clone();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        strip_hop_by_hop(&mut response_headers);
        let body = reqwest::Body::from(response)
            .map_err(box_error)
            .boxed_unsync();
        let mut out = Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = response_headers;
        return out;
    }
    tokio::spawn(async move {
        let upstream = match response.upgrade().await {
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
        let mut upstream = upstream;
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
    let mut out = Response::new(Full::new(Bytes::new()).map_err(box_error).boxed_unsync());
    *out.status_mut() = status;
    *out.headers_mut() = response_headers;
    out
}

fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(box_error)
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
