//! `--answer-from secondary` (issue 17, item 6): after the cutover the secondary answers the
//! clients and the primary is the shadow; each leg keeps its own settings, rewrites stay
//! the secondary's, and reports say who answered.

use crate::support;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_cutover_clients_get_the_secondarys_bytes_and_the_primary_is_shadowed() {
    let primary = support::fixed(200, r#"{"name": "old"}"#).await;
    let secondary = support::fixed(200, r#"{"name":"new"}"#).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cutover.toml");
    std::fs::write(
        &config,
        "[[rewrite]]\npath = { from = \"^/v1/(.*)\", to = \"/v2/$1\" }\n",
    )
    .unwrap();
    let db = dir.path().join("shadowdiff.db");
    let mut running = support::spawn_serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
            "--primary",
            &primary.url(),
            "--secondary",
            &secondary.url(),
            "--answer-from",
            "secondary",
            "--db",
            db.to_str().unwrap(),
        ],
        &[],
    );
    let http = support::client();
    let answer = http
        .get(format!("http://{}/v1/users/1", running.listen))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.bytes().await.unwrap(),
        r#"{"name":"new"}"#.as_bytes(),
        "the client gets the secondary's bytes, unchanged"
    );
    // Marked as a shadow already: answered, not shadowed again.
    let looped = http
        .get(format!("http://{}/v1/users/2", running.listen))
        .header("x-shadowdiff", "shadow")
        .send()
        .await
        .unwrap();
    assert_eq!(looped.text().await.unwrap(), r#"{"name":"new"}"#);

    let to_secondary = secondary.received_at_least(2).await;
    let mut paths: Vec<&str> = to_secondary.iter().map(|r| r.uri.path()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/v2/users/1", "/v2/users/2"],
        "rewrites stay the secondary's"
    );
    let first = to_secondary
        .iter()
        .find(|r| r.uri.path() == "/v2/users/1")
        .unwrap();
    assert!(
        first.headers.get("x-shadowdiff").is_none(),
        "the answering leg is not marked"
    );
    let to_primary = primary.received_at_least(1).await;
    assert_eq!(to_primary.len(), 1, "{to_primary:?}");
    assert_eq!(to_primary[0].uri.path(), "/v1/users/1", "never rewritten");
    assert_eq!(to_primary[0].headers["x-shadowdiff"], "shadow");

    let status = support::status(running.admin).await;
    assert_eq!(status["answer_from"], "secondary", "{status}");

    running.signal("TERM");
    assert!(running.wait().success());
    let report = support::report_json(&db);
    assert_eq!(report["summary"]["answered_by"], "secondary", "{report}");
    assert_eq!(report["summary"]["mismatched"], 1, "{report}");
    assert_eq!(
        report["summary"]["skipped_by_reason"]["loop"], 1,
        "{report}"
    );
    assert_eq!(report["runs"][0]["answered_by"], "secondary");
    let example = &report["routes"][0]["examples"][0];
    let difference = &example["differences"][0];
    // Judged by system: the primary's value on the primary's side.
    assert_eq!(difference["path"], "body/name", "{example}");
    assert_eq!(difference["primary"], "\"old\"", "{example}");
    assert_eq!(difference["secondary"], "\"new\"", "{example}");
    assert_eq!(
        example["rewrites"][0], "path /v1/users/1 -> /v2/users/1",
        "{example}"
    );
    let text = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["report", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("the secondary answered the clients"),
        "{text}"
    );
}

#[tokio::test]
async fn the_primary_keeps_its_own_timeout_as_the_shadow() {
    let primary = support::backend(|_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        support::text(200, "late")
    })
    .await;
    let secondary = support::fixed(200, "now").await;
    let (mut config, dir) = support::config(&primary.url(), &secondary.url());
    config.answer_from = shadowdiff::exchange::Leg::Secondary;
    config.primary.timeout = Duration::from_millis(100);
    // The secondary's own (longer) timeout is what the answering leg gets.
    config.secondary.timeout = Duration::from_secs(30);
    let proxy = support::start(config, dir).await;
    let answer = support::client().get(proxy.url("/x")).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "now");
    let db = proxy.stop().await;
    let report = support::report_json(&db);
    assert_eq!(report["summary"]["errors"], 1, "{report}");
    assert_eq!(
        report["summary"]["errors_by_kind"]["primary:timeout"], 1,
        "{report}"
    );
}

#[tokio::test]
async fn after_the_cutover_a_rewrite_that_leaves_the_root_is_a_502_counted_rewrite_failed() {
    let primary = support::fixed(200, "old").await;
    let secondary = support::fixed(200, "new").await;
    let proxy = support::proxy_with(
        "answer-from = \"secondary\"\n[[rewrite]]\npath = { from = \"^/a/(.*)\", to = \"/../$1\" }\n",
        &primary,
        &secondary,
    )
    .await;
    let http = support::client();
    let refused = http.get(proxy.url("/a/b")).send().await.unwrap();
    assert_eq!(refused.status(), 502);
    assert_eq!(
        refused.text().await.unwrap(),
        "shadowdiff: secondary protocol\n"
    );
    let fine = http.get(proxy.url("/c")).send().await.unwrap();
    assert_eq!(fine.text().await.unwrap(), "new");
    let db = proxy.stop().await;
    let paths = |b: &support::Backend| -> Vec<String> {
        b.received()
            .iter()
            .map(|r| r.uri.path().to_string())
            .collect()
    };
    assert_eq!(paths(&secondary), ["/c"]);
    assert_eq!(paths(&primary), ["/c"], "no shadow of what was not asked");
    let report = support::report_json(&db);
    assert_eq!(
        report["summary"]["skipped_by_reason"]["rewrite_failed"], 1,
        "{report}"
    );
    assert_eq!(report["summary"]["matched"], 0, "{report}");
    assert_eq!(report["summary"]["mismatched"], 1, "{report}");
}
