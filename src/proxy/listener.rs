//! The client-facing listener: accepting under the connection cap, the TLS handshake, the
//! request-head deadline, and handing each connection to hyper.
//!
//! Two limits keep slow or idle clients from locking others out (slowloris):
//! - `--max-connections`: a permit per open client connection, taken *before* accepting, so
//!   at the cap the kernel's backlog holds new clients instead of the process running out of
//!   file descriptors (which would also starve the upstream legs and the store);
//! - `--header-read-timeout`: from accept until the first request head is complete (TLS
//!   handshake and HTTP/2 preface included), enforced here for every protocol; hyper's own
//!   HTTP/1.1 header timer then covers each later request head on a kept-alive connection.

use super::{forward, Proxy};
use crate::metrics::ConnectionMetrics;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::IntGauge;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// File descriptors kept out of the client connection budget for the store, the record
/// file, the admin listener and its scrapes, and the runtime itself.
pub const FD_RESERVE: u64 = 64;

/// No default cap above this: beyond it the open-file limit is not what protects the process.
const MAX_DEFAULT_CONNECTIONS: u64 = 1 << 20;

/// The default `--max-connections` for a process allowed `nofile` open files: after the
/// fixed reserve and one descriptor per possible shadow (`max_inflight`, at most a quarter of
/// the files), half of the rest, because each client connection may hold one primary
/// connection of its own.
pub fn default_max_connections(nofile: u64, max_inflight: usize) -> usize {
    let shadows = (max_inflight as u64).min(nofile / 4);
    let rest = nofile.saturating_sub(FD_RESERVE + shadows);
    (rest / 2).clamp(1, MAX_DEFAULT_CONNECTIONS) as usize
}

/// This process's soft limit on open files; 1024 (the usual default) where it cannot be read.
pub fn open_file_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _hard)| soft)
        .unwrap_or(1024)
}

/// What the accept loop needs besides the proxy.
pub(super) struct ListenerSettings {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub metrics: ConnectionMetrics,
}

/// The HTTP server settings of every client connection.
pub(super) fn http_builder(settings: &ListenerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
}

/// A client connection accepted on the caller's runtime, on its way to a serve worker.
pub(super) struct Accepted {
    /// Out of the accepting runtime's reactor, to be registered with the worker's.
    pub stream: std::net::TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    pub permit: OwnedSemaphorePermit,
    pub watcher: hyper_util::server::graceful::Watcher,
}

/// Accepts connections until `shutdown` resolves and hands each to `dispatch` (the serve
/// workers, [`super::workers`]); one it gives back is served on this runtime. Every
/// connection is watched by `graceful`.
pub(super) async fn accept_loop(
    listener: &TcpListener,
    proxy: Arc<Proxy>,
    settings: Arc<ListenerSettings>,
    mut dispatch: impl FnMut(Accepted) -> Result<(), Accepted>,
    graceful: &GracefulShutdown,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = match limit.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                settings.metrics.limit_waits.inc();
                tracing::warn!(
                    max_connections = settings.max_connections,
                    "client connection limit reached: accepting paused until one closes"
                );
                tokio::select! {
                    permit = limit.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return, // never closed; nothing left to serve if it were
                    },
                    _ = &mut shutdown => return,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            // Out of file descriptors and the like: the connections we have keep being
            // served while accepting backs off.
            accepted = crate::accept::next(listener, "client") => accepted,
            _ = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, %peer, "could not hand an accepted connection on");
                continue;
            }
        };
        let accepted = Accepted {
            stream,
            peer,
            permit,
            watcher: graceful.watcher(),
        };
        if let Err(accepted) = dispatch(accepted) {
            spawn_connection(accepted, &proxy, &settings, &http_builder(&settings));
        }
    }
}

/// Starts serving an accepted connection on the current runtime: a serve worker's, or the
/// accepting one's for a connection a worker gave back.
pub(super) fn spawn_connection(
    accepted: Accepted,
    proxy: &Arc<Proxy>,
    settings: &Arc<ListenerSettings>,
    builder: &auto::Builder<TokioExecutor>,
) {
    let stream = match tokio::net::TcpStream::from_std(accepted.stream) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(%error, peer = %accepted.peer, "could not serve a connection");
            return;
        }
    };
    let connection = Connection {
        proxy: proxy.clone(),
        settings: settings.clone(),
        builder: builder.clone(),
        peer: accepted.peer,
        permit: accepted.permit,
    };
    tokio::spawn(connection.serve(stream, accepted.watcher));
}

/// One accepted client connection and what it holds until it closes.
struct Connection {
    proxy: Arc<Proxy>,
    settings: Arc<ListenerSettings>,
    builder: auto::Builder<TokioExecutor>,
    /// The client's address.
    peer: SocketAddr,
    /// The connection's slot under `--max-connections`, released when it closes.
    permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(
        self,
        stream: tokio::net::TcpStream,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let _open = OpenConnection::new(self.settings.metrics.open.clone());
        let deadline = tokio::time::Instant::now() + self.settings.header_read_timeout;
        match self.settings.tls.clone() {
            None => self.drive(stream, watcher, deadline).await,
            Some(acceptor) => {
                // The handshake runs in the connection's task, so a slow client cannot hold
                // up the accept loop; it counts against the same deadline as the head.
                let handshake = super::tls::handshake(&acceptor, stream);
                match tokio::time::timeout_at(deadline, handshake).await {
                    Ok(Ok(stream)) => self.drive(stream, watcher, deadline).await,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, peer = %self.peer, "TLS handshake failed")
                    }
                    Err(_) => {
                        self.settings.metrics.header_timeouts.inc();
                        tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                    }
                }
            }
        }
    }

    /// Serves HTTP on `io` until the client closes, closing it at `deadline` if no request
    /// head has arrived by then.
    async fn drive<I>(
        self,
        io: I,
        watcher: hyper_util::server::graceful::Watcher,
        deadline: tokio::time::Instant,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            proxy,
            settings,
            builder,
            peer,
            permit: _permit,
        } = self;
        let first_request = Arc::new(AtomicBool::new(false));
        let seen = first_request.clone();
        let client = super::peer::Peer::new(peer);
        let service = service_fn(move |request| {
            seen.store(true, Ordering::Relaxed);
            let (proxy, client) = (proxy.clone(), client.clone());
            async move { forward::handle(proxy, request, &client).await }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = watcher.watch(connection);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = &mut connection => result,
            _ = tokio::time::sleep_until(deadline) => {
                if first_request.load(Ordering::Relaxed) {
                    connection.await
                } else {
                    // Dropping the connection closes the socket.
                    settings.metrics.header_timeouts.inc();
                    tracing::debug!(%peer, "no request head within the header read timeout");
                    return;
                }
            }
        };
        if let Err(error) = result {
            if is_header_timeout(error.as_ref()) {
                settings.metrics.header_timeouts.inc();
            }
            tracing::debug!(%error, %peer, "connection ended with an error");
        }
    }
}

/// hyper's own HTTP/1.1 header timer (for the heads after the first) ends the connection
/// with a timeout error.
fn is_header_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(hyper_error) = error.downcast_ref::<hyper::Error>() {
            return hyper_error.is_timeout();
        }
        source = error.source();
    }
    false
}

/// Counts a connection as open for as long as it lives, however its task ends.
struct OpenConnection(IntGauge);

impl OpenConnection {
    fn new(gauge: IntGauge) -> OpenConnection {
        gauge.inc();
        OpenConnection(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cap_leaves_the_reserve_and_room_for_upstream_connections() {
        assert_eq!(default_max_connections(1024, 1024), (1024 - 64 - 256) / 2);
        assert_eq!(
            default_max_connections(20000, 1024),
            (20000 - 64 - 1024) / 2
        );
        assert_eq!(default_max_connections(10, 1024), 1);
        assert_eq!(
            default_max_connections(u64::MAX, 1024),
            MAX_DEFAULT_CONNECTIONS as usize
        );
    }
}
