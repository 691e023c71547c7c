//! A replay worker's own HTTP/1.1 connection to one plain-HTTP upstream.
//!
//! A replay worker sends one request at a time to each upstream, so a pooled client buys it
//! nothing and costs it per request: a pool checkout under a lock, a URL parsed again, a
//! task spawned to return the connection to the pool. Here each worker keeps one connection
//! per upstream for its whole run. The request is prepared by the same [`Upstream`] rules as
//! every other leg (target with the base path, Host) and its body read under the same cap
//! ([`super::read_capped`]), so the transport changes nothing that is compared.
//!
//! Keep-alive connections close (an idle timeout on the upstream, a `Connection: close`
//! answer, an error): the next request then opens a new one. A request caught by such a
//! close is sent again once on a fresh connection when that cannot repeat an effect: it
//! was never written, or its method is safe. A written write is never sent twice.

use super::{error_chain, read_capped, BodyCap, FetchOptions, Upstream, MAX_RESPONSE_HEAD};
use crate::exchange::{is_write, Captured, ErrorKind, LegError};
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

/// One worker's connection to one upstream; opened on first use and after a close.
#[derive(Debug, Default)]
pub struct Connection {
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// Sends a request with a complete body and reads the complete response, under the
    /// timeout and the body cap, like [`Upstream::fetch`]. `upstream` must be plain HTTP
    /// ([`Upstream::plain_http_address`]).
    pub async fn fetch(
        &mut self,
        upstream: &Upstream,
        options: FetchOptions,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Captured, LegError> {
        let started = Instant::now();
        upstream.set_host(&mut headers, options.preserve_host);
        let request = Prepared {
            method,
            target: upstream.origin_form(path_and_query)?,
            headers,
            body,
        };
        let leg = async {
            let response = self.send(upstream, &request, started).await?;
            let cap = BodyCap {
                max_body: options.max_body,
                memory: None,
            };
            read_capped(response, cap, started, |e| {
                hyper_error(&e, started.elapsed())
            })
            .await
        };
        let outcome = match tokio::time::timeout(options.timeout, leg).await {
            Ok(outcome) => outcome,
            Err(_) => Err(options.timed_out(started)),
        };
        if outcome.is_err() {
            // Whatever went wrong may have left the connection mid-message: start afresh.
            self.sender = None;
        }
        outcome
    }

    /// Sends on the open connection, or on a new one. When a kept-alive connection turns
    /// out to be closed, the request goes once more on a new connection if that cannot
    /// repeat an effect: it was never written, or its method is safe (RFC 9110 section
    /// 9.2.2 allows retrying idempotent requests; writes, method overrides included, are held
    /// to "never written").
    async fn send(
        &mut self,
        upstream: &Upstream,
        request: &Prepared,
        started: Instant,
    ) -> Result<http::Response<hyper::body::Incoming>, LegError> {
        let mut retried = false;
        loop {
            let reused = matches!(&self.sender, Some(sender) if !sender.is_closed());
            if !reused {
                self.sender = Some(connect(upstream, started).await?);
            }
            let sender = self.sender.as_mut().expect("connected above");
            let may_retry = reused && !retried;
            let sent = match sender.ready().await {
                Ok(()) => sender.try_send_request(request.to_request()).await,
                Err(_) if may_retry => {
                    // Closed while idle: nothing was written.
                    self.sender = None;
                    retried = true;
                    continue;
                }
                Err(e) => return Err(hyper_error(&e, started.elapsed())),
            };
            match sent {
                Ok(response) => return Ok(response),
                Err(e) => {
                    self.sender = None;
                    let unsent = e.message().is_some();
                    let repeatable = !is_write(&request.method, &request.headers)
                        && closed_by_upstream(e.error());
                    if may_retry && (unsent || repeatable) {
                        retried = true;
                        continue;
                    }
                    return Err(hyper_error(e.error(), started.elapsed()));
                }
            }
        }
    }
}

/// A request ready to be written, kept so that it can be written again on a new
/// connection.
struct Prepared {
    method: Method,
    target: http::Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    fn to_request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.target.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// The upstream closed a kept-alive connection as the request went out: the race every
/// keep-alive client meets when a server's idle timeout or request limit closes it.
fn closed_by_upstream(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        source = cause.source();
    }
    false
}

/// Opens a TCP connection and the HTTP/1.1 state machine on it; the connection itself
/// runs as its own task until either side closes it.
async fn connect(
    upstream: &Upstream,
    started: Instant,
) -> Result<http1::SendRequest<Full<Bytes>>, LegError> {
    let connect_error = |message: String| LegError {
        kind: ErrorKind::Connect,
        message,
        latency: started.elapsed(),
    };
    let (host, port) = upstream
        .plain_http_address()
        .ok_or_else(|| connect_error("a direct connection needs a plain http upstream".into()))?;
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| connect_error(format!("cannot connect to {host}:{port}: {e}")))?;
    // Requests are written whole; waiting for an ACK before the next small write only adds
    // latency (RFC 896's algorithm is for interactive byte streams).
    let _ = stream.set_nodelay(true);
    // The head cap: hyper stops reading (and re-parsing) a head past it, instead of
    // growing its buffer to its 400 KB default.
    let (sender, connection) = http1::Builder::new()
        .max_buf_size(MAX_RESPONSE_HEAD)
        .max_header_size(MAX_RESPONSE_HEAD)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connect_error(error_chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// An error of the connection after it was opened: the upstream broke the exchange, or
/// sent a head over the cap.
fn hyper_error(error: &hyper::Error, latency: Duration) -> LegError {
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
