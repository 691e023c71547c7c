//! `serve --record` then `replay`: the requests the upstreams saw through the proxy are
//! the requests a replay sends again, byte for byte, secrets aside.

use crate::support;

use shadowdiff::config::RecordConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_traffic_replays_the_same_requests() {
    let primary = fixed(200, "ok").await;
    let secondary = fixed(200, "ok").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    let traffic = dir.path().join("traffic.jsonl");
    config.shadow.shadow_writes = true;
    config.record = Some(RecordConfig {
        path: traffic.clone(),
        max_size: 1 << 20,
        keep_secrets: false,
        responses: false,
    });
    let proxy = start(config, dir).await;
    let http = client();
    http.get(proxy.url("/search?q=caf%C3%A9&page=2"))
        .header("x-tenant", "acme")
        .header("authorization", "Bearer s3cret")
        .send()
        .await
        .unwrap();
    http.post(proxy.url("/orders"))
        .header("content-type", "application/json")
        .body(vec![b'{', 0xff, 0x00, b'}'])
        .send()
        .await
        .unwrap();
    let db = proxy.stop().await;
    let recorded = std::fs::read_to_string(&traffic).unwrap();
    assert_eq!(recorded.lines().count(), 2, "{recorded}");
    assert!(!recorded.contains("s3cret"));

    let again_primary = fixed(200, "ok").await;
    let again_secondary = fixed(200, "ok").await;
    let replay_db = db.parent().unwrap().join("replay.db");
    let output = tokio::task::spawn_blocking({
        let (p, s) = (again_primary.url(), again_secondary.url());
        move || {
            assert_cmd::Command::cargo_bin("shadowdiff")
                .unwrap()
                .args(["replay", "--quiet", "--shadow-writes", "--concurrency", "1"])
                .args(["--primary", &p, "--secondary", &s, "--input"])
                .arg(&traffic)
                .arg("--db")
                .arg(&replay_db)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let original = primary.received();
    let replayed = again_primary.received();
    assert_eq!(replayed.len(), 2);
    for (before, after) in original.iter().zip(replayed.iter()) {
        assert_eq!(after.method, before.method);
        assert_eq!(after.uri, before.uri);
        assert_eq!(after.body, before.body);
        for name in ["x-tenant", "content-type"] {
            assert_eq!(after.headers.get(name), before.headers.get(name), "{name}");
        }
    }
    assert_eq!(replayed[0].headers["authorization"], "[redacted]");
    assert_eq!(again_secondary.received().len(), 2);
}
