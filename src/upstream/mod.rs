//! The one HTTP client and request builder used for both legs.
//!
//! Primary and secondary requests are built by the same functions from the same prepared
//! headers, so any difference between the two responses comes from the upstreams, never
//! from shadowdiff treating them differently.
//!
//! - [`connection`]: a replay worker's own HTTP/1.1 connection to a plain-HTTP upstream,
//!   the lean transport behind the same request preparation and the same body cap.
//! - [`target`]: the request-target check, so that no request leaves the base path.

pub mod connection;
pub mod target;

use crate::budget::Reservation;
use crate::exchange::{Captured, ErrorKind, LegError};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The largest response head (status line and header fields) read from an upstream, on
/// the transports that can bound it (replay's direct connections; HTTP/2 on the pooled
/// client). RFC 9110 section 5.4 leaves the limit to the recipient; 64 KiB is well above
/// what real APIs send and keeps a hostile head from costing more CPU than a normal answer.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Marks a request sent by shadowdiff to the secondary, so that a shadowdiff in front of the
/// secondary does not shadow it again.
pub const SHADOW_HEADER: HeaderName = HeaderName::from_static("x-shadowdiff");

/// The client both legs share. Redirects are not followed and no proxy from the environment
/// is used: shadowdiff forwards exactly one request per leg, to exactly the configured
/// upstream. Nothing decompresses: bodies pass through as the upstream sent them.
pub fn build_client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

/// The settings of every upstream client. A client that needs more (the secondary's own CA
/// or `--insecure-secondary`) adds to this builder, so both legs stay alike in everything
/// else.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        // reqwest 0.12 has no such bound for HTTP/1.1 responses: there hyper's default read
        // buffer (about 400 KB) is the limit, also reported as `head_too_large`.
        .http2_max_header_list_size(MAX_RESPONSE_HEAD as u32)
}

/// One upstream: where requests go and how its Host header reads.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The base URL without its trailing slash; the request's path and query are appended.
    prefix: String,
    /// The base URL's path without its trailing slash (`/v2`, or empty).
    base_path: String,
    /// `host[:port]` of the upstream, the Host header unless the client's is preserved.
    authority: HeaderValue,
    /// Host and port to open a plain TCP connection to; `None` for `https` upstreams,
    /// which only the pooled client (with its TLS settings) reaches.
    plain_http: Option<(String, u16)>,
}

impl Upstream {
    pub fn new(base: &reqwest::Url) -> Upstream {
        let mut prefix = base.as_str().to_string();
        while prefix.ends_with('/') {
            prefix.pop();
        }
        let base_path = base.path().trim_end_matches('/').to_string();
        let host = base.host_str().unwrap_or_default();
        let authority = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let plain_http = (base.scheme() == "http").then(|| {
            // An IPv6 literal is bracketed in a URL, not in a socket address.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host.to_string(), base.port_or_known_default().unwrap_or(80))
        });
        Upstream {
            prefix,
            base_path,
            authority: HeaderValue::from_str(&authority).expect("a URL host is a valid header"),
            plain_http,
        }
    }

    /// Where a plain-HTTP connection goes; `None` when the upstream needs TLS.
    pub fn plain_http_address(&self) -> Option<(&str, u16)> {
        self.plain_http
            .as_ref()
            .map(|(host, port)| (host.as_str(), *port))
    }

    /// The origin-form target sent on a direct connection: the base path is a prefix.
    pub fn origin_form(&self, path_and_query: &str) -> Result<http::Uri, LegError> {
        let target = under(&self.base_path, &checked(path_and_query)?);
        http::Uri::try_from(target.as_str()).map_err(|e| LegError {
            kind: ErrorKind::Protocol,
            message: format!("cannot build upstream target {target:?}: {e}"),
            latency: Duration::ZERO,
        })
    }

    /// The one Host rule of every leg: the upstream's authority, unless the client's Host
    /// is preserved and there is one.
    pub fn set_host(&self, headers: &mut HeaderMap, preserve_host: bool) {
        if !preserve_host || !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, self.authority.clone());
        }
    }

    /// The upstream URL for a request's path and query: the base path is a prefix.
    pub fn url_for(&self, path_and_query: &str) -> Result<reqwest::Url, LegError> {
        let url = under(&self.prefix, &checked(path_and_query)?);
        reqwest::Url::parse(&url).map_err(|e| LegError {
            kind: ErrorKind::Protocol,
            // Not the URL itself: the base may carry a password.
            message: format!("cannot build the upstream URL for {path_and_query:?}: {e}"),
            latency: Duration::ZERO,
        })
    }

    /// Sends one request. `headers` are the prepared end-to-end headers shared by both legs;
    /// only the Host header is per leg. Resolves when the response headers arrive.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        preserve_host: bool,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, LegError> {
        let started = Instant::now();
        let url = self.url_for(path_and_query)?;
        self.set_host(&mut headers, preserve_host);
        client
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| leg_error(&e, started.elapsed()))
    }
}

/// The request's path and query as [`target::normalize`] leaves it. Serve and the traffic
/// readers have already refused or normalized it; this is the last line, so that no caller
/// can send a request outside the base path (the URL parser would resolve its `..`).
fn checked(path_and_query: &str) -> Result<std::borrow::Cow<'_, str>, LegError> {
    target::normalize(path_and_query).map_err(|e| LegError {
        kind: ErrorKind::Protocol,
        message: format!("request target refused: {e}"),
        latency: Duration::ZERO,
    })
}

/// A request's path and query under an upstream's base (URL or path, no trailing slash).
fn under(base: &str, path_and_query: &str) -> String {
    let mut joined = String::with_capacity(base.len() + path_and_query.len() + 1);
    joined.push_str(base);
    if !path_and_query.starts_with('/') {
        joined.push('/');
    }
    joined.push_str(path_and_query);
    joined
}

/// How a leg whose whole response is read (the shadow leg, both replay legs) is sent.
#[derive(Clone, Copy, Debug)]
pub struct Fetch<'a> {
    pub client: &'a reqwest::Client,
    /// The shadow's share of the memory budget the body is read into; `None` for replay,
    /// which waits for room instead of dropping and so holds at most its workers' bodies.
    pub memory: Option<&'a Reservation>,
    pub options: FetchOptions,
}

/// The per-leg settings of a whole-response fetch, whichever transport carries it.
#[derive(Clone, Copy, Debug)]
pub struct FetchOptions {
    pub preserve_host: bool,
    pub max_body: usize,
    /// For the whole exchange: connecting, sending, and reading the last body byte.
    pub timeout: Duration,
}

impl FetchOptions {
    /// The error of a leg that ran out of time, the same for every transport.
    pub fn timed_out(&self, started: Instant) -> LegError {
        LegError {
            kind: ErrorKind::Timeout,
            message: format!(
                "no complete response within {}",
                humantime::format_duration(self.timeout)
            ),
            latency: started.elapsed(),
        }
    }
}

impl Upstream {
    /// Sends a request with a complete body and reads the complete response, under the
    /// timeout and the body cap: every failure becomes a [`LegError`] of its kind.
    pub async fn fetch(
        &self,
        how: Fetch<'_>,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Captured, LegError> {
        let started = Instant::now();
        let options = how.options;
        let leg = async {
            let response = self
                .send(
                    how.client,
                    method,
                    path_and_query,
                    headers,
                    options.preserve_host,
                    full_body(body),
                )
                .await?;
            let cap = BodyCap {
                max_body: options.max_body,
                memory: how.memory,
            };
            read_capped(response.into(), cap, started, |e| {
                leg_error(&e, started.elapsed())
            })
            .await
        };
        match tokio::time::timeout(options.timeout, leg).await {
            Ok(outcome) => outcome,
            Err(_) => Err(options.timed_out(started)),
        }
    }
}

/// What a whole-response read may keep: at most `max_body` bytes, each taken from
/// `memory` (if any) before it is kept.
#[derive(Clone, Copy, Debug)]
pub struct BodyCap<'a> {
    pub max_body: usize,
    pub memory: Option<&'a Reservation>,
}

/// Reads a whole response, refusing a body of more than `max_body` bytes or one the memory
/// budget has no room for (the reservation then says [`Reservation::refused`]);
/// `body_error` classifies the transport's own errors. One body cap for every transport.
pub async fn read_capped<B, F>(
    response: http::Response<B>,
    cap: BodyCap<'_>,
    started: Instant,
    body_error: F,
) -> Result<Captured, LegError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    F: Fn(B::Error) -> LegError,
{
    use http_body_util::BodyExt as _;
    let (parts, mut body) = response.into_parts();
    // Most bodies arrive in one frame: keep that frame as it is, copy only when there are more.
    let mut first = Bytes::new();
    let mut more = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(&body_error)?.into_data() else {
            continue; // trailers are not compared
        };
        if first.len() + more.len() + chunk.len() > cap.max_body {
            return Err(LegError {
                kind: ErrorKind::TooLarge,
                message: format!(
                    "response body larger than max-body ({} bytes)",
                    cap.max_body
                ),
                latency: started.elapsed(),
            });
        }
        if cap
            .memory
            .is_some_and(|memory| !memory.try_grow(chunk.len()))
        {
            return Err(LegError {
                kind: ErrorKind::TooLarge,
                message: "response body does not fit in the shadow memory budget".into(),
                latency: started.elapsed(),
            });
        }
        if first.is_empty() && more.is_empty() {
            first = chunk;
        } else {
            if more.is_empty() {
                more.extend_from_slice(&first);
            }
            more.extend_from_slice(&chunk);
        }
    }
    Ok(Captured {
        status: parts.status,
        headers: parts.headers,
        body: if more.is_empty() {
            first
        } else {
            more.freeze()
        },
        latency: started.elapsed(),
    })
}

/// Classifies a client error into the kinds a report counts.
pub fn leg_error(error: &reqwest::Error, latency: Duration) -> LegError {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_connect() {
        ErrorKind::Connect
    } else if head_too_large(error) {
        ErrorKind::HeadTooLarge
    } else {
        ErrorKind::Protocol
    };
    // The client names the URL it failed on. reqwest moves URL credentials into an
    // Authorization header before sending, so today that URL has none; the scrub keeps a
    // password out of logs and error pages should that ever change.
    let message = error_chain(error);
    let message = match error.url() {
        Some(url) => crate::redact::url::scrub(&message, url),
        None => message,
    };
    LegError {
        kind,
        message,
        latency,
    }
}

/// Whether hyper, anywhere in the error's causes, refused a response head as too large.
pub(crate) fn head_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse_too_large)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// reqwest's top-level message is generic ("error sending request"); the cause says what
/// happened (connection refused, reset, invalid HTTP).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1): meaningful for one connection only, never
/// forwarded. Connection also lists further names that are hop-by-hop for this message.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// Removes the hop-by-hop headers, including every name listed in Connection.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The end-to-end headers both legs receive: the client's, minus hop-by-hop, with
/// X-Forwarded-For appended to and X-Forwarded-Proto/-Host set.
pub fn forwarded_headers(
    client_headers: &HeaderMap,
    client_ip: IpAddr,
    proto: &'static str,
    host: Option<&HeaderValue>,
) -> HeaderMap {
    let mut headers = client_headers.clone();
    strip_hop_by_hop(&mut headers);
    let xff = HeaderName::from_static("x-forwarded-for");
    let previous: Vec<&str> = client_headers
        .get_all(&xff)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client_ip = client_ip.to_canonical().to_string();
    let value = if previous.is_empty() {
        client_ip
    } else {
        format!("{}, {client_ip}", previous.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(xff, value);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(proto),
    );
    if let Some(host) = host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    headers
}

/// A body for the shadow leg: the complete bytes of the client's request.
pub fn full_body(bytes: Bytes) -> reqwest::Body {
    reqwest::Body::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_prefixes_the_request_path() {
        let up = Upstream::new(&reqwest::Url::parse("http://new:8080/v2/").unwrap());
        assert_eq!(
            up.url_for("/users/1?x=2").unwrap().as_str(),
            "http://new:8080/v2/users/1?x=2"
        );
        let up = Upstream::new(&reqwest::Url::parse("http://old").unwrap());
        assert_eq!(up.url_for("/a").unwrap().as_str(), "http://old/a");
        assert_eq!(up.authority, "old");
    }

    #[test]
    fn direct_targets_keep_the_base_path_and_unbracket_ipv6() {
        let up = Upstream::new(&reqwest::Url::parse("http://[::1]:8080/v2/").unwrap());
        assert_eq!(up.origin_form("/users/1?x=2").unwrap(), "/v2/users/1?x=2");
        assert_eq!(up.plain_http_address(), Some(("::1", 8080)));
        let up = Upstream::new(&reqwest::Url::parse("http://old").unwrap());
        assert_eq!(up.origin_form("/a").unwrap(), "/a");
        assert_eq!(up.plain_http_address(), Some(("old", 80)));
        let up = Upstream::new(&reqwest::Url::parse("https://new").unwrap());
        assert_eq!(up.plain_http_address(), None);
    }

    #[test]
    fn targets_outside_the_base_path_are_never_built() {
        let up = Upstream::new(&reqwest::Url::parse("https://new/api/v2").unwrap());
        for bad in ["/../admin", "/%2e%2e/admin", "/a%2fb", "/..;/x"] {
            assert!(up.url_for(bad).is_err(), "{bad}");
            assert!(up.origin_form(bad).is_err(), "{bad}");
        }
        assert_eq!(
            up.url_for("/a/./b/../c?q=..").unwrap().as_str(),
            "https://new/api/v2/a/c?q=.."
        );
        assert_eq!(up.origin_form("/a/b/..").unwrap(), "/api/v2/a/");
    }

    #[test]
    fn strips_hop_by_hop_and_connection_listed_names() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let out = forwarded_headers(&h, "10.0.0.1".parse().unwrap(), "http", None);
        assert!(out.get("x-private").is_none());
        assert!(out.get("keep-alive").is_none());
        assert!(out.get("te").is_none());
        assert!(out.get("connection").is_none());
        assert_eq!(out["x-kept"], "1");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1");
    }

    #[test]
    fn appends_to_x_forwarded_for() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2"));
        let out = forwarded_headers(&h, "127.0.0.1".parse().unwrap(), "http", None);
        assert_eq!(out["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 127.0.0.1");
    }
}
