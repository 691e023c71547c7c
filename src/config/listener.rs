//! Settings of the client-facing listener: where it binds, TLS, how long a client may take
//! to send its request head, how many connections it holds, how long it drains.

use super::layer::Merge;
use super::value::{ADDRESS, COUNT, DURATION, PATH};
use super::ConfigError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// PEM files of the listener's certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct ListenerConfig {
    pub listen: SocketAddr,
    /// Certificate chain and key files when the listener speaks TLS.
    pub tls: Option<TlsFiles>,
    /// Deadline for a client's request head (and TLS handshake, and HTTP/2 preface).
    pub header_read_timeout: Duration,
    /// Most client connections at once; `None` derives it from the open-file limit when
    /// the listener starts (see [`crate::proxy::listener`]).
    pub max_connections: Option<usize>,
    /// On SIGINT/SIGTERM, how long requests and shadows in flight may take to finish.
    pub drain_timeout: Duration,
}

impl Default for ListenerConfig {
    fn default() -> ListenerConfig {
        ListenerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            header_read_timeout: Duration::from_secs(30),
            max_connections: None,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl ListenerConfig {
    pub(super) fn merge(m: &mut Merge<'_>) -> Result<ListenerConfig, ConfigError> {
        let d = ListenerConfig::default();
        let listen = m.or("listen", &ADDRESS, d.listen)?;
        let tls = match (
            m.optional("tls-cert", &PATH)?,
            m.optional("tls-key", &PATH)?,
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(m.invalid("tls-key", "required with --tls-cert".into())),
            (None, Some(_)) => return Err(m.invalid("tls-cert", "required with --tls-key".into())),
        };
        let header_read_timeout = m.or("header-read-timeout", &DURATION, d.header_read_timeout)?;
        if header_read_timeout.is_zero() {
            return Err(m.invalid("header-read-timeout", "must be more than 0".into()));
        }
        let max_connections = m.optional("max-connections", &COUNT)?;
        if max_connections == Some(0) {
            return Err(m.invalid("max-connections", "must be at least 1".into()));
        }
        Ok(ListenerConfig {
            listen,
            tls,
            header_read_timeout,
            max_connections,
            drain_timeout: m.or("drain-timeout", &DURATION, d.drain_timeout)?,
        })
    }
}
