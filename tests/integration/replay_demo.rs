//! The demo backends answer the built-in traffic mix with the deliberate differences.

use shadowdiff::config::ServeConfig;
use shadowdiff::demo::{mix::DEMO_REQUESTS, traffic, Backends};
use shadowdiff::replay::{replay, ProgressMode, ReplayOptions};
use shadowdiff::traffic::jsonl::to_line;
use std::io::Write;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_mix_replays_against_the_demo_backends() {
    let backends = Backends::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("demo.jsonl");
    let mut file = std::fs::File::create(&input).unwrap();
    for request in traffic(DEMO_REQUESTS) {
        writeln!(file, "{}", to_line(None, &request)).unwrap();
    }
    drop(file);
    let mut config = ServeConfig::new(&backends.primary_url(), &backends.secondary_url()).unwrap();
    config.store.location = (dir.path().join("demo.db")).into();
    let summary = replay(ReplayOptions {
        input,
        format: None,
        config,
        concurrency: 8,
        threads: 2,
        rate: None,
        repeat: 1,
        skip_invalid: false,
        progress: ProgressMode::Quiet,
        against_recorded: false,
    })
    .await
    .unwrap();
    // One request in ten is a write (skipped); /health is the only route without noise.
    assert_eq!(summary.requests, 200);
    assert_eq!(summary.skipped, 20);
    assert_eq!(summary.errors, 0);
    assert_eq!(summary.matched, 20);
    assert_eq!(summary.mismatched, 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliberate_differences_are_there() {
    let backends = Backends::start().await.unwrap();
    let client = reqwest::Client::new();
    let get = |base: String, path: &'static str| {
        let client = client.clone();
        async move {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            (status, body)
        }
    };
    let (p, s) = (backends.primary_url(), backends.secondary_url());
    let (_, user_p) = get(p.clone(), "/users/7").await;
    let (_, user_s) = get(s.clone(), "/users/7").await;
    assert_eq!(user_p["email"], "user7@example.com");
    assert_eq!(user_s["email_address"], "user7@example.com");
    assert_ne!(user_p["request_id"], user_s["request_id"]);
    let (_, orders_p) = get(p.clone(), "/users/7/orders").await;
    let (_, orders_s) = get(s.clone(), "/users/7/orders").await;
    assert_eq!(orders_p["orders"][0], orders_s["orders"][2]);
    let (_, price_p) = get(p.clone(), "/products/1/price").await;
    let (_, price_s) = get(s.clone(), "/products/1/price").await;
    assert_eq!(price_p["price"], 3.67);
    assert_eq!(price_s["price"], 3.667);
    assert_eq!(get(p.clone(), "/search?q=").await.0, 200);
    assert_eq!(get(s.clone(), "/search?q=").await.0, 400);
    assert_eq!(get(p, "/health").await, get(s, "/health").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_drives_its_traffic_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let summary = shadowdiff::demo::run(shadowdiff::demo::DemoOptions {
        db: dir.path().join("demo.db"),
        config: None,
        baseline: false,
        requests: DEMO_REQUESTS,
        quiet: true,
    })
    .await
    .unwrap();
    assert_eq!(summary.answered, DEMO_REQUESTS as u64);
    assert_eq!(summary.failed, 0);
}
