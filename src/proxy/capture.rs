//! Bodies that pass every frame through untouched while keeping a copy for the comparison.
//!
//! The client's request streams to the primary and the primary's response streams to the
//! client; neither waits for the copy. Copies are kept as the frames' own `Bytes` (reference
//! counted, not copied) and joined only once, when the body is complete. A body larger than
//! max-body stops being copied, so memory per request stays bounded; every copied byte is
//! first taken from the shadow memory budget ([`crate::budget`]), and a copy that does not
//! fit stops too, so memory over all requests stays bounded.

use crate::budget::Reservation;
use crate::exchange::{Captured, ErrorKind, LegError, LegOutcome, SkipReason};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tokio::sync::oneshot;

/// Frames copied so far, up to a limit, paid for from the shadow's reservation.
#[derive(Debug)]
struct BodyCopy {
    chunks: Vec<Bytes>,
    len: usize,
    max: usize,
    memory: Reservation,
    /// Bytes of `memory` taken for this copy so far (may run ahead of `len`).
    covered: usize,
    /// Why copying stopped, if it did.
    stopped: Option<Stop>,
    /// Trailer fields seen after the data (a gRPC status), kept for the comparison.
    trailers: HeaderMap,
}

/// Why a copy was let go before the body's end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// The body is larger than max-body.
    MaxBody,
    /// The shadow memory budget had no room for the next frame.
    Budget,
    /// Nobody waits for the copy any more (the shadow ended early).
    Unwanted,
}

impl BodyCopy {
    fn new(max: usize, memory: Reservation, covered: usize) -> BodyCopy {
        BodyCopy {
            chunks: Vec::new(),
            len: 0,
            max,
            memory,
            covered,
            stopped: None,
            trailers: HeaderMap::new(),
        }
    }

    fn push(&mut self, data: &Bytes) {
        if self.stopped.is_some() {
            return;
        }
        if self.len + data.len() > self.max {
            return self.stop(Stop::MaxBody);
        }
        let wanted = self.len + data.len();
        if wanted > self.covered {
            if !self.memory.try_grow(wanted - self.covered) {
                return self.stop(Stop::Budget);
            }
            self.covered = wanted;
        }
        self.len += data.len();
        self.chunks.push(data.clone());
    }

    /// Lets the copy go and gives its bytes back to the budget.
    fn stop(&mut self, why: Stop) {
        if self.stopped.is_none() {
            self.stopped = Some(why);
            self.chunks = Vec::new();
            self.len = 0;
            self.memory.shrink(std::mem::take(&mut self.covered));
        }
    }

    fn take(&mut self) -> Bytes {
        join(std::mem::take(&mut self.chunks), self.len)
    }

    /// Copies a polled frame's data and says whether the body is now complete or failed.
    /// `ended` is the inner body's end-of-stream state after the poll: a body that knows
    /// its length ends with its last data frame, without a final `None`.
    fn observe<'e, E>(
        &mut self,
        polled: &'e Option<Result<Frame<Bytes>, E>>,
        ended: bool,
    ) -> Step<'e, E> {
        match polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.push(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    self.trailers.extend(trailers.clone());
                }
                if ended {
                    Step::Complete
                } else {
                    Step::More
                }
            }
            Some(Err(error)) => Step::Failed(error),
            None => Step::Complete,
        }
    }
}

/// Where a teed body stands after one poll.
enum Step<'e, E> {
    More,
    Complete,
    Failed(&'e E),
}

/// Joins chunks into one buffer; a single chunk is returned as it is, without copying.
pub fn join(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut out = BytesMut::with_capacity(len);
            for chunk in chunks {
                out.extend_from_slice(&chunk);
            }
            out.freeze()
        }
    }
}

/// What the shadow leg learns about the client's request body.
pub type RequestBodyResult = Result<Bytes, SkipReason>;

/// The client's request body on its way to the primary, copied for the secondary.
pub struct RequestTee<B> {
    inner: B,
    copy: BodyCopy,
    done: Option<oneshot::Sender<RequestBodyResult>>,
}

impl<B> RequestTee<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    /// `memory` is the shadow's fresh reservation: what it holds now is admission's
    /// reservation of this body's declared length, which the copy uses up first.
    pub fn new(
        inner: B,
        max: usize,
        memory: Reservation,
    ) -> (RequestTee<B>, oneshot::Receiver<RequestBodyResult>) {
        let (tx, rx) = oneshot::channel();
        let covered = memory.bytes();
        let tee = RequestTee {
            inner,
            copy: BodyCopy::new(max, memory, covered),
            done: Some(tx),
        };
        (tee, rx)
    }

    fn settle(&mut self, result: RequestBodyResult) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(result);
        }
    }

    fn settle_complete(&mut self) {
        let result = match self.copy.stopped {
            None => Ok(self.copy.take()),
            Some(Stop::MaxBody) => Err(SkipReason::BodyTooLarge),
            Some(Stop::Budget | Stop::Unwanted) => Err(SkipReason::Overload),
        };
        self.settle(result);
    }
}

impl<B> Body for RequestTee<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match this.copy.observe(&polled, this.inner.is_end_stream()) {
            Step::More => {}
            Step::Complete => this.settle_complete(),
            Step::Failed(_) => this.settle(Err(SkipReason::RequestIncomplete)),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for RequestTee<B> {
    fn drop(&mut self) {
        // The primary stopped reading before the end (it answered early, or failed): the
        // body the secondary would get is not the one the client sent.
        if let Some(tx) = self.done.take() {
            let _ = tx.send(Err(SkipReason::RequestIncomplete));
        }
    }
}

/// What the shadow learns about the primary's response. Sent once, through a oneshot
/// whose slot holds it either way: boxing the large variant would only add an allocation.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum PrimaryCapture {
    /// The primary's whole answer, or how its leg failed.
    Done(LegOutcome),
    /// No whole answer to compare, and not the primary's fault: the client stopped reading
    /// it before its end (`client_aborted`), or it did not fit in the shadow memory budget
    /// (`overload`).
    Skipped(SkipReason),
}

/// The primary's response body on its way to the client, captured for the comparison.
pub struct ResponseTee<B> {
    inner: B,
    copy: BodyCopy,
    status: StatusCode,
    headers: HeaderMap,
    started: Instant,
    /// hyper never polls a body that is empty from the start (HEAD, 204, 304); it drops it.
    empty: bool,
    done: Option<oneshot::Sender<PrimaryCapture>>,
}

impl<B> ResponseTee<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    /// `done` receives the captured response once the client has been sent all of it.
    pub fn new(
        inner: B,
        status: StatusCode,
        headers: HeaderMap,
        started: Instant,
        max: usize,
        memory: Reservation,
        done: oneshot::Sender<PrimaryCapture>,
    ) -> ResponseTee<B> {
        let empty = inner.is_end_stream();
        ResponseTee {
            inner,
            copy: BodyCopy::new(max, memory, 0),
            status,
            headers,
            started,
            empty,
            done: Some(done),
        }
    }

    fn settle(&mut self, capture: PrimaryCapture) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(capture);
        }
    }

    fn settle_complete(&mut self) {
        let latency = self.started.elapsed();
        let capture = match self.copy.stopped {
            None => PrimaryCapture::Done(Ok(Captured {
                status: self.status,
                headers: std::mem::take(&mut self.headers),
                trailers: std::mem::take(&mut self.copy.trailers),
                body: self.copy.take(),
                latency,
            })),
            Some(Stop::MaxBody) => PrimaryCapture::Done(Err(LegError {
                kind: ErrorKind::TooLarge,
                message: format!(
                    "response body larger than max-body ({} bytes)",
                    self.copy.max
                ),
                latency,
            })),
            Some(Stop::Budget | Stop::Unwanted) => PrimaryCapture::Skipped(SkipReason::Overload),
        };
        self.settle(capture);
    }
}

impl<B> Body for ResponseTee<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if this.done.as_ref().is_some_and(|tx| tx.is_closed()) {
            // The shadow ended early (skipped, or the budget refused its secondary's answer).
            this.copy.stop(Stop::Unwanted);
        }
        match this.copy.observe(&polled, this.inner.is_end_stream()) {
            Step::More => {}
            Step::Complete => this.settle_complete(),
            Step::Failed(error) => {
                let outcome = Err(LegError {
                    kind: ErrorKind::Incomplete,
                    message: format!("primary response body failed: {error}"),
                    latency: this.started.elapsed(),
                });
                this.settle(PrimaryCapture::Done(outcome));
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ResponseTee<B> {
    /// hyper drops the body unfinished when the client goes away (closes its connection or
    /// resets its stream): the primary answered, the client did not take all of it.
    fn drop(&mut self) {
        let Some(tx) = self.done.take() else { return };
        let capture = if self.empty {
            PrimaryCapture::Done(Ok(Captured {
                status: self.status,
                headers: std::mem::take(&mut self.headers),
                trailers: HeaderMap::new(),
                body: Bytes::new(),
                latency: self.started.elapsed(),
            }))
        } else {
            PrimaryCapture::Skipped(SkipReason::ClientAborted)
        };
        let _ = tx.send(capture);
    }
}
