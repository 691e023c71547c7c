//! Which requests reach the secondary, and that nothing the secondary does reaches the
//! client.

use crate::support;

use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_shadowed_only_with_shadow_writes() {
    for shadow_writes in [false, true] {
        let primary = fixed(201, "created").await;
        let secondary = fixed(201, "created").await;
        let (mut config, dir) = config(&primary.url(), &secondary.url());
        config.shadow.shadow_writes = shadow_writes;
        let proxy = start(config, dir).await;
        let response = client()
            .post(proxy.url("/orders"))
            .header("content-type", "application/json")
            .body(r#"{"item":42}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        client().get(proxy.url("/orders")).send().await.unwrap();
        proxy.stop().await;

        assert_eq!(primary.received().len(), 2);
        let shadowed: Vec<_> = secondary.received();
        let posts: Vec<_> = shadowed.iter().filter(|r| r.method == "POST").collect();
        assert_eq!(
            posts.len(),
            usize::from(shadow_writes),
            "shadow_writes={shadow_writes}"
        );
        if shadow_writes {
            // The same method, path, headers and body bytes as the primary got.
            let sent = &primary.received()[0];
            assert_eq!(posts[0].body, sent.body);
            assert_eq!(posts[0].body, r#"{"item":42}"#);
            assert_eq!(posts[0].uri, sent.uri);
            assert_eq!(posts[0].headers["content-type"], "application/json");
        }
        assert_eq!(shadowed.iter().filter(|r| r.method == "GET").count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_request_body_reaches_both_legs_whole() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.shadow.shadow_writes = true;
    let proxy = start(config, dir).await;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..64)
        .map(|i| Ok(bytes::Bytes::from(vec![b'a' + (i % 26) as u8; 1000])))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    client()
        .put(proxy.url("/upload"))
        .body(body)
        .send()
        .await
        .unwrap();
    proxy.stop().await;
    let sent = &primary.received()[0].body;
    assert_eq!(sent.len(), 64_000);
    assert_eq!(&secondary.received()[0].body, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_guard_keeps_shadowed_requests_from_being_shadowed_again() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    let response = client()
        .get(proxy.url("/again"))
        .header("x-shadowdiff", "shadow")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    proxy.stop().await;
    assert_eq!(primary.received().len(), 1);
    assert!(secondary.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_rate_bounds_what_is_shadowed() {
    for (rate, range) in [(0.0, 0..=0), (1.0, 300..=300), (0.5, 100..=200)] {
        let primary = fixed(200, "ok").await;
        let secondary = fixed(200, "ok").await;
        let (mut config, dir) = config(&primary.url(), &secondary.url());
        config.shadow.sample = rate;
        let n = 300;
        let proxy = start(config, dir).await;
        let http = client();
        for i in 0..n {
            http.get(proxy.url(&format!("/s/{i}")))
                .send()
                .await
                .unwrap();
        }
        proxy.stop().await;
        assert_eq!(primary.received().len(), n);
        let shadowed = secondary.received().len();
        assert!(
            range.contains(&shadowed),
            "rate {rate}: {shadowed} shadowed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_by_key_shadows_a_key_always_or_never() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.shadow.sample = 0.5;
    config.shadow.sample_by = Some(shadowdiff::config::parse_sample_key("header:x-user").unwrap());
    let proxy = start(config, dir).await;
    let http = client();
    for round in 0..4 {
        for user in 0..40 {
            http.get(proxy.url(&format!("/r{round}")))
                .header("x-user", format!("user-{user}"))
                .send()
                .await
                .unwrap();
        }
    }
    proxy.stop().await;
    let mut per_user = std::collections::HashMap::<String, usize>::new();
    for r in secondary.received() {
        *per_user
            .entry(r.headers["x-user"].to_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(per_user.values().all(|&n| n == 4), "{per_user:?}");
    // 40 users at 50%: some in and some out (the chance of all or none is 2^-39).
    assert!(!per_user.is_empty() && per_user.len() < 40, "{per_user:?}");
}

/// Whatever the secondary does, the client gets the primary's answer.
async fn client_sees_primary_despite(secondary_url: String, timeout: Duration) {
    let primary = fixed(200, "primary says hi").await;
    let (mut config, dir) = config(&primary.url(), &secondary_url);
    config.secondary.timeout = timeout;
    config.listener.drain_timeout = Duration::from_secs(5);
    let proxy = start(config, dir).await;
    for _ in 0..3 {
        let response = client().get(proxy.url("/x")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "primary says hi");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_down_slow_resetting_or_garbage_changes_nothing_for_the_client() {
    let down = closed_port().await;
    client_sees_primary_despite(format!("http://{down}"), Duration::from_secs(5)).await;

    let slow = backend(|_| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        text(200, "too late")
    })
    .await;
    client_sees_primary_despite(slow.url(), Duration::from_millis(300)).await;

    let (resetting, _r) = resetting().await;
    client_sees_primary_despite(format!("http://{resetting}"), Duration::from_secs(5)).await;

    let (garbage, _g) = garbage().await;
    client_sees_primary_despite(format!("http://{garbage}"), Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_override_header_naming_a_write_is_not_shadowed_without_shadow_writes() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    for name in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let response = client()
            .get(proxy.url("/orders/7"))
            .header(name, "DELETE")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
    }
    client()
        .get(proxy.url("/orders/7"))
        .header("x-http-method-override", "GET")
        .send()
        .await
        .unwrap();
    let db = proxy.stop().await;

    // Every request reaches the primary; only the one overridden to a safe method is shadowed.
    assert_eq!(primary.received().len(), 4);
    assert_eq!(secondary.received().len(), 1);
    let skipped: i64 = rusqlite::Connection::open(&*db)
        .unwrap()
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM outcome_counts \
             WHERE outcome = 'skipped' AND reason = 'method_not_shadowed'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(skipped, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_out_requests_counted_as_one_record_per_route_still_add_up_exactly() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.shadow.sample = 0.0;
    let (proxy, admin) = start_with_admin(config, dir).await;
    let client = client();
    let sends = (0..300).map(|i| {
        let (client, url) = (client.clone(), proxy.url(&format!("/route{}/{i}", i % 3)));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    });
    for send in sends {
        assert_eq!(send.await.unwrap(), 200);
    }
    let series = r#"shadowdiff_shadow_skipped_total{reason="sampled_out"}"#;
    wait_for("all 300 skips in the metrics", || async {
        value(&metrics(admin).await, series) == Some(300.0)
    })
    .await;
    let db = proxy.stop().await;
    let report = report_json(&db);
    assert_eq!(report["summary"]["skipped"], 300);
    assert_eq!(report["summary"]["skipped_by_reason"]["sampled_out"], 300);
    let per_route: u64 = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route["skipped"].as_u64().unwrap())
        .sum();
    assert_eq!(per_route, 300);
}
