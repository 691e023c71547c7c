//! The semantic difference kinds (`reordered`, `renamed`) and text bodies line by line
//! (`body#L<n>`), through the public [`Comparator`]; and a renamed key through the real
//! proxy and store to the JSON report.

use crate::support::{backend, config, full, report_json, start};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use shadowdiff::compare::{Comparator, DiffKind, Difference, RulesConfig, Verdict};
use shadowdiff::config::FileConfig;
use shadowdiff::exchange::Captured;
use std::path::Path;
use std::time::Duration;

fn comparator(toml: &str) -> Comparator {
    let file = FileConfig::parse(Path::new("rules.toml"), toml).expect("test config parses");
    Comparator::new(&RulesConfig {
        compare: file.compare,
        routes: file.route,
        source: None,
        recorded_redactions: false,
    })
    .expect("test rules compile")
}

fn captured(content_type: &str, body: impl Into<Bytes>) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    Captured {
        trailers: Default::default(),
        status: StatusCode::OK,
        headers,
        body: body.into(),
        latency: Duration::ZERO,
    }
}

fn compare(rules: &str, content_type: &str, a: &str, b: &str) -> Verdict {
    comparator(rules).compare(
        "GET /x",
        &captured(content_type, a.to_string()),
        &captured(content_type, b.to_string()),
    )
}

fn json(rules: &str, a: &str, b: &str) -> Verdict {
    compare(rules, "application/json", a, b)
}

fn text(rules: &str, a: &str, b: &str) -> Verdict {
    compare(rules, "text/plain; charset=utf-8", a, b)
}

/// (path, kind, to) of each difference.
fn found(verdict: &Verdict) -> Vec<(String, DiffKind, Option<String>)> {
    verdict
        .differences
        .iter()
        .map(|d| (d.path.clone(), d.kind, d.to.clone()))
        .collect()
}

fn at(path: &str, kind: DiffKind) -> (String, DiffKind, Option<String>) {
    (path.to_string(), kind, None)
}

fn renamed(path: &str, to: &str) -> (String, DiffKind, Option<String>) {
    (path.to_string(), DiffKind::Renamed, Some(to.to_string()))
}

fn hidden(verdict: &Verdict) -> Vec<(String, u64)> {
    verdict
        .hidden
        .iter()
        .map(|h| (h.rule.clone(), h.count))
        .collect()
}

/// Name, primary body, secondary body, expected (path, kind) differences.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, DiffKind)],
);

#[test]
fn a_permuted_array_is_one_reordered_difference_at_the_array() {
    use DiffKind::*;
    let cases: &[Case] = &[
        ("rotated", "[1,2,3]", "[3,1,2]", &[("body", Reordered)]),
        (
            "objects whose keys are also in another order",
            r#"{"a":{"list":[{"x":1,"y":2},{"x":2}]}}"#,
            r#"{"a":{"list":[{"x":2},{"y":2,"x":1}]}}"#,
            &[("body/a/list", Reordered)],
        ),
        (
            "nested arrays moved whole",
            "[[1,2],[3,4]]",
            "[[3,4],[1,2]]",
            &[("body", Reordered)],
        ),
        (
            "a nested array reordered inside an element",
            r#"[{"tags":["a","b"]},{"tags":[]}]"#,
            r#"[{"tags":["b","a"]},{"tags":[]}]"#,
            &[("body/0/tags", Reordered)],
        ),
        (
            "duplicates counted: same multiset",
            "[1,1,2]",
            "[2,1,1]",
            &[("body", Reordered)],
        ),
        (
            "duplicates counted: another multiset is not reordered",
            "[1,1,2]",
            "[1,2,2]",
            &[("body/1", Changed)],
        ),
        (
            "content and order both differ stay index by index",
            "[1,2,3]",
            "[3,2,4]",
            &[("body/0", Changed), ("body/2", Changed)],
        ),
        (
            "numbers by value",
            "[1,2.0]",
            "[2,1.0]",
            &[("body", Reordered)],
        ),
    ];
    for (name, a, b, want) in cases {
        let want: Vec<_> = want.iter().map(|(p, k)| at(p, *k)).collect();
        assert_eq!(found(&json("", a, b)), want, "case: {name}");
    }
}

#[test]
fn reordered_shows_both_arrays() {
    let verdict = json("", "[1,2]", "[2,1]");
    let d = &verdict.differences[0];
    assert_eq!(
        (d.primary.as_deref(), d.secondary.as_deref()),
        (Some("[1,2]"), Some("[2,1]"))
    );
    assert_eq!(d.to, None);
}

#[test]
fn reordered_pairs_elements_equal_under_masks_and_counts_the_masks() {
    let rules = "[compare]\nmask = [\"uuid\"]\n";
    let verdict = json(
        rules,
        r#"["id 3f2504e0-4f89-11d3-9a0c-0305e82c3301","b"]"#,
        r#"["b","id 00000000-4f89-11d3-9a0c-0305e82c3301"]"#,
    );
    assert_eq!(found(&verdict), [at("body", DiffKind::Reordered)]);
    assert_eq!(hidden(&verdict), [("mask uuid".to_string(), 1)]);
}

#[test]
fn an_unordered_rule_hides_reordering_instead_of_reporting_it() {
    let verdict = json(
        "[compare]\nunordered = [\"body/t\"]\n",
        r#"{"t":[1,2]}"#,
        r#"{"t":[2,1]}"#,
    );
    assert!(verdict.is_match(), "{verdict:?}");
    assert_eq!(hidden(&verdict), [("unordered body/t".to_string(), 1)]);
}

#[test]
fn reordered_is_hidden_by_an_ignore_on_the_array() {
    let rules = "[compare]\nignore = [\"body/t\"]\n";
    let verdict = json(rules, r#"{"t":[1,2],"u":1}"#, r#"{"t":[2,1],"u":1}"#);
    assert!(verdict.is_match(), "{verdict:?}");
    assert!(hidden(&verdict)
        .iter()
        .any(|(rule, n)| rule == "ignore body/t" && *n >= 1));
}

#[test]
fn a_key_moved_with_an_equal_value_is_one_renamed_difference() {
    let verdict = json(
        "",
        r#"{"email":"a@x.org","n":1}"#,
        r#"{"n":1,"email_address":"a@x.org"}"#,
    );
    assert_eq!(
        found(&verdict),
        [renamed("body/email", "body/email_address")]
    );
    let d = &verdict.differences[0];
    assert_eq!(d.primary.as_deref(), Some(r#""a@x.org""#));
    assert_eq!(d.secondary.as_deref(), Some(r#""a@x.org""#));
    assert_eq!(
        d.to_string(),
        r#"body/email → body/email_address (renamed): "a@x.org" -> "a@x.org""#
    );
}

#[test]
fn a_renamed_key_whose_value_changed_is_removed_and_added() {
    let verdict = json("", r#"{"email":"a@x.org"}"#, r#"{"mail":"b@x.org"}"#);
    assert_eq!(
        found(&verdict),
        [
            at("body/email", DiffKind::Removed),
            at("body/mail", DiffKind::Added)
        ]
    );
}

#[test]
fn renames_pair_each_old_key_with_at_most_one_new_key_in_key_order() {
    let verdict = json("", r#"{"a":1,"b":2}"#, r#"{"c":2,"d":1}"#);
    assert_eq!(
        found(&verdict),
        [renamed("body/a", "body/d"), renamed("body/b", "body/c")]
    );
    let verdict = json("", r#"{"a":1,"b":1}"#, r#"{"c":1}"#);
    assert_eq!(
        found(&verdict),
        [renamed("body/a", "body/c"), at("body/b", DiffKind::Removed)]
    );
    let verdict = json("", r#"{"a":1}"#, r#"{"b":1,"c":1}"#);
    assert_eq!(
        found(&verdict),
        [renamed("body/a", "body/b"), at("body/c", DiffKind::Added)]
    );
}

#[test]
fn renamed_nested_values_and_keys_inside_arrays() {
    let verdict = json(
        "",
        r#"{"items":[{"old":{"x":[1,2]},"id":1}]}"#,
        r#"{"items":[{"id":1,"new":{"x":[1,2]}}]}"#,
    );
    assert_eq!(
        found(&verdict),
        [renamed("body/items/0/old", "body/items/0/new")]
    );
}

#[test]
fn renamed_is_hidden_by_an_ignore_on_either_path() {
    for rule in ["body/email", "body/email_address"] {
        let verdict = json(
            &format!("[compare]\nignore = [\"{rule}\"]\n"),
            r#"{"email":"a@x.org"}"#,
            r#"{"email_address":"a@x.org"}"#,
        );
        assert!(verdict.is_match(), "{rule}: {verdict:?}");
        assert_eq!(hidden(&verdict), [(format!("ignore {rule}"), 1)], "{rule}");
    }
}

#[test]
fn text_bodies_differ_line_by_line_at_body_hash_l() {
    use DiffKind::*;
    let verdict = text("", "a\nb\nc\n", "a\nB\nc\n");
    assert_eq!(found(&verdict), [at("body#L2", Changed)]);
    let d = &verdict.differences[0];
    assert_eq!(
        (d.primary.as_deref(), d.secondary.as_deref()),
        (Some("b"), Some("B"))
    );
    let unified = verdict.body_diff.expect("the unified diff is kept");
    assert!(
        unified.contains("-b\n") && unified.contains("+B\n"),
        "{unified}"
    );

    // Removed lines at the primary's line, added ones at the secondary's.
    let verdict = text("", "a\nb\nc\nd\n", "a\nc\nd\ne\n");
    assert_eq!(
        found(&verdict),
        [at("body#L2", Removed), at("body#L4", Added)]
    );
    assert_eq!(verdict.differences[1].secondary.as_deref(), Some("e"));
}

#[test]
fn a_changed_line_far_into_the_body_is_reported_at_its_line() {
    let a: String = (1..=1000).map(|i| format!("line {i}\n")).collect();
    let b = a.replace("line 745\n", "line 745 changed\n");
    let verdict = text("", &a, &b);
    assert_eq!(found(&verdict), [at("body#L745", DiffKind::Changed)]);
}

#[test]
fn ignore_rules_name_one_line_any_line_or_the_whole_body() {
    let (a, b) = ("a\nb\nc\n", "a\nB\nC\n");
    let verdict = text("[compare]\nignore = [\"body#L2\"]\n", a, b);
    assert_eq!(found(&verdict), [at("body#L3", DiffKind::Changed)]);
    assert_eq!(hidden(&verdict), [("ignore body#L2".to_string(), 1)]);

    for rule in ["body#L*", "body"] {
        let verdict = text(&format!("[compare]\nignore = [\"{rule}\"]\n"), a, b);
        assert!(verdict.is_match(), "{rule}: {verdict:?}");
        assert_eq!(hidden(&verdict), [(format!("ignore {rule}"), 2)], "{rule}");
        assert_eq!(verdict.body_diff, None, "{rule}");
    }
}

#[test]
fn line_patterns_are_checked_at_startup() {
    for bad in ["body#L", "body#Lx", "body#L1/x", "body#"] {
        let file = FileConfig::parse(
            Path::new("rules.toml"),
            &format!("[compare]\nignore = [\"{bad}\"]\n"),
        )
        .unwrap();
        let compiled = Comparator::new(&RulesConfig {
            compare: file.compare,
            routes: file.route,
            source: None,
            recorded_redactions: false,
        });
        assert!(compiled.is_err(), "{bad}");
    }
}

#[test]
fn masks_apply_to_each_line_before_it_counts_as_changed() {
    let rules = "[compare]\nmask = [\"uuid\"]\n";
    let verdict = text(
        rules,
        "id 3f2504e0-4f89-11d3-9a0c-0305e82c3301\nx\n",
        "id 00000000-4f89-11d3-9a0c-0305e82c3301\ny\n",
    );
    assert_eq!(found(&verdict), [at("body#L2", DiffKind::Changed)]);
    assert_eq!(hidden(&verdict), [("mask uuid".to_string(), 1)]);
}

#[test]
fn a_completely_different_text_is_capped_at_a_hundred_lines_and_a_summary() {
    let a: String = (0..300).map(|i| format!("a{i}\n")).collect();
    let b: String = (0..300).map(|i| format!("b{i}\n")).collect();
    let verdict = text("", &a, &b);
    let lines: Vec<&Difference> = verdict
        .differences
        .iter()
        .filter(|d| d.path.starts_with("body#L"))
        .collect();
    assert_eq!(lines.len(), 100);
    let summary = verdict.differences.last().unwrap();
    assert_eq!(
        (summary.path.as_str(), summary.kind),
        ("body", DiffKind::Text)
    );
    assert_eq!(summary.primary.as_deref(), Some("200 more lines differ"));
    assert_eq!(verdict.differences.len(), 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_key_keeps_its_new_path_through_the_store_to_the_json_report() {
    let json_backend = |body: &'static str| {
        backend(move |_| async move {
            http::Response::builder()
                .header("content-type", "application/json")
                .body(full(body))
                .unwrap()
        })
    };
    let primary = json_backend(r#"{"id":7,"email":"a@x.org"}"#).await;
    let secondary = json_backend(r#"{"id":7,"email_address":"a@x.org"}"#).await;
    let (config, dir) = config(&primary.url(), &secondary.url());
    let proxy = start(config, dir).await;
    let (status, _) = crate::support::get(proxy.url("/users/7")).await;
    assert_eq!(status, 200);
    let db = proxy.stop().await;
    let report = report_json(&db);
    let differences: Vec<&serde_json::Value> = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["examples"].as_array().unwrap())
        .flat_map(|e| e["differences"].as_array().unwrap())
        .collect();
    assert_eq!(differences.len(), 1, "{report}");
    assert_eq!(differences[0]["path"], "body/email");
    assert_eq!(differences[0]["kind"], "renamed");
    assert_eq!(differences[0]["to"], "body/email_address");

    let shadowdiff = |args: &[&str]| {
        let output = assert_cmd::Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(args)
            .arg("--db")
            .arg(&*db)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let id = report["routes"][0]["examples"][0]["id"].to_string();
    let place = "body/email → body/email_address";
    let shown = shadowdiff(&["show", &id]);
    assert!(shown.contains(&format!("{place} (renamed)")), "{shown}");
    // JUnit lists examples only for a route the gate fails; its line is the same place().
    for format in ["text", "markdown", "html"] {
        let out = shadowdiff(&["report", "--format", format]);
        assert!(out.contains(place), "{format}: {out}");
    }
}
