//! The values that flow from the proxy (or a replay) to the compare stage and the store.
//!
//! They are plain data on purpose: the hot path only builds them and hands them over; every
//! decision about them is taken later, off the client's path.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use std::fmt;
use std::time::{Duration, SystemTime};

/// A request as it was sent to both legs: method, origin-form URI, the client's end-to-end
/// headers (hop-by-hop ones already removed) and the complete body.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: Method,
    /// Path and query exactly as the client sent them.
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The path component, used for routing.
    pub fn path(&self) -> &str {
        self.uri.path()
    }
}

/// GET, HEAD and OPTIONS are safe (RFC 9110 section 9.2.1): sending them twice changes
/// nothing. TRACE is safe too by the RFC, but no API is migrated through it, so it is left
/// with the writes rather than widening what is sent twice.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The headers frameworks (Rails, Laravel, Express's method-override, Google APIs) read to
/// run a request as another method: a `POST` or even a `GET` carrying
/// `X-HTTP-Method-Override: DELETE` deletes on such an upstream.
pub const METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Whether sending this request a second time may repeat an effect: its method is not safe,
/// or a method override header names anything but a safe method (an unreadable value
/// counts as a write: the upstream may read it otherwise than we do). The one rule for
/// "is this a write" in serve admission, replay and the upstream client's retry.
pub fn is_write(method: &Method, headers: &HeaderMap) -> bool {
    if !is_safe(method) {
        return true;
    }
    // One pass over the names present (a handful) instead of three lookups that each hash
    // a name: nearly every request has no override header at all.
    if !headers
        .keys()
        .any(|name| METHOD_OVERRIDE_HEADERS.contains(name))
    {
        return false;
    }
    METHOD_OVERRIDE_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(name))
        .any(|value| {
            let named = value.to_str().unwrap_or_default().trim();
            !["GET", "HEAD", "OPTIONS"]
                .iter()
                .any(|safe| named.eq_ignore_ascii_case(safe))
        })
}

/// A complete response of one leg, body capped at max-body.
#[derive(Clone, Debug)]
pub struct Captured {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Trailer fields after the body (gRPC's `grpc-status`); empty when there were none.
    pub trailers: HeaderMap,
    pub body: Bytes,
    /// From the moment the request was sent until the last body byte was read.
    pub latency: Duration,
}

/// Which upstream a value belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Leg {
    #[default]
    Primary,
    Secondary,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Primary => "primary",
            Leg::Secondary => "secondary",
        }
    }
}

/// Why a leg produced no comparable response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Could not connect (refused, DNS, TLS handshake).
    Connect,
    /// No complete response within the leg's timeout.
    Timeout,
    /// The response body exceeded max-body, so it cannot be compared in full.
    TooLarge,
    /// The upstream answered something that is not valid HTTP, or reset the connection.
    Protocol,
    /// The response head (status line and header fields) was larger than
    /// [`crate::upstream::MAX_RESPONSE_HEAD`]: read no further, so a hostile upstream's
    /// endless header costs no more than a normal answer.
    HeadTooLarge,
    /// The response started but did not finish (client went away, stream error).
    Incomplete,
    /// The process was shutting down before the leg completed.
    Shutdown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Protocol => "protocol",
            ErrorKind::HeadTooLarge => "head_too_large",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::Shutdown => "shutdown",
        }
    }
}

/// A leg that failed, with enough detail for an operator.
#[derive(Clone, Debug)]
pub struct LegError {
    pub kind: ErrorKind,
    pub message: String,
    pub latency: Duration,
}

impl fmt::Display for LegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

pub type LegOutcome = Result<Captured, LegError>;

/// Why a request was not compared. Every request that is not compared carries one, so a
/// report can say what it did not see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The sampling decision said no.
    SampledOut,
    /// A write (an unsafe method, or a method override header naming one, see [`is_write`])
    /// while `--shadow-writes` is off.
    MethodNotShadowed,
    /// The request already carried `x-shadowdiff`: it came from a shadowdiff.
    Loop,
    /// The request body exceeded max-body.
    BodyTooLarge,
    /// No in-flight shadow permit was free.
    Overload,
    /// Upgrade (WebSocket) or CONNECT: a tunnel, not a request/response pair.
    Upgrade,
    /// The circuit breaker on the secondary was open.
    BreakerOpen,
    /// The client's request body did not complete, so there is nothing whole to replay.
    RequestIncomplete,
    /// shadowdiff refused the request itself with a 4xx (a target that would leave the
    /// base path, duplicate Host fields, ambiguous framing): no leg saw it.
    Refused,
    /// The client stopped reading the primary's response before its end, so there is no
    /// whole primary response to compare. Not a primary error: the primary answered.
    ClientAborted,
    /// `[shadow] exclude` named the route, or `[shadow] include` did not.
    Excluded,
    /// Shadowing was paused through the admin listener (`POST /shadow/pause`).
    Paused,
    /// A `[[rewrite]]` made a target that cannot be sent (one that leaves the base path).
    RewriteFailed,
    /// Replay only: a request read from a format that keeps no bodies (an access log)
    /// whose method may carry one; sent without it, it would not be the request made.
    BodyNotRecorded,
    /// `replay --against-recorded`: the entry holds no usable primary answer (a HAR
    /// entry with status 0 or a body the exporter left out; a request recorded without
    /// one), so there is nothing to compare the secondary with.
    NoRecordedResponse,
}

impl SkipReason {
    pub const ALL: [SkipReason; 15] = [
        SkipReason::SampledOut,
        SkipReason::MethodNotShadowed,
        SkipReason::Loop,
        SkipReason::BodyTooLarge,
        SkipReason::Overload,
        SkipReason::Upgrade,
        SkipReason::BreakerOpen,
        SkipReason::RequestIncomplete,
        SkipReason::Refused,
        SkipReason::ClientAborted,
        SkipReason::Excluded,
        SkipReason::Paused,
        SkipReason::RewriteFailed,
        SkipReason::BodyNotRecorded,
        SkipReason::NoRecordedResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::SampledOut => "sampled_out",
            SkipReason::MethodNotShadowed => "method_not_shadowed",
            SkipReason::Loop => "loop",
            SkipReason::BodyTooLarge => "body_too_large",
            SkipReason::Overload => "overload",
            SkipReason::Upgrade => "upgrade",
            SkipReason::BreakerOpen => "breaker_open",
            SkipReason::RequestIncomplete => "request_incomplete",
            SkipReason::Refused => "refused",
            SkipReason::ClientAborted => "client_aborted",
            SkipReason::Excluded => "excluded",
            SkipReason::Paused => "paused",
            SkipReason::RewriteFailed => "rewrite_failed",
            SkipReason::BodyNotRecorded => "body_not_recorded",
            SkipReason::NoRecordedResponse => "no_recorded_response",
        }
    }
}

/// Both legs of one shadowed request, ready for comparison, and the baseline's answer when
/// one is configured.
#[derive(Debug)]
pub struct Exchange {
    pub at: SystemTime,
    pub request: RecordedRequest,
    pub primary: LegOutcome,
    pub secondary: LegOutcome,
    pub baseline: BaselineLeg,
    /// What the `[[rewrite]]` list changed in the secondary's copy; empty when nothing.
    pub rewrites: Vec<crate::rewrite::Change>,
}

/// What the baseline leg did for one request.
// The exchange travels boxed whole (`Observation::Exchange`); boxing the answer again
// would only add an allocation per shadow.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum BaselineLeg {
    /// No baseline is configured.
    Absent,
    /// Configured, but this request's copy was not sent.
    NotSent(BaselineSkip),
    Sent(LegOutcome),
}

/// Why a configured baseline did not get a request's copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BaselineSkip {
    /// The baseline's own breaker was open.
    BreakerOpen,
    /// `--baseline self`'s in-flight cap was full.
    Overload,
    /// `--baseline self` repeats safe methods only: a write reaches the primary once.
    Write,
}

/// Why a baseline told nothing about one request's noise: the comparison went on
/// without it. Never a mismatch, never an error of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BaselineUnusable {
    NotSent(BaselineSkip),
    /// The baseline failed: its differences from the primary would be the failure's.
    Failed(ErrorKind),
    /// It answered another status than the primary: another answer, not noise.
    Status,
}

impl BaselineUnusable {
    /// The `reason` column of `baseline_counts`.
    pub fn as_string(self) -> String {
        match self {
            BaselineUnusable::NotSent(BaselineSkip::BreakerOpen) => "breaker_open".into(),
            BaselineUnusable::NotSent(BaselineSkip::Overload) => "overload".into(),
            BaselineUnusable::NotSent(BaselineSkip::Write) => "write".into(),
            BaselineUnusable::Failed(kind) => format!("baseline:{}", kind.as_str()),
            BaselineUnusable::Status => "status".into(),
        }
    }
}

/// What the hot path hands to the pipeline: a pair to compare, or a request that was not
/// shadowed and why.
#[derive(Debug)]
pub enum Observation {
    Exchange(Box<Exchange>),
    Skipped {
        at: SystemTime,
        method: Method,
        path: String,
        reason: SkipReason,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_method_override_naming_an_unsafe_method_is_a_write() {
        assert!(!is_write(&Method::GET, &HeaderMap::new()));
        assert!(is_write(&Method::POST, &HeaderMap::new()));
        for name in [
            "X-HTTP-Method-Override",
            "X-HTTP-Method",
            "X-Method-Override",
        ] {
            assert!(
                is_write(&Method::GET, &headers(&[(name, "DELETE")])),
                "{name}"
            );
            assert!(
                is_write(&Method::GET, &headers(&[(name, "patch")])),
                "{name}"
            );
            assert!(
                !is_write(&Method::GET, &headers(&[(name, " head ")])),
                "{name}"
            );
        }
        // Any one unsafe value among several, and a value that names no method, count.
        let both = headers(&[("x-http-method", "GET"), ("x-http-method", "PUT")]);
        assert!(is_write(&Method::GET, &both));
        assert!(is_write(
            &Method::HEAD,
            &headers(&[("x-method-override", "")])
        ));
    }
}
