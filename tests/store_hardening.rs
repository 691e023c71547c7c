//! The store under hostile conditions (issue 12): secrets' digest key, foreign and refused
//! files, full and read-only media. Real SQLite files in temporary directories; the mounts
//! need root and are skipped with a note otherwise.
mod common;

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
    conn.execute_batch("DROP TABLE meta; DROP TABLE losses; PRAGMA user_version = 1;")
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
