//! The admin endpoint of a real proxy: exact metric values after known traffic, health and
//! status, and the circuit breaker opening and closing against a secondary that fails and
//! then recovers.

use crate::support;

use support::{get, metrics, status, value, wait_for};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn judged(admin: SocketAddr) -> u64 {
    let counters = &status(admin).await["counters"];
    ["matched", "mismatched", "errors", "skipped"]
        .iter()
        .map(|k| counters[k].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic_exactly() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::backend(|received| async move {
        if received.uri.path() == "/diff" {
            support::text(200, "other")
        } else {
            support::text(200, "same")
        }
    })
    .await;
    let (config, dir) = support::config(&primary.url(), &secondary.url());
    let (proxy, admin) = support::start_with_admin(config, dir).await;
    let http = support::client();
    for path in ["/same", "/same", "/same", "/diff", "/diff"] {
        let body = http.get(proxy.url(path)).send().await.unwrap();
        assert_eq!(body.text().await.unwrap(), "same");
    }
    http.post(proxy.url("/same")).send().await.unwrap();
    wait_for("6 judged requests", || async { judged(admin).await == 6 }).await;

    let text = metrics(admin).await;
    let expect = [
        (
            r#"shadowdiff_requests_total{outcome="matched",route="GET /same"}"#,
            3.0,
        ),
        (
            r#"shadowdiff_requests_total{outcome="mismatched",route="GET /diff"}"#,
            2.0,
        ),
        (
            r#"shadowdiff_requests_total{outcome="skipped",route="POST /same"}"#,
            1.0,
        ),
        (r#"shadowdiff_differences_total{route="GET /diff"}"#, 2.0),
        (r#"shadowdiff_differences_total{route="GET /same"}"#, 0.0),
        (
            r#"shadowdiff_shadow_skipped_total{reason="method_not_shadowed"}"#,
            1.0,
        ),
        (
            r#"shadowdiff_shadow_skipped_total{reason="breaker_open"}"#,
            0.0,
        ),
        (
            r#"shadowdiff_upstream_duration_seconds_count{leg="primary"}"#,
            5.0,
        ),
        (
            r#"shadowdiff_upstream_duration_seconds_count{leg="secondary"}"#,
            5.0,
        ),
        ("shadowdiff_inflight_shadows", 0.0),
        // Every exchange was judged: the budget holds nothing any more.
        ("shadowdiff_shadow_memory_bytes", 0.0),
        ("shadowdiff_client_connection_limit_waits_total", 0.0),
        ("shadowdiff_client_header_timeouts_total", 0.0),
        ("shadowdiff_store_dropped_total", 0.0),
        ("shadowdiff_store_write_errors_total", 0.0),
        ("shadowdiff_breaker_open", 0.0),
    ];
    for (series, expected) in expect {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    assert!(text.contains("# TYPE shadowdiff_upstream_duration_seconds histogram"));

    let (code, body) = get(format!("http://{admin}/healthz")).await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let status = status(admin).await;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["counters"]["mismatched"], 2);
    assert_eq!(status["breaker"]["state"], "closed");
    assert_eq!(status["config_digest"].as_str().unwrap().len(), 64);
    assert_eq!(get(format!("http://{admin}/nope")).await.0, 404);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_past_the_label_limit_are_counted_as_other() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let (mut config, dir) = support::config(&primary.url(), &secondary.url());
    config.admin.max_route_labels = 2;
    let (proxy, admin) = support::start_with_admin(config, dir).await;
    let http = support::client();
    // Labels are handed out in the order the compare thread judges, and shadows finish in
    // any order: one at a time makes the order the request order.
    for (sent, path) in (1..).zip(["/a", "/b", "/c", "/d", "/a"]) {
        http.get(proxy.url(path)).send().await.unwrap();
        wait_for("the request to be judged", || async {
            judged(admin).await == sent
        })
        .await;
    }
    let text = metrics(admin).await;
    let matched = |route: &str| {
        value(
            &text,
            &format!(r#"shadowdiff_requests_total{{outcome="matched",route="{route}"}}"#),
        )
    };
    assert_eq!(matched("GET /a"), Some(2.0), "{text}");
    assert_eq!(matched("GET /b"), Some(1.0), "{text}");
    assert_eq!(matched("other"), Some(2.0), "{text}");
    assert_eq!(matched("GET /c"), None, "{text}");
    proxy.stop().await;
}

/// A secondary that resets every connection while `failing` is set, and answers "same"
/// otherwise.
async fn flaky_secondary(failing: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let failing = failing.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                if !failing.load(Ordering::SeqCst) {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\
                              content-length: 4\r\nconnection: close\r\n\r\nsame",
                        )
                        .await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_on_a_failing_secondary_and_closes_when_it_recovers() {
    let primary = support::fixed(200, "same").await;
    let failing = Arc::new(AtomicBool::new(true));
    let secondary = flaky_secondary(failing.clone()).await;
    let (mut config, dir) = support::config(&primary.url(), &format!("http://{secondary}"));
    config.shadow.breaker.threshold = 3;
    config.shadow.breaker.cooldown = Duration::from_millis(50);
    let (proxy, admin) = support::start_with_admin(config, dir).await;
    let http = support::client();
    let breaker_state = || async { status(admin).await["breaker"]["state"].clone() };

    for _ in 0..3 {
        let response = http.get(proxy.url("/x")).send().await.unwrap();
        assert_eq!(
            response.text().await.unwrap(),
            "same",
            "clients never notice"
        );
    }
    wait_for("the breaker to open", || async {
        breaker_state().await != "closed"
    })
    .await;
    assert_eq!(
        value(&metrics(admin).await, "shadowdiff_breaker_open"),
        Some(1.0)
    );

    // While it is open, requests go to the primary only and are counted as breaker_open
    // (a failing probe now and then reopens it).
    wait_for("a request skipped as breaker_open", || async {
        http.get(proxy.url("/x")).send().await.unwrap();
        let text = metrics(admin).await;
        value(
            &text,
            r#"shadowdiff_shadow_skipped_total{reason="breaker_open"}"#,
        ) >= Some(1.0)
    })
    .await;

    failing.store(false, Ordering::SeqCst);
    wait_for("the breaker to close after a good probe", || async {
        http.get(proxy.url("/x")).send().await.unwrap();
        breaker_state().await == "closed"
    })
    .await;
    let before = status(admin).await["counters"]["matched"].as_u64().unwrap();
    http.get(proxy.url("/x")).send().await.unwrap();
    wait_for("shadows to be compared again", || async {
        status(admin).await["counters"]["matched"].as_u64().unwrap() > before
    })
    .await;
    assert_eq!(
        value(&metrics(admin).await, "shadowdiff_breaker_open"),
        Some(0.0)
    );
    proxy.stop().await;
}
