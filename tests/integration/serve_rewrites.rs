//! `[[rewrite]]` (issue 17, item 2): the secondary's copy of a request is rewritten, the
//! primary's and the baseline's never are, an environment value never reaches the store or
//! the logs, and `show` says what each rewrite changed.

use crate::support::{self, Received};
use assert_cmd::Command;
use std::time::Duration;

const TOKEN: &str = "NEWAPI-SECRET-7f3a9c";

const REWRITES: &str = r#"
[[rewrite]]
path = { from = "^/v1/(.*)", to = "/v2/$1" }

[[rewrite]]
set-header = "authorization"
value = "Bearer ${env:NEW_API_TOKEN}"

[[rewrite]]
append-header = "x-migration"
value = "shadow"

[[rewrite]]
remove-header = "cookie"

[[rewrite]]
remove-query = "legacy"

[[rewrite]]
add-query = "api"
value = "2"

[[rewrite]]
set-header = "x-only-users"
value = "yes"
route = "GET /v1/users/**"
"#;

fn shadowdiff(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn target(r: &Received) -> String {
    r.uri.path_and_query().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secondary_gets_the_rewritten_request_and_the_primary_and_baseline_the_original() {
    let primary = support::fixed(200, r#"{"v": 1}"#).await;
    let baseline = support::fixed(200, r#"{"v": 1}"#).await;
    let secondary = support::fixed(200, r#"{"v": 2}"#).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewrite.toml");
    std::fs::write(&config, REWRITES).unwrap();
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
            "--baseline",
            &baseline.url(),
            "--db",
            db.to_str().unwrap(),
            "--log-level",
            "debug",
        ],
        &[("NEW_API_TOKEN", TOKEN)],
    );
    let http = support::client();
    let response = http
        .get(format!(
            "http://{}/v1/users/7?legacy=1&keep=a%20b",
            running.listen
        ))
        .header("cookie", "sid=1")
        .header("authorization", "Bearer client-own")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), r#"{"v": 1}"#);
    http.get(format!("http://{}/v1/orders", running.listen))
        .send()
        .await
        .unwrap();
    // Untouched by every rewrite but the header ones.
    http.get(format!("http://{}/health", running.listen))
        .send()
        .await
        .unwrap();

    let got = secondary.received_at_least(3).await;
    assert_eq!(got.len(), 3);
    let users = got.iter().find(|r| r.uri.path() == "/v2/users/7").unwrap();
    assert_eq!(target(users), "/v2/users/7?keep=a%20b&api=2");
    assert_eq!(users.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(users.headers["x-migration"], "shadow");
    assert_eq!(users.headers["x-only-users"], "yes");
    assert!(users.headers.get("cookie").is_none());
    let orders = got.iter().find(|r| r.uri.path() == "/v2/orders").unwrap();
    assert_eq!(target(orders), "/v2/orders?api=2");
    assert!(
        orders.headers.get("x-only-users").is_none(),
        "route-limited"
    );
    let health = got.iter().find(|r| r.uri.path() == "/health").unwrap();
    assert_eq!(target(health), "/health?api=2");

    for (leg, backend) in [("primary", &primary), ("baseline", &baseline)] {
        let got = backend.received_at_least(3).await;
        let users = got
            .iter()
            .find(|r| r.uri.path() == "/v1/users/7")
            .unwrap_or_else(|| panic!("{leg} got {got:?}"));
        assert_eq!(target(users), "/v1/users/7?legacy=1&keep=a%20b", "{leg}");
        assert_eq!(users.headers["authorization"], "Bearer client-own", "{leg}");
        assert_eq!(users.headers["cookie"], "sid=1", "{leg}");
        assert!(users.headers.get("x-migration").is_none(), "{leg}");
        assert!(
            got.iter()
                .all(|r| r.uri.query().is_none_or(|q| !q.contains("api=2"))),
            "{leg}"
        );
    }

    running.signal("TERM");
    assert!(running.wait().success());
    let logs = running.logs.lock().unwrap().join("\n");
    assert!(!logs.contains(TOKEN), "the token reached the logs: {logs}");
    for file in ["shadowdiff.db", "shadowdiff.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "the token reached {file}"
        );
    }

    let report = support::report_json(&db);
    assert_eq!(report["summary"]["mismatched"], 3, "{report}");
    let id = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["examples"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("/v1/users/7"))
        })
        .and_then(|e| e["id"].as_i64())
        .unwrap_or_else(|| panic!("no example of /v1/users/7 in {report}"));
    let (code, shown, err) = shadowdiff(&["show", &id.to_string(), "--db", db.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!shown.contains(TOKEN), "{shown}");
    let section = shown
        .split("== rewritten for the secondary\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no rewrite section in {shown}"));
    let lines: Vec<&str> = section.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "path /v1/users/7 -> /v2/users/7",
            "header authorization set to Bearer ${env:NEW_API_TOKEN}",
            "header x-migration appended shadow",
            "header cookie removed",
            "query legacy removed",
            "query api added 2",
            "header x-only-users set to yes",
        ],
        "{shown}"
    );
}

#[tokio::test]
async fn a_rewrite_that_leaves_the_root_is_counted_and_never_sent() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let proxy = support::proxy_with(
        "[[rewrite]]\npath = { from = \"^/a/(.*)\", to = \"/../$1\" }\n",
        &primary,
        &secondary,
    )
    .await;
    let http = support::client();
    let answer = http.get(proxy.url("/a/b")).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "same", "the client is served");
    http.get(proxy.url("/c")).send().await.unwrap();
    let db = proxy.stop().await;
    let paths: Vec<String> = secondary
        .received()
        .iter()
        .map(|r| r.uri.path().to_string())
        .collect();
    assert_eq!(paths, ["/c"]);
    let report = support::report_json(&db);
    assert_eq!(report["summary"]["matched"], 1);
    assert_eq!(report["summary"]["skipped_by_reason"]["rewrite_failed"], 1);
}

#[test]
fn bad_rewrites_exit_2_naming_the_table_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let serve = |text: &str, env: Option<(&str, &str)>| {
        std::fs::write(&file, text).unwrap();
        let mut cmd = Command::cargo_bin("shadowdiff").unwrap();
        cmd.args(["config", "check", file.to_str().unwrap()])
            .env_remove("SHADOWDIFF_TEST_REWRITE_TOKEN");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let output = cmd.timeout(Duration::from_secs(30)).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let text = "sample = 1\n\n[[rewrite]]\nremove-header = \"cookie\"\n\n[[rewrite]]\nset-header = \"x-key\"\nvalue = \"${env:SHADOWDIFF_TEST_REWRITE_TOKEN}\"\n";
    let (code, _, err) = serve(text, None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.toml:6: [[rewrite]] #2"), "{err}");
    assert!(
        err.contains("SHADOWDIFF_TEST_REWRITE_TOKEN is not set"),
        "{err}"
    );

    // With the variable set, it checks, and the printout keeps the reference, not the value.
    let (code, out, err) = serve(text, Some(("SHADOWDIFF_TEST_REWRITE_TOKEN", TOKEN)));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("${env:SHADOWDIFF_TEST_REWRITE_TOKEN}"),
        "{out}"
    );
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "{out}{err}");

    let (code, _, err) = serve("[[rewrite]]\nset-header = \"host\"\nvalue = \"x\"\n", None);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("bad.toml:1: [[rewrite]] #1") && err.contains("host"),
        "{err}"
    );
    let (code, _, err) = serve("[[rewrite]]\nrename-header = \"a\"\n", None);
    assert_eq!(code, Some(2));
    assert!(err.contains("rename-header"), "{err}");
}

#[test]
fn replay_rewrites_the_secondary_copy_as_serve_does() {
    let servers = crate::support::replay::Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewrite.toml");
    std::fs::write(&config, REWRITES).unwrap();
    let traffic = dir.path().join("t.jsonl");
    std::fs::write(
        &traffic,
        "{\"method\":\"GET\",\"path\":\"/v1/users/1?legacy=1\",\"headers\":{\"cookie\":\"c=1\"}}\n\
         {\"method\":\"GET\",\"path\":\"/other\"}\n",
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["replay", "--input", traffic.to_str().unwrap(), "--config"])
        .arg(&config)
        .args(["--primary", &servers.primary_url()])
        .args(["--secondary", &servers.secondary_url()])
        .args(["--db", db.to_str().unwrap()])
        .env("NEW_API_TOKEN", TOKEN)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    // The secondary echoes another target, so both are mismatches.
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("2 mismatched"), "{err}");
    let mut secondary: Vec<String> = servers.secondary_received().iter().map(target).collect();
    secondary.sort();
    assert_eq!(secondary, ["/other?api=2", "/v2/users/1?api=2"]);
    let got = servers.secondary_received();
    let users = got.iter().find(|r| r.uri.path() == "/v2/users/1").unwrap();
    assert_eq!(users.headers["authorization"], format!("Bearer {TOKEN}"));
    assert!(users.headers.get("cookie").is_none());
    let mut primary: Vec<String> = servers.primary_received().iter().map(target).collect();
    primary.sort();
    assert_eq!(primary, ["/other", "/v1/users/1?legacy=1"]);
    let stored = std::fs::read(&db).unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(TOKEN));
}
