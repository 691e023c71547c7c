//! The shadow memory budget (`--max-shadow-memory`): what shadows buffer is bounded by it,
//! requests beyond it are skipped as `overload` and counted, and what a shadow held is
//! given back once its exchange has been compared.

use crate::support;

use bytes::Bytes;
use serde_json::Value;
use std::time::Duration;
use support::*;
use tokio::sync::watch;

const BODY: usize = 16 * 1024;

/// A secondary that takes every request in and answers only once `release` says so.
async fn stalled_secondary(release: watch::Receiver<bool>) -> Backend {
    backend(move |_| {
        let mut release = release.clone();
        async move {
            let _ = release.wait_for(|go| *go).await;
            text(200, "ok")
        }
    })
    .await
}

async fn status(admin: std::net::SocketAddr) -> Value {
    let url = format!("http://{admin}/status");
    let text = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn metrics(admin: std::net::SocketAddr) -> String {
    let url = format!("http://{admin}/metrics");
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn post(proxy: &Proxy, path: &str, body: reqwest::Body) {
    let response = client()
        .post(proxy.url(path))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

/// A body without Content-Length, so only the request tee can see its size.
fn streamed(len: usize) -> reqwest::Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..len / 1024)
        .map(|_| Ok(Bytes::from(vec![b's'; 1024])))
        .collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

/// Budget for three shadows of a 16 KiB body and a 2-byte answer, not four.
fn budget_config(
    primary: &Backend,
    secondary: &Backend,
) -> (shadowdiff::ServeConfig, tempfile::TempDir) {
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.shadow.shadow_writes = true;
    config.shadow.max_shadow_memory = 4 * BODY - 1024;
    config.secondary.timeout = Duration::from_secs(60);
    config.listener.drain_timeout = Duration::from_millis(200);
    config.shadow.breaker.threshold = 0;
    (config, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_beyond_the_memory_budget_are_skipped_as_overload_while_the_secondary_stalls() {
    let primary = fixed(200, "ok").await;
    let (_release, stalled) = watch::channel(false);
    let secondary = stalled_secondary(stalled).await;
    let (config, dir) = budget_config(&primary, &secondary);
    let (proxy, admin) = start_with_admin(config, dir).await;
    for i in 0..5 {
        post(&proxy, &format!("/sized/{i}"), vec![b'd'; BODY].into()).await;
    }
    for i in 0..3 {
        post(&proxy, &format!("/streamed/{i}"), streamed(BODY)).await;
    }
    // Every client got the primary's answer; three shadows wait on the secondary, holding
    // the budget, and the five past it were counted, not buffered.
    wait_for("the overload skips to be counted", || async {
        let counted = metrics(admin)
            .await
            .contains("shadowdiff_shadow_skipped_total{reason=\"overload\"} 5");
        counted && status(admin).await["counters"]["inflight_shadows"] == 3
    })
    .await;
    let db = proxy.stop().await;
    assert_eq!(primary.received().len(), 8);
    assert_eq!(secondary.received().len(), 3);

    let summary = &report_json(&db)["summary"];
    assert_eq!(summary["skipped_by_reason"]["overload"], 5, "{summary:#}");
    assert_eq!(
        summary["errors_by_kind"]["secondary:shutdown"], 3,
        "{summary:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_shadow_held_is_given_back_once_its_exchange_is_compared() {
    let primary = fixed(200, "ok").await;
    let (release, stalled) = watch::channel(false);
    let secondary = stalled_secondary(stalled).await;
    let (config, dir) = budget_config(&primary, &secondary);
    let (proxy, admin) = start_with_admin(config, dir).await;
    for i in 0..4 {
        post(&proxy, &format!("/held/{i}"), vec![b'd'; BODY].into()).await;
    }
    release.send(true).unwrap();
    wait_for("the three held shadows to be compared", || async {
        status(admin).await["counters"]["matched"] == 3
    })
    .await;
    // The budget is free again: the same requests are shadowed once more.
    for i in 0..3 {
        post(&proxy, &format!("/again/{i}"), streamed(BODY)).await;
    }
    let db = proxy.stop().await;

    let summary = &report_json(&db)["summary"];
    assert_eq!(summary["matched"], 6, "{summary:#}");
    assert_eq!(summary["skipped_by_reason"]["overload"], 1, "{summary:#}");
}
