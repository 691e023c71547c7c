//! Markdown: short enough for a pull-request comment or a CI job summary.

use super::model::Report;
use super::text::{latency, percent, reasons};
use std::fmt::Write;

/// Table cells cannot hold `|` or line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary.counts;
    let _ = writeln!(out, "## shadowdiff report\n");
    if let Some(gate) = &report.gate {
        let verdict = if gate.passed { "✅ PASS" } else { "❌ FAIL" };
        let _ = writeln!(out, "**Gate: {verdict}**\n");
        for failure in &gate.failures {
            let _ = writeln!(out, "- {}", cell(&failure.message));
        }
        if !gate.failures.is_empty() {
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "**{}** requests: {} matched, {} mismatched, {} errors, {} skipped, {} dropped; mismatch rate **{}**\n",
        s.requests,
        s.matched,
        s.mismatched,
        s.errors,
        s.skipped,
        report.summary.dropped,
        percent(s.mismatch_rate)
    );
    let _ = writeln!(
        out,
        "| route | requests | matched | mismatched | errors | skipped | mismatch rate | primary p50/p95/p99 ms | secondary p50/p95/p99 ms | top difference |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for route in &report.routes {
        let c = &route.counts;
        let top = route
            .top_differences
            .first()
            .map(|p| format!("`{}` ({})", cell(&p.path), percent(p.share)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&route.route),
            c.requests,
            c.matched,
            c.mismatched,
            c.errors,
            c.skipped,
            percent(c.mismatch_rate),
            latency(&route.latency.primary),
            latency(&route.latency.secondary),
            top
        );
    }
    let details: Vec<_> = report
        .routes
        .iter()
        .filter(|r| r.counts.mismatched > 0 || r.counts.skipped > 0 || r.counts.errors > 0)
        .collect();
    if !details.is_empty() {
        let _ = writeln!(out, "\n<details><summary>Details per route</summary>\n");
        for route in details {
            let _ = writeln!(out, "### `{}`\n", cell(&route.route));
            if !route.counts.skipped_by_reason.is_empty() {
                let _ = writeln!(
                    out,
                    "- skipped: {}",
                    reasons(&route.counts.skipped_by_reason)
                );
            }
            if !route.counts.errors_by_kind.is_empty() {
                let _ = writeln!(out, "- errors: {}", reasons(&route.counts.errors_by_kind));
            }
            for path in &route.top_differences {
                let _ = writeln!(
                    out,
                    "- `{}`: {} ({})",
                    path.path,
                    path.count,
                    percent(path.share)
                );
            }
            for hidden in &route.hidden {
                let _ = writeln!(out, "- hidden by `{}`: {}", hidden.rule, hidden.count);
            }
            for example in &route.examples {
                let _ = writeln!(
                    out,
                    "- example `{}`: `{} {}` {} vs {} (`shadowdiff show {} {} {}`)",
                    example.id,
                    example.method,
                    example.uri,
                    example.primary_status,
                    example.secondary_status,
                    example.id,
                    super::model::store_flag(&example.database),
                    example.database
                );
                for d in &example.differences {
                    let _ = writeln!(out, "  - `{}` ({})", d.place(), d.kind);
                }
            }
            out.push('\n');
        }
        let _ = writeln!(out, "</details>");
    }
    if !report.unused_rules.is_empty() {
        let rules: Vec<String> = report
            .unused_rules
            .iter()
            .map(|r| format!("`{r}`"))
            .collect();
        let _ = writeln!(out, "\nUnused rules: {}", rules.join(", "));
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n> {}", cell(note));
    }
    out
}
