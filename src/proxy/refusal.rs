//! Requests shadowdiff answers itself with a 400, because forwarding them would let one
//! client's bytes be read as part of another's request (desync) or reach an upstream in a
//! form it may read differently than we did. They are counted as skipped `refused`.

use super::body::ProxyBody;
use super::response::build_response;
use crate::upstream::target::{normalize_uri, TargetError};
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use http_body::Body;

/// Why a request was answered with 400 instead of being forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A target that would leave the upstream's base path or that two hops could decode
    /// differently (see [`crate::upstream::target`]).
    Target(TargetError),
    /// RFC 9112 §3.2: a server MUST respond with 400 to a request with more than one Host
    /// header field line. Two Hosts are the classic way to make two hops disagree about
    /// which site a request is for.
    DuplicateHost,
    /// An upgrade request (RFC 9110 §7.8) that declares a body. The tunnel sends none, and
    /// forwarding its Content-Length without the bytes would let the next request on the
    /// pooled connection be read as this one's body (RFC 9112 §6, §9.6).
    UpgradeWithBody,
    /// The client's body did not parse (a malformed chunked encoding, RFC 9112 §7.1): the
    /// client's fault, not the primary's, so 400 rather than 502.
    MalformedBody,
}

impl Refusal {
    fn reason(&self) -> String {
        let reason = match self {
            Refusal::Target(error) => return format!("request target refused: {error}"),
            Refusal::DuplicateHost => "more than one Host header",
            Refusal::UpgradeWithBody => "an upgrade request must not have a body",
            Refusal::MalformedBody => "malformed request body",
        };
        reason.to_string()
    }

    /// The 400 the client gets. When the request's framing is in doubt the connection is
    /// closed after it (RFC 9112 §9.6), so no unread byte is taken for the next request.
    pub fn response(&self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if matches!(self, Refusal::UpgradeWithBody | Refusal::MalformedBody) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let text = format!("shadowdiff: bad request: {}\n", self.reason());
        build_response(StatusCode::BAD_REQUEST, headers, ProxyBody::text(text))
    }
}

type Response = http::Response<ProxyBody>;

/// The checks made on a request's head before anything is forwarded; a target with
/// removable dot segments is normalized in place (RFC 3986 §5.2.4).
pub fn refusal<B: Body>(request: &mut Request<B>) -> Option<Refusal> {
    if request.headers().get_all(header::HOST).iter().count() > 1 {
        return Some(Refusal::DuplicateHost);
    }
    match normalize_uri(request.uri()) {
        Ok(None) => None,
        Ok(Some(normalized)) => {
            *request.uri_mut() = normalized;
            None
        }
        Err(error) => Some(Refusal::Target(error)),
    }
}

/// An upgrade request with a declared body (Content-Length other than 0, or any
/// Transfer-Encoding): see [`Refusal::UpgradeWithBody`].
pub fn upgrade_with_body<B: Body>(request: &Request<B>) -> bool {
    let headers = request.headers();
    let declared = headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .any(|v| v.as_bytes() != b"0");
    declared || headers.contains_key(header::TRANSFER_ENCODING) || !request.body().is_end_stream()
}
