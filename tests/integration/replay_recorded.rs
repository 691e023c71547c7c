//! `replay --against-recorded` and `serve --record-responses` (issue 17, item 6): the
//! secondary compared with the primary's recorded answers while no primary listens, with
//! what the recording holds redacted hidden by `redacted`, never a false mismatch.

use crate::support::replay::Servers;
use crate::support::{self, client, config, start};
use assert_cmd::Command;
use shadowdiff::config::RecordConfig;
use std::path::Path;
use std::time::Duration;

fn replay(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("replay")
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

fn har_entry(path: &str, status: i64, text: Option<&str>) -> String {
    let content = match text {
        Some(text) => format!(
            r#"{{"size": {}, "mimeType": "text/plain", "text": {}}}"#,
            text.len(),
            serde_json::Value::String(text.into())
        ),
        // The exporter left the body out.
        None => r#"{"size": 120, "mimeType": "text/plain"}"#.into(),
    };
    format!(
        r#"{{"startedDateTime": "2026-11-30T10:00:00.000Z", "time": 12.5,
            "request": {{"method": "GET", "url": "http://old.example{path}", "headers": []}},
            "response": {{"status": {status}, "statusText": "", "headers": [
                {{"name": "Content-Encoding", "value": "gzip"}}], "content": {content}}}}}"#
    )
}

#[test]
fn a_har_with_responses_is_compared_with_the_secondary_while_no_primary_listens() {
    // The replay servers echo `METHOD TARGET`; the secondary adds " (changed)" under /diff/.
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("old-system.har");
    let entries = [
        har_entry("/same", 200, Some("GET /same")),
        har_entry("/diff/a", 200, Some("GET /diff/a")),
        // The browser's "no response" and a body the exporter did not keep.
        har_entry("/blocked", 0, Some("")),
        har_entry("/unsaved", 200, None),
    ];
    std::fs::write(
        &har,
        format!(
            r#"{{"log": {{"version": "1.2", "entries": [{}]}}}}"#,
            entries.join(",")
        ),
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let (code, out, err) = replay(&[
        "--input",
        har.to_str().unwrap(),
        "--against-recorded",
        "--secondary",
        &servers.secondary_url(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(servers.primary_received().is_empty());
    let mut seen: Vec<String> = servers
        .secondary_received()
        .iter()
        .map(|r| r.uri.path().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ["/diff/a", "/same"], "nothing to compare: not sent");
    let report = support::report_json(&db);
    let summary = &report["summary"];
    assert_eq!(summary["matched"], 1, "{report}");
    assert_eq!(summary["mismatched"], 1, "{report}");
    assert_eq!(summary["errors"], 0, "{report}");
    assert_eq!(
        summary["skipped_by_reason"]["no_recorded_response"], 2,
        "{report}"
    );
    assert!(
        report["runs"][0]["primary"]
            .as_str()
            .unwrap()
            .contains("old-system.har"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_the_recording_holds_redacted_are_hidden_by_redacted_never_a_mismatch() {
    let secondary = support::backend(|request| async move {
        let body = match request.uri.path() {
            "/session" => {
                r#"{"access_token": "tok-NEW-1", "user": "ann", "note": "id tok-NEW-1 ok"}"#
            }
            _ => r#"{"access_token": "tok-NEW-2", "user": "bob"}"#,
        };
        let mut response = support::text(200, body);
        response.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        response
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.jsonl");
    let line = |path: &str, body: &str| {
        serde_json::json!({
            "method": "GET",
            "path": path,
            "headers": [],
            "response": {
                "status": 200,
                "headers": [["content-type", "application/json"]],
                "body": body,
                "latency_ms": 3.5,
            }
        })
        .to_string()
    };
    std::fs::write(
        &record,
        [
            line(
                "/session",
                r#"{"access_token": "[redacted]", "user": "ann", "note": "id [redacted] ok"}"#,
            ),
            // A real difference beside a redacted one is still reported.
            line(
                "/other",
                r#"{"access_token": "[redacted]", "user": "carol"}"#,
            ),
        ]
        .join("\n"),
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let (code, out, err) = tokio::task::spawn_blocking({
        let (record, db, url) = (record.clone(), db.clone(), secondary.url());
        move || {
            replay(&[
                "--input",
                record.to_str().unwrap(),
                "--against-recorded",
                "--secondary",
                &url,
                "--primary",
                "http://127.0.0.1:9",
                "--db",
                db.to_str().unwrap(),
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    let report = support::report_json(&db);
    assert_eq!(report["summary"]["matched"], 1, "{report}");
    assert_eq!(report["summary"]["mismatched"], 1, "{report}");
    let routes = report["routes"].as_array().unwrap();
    let hidden_by_redacted: u64 = routes
        .iter()
        .flat_map(|r| r["hidden"].as_array().cloned().unwrap_or_default())
        .filter(|h| h["rule"] == "redacted")
        .map(|h| h["count"].as_u64().unwrap())
        .sum();
    // access_token twice and the scrubbed note once.
    assert_eq!(hidden_by_redacted, 3, "{report}");
    let other = routes
        .iter()
        .find(|r| r["route"].as_str().unwrap().contains("/other"))
        .unwrap();
    let paths: Vec<&str> = other["examples"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["body/user"], "{other}");
    let stored = std::fs::read(&db).unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains("tok-NEW"),
        "the secondary's secrets are redacted in the store too"
    );
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_responses_replays_against_the_secondary_once_the_primary_is_gone() {
    let answer = |leg: &'static str| {
        move |request: support::Received| async move {
            // The same secret from both: the recording holds it redacted, the secondary
            // sends it in full, and that alone must not be a mismatch.
            let token = "PRIMARY-SECRET-1";
            let body = match request.uri.path() {
                "/changed" => format!(r#"{{"v": "{leg}", "access_token": "{token}"}}"#),
                _ => format!(r#"{{"v": 1, "access_token": "{token}"}}"#),
            };
            let mut response = support::text(200, &body);
            response.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            response.headers_mut().insert(
                "set-cookie",
                http::HeaderValue::from_static("sid=COOKIE-SECRET-3"),
            );
            response
        }
    };
    let primary = support::backend(answer("primary")).await;
    let secondary = support::backend(answer("secondary")).await;
    let (mut config, dir) = config(&primary.url(), &secondary.url());
    let record = dir.path().join("traffic.jsonl");
    config.record = Some(RecordConfig {
        path: record.clone(),
        max_size: 1 << 20,
        keep_secrets: false,
        responses: true,
    });
    let proxy = start(config, dir).await;
    let http = client();
    for path in ["/a", "/b", "/changed"] {
        http.get(proxy.url(path)).send().await.unwrap();
    }
    // The directory (the record in it) lives as long as the store handle.
    let served_db = proxy.stop().await;
    let served = support::report_json(&served_db);
    drop(primary);
    let recorded = lines(&record);
    assert_eq!(recorded.len(), 3);
    for line in &recorded {
        let text = line.to_string();
        for secret in ["PRIMARY-SECRET-1", "COOKIE-SECRET-3"] {
            assert!(!text.contains(secret), "{secret} in the record: {text}");
        }
        assert_eq!(line["response"]["status"], 200, "{line}");
    }

    let out_dir = tempfile::tempdir().unwrap();
    let db = out_dir.path().join("ci.db");
    let (code, out, err) = tokio::task::spawn_blocking({
        let (record, db, url) = (record.clone(), db.clone(), secondary.url());
        move || {
            replay(&[
                "--input",
                record.to_str().unwrap(),
                "--against-recorded",
                "--secondary",
                &url,
                "--db",
                db.to_str().unwrap(),
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    let replayed = support::report_json(&db);
    for key in ["matched", "mismatched", "errors"] {
        assert_eq!(
            replayed["summary"][key], served["summary"][key],
            "{key}: {replayed} vs {served}"
        );
    }
    assert_eq!(replayed["summary"]["matched"], 2, "{replayed}");
    assert_eq!(replayed["summary"]["mismatched"], 1, "{replayed}");
}

#[test]
fn against_recorded_refuses_formats_without_answers_and_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(
        &log,
        "127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] \"GET /a HTTP/1.1\" 200 2 \"-\" \"curl\"\n",
    )
    .unwrap();
    let db = dir.path().join("x.db");
    let (code, _, err) = replay(&[
        "--input",
        log.to_str().unwrap(),
        "--against-recorded",
        "--secondary",
        "http://127.0.0.1:9",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--against-recorded") && err.contains("access-log"),
        "{err}"
    );
    assert!(!db.exists(), "nothing created");
    let (code, _, err) = replay(&[
        "--input",
        log.to_str().unwrap(),
        "--against-recorded",
        "--secondary",
        "http://127.0.0.1:9",
        "--baseline",
        "http://127.0.0.1:10",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--baseline"), "{err}");
}
