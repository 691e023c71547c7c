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

#[tokio::test]
async fn include_exclude_and_per_route_sampling_shadow_exactly_the_routes_they_name() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let proxy = support::proxy_with(
        r#"
sample = "0%"

[shadow]
include = ["/api/**", "/admin/**"]
exclude = ["/admin/**", "GET /api/payments/*"]

[[route]]
pattern = "/api/users/{id}"
sample = "100%"

[[route]]
pattern = "POST /api/orders"
shadow-writes = true
sample = 1
"#,
        &primary,
        &secondary,
    )
    .await;
    let http = client();
    for path in [
        "/api/users/1",
        "/api/users/2",
        "/api/users/3",
        "/api/items/1",
        "/admin/x",
        "/api/payments/7",
        "/health",
    ] {
        http.get(proxy.url(path)).send().await.unwrap();
    }
    http.post(proxy.url("/api/orders"))
        .body("{}")
        .send()
        .await
        .unwrap();
    http.post(proxy.url("/api/users/1"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let db = proxy.stop().await;

    let mut shadowed: Vec<String> = secondary
        .received()
        .iter()
        .map(|r| format!("{} {}", r.method, r.uri.path()))
        .collect();
    shadowed.sort();
    assert_eq!(
        shadowed,
        [
            "GET /api/users/1",
            "GET /api/users/2",
            "GET /api/users/3",
            "POST /api/orders"
        ]
    );
    assert_eq!(primary.received().len(), 9, "the primary gets everything");
    let report = support::report_json(&db);
    let skipped = &report["summary"]["skipped_by_reason"];
    assert_eq!(skipped["excluded"], 3, "{report:#}");
    assert_eq!(
        skipped["sampled_out"], 1,
        "GET /api/items/1 at the global 0%"
    );
    assert_eq!(
        skipped["method_not_shadowed"], 1,
        "POST /api/users/1: writes only where opted in"
    );
    assert_eq!(report["summary"]["matched"], 4);
}

#[test]
fn a_bad_shadow_pattern_or_route_sample_names_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    for (toml, expected) in [
        ("[shadow]\nexclude = [\"GET\"]\n", "[shadow] exclude"),
        (
            "[[route]]\npattern = \"/a\"\nsample = \"150%\"\n",
            "[[route]] \"/a\" sample",
        ),
        ("[shadow]\nexclud = [\"/a\"]\n", "exclud"),
    ] {
        std::fs::write(&file, toml).unwrap();
        let output = assert_cmd::Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{toml}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(expected), "{toml}: {err}");
    }
}

fn ctl(admin: std::net::SocketAddr, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = assert_cmd::Command::cargo_bin("shadowdiff").unwrap();
    command
        .args(["ctl", "--admin", &admin.to_string()])
        .env_remove("SHADOWDIFF_ADMIN_TOKEN");
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    let output = command.args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_pauses_resumes_and_overrides_sampling_only_with_the_token_and_a_reload_keeps_it() {
    const TOKEN: &str = "s3cret-admin-token-0123";
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("serve.toml");
    std::fs::write(&file, "sample = 1\n").unwrap();
    let db = dir.path().join("s.db");
    let running = support::spawn_serve(
        &["--config", file.to_str().unwrap()],
        &[
            ("SHADOWDIFF_PRIMARY", &primary.url()),
            ("SHADOWDIFF_SECONDARY", &secondary.url()),
            ("SHADOWDIFF_LISTEN", "127.0.0.1:0"),
            ("SHADOWDIFF_ADMIN", "127.0.0.1:0"),
            ("SHADOWDIFF_DB", db.to_str().unwrap()),
            ("SHADOWDIFF_ADMIN_TOKEN", TOKEN),
        ],
    );
    let admin = running.admin;
    let http = client();
    let send = |n: usize, tag: &'static str| {
        let http = http.clone();
        let listen = running.listen;
        async move {
            for i in 0..n {
                let r = http
                    .get(format!("http://{listen}/{tag}/{i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    200,
                    "the client is served whatever the shadow does"
                );
            }
        }
    };
    // No token, a wrong one: refused, counted, nothing changed.
    let (code, _, err) = ctl(admin, None, &["pause"]);
    assert_eq!(code, 2);
    assert!(err.contains("401"), "{err}");
    let (code, _, _) = ctl(admin, Some("wrong-token-but-long-enough"), &["pause"]);
    assert_eq!(code, 2);
    let status = support::status(admin).await;
    assert_eq!(status["shadow"]["unauthorized_requests"], 2);
    assert_eq!(status["shadow"]["runtime"]["paused"], false);
    let metrics = support::metrics(admin).await;
    assert_eq!(
        support::value(&metrics, "shadowdiff_admin_unauthorized_total"),
        Some(2.0)
    );

    send(3, "before").await;
    let (code, out, err) = ctl(admin, Some(TOKEN), &["pause"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"paused\": true"), "{out}");
    send(4, "paused").await;
    ctl(admin, Some(TOKEN), &["resume"]);
    let (code, _, err) = ctl(admin, Some(TOKEN), &["sample", "0%"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ctl(
        admin,
        Some(TOKEN),
        &["sample", "1", "--route", "GET /keep/*"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ctl(admin, Some(TOKEN), &["sample", "2"]);
    assert_eq!(code, 2, "a rate over 1 is refused");
    assert!(err.contains("RATE"), "{err}");
    // A reload of the file keeps the override.
    std::fs::write(&file, "sample = 1\nmax-route-labels = 100\n").unwrap();
    running.signal("HUP");
    support::wait_for("the reload", || async {
        let text = support::metrics(admin).await;
        support::value(
            &text,
            r#"shadowdiff_config_reloads_total{result="applied"}"#,
        ) == Some(1.0)
    })
    .await;
    let status = support::status(admin).await;
    assert_eq!(status["shadow"]["sample"]["file"], 1.0);
    assert_eq!(status["shadow"]["sample"]["override"], 0.0);
    let metrics = support::metrics(admin).await;
    assert_eq!(
        support::value(
            &metrics,
            r#"shadowdiff_shadow_sample_rate{source="override"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        support::value(&metrics, r#"shadowdiff_shadow_sample_rate{source="file"}"#),
        Some(1.0)
    );
    send(5, "dropped").await;
    send(2, "keep").await;
    let (code, _, _) = ctl(admin, Some(TOKEN), &["unsample"]);
    assert_eq!(code, 0);
    send(1, "after").await;
    let mut running = running;
    running.signal("TERM");
    assert!(running.wait().success());

    let report = support::report_json(&db);
    let skipped = &report["summary"]["skipped_by_reason"];
    assert_eq!(skipped["paused"], 4, "{report:#}");
    assert_eq!(skipped["sampled_out"], 5);
    assert_eq!(report["summary"]["matched"], 3 + 2 + 1);
}

#[test]
fn serve_refuses_an_admin_listener_off_loopback_without_a_token() {
    let output = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        .args([
            "--primary",
            "http://127.0.0.1:1",
            "--secondary",
            "http://127.0.0.1:2",
        ])
        .env_remove("SHADOWDIFF_ADMIN_TOKEN")
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--admin") && err.contains("--admin-token"),
        "{err}"
    );
    assert!(
        !err.contains("serving"),
        "refused before anything binds: {err}"
    );
}

#[test]
fn allow_added_hides_exactly_the_fields_only_the_secondary_has() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = write("allow.toml", "[compare]\nallow = [\"added\"]\n");
    let primary = write("p.json", r#"{"id": 1, "name": "a", "tags": ["x"]}"#);
    let superset = write(
        "s.json",
        r#"{"id": 1, "name": "a", "tags": ["x", "y"], "email": "e@x", "meta": {"v": 2}}"#,
    );
    let changed = write(
        "c.json",
        r#"{"id": 1, "name": "b", "email": "e@x", "tags": ["x"]}"#,
    );
    let missing = write("m.json", r#"{"id": 1, "tags": ["x"]}"#);
    let diff = |b: &std::path::Path, with_config: bool| {
        let mut command = assert_cmd::Command::cargo_bin("shadowdiff").unwrap();
        command
            .arg("diff")
            .arg(&primary)
            .arg(b)
            .args(["--format", "json"]);
        if with_config {
            command.arg("--config").arg(&config);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert_eq!(
        diff(&superset, false).0,
        Some(1),
        "without the rule the additions differ"
    );
    let (code, out) = diff(&superset, true);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("allow added"),
        "the hidden count names the rule: {out}"
    );
    let (code, out) = diff(&changed, true);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("body/name") && !out.contains("body/email\""),
        "{out}"
    );
    let (code, out) = diff(&missing, true);
    assert_eq!(
        code,
        Some(1),
        "a field the secondary lacks is still a difference: {out}"
    );
    let bad = write("bad.toml", "[compare]\nallow = [\"removed\"]\n");
    let output = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("diff")
        .arg(&primary)
        .arg(&superset)
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("only `added`"));
}

#[test]
fn replay_keeps_excluded_routes_from_the_secondary_and_honours_route_writes() {
    let servers = crate::support::replay::Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("select.toml");
    std::fs::write(
        &config,
        r#"
[shadow]
exclude = ["/admin/**", "POST /payments"]

[[route]]
pattern = "POST /orders"
shadow-writes = true
"#,
    )
    .unwrap();
    let traffic = dir.path().join("t.jsonl");
    std::fs::write(
        &traffic,
        [
            r#"{"method":"GET","path":"/items/1"}"#,
            r#"{"method":"GET","path":"/admin/users"}"#,
            r#"{"method":"POST","path":"/payments","body":"{}"}"#,
            r#"{"method":"POST","path":"/orders","body":"{}"}"#,
            r#"{"method":"POST","path":"/other","body":"{}"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let output = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["replay", "--input", traffic.to_str().unwrap(), "--config"])
        .arg(&config)
        .args(["--primary", &servers.primary_url()])
        .args(["--secondary", &servers.secondary_url()])
        .args(["--db", db.to_str().unwrap()])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut sent: Vec<String> = servers
        .secondary_received()
        .iter()
        .map(|r| format!("{} {}", r.method, r.uri.path()))
        .collect();
    sent.sort();
    assert_eq!(sent, ["GET /items/1", "POST /orders"]);
    let report = support::report_json(&db);
    assert_eq!(report["summary"]["matched"], 2, "{report}");
    assert_eq!(
        report["summary"]["skipped_by_reason"]["excluded"], 2,
        "{report}"
    );
    assert_eq!(
        report["summary"]["skipped_by_reason"]["method_not_shadowed"], 1,
        "{report}"
    );
}
