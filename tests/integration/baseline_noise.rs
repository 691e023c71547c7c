//! Issue 15's baseline leg, against real servers whose answers carry realistic noise
//! (fresh UUIDs, nanosecond timestamps, nonces, shuffled lists, float jitter) and a few
//! real differences: with `--baseline` and no rules, the noise is hidden by the baseline
//! (and named), the real differences are reported at their paths.

use crate::support::{self, backend, client, closed_port, report_json, Backend, Body};
use http::Response;
use serde_json::{json, Value};
use shadowdiff::config::{Overrides, ServeConfig};
use std::time::{SystemTime, UNIX_EPOCH};

/// One user as the API answers it: the same facts every time, the noise fresh each time.
/// The `migrated` version changes the email of every fifth user and fails user 7.
fn user(id: u64, migrated: bool) -> Response<Body> {
    if migrated && id == 7 {
        return support::text(500, "internal error");
    }
    // Eight tags: the baseline repeats the primary's order once in 40,320 answers.
    let mut tags = vec!["a", "b", "c", "d", "e", "f", "g", "h"];
    fastrand::shuffle(&mut tags);

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let email = if migrated && id.is_multiple_of(5) {
        format!("user{id}@new.example")
    } else {
        format!("user{id}@example.com")
    };
    let body = json!({
        "id": id,
        "request_id": format!("{:032x}", fastrand::u128(..)),
        "generated_at": format!("{nanos}"),
        "nonce": format!("{:016x}", fastrand::u64(..)),
        "load": 0.5 + fastrand::f64() * 1e-12,
        "tags": tags,
        "name": format!("User {id}"),
        "email": email,
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(support::full(body.to_string()))
        .unwrap()
}

/// A server-rendered page: the footer's query time is fresh each time; the migrated
/// version adds a banner line at the top (so every line below moves) and a new version.
fn page(migrated: bool) -> Response<Body> {
    let mut lines = Vec::new();
    if migrated {
        lines.push("<div class=\"banner\">new look</div>".to_string());
    }
    lines.push("<html><body>".to_string());
    for n in 1..=5 {
        lines.push(format!("<p>paragraph {n}</p>"));
    }
    let version = if migrated { "2.0.0" } else { "1.4.2" };
    lines.push(format!("<footer>version {version}</footer>"));
    lines.push(format!(
        "<footer>Queries took {}.{}ms</footer>",
        fastrand::u32(1..100_000),
        fastrand::u32(0..1000)
    ));
    lines.push("</body></html>".to_string());
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .body(support::full(lines.join("\n") + "\n"))
        .unwrap()
}

async fn api(migrated: bool) -> Backend {
    backend(move |received| async move {
        if received.uri.path() == "/page" {
            return page(migrated);
        }
        let id = received
            .uri
            .path()
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0);
        user(id, migrated)
    })
    .await
}

fn config(
    primary: &Backend,
    secondary: &Backend,
    baseline: Option<&str>,
) -> (ServeConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut overrides = Overrides::new()
        .with("primary", primary.url())
        .with("secondary", secondary.url())
        .with("admin", "off")
        .with("db", dir.path().join("shadowdiff.db").display().to_string());
    if let Some(baseline) = baseline {
        overrides.set("baseline", baseline);
    }
    (ServeConfig::load(&overrides).unwrap(), dir)
}

async fn send(proxy: &support::Proxy, users: std::ops::Range<u64>) {
    for id in users {
        let response = client()
            .get(proxy.url(&format!("/users/{id}")))
            .send()
            .await
            .unwrap();
        response.bytes().await.unwrap();
    }
}

/// `count` GETs of the server-rendered page through the proxy.
async fn send_pages(proxy: &support::Proxy, count: usize) {
    for _ in 0..count {
        let response = client().get(proxy.url("/page")).send().await.unwrap();
        response.bytes().await.unwrap();
    }
}

fn differing_paths(route: &Value) -> Vec<String> {
    route["top_differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

fn hidden_rules(route: &Value) -> Vec<String> {
    route["hidden"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["rule"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_baseline_and_no_rules_only_the_real_differences_are_mismatches() {
    let (primary, baseline, secondary) = (api(false).await, api(false).await, api(true).await);
    let (config, dir) = config(&primary, &secondary, Some(&baseline.url()));
    let proxy = support::start(config, dir).await;
    send(&proxy, 1..41).await;
    let report = report_json(&proxy.stop().await);
    let route = &report["routes"][0];
    assert_eq!(route["route"], "GET /users/{id}", "{report:#}");
    // Users 5, 10, ..., 40 have a changed email; user 7 fails on the secondary.
    assert_eq!(route["mismatched"], 9, "{report:#}");
    assert_eq!(route["matched"], 31, "{report:#}");
    let mut paths = differing_paths(route);
    paths.sort();
    assert_eq!(
        paths,
        ["body", "body/email", "headers.content-type", "status"],
        "{report:#}"
    );
    let hidden = hidden_rules(route);
    for noise in [
        "body/request_id",
        "body/generated_at",
        "body/nonce",
        "body/load",
    ] {
        assert!(
            hidden.contains(&format!("baseline {noise}")),
            "{noise} is not named as hidden by the baseline: {hidden:?}"
        );
    }
    assert_eq!(report["summary"]["baseline"]["used"], 40, "{report:#}");
    assert_eq!(report["summary"]["baseline"]["unusable"], 0, "{report:#}");
}

/// The same traffic without a baseline: every request is a mismatch (the control that
/// shows the test above is about the baseline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_baseline_the_noise_makes_every_request_a_mismatch() {
    let (primary, secondary) = (api(false).await, api(true).await);
    let (config, dir) = config(&primary, &secondary, None);
    let proxy = support::start(config, dir).await;
    send(&proxy, 1..11).await;
    let report = report_json(&proxy.stop().await);
    assert_eq!(report["summary"]["mismatched"], 10, "{report:#}");
    assert!(report["summary"].get("baseline").is_none(), "{report:#}");
}

/// A baseline that cannot answer gives no noise: the comparison goes on without it (the
/// noise then shows), counted as unusable with its reason, never as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_baseline_is_counted_unusable_and_the_comparison_goes_on() {
    let (primary, secondary) = (api(false).await, api(false).await);
    let down = closed_port().await;
    let (config, dir) = config(&primary, &secondary, Some(&format!("http://{down}")));
    let proxy = support::start(config, dir).await;
    send(&proxy, 1..6).await;
    let report = report_json(&proxy.stop().await);
    let summary = &report["summary"];
    assert_eq!(summary["errors"], 0, "{report:#}");
    assert_eq!(summary["mismatched"], 5, "{report:#}");
    assert_eq!(summary["baseline"]["unusable"], 5, "{report:#}");
    assert_eq!(
        summary["baseline"]["unusable_by_reason"]["baseline:connect"], 5,
        "{report:#}"
    );
}

/// `--baseline self`: the primary answers the baseline's copy too, through a pool of its
/// own; an A/A run (the secondary is the primary's version) is then all matches. A write
/// is never sent to the primary twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_self_learns_the_noise_from_the_primary_and_never_repeats_a_write() {
    let (primary, secondary) = (api(false).await, api(false).await);
    let (mut config, dir) = config(&primary, &secondary, Some("self"));
    config.shadow.shadow_writes = true;
    let proxy = support::start(config, dir).await;
    send(&proxy, 1..11).await;
    let response = client()
        .post(proxy.url("/users/3"))
        .body("{}")
        .send()
        .await
        .unwrap();
    response.bytes().await.unwrap();
    let report = report_json(&proxy.stop().await);
    let summary = &report["summary"];
    assert_eq!(summary["matched"], 10, "{report:#}");
    assert_eq!(summary["baseline"]["used"], 10, "{report:#}");
    assert_eq!(
        summary["baseline"]["unusable_by_reason"]["write"], 1,
        "{report:#}"
    );
    let posts = primary
        .received()
        .iter()
        .filter(|r| r.method == http::Method::POST)
        .count();
    assert_eq!(posts, 1, "the write reached the primary once");
    let gets = primary
        .received()
        .iter()
        .filter(|r| r.method == http::Method::GET)
        .count();
    assert_eq!(
        gets, 20,
        "each read reached the primary twice: the client's and the baseline's"
    );
}

/// `replay --baseline URL`: the same noise hidden in CI as in serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_a_baseline_reports_only_the_real_differences() {
    let (primary, baseline, secondary) = (api(false).await, api(false).await, api(true).await);
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("traffic.jsonl");
    let lines: String = (1..21)
        .map(|id| format!("{{\"method\":\"GET\",\"path\":\"/users/{id}\"}}\n"))
        .collect();
    std::fs::write(&traffic, lines).unwrap();
    let db = dir.path().join("replay.db");
    let (primary_url, secondary_url, baseline_url) =
        (primary.url(), secondary.url(), baseline.url());
    let db_arg = db.clone();
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["replay", "--quiet", "--input"])
            .arg(&traffic)
            .args(["--primary", &primary_url, "--secondary", &secondary_url])
            .args(["--baseline", &baseline_url, "--db"])
            .arg(&db_arg)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = report_json(&db);
    // Users 5, 10, 15 and 20 have a changed email; user 7 fails on the secondary.
    assert_eq!(report["summary"]["mismatched"], 5, "{report:#}");
    assert_eq!(report["summary"]["baseline"]["used"], 20, "{report:#}");
}

/// The text half of the A/A promise and of per-line noise: the query time on the footer is
/// learnt as a mask of its tokens, so it is hidden even where the migrated page moved it
/// one line down, while the changed version on the line next to it is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_text_line_is_learnt_by_its_tokens_and_the_real_change_beside_it_shows() {
    let (primary, baseline, secondary) = (api(false).await, api(false).await, api(true).await);
    let (config, dir) = config(&primary, &secondary, Some(&baseline.url()));
    let proxy = support::start(config, dir).await;
    send_pages(&proxy, 10).await;
    let report = report_json(&proxy.stop().await);
    let route = &report["routes"][0];
    assert_eq!(route["mismatched"], 10, "{report:#}");
    let shown: Vec<(String, String)> = route["examples"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_string(),
                d["secondary"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        shown.iter().any(|(_, s)| s.contains("version 2.0.0")),
        "the version change is reported: {shown:?}"
    );
    assert!(
        !shown.iter().any(|(_, s)| s.contains("Queries took")),
        "the query time is noise: {shown:?}"
    );
}

/// An A/A run: the secondary runs the primary's own version. With a baseline and no rules,
/// every route reports 0 mismatches, JSON and text alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_a_a_run_with_a_baseline_and_no_rules_reports_no_mismatch() {
    let (primary, baseline, secondary) = (api(false).await, api(false).await, api(false).await);
    let (config, dir) = config(&primary, &secondary, Some(&baseline.url()));
    let proxy = support::start(config, dir).await;
    send(&proxy, 1..21).await;
    send_pages(&proxy, 10).await;
    let report = report_json(&proxy.stop().await);
    assert_eq!(report["summary"]["matched"], 30, "{report:#}");
    assert_eq!(report["summary"]["mismatched"], 0, "{report:#}");
}

/// The rules `suggest` proposes from a run without a baseline, fed back as `--config`
/// (still without a baseline), give the baseline's verdict: the same real differences,
/// and no `ignore` of a field that really changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggested_rules_fed_back_give_the_baselines_verdict() {
    let (primary, secondary) = (api(false).await, api(true).await);
    let (first_config, dir) = config(&primary, &secondary, None);
    let proxy = support::start(first_config, dir).await;
    send(&proxy, 1..41).await;
    let first = proxy.stop().await;
    let rules = first.with_file_name("suggested.toml");
    let (db, out) = (first.path.clone(), rules.clone());
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["suggest", "--db"])
            .arg(&db)
            .arg("--write")
            .arg(&out)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let suggested = std::fs::read_to_string(&rules).unwrap();
    let ignored: Vec<&str> = suggested
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('"'))
        .collect();
    assert!(
        !ignored.iter().any(|l| l.contains("email")),
        "a real change is proposed as noise:\n{suggested}"
    );

    let (mut config, dir) = config(&primary, &secondary, None);
    config.rules = shadowdiff::config::FileConfig::load(&rules)
        .unwrap()
        .rules();
    let proxy = support::start(config, dir).await;
    send(&proxy, 1..41).await;
    let report = report_json(&proxy.stop().await);
    let route = &report["routes"][0];
    assert_eq!(route["mismatched"], 9, "{suggested}\n{report:#}");
    let mut paths = differing_paths(route);
    paths.sort();
    assert_eq!(
        paths,
        ["body", "body/email", "headers.content-type", "status"],
        "{suggested}\n{report:#}"
    );
}

/// `/status` says whether a baseline is configured and shows its own breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_baselines_breaker() {
    let (primary, secondary) = (api(false).await, api(false).await);
    let down = closed_port().await;
    let (mut with_baseline, dir) = config(&primary, &secondary, Some(&format!("http://{down}")));
    with_baseline.shadow.breaker.threshold = 2;
    let (proxy, admin) = support::start_with_admin(with_baseline, dir).await;
    send(&proxy, 1..6).await;
    // The shadows finish after the clients' answers: wait for the second failure.
    support::wait_for("the baseline's breaker to open", || async move {
        support::status(admin).await["baseline"]["breaker"]["state"] == "open"
    })
    .await;
    let status = support::status(admin).await;
    assert_eq!(status["baseline"]["configured"], true, "{status:#}");
    assert_eq!(status["baseline"]["breaker"]["state"], "open", "{status:#}");
    // The secondary's breaker is its own: the secondary answered.
    assert_eq!(status["breaker"]["state"], "closed", "{status:#}");
    proxy.stop().await;

    let (without, dir) = config(&primary, &secondary, None);
    let (proxy, admin) = support::start_with_admin(without, dir).await;
    let status = support::status(admin).await;
    assert_eq!(status["baseline"]["configured"], false, "{status:#}");
    proxy.stop().await;
}
