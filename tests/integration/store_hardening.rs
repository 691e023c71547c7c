//! The store under hostile conditions (issue 12): secrets' digest key, foreign and refused
//! files, full and read-only media. Real SQLite files in temporary directories; the mounts
//! need root and are skipped with a note otherwise.
use crate::support;
use crate::support::store as common;

use common::*;
use rusqlite::Connection;
use shadowdiff::store::{StoreOptions, StoreWriter};

#[test]
fn digest_key_is_made_once_per_store_kept_in_it_and_differs_between_stores() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let key_of = |path: &std::path::Path| {
        let writer = StoreWriter::open(path, run_info(&[]), StoreOptions::default()).unwrap();
        let key = writer.digest_key();
        writer.finish().unwrap();
        key
    };
    let first = key_of(&a);
    assert_ne!(first, [0u8; 32]);
    assert_eq!(key_of(&a), first, "reopening a store keeps its key");
    assert_ne!(key_of(&b), first, "each store has its own key");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        left.iter().all(|name| name == "a.db" || name == "b.db"),
        "a cleanly closed store leaves no other file: {left:?}"
    );
    let conn = Connection::open(&a).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE key = 'digest_key'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, first);
}

#[test]
fn a_store_written_before_the_digest_key_gets_one_when_opened_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    write(&db, standard_workload(), StoreOptions::default());
    // Take the file back to schema 1, as today's release leaves it.
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("DROP TABLE second_counts; ALTER TABLE mismatches DROP COLUMN rewrites; ALTER TABLE runs DROP COLUMN answered_by; DROP INDEX runs_by_uid; DROP INDEX mismatches_by_run; ALTER TABLE runs DROP COLUMN instance; ALTER TABLE runs DROP COLUMN uid; ALTER TABLE runs DROP COLUMN copied_through; DROP TABLE baseline_counts; ALTER TABLE differences DROP COLUMN to_path; DROP TABLE meta; DROP TABLE losses; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let writer = StoreWriter::open(&db, run_info(&[]), StoreOptions::default()).unwrap();
    let key = writer.digest_key();
    writer.finish().unwrap();
    assert_ne!(key, [0u8; 32]);
    let conn = Connection::open(&db).unwrap();
    let runs: i64 = conn
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2, "the migration keeps what was there");
}

use assert_cmd::Command;
use sha2::{Digest, Sha256};
use shadowdiff::store::schema::APPLICATION_ID;
use shadowdiff::store::{StoreError, StoreReader, SCHEMA_VERSION};
use std::path::Path;
use std::time::Duration;

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Runs the real binary; upstreams are a port nothing listens on, so a command that got
/// past the store would fail differently (or not at all).
fn shadowdiff(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
}

/// serve, replay and report against `db`: each exits 2 with one short line naming the
/// file once, and the file keeps every byte.
fn assert_refused_untouched(db: &Path, reason: &str) {
    let dir = db.parent().unwrap();
    let traffic = dir.join("traffic.jsonl");
    std::fs::write(&traffic, "{\"method\":\"GET\",\"path\":\"/a\"}\n").unwrap();
    let db_arg = db.to_str().unwrap();
    let upstream = "http://127.0.0.1:1";
    let before = sha256(db);
    let commands: [Vec<&str>; 3] = [
        vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--primary",
            upstream,
            "--secondary",
            upstream,
            "--db",
            db_arg,
        ],
        vec![
            "replay",
            "--input",
            traffic.to_str().unwrap(),
            "--primary",
            upstream,
            "--secondary",
            upstream,
            "--db",
            db_arg,
        ],
        vec!["report", "--db", db_arg],
    ];
    for args in commands {
        let output = shadowdiff(&args);
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(err.len() < 400, "{args:?}: short: {err}");
        assert_eq!(err.matches(db_arg).count(), 1, "{args:?}: path once: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
        assert!(!err.contains("CREATE"), "{args:?}: no schema SQL: {err}");
        assert_eq!(sha256(db), before, "{args:?} changed {}", db.display());
    }
}

#[test]
fn an_application_database_with_a_runs_table_is_refused_and_keeps_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = Connection::open(&db).unwrap();
    let mut schema = String::new();
    for i in 0..100 {
        // Plenty of schema SQL, so a dump of it could not hide in a short line.
        schema.push_str(&format!(
            "CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT, note TEXT);"
        ));
    }
    schema.push_str(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, started TEXT);
         INSERT INTO runs (started) VALUES ('yesterday');
         PRAGMA user_version = 1;",
    );
    conn.execute_batch(&schema).unwrap();
    drop(conn);
    assert_refused_untouched(&db, "without the shadowdiff schema");
}

#[test]
fn inspecting_another_applications_wal_database_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.execute_batch("CREATE TABLE runs (x); INSERT INTO runs VALUES (1);")
        .unwrap();
    drop(conn);
    assert_refused_untouched(&db, "without the shadowdiff schema");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("app.db"))
        .collect();
    assert_eq!(left, ["app.db"], "no -wal or -shm left next to it");
}

#[test]
fn a_database_marked_by_another_application_is_refused_and_keeps_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("other.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE notes (x); PRAGMA application_id = 1234;")
        .unwrap();
    drop(conn);
    assert_refused_untouched(&db, "another application");
}

/// A store from a future release that older writers would corrupt
/// (`min_writer_schema` above ours).
fn future_store(db: &Path, min_writer: i64) {
    write(db, standard_workload(), StoreOptions::default());
    let conn = Connection::open(db).unwrap();
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'min_writer_schema'",
        [min_writer],
    )
    .unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
        .unwrap();
    conn.pragma_update(None, "journal_mode", "delete").unwrap();
    drop(conn);
}

#[test]
fn a_store_only_newer_releases_may_write_is_refused_and_keeps_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("future.db");
    future_store(&db, SCHEMA_VERSION + 1);
    assert_refused_untouched(&db, "is newer than this shadowdiff");
    let error = StoreWriter::open(&db, run_info(&[]), StoreOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(error, StoreError::NewerSchema { min_writer, .. } if min_writer == SCHEMA_VERSION + 1),
        "{error}"
    );
}

#[test]
fn a_newer_store_that_still_admits_this_release_is_read_and_written_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("additive.db");
    future_store(&db, 1);
    StoreReader::open(&db).unwrap();
    write(&db, standard_workload(), StoreOptions::default());
    let conn = Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 5, "no migration backwards");
    let runs: i64 = conn
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2);
}

#[test]
fn a_store_from_before_the_mark_is_recognised_by_its_schema_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unmarked.db");
    write(&db, standard_workload(), StoreOptions::default());
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TABLE second_counts; ALTER TABLE mismatches DROP COLUMN rewrites; ALTER TABLE runs DROP COLUMN answered_by; DROP INDEX runs_by_uid; DROP INDEX mismatches_by_run; ALTER TABLE runs DROP COLUMN instance; ALTER TABLE runs DROP COLUMN uid; ALTER TABLE runs DROP COLUMN copied_through; DROP TABLE baseline_counts; ALTER TABLE differences DROP COLUMN to_path; DROP TABLE meta; DROP TABLE losses; PRAGMA user_version = 1; PRAGMA application_id = 0;",
    )
    .unwrap();
    drop(conn);
    StoreReader::open(&db).expect("report reads an unmarked store");
    write(&db, standard_workload(), StoreOptions::default());
    let conn = Connection::open(&db).unwrap();
    let mark: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mark, APPLICATION_ID);
    let fresh = dir.path().join("fresh.db");
    write(&fresh, standard_workload(), StoreOptions::default());
    let mark: i32 = Connection::open(&fresh)
        .unwrap()
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mark, APPLICATION_ID, "new stores are marked");
}

/// Whether the test runs as root; mounts need it. Root also ignores file permissions, which
/// is why read-only and full media are real mounts here.
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A mount made for one test, unmounted when dropped (also when the test fails).
struct Mount(std::path::PathBuf);

impl Mount {
    fn run(args: &[&str]) {
        let status = std::process::Command::new("mount")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "mount {args:?}");
    }

    /// `source` seen read-only at `target`.
    fn read_only_bind(source: &Path, target: &Path) -> Mount {
        let (source, target) = (source.to_str().unwrap(), target.to_str().unwrap());
        Mount::run(&["--bind", source, target]);
        let mount = Mount(target.into());
        Mount::run(&["-o", "remount,bind,ro", target]);
        mount
    }

    /// A tmpfs of `size` (as `mount -o size=` takes it) at `target`.
    fn tmpfs(target: &Path, size: &str) -> Mount {
        let options = format!("size={size}");
        Mount::run(&[
            "-t",
            "tmpfs",
            "-o",
            &options,
            "tmpfs",
            target.to_str().unwrap(),
        ]);
        Mount(target.into())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn report_reads_a_cleanly_closed_store_on_a_read_only_filesystem() {
    if !is_root() {
        eprintln!("skipped: needs root to make a read-only bind mount");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (source, target) = (dir.path().join("src"), dir.path().join("ro"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    write(
        source.join("s.db"),
        standard_workload(),
        StoreOptions::default(),
    );
    // The reference report reads a copy: reading in place would leave a -shm file behind,
    // and SQLite can read through an existing one, which is not the case under test.
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(source.join("s.db"), copy.join("s.db")).unwrap();
    let writable = shadowdiff(&["report", "--db", copy.join("s.db").to_str().unwrap()]);
    assert_eq!(writable.status.code(), Some(0));
    assert!(!source.join("s.db-shm").exists() && !source.join("s.db-wal").exists());
    let _mount = Mount::read_only_bind(&source, &target);
    let db = target.join("s.db");
    let output = shadowdiff(&["report", "--db", db.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).replace(target.to_str().unwrap(), "DIR"),
        String::from_utf8_lossy(&writable.stdout).replace(copy.to_str().unwrap(), "DIR"),
        "the same report as from a writable directory"
    );
}

#[test]
fn a_store_needing_wal_recovery_on_read_only_media_gets_an_accurate_message() {
    if !is_root() {
        eprintln!("skipped: needs root to make a read-only bind mount");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (live, source, target) = (
        dir.path().join("live"),
        dir.path().join("src"),
        dir.path().join("ro"),
    );
    for d in [&live, &source, &target] {
        std::fs::create_dir_all(d).unwrap();
    }
    write(
        live.join("s.db"),
        standard_workload(),
        StoreOptions::default(),
    );
    // A writer that has not checkpointed: copying its files while it is open is what a
    // crash leaves behind.
    let conn = Connection::open(live.join("s.db")).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute("UPDATE runs SET dropped = 7", []).unwrap();
    for name in ["s.db", "s.db-wal"] {
        std::fs::copy(live.join(name), source.join(name)).unwrap();
    }
    drop(conn);
    assert!(std::fs::metadata(source.join("s.db-wal")).unwrap().len() > 0);
    let _mount = Mount::read_only_bind(&source, &target);
    let db = target.join("s.db");
    let output = shadowdiff(&["report", "--db", db.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("not closed cleanly"), "{err}");
    assert!(err.contains("s.db-wal"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn store_errors_name_the_path_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("s.db");
    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "not a database at all, but long enough to be read as one. ".repeat(20),
    )
    .unwrap();
    let upstream = "http://127.0.0.1:1";
    for db in [&missing, &text] {
        let db_arg = db.to_str().unwrap();
        for args in [
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--primary",
                upstream,
                "--secondary",
                upstream,
                "--db",
                db_arg,
            ],
            vec!["report", "--db", db_arg],
        ] {
            let output = shadowdiff(&args);
            let err = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.matches(db_arg).count(), 1, "{args:?}: {err}");
        }
    }
}

/// Takes every free byte of the filesystem holding `dir`; removing the file frees them.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    for chunk in [65536, 4096, 512, 1] {
        let bytes = vec![0u8; chunk];
        while file.write_all(&bytes).is_ok() {}
    }
    path
}

fn lost_on_disk_full(options: &StoreOptions) -> u64 {
    options.lost.get(shadowdiff::store::LossReason::DiskFull)
}

/// Sums every outcome a report counted.
fn counted(report: &serde_json::Value) -> u64 {
    ["matched", "mismatched", "errors", "skipped"]
        .iter()
        .map(|k| report["summary"][k].as_u64().unwrap())
        .sum()
}

fn report_json(db: &Path) -> serde_json::Value {
    let output = shadowdiff(&["report", "--db", db.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn losses_on_a_full_disk_are_counted_and_written_once_the_store_is_writable_again() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _mount = Mount::tmpfs(dir.path(), "1m");
    let db = dir.path().join("s.db");
    let options = StoreOptions::default();
    let writer = StoreWriter::open(&db, run_info(&[]), options.clone()).unwrap();
    let records = writer.sender();
    let filler = fill(dir.path());
    let mut sent = 0;
    while lost_on_disk_full(&options) == 0 {
        records.send(matched("GET /a")).unwrap();
        sent += 1;
        if sent % 100 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(sent < 1_000_000, "the store never reported the full disk");
    }
    std::fs::remove_file(filler).unwrap();
    for _ in 0..10 {
        records.send(matched("GET /a")).unwrap();
        sent += 1;
    }
    drop(records);
    // Read the count only once the writer has drained its queue: batches queued while the
    // disk was still full may fail after the filler is gone.
    let _ = writer.finish();
    let lost = lost_on_disk_full(&options);
    assert!(lost > 0);
    let conn = Connection::open(&db).unwrap();
    let recorded: i64 = conn
        .query_row(
            "SELECT SUM(count) FROM losses WHERE reason = 'disk_full'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded as u64, lost, "the store says how many it lost");
    drop(conn);
    let report = report_json(&db);
    assert_eq!(report["summary"]["lost"]["disk_full"], lost);
    assert_eq!(
        counted(&report) + lost,
        sent,
        "every observation is accounted for"
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains(&format!("{lost} observations lost: disk full")),
        "{notes}"
    );
}

#[test]
fn losses_of_a_store_that_stays_full_reach_the_report_through_a_sidecar_note() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _mount = Mount::tmpfs(dir.path(), "1m");
    let db = dir.path().join("s.db");
    let options = StoreOptions::default();
    let writer = StoreWriter::open(&db, run_info(&[]), options.clone()).unwrap();
    let records = writer.sender();
    let _filler = fill(dir.path());
    let mut sent = 0u64;
    while lost_on_disk_full(&options) == 0 {
        records.send(matched("GET /a")).unwrap();
        sent += 1;
        if sent.is_multiple_of(100) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(records);
    assert!(writer.finish().is_err(), "the writer reports the failure");
    let lost = lost_on_disk_full(&options);
    assert!(dir.path().join("s.db.losses").exists(), "the sidecar note");
    let report = report_json(&db);
    assert_eq!(report["summary"]["lost"]["disk_full"], lost);
    assert_eq!(
        counted(&report) + lost,
        sent,
        "every observation is accounted for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_full_disk_keeps_serving_counts_what_it_lost_and_exits_non_zero() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _mount = Mount::tmpfs(dir.path(), "1m");
    let primary = support::backend(|request| async move {
        support::text(200, &format!("{{\"n\": {}}}", request.body.len()))
    })
    .await;
    // Every shadow mismatches, so examples (with 8 KiB request bodies) are stored too.
    let secondary = support::fixed(200, "{\"n\": -1}").await;
    let (db, record) = (dir.path().join("s.db"), dir.path().join("traffic.jsonl"));
    let mut running = support::spawn_serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--primary",
            &primary.url(),
            "--secondary",
            &secondary.url(),
            "--db",
            db.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
            "--shadow-writes",
        ],
        &[],
    );
    let client = support::client();
    let body = "x".repeat(8 * 1024);
    let sent = 300u64;
    for i in 0..sent {
        let response = client
            .post(format!("http://{}/items/{i}", running.listen))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "serving goes on untouched");
        assert_eq!(response.text().await.unwrap(), "{\"n\": 8192}");
    }
    // The loss shows in the metrics while serving (the writer gives up after its retries).
    let metrics = format!("http://{}/metrics", running.admin);
    let guard = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let text = client
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lost = text
            .lines()
            .find(|l| l.starts_with("shadowdiff_store_lost_total{reason=\"disk_full\"}"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if lost > 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < guard,
            "no loss in the metrics: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.signal("TERM");
    let logs = running.logs.clone();
    let status = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    assert_ne!(
        status.code(),
        Some(0),
        "a record file missing requests fails the exit"
    );
    let logs = logs.lock().unwrap().join("\n");

    // The record file: whole lines only, and what is missing is counted by name.
    let text = std::fs::read_to_string(&record).unwrap();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("no partial line");
    }
    let recorded = text.lines().count() as u64;
    let path = record.to_str().unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains(path) && l.contains("requests not recorded"))
        .unwrap_or_else(|| panic!("no log line names the record file: {logs}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "requests").unwrap();
    let unrecorded: u64 = words[at - 1].parse().unwrap();
    assert!(unrecorded > 0, "{line}");
    assert_eq!(recorded + unrecorded, sent, "{line}");

    // The store: what it counted, dropped and lost adds up to what was sent.
    let report = report_json(&db);
    let lost: u64 = report["summary"]["lost"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let dropped = report["summary"]["dropped"].as_u64().unwrap();
    eprintln!(
        "recorded {recorded}, not recorded {unrecorded}; counted {}, dropped {dropped}, lost {lost}",
        counted(&report)
    );
    assert_eq!(counted(&report) + dropped + lost, sent, "{report}");
}

#[test]
fn record_file_errors_name_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("no-such-dir").join("traffic.jsonl");
    let db = dir.path().join("s.db");
    let upstream = "http://127.0.0.1:1";
    let output = shadowdiff(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--primary",
        upstream,
        "--secondary",
        upstream,
        "--db",
        db.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(err.matches(record.to_str().unwrap()).count(), 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}
