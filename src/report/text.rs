//! Text: a terminal table per report, colour only when writing to a terminal. By default
//! it fits [`WIDTH`] columns (latencies reduced to p95, long route names and lines
//! wrapped); `--wide` keeps every column at full width.

use super::model::{Percentiles, Report, RouteReport};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table};
use std::fmt::Write;
use unicode_width::UnicodeWidthChar;

/// Columns the default text report fits in.
pub const WIDTH: usize = 100;

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

/// p95 of both legs, `primary/secondary`: the narrow table's one latency column.
fn p95s(route: &RouteReport) -> String {
    let one = |p: &Option<Percentiles>| match p {
        Some(p) => format!("{:.1}", p.p95_ms),
        None => "-".into(),
    };
    format!(
        "{}/{}",
        one(&route.latency.primary),
        one(&route.latency.secondary)
    )
}

/// A table that fits [`WIDTH`] (unless `wide`): only the first column (a name) wraps; the
/// numbers keep their width.
fn fitted(table: &mut Table, wide: bool) {
    if wide {
        return;
    }
    table
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH as u16);
    for i in 1..table.column_count() {
        if let Some(column) = table.column_mut(i) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
}

/// Wraps every line wider than `width` at spaces (a longer word is cut), continuing
/// indented under its start; table lines (starting with a box-drawing character) are
/// already fitted and left alone.
fn wrap_prose(text: &str, width: usize) -> String {
    let columns = |s: &str| s.chars().map(|c| c.width().unwrap_or(0)).sum::<usize>();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let is_table = line.starts_with(|c: char| ('\u{2500}'..='\u{257f}').contains(&c));
        if is_table || columns(line) <= width {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let next = " ".repeat((indent + 4).min(width / 2));
        let mut current = line[..indent].to_string();
        let mut used = columns(&current);
        let mut fresh = true;
        for word in line[indent..].split(' ') {
            let w = columns(word);
            // A word that fits no line is cut where it stands instead.
            if !fresh && used + 1 + w > width && next.len() + w <= width {
                out.push_str(current.trim_end());
                out.push('\n');
                current = next.clone();
                used = next.len();
                fresh = true;
            }
            if !fresh {
                current.push(' ');
                used += 1;
            }
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if used + cw > width && used > next.len() {
                    out.push_str(current.trim_end());
                    out.push('\n');
                    current = next.clone();
                    used = next.len();
                }
                current.push(c);
                used += cw;
            }
            fresh = false;
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

fn route_row(route: &RouteReport, colour: bool, wide: bool) -> Vec<Cell> {
    let mut rate =
        Cell::new(percent(route.counts.mismatch_rate)).set_alignment(CellAlignment::Right);
    if colour {
        rate = rate.fg(if route.counts.mismatched > 0 {
            Color::Red
        } else {
            Color::Green
        });
    }
    let mut row = vec![
        Cell::new(&route.route),
        number(route.counts.requests),
        number(route.counts.matched),
        number(route.counts.mismatched),
        number(route.counts.errors),
        number(route.counts.skipped),
        rate,
    ];
    if wide {
        row.push(Cell::new(latency(&route.latency.primary)));
        row.push(Cell::new(latency(&route.latency.secondary)));
    } else {
        row.push(Cell::new(p95s(route)).set_alignment(CellAlignment::Right));
    }
    row
}

/// The text report; `wide` keeps every column (p50/p95/p99 of both legs) and every line
/// at full length, otherwise it fits [`WIDTH`] columns.
pub fn render(report: &Report, colour: bool, wide: bool) -> String {
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
    if wide {
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
    } else {
        table.set_header(vec![
            "route",
            "requests",
            "matched",
            "mismatched",
            "errors",
            "skipped",
            "rate",
            "p95 ms prim/sec",
        ]);
    }
    for route in &report.routes {
        table.add_row(route_row(route, colour, wide));
    }
    fitted(&mut table, wide);
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
        fitted(&mut instances, wide);
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
    if wide {
        out
    } else {
        wrap_prose(&out, WIDTH)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_prose_lines_wrap_at_spaces_and_tables_are_left_alone() {
        let long = format!("  example 1: GET {} -> 200 vs 500", "/segment".repeat(20));
        let table = format!("│ {} │", "x".repeat(150));
        let out = wrap_prose(&format!("short\n{long}\n{table}\n"), 60);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "short");
        assert!(lines[1].starts_with("  example 1: GET /segment"), "{out}");
        assert!(
            lines[2].starts_with("      gment/"),
            "continued, indented: {out}"
        );
        assert_eq!(*lines.last().unwrap(), table);
        for line in &lines[..lines.len() - 1] {
            assert!(line.chars().count() <= 60, "{line}");
        }
        let joined: String = lines[1..lines.len() - 1]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join("");
        assert_eq!(joined.replace(' ', ""), long.replace(' ', ""));
    }
}
