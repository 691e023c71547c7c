//! The one HTTP client and request builder behind every upstream leg: serve's primary and
//! shadow legs, both replay legs and the demo.
//!
//! Every leg's request is built by [`Upstream::request`] from the client's parsed target
//! and the same prepared headers, sent by [`Upstream::send`] through the upstream's pooled
//! client ([`client`]), and held to its time by [`within`]; a leg that needs the whole
//! answer (the shadow, replay) goes through [`Upstream::fetch`], which adds the body cap.
//! So any difference between two responses comes from the upstreams, never from
//! shadowdiff treating them differently.
//!
//! - [`client`]: the pooled hyper-util client: HTTP/1.1, HTTP/2 by ALPN or `h2c`, rustls.
//! - [`target`]: the request-target check, so that no request leaves the base path.

mod client;
pub mod target;

pub(crate) use client::tls_config;
pub use client::{ClientError, Connect, Protocol, Trust};

use crate::budget::Reservation;
use crate::exchange::{is_write, Captured, ErrorKind, LegError};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;
use std::borrow::Cow;
use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The largest response head (status line and header fields) read from an upstream.
/// RFC 9110 section 5.4 leaves the limit to the recipient; 64 KiB is well above what real
/// APIs send and keeps a hostile head from costing more CPU than a normal answer.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Marks a request sent by shadowdiff to the secondary, so that a shadowdiff in front of the
/// secondary does not shadow it again.
pub const SHADOW_HEADER: HeaderName = HeaderName::from_static("x-shadowdiff");

/// What every request body sent upstream is: any body of `Bytes` the pool can carry.
/// Whole-response legs build theirs from the request's bytes (`From<Bytes>`).
pub trait OutgoingBody:
    http_body::Body<Data = Bytes, Error: Into<BodyError>> + Send + Unpin + 'static
{
}

impl<B> OutgoingBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<BodyError>> + Send + Unpin + 'static
{
}

/// What a request body's error becomes inside the pool.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request body known in full: what the shadow, replay and the tunnel send.
pub type FullBody = http_body_util::Full<Bytes>;

/// One upstream: where requests go, how its Host header reads, and its pooled client.
pub struct Upstream<B = FullBody> {
    pool: client::Pool<B>,
    /// Kept for [`Upstream::with_own_pool`]: TCP and TLS settings, shared by every pool.
    connector: client::Connector,
    /// The scheme the pool connects with: `https`, or `http` (also for `h2c`).
    scheme: Scheme,
    authority: Authority,
    /// `host[:port]` of the upstream, the Host header unless the client's is preserved.
    host: HeaderValue,
    /// The base URL's path without its trailing slash (`/v2`, or empty).
    base_path: String,
    /// Basic credentials from the URL's userinfo, sent instead of the client's.
    authorization: Option<HeaderValue>,
    protocol: Protocol,
}

impl<B> std::fmt::Debug for Upstream<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Upstream")
            .field("protocol", &self.protocol)
            .field("authority", &self.authority)
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

impl<B: OutgoingBody> Upstream<B> {
    /// The upstream named by a URL that the config's upstream grammar accepted, with its
    /// own pool, reached as `connect` says.
    pub fn new(base: &url::Url, connect: &Connect) -> Result<Upstream<B>, ClientError> {
        let protocol = Protocol::from_scheme(base.scheme()).ok_or_else(|| ClientError::Url {
            reason: format!("scheme {:?} is not http, https or h2c", base.scheme()),
        })?;
        let host = base.host_str().unwrap_or_default();
        let host_port = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let authority = Authority::try_from(host_port.as_str()).map_err(|e| ClientError::Url {
            reason: format!("host {host_port:?}: {e}"),
        })?;
        let host = HeaderValue::from_str(&host_port).map_err(|e| ClientError::Url {
            reason: format!("host {host_port:?}: {e}"),
        })?;
        let connector = client::connector(protocol, connect)?;
        Ok(Upstream {
            pool: client::pool(protocol, connector.clone(), client::DEFAULT_MAX_IDLE),
            connector,
            scheme: match protocol {
                Protocol::Https => Scheme::HTTPS,
                Protocol::Http | Protocol::H2c => Scheme::HTTP,
            },
            authority,
            host,
            base_path: base.path().trim_end_matches('/').to_string(),
            authorization: basic_credentials(base),
            protocol,
        })
    }

    /// The same upstream with a connection pool of its own, keeping up to `max_idle`
    /// connections: for a serve worker, whose runtime then drives every connection its
    /// requests use.
    pub fn with_own_pool(&self, max_idle: usize) -> Upstream<B> {
        Upstream {
            pool: client::pool(self.protocol, self.connector.clone(), max_idle),
            connector: self.connector.clone(),
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            host: self.host.clone(),
            base_path: self.base_path.clone(),
            authorization: self.authorization.clone(),
            protocol: self.protocol,
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The one way a request for this upstream is built: the target under the base path,
    /// the Host rule, the URL's credentials. `headers` are the prepared end-to-end headers
    /// ([`forwarded_headers`]) shared by every leg.
    pub fn request(
        &self,
        method: Method,
        target: &Uri,
        mut headers: HeaderMap,
        preserve_host: bool,
        body: B,
    ) -> Result<Request<B>, LegError> {
        let uri = self.uri_for(target)?;
        if self.protocol == Protocol::Http {
            // `TE: trailers` is kept by `strip_hop_by_hop` for HTTP/2 upstreams (gRPC);
            // to an HTTP/1.1 upstream TE stays what RFC 9110 section 10.1.4 makes it, a
            // field of the client's own hop.
            headers.remove(header::TE);
        }
        self.set_host(&mut headers, preserve_host);
        if let Some(authorization) = &self.authorization {
            headers.insert(header::AUTHORIZATION, authorization.clone());
        }
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Sends a built request through the pool; resolves when the response head arrives.
    pub async fn send(
        &self,
        request: Request<B>,
        started: Instant,
    ) -> Result<Response<Incoming>, LegError> {
        self.pool
            .request(request)
            .await
            .map_err(|e| leg_error(&e, started.elapsed()))
    }

    /// The one Host rule of every leg: the upstream's authority, unless the client's Host
    /// is preserved and there is one.
    /// Sets the Host header this leg sends ([`Upstream::host_to_set`]).
    pub fn set_host(&self, headers: &mut HeaderMap, preserve_host: bool) {
        if let Some(host) = self.host_to_set(headers, preserve_host) {
            headers.insert(header::HOST, host);
        }
    }

    /// The one Host rule: a request gets the upstream's own Host, unless `preserve_host`
    /// keeps the client's (`None`: the headers' Host stays as it is).
    fn host_to_set(&self, headers: &HeaderMap, preserve_host: bool) -> Option<HeaderValue> {
        (!preserve_host || !headers.contains_key(header::HOST)).then(|| self.host.clone())
    }

    /// The absolute URI the pool is given (it sends the origin form on HTTP/1.1 and the
    /// pseudo-headers on HTTP/2): built from the parsed target, re-parsed only when a base
    /// path has to be put in front of it.
    fn uri_for(&self, target: &Uri) -> Result<Uri, LegError> {
        let path_and_query = match target.path_and_query() {
            Some(pq) => checked(pq)?,
            None => PathAndQuery::from_static("/"),
        };
        let path_and_query = if self.base_path.is_empty() {
            path_and_query
        } else {
            let joined = under(&self.base_path, path_and_query.as_str());
            PathAndQuery::from_maybe_shared(Bytes::from(joined)).map_err(|e| LegError {
                kind: ErrorKind::Protocol,
                message: format!("cannot build the upstream target for {target}: {e}"),
                latency: Duration::ZERO,
            })?
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).map_err(|e| LegError {
            kind: ErrorKind::Protocol,
            message: format!("cannot build the upstream target for {target}: {e}"),
            latency: Duration::ZERO,
        })
    }
}

/// The Authorization a URL's userinfo stands for (RFC 7617): RFC 3986 section 3.2.1
/// deprecates passwords in URLs, but operators write `https://user:pw@host` and expect the
/// upstream to get them. The value is marked sensitive, so it is never logged by hyper.
fn basic_credentials(url: &url::Url) -> Option<HeaderValue> {
    use base64::Engine as _;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |part: &str| percent_encoding::percent_decode_str(part).collect::<Vec<u8>>();
    let mut pair = decode(url.username());
    pair.push(b':');
    pair.extend(decode(url.password().unwrap_or_default()));
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The request's path and query as [`target::normalize`] leaves it. Serve and the traffic
/// readers have already refused or normalized it; this is the last line, so that no caller
/// can send a request outside the base path. A target that needs no change is kept as it
/// is, without a copy.
fn checked(path_and_query: &PathAndQuery) -> Result<PathAndQuery, LegError> {
    let refused = |e: target::TargetError| LegError {
        kind: ErrorKind::Protocol,
        message: format!("request target refused: {e}"),
        latency: Duration::ZERO,
    };
    match target::normalize(path_and_query.as_str()).map_err(refused)? {
        Cow::Borrowed(_) => Ok(path_and_query.clone()),
        Cow::Owned(normalized) => {
            PathAndQuery::from_maybe_shared(Bytes::from(normalized)).map_err(|e| LegError {
                kind: ErrorKind::Protocol,
                message: format!("request target refused: {e}"),
                latency: Duration::ZERO,
            })
        }
    }
}

/// A request's path and query under an upstream's base path (no trailing slash).
fn under(base: &str, path_and_query: &str) -> String {
    let mut joined = String::with_capacity(base.len() + path_and_query.len() + 1);
    joined.push_str(base);
    if !path_and_query.starts_with('/') {
        joined.push('/');
    }
    joined.push_str(path_and_query);
    joined
}

/// The one timeout of every leg: `leg` must be done within `limit`, else the leg is a
/// [`ErrorKind::Timeout`] saying `no <what> within <limit>`.
pub async fn within<T>(
    limit: Duration,
    started: Instant,
    what: &str,
    leg: impl Future<Output = Result<T, LegError>>,
) -> Result<T, LegError> {
    match tokio::time::timeout(limit, leg).await {
        Ok(outcome) => outcome,
        Err(_) => Err(LegError {
            kind: ErrorKind::Timeout,
            message: format!("no {what} within {}", humantime::format_duration(limit)),
            latency: started.elapsed(),
        }),
    }
}

/// How a leg whose whole response is read (the shadow leg, both replay legs) is sent.
#[derive(Clone, Copy, Debug)]
pub struct Fetch<'a> {
    /// The shadow's share of the memory budget the body is read into; `None` for replay,
    /// which waits for room instead of dropping and so holds at most its workers' bodies.
    pub memory: Option<&'a Reservation>,
    pub options: FetchOptions<'a>,
}

/// The per-leg settings of a whole-response fetch.
#[derive(Clone, Copy, Debug)]
pub struct FetchOptions<'a> {
    pub preserve_host: bool,
    pub max_body: usize,
    /// For the whole exchange: connecting, sending, and reading the last body byte.
    pub timeout: Duration,
    /// The shadow marker this leg adds, if any: its name (`--shadow-marker`, default
    /// [`SHADOW_HEADER`]) and value (`shadow`, `baseline`).
    pub mark: Option<(&'a HeaderName, &'static str)>,
}

impl<B: OutgoingBody + From<Bytes>> Upstream<B> {
    /// Sends a request with a complete body and reads the complete response, under the
    /// timeout and the body cap: every failure becomes a [`LegError`] of its kind.
    ///
    /// When the upstream closes a connection as the request goes out (the race every
    /// keep-alive client meets when a server's idle timeout or request limit closes it),
    /// the request is sent again (up to [`MAX_RESENDS`] times) if that cannot repeat an
    /// effect: hyper-util already
    /// resends what was never written; a written request is resent only when its method is
    /// safe (RFC 9110 section 9.2.2; writes, method overrides included, never are).
    pub async fn fetch(
        &self,
        how: Fetch<'_>,
        method: &Method,
        target: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Captured, LegError> {
        let started = Instant::now();
        let options = how.options;
        let leg = async {
            let mut resent = 0;
            let response = loop {
                let mut sent = headers.clone();
                if let Some((name, value)) = options.mark {
                    sent.insert(name.clone(), HeaderValue::from_static(value));
                }
                let request = self.request(
                    method.clone(),
                    target,
                    sent,
                    options.preserve_host,
                    B::from(body.clone()),
                )?;
                match self.pool.request(request).await {
                    Ok(response) => break response,
                    Err(e)
                        if resent < MAX_RESENDS
                            && closed_by_upstream(&e)
                            && !is_write(method, headers) =>
                    {
                        resent += 1;
                    }
                    Err(e) => return Err(leg_error(&e, started.elapsed())),
                }
            };
            let cap = BodyCap {
                max_body: options.max_body,
                memory: how.memory,
            };
            read_capped(response, cap, started, |e| {
                hyper_error(&e, started.elapsed())
            })
            .await
        };
        within(options.timeout, started, "complete response", leg).await
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
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        let chunk = match frame.map_err(&body_error)?.into_data() {
            Ok(chunk) => chunk,
            Err(frame) => {
                if let Ok(fields) = frame.into_trailers() {
                    trailers.extend(fields);
                }
                continue;
            }
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
        trailers,
        body: if more.is_empty() {
            first
        } else {
            more.freeze()
        },
        latency: started.elapsed(),
    })
}

/// Classifies a pool error into the kinds a report counts. The message names the cause
/// (connection refused, reset, invalid HTTP), never a URL: the pool's errors carry none.
pub fn leg_error(error: &hyper_util::client::legacy::Error, latency: Duration) -> LegError {
    let kind = if error.is_connect() {
        ErrorKind::Connect
    } else if head_too_large(error) {
        ErrorKind::HeadTooLarge
    } else {
        ErrorKind::Protocol
    };
    LegError {
        kind,
        message: error_chain(error),
        latency,
    }
}

/// An error of a response body after its head arrived: the upstream broke the exchange,
/// or sent trailers over the cap.
pub fn hyper_error(error: &hyper::Error, latency: Duration) -> LegError {
    LegError {
        kind: if error.is_parse_too_large() {
            ErrorKind::HeadTooLarge
        } else {
            ErrorKind::Protocol
        },
        message: error_chain(error),
        latency,
    }
}

/// How many times a safe request that met a connection the upstream had just closed is sent
/// again. More than once: the next idle connection of the pool may have been closed by the
/// same upstream a moment before (a server that closes after every response), and a safe
/// request repeated changes nothing (RFC 9110 section 9.2.2).
const MAX_RESENDS: u32 = 3;

/// The upstream closed the connection as the request went out: an incomplete message, or
/// a reset, anywhere in the error's causes.
fn closed_by_upstream(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() {
                return true;
            }
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        cause = error.source();
    }
    false
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

/// The pool's top-level message is generic ("client error (Connect)"); the causes say what
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

/// Removes the hop-by-hop headers, including every name listed in Connection. One
/// exception: `TE: trailers` is kept (as `trailers` alone), because a gRPC server refuses
/// requests without it and RFC 9113 section 8.2.2 allows exactly that value on HTTP/2;
/// [`Upstream::request`] drops it again for HTTP/1.1 upstreams.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them (and names listed in Connection only count when
    // Connection is there): one pass over the names decides, without a lookup per name.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("trailers")
        });
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
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A client address as X-Forwarded-For writes it (IPv4-mapped IPv6 shown as IPv4): made
/// once per connection, not per request.
pub fn forwarded_for(client_ip: IpAddr) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(client_ip.to_canonical().to_string()))
        .expect("an IP address is a valid header value")
}

/// The end-to-end headers every leg receives: the client's, minus hop-by-hop, with
/// X-Forwarded-For appended to and X-Forwarded-Proto/-Host set. Takes the client's map and
/// edits it in place: the hot path makes no copy of it here. `client` is the peer's
/// address from [`forwarded_for`].
pub fn forwarded_headers(
    mut headers: HeaderMap,
    client: &HeaderValue,
    proto: &'static str,
    host: Option<&HeaderValue>,
) -> HeaderMap {
    let value = if headers.contains_key(&X_FORWARDED_FOR) {
        let mut joined = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        joined.push_str(", ");
        joined.push_str(client.to_str().unwrap_or_default());
        HeaderValue::from_maybe_shared(Bytes::from(joined)).ok()
    } else {
        Some(client.clone())
    };
    strip_hop_by_hop(&mut headers);
    if let Some(value) = value {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Upstream {
        Upstream::new(&url::Url::parse(url).unwrap(), &Connect::default()).unwrap()
    }

    fn uri(upstream: &Upstream, target: &str) -> Result<String, LegError> {
        let target: Uri = target.parse().unwrap();
        upstream.uri_for(&target).map(|u| u.to_string())
    }

    #[tokio::test]
    async fn base_path_prefixes_the_request_path() {
        let up = upstream("http://new:8080/v2/");
        assert_eq!(
            uri(&up, "/users/1?x=2").unwrap(),
            "http://new:8080/v2/users/1?x=2"
        );
        let up = upstream("http://old");
        assert_eq!(uri(&up, "/a").unwrap(), "http://old/a");
        assert_eq!(up.host, "old");
        let up = upstream("h2c://[::1]:50051/svc");
        assert_eq!(up.protocol(), Protocol::H2c);
        assert_eq!(uri(&up, "/a.B/C").unwrap(), "http://[::1]:50051/svc/a.B/C");
        assert_eq!(up.host, "[::1]:50051");
    }

    #[tokio::test]
    async fn targets_outside_the_base_path_are_never_built() {
        let up = upstream("https://new/api/v2");
        for bad in ["/../admin", "/%2e%2e/admin", "/a%2fb", "/..;/x"] {
            assert!(uri(&up, bad).is_err(), "{bad}");
        }
        assert_eq!(
            uri(&up, "/a/./b/../c?q=..").unwrap(),
            "https://new/api/v2/a/c?q=.."
        );
        assert_eq!(uri(&up, "/a/b/..").unwrap(), "https://new/api/v2/a/");
    }

    #[tokio::test]
    async fn url_credentials_become_a_sensitive_basic_authorization() {
        let up = upstream("http://us%40er:p%3Ass@new/");
        let request = up
            .request(
                Method::GET,
                &"/".parse().unwrap(),
                HeaderMap::new(),
                false,
                FullBody::default(),
            )
            .unwrap();
        let value = &request.headers()[header::AUTHORIZATION];
        assert!(value.is_sensitive());
        // base64("us@er:p:ss")
        assert_eq!(value, "Basic dXNAZXI6cDpzcw==");
        assert!(format!("{up:?}").find("cDpz").is_none());
    }

    #[test]
    fn te_trailers_alone_survives_the_hop() {
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("trailers, deflate;q=0.5"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h["te"], "trailers");
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("te").is_none());
    }

    #[test]
    fn strips_hop_by_hop_and_connection_listed_names() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let out = forwarded_headers(h, &forwarded_for("10.0.0.1".parse().unwrap()), "http", None);
        assert!(out.get("x-private").is_none());
        assert!(out.get("keep-alive").is_none());
        assert_eq!(out["te"], "trailers");
        assert!(out.get("connection").is_none());
        assert_eq!(out["x-kept"], "1");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1");
    }

    #[test]
    fn appends_to_x_forwarded_for() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2"));
        let out = forwarded_headers(
            h,
            &forwarded_for("::ffff:127.0.0.1".parse().unwrap()),
            "http",
            None,
        );
        assert_eq!(out["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 127.0.0.1");
    }
}
