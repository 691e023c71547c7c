//! TLS on the listener with a self-signed certificate made here, and the secondary's
//! certificate checked by default, trusted through --secondary-ca, or skipped on request.

use crate::support;

use shadowdiff::config::TlsFiles;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A certificate for `localhost` and its key, as PEM files in `dir`.
fn self_signed(dir: &Path) -> (TlsFiles, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = made.cert.pem();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, &cert_pem).unwrap();
    std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
    (files, cert_pem)
}

fn trusting(cert_pem: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_speaks_tls_with_http2_and_http1() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let (mut config, dir) = support::config(&primary.url(), &secondary.url());
    let (files, cert_pem) = self_signed(dir.path());
    config.listener.tls = Some(files);
    let proxy = support::start(config, dir).await;
    let url = format!("https://localhost:{}/t", proxy.addr.port());

    let response = trusting(&cert_pem, proxy.addr)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2, "h2 by ALPN");
    assert_eq!(response.text().await.unwrap(), "same");
    let http1 = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", proxy.addr)
        .build()
        .unwrap();
    let response = http1.get(&url).send().await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(response.text().await.unwrap(), "same");
    let seen = primary.received();
    assert_eq!(seen[0].headers["x-forwarded-proto"], "https");

    // Plain HTTP on the TLS port gets no response.
    assert!(support::client()
        .get(format!("http://{}/t", proxy.addr))
        .send()
        .await
        .is_err());
    proxy.stop().await;
}

#[tokio::test]
async fn unreadable_certificate_files_are_named() {
    let (mut config, dir) = support::config("http://127.0.0.1:1", "http://127.0.0.1:1");
    config.listener.tls = Some(TlsFiles {
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("key.pem"),
    });
    let error = shadowdiff::proxy::prepare(&config)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("--tls-cert ") && error.contains("missing.pem"),
        "{error}"
    );
}

#[tokio::test]
async fn a_secondary_ca_that_is_not_pem_is_named() {
    let (mut config, dir) = support::config("http://127.0.0.1:1", "https://127.0.0.1:1");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    config.secondary.connect.trust.extra_ca = Some(ca);
    let error = shadowdiff::proxy::prepare(&config)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("--secondary-ca ") && error.contains("ca.pem"),
        "{error}"
    );
}

/// The secondary behind TLS (a second shadowdiff with a self-signed certificate in front
/// of a plain backend), and the outcome of one shadowed request to it.
async fn shadow_to_tls_secondary(
    trust: impl FnOnce(&mut shadowdiff::ServeConfig, &Path),
) -> String {
    let backend = support::fixed(200, "same").await;
    let (mut front, front_dir) = support::config(&backend.url(), &backend.url());
    let (files, _) = self_signed(front_dir.path());
    let ca = front_dir.path().join("ca.pem");
    std::fs::copy(&files.cert, &ca).unwrap();
    front.listener.tls = Some(files);
    front.shadow.sample = 0.0;
    let tls_secondary = support::start(front, front_dir).await;

    let primary = support::fixed(200, "same").await;
    let secondary_url = format!("https://localhost:{}", tls_secondary.addr.port());
    let (mut config, dir) = support::config(&primary.url(), &secondary_url);
    trust(&mut config, &ca);
    let (proxy, admin) = support::start_with_admin(config, dir).await;
    support::client().get(proxy.url("/s")).send().await.unwrap();
    let guard = Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        let text = support::client()
            .get(format!("http://{admin}/status"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let status: serde_json::Value = serde_json::from_str(&text).unwrap();
        let counters = &status["counters"];
        if counters["matched"] == 1 {
            break "matched";
        }
        if counters["errors"] == 1 {
            break "error";
        }
        assert!(Instant::now() < guard, "no outcome: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    proxy.stop().await;
    tls_secondary.stop().await;
    outcome.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secondary_certificate_is_verified_unless_trusted_or_waived() {
    assert_eq!(shadow_to_tls_secondary(|_, _| {}).await, "error");
    assert_eq!(
        shadow_to_tls_secondary(
            |config, ca| config.secondary.connect.trust.extra_ca = Some(ca.to_path_buf())
        )
        .await,
        "matched"
    );
    assert_eq!(
        shadow_to_tls_secondary(|config, _| config.secondary.connect.trust.insecure = true).await,
        "matched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_that_stall_the_handshake_or_the_h2_preface_are_closed() {
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let (mut config, dir) = support::config(&primary.url(), &secondary.url());
    let (files, cert_pem) = self_signed(dir.path());
    config.listener.tls = Some(files);
    config.listener.header_read_timeout = Duration::from_secs(1);
    let (proxy, admin) = support::start_with_admin(config, dir).await;

    // Never sends a ClientHello.
    let mut silent = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    assert!(support::closed_by_peer(&mut silent).await.is_some());

    // Completes the handshake with h2 by ALPN, then sends only part of the preface.
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    stream.flush().await.unwrap();
    assert!(support::closed_by_peer(&mut stream).await.is_some());

    // A well-behaved client is still served.
    let url = format!("https://localhost:{}/t", proxy.addr.port());
    let response = trusting(&cert_pem, proxy.addr)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "same");

    let metrics = support::metrics(admin).await;
    let timeouts = support::value(&metrics, "shadowdiff_client_header_timeouts_total");
    assert_eq!(timeouts, Some(2.0), "{metrics}");
    proxy.stop().await;
}

/// Issue 14: a tunnelled upgrade told the primary `X-Forwarded-Proto: http` even when the
/// client had come in over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_over_tls_reaches_the_primary_as_https() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A primary that records the upgrade's head, then switches protocols.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let primary_addr = listener.local_addr().unwrap();
    let (head_tx, head_rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let _ = head_tx.send(String::from_utf8_lossy(&head).to_lowercase());
        let _ = stream
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
            )
            .await;
        let _ = stream.shutdown().await;
    });
    let secondary = support::fixed(200, "same").await;
    let (mut config, dir) = support::config(&format!("http://{primary_addr}"), &secondary.url());
    let (files, cert_pem) = self_signed(dir.path());
    config.listener.tls = Some(files);
    let proxy = support::start(config, dir).await;

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    let head = tokio::time::timeout(Duration::from_secs(30), head_rx)
        .await
        .unwrap()
        .unwrap();
    assert!(head.contains("x-forwarded-proto: https\r\n"), "{head}");
    drop(stream);
    proxy.stop().await;
}
