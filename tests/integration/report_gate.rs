//! Gate exit codes below, at and above each threshold, and refused inputs.
use crate::support::store as common;

use assert_cmd::Command;
use common::*;
use shadowdiff::exchange::ErrorKind;
use shadowdiff::store::StoreOptions;
use std::path::{Path, PathBuf};

/// `GET /a`: 3 matched, 1 mismatched (rate 0.25), 1 error (error rate 0.2).
fn quarter_db(dir: &Path) -> PathBuf {
    let db = dir.join("q.db");
    let mut records = vec![matched("GET /a"), matched("GET /a"), matched("GET /a")];
    records.push(mismatched("GET /a", "/a", &["body"]));
    records.push(error("GET /a", ErrorKind::Connect));
    write(&db, records, StoreOptions::default());
    db
}

fn gate(db: &Path, flags: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("gate")
        .arg("--db")
        .arg(db)
        .args(flags)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn mismatch_rate_below_at_and_above() {
    let dir = tempfile::tempdir().unwrap();
    let db = quarter_db(dir.path());
    assert_eq!(gate(&db, &["--max-mismatch-rate", "0.3"]).0, 0);
    assert_eq!(gate(&db, &["--max-mismatch-rate", "0.25"]).0, 0);
    assert_eq!(gate(&db, &["--max-mismatch-rate", "25%"]).0, 0);
    let (code, out, _) = gate(&db, &["--max-mismatch-rate", "0.2"]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL"), "{out}");
    assert!(
        out.contains("GET /a: mismatch rate 25.00% (1 of 4) is above --max-mismatch-rate 20.00%"),
        "{out}"
    );
}

#[test]
fn route_max_overrides_the_global_rate() {
    let dir = tempfile::tempdir().unwrap();
    let db = quarter_db(dir.path());
    let flags = ["--max-mismatch-rate", "0", "--route-max", "GET /a*=0.25"];
    assert_eq!(gate(&db, &flags).0, 0);
    let (code, out, _) = gate(
        &db,
        &["--max-mismatch-rate", "0", "--route-max", "GET /a=0.24"],
    );
    assert_eq!(code, 1);
    assert!(out.contains("--route-max"), "{out}");
}

#[test]
fn error_rate_below_at_and_above() {
    let dir = tempfile::tempdir().unwrap();
    let db = quarter_db(dir.path());
    let with = |rate: &str| gate(&db, &["--max-mismatch-rate", "1", "--max-error-rate", rate]).0;
    assert_eq!(with("0.3"), 0);
    assert_eq!(with("0.2"), 0);
    assert_eq!(with("0.1"), 1);
}

#[test]
fn min_compared_below_at_and_above() {
    let dir = tempfile::tempdir().unwrap();
    let db = quarter_db(dir.path());
    let flags = |n: &'static str| ["--max-mismatch-rate", "1", "--min-compared", n];
    assert_eq!(gate(&db, &flags("3")).0, 0);
    assert_eq!(gate(&db, &flags("4")).0, 0);
    let (code, out, _) = gate(&db, &flags("5"));
    assert_eq!(code, 1);
    assert!(
        out.contains("only 4 requests were compared, fewer than --min-compared 5"),
        "{out}"
    );
}

#[test]
fn report_gates_with_the_same_flags() {
    let dir = tempfile::tempdir().unwrap();
    let db = quarter_db(dir.path());
    let status = |rate: &str| {
        Command::cargo_bin("shadowdiff")
            .unwrap()
            .args([
                "report",
                "--format",
                "json",
                "--max-mismatch-rate",
                rate,
                "--db",
            ])
            .arg(&db)
            .output()
            .unwrap()
    };
    assert_eq!(status("0.25").status.code(), Some(0));
    let failed = status("0.1");
    assert_eq!(failed.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(json["gate"]["passed"], false);
    assert_eq!(json["gate"]["failures"][0]["route"], "GET /a");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = quarter_db(dir.path());
    let (code, _, err) = gate(&db, &["--max-mismatch-rate", "1.5"]);
    assert_eq!(code, 2);
    assert!(err.contains("--max-mismatch-rate"), "{err}");
    let (code, _, err) = gate(&db, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--max-mismatch-rate"), "{err}");
    let (code, _, err) = gate(&db, &["--max-mismatch-rate", "0.1", "--route-max", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("--route-max"), "{err}");
    let (code, _, err) = gate(&db, &["--max-mismatch-rate", "0.1", "--since", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--since"), "{err}");
}

#[test]
fn unreadable_databases_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a database, just some text that is long enough to fill a header page of sqlite. ".repeat(20)).unwrap();
    let (code, _, err) = gate(&text, &["--max-mismatch-rate", "0.1"]);
    assert_eq!(code, 2);
    assert!(err.contains("not an SQLite database"), "{err}");

    let (code, _, err) = gate(
        &dir.path().join("missing.db"),
        &["--max-mismatch-rate", "0.1"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no such file"), "{err}");

    let newer = dir.path().join("newer.db");
    let conn = rusqlite::Connection::open(&newer).unwrap();
    // Marked as a store by a release whose schema 99 says nothing about older writers.
    conn.pragma_update(None, "application_id", 0x5348_4446)
        .unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let (code, _, err) = gate(&newer, &["--max-mismatch-rate", "0.1"]);
    assert_eq!(code, 2);
    assert!(err.contains("schema version 99 is newer"), "{err}");

    let foreign = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE t (x)").unwrap();
    drop(conn);
    let (code, _, err) = gate(&foreign, &["--max-mismatch-rate", "0.1"]);
    assert_eq!(code, 2);
    assert!(err.contains("without the shadowdiff schema"), "{err}");

    // A real store whose pages were overwritten in the middle.
    let healthy = dir.path().join("healthy");
    std::fs::create_dir(&healthy).unwrap();
    let mut bytes = std::fs::read(quarter_db(&healthy)).unwrap();
    let corrupt_copy = dir.path().join("corrupt.db");
    let len = bytes.len();
    for b in &mut bytes[4096.min(len)..] {
        *b = 0xA5;
    }
    std::fs::write(&corrupt_copy, bytes).unwrap();
    let (code, _, err) = gate(&corrupt_copy, &["--max-mismatch-rate", "0.1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("corrupt") || err.contains("not an SQLite"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_ratio_gate_fails_on_a_route_made_slow_and_passes_otherwise() {
    let primary = crate::support::fixed(200, "same").await;
    let secondary = crate::support::backend(|r| async move {
        if r.uri.path().starts_with("/slow") {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        crate::support::text(200, "same")
    })
    .await;
    let (config, dir) = crate::support::config(&primary.url(), &secondary.url());
    let proxy = crate::support::start(config, dir).await;
    let http = crate::support::client();
    for i in 0..5 {
        http.get(proxy.url(&format!("/slow/{i}")))
            .send()
            .await
            .unwrap();
        http.get(proxy.url(&format!("/fast/{i}")))
            .send()
            .await
            .unwrap();
    }
    let db = proxy.stop().await;
    let gate = |extra: &[&str]| {
        let output = assert_cmd::Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["gate", "--max-mismatch-rate", "100%", "--db"])
            .arg(&*db)
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, out) = gate(&["--max-latency-ratio", "p50=3"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("GET /slow/{id}") && out.contains("--max-latency-ratio p50=3"),
        "{out}"
    );
    assert!(!out.contains("GET /fast/{id}: the secondary"), "{out}");
    let (code, out) = gate(&[
        "--max-latency-ratio",
        "p50=3",
        "--route-max-latency-ratio",
        "GET /slow/*=p50:100000",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = gate(&["--max-latency-ratio", "p42=3"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("--max-latency-ratio") && out.contains("p42"),
        "{out}"
    );
}
