//! Hostile clients against the real proxy: framing the proxy must refuse rather than
//! forward, slow or idle connections, and error pages that must not leak the topology.
//! Requests are written as raw bytes on 127.0.0.1, because HTTP clients normalize exactly
//! what these tests need to send.

use crate::support;

use std::time::Duration;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_request_with_body_never_desyncs_the_primary_connection() {
    let primary = fixed(200, "primary").await;
    let secondary = fixed(200, "secondary").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;

    // The 40 bytes would have been read by the primary as the start of the next request.
    let smuggled = "GET /admin HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n";
    assert_eq!(smuggled.len(), 40);
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Content-Length: 40\r\n\r\n{smuggled}"
    );
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert!(status_line(&response).contains(" 400 "), "{response}");

    // The same with chunked framing.
    let request = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert!(status_line(&response).contains(" 400 "), "{response}");

    let next = client().get(proxy.url("/next")).send().await.unwrap();
    assert_eq!(next.status(), 200);
    assert_eq!(next.text().await.unwrap(), "primary");
    let seen: Vec<String> = primary
        .received()
        .iter()
        .map(|r| r.uri.path().to_string())
        .collect();
    assert_eq!(
        seen,
        ["/next"],
        "the primary saw only the next, intact request"
    );
    assert!(primary.received()[0].body.is_empty());

    let db = proxy.stop().await;
    let refused: i64 = rusqlite::Connection::open(&*db)
        .unwrap()
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM outcome_counts WHERE outcome = 'skipped' AND reason = 'refused'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(refused, 2, "both refusals are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_refused_even_with_preserve_host() {
    let primary = fixed(200, "primary").await;
    let secondary = fixed(200, "secondary").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.primary.preserve_host = true;
    config.secondary.preserve_host = true;
    let proxy = start(config, dir).await;
    let request =
        "GET /a HTTP/1.1\r\nHost: public.example\r\nHost: internal.example\r\nConnection: close\r\n\r\n";
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert!(status_line(&response).contains(" 400 "), "{response}");
    assert!(response.contains("more than one Host"), "{response}");
    proxy.stop().await;
    assert!(primary.received().is_empty());
    assert!(secondary.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunked_request_body_gets_400_not_502() {
    let primary = fixed(200, "primary").await;
    let secondary = fixed(200, "secondary").await;
    for shadow_writes in [false, true] {
        let (mut config, dir) = config(&primary.url(), &secondary.url());
        config.shadow.shadow_writes = shadow_writes;
        let proxy = start(config, dir).await;
        let request = "POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                       Connection: close\r\n\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n";
        let response = raw_exchange(proxy.addr, request.as_bytes()).await;
        assert!(
            status_line(&response).contains(" 400 "),
            "shadow_writes={shadow_writes}: {response}"
        );
        proxy.stop().await;
    }
    assert!(secondary.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_forwards_the_chunked_body_only() {
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and an intermediary drops
    // the Content-Length before forwarding; otherwise the primary would read 3 bytes and
    // take the rest for another request.
    let primary = fixed(200, "primary").await;
    let secondary = fixed(200, "secondary").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.shadow.shadow_writes = true;
    let proxy = start(config, dir).await;
    let request = "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
                   Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert!(status_line(&response).contains(" 200 "), "{response}");
    proxy.stop().await;
    for upstream in [&primary, &secondary] {
        let seen = upstream.received();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].body, "hello");
        assert_ne!(
            seen[0].headers.get("content-length").map(|v| v.as_bytes()),
            Some(&b"3"[..])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gateway_pages_name_no_upstream_address() {
    let down = closed_port().await;
    let secondary = fixed(200, "secondary").await;
    let (config, dir) = config(&format!("http://{down}/internal/base"), &secondary.url());
    let proxy = start(config, dir).await;
    let response = client().get(proxy.url("/a")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(!body.contains("127.0.0.1"), "{body}");
    assert!(!body.contains(&down.port().to_string()), "{body}");
    assert!(!body.contains("internal"), "{body}");
    assert!(body.contains("primary connect"), "{body}");
    proxy.stop().await;
}

async fn metric(admin: std::net::SocketAddr, name: &str) -> u64 {
    let text = metrics(admin).await;
    value(&text, name).unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}")) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_cannot_lock_new_clients_out() {
    let primary = fixed(200, "primary").await;
    let secondary = fixed(200, "secondary").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.listener.header_read_timeout = Duration::from_secs(1);
    config.listener.max_connections = Some(3);
    let (proxy, admin) = start_with_admin(config, dir).await;

    // Slowloris: three connections that never finish their head, one that never speaks,
    // and one HTTP/2 connection that sends its preface but never a request.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // At the cap: this client waits in the backlog until a slot frees, then is served.
    let late = tokio::spawn({
        let url = proxy.url("/late");
        async move { client().get(url).send().await.unwrap().status() }
    });
    for stream in &mut slow {
        let answer = closed_by_peer(stream)
            .await
            .expect("the slow client is closed");
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains(" 200 "), "{answer}");
    }
    assert_eq!(late.await.unwrap(), 200);

    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    assert!(closed_by_peer(&mut silent).await.is_some());
    let mut h2 = TcpStream::connect(proxy.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_peer(&mut h2).await.is_some());

    assert!(metric(admin, "shadowdiff_client_connection_limit_waits_total").await >= 1);
    assert!(metric(admin, "shadowdiff_client_header_timeouts_total").await >= 5);
    proxy.stop().await;
}

/// A raw HTTP/1.1 upstream whose every answer carries a header field of `filler` bytes.
async fn big_head_upstream(filler: usize) -> std::net::SocketAddr {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_http1_response_head_over_64_kib_on_both_legs() {
    // Past the 64 KiB cap but within hyper's own ~400 KB default: refused by the cap alone.
    let big = format!("http://{}", big_head_upstream(128 * 1024).await);
    let (settings, dir) = config(&big, &big);
    let proxy = start(settings, dir).await;
    let (status, body) = get(proxy.url("/x")).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body, "shadowdiff: primary head_too_large\n");
    let db = proxy.stop().await;
    let reasons: Vec<String> = rusqlite::Connection::open(&*db)
        .unwrap()
        .prepare("SELECT DISTINCT reason FROM outcome_counts WHERE outcome = 'error'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(reasons, ["primary:head_too_large"]);

    // A large but reasonable head passes through as usual.
    let fine = format!("http://{}", big_head_upstream(16 * 1024).await);
    let (settings, dir) = config(&fine, &fine);
    let proxy = start(settings, dir).await;
    assert_eq!(get(proxy.url("/x")).await, (200, "ok".to_string()));
    proxy.stop().await;
}
