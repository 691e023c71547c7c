//! Text: a terminal table per report, colour only when writing to a terminal.

use super::model::{Percentiles, Report, RouteReport};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, Table};
use std::fmt::Write;

pub(super) fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

pub(super) fn latency(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!("{:.1}/{:.1}/{:.1}", p.p50_ms, p.p95_ms, p.p99_ms),
        None => "-".into(),
    }
}

pub(super) fn reasons(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn number(n: u64) -> Cell {
    Cell::new(n).set_alignment(CellAlignment::Right)
}

fn route_row(route: &RouteReport, colour: bool) -> Vec<Cell> {
    let mut rate =
        Cell::new(percent(route.counts.mismatch_rate)).set_alignment(CellAlignment::Right);
    if colour {
        rate = rate.fg(if route.counts.mismatched > 0 {
            Color::Red
        } else {
            Color::Green
        });
    }
    vec![
        Cell::new(&route.route),
        number(route.counts.requests),
        number(route.counts.matched),
        number(route.counts.mismatched),
        number(route.counts.errors),
        number(route.counts.skipped),
        rate,
        Cell::new(latency(&route.latency.primary)),
        Cell::new(latency(&route.latency.secondary)),
    ]
}

pub fn render(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    let s = &report.summary.counts;
    let _ = writeln!(
        out,
        "{} requests: {} matched, {} mismatched, {} errors, {} skipped, {} dropped · mismatch rate {}",
        s.requests,
        s.matched,
        s.mismatched,
        s.errors,
        s.skipped,
        report.summary.dropped,
        percent(s.mismatch_rate)
    );
    if !s.skipped_by_reason.is_empty() {
        let _ = writeln!(out, "skipped: {}", reasons(&s.skipped_by_reason));
    }
    if !s.errors_by_kind.is_empty() {
        let _ = writeln!(out, "errors: {}", reasons(&s.errors_by_kind));
    }
    if let Some(baseline) = &s.baseline {
        let _ = write!(
            out,
            "baseline: used on {} comparisons, unusable on {}",
            baseline.used, baseline.unusable
        );
        if !baseline.unusable_by_reason.is_empty() {
            let _ = write!(out, " ({})", reasons(&baseline.unusable_by_reason));
        }
        let _ = writeln!(out, "; what it hid is listed as `baseline <path>`");
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    if !colour {
        table.force_no_tty();
    }
    table.set_header(vec![
        "route",
        "requests",
        "matched",
        "mismatched",
        "errors",
        "skipped",
        "mismatch rate",
        "primary p50/p95/p99 ms",
        "secondary p50/p95/p99 ms",
    ]);
    for route in &report.routes {
        table.add_row(route_row(route, colour));
    }
    let _ = writeln!(out, "{table}");
    if report.instances.len() > 1 {
        let mut instances = Table::new();
        instances.load_style(UTF8_FULL_CONDENSED);
        if !colour {
            instances.force_no_tty();
        }
        instances.set_header(vec![
            "instance",
            "runs",
            "requests",
            "matched",
            "mismatched",
            "errors",
            "skipped",
            "mismatch rate",
        ]);
        for i in &report.instances {
            let c = &i.counts;
            instances.add_row(vec![
                match i.instance.is_empty() {
                    true => "(unnamed)".to_string(),
                    false => i.instance.clone(),
                },
                i.runs.to_string(),
                c.requests.to_string(),
                c.matched.to_string(),
                c.mismatched.to_string(),
                c.errors.to_string(),
                c.skipped.to_string(),
                percent(c.mismatch_rate),
            ]);
        }
        let _ = writeln!(out, "\nby instance:\n{instances}");
    }
    for route in report.routes.iter().filter(|r| r.counts.mismatched > 0) {
        let _ = writeln!(out, "\n{}", route.route);
        for path in &route.top_differences {
            let _ = writeln!(
                out,
                "  {:>6} ({:>7})  {}",
                path.count,
                percent(path.share),
                path.path
            );
        }
        for example in &route.examples {
            let paths: Vec<_> = example.differences.iter().map(|d| d.place()).collect();
            let _ = writeln!(
                out,
                "  example {}: {} {} -> {} vs {} at {}  (shadowdiff show {} {} {})",
                example.id,
                example.method,
                example.uri,
                example.primary_status,
                example.secondary_status,
                paths.join(", "),
                example.id,
                super::model::store_flag(&example.database),
                example.database
            );
        }
    }
    for route in report.routes.iter().filter(|r| !r.hidden.is_empty()) {
        let hidden: Vec<String> = route
            .hidden
            .iter()
            .map(|h| format!("{} {}", h.rule, h.count))
            .collect();
        let _ = writeln!(out, "hidden on {}: {}", route.route, hidden.join(", "));
    }
    if !report.unused_rules.is_empty() {
        let _ = writeln!(out, "unused rules: {}", report.unused_rules.join(", "));
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if let Some(gate) = &report.gate {
        out.push_str(&gate_lines(gate));
    }
    if let Some(s) = &report.suggestions {
        let _ = writeln!(
            out,
            "suggestions: {} rule(s), {} path(s) look real",
            s.rules, s.looks_real
        );
        for line in &s.top {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "  run `{}` for the config", s.command);
    }
    out
}

fn gate_lines(gate: &super::model::GateReport) -> String {
    let mut out = String::new();
    if gate.passed {
        let _ = writeln!(out, "gate: PASS");
    } else {
        let _ = writeln!(out, "gate: FAIL");
        for failure in &gate.failures {
            let _ = writeln!(out, "  {}", failure.message);
        }
    }
    out
}

/// The gate's one screen: totals, then the verdict and each broken threshold.
pub fn render_gate(report: &Report) -> String {
    let s = &report.summary.counts;
    let mut out = format!(
        "{} compared ({} matched, {} mismatched), {} errors, {} skipped over {} routes · mismatch rate {}\n",
        s.compared(),
        s.matched,
        s.mismatched,
        s.errors,
        s.skipped,
        report.routes.len(),
        percent(s.mismatch_rate)
    );
    if let Some(gate) = &report.gate {
        out.push_str(&gate_lines(gate));
    }
    out
}
