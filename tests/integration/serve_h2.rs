//! HTTP/2 upstreams: `h2c://` (prior knowledge, as gRPC services speak it) and `https`
//! with `h2` chosen by ALPN, end to end through serve and replay, against upstreams that
//! speak nothing but HTTP/2 and answer gRPC-style with trailers.

use crate::support;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use shadowdiff::config::ServeConfig;
use shadowdiff::replay::{replay, ProgressMode, ReplayOptions};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use support::{config, report_json, start};
use tokio::net::{TcpListener, TcpStream};

/// What an upstream saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    version: Version,
    path: String,
    te: Option<String>,
}

/// An upstream that speaks only HTTP/2 (over TLS with ALPN `h2` alone when `tls` is set)
/// and answers every call with a body and the trailers `grpc-status` and `grpc-message`,
/// plus `x-other-trailer`.
struct Grpc {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Grpc {
    async fn start(
        status: &'static str,
        message: &'static str,
        other: &'static str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Grpc {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, tls) = (log.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            log.lock().unwrap().push(Seen {
                                version: request.version(),
                                path: request.uri().path().to_string(),
                                te: request
                                    .headers()
                                    .get("te")
                                    .map(|v| v.to_str().unwrap().to_string()),
                            });
                            let _ = request.into_body().collect().await;
                            Ok::<_, Infallible>(grpc_answer(status, message, other))
                        }
                    });
                    let h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => h2.serve_connection(TokioIo::new(stream), service).await,
                            Err(_) => return,
                        },
                        None => h2.serve_connection(TokioIo::new(stream), service).await,
                    };
                });
            }
        });
        Grpc { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

type Answer =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn grpc_answer(status: &str, message: &str, other: &str) -> Response<Answer> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_str(status).unwrap());
    trailers.insert("grpc-message", HeaderValue::from_str(message).unwrap());
    trailers.insert("x-other-trailer", HeaderValue::from_str(other).unwrap());
    let frames = vec![
        Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi"))),
        Ok(Frame::trailers(trailers)),
    ];
    Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap()
}

/// One gRPC-style call to the proxy over cleartext HTTP/2 (prior knowledge), as a gRPC
/// client makes it: (status, body, trailers).
async fn call(proxy: SocketAddr, path: &str) -> (u16, Bytes, HeaderMap) {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::post(format!("http://{proxy}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x00")))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    (status, collected.to_bytes(), trailers)
}

/// Every difference path the report lists, over all routes.
fn difference_paths(db: &std::path::Path) -> Vec<String> {
    let report = report_json(db);
    let mut paths: Vec<String> = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|route| route["top_differences"].as_array().unwrap().clone())
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

fn h2c(addr: SocketAddr) -> String {
    format!("h2c://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upstreams_get_te_trailers_and_the_client_gets_their_trailers_unchanged() {
    let primary = Grpc::start("0", "ok", "a", None).await;
    let secondary = Grpc::start("5", "not found", "b", None).await;
    let (mut config, dir) = config(&h2c(primary.addr), &format!("{}/v2", h2c(secondary.addr)));
    // gRPC calls are POSTs: shadowing them is the user's explicit choice.
    config.shadow.shadow_writes = true;
    let proxy = start(config, dir).await;
    let (status, body, trailers) = call(proxy.addr, "/pkg.Users/Get").await;
    let db = proxy.stop().await;

    assert_eq!(status, 200);
    assert_eq!(&body[..], b"\0\0\0\0\x02hi");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "ok");
    assert_eq!(trailers["x-other-trailer"], "a");
    for (leg, seen, path) in [
        ("primary", primary.seen(), "/pkg.Users/Get"),
        ("secondary", secondary.seen(), "/v2/pkg.Users/Get"),
    ] {
        assert_eq!(seen.len(), 1, "{leg}: {seen:?}");
        assert_eq!(seen[0].version, Version::HTTP_2, "{leg}");
        assert_eq!(seen[0].te.as_deref(), Some("trailers"), "{leg}");
        assert_eq!(seen[0].path, path, "{leg}");
    }
    // grpc-status and grpc-message are compared by default; other trailers are not.
    assert_eq!(
        difference_paths(&db),
        ["trailers.grpc-message", "trailers.grpc-status"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_trailers_are_compared_when_listed_like_headers_and_equal_status_matches() {
    let primary = Grpc::start("0", "ok", "a", None).await;
    let secondary = Grpc::start("0", "ok", "b", None).await;
    let (mut config, dir) = config(&h2c(primary.addr), &h2c(secondary.addr));
    config.shadow.shadow_writes = true;
    let (unlisted, unlisted_dir) = {
        let (mut c, d) = support::config(&h2c(primary.addr), &h2c(secondary.addr));
        c.shadow.shadow_writes = true;
        (c, d)
    };
    config.rules.compare.headers.push("x-other-trailer".into());

    let proxy = start(unlisted, unlisted_dir).await;
    call(proxy.addr, "/pkg.Users/Get").await;
    let db = proxy.stop().await;
    assert_eq!(report_json(&db)["summary"]["matched"], 1);

    let proxy = start(config, dir).await;
    call(proxy.addr, "/pkg.Users/Get").await;
    let db = proxy.stop().await;
    assert_eq!(difference_paths(&db), ["trailers.x-other-trailer"]);
}

/// A TLS acceptor for `localhost` offering `h2` alone, and the CA file that trusts it.
fn h2_only_tls(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, made.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec()];
    (tokio_rustls::TlsAcceptor::from(Arc::new(server)), ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_secondary_that_offers_only_h2_is_reached_over_http2_by_alpn() {
    let certs = tempfile::tempdir().unwrap();
    let (tls, ca) = h2_only_tls(certs.path());
    let primary = Grpc::start("0", "ok", "a", None).await;
    let secondary = Grpc::start("0", "ok", "a", Some(tls)).await;
    let (mut config, dir) = config(
        &h2c(primary.addr),
        &format!("https://localhost:{}", secondary.addr.port()),
    );
    config.shadow.shadow_writes = true;
    config.secondary.connect.trust.extra_ca = Some(ca);
    let proxy = start(config, dir).await;
    let (status, _, trailers) = call(proxy.addr, "/pkg.Users/Get").await;
    let db = proxy.stop().await;

    assert_eq!(status, 200);
    assert_eq!(trailers["grpc-status"], "0");
    let seen = secondary.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].version, Version::HTTP_2);
    assert_eq!(seen[0].te.as_deref(), Some("trailers"));
    assert_eq!(report_json(&db)["summary"]["matched"], 1);
}

#[test]
fn replay_sends_to_h2c_upstreams_and_compares_their_grpc_status() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (primary, secondary) = runtime.block_on(async {
        (
            Grpc::start("0", "ok", "a", None).await,
            Grpc::start("13", "internal", "a", None).await,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("traffic.jsonl");
    std::fs::write(
        &traffic,
        "{\"method\":\"POST\",\"path\":\"/pkg.Users/Get\",\"headers\":[[\"te\",\"trailers\"],[\"content-type\",\"application/grpc\"]],\"body\":\"\"}\n",
    )
    .unwrap();
    let mut config = ServeConfig::new(&h2c(primary.addr), &h2c(secondary.addr)).unwrap();
    config.store.location = (dir.path().join("replay.db")).into();
    config.shadow.shadow_writes = true;
    let options = ReplayOptions {
        input: traffic,
        format: None,
        config,
        concurrency: 1,
        threads: 1,
        rate: None,
        repeat: 1,
        skip_invalid: false,
        progress: ProgressMode::Quiet,
        against_recorded: false,
    };
    let summary = runtime.block_on(replay(options)).unwrap();
    assert_eq!(
        (summary.requests, summary.mismatched),
        (1, 1),
        "{summary:?}"
    );
    for seen in [primary.seen(), secondary.seen()] {
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].version, Version::HTTP_2);
        assert_eq!(seen[0].te.as_deref(), Some("trailers"));
    }
    assert_eq!(
        difference_paths(summary.store.sqlite_path().expect("an SQLite store")),
        ["trailers.grpc-message", "trailers.grpc-status"]
    );
}

#[test]
fn an_h2c_upstream_url_is_accepted_and_a_foreign_scheme_is_named() {
    assert!(ServeConfig::new("h2c://127.0.0.1:50051", "http://127.0.0.1:1").is_ok());
    let error = ServeConfig::new("grpc://127.0.0.1:50051", "http://127.0.0.1:1").unwrap_err();
    assert!(
        error.to_string().contains("is not http, https or h2c"),
        "{error}"
    );
}
