//! Replay keeps one connection per worker and upstream: these pin what happens when an
//! upstream closes kept-alive connections (a request limit, `Connection: close`), and that
//! an upstream's base path prefixes every request, and that a response head over the cap
//! is refused.

use crate::support::replay as replay_support;

use replay_support::Servers;
use shadowdiff::config::ServeConfig;
use shadowdiff::replay::{replay, ProgressMode, ReplayOptions, ReplaySummary};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 server that answers `requests_per_connection` requests on a connection
/// and then closes it without warning, as a server with a keep-alive request limit or a
/// short idle timeout does. It counts the request targets it answered.
struct ClosingServer {
    addr: SocketAddr,
    answered: Arc<Mutex<BTreeMap<String, usize>>>,
    _runtime: tokio::runtime::Runtime,
}

impl ClosingServer {
    fn start(requests_per_connection: usize, announce_close: bool) -> ClosingServer {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let answered = Arc::new(Mutex::new(BTreeMap::new()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let log = answered.clone();
        runtime.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    for served in 1..=requests_per_connection {
                        let Some(target) = read_head(&mut stream, &mut buffer).await else {
                            return;
                        };
                        *log.lock().unwrap().entry(target.clone()).or_insert(0) += 1;
                        let last = served == requests_per_connection;
                        let close = if last && announce_close {
                            "connection: close\r\n"
                        } else {
                            ""
                        };
                        let body = format!("{{\"target\":\"{target}\"}}");
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{close}content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    // Dropping the stream closes it, with or without the warning above.
                });
            }
        });
        ClosingServer {
            addr,
            answered,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answered(&self) -> BTreeMap<String, usize> {
        self.answered.lock().unwrap().clone()
    }
}

/// Reads one request head (the test traffic has no bodies); its request target.
async fn read_head(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            buffer.drain(..end + 4);
            return head.split(' ').nth(1).map(str::to_string);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn traffic(dir: &Path, requests: usize) -> std::path::PathBuf {
    let path = dir.join("traffic.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..requests {
        writeln!(file, r#"{{"method":"GET","path":"/items/{i}"}}"#).unwrap();
    }
    path
}

fn replay_between(primary: &str, secondary: &str, requests: usize) -> ReplaySummary {
    let dir = tempfile::tempdir().unwrap();
    replay_in(dir.path(), primary, secondary, requests)
}

/// [`replay_between`] with the traffic file and the store in `dir`, kept for reading.
fn replay_in(dir: &Path, primary: &str, secondary: &str, requests: usize) -> ReplaySummary {
    let mut config = ServeConfig::new(primary, secondary).unwrap();
    config.store.location = (dir.join("replay.db")).into();
    let options = ReplayOptions {
        input: traffic(dir, requests),
        format: None,
        config,
        concurrency: 4,
        threads: 2,
        rate: None,
        repeat: 1,
        skip_invalid: false,
        progress: ProgressMode::Quiet,
        against_recorded: false,
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replay(options))
        .unwrap()
}

/// 60 requests between two closing servers: all matched, each answered exactly once.
fn nothing_lost_and_nothing_repeated(primary: ClosingServer, secondary: ClosingServer) {
    let summary = replay_between(&primary.url(), &secondary.url(), 60);
    assert_eq!(
        (summary.requests, summary.matched, summary.errors),
        (60, 60, 0)
    );
    let each_once: BTreeMap<String, usize> = (0..60).map(|i| (format!("/items/{i}"), 1)).collect();
    assert_eq!(primary.answered(), each_once);
    assert_eq!(secondary.answered(), each_once);
}

#[test]
fn upstreams_that_close_after_every_response_lose_nothing_and_see_each_request_once() {
    nothing_lost_and_nothing_repeated(
        ClosingServer::start(1, false),
        ClosingServer::start(1, true),
    );
}

#[test]
fn upstreams_with_a_keep_alive_request_limit_lose_nothing_and_see_each_request_once() {
    nothing_lost_and_nothing_repeated(
        ClosingServer::start(3, false),
        ClosingServer::start(2, false),
    );
}

#[test]
fn an_upstream_base_path_prefixes_every_replayed_request() {
    let servers = Servers::start();
    let secondary = format!("{}/v2/", servers.secondary_url());
    let summary = replay_between(&servers.primary_url(), &secondary, 3);
    assert_eq!(summary.requests, 3);
    let mut paths: Vec<String> = servers
        .secondary_received()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/v2/items/0", "/v2/items/1", "/v2/items/2"]);
    let hosts: Vec<String> = servers
        .secondary_received()
        .iter()
        .map(|r| r.headers["host"].to_str().unwrap().to_string())
        .collect();
    assert!(hosts.iter().all(|h| *h == servers.secondary.to_string()));
}

#[test]
fn upstreams_receive_exactly_the_recorded_headers_plus_host_and_the_replay_mark() {
    let servers = Servers::start();
    replay_between(&servers.primary_url(), &servers.secondary_url(), 2);
    for received in servers
        .primary_received()
        .iter()
        .chain(servers.secondary_received().iter())
    {
        let mut names: Vec<&str> = received.headers.keys().map(|n| n.as_str()).collect();
        names.sort();
        assert_eq!(names, ["host", "x-shadowdiff"], "{:?}", received.uri);
    }
}

#[test]
fn an_https_upstream_goes_through_the_tls_client_never_a_plain_connection() {
    // A plain HTTP server behind an https URL: a plain connection would get answers, the
    // TLS client cannot complete a handshake, so every request is a primary error.
    let servers = Servers::start();
    let https = format!("https://{}", servers.primary);
    let summary = replay_between(&https, &servers.secondary_url(), 3);
    assert_eq!(
        (summary.requests, summary.matched, summary.errors),
        (3, 0, 3)
    );
    assert!(servers.primary_received().is_empty());
}

/// A raw upstream answering every request with a header field of `filler` bytes.
fn big_head_server(runtime: &tokio::runtime::Runtime, filler: usize) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                while read_head(&mut stream, &mut buffer).await.is_some() {
                    let mut response = b"HTTP/1.1 200 OK\r\nx-filler: ".to_vec();
                    response.resize(response.len() + filler, b'a');
                    response.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\nok");
                    if stream.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Replays 3 requests against an upstream whose heads carry `filler` bytes: the error
/// counts by reason.
fn errors_with_head_of(filler: usize) -> Vec<(String, i64)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let secondary = format!("http://{}", big_head_server(&runtime, filler));
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let summary = replay_in(dir.path(), &servers.primary_url(), &secondary, 3);
    assert_eq!(summary.requests, 3);
    rusqlite::Connection::open(summary.store.sqlite_path().expect("an SQLite store"))
        .unwrap()
        .prepare(
            "SELECT reason, SUM(count) FROM outcome_counts WHERE outcome = 'error' GROUP BY reason",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_response_head_over_the_cap_is_a_head_too_large_error_of_its_leg() {
    let refused = [("secondary:head_too_large".to_string(), 3)];
    assert_eq!(errors_with_head_of(1024 * 1024), refused);
    // Past the 64 KiB cap but within hyper's own 400 KB default: refused by the cap alone.
    assert_eq!(errors_with_head_of(128 * 1024), refused);
    // A large but reasonable head is read as usual.
    assert_eq!(errors_with_head_of(16 * 1024), []);
}
