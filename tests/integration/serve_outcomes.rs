//! What `shadowdiff serve` records: every request ends up compared, or counted with the
//! reason it was not, and read back through the real `report` binary.

use crate::support;

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::*;

fn report(db: &Path) -> Value {
    report_json(db)
}

fn route<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_mismatches_and_skips_are_counted_per_route() {
    let primary = backend(|r| async move {
        if r.uri.path().starts_with("/users/") {
            text(200, "same")
        } else {
            text(200, "old answer")
        }
    })
    .await;
    let secondary = backend(|r| async move {
        if r.uri.path().starts_with("/users/") {
            text(200, "same")
        } else {
            text(500, "new answer")
        }
    })
    .await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    let http = client();
    for id in 0..5 {
        http.get(proxy.url(&format!("/users/{id}")))
            .send()
            .await
            .unwrap();
    }
    for _ in 0..3 {
        http.get(proxy.url("/search?q=x")).send().await.unwrap();
    }
    http.post(proxy.url("/users/9"))
        .body("{}")
        .send()
        .await
        .unwrap();
    http.get(proxy.url("/users/1"))
        .header("x-shadowdiff", "shadow")
        .send()
        .await
        .unwrap();
    let db = proxy.stop().await;

    let report = report(&db);
    let summary = &report["summary"];
    assert_eq!(summary["matched"], 5);
    assert_eq!(summary["mismatched"], 3);
    assert_eq!(summary["errors"], 0);
    assert_eq!(summary["skipped"], 2);
    assert_eq!(summary["mismatch_rate"], 3.0 / 8.0);
    let users = route(&report, "GET /users/{id}");
    assert_eq!(users["matched"], 5);
    assert_eq!(users["skipped"], 1);
    assert_eq!(users["skipped_by_reason"]["loop"], 1);
    assert_eq!(users["mismatch_rate"], 0.0);
    let search = route(&report, "GET /search");
    assert_eq!(search["mismatched"], 3);
    assert_eq!(search["mismatch_rate"], 1.0);
    let post = route(&report, "POST /users/{id}");
    assert_eq!(post["skipped_by_reason"]["method_not_shadowed"], 1);
}

/// Sends three requests with `secondary_url` as the secondary; returns the report.
async fn errors_recorded_with(secondary_url: String, timeout: Duration) -> Value {
    let primary = fixed(200, "primary").await;
    let (mut config, dir) = config(&primary.url(), &secondary_url);
    config.secondary.timeout = timeout;
    let proxy = start(config, dir).await;
    for _ in 0..3 {
        let response = client().get(proxy.url("/e")).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "primary");
    }
    let db = proxy.stop().await;
    report(&db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_secondary_is_recorded_as_an_error_with_its_kind() {
    let down = closed_port().await;
    let report = errors_recorded_with(format!("http://{down}"), Duration::from_secs(5)).await;
    assert_eq!(report["summary"]["errors"], 3);
    assert_eq!(report["summary"]["errors_by_kind"]["secondary:connect"], 3);

    let slow = backend(|_| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        text(200, "late")
    })
    .await;
    let report = errors_recorded_with(slow.url(), Duration::from_millis(200)).await;
    assert_eq!(report["summary"]["errors_by_kind"]["secondary:timeout"], 3);

    let (resetting, _r) = resetting().await;
    let report = errors_recorded_with(format!("http://{resetting}"), Duration::from_secs(5)).await;
    assert_eq!(report["summary"]["errors"], 3);
    assert_eq!(report["summary"]["errors_by_kind"]["secondary:protocol"], 3);

    let (garbage, _g) = garbage().await;
    let report = errors_recorded_with(format!("http://{garbage}"), Duration::from_secs(5)).await;
    assert_eq!(report["summary"]["errors_by_kind"]["secondary:protocol"], 3);
    assert_eq!(report["summary"]["matched"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_body_over_max_body_is_too_large() {
    let primary = fixed(200, "small").await;
    let secondary = backend(|_| async { text(200, &"x".repeat(4096)) }).await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.shadow.max_body = 1024;
    let proxy = start(config, dir).await;
    client().get(proxy.url("/big")).send().await.unwrap();
    let report = report(&proxy.stop().await);
    assert_eq!(
        report["summary"]["errors_by_kind"]["secondary:too_large"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_stores_every_completed_exchange() {
    // The secondary is slower than the primary, so shadows are still in flight at the stop.
    let primary = fixed(200, "same").await;
    let secondary = backend(|_| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        text(200, "same")
    })
    .await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    let http = client();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let http = http.clone();
        let url = proxy.url(&format!("/items/{i}"));
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().text().await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), "same");
    }
    let db = proxy.stop().await;
    let report = report(&db);
    assert_eq!(report["summary"]["matched"], 200, "{:#}", report["summary"]);
    assert_eq!(report["summary"]["dropped"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_redacted_before_they_reach_the_database() {
    let primary = backend(|_| async {
        http::Response::builder()
            .header("set-cookie", "session=primary-s3cret")
            .body(full("a"))
            .unwrap()
    })
    .await;
    let secondary = backend(|_| async {
        http::Response::builder()
            .header("set-cookie", "session=secondary-s3cret")
            .body(full("b"))
            .unwrap()
    })
    .await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    client()
        .get(proxy.url("/me"))
        .header("authorization", "Bearer auth-s3cret")
        .header("cookie", "sid=cookie-s3cret")
        .header("proxy-authorization", "Basic proxy-s3cret")
        .send()
        .await
        .unwrap();
    let db = proxy.stop().await;
    let report = report(&db);
    assert_eq!(report["summary"]["mismatched"], 1);
    let id = route(&report, "GET /me")["examples"][0]["id"]
        .as_i64()
        .unwrap();

    let shown = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["show", &id.to_string(), "--db"])
        .arg(&db.path)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    // Nowhere in the files either, WAL included.
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"s3cret"),
            "a secret reached the disk"
        );
    }
}

/// A primary whose response never ends: only the client can cut it short.
async fn endless_primary() -> Backend {
    backend(|_| async {
        let chunks = futures_util::stream::repeat_with(|| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from(
                vec![b'x'; 64 * 1024],
            )))
        });
        let body = http_body_util::BodyExt::boxed(http_body_util::StreamBody::new(chunks));
        http::Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .body(body)
            .unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading_is_client_aborted_not_a_primary_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let primary = endless_primary().await;
    let secondary = fixed(200, "ok").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    // Reads the response head, then closes with the body still coming.
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed before the response head");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    drop(stream);
    let db = proxy.stop().await;

    let summary = &report(&db)["summary"];
    assert_eq!(summary["errors"], 0, "{summary:#}");
    assert_eq!(
        summary["skipped_by_reason"]["client_aborted"], 1,
        "{summary:#}"
    );
    // Not an error, so no error rate for the gate to fail on.
    Command::cargo_bin("shadowdiff")
        .unwrap()
        .args([
            "gate",
            "--max-mismatch-rate",
            "0",
            "--max-error-rate",
            "0",
            "--db",
        ])
        .arg(&*db)
        .assert()
        .success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_head_of_a_mebibyte_is_head_too_large_not_protocol() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hostile = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let mut response = b"HTTP/1.1 200 OK\r\nx-filler: ".to_vec();
                response.resize(response.len() + 1024 * 1024, b'a');
                response.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\nok");
                let _ = stream.write_all(&response).await;
            });
        }
    });
    let report = errors_recorded_with(format!("http://{hostile}"), Duration::from_secs(5)).await;
    server.abort();
    assert_eq!(
        report["summary"]["errors_by_kind"]["secondary:head_too_large"], 3,
        "{:#}",
        report["summary"]
    );
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it
/// hangs, as to a host that blackholes its traffic. The held connections keep it full.
async fn never_accepting() -> (
    std::net::SocketAddr,
    tokio::net::TcpListener,
    Vec<std::net::TcpStream>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(1).unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    (addr, listener, held)
}

/// Issue 14's example setting: `connect-timeout` ends a connect that hangs as a connect
/// error, long before the secondary's own timeout would end it as a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_that_never_accepts_fails_as_connect_within_the_connect_timeout() {
    let (blackhole, _listener, _held) = never_accepting().await;
    let primary = fixed(200, "primary").await;
    let (mut config, dir) = config(&primary.url(), &format!("http://{blackhole}"));
    config.secondary.timeout = Duration::from_secs(20);
    config.secondary.connect.timeout = Some(Duration::from_millis(300));
    let proxy = start(config, dir).await;
    for _ in 0..3 {
        let response = client().get(proxy.url("/e")).send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), "primary");
    }
    let report = report(&proxy.stop().await);
    assert_eq!(report["summary"]["errors"], 3, "{report:#}");
    assert_eq!(
        report["summary"]["errors_by_kind"]["secondary:connect"], 3,
        "{report:#}"
    );
}
