//! Issue 12, bug 11: pattern matching is linear in path length times pattern length, for
//! ignore rules, `[[route]]` patterns and the report's `--route`/`--route-max` globs.
//! Nothing here measures time: each test simply completes, and the binary runs under a
//! generous process timeout so that a regression fails instead of hanging.
use crate::support::store as common;

use assert_cmd::Command;
use proptest::prelude::*;
use shadowdiff::compare::path::{segments, PathPattern};
use shadowdiff::store::StoreOptions;
use shadowdiff::wildcard::glob_segments;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `{"k":{"k":...{"k":leaf}...}}`, `depth` objects deep.
fn nested(depth: usize, leaf: &str) -> String {
    format!("{}{leaf}{}", "{\"k\":".repeat(depth), "}".repeat(depth))
}

const TEN_STARS: &str = "body/**/**/**/**/**/**/**/**/**/**";

fn diff_with_ignore(pattern: &str) -> assert_cmd::assert::Assert {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &nested(40, "1"));
    let b = write(dir.path(), "b.json", &nested(40, "2"));
    let config = write(
        dir.path(),
        "rules.toml",
        &format!("[compare]\nignore = [{pattern:?}]\n"),
    );
    Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .arg("--config")
        .arg(&config)
        .timeout(TIMEOUT)
        .assert()
}

#[test]
fn ignore_pattern_with_ten_double_stars_on_40_deep_json_finishes() {
    // The pattern: it matches nothing here, so the difference is still reported.
    let out = diff_with_ignore(&format!("{TEN_STARS}/zzz")).code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("body/k/k/k"), "{stdout}");
}

#[test]
fn ignore_pattern_with_ten_double_stars_still_hides_what_it_matches() {
    diff_with_ignore(&format!("{TEN_STARS}/k")).code(0);
}

#[test]
fn report_and_gate_route_globs_with_many_stars_on_a_long_route_finish() {
    // `--route` and `--route-max` use the one route grammar (`shadowdiff::route`): `*`
    // inside a segment is matched left to right, each literal part at its earliest place,
    // so a pattern that backtracks exponentially in a naive matcher stays linear. The
    // route is one long segment of `a`s, the pattern thirty `*a` then `b`: no match.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let route = format!("GET /{}", "a".repeat(400));
    let pattern = format!("GET /{}b", "*a".repeat(30));
    common::write(&db, vec![common::matched(&route)], StoreOptions::default());
    Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["report", "--db"])
        .arg(&db)
        .args(["--route", &pattern])
        .timeout(TIMEOUT)
        .assert()
        .success();
    // `--route-max` is the same type; the route is all matches, so the gate passes.
    Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["gate", "--db"])
        .arg(&db)
        .args([
            "--max-mismatch-rate",
            "0",
            "--route-max",
            &format!("{pattern}=0"),
        ])
        .timeout(TIMEOUT)
        .assert()
        .success();
}

/// The exponential matcher this replaced, kept as the obviously correct reference.
fn reference(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| reference(rest, &path[skip..])),
        Some((seg, rest)) => match path.split_first() {
            None => false,
            Some((first, tail)) => (*seg == "*" || seg == first) && reference(rest, tail),
        },
    }
}

fn pattern_segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "*", "**"])
}

fn path_segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c"])
}

proptest! {
    #[test]
    fn segment_matcher_agrees_with_the_reference(
        pattern in prop::collection::vec(pattern_segment(), 0..7),
        path in prop::collection::vec(path_segment(), 0..9),
    ) {
        let fast = glob_segments(&pattern, &path, false, |s| *s == "**", |s, p| *s == "*" || s == p);
        prop_assert_eq!(fast, reference(&pattern, &path));
        // An open end covers every descendant of a match.
        let open = glob_segments(&pattern, &path, true, |s| *s == "**", |s, p| *s == "*" || s == p);
        let covered = (0..=path.len()).any(|n| reference(&pattern, &path[..n]));
        prop_assert_eq!(open, covered);
    }

    #[test]
    fn ignore_patterns_agree_with_the_reference(
        pattern in prop::collection::vec(pattern_segment(), 0..6),
        path in prop::collection::vec(path_segment(), 0..8),
    ) {
        let text = std::iter::once("body").chain(pattern.iter().copied()).collect::<Vec<_>>().join("/");
        let compiled = PathPattern::compile(&text).unwrap();
        let path_text = std::iter::once("body").chain(path.iter().copied()).collect::<Vec<_>>().join("/");
        let path = segments(&path_text);
        let pattern = segments(&text);
        prop_assert_eq!(compiled.matches(&path), reference(&pattern, &path));
        let covered = (0..=path.len()).any(|n| reference(&pattern, &path[..n]));
        prop_assert_eq!(compiled.covers(&path), covered);
    }
}

/// The input the `path_pattern` fuzz target timed out on before the linear matcher
/// (fuzz/findings/, docs/SECURITY.md), through the target's own steps. It runs on a thread
/// so that a regression fails after a minute instead of hanging the suite.
#[test]
fn fuzz_finding_path_pattern_exponential_double_star_completes() {
    let input = include_str!("../../fuzz/findings/path_pattern-exponential-double-star");
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = input.split('\n');
        let pattern = PathPattern::compile(lines.next().unwrap()).expect("the finding compiles");
        let mut paths = 0;
        for path in lines {
            let segs = segments(path);
            let matches = pattern.matches(&segs);
            assert!(!matches || pattern.covers(&segs));
            paths += 1;
        }
        let _ = done.send(paths);
    });
    let paths = finished
        .recv_timeout(TIMEOUT)
        .expect("matching the fuzz finding completes");
    assert!(paths >= 1);
}
