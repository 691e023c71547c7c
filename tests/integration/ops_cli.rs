//! The real binary operated as in production: configuration from the environment, JSON
//! logs, `config check`, and a SIGHUP reload that changes what a rule hides.

use crate::support;

use assert_cmd::Command;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

async fn metrics(admin: SocketAddr) -> String {
    support::client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls the metrics until `series` has `expected`; the guard only stops a broken test.
async fn wait_for_value(admin: SocketAddr, series: &str, expected: f64) {
    let guard = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(admin).await;
        if value(&text, series) == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < guard,
            "{series} never became {expected}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_setting_can_come_from_the_environment() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let running = support::spawn_serve(
        &[],
        &[
            ("SHADOWDIFF_PRIMARY", &primary.url()),
            ("SHADOWDIFF_SECONDARY", &secondary.url()),
            ("SHADOWDIFF_LISTEN", "127.0.0.1:0"),
            ("SHADOWDIFF_ADMIN", "127.0.0.1:0"),
            ("SHADOWDIFF_DB", db.to_str().unwrap()),
            ("SHADOWDIFF_SAMPLE", "0"),
            ("SHADOWDIFF_LOG_FORMAT", "json"),
        ],
    );
    let body = support::client()
        .get(format!("http://{}/e", running.listen))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "same");
    wait_for_value(
        running.admin,
        r#"shadowdiff_shadow_skipped_total{reason="sampled_out"}"#,
        1.0,
    )
    .await;
    assert!(db.exists());
    assert!(secondary.received().is_empty(), "sample 0 shadows nothing");
}

#[test]
fn a_bad_environment_value_exits_2_naming_the_flag() {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["serve", "--primary", "http://a", "--secondary", "http://b"])
        .env("SHADOWDIFF_BREAKER_COOLDOWN", "0s")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--breaker-cooldown"), "{err}");
}

fn write_config(path: &Path, primary: &str, secondary: &str, db: &Path, rules: &str) {
    std::fs::write(
        path,
        format!(
            "primary = {primary:?}\nsecondary = {secondary:?}\ndb = {:?}\n\
             listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n{rules}",
            db.display().to_string()
        ),
    )
    .unwrap();
}

async fn digest(admin: SocketAddr) -> String {
    let text = support::client()
        .get(format!("http://{admin}/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    status["config_digest"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_rules_and_keeps_them_when_the_new_file_is_bad() {
    let primary = support::fixed(200, r#"{"id": 1, "ts": 1}"#).await;
    let secondary = support::fixed(200, r#"{"id": 1, "ts": 2}"#).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hup.db");
    let config = dir.path().join("shadowdiff.toml");
    let write = |rules: &str| write_config(&config, &primary.url(), &secondary.url(), &db, rules);
    write("");
    let running = support::spawn_serve(&["--config", config.to_str().unwrap()], &[]);
    let http = support::client();
    // One connection for the whole test: a reload must not drop it.
    let request = || http.get(format!("http://{}/r", running.listen)).send();
    let mismatched = r#"shadowdiff_requests_total{outcome="mismatched",route="GET /r"}"#;
    let matched = r#"shadowdiff_requests_total{outcome="matched",route="GET /r"}"#;

    request().await.unwrap();
    wait_for_value(running.admin, mismatched, 1.0).await;
    let digest_before = digest(running.admin).await;

    write("[compare]\nignore = [\"body/ts\"]\n");
    running.signal("HUP");
    wait_for_value(
        running.admin,
        r#"shadowdiff_config_reloads_total{result="applied"}"#,
        1.0,
    )
    .await;
    request().await.unwrap();
    wait_for_value(running.admin, matched, 1.0).await;
    let digest_after = digest(running.admin).await;
    assert_ne!(
        digest_before, digest_after,
        "/status shows the config in effect"
    );

    // A regex that does not compile: refused, counted, and the previous rules stay.
    write("[compare]\nmask = [{ regex = \"(\", replace = \"x\" }]\n");
    running.signal("HUP");
    wait_for_value(
        running.admin,
        r#"shadowdiff_config_reloads_total{result="rejected"}"#,
        1.0,
    )
    .await;
    request().await.unwrap();
    wait_for_value(running.admin, matched, 2.0).await;
    wait_for_value(running.admin, mismatched, 1.0).await;

    // Sampling is reloaded too.
    write("sample = 0\n");
    running.signal("HUP");
    wait_for_value(
        running.admin,
        r#"shadowdiff_config_reloads_total{result="applied"}"#,
        2.0,
    )
    .await;
    request().await.unwrap();
    wait_for_value(
        running.admin,
        r#"shadowdiff_shadow_skipped_total{reason="sampled_out"}"#,
        1.0,
    )
    .await;
}

#[test]
fn a_taken_admin_address_exits_2_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["serve", "--primary", "http://127.0.0.1:1", "--secondary"])
        .args([
            "http://127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            &addr,
        ])
        .arg("--db")
        .arg(dir.path().join("a.db"))
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains(&format!("--admin {addr}")), "{err}");
}

#[test]
fn config_check_prints_the_effective_config_or_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "primary = \"http://a\"\nsecondary = \"http://b\"\nbreaker-threshold = 5\n\
         [compare]\nignore = [\"body/ts\"]\n",
    )
    .unwrap();
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["config", "check", path.to_str().unwrap()])
        .env("SHADOWDIFF_SAMPLE", "0.25")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    for line in [
        "sample = 0.25",
        "primary = \"http://a/\"",
        "breaker-threshold = 5",
        "breaker-cooldown = \"10s\"",
        "admin = \"127.0.0.1:9090\"",
        "# 1 compare rule(s): ignore body/ts",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing in\n{out}");
    }

    std::fs::write(
        &path,
        "primary = \"http://a\"\nsecondary = \"http://b\"\nbreaker-cooldown = \"soon\"\n",
    )
    .unwrap();
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["config", "check", path.to_str().unwrap()])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("key `breaker-cooldown`"), "{err}");
}

/// What `config check` prints is a config file: checked again, it prints the same, digest
/// included (one spelling per value, read back by the same grammar).
#[test]
fn config_check_prints_a_file_that_checks_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.toml");
    std::fs::write(
        &first,
        "primary = \"http://a\"\nsecondary = \"http://b\"\nsample = \"25%\"\n\
         max-body = \"2MiB\"\nconnect-timeout = \"1500ms\"\nsample-by = \"header:x-user\"\n\
         record = \"traffic.jsonl\"\nadmin = \"off\"\n[compare]\nignore = [\"body/ts\"]\n",
    )
    .unwrap();
    let check = |path: &std::path::Path| {
        let output = Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["config", "check"])
            .arg(path)
            .env_remove("SHADOWDIFF_PRIMARY")
            .env_remove("SHADOWDIFF_SECONDARY")
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = check(&first);
    for line in [
        "sample = 0.25",
        "max-body = 2097152",
        "connect-timeout = \"1s 500ms\"",
        "admin = \"off\"",
        "record = \"traffic.jsonl\"",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} missing in\n{printed}"
        );
    }
    // The rules are summarized, not printed: put them back for the second check.
    let second = dir.path().join("second.toml");
    let rules = "[compare]\nignore = [\"body/ts\"]\n";
    let (settings, redact) = printed.split_once("[redact]").unwrap();
    std::fs::write(&second, format!("{settings}{rules}[redact]{redact}")).unwrap();
    assert_eq!(check(&second), printed);
}

/// Issue 14: `config check` on a file of rules alone (upstreams given as flags at serve
/// time) failed with `--primary: required` and never looked at the rules.
#[test]
fn config_check_validates_a_rules_only_file_and_reports_its_bad_regex() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(
        &path,
        "[compare]\nignore = [\"body/ts\"]\n[[route]]\npattern = \"GET /users/{id}\"\nignore = [\"body/etag\"]\n",
    )
    .unwrap();
    let check = || {
        Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["config", "check", path.to_str().unwrap()])
            .env_remove("SHADOWDIFF_PRIMARY")
            .env_remove("SHADOWDIFF_SECONDARY")
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap()
    };
    let output = check();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{out}{err}");
    for line in [
        "# primary: not set here; serve needs --primary or SHADOWDIFF_PRIMARY",
        "# secondary: not set here; serve needs --secondary or SHADOWDIFF_SECONDARY",
        "# 2 compare rule(s): ignore body/ts, GET /users/{id}: ignore body/etag",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing in\n{out}");
    }
    assert!(!out.contains("unset.invalid"), "{out}");

    std::fs::write(&path, "[compare]\nmask = [{ regex = \"(\" }]\n").unwrap();
    let output = check();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("compare.mask.regex"), "{err}");
    assert!(err.contains("unclosed group"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_logs_nothing_per_request_and_debug_one_line_per_mismatch() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::backend(|received| async move {
        let body = if received.uri.path() == "/diff" {
            "other"
        } else {
            "same"
        };
        support::text(200, body)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    for (level, mismatch_lines) in [("info", 0), ("info,shadowdiff=debug", 2)] {
        let db = dir.path().join(format!("{level}.db"));
        let running = support::spawn_serve(
            &[
                "--primary",
                &primary.url(),
                "--secondary",
                &secondary.url(),
                "--db",
                db.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--log-level",
                level,
            ],
            &[],
        );
        let http = support::client();
        for path in ["/diff", "/same", "/diff", "/same"] {
            http.get(format!("http://{}{path}", running.listen))
                .send()
                .await
                .unwrap();
        }
        wait_for_value(
            running.admin,
            r#"shadowdiff_requests_total{outcome="matched",route="GET /same"}"#,
            2.0,
        )
        .await;
        wait_for_value(
            running.admin,
            r#"shadowdiff_requests_total{outcome="mismatched",route="GET /diff"}"#,
            2.0,
        )
        .await;
        running.signal("TERM");
        let mut running = running;
        assert!(running.child.wait().unwrap().success());
        // The reader thread has seen end of file once the logs stop growing after exit.
        let guard = Instant::now() + Duration::from_secs(30);
        let logs = loop {
            let logs = running.logs.lock().unwrap().clone();
            if logs.iter().any(|l| l.contains("shutting down")) {
                break logs;
            }
            assert!(Instant::now() < guard, "no shutdown line: {logs:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mismatches = logs.iter().filter(|l| l.contains(" mismatch ")).count();
        assert_eq!(mismatches, mismatch_lines, "{level}: {logs:#?}");
        if level == "info" {
            assert!(
                logs.iter()
                    .all(|l| !l.contains("/diff") && !l.contains("/same")),
                "{logs:#?}"
            );
        }
    }
}

/// `[shadow]` lists and `[[rewrite]]` tables were printed by `config check` as keys
/// (`shadow-selection = "…"`, `rewrite = "…"`) that no file takes, so the printout no longer
/// checked to itself; they are printed as the sections they are.
#[test]
fn config_check_prints_shadow_lists_and_rewrites_as_sections_that_check_to_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.toml");
    std::fs::write(
        &first,
        "answer-from = \"secondary\"\n[shadow]\ninclude = [\"/api/**\"]\nexclude = [\"POST /api/pay\"]\n\
         [[rewrite]]\nremove-header = \"cookie\"\n\
         [[rewrite]]\nset-header = \"authorization\"\nvalue = \"Bearer ${env:OPS_CLI_TEST_TOKEN}\"\nroute = \"GET /api/**\"\n\
         [[rewrite]]\npath = { from = \"^/v1/(.*)\", to = \"/v2/$1\" }\n",
    )
    .unwrap();
    let check = |path: &std::path::Path| {
        let output = Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["config", "check"])
            .arg(path)
            .env("OPS_CLI_TEST_TOKEN", "secret-value-123456")
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = check(&first);
    assert!(!printed.contains("shadow-selection"), "{printed}");
    assert!(!printed.contains("secret-value-123456"), "{printed}");
    for line in [
        "[shadow]",
        "include = [\"/api/**\"]",
        "value = \"Bearer ${env:OPS_CLI_TEST_TOKEN}\"",
        "path = { from = \"^/v1/(.*)\", to = \"/v2/$1\" }",
        "answer-from = \"secondary\"",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} missing in\n{printed}"
        );
    }
    let second = dir.path().join("second.toml");
    std::fs::write(&second, &printed).unwrap();
    assert_eq!(check(&second), printed);
}
