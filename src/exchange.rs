//! The values that flow from the proxy (or a replay) to the compare stage and the store.
//!
//! They are plain data on purpose: the hot path only builds them and hands them over; every
//! decision about them is taken later, off the client's path.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
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

/// A complete response of one leg, body capped at max-body.
#[derive(Clone, Debug)]
pub struct Captured {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// From the moment the request was sent until the last body byte was read.
    pub latency: Duration,
}

/// Which upstream a value belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
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
    /// A write method while `--shadow-writes` is off.
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
}

impl SkipReason {
    pub const ALL: [SkipReason; 10] = [
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
        }
    }

    pub fn parse(s: &str) -> Option<SkipReason> {
        SkipReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Both legs of one shadowed request, ready for comparison.
#[derive(Debug)]
pub struct Exchange {
    pub at: SystemTime,
    pub request: RecordedRequest,
    pub primary: LegOutcome,
    pub secondary: LegOutcome,
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
