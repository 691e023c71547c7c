//! Every renderer through the real binary, on the standard workload.
use crate::support::store as common;

use assert_cmd::Command;
use common::*;
use shadowdiff::store::StoreOptions;

fn standard_db(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("a.db");
    write(&db, standard_workload(), StoreOptions::default());
    db
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

const ROUTES: [&str; 3] = ["GET /users/{id}", "POST /orders", "GET /health"];

#[test]
fn junit_has_one_testcase_per_route_and_fails_those_over_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let (code, xml, stderr) = run(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "junit",
        "--max-mismatch-rate",
        "0.05",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0].attribute("tests"), Some("3"));
    assert_eq!(suites[0].attribute("failures"), Some("1"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().filter_map(|c| c.attribute("name")).collect();
    for route in ROUTES {
        assert!(names.contains(&route), "{route} missing from {names:?}");
    }
    let users = cases
        .iter()
        .find(|c| c.attribute("name") == Some("GET /users/{id}"))
        .unwrap();
    let failure = users
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("users fails");
    let message = failure.attribute("message").unwrap();
    assert!(message.contains("9.90%"), "{message}");
    assert!(message.contains("body/price"), "{message}");
}

#[test]
fn junit_without_thresholds_passes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let (code, xml, _) = run(&["report", "--db", db.to_str().unwrap(), "--format", "junit"]);
    assert_eq!(code, 0);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        0
    );
}

#[test]
fn html_is_well_formed_and_names_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let out = dir.path().join("report.html");
    let (code, stdout, stderr) = run(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "html",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    let html = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap();
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    for route in ROUTES {
        assert!(text.contains(route), "{route} missing");
    }
    assert!(doc.descendants().any(|n| n.has_tag_name("svg")));
    // The chart draws bars (issue 18: a short run is not a single dot).
    assert!(doc
        .descendants()
        .any(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar")));
    // Self-contained: nothing is fetched; the one script (sorting the routes) is inline.
    assert!(!html.contains("src=\"http"));
    assert!(!html.contains("<script src"));
    assert_eq!(html.matches("<script").count(), 1);
    // The side-by-side diff of the example shows the changed line on both sides,
    // pretty-printed and marked as the differing path.
    assert!(html.contains("<td class=\"del mark\">  &quot;price&quot;: 1</td>"));
    assert!(html.contains("<td class=\"ins mark\">  &quot;price&quot;: 2</td>"));
}

#[test]
fn text_and_markdown_carry_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let (code, text, _) = run(&["report", "--db", db.to_str().unwrap(), "--format", "text"]);
    assert_eq!(code, 0);
    assert!(text.contains(
        "161 requests: 141 matched, 10 mismatched, 2 errors, 8 skipped, 0 dropped · mismatch rate 6.62%"
    ));
    assert!(!text.contains('\u{1b}'), "no colour when not a terminal");
    for route in ROUTES {
        assert!(text.contains(route), "{route}");
    }
    let (code, md, _) = run(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "markdown",
    ]);
    assert_eq!(code, 0);
    assert!(
        md.contains("| `GET /users/{id}` | 108 | 91 | 10 | 2 | 5 | 9.90% |"),
        "{md}"
    );
    assert!(
        md.contains("| `POST /orders` | 3 | 0 | 0 | 0 | 3 | 0.00% |"),
        "{md}"
    );
}

#[test]
fn show_prints_one_mismatch_with_a_body_diff() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let (code, out, stderr) = run(&["show", "1", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("GET /users/0"), "{out}");
    assert!(out.contains("status (status): 1 -> 2"), "{out}");
    // The bodies side by side (issue 18), pretty-printed: the changed line on both sides.
    assert!(
        out.lines()
            .any(|l| l.contains("-3*   \"price\": 1") && l.contains("+3*   \"price\": 2")),
        "{out}"
    );
    let (code, _, stderr) = run(&["show", "999", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no stored mismatch with id 999"),
        "{stderr}"
    );
}

/// Runs the binary with a standard output whose reader is already gone, as
/// `shadowdiff report | head` ends up after head exits: every write fails with EPIPE.
fn run_into_closed_pipe(args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("shadowdiff"))
        .args(args)
        .stdout(writer)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Issue 14: `report | head` exited 2 with "Broken pipe" twice; a reader that stops early
/// is not an error (ripgrep exits 0), and the gate's verdict still decides the status.
#[test]
fn report_into_a_closed_pipe_exits_0_and_gate_keeps_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let db = db.to_str().unwrap();
    for format in ["text", "json", "markdown", "html", "junit"] {
        let (code, err) = run_into_closed_pipe(&["report", "--db", db, "--format", format]);
        assert_eq!((code, err.as_str()), (0, ""), "--format {format}");
    }
    let (code, err) = run_into_closed_pipe(&["show", "--db", db, "1"]);
    assert_eq!((code, err.as_str()), (0, ""), "show");
    let (code, err) = run_into_closed_pipe(&["gate", "--db", db, "--max-mismatch-rate", "0"]);
    assert_eq!((code, err.as_str()), (1, ""), "gate over its threshold");
    let (code, err) = run_into_closed_pipe(&["gate", "--db", db, "--max-mismatch-rate", "1"]);
    assert_eq!((code, err.as_str()), (0, ""), "gate within its threshold");
}

/// Issue 14: errors whose message already carries their cause printed it twice
/// ("x.html: No such file or directory (os error 2): No such file or directory (os error 2)").
#[test]
fn an_output_file_that_cannot_be_written_is_named_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = standard_db(dir.path());
    let target = dir.path().join("missing").join("r.html");
    let (code, _, err) = run(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "html",
        "--output",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains(target.to_str().unwrap()), "{err}");
}
