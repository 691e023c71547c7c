//! Accepting TCP connections: the one error policy of every listener (the proxy's, the
//! admin endpoint's, the demo's APIs).
//!
//! accept(2) fails for reasons that pass: EMFILE or ENFILE while the process or the system
//! is out of file descriptors, ENOBUFS, ECONNABORTED for a client gone before it was taken.
//! The listener keeps going, and waits a little longer after each failure in a row, from
//! 5 ms up to 1 s, so that running out of descriptors neither spins a core nor leaves new
//! clients waiting long once descriptors are free again. Each failure is logged (at most
//! about once a second while they last).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The next connection on `listener`, however many failed attempts it takes. `what` names
/// the listener in the log (`"client"`, `"admin"`).
pub async fn next(listener: &TcpListener, what: &'static str) -> (TcpStream, SocketAddr) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(%error, listener = what, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
