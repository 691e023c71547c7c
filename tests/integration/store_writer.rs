//! The writer against real SQLite files: what is stored, what is bounded, what is refused.
use crate::support::store as common;

use common::*;
use rusqlite::Connection;
use shadowdiff::store::{StoreError, StoreOptions, StoreWriter, SCHEMA_VERSION};
use std::sync::atomic::Ordering;

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn counts_every_outcome_and_stores_only_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let options = StoreOptions::default();
    options.dropped.store(4, Ordering::Relaxed);
    write(&db, standard_workload(), options);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(count(&conn, "PRAGMA user_version"), SCHEMA_VERSION);
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM mismatches"), 10);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM differences"), 14);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM differences WHERE path = 'body/price'"
        ),
        10
    );
    assert_eq!(
        count(
            &conn,
            "SELECT SUM(count) FROM outcome_counts WHERE outcome = 'matched'"
        ),
        141
    );
    assert_eq!(
        count(
            &conn,
            "SELECT SUM(count) FROM outcome_counts WHERE reason = 'secondary:timeout'"
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT SUM(count) FROM hidden_counts WHERE rule = 'ignore-date'"
        ),
        7
    );
    assert_eq!(count(&conn, "SELECT dropped FROM runs"), 4);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM runs WHERE finished_ms IS NOT NULL"
        ),
        1
    );
}

#[test]
fn keeps_bodies_for_the_first_examples_of_each_signature_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let options = StoreOptions {
        examples_per_signature: 2,
        ..StoreOptions::default()
    };
    write(&db, standard_workload(), options);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM mismatches WHERE is_example = 1"
        ),
        4
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM mismatches WHERE is_example = 0 AND primary_body IS NULL"
        ),
        6
    );
    // Differences are kept for every mismatch, example or not.
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM differences"), 14);
}

#[test]
fn max_db_size_stops_examples_but_never_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let options = StoreOptions {
        max_db_size: Some(1),
        ..StoreOptions::default()
    };
    // Two runs: the first crosses the limit, the second starts past it.
    write(&db, standard_workload(), options.clone());
    write(&db, standard_workload(), options);
    let conn = Connection::open(&db).unwrap();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM mismatches"), 20);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM runs WHERE examples_stopped_ms IS NOT NULL"
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT SUM(count) FROM outcome_counts WHERE outcome = 'mismatched'"
        ),
        20
    );
}

#[test]
fn an_unwritable_path_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing-dir").join("s.db");
    let error = StoreWriter::open(&db, run_info(&[]), StoreOptions::default())
        .err()
        .expect("must fail");
    assert!(error.to_string().contains("missing-dir"), "{error}");
}

#[test]
fn a_newer_schema_is_refused_by_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let conn = Connection::open(&db).unwrap();
    // A store a newer release marked, with no word on which older writers it admits.
    conn.pragma_update(
        None,
        "application_id",
        shadowdiff::store::schema::APPLICATION_ID,
    )
    .unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let error = StoreWriter::open(&db, run_info(&[]), StoreOptions::default())
        .err()
        .expect("must fail");
    assert!(matches!(error, StoreError::NewerSchema { .. }), "{error}");
}
