//! `shadowdiff report --format json` through the real binary, on stores with known counts.
use crate::support::store as common;

use assert_cmd::Command;
use common::*;
use serde_json::Value;
use shadowdiff::store::StoreOptions;
use std::path::Path;

fn report(args: &[&str]) -> (i32, Value, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("report")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap(), json, stderr)
}

/// Rates are compared to 1e-12: serde_json's float printing may differ in the last digit.
fn assert_close(value: &Value, want: f64) {
    let got = value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is not a number"));
    assert!((got - want).abs() < 1e-12, "{got} != {want}");
}

fn route<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {json}"))
}

fn standard_db(dir: &Path, name: &str) -> std::path::PathBuf {
    let db = dir.join(name);
    write(&db, standard_workload(), StoreOptions::default());
    db
}

#[test]
fn keeps_the_first_report_keys_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path(), "a.db");
    let (code, json, stderr) = report(&["--db", db.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let summary = &json["summary"];
    assert_eq!(summary["matched"], 141);
    assert_eq!(summary["mismatched"], 10);
    assert_eq!(summary["errors"], 2);
    assert_eq!(summary["skipped"], 8);
    assert_close(&summary["mismatch_rate"], 10.0 / 151.0);
    let users = route(&json, "GET /users/{id}");
    assert_eq!(users["matched"], 91);
    assert_eq!(users["mismatched"], 10);
    assert_eq!(users["errors"], 2);
    assert_eq!(users["skipped"], 5);
    assert_close(&users["mismatch_rate"], 10.0 / 101.0);
    assert_eq!(users["skipped_by_reason"]["sampled_out"], 5);
    assert_eq!(users["errors_by_kind"]["secondary:timeout"], 2);
    let orders = route(&json, "POST /orders");
    assert_eq!(orders["matched"], 0);
    assert_eq!(orders["skipped"], 3);
    assert_close(&orders["mismatch_rate"], 0.0);
    assert_eq!(route(&json, "GET /health")["matched"], 50);
}

#[test]
fn lists_top_paths_latency_hidden_rules_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path(), "a.db");
    let (_, json, _) = report(&["--db", db.to_str().unwrap()]);
    let users = route(&json, "GET /users/{id}");
    let top = users["top_differences"].as_array().unwrap();
    assert_eq!(top[0]["path"], "body/price");
    assert_eq!(top[0]["count"], 10);
    assert_eq!(top[0]["share"].as_f64().unwrap(), 1.0);
    assert_eq!(top[1]["path"], "status");
    assert_eq!(top[1]["count"], 4);
    let p50 = users["latency"]["primary"]["p50_ms"].as_f64().unwrap();
    assert!((p50 - 10.0).abs() < 0.5, "{p50}");
    let p99 = users["latency"]["secondary"]["p99_ms"].as_f64().unwrap();
    assert!((p99 - 20.0).abs() < 1.0, "{p99}");
    assert_eq!(users["hidden"][0]["rule"], "ignore-date");
    assert_eq!(users["hidden"][0]["count"], 7);
    assert_eq!(json["unused_rules"], serde_json::json!(["mask-ids"]));
    // One example per signature, oldest first.
    let examples = users["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[0]["uri"], "/users/0");
    assert_eq!(examples[0]["secondary_status"], 500);
    assert_eq!(examples[0]["differences"].as_array().unwrap().len(), 2);
}

#[test]
fn merges_several_databases() {
    let dir = tempfile::tempdir().unwrap();
    let a = standard_db(dir.path(), "a.db");
    let b = standard_db(dir.path(), "b.db");
    let (code, json, stderr) = report(&["--db", a.to_str().unwrap(), "--db", b.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["summary"]["matched"], 282);
    assert_eq!(json["summary"]["mismatched"], 20);
    assert_eq!(json["summary"]["skipped"], 16);
    assert_eq!(route(&json, "GET /users/{id}")["mismatched"], 20);
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    assert_eq!(json["databases"].as_array().unwrap().len(), 2);
}

#[test]
fn filters_by_run_and_route() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let first = write(&db, standard_workload(), StoreOptions::default());
    write(&db, vec![matched("GET /health")], StoreOptions::default());
    let path = db.to_str().unwrap();
    let (_, json, _) = report(&["--db", path, "--run", &first.to_string()]);
    assert_eq!(json["summary"]["matched"], 141);
    let (_, json, _) = report(&["--db", path]);
    assert_eq!(json["summary"]["matched"], 142);
    let (_, json, _) = report(&["--db", path, "--route", "GET /users/*"]);
    assert_eq!(json["routes"].as_array().unwrap().len(), 1);
    assert_eq!(json["summary"]["matched"], 91);
    let (_, json, _) = report(&["--db", path, "--since", "1h"]);
    assert_eq!(json["summary"]["matched"], 142);
}

#[test]
fn an_empty_store_reports_zero_rates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("empty.db");
    write(&db, Vec::new(), StoreOptions::default());
    let (code, json, _) = report(&["--db", db.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(json["summary"]["mismatch_rate"].as_f64().unwrap(), 0.0);
    assert_eq!(json["routes"], serde_json::json!([]));
}

#[test]
fn report_never_modifies_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path(), "a.db");
    let before = std::fs::read(&db).unwrap();
    for format in ["json", "text", "markdown", "html", "junit"] {
        let (code, _, stderr) = report(&["--db", db.to_str().unwrap(), "--format", format]);
        assert_eq!(code, 0, "{format}: {stderr}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn reads_a_store_while_its_writer_is_running() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let writer =
        shadowdiff::store::StoreWriter::open(&db, run_info(&[]), StoreOptions::default()).unwrap();
    let (code, json, stderr) = report(&["--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["runs"][0]["finished_at"], Value::Null);
    let sender = writer.sender();
    sender.send(matched("GET /live")).unwrap();
    drop(sender);
    writer.finish().unwrap();
    let (_, json, _) = report(&["--db", db.to_str().unwrap()]);
    assert_eq!(json["summary"]["matched"], 1);
}

#[test]
fn an_unwritable_output_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path(), "a.db");
    let target = dir.path().join("no-such-dir").join("r.json");
    let (code, _, stderr) = report(&[
        "--db",
        db.to_str().unwrap(),
        "--output",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no-such-dir"), "{stderr}");
}

#[test]
fn says_when_max_db_size_stopped_examples_and_what_was_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("full.db");
    let options = StoreOptions {
        max_db_size: Some(1),
        ..StoreOptions::default()
    };
    options
        .dropped
        .store(3, std::sync::atomic::Ordering::Relaxed);
    write(&db, standard_workload(), options);
    let (_, json, _) = report(&["--db", db.to_str().unwrap()]);
    assert_eq!(json["summary"]["dropped"], 3);
    assert_eq!(json["summary"]["mismatched"], 10);
    let notes = json["notes"].to_string();
    assert!(notes.contains("--max-db-size"), "{notes}");
    assert!(notes.contains("3 requests were dropped"), "{notes}");
    assert!(json["runs"][0]["examples_stopped_at"].is_string());
}

/// Issue 14: `--route` takes the `[[route]]` grammar: `*` stays within one segment (also
/// inside one), `**` crosses segments, and a pattern without a method picks every method.
#[test]
fn route_filter_uses_the_route_pattern_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    write(
        &db,
        vec![
            matched("GET /users/{id}"),
            matched("GET /users/{id}/orders"),
            matched("DELETE /users/{id}"),
            matched("GET /search"),
            matched("GET /search/{id}"),
        ],
        StoreOptions::default(),
    );
    let path = db.to_str().unwrap();
    let routes = |pattern: &str| {
        let (code, json, err) = report(&["--db", path, "--route", pattern]);
        assert_eq!(code, 0, "{pattern}: {err}");
        let mut names: Vec<String> = json["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["route"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(routes("GET /users/*"), ["GET /users/{id}"]);
    assert_eq!(
        routes("GET /users/**"),
        ["GET /users/{id}", "GET /users/{id}/orders"]
    );
    assert_eq!(
        routes("/users/*"),
        ["DELETE /users/{id}", "GET /users/{id}"]
    );
    assert_eq!(routes("GET /search*"), ["GET /search"]);
    let (code, _, err) = report(&["--db", path, "--route", "users/*"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--route") && err.contains("must start with `/`"),
        "{err}"
    );
}

/// Issue 14 (outcomes typed end to end): a stored outcome no release writes used to be
/// counted as a skip under whatever reason its row carried; it is now named for what it is.
#[test]
fn an_outcome_no_release_writes_is_counted_apart_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let run = write(&db, vec![matched("GET /a")], StoreOptions::default());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO outcome_counts (run_id, minute, route, outcome, reason, count)
         VALUES (?1, 0, 'GET /a', 'quarantined', 'sampled_out', 3)",
        [run],
    )
    .unwrap();
    drop(conn);
    let (code, json, err) = report(&["--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json["summary"]["matched"], 1);
    assert_eq!(json["summary"]["skipped_by_reason"]["unknown outcome"], 3);
    assert!(json["summary"]["skipped_by_reason"]["sampled_out"].is_null());
}
