//! Control over the shadow (issue 17): the shadow marker's name.

use crate::support::{self, client, config, start};

#[tokio::test]
async fn the_shadow_marker_has_the_configured_name_on_the_shadow_leg_only_and_guards_loops() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    config.shadow.marker = http::HeaderName::from_static("x-mirror");
    let proxy = start(config, dir).await;
    let http = client();
    http.get(proxy.url("/a")).send().await.unwrap();
    // Marked with the configured name: a loop, not shadowed.
    http.get(proxy.url("/b"))
        .header("x-mirror", "shadow")
        .send()
        .await
        .unwrap();
    // The default name means nothing now: shadowed as any request.
    http.get(proxy.url("/c"))
        .header("x-shadowdiff", "shadow")
        .send()
        .await
        .unwrap();
    let db = proxy.stop().await;

    let seen = secondary.received();
    let paths: Vec<&str> = seen.iter().map(|r| r.uri.path()).collect();
    assert_eq!(paths, ["/a", "/c"]);
    for request in &seen {
        assert_eq!(request.headers["x-mirror"], "shadow");
    }
    assert!(primary
        .received()
        .iter()
        .all(|r| r.headers.get("x-mirror").is_none() || r.uri.path() == "/b"));
    let report = support::report_json(&db);
    assert_eq!(report["summary"]["matched"], 2);
    assert_eq!(report["summary"]["skipped_by_reason"]["loop"], 1);
}

#[test]
fn a_shadow_marker_that_means_something_to_http_is_refused() {
    let output = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--primary",
            "http://127.0.0.1:1",
        ])
        .args(["--secondary", "http://127.0.0.1:2", "--admin", "off"])
        .env("SHADOWDIFF_SHADOW_MARKER", "Content-Length")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--shadow-marker") && err.contains("content-length"),
        "{err}"
    );
}
