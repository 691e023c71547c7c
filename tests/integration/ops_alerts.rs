//! The alerting rules and the Grafana dashboard under `deploy/`: promtool checks the rules
//! and runs their unit tests (`deploy/prometheus/alerts_test.yml`) and checks the
//! dashboard's queries as PromQL; every metric and label value they name is exposed by a
//! real proxy's `/metrics` (promtool checks syntax, not names: a renamed metric would leave
//! an alert that never fires); the dashboard is valid JSON and every panel queries.
//!
//! Where promtool is not installed the promtool tests print one line and pass, unless
//! `SHADOWDIFF_REQUIRE_PROMTOOL` is set (`.ci/run` sets it and installs Debian's
//! `prometheus` package, which has promtool).

use crate::support;

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable that turns "no promtool here" from a skip into a failure.
const REQUIRE: &str = "SHADOWDIFF_REQUIRE_PROMTOOL";

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const ALERTS_TEST: &str = "deploy/prometheus/alerts_test.yml";
const DASHBOARD: &str = "deploy/grafana/shadowdiff.json";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// promtool from PATH, else Debian's `/usr/bin/promtool`. None (after one line on the real
/// stderr, which libtest does not capture) when there is none and it is not required.
fn promtool() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    });
    let found = on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/promtool");
        debian.is_file().then_some(debian)
    });
    if found.is_none() {
        if std::env::var_os(REQUIRE).is_some() {
            panic!("{REQUIRE} is set but promtool is not on PATH nor /usr/bin/promtool");
        }
        let test = std::thread::current().name().unwrap_or("test").to_string();
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: promtool not found; install Debian's prometheus package or \
             set {REQUIRE}=1 to make this a failure"
        );
    }
    found
}

/// Runs promtool in the repository's root; panics with its output unless it succeeds.
fn run_promtool(promtool: &Path, args: &[&str]) -> String {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let checked = run_promtool(&promtool, &["check", "rules", ALERTS]);
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    let tested = run_promtool(&promtool, &["test", "rules", ALERTS_TEST]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every expression of every panel, as (panel title, refId, expr).
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                panel["title"].as_str().unwrap_or_default().to_string(),
                target["refId"].as_str().unwrap_or_default().to_string(),
                target["expr"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    queries
}

/// A dashboard query with Grafana's variables replaced by what Prometheus would get.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$instance", ".*")
        .replace("$route", ".*")
}

#[test]
fn dashboard_queries_pass_promtool_check() {
    let Some(promtool) = promtool() else { return };
    // promtool has no "check this expression": a recording rule per query is one.
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for (i, (title, ref_id, expr)) in dashboard_queries(&dashboard()).iter().enumerate() {
        let promql = as_promql(expr);
        assert!(
            !promql.contains('$'),
            "{title} {ref_id}: a variable left in {promql}"
        );
        rules.push_str(&format!(
            "      - record: grafana:query_{i}\n        expr: {}\n",
            // A JSON string is a YAML flow scalar.
            serde_json::Value::String(promql)
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard_rules.yml");
    std::fs::write(&file, rules).unwrap();
    run_promtool(&promtool, &["check", "rules", file.to_str().unwrap()]);
}

#[test]
fn alerts_file_has_each_alert_with_for_severity_and_annotations() {
    let text = read(ALERTS);
    let mut blocks = text.split("      - alert: ").skip(1);
    let mut names = Vec::new();
    for block in blocks.by_ref() {
        let name = block.lines().next().unwrap().trim().to_string();
        for field in [
            "\n        expr: ",
            "\n        for: ",
            "\n          severity: ",
            "\n          summary: ",
            "\n          description: ",
        ] {
            assert!(block.contains(field), "{name} has no{field}");
        }
        assert!(
            block.contains("docs/OPERATIONS.md"),
            "{name}: no pointer to the docs"
        );
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "ShadowdiffMismatchRateHigh",
            "ShadowdiffErrorRateHigh",
            "ShadowdiffBreakerOpen",
            "ShadowdiffStoreDropping",
            "ShadowdiffStoreDisconnected",
            "ShadowdiffNoTraffic",
        ]
    );
    assert!(text.contains("groups:\n  - name: shadowdiff\n"));
    // Each alert has a test of it in the promtool file, firing and not.
    let tests = read(ALERTS_TEST);
    for name in &names {
        let cases = tests.matches(&format!("alertname: {name}\n")).count();
        assert!(cases >= 2, "{name}: {cases} test cases in {ALERTS_TEST}");
    }
}

#[test]
fn dashboard_parses_and_every_panel_queries() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "shadowdiff");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(variable("DS_PROMETHEUS")["query"], "prometheus");
    let route = variable("route")["definition"].as_str().unwrap();
    assert!(
        route.starts_with("label_values(shadowdiff_requests_total") && route.ends_with(", route)"),
        "{route}"
    );
    assert!(variable("instance")["definition"]
        .as_str()
        .unwrap()
        .ends_with(", instance)"));

    let defined: BTreeSet<String> = variables
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    let reference = Regex::new(r"\$\{?([A-Za-z_]+)").unwrap();
    let mut ids = BTreeSet::new();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: id reused"
        );
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("{title}: no targets"));
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(expr.contains("shadowdiff_"), "{title}: {target}");
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            for name in reference.captures_iter(expr).map(|c| c[1].to_string()) {
                assert!(
                    name.starts_with("__") || defined.contains(&name),
                    "{title}: ${name} is not a variable of the dashboard"
                );
            }
            queried += 1;
        }
    }
    assert!(queried >= 20, "{queried} queries");
}

/// Metric names (`shadowdiff_*`) and label values (`outcome="mismatched"`) the rules and
/// the dashboard's queries use, each with the file it is in.
fn referenced() -> (
    BTreeMap<String, &'static str>,
    BTreeMap<String, &'static str>,
) {
    let alerts = read(ALERTS);
    let queries: String = dashboard_queries(&dashboard())
        .into_iter()
        .map(|(_, _, expr)| expr + "\n")
        .collect();
    let dashboard_text = read(DASHBOARD);
    let name = Regex::new(r"shadowdiff_[a-z_]+").unwrap();
    let label =
        Regex::new(r#"\b(outcome|source|leg|reason|result|state)\s*=~?\s*"([^"$]*)""#).unwrap();
    let mut names = BTreeMap::new();
    let mut labels = BTreeMap::new();
    // Names anywhere in either file (descriptions too: they tell operators what to query);
    // label values in expressions only.
    for (file, text, exprs) in [
        (ALERTS, &alerts, &alerts),
        (DASHBOARD, &dashboard_text, &queries),
    ] {
        for found in name.find_iter(text) {
            names.entry(found.as_str().to_string()).or_insert(file);
        }
        for found in label.captures_iter(exprs) {
            for value in found[2].split('|') {
                labels
                    .entry(format!(r#"{}="{value}""#, &found[1]))
                    .or_insert(file);
            }
        }
    }
    (names, labels)
}

/// Metric families by name and type, from the `# TYPE` lines, and the names of the samples.
fn exposition(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut families = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').expect("# TYPE name type");
            families.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_string());
        }
    }
    (families, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_dashboard_name_is_exposed() {
    let (names, labels) = referenced();
    // The regex found something: a broken pattern must not make this pass vacuously.
    for expected in [
        "shadowdiff_requests_total",
        "shadowdiff_breaker_open",
        "shadowdiff_store_lost_total",
        "shadowdiff_upstream_duration_seconds_bucket",
    ] {
        assert!(
            names.contains_key(expected),
            "{expected} not found in {names:?}"
        );
    }
    assert!(labels.contains_key(r#"outcome="mismatched""#), "{labels:?}");

    // A real proxy with a little traffic: a match and a mismatch, so the per-route series
    // (created at a route's first judged request) and the histograms have samples.
    let primary = support::fixed(200, "same").await;
    let secondary = support::backend(|received| async move {
        if received.uri.path() == "/diff" {
            support::text(200, "other")
        } else {
            support::text(200, "same")
        }
    })
    .await;
    let (config, dir) = support::config(&primary.url(), &secondary.url());
    let (proxy, admin) = support::start_with_admin(config, dir).await;
    let http = support::client();
    for path in ["/same", "/diff"] {
        http.get(proxy.url(path)).send().await.unwrap();
    }
    support::wait_for("2 compared requests", || async {
        let counters = &support::status(admin).await["counters"];
        counters["matched"] == 1 && counters["mismatched"] == 1
    })
    .await;
    let text = support::metrics(admin).await;
    proxy.stop().await;

    let (families, samples) = exposition(&text);
    let exposed = |name: &str| {
        if samples.contains(name) || families.contains_key(name) {
            return true;
        }
        // A histogram's series are its name with these suffixes.
        ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| families.get(base).is_some_and(|kind| kind == "histogram"))
        })
    };
    let missing: Vec<String> = names
        .iter()
        .filter(|(name, _)| !exposed(name))
        .map(|(name, file)| format!("{name} (in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "named in the alerts or the dashboard but not exposed by /metrics: {missing:?}\n{text}"
    );
    let missing: Vec<String> = labels
        .iter()
        .filter(|(label, _)| !text.contains(label.as_str()))
        .map(|(label, file)| format!("{label} (in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "label values the alerts or the dashboard select that /metrics has none of: \
         {missing:?}\n{text}"
    );
}
