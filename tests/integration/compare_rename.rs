//! `rename` and `map` rules end to end: two real servers on 127.0.0.1 answering a migrated
//! schema, `shadowdiff replay --config` through the real binary, and the JSON report's
//! `hidden` counts and differences. Each rule must hide exactly the difference it declares.

use crate::support::{backend, full, report_json, Backend};
use http::Response;

/// An account API; `migrated` answers the new schema (`email_address`, lowercase status).
/// User 3's address really changed and user 4 is `closed` on the secondary: those must
/// still be reported.
async fn api(migrated: bool) -> Backend {
    backend(move |received| async move {
        let path = received.uri.path().to_string();
        let id: u32 = path
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0);
        let body = if !migrated {
            format!(r#"{{"id":{id},"email":"u{id}@example.com","status":"ACTIVE","name":"n{id}"}}"#)
        } else {
            let email = if id == 3 {
                "new3@example.com".to_string()
            } else {
                format!("u{id}@example.com")
            };
            let status = if id == 4 { "closed" } else { "active" };
            format!(r#"{{"id":{id},"email_address":"{email}","status":"{status}","name":"n{id}"}}"#)
        };
        Response::builder()
            .header("content-type", "application/json")
            .body(full(body))
            .unwrap()
    })
    .await
}

/// Replays `paths` with `config` against the two servers; (exit code, stderr, store).
async fn replay(
    primary: &Backend,
    secondary: &Backend,
    config: &str,
    paths: &[String],
) -> (Option<i32>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("traffic.jsonl");
    let lines: String = paths
        .iter()
        .map(|p| format!("{{\"method\":\"GET\",\"path\":\"{p}\"}}\n"))
        .collect();
    std::fs::write(&traffic, lines).unwrap();
    let config_path = dir.path().join("shadowdiff.toml");
    std::fs::write(&config_path, config).unwrap();
    let db = dir.path().join("replay.db");
    let (primary_url, secondary_url) = (primary.url(), secondary.url());
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["replay", "--quiet", "--concurrency", "2", "--input"])
            .arg(&traffic)
            .args(["--primary", &primary_url, "--secondary", &secondary_url])
            .arg("--config")
            .arg(&config_path)
            .arg("--db")
            .arg(&db)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    )
}

fn route<'r>(report: &'r serde_json::Value, key: &str) -> &'r serde_json::Value {
    report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == key)
        .unwrap_or_else(|| panic!("no route {key}: {report:#}"))
}

fn hidden(route: &serde_json::Value, rule: &str) -> u64 {
    route["hidden"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["rule"] == rule)
        .and_then(|h| h["count"].as_u64())
        .unwrap_or(0)
}

/// (path, kind) of every difference in the route's examples.
fn shown(route: &serde_json::Value) -> Vec<(String, String)> {
    let mut shown: Vec<(String, String)> = route["examples"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["differences"].as_array().unwrap().iter())
        .map(|d| {
            (
                d["path"].as_str().unwrap_or_default().to_string(),
                d["kind"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    shown.sort();
    shown.dedup();
    shown
}

const RULES: &str = r#"
[compare]
map = [
  { path = "body/status", from = "ACTIVE", to = "active" },
  { path = "body/status", from = "INACTIVE", to = "inactive" },
]

[[route]]
pattern = "GET /users/{id}"
rename = { "body/email" = "body/email_address" }
"#;

const RENAME_ID: &str = "GET /users/{id}: rename body/email -> body/email_address";
const MAP_ID: &str = r#"map body/status "ACTIVE" -> "active""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_and_map_hide_exactly_their_difference() {
    let (primary, secondary) = (api(false).await, api(true).await);
    let mut paths: Vec<String> = (1..=6).map(|id| format!("/users/{id}")).collect();
    paths.extend((1..=2).map(|id| format!("/accounts/{id}")));
    let (code, stderr, dir) = replay(&primary, &secondary, RULES, &paths).await;
    // Mismatches remain (users 3 and 4, the accounts): replay exits 0 without a gate.
    assert_eq!(code, Some(0), "{stderr}");
    let report = report_json(&dir.path().join("replay.db"));

    let users = route(&report, "GET /users/{id}");
    assert_eq!(users["requests"], 6, "{users:#}");
    assert_eq!(
        hidden(users, RENAME_ID),
        6,
        "the renamed pair is hidden on every request: {users:#}"
    );
    assert_eq!(
        hidden(users, MAP_ID),
        5,
        "ACTIVE against active on every user but the closed one: {users:#}"
    );
    assert_eq!(users["mismatched"], 2, "users 3 and 4 only: {users:#}");
    assert_eq!(
        shown(users),
        [
            ("body/email".to_string(), "changed".to_string()),
            ("body/status".to_string(), "changed".to_string()),
        ],
        "a changed address under the new name, and ACTIVE against closed, are reported: {users:#}"
    );

    // The rename is the users route's own: elsewhere the key move is still a difference,
    // while the global map applies there too.
    let accounts = route(&report, "GET /accounts/{id}");
    assert_eq!(accounts["mismatched"], 2, "{accounts:#}");
    assert_eq!(hidden(accounts, RENAME_ID), 0, "{accounts:#}");
    assert_eq!(hidden(accounts, MAP_ID), 2, "{accounts:#}");
    assert_eq!(
        shown(accounts),
        [("body/email".to_string(), "renamed".to_string())],
        "{accounts:#}"
    );
    assert_eq!(
        report["unused_rules"],
        serde_json::json!([r#"map body/status "INACTIVE" -> "inactive""#]),
        "the INACTIVE mapping never matched: {report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_rules_the_migration_is_a_mismatch_on_every_request() {
    let (primary, secondary) = (api(false).await, api(true).await);
    let paths: Vec<String> = (1..=3).map(|id| format!("/users/{id}")).collect();
    let (code, stderr, dir) = replay(&primary, &secondary, "", &paths).await;
    assert_eq!(code, Some(0), "{stderr}");
    let report = report_json(&dir.path().join("replay.db"));
    let users = route(&report, "GET /users/{id}");
    assert_eq!(users["mismatched"], 3, "{users:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rename_or_map_exits_2_naming_file_and_line() {
    let (primary, secondary) = (api(false).await, api(true).await);
    let paths = ["/users/1".to_string()];
    let cases = [
        (
            "[compare]\nignore = [\"body/x\"]\nrename = { \"body/user/name\" = \"body/name\" }\n",
            "shadowdiff.toml:3",
            "only the last segment changes",
        ),
        (
            "[compare]\n\n[[route]]\npattern = \"/x\"\nmap = [\n  { path = \"body/s\", from = \"A\", to = \"A\" },\n]\n",
            "shadowdiff.toml:6",
            "nothing to map",
        ),
        (
            "[compare]\nrename = { \"body/*\" = \"body/x\" }\n",
            "shadowdiff.toml:2",
            "without `*`",
        ),
    ];
    for (config, line, reason) in cases {
        let (code, stderr, _dir) = replay(&primary, &secondary, config, &paths).await;
        assert_eq!(code, Some(2), "{config}: {stderr}");
        assert!(stderr.contains(line), "{config}: {stderr}");
        assert!(stderr.contains(reason), "{config}: {stderr}");
    }
    assert!(
        primary.received().is_empty(),
        "refused before any request was sent"
    );
}
