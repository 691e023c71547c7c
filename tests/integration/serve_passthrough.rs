//! What the client sees through `shadowdiff serve`: the primary's response, unchanged and
//! streamed, whatever the secondary does.

use crate::support;

use bytes::Bytes;
use futures_util::stream;
use http::Response;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// Deterministic pseudo-random bytes, so corruption anywhere would show.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_megabyte_streamed_body_is_byte_identical() {
    let payload = Bytes::from(noise(6 * 1024 * 1024 + 17));
    let served = payload.clone();
    let primary = backend(move |_| {
        let served = served.clone();
        async move {
            let chunks: Vec<Result<Frame<Bytes>, Infallible>> = served
                .chunks(64 * 1024)
                .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            Response::builder()
                .header("content-type", "application/octet-stream")
                .header("x-custom", "kept")
                .body(StreamBody::new(stream::iter(chunks)).boxed())
                .unwrap()
        }
    })
    .await;
    let secondary = fixed(200, "other").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;

    let response = client().get(proxy.url("/blob")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-custom"], "kept");
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), payload.len());
    assert!(body == payload, "body bytes differ");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_byte_reaches_the_client_before_the_last_is_sent() {
    // The primary sends one chunk, then holds the rest until the client has seen the first.
    // A proxy that buffered the whole body would deadlock here; the guard turns that into
    // a failure instead of a hang.
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release_rx)));
    let primary = backend(move |_| {
        let release = release.lock().unwrap().take();
        async move {
            let first =
                stream::once(async { Ok::<_, Infallible>(Frame::data(Bytes::from("first;"))) });
            let rest = stream::once(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                Ok::<_, Infallible>(Frame::data(Bytes::from("last")))
            });
            Response::new(StreamBody::new(stream::StreamExt::chain(first, rest)).boxed())
        }
    })
    .await;
    let secondary = fixed(200, "first;last").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;

    let guarded = tokio::time::timeout(Duration::from_secs(30), async {
        let mut response = client().get(proxy.url("/stream")).send().await.unwrap();
        let first = response.chunk().await.unwrap().unwrap();
        assert_eq!(first, "first;");
        release_tx.send(()).unwrap();
        let mut rest = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            rest.extend_from_slice(&chunk);
        }
        assert_eq!(rest, b"last");
    })
    .await;
    assert!(guarded.is_ok(), "the first chunk never arrived on its own");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_encoded_body_passes_through_compressed() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(br#"{"hello":"world"}"#).unwrap();
    let gz = Bytes::from(encoder.finish().unwrap());
    let served = gz.clone();
    let primary = backend(move |_| {
        let served = served.clone();
        async move {
            Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(full(served))
                .unwrap()
        }
    })
    .await;
    let secondary = fixed(200, "{}").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;

    let response = client()
        .get(proxy.url("/j"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.bytes().await.unwrap(), gz);
    // The client's Accept-Encoding reached both upstreams untouched.
    assert_eq!(primary.received()[0].headers["accept-encoding"], "gzip");
    proxy.stop().await;
    assert_eq!(secondary.received()[0].headers["accept-encoding"], "gzip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_stripped_and_forwarded_for_is_appended() {
    let primary = backend(|_| async {
        Response::builder()
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header("x-end-to-end", "yes")
            .body(full("ok"))
            .unwrap()
    })
    .await;
    let secondary = fixed(200, "ok").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;

    let response = client()
        .get(proxy.url("/h?q=1"))
        .header("connection", "x-private")
        .header("x-private", "secret-hop")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-connection", "keep-alive")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-kept", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("keep-alive").is_none());
    assert!(response.headers().get("proxy-connection").is_none());
    assert_eq!(response.headers()["x-end-to-end"], "yes");
    proxy.stop().await;

    for (leg, seen) in [
        ("primary", &primary.received()[0]),
        ("secondary", &secondary.received()[0]),
    ] {
        for hop in ["x-private", "keep-alive", "te", "proxy-connection"] {
            assert!(seen.headers.get(hop).is_none(), "{leg} got {hop}");
        }
        assert_eq!(seen.headers["x-kept"], "1", "{leg}");
        assert_eq!(
            seen.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1",
            "{leg}"
        );
        assert_eq!(seen.headers["x-forwarded-proto"], "http", "{leg}");
        assert_eq!(
            seen.headers["x-forwarded-host"],
            proxy_host(&seen.headers),
            "{leg}"
        );
        assert_eq!(seen.uri, "/h?q=1", "{leg}");
    }
    // Each leg's Host is its own upstream's authority.
    assert_eq!(
        primary.received()[0].headers["host"],
        primary.addr.to_string()
    );
    assert_eq!(
        secondary.received()[0].headers["host"],
        secondary.addr.to_string()
    );
    assert_eq!(secondary.received()[0].headers["x-shadowdiff"], "shadow");
    assert!(primary.received()[0].headers.get("x-shadowdiff").is_none());
}

fn proxy_host(headers: &http::HeaderMap) -> String {
    headers["x-forwarded-host"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_path_of_an_upstream_prefixes_the_request_path() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (config, dir) = config(
        &format!("{}/v1", primary.url()),
        &format!("{}/v2/", secondary.url()),
    );
    let proxy = start(config, dir).await;
    client()
        .get(proxy.url("/users/7?x=1"))
        .send()
        .await
        .unwrap();
    proxy.stop().await;
    assert_eq!(primary.received()[0].uri, "/v1/users/7?x=1");
    assert_eq!(secondary.received()[0].uri, "/v2/users/7?x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_down_gives_502_and_the_proxy_stays_up() {
    let down = closed_port().await;
    let secondary = fixed(200, "ok").await;
    let (config, dir) = config(&format!("http://{down}"), &secondary.url());
    let proxy = start(config, dir).await;
    for _ in 0..2 {
        let response = client().get(proxy.url("/x")).send().await.unwrap();
        assert_eq!(response.status(), 502);
        let body = response.text().await.unwrap();
        assert!(body.starts_with("shadowdiff: primary connect"), "{body}");
        assert_eq!(body.trim_end().lines().count(), 1, "{body}");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_timeout_gives_504() {
    let primary = backend(|_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        text(200, "late")
    })
    .await;
    let secondary = fixed(200, "ok").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.primary.timeout = Duration::from_millis(200);
    config.listener.drain_timeout = Duration::from_millis(500);
    let proxy = start(config, dir).await;
    let response = client().get(proxy.url("/slow")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cleartext_clients_are_served_on_the_same_port() {
    let primary = fixed(200, "via h2").await;
    let secondary = fixed(200, "via h2").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2.get(proxy.url("/two")).send().await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.text().await.unwrap(), "via h2");
    proxy.stop().await;
    assert_eq!(secondary.received()[0].uri, "/two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preserve_host_sends_the_clients_host_to_both_legs() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.primary.preserve_host = true;
    config.secondary.preserve_host = true;
    let proxy = start(config, dir).await;
    client()
        .get(proxy.url("/h"))
        .header("host", "shop.example")
        .send()
        .await
        .unwrap();
    proxy.stop().await;
    assert_eq!(primary.received()[0].headers["host"], "shop.example");
    assert_eq!(secondary.received()[0].headers["host"], "shop.example");
    assert_eq!(
        primary.received()[0].headers["x-forwarded-host"],
        "shop.example"
    );
}
