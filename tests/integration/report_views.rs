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

const LONG_ROUTE: &str = "GET /api/v1/organisations/{organisation_id}/projects/{project_id}/environments/{environment_id}/deployments/{deployment_id}";

/// The standard workload plus mismatches on a route far longer than a terminal.
fn long_route_db(dir: &Path) -> PathBuf {
    let db = dir.join("long.db");
    let mut records = standard_workload();
    for i in 0..3 {
        records.push(mismatched(
            LONG_ROUTE,
            &format!("/api/v1/organisations/acme-corporation-international/projects/{i}/environments/production-eu-west/deployments/2024-01-01"),
            &["body/price"],
        ));
    }
    for _ in 0..5 {
        records.push(matched(LONG_ROUTE));
    }
    write(&db, records, StoreOptions::default());
    db
}

#[test]
fn the_text_report_fits_100_columns_and_wide_keeps_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = long_route_db(dir.path());
    let db = db.to_str().unwrap();
    let (code, text, stderr) = run(&["report", "--db", db, "--format", "text"], &[]);
    assert_eq!(code, 0, "{stderr}");
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    // Nothing of the route is lost: its pieces are wrapped within the first column.
    let table: String = text
        .lines()
        .filter_map(|l| l.strip_prefix('│'))
        .filter_map(|l| l.split('┆').next())
        .map(str::trim)
        .collect();
    assert!(table.contains(LONG_ROUTE), "{table}");
    for header in [
        "route",
        "requests",
        "matched",
        "mismatched",
        "errors",
        "skipped",
        "rate",
    ] {
        assert!(text.contains(header), "{header}");
    }
    let (code, wide, _) = run(&["report", "--db", db, "--format", "text", "--wide"], &[]);
    assert_eq!(code, 0);
    for header in [
        "route",
        "requests",
        "matched",
        "mismatched",
        "errors",
        "skipped",
        "mismatch rate",
        "primary p50/p95/p99 ms",
        "secondary p50/p95/p99 ms",
    ] {
        assert!(wide.contains(header), "--wide lost {header}:\n{wide}");
    }
    assert!(wide.contains(LONG_ROUTE), "one line per route when wide");
    assert!(wide.lines().any(|l| l.chars().count() > 100));
}

#[test]
fn the_html_report_has_diff_tables_a_sortable_route_table_and_nothing_external() {
    let dir = tempfile::tempdir().unwrap();
    let db = long_route_db(dir.path());
    let out = dir.path().join("report.html");
    let (code, _, stderr) = run(
        &[
            "report",
            "--db",
            db.to_str().unwrap(),
            "--format",
            "html",
            "--output",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap();
    // The examples' diff tables, changed line on both sides.
    let diffs: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("table") && n.attribute("class") == Some("diff"))
        .collect();
    assert!(!diffs.is_empty());
    let changed: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.attribute("class") == Some("changed"))
        .collect();
    assert!(!changed.is_empty());
    let cells: Vec<String> = changed[0]
        .children()
        .filter(|c| c.has_tag_name("td"))
        .map(|c| c.text().unwrap_or("").to_string())
        .collect();
    assert_eq!(cells, ["3", "  \"price\": 1", "3", "  \"price\": 2"]);
    // The sortable route table and its script, inline.
    let routes = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("routes"))
        .expect("the route table");
    assert_eq!(routes.attribute("class"), Some("sortable"));
    let numeric = routes
        .descendants()
        .filter(|n| n.has_tag_name("th") && n.attribute("data-type") == Some("num"))
        .count();
    assert_eq!(numeric, 8);
    let scripts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("script"))
        .collect();
    assert_eq!(scripts.len(), 1);
    assert!(scripts[0].attribute("src").is_none());
    let script: String = scripts[0].descendants().filter_map(|n| n.text()).collect();
    assert!(
        script.contains("sortable") && script.contains("data-v"),
        "{script}"
    );
    // Each route folds; those with mismatches start open.
    let details: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("details"))
        .collect();
    assert_eq!(details.len(), 4);
    let open: Vec<_> = details
        .iter()
        .filter(|d| d.attribute("open").is_some())
        .filter_map(|d| d.attribute("id"))
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    // The chart: a run of a moment is charted per second, from the store's second counts.
    assert!(html.contains("class=\"bar\""));
    assert!(
        html.contains("Mismatch rate per second"),
        "the run's seconds"
    );
    // Offline: nothing fetched, no link off the page.
    for node in doc.descendants() {
        for attribute in ["src", "href"] {
            if let Some(value) = node.attribute(attribute) {
                assert!(
                    !value.contains("http://")
                        && !value.contains("https://")
                        && !value.starts_with("//"),
                    "{attribute}={value}"
                );
            }
        }
    }
    assert!(!html.contains("<link"));
}
