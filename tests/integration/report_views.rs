//! The readable views through the real binary: `show`'s side-by-side bodies and its
//! `--color`, the HTML report's diff tables, sortable route table, folding sections and
//! chart, and the text report's width (issue 18).
use crate::support::store as common;

use assert_cmd::Command;
use common::*;
use shadowdiff::store::StoreOptions;
use std::path::{Path, PathBuf};

fn standard_db(dir: &Path) -> PathBuf {
    let db = dir.join("a.db");
    write(&db, standard_workload(), StoreOptions::default());
    db
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::cargo_bin("shadowdiff").unwrap();
    command.env_remove("NO_COLOR").env_remove("COLUMNS");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.args(args).output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The row of the side-by-side view holding `left` on the primary's side.
fn row_with<'a>(out: &'a str, left: &str) -> &'a str {
    out.lines()
        .find(|line| line.split(" │ ").next().is_some_and(|l| l.contains(left)))
        .unwrap_or_else(|| panic!("no row with {left:?}:\n{out}"))
}

#[test]
fn show_prints_the_bodies_side_by_side_with_the_changed_line_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let db = db.to_str().unwrap();
    let (code, out, stderr) = run(&["show", "1", "--db", db, "--color", "never"], &[]);
    assert_eq!(code, 0, "{stderr}");
    println!("{out}");
    assert!(!out.contains('\u{1b}'), "{out}");
    // The sections show had before stay.
    for section in [
        "== request",
        "== primary response",
        "== secondary response",
        "== differences",
    ] {
        assert!(out.contains(section), "{section}: {out}");
    }
    // Pretty-printed: the key on its own indented line, changed on both sides, marked.
    let row = row_with(&out, "\"price\": 1");
    let (left, right) = row.split_once(" │ ").unwrap();
    assert!(left.starts_with("-3* "), "{row}");
    assert!(right.starts_with("+3*   \"price\": 2"), "{row}");
    let same = row_with(&out, "\"name\": \"ada\"");
    assert!(same.starts_with(" 2  "), "{same}");
    // Without colour it is the same text as --color never.
    let (_, piped, _) = run(&["show", "1", "--db", db], &[]);
    assert_eq!(piped, out, "auto is no colour in a pipe");
    for line in out.lines() {
        assert!(line.chars().count() <= 100, "{line:?}");
    }
}

#[test]
fn show_color_always_colours_the_changed_lines_and_never_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let db = db.to_str().unwrap();
    let (code, out, stderr) = run(&["show", "1", "--db", db, "--color", "always"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("\u{1b}["), "{out}");
    assert!(out.contains("\u{1b}[31m  \"price\": 1\u{1b}[0m"), "{out:?}");
    assert!(out.contains("\u{1b}[32m  \"price\": 2\u{1b}[0m"), "{out:?}");
    // NO_COLOR only speaks for auto; always is always.
    let (_, forced, _) = run(
        &["show", "1", "--db", db, "--color", "always"],
        &[("NO_COLOR", "1")],
    );
    assert!(forced.contains("\u{1b}["));
    let (_, never, _) = run(&["show", "1", "--db", db, "--color", "never"], &[]);
    assert!(!never.contains('\u{1b}'), "{never}");
    let (code, _, stderr) = run(&["show", "1", "--db", db, "--color", "sometimes"], &[]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn show_fits_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let (code, out, _) = run(
        &["show", "1", "--db", db.to_str().unwrap()],
        &[("COLUMNS", "60")],
    );
    assert_eq!(code, 0);
    let bodies = out.split("== bodies").nth(1).unwrap();
    for line in bodies.lines().skip(1) {
        assert!(line.chars().count() <= 60, "{line:?}");
    }
    assert!(
        bodies.lines().any(|l| l.contains("\"price\": 2")),
        "{bodies}"
    );
}
