//! The responses the client gets: the primary's, passed through with its hop-by-hop
//! headers removed, and shadowdiff's own short answers (502, 504, the refusals' 400s).

use super::body::ProxyBody;
use crate::exchange::{ErrorKind, LegError};
use crate::upstream::strip_hop_by_hop;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;

/// The primary's response as the client gets it: hop-by-hop headers removed, body streamed.
pub fn passthrough(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut head, body) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    Response::from_parts(head, ProxyBody::Primary(body))
}

pub fn build_response(
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
pub fn error_response(error: &LegError, leg: crate::exchange::Leg) -> Response<ProxyBody> {
    let status = match error.kind {
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    tracing::debug!(%error, leg = leg.as_str(), "the answering leg failed");
    // The error's message can name the upstream's address or URL; the client's page names
    // only the kind, so a 502 tells an outsider nothing about the topology behind it.
    let text = format!("shadowdiff: {} {}\n", leg.as_str(), error.kind.as_str());
    plain_text(status, text)
}

/// A short plain-text answer of shadowdiff's own.
pub fn plain_text(status: StatusCode, text: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    build_response(status, headers, ProxyBody::text(text))
}
