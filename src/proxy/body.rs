//! The two bodies of the hot path, as enums rather than boxed trait objects, so a proxied
//! request costs no allocation for either: [`PrimaryBody`], what the primary is sent, and
//! [`ProxyBody`], what the client gets back.

use super::capture::{RequestTee, ResponseTee};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The request body sent to the primary: known in full (none, or the tunnel's empty one),
/// the client's body as it streams, or that stream teed for the shadow.
pub enum PrimaryBody {
    Full(Full<Bytes>),
    Client(WatchedBody<Incoming>),
    /// Boxed: the tee is large, and a request that is not shadowed should not move it.
    Teed(Box<RequestTee<WatchedBody<Incoming>>>),
}

impl From<Bytes> for PrimaryBody {
    fn from(bytes: Bytes) -> PrimaryBody {
        PrimaryBody::Full(Full::new(bytes))
    }
}

impl Body for PrimaryBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            PrimaryBody::Full(full) => poll_full(full, cx),
            PrimaryBody::Client(body) => Pin::new(body).poll_frame(cx),
            PrimaryBody::Teed(body) => Pin::new(&mut **body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            PrimaryBody::Full(full) => full.is_end_stream(),
            PrimaryBody::Client(body) => body.is_end_stream(),
            PrimaryBody::Teed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            PrimaryBody::Full(full) => full.size_hint(),
            PrimaryBody::Client(body) => body.size_hint(),
            PrimaryBody::Teed(body) => body.size_hint(),
        }
    }
}

/// Every response body the proxy returns: the primary's, streamed (and teed when the
/// request is shadowed), or a short text of shadowdiff's own.
pub enum ProxyBody {
    Primary(Incoming),
    /// Boxed: the tee is large, and a response that is not shadowed should not move it.
    Teed(Box<ResponseTee<Incoming>>),
    Text(Full<Bytes>),
}

impl ProxyBody {
    pub fn text(text: impl Into<Bytes>) -> ProxyBody {
        ProxyBody::Text(Full::new(text.into()))
    }

    pub fn empty() -> ProxyBody {
        ProxyBody::Text(Full::default())
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Primary(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Teed(body) => Pin::new(&mut **body).poll_frame(cx),
            ProxyBody::Text(full) => poll_full(full, cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Primary(body) => body.is_end_stream(),
            ProxyBody::Teed(body) => body.is_end_stream(),
            ProxyBody::Text(full) => full.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Primary(body) => body.size_hint(),
            ProxyBody::Teed(body) => body.size_hint(),
            ProxyBody::Text(full) => full.size_hint(),
        }
    }
}

/// A `Full` body's next frame, in the error type of the bodies around it (it has none).
fn poll_full(
    full: &mut Full<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
    Pin::new(full)
        .poll_frame(cx)
        .map(|frame| frame.map(|result| result.map_err(|never| match never {})))
}

/// The client's request body, remembering whether it failed, so that a forwarding error
/// caused by the client's own bytes is answered as the client's error.
pub struct WatchedBody<B> {
    inner: B,
    failed: Arc<AtomicBool>,
}

impl<B> WatchedBody<B> {
    pub fn new(inner: B) -> (WatchedBody<B>, BodyFailed) {
        let failed = Arc::new(AtomicBool::new(false));
        (
            WatchedBody {
                inner,
                failed: failed.clone(),
            },
            BodyFailed(failed),
        )
    }
}

/// Tells, after the fact, whether the client's body failed.
#[derive(Clone, Debug)]
pub struct BodyFailed(Arc<AtomicBool>);

impl BodyFailed {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl<B> Body for WatchedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.failed.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
