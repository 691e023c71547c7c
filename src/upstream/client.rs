//! The pooled HTTP client behind every upstream leg: hyper-util's connection pool over a
//! TCP connector, with rustls for `https` (HTTP/2 or HTTP/1.1 chosen by ALPN, RFC 7301)
//! and HTTP/2 with prior knowledge for `h2c` upstreams (RFC 9113 section 3.3).
//!
//! Built on hyper-util rather than written by hand: its pool (checkout, idle reaping,
//! HTTP/2 connection sharing, retrying a request that a closing connection never wrote) is
//! exactly the part a proxy should not reinvent. What is shadowdiff's own is the trust
//! setting of each upstream, the head cap, and that nothing is followed or decompressed.

use super::MAX_RESPONSE_HEAD;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// TCP, then TLS for `https` URIs.
pub type Connector = HttpsConnector<HttpConnector>;

/// The pooled client of one upstream, for request bodies of type `B`.
pub type Pool<B> = Client<Connector, B>;

/// How the connection to an upstream speaks HTTP, decided by its URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `http`: HTTP/1.1 over TCP.
    Http,
    /// `https`: TLS, then HTTP/2 when the upstream offers `h2` by ALPN, else HTTP/1.1.
    Https,
    /// `h2c`: HTTP/2 over TCP with prior knowledge, as gRPC services speak it.
    H2c,
}

impl Protocol {
    /// The protocol named by an upstream URL's scheme, if shadowdiff speaks it.
    pub fn from_scheme(scheme: &str) -> Option<Protocol> {
        match scheme {
            "http" => Some(Protocol::Http),
            "https" => Some(Protocol::Https),
            "h2c" => Some(Protocol::H2c),
            _ => None,
        }
    }
}

/// Which servers' certificates an `https` upstream accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// Certificates trusted besides the system's roots (`--secondary-ca`).
    pub extra_ca: Option<PathBuf>,
    /// Accept any certificate (`--insecure-secondary`): test environments only.
    pub insecure: bool,
}

/// How an upstream is reached: whom its TLS may present, and how long a TCP connect may
/// take before the leg fails as a connect error (unset: the leg's own timeout bounds it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connect {
    pub trust: Trust,
    pub timeout: Option<Duration>,
}

/// Why an upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("upstream URL: {reason}")]
    Url { reason: String },
    #[error("--secondary-ca {}: {reason}", path.display())]
    Ca { path: PathBuf, reason: String },
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
}

/// The connector of one upstream: TCP, and TLS with the upstream's trust for `https`.
/// Built once (reading `--secondary-ca` and the system's roots); every pool of that
/// upstream shares it.
pub fn connector(protocol: Protocol, connect: &Connect) -> Result<Connector, ClientError> {
    let mut tcp = HttpConnector::new();
    // A host that drops SYNs holds a shadow's permit until the leg's timeout; a connect
    // deadline fails it sooner, so the breaker sees it sooner.
    tcp.set_connect_timeout(connect.timeout);
    // Requests are written whole; waiting for an ACK before the next small write only adds
    // latency (RFC 896's algorithm is for interactive byte streams).
    tcp.set_nodelay(true);
    // The https connector below decides the scheme; the TCP connector must not refuse it.
    tcp.enforce_http(false);
    let tls = match protocol {
        Protocol::Https => tls_config(&connect.trust)?,
        // Never used for a handshake: these upstreams are reached over plain TCP.
        Protocol::Http | Protocol::H2c => rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp))
}

/// Idle connections a pool keeps unless told otherwise ([`Upstream::new`]).
///
/// [`Upstream::new`]: super::Upstream::new
pub const DEFAULT_MAX_IDLE: usize = 256;

/// A connection pool over `connector`. Connections are kept for 60 s idle and up to
/// `max_idle` of them; redirects are never followed and no proxy from the environment is
/// used: shadowdiff sends exactly one request per leg, to exactly the configured upstream.
/// The pool's connections are driven by tasks of the runtime that opened them, so each
/// serve worker has a pool of its own ([`crate::proxy::workers`]).
///
/// `max_idle` should cover the leg's peak concurrency: a connection coming back to a full
/// pool is closed, so a leg busier than its cap opens (and closes) a connection for every
/// request past it. Serve sizes it from the limits that bound that concurrency.
pub fn pool<B>(protocol: Protocol, connector: Connector, max_idle: usize) -> Pool<B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(max_idle)
        // The head cap (RFC 9110 section 5.4 leaves the limit to the recipient): hyper stops
        // reading a head past it instead of growing its buffer to its 400 KB default.
        .http1_max_buf_size(MAX_RESPONSE_HEAD)
        .http2_max_header_list_size(MAX_RESPONSE_HEAD as u32)
        // The Host header is always set by the request builder, never by the pool.
        .set_host(false)
        .http2_only(protocol == Protocol::H2c);
    builder.build(connector)
}

/// The one cryptography provider: ring, as the listener's TLS uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS settings of an `https` upstream: the system's roots plus the extra CA, or no
/// verification at all when asked.
pub(crate) fn tls_config(trust: &Trust) -> Result<rustls::ClientConfig, ClientError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    if trust.insecure {
        let verifier = Arc::new(AcceptAnyCertificate(provider()));
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth());
    }
    let mut roots = system_roots().clone();
    if let Some(path) = &trust.extra_ca {
        let ca_error = |reason: String| ClientError::Ca {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate =
                certificate.map_err(|e| ca_error(format!("not a PEM certificate: {e}")))?;
            roots
                .add(certificate)
                .map_err(|e| ca_error(format!("not a usable CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("no PEM certificate in the file".into()));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The system's trusted roots, read once per process, plus the Mozilla roots built in
/// (webpki-roots), so a minimal container without a CA bundle still reaches public
/// `https` upstreams.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::debug!(%error, "reading the system's trusted certificates");
        }
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        tracing::debug!(added, ignored, "system roots loaded");
        roots
    })
}

/// `--insecure-secondary`: every certificate is accepted; signatures are still checked
/// so the handshake itself stays sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
