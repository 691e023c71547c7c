//! HTML: one self-contained page (no scripts, fonts or images fetched), so it can be
//! attached to a CI run and opened offline. The markup is also well-formed XML, which keeps
//! it checkable by any XML parser.

use super::model::{Example, Report, TimelinePoint};
use super::text::{latency, percent, reasons};
use similar::{DiffTag, TextDiff};
use std::fmt::Write;

/// Rows of the side-by-side diff shown per example; `show` prints everything.
const MAX_DIFF_ROWS: usize = 200;
/// Characters of one diff line shown (minified JSON is one very long line).
const MAX_LINE_CHARS: usize = 2000;
/// Points drawn in the chart; longer timelines are merged into this many spans so the page
/// stays small over weeks of data.
const MAX_CHART_POINTS: usize = 300;

/// Merges consecutive minutes so at most [`MAX_CHART_POINTS`] remain; each merged point
/// keeps the first minute of its span and the summed counts.
fn downsample(points: &[TimelinePoint]) -> Vec<TimelinePoint> {
    let span = points.len().div_ceil(MAX_CHART_POINTS).max(1);
    points
        .chunks(span)
        .map(|chunk| {
            let matched: u64 = chunk.iter().map(|p| p.matched).sum();
            let mismatched: u64 = chunk.iter().map(|p| p.mismatched).sum();
            let compared = matched + mismatched;
            TimelinePoint {
                minute: chunk[0].minute.clone(),
                matched,
                mismatched,
                mismatch_rate: if compared == 0 {
                    0.0
                } else {
                    mismatched as f64 / compared as f64
                },
            }
        })
        .collect()
}

/// One line of a body for the diff table, cut at [`MAX_LINE_CHARS`].
fn diff_line(line: &str) -> String {
    let line = line.trim_end_matches('\n');
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", escape(&line[..cut])),
        None => escape(line),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td.l,th.l{text-align:left}.bad{color:#b00}.ok{color:#070}
.diff td{font-family:monospace;white-space:pre-wrap;text-align:left;vertical-align:top;width:50%}
.del{background:#fdd}.ins{background:#dfd}.gate-fail{color:#b00;font-weight:bold}.gate-pass{color:#070;font-weight:bold}
code{background:#f4f4f4;padding:0 .2em}";

/// Text as HTML (and XML) character data or attribute value.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0; show them as a replacement.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Mismatch rate per minute as an inline SVG line.
fn chart(points: &[TimelinePoint]) -> String {
    if points.is_empty() {
        return "<p>No comparisons in range.</p>".into();
    }
    let points = &downsample(points)[..];
    let (width, height, pad) = (640.0, 160.0, 30.0);
    let top = points
        .iter()
        .map(|p| p.mismatch_rate)
        .fold(0.0_f64, f64::max)
        .max(0.01);
    let x = |i: usize| {
        if points.len() == 1 {
            pad + (width - 2.0 * pad) / 2.0
        } else {
            pad + (width - 2.0 * pad) * i as f64 / (points.len() - 1) as f64
        }
    };
    let y = |rate: f64| height - pad - (height - 2.0 * pad) * rate / top;
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.mismatch_rate)))
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"mismatch rate over time\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#888\"/>",
        b = height - pad,
        r = width - pad
    );
    let _ = write!(
        svg,
        "<text x=\"2\" y=\"{}\" font-size=\"10\">{}</text><text x=\"2\" y=\"{}\" font-size=\"10\">0%</text>",
        pad + 4.0,
        escape(&percent(top)),
        height - pad
    );
    let _ = write!(
        svg,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        height - 8.0,
        escape(&points[0].minute),
        width - pad,
        height - 8.0,
        escape(&points[points.len() - 1].minute)
    );
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"#b00\" stroke-width=\"2\" points=\"{}\"/>",
        line.join(" ")
    );
    for (i, p) in points.iter().enumerate() {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#b00\"><title>{} {} ({} of {})</title></circle>",
            x(i),
            y(p.mismatch_rate),
            escape(&p.minute),
            percent(p.mismatch_rate),
            p.mismatched,
            p.matched + p.mismatched
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The two bodies side by side, changed lines highlighted.
fn side_by_side(example: &Example) -> String {
    let diff = TextDiff::from_lines(&example.primary_body, &example.secondary_body);
    let old = diff.old_slices();
    let new = diff.new_slices();
    let mut rows = Vec::new();
    for op in diff.ops() {
        let (tag, left, right) = op.as_tag_tuple();
        let class = match tag {
            DiffTag::Equal => ("", ""),
            DiffTag::Delete => ("del", ""),
            DiffTag::Insert => ("", "ins"),
            DiffTag::Replace => ("del", "ins"),
        };
        let height = left.len().max(right.len());
        for i in 0..height {
            let l = old.get(left.start + i).filter(|_| i < left.len());
            let r = new.get(right.start + i).filter(|_| i < right.len());
            rows.push(format!(
                "<tr><td class=\"{}\">{}</td><td class=\"{}\">{}</td></tr>",
                if l.is_some() { class.0 } else { "" },
                l.map(|s| diff_line(s)).unwrap_or_default(),
                if r.is_some() { class.1 } else { "" },
                r.map(|s| diff_line(s)).unwrap_or_default()
            ));
        }
    }
    let truncated = rows.len() > MAX_DIFF_ROWS;
    rows.truncate(MAX_DIFF_ROWS);
    let mut out = String::from(
        "<table class=\"diff\"><tr><th class=\"l\">primary</th><th class=\"l\">secondary</th></tr>",
    );
    out.push_str(&rows.concat());
    out.push_str("</table>");
    if truncated {
        out.push_str("<p>(truncated; <code>shadowdiff show</code> prints it all)</p>");
    }
    out
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary.counts;
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>shadowdiff report</title>");
    let _ = write!(
        out,
        "<style>{STYLE}</style></head><body><h1>shadowdiff report</h1>"
    );
    if let Some(gate) = &report.gate {
        if gate.passed {
            out.push_str("<p class=\"gate-pass\">Gate: PASS</p>");
        } else {
            out.push_str("<p class=\"gate-fail\">Gate: FAIL</p><ul>");
            for failure in &gate.failures {
                let _ = write!(out, "<li>{}</li>", escape(&failure.message));
            }
            out.push_str("</ul>");
        }
    }
    let _ = write!(
        out,
        "<h2>Summary</h2><p>{} requests: {} matched, {} mismatched, {} errors, {} skipped, {} dropped. Mismatch rate <strong>{}</strong>.</p>",
        s.requests, s.matched, s.mismatched, s.errors, s.skipped, report.summary.dropped, percent(s.mismatch_rate)
    );
    if !s.skipped_by_reason.is_empty() {
        let _ = write!(
            out,
            "<p>Skipped: {}</p>",
            escape(&reasons(&s.skipped_by_reason))
        );
    }
    if !s.errors_by_kind.is_empty() {
        let _ = write!(
            out,
            "<p>Errors: {}</p>",
            escape(&reasons(&s.errors_by_kind))
        );
    }
    for note in &report.notes {
        let _ = write!(out, "<p><em>{}</em></p>", escape(note));
    }
    let _ = write!(
        out,
        "<h2>Mismatch rate over time</h2>{}",
        chart(&report.timeline)
    );
    out.push_str("<h2>Routes</h2><table><tr><th class=\"l\">route</th><th>requests</th><th>matched</th><th>mismatched</th><th>errors</th><th>skipped</th><th>mismatch rate</th><th>primary p50/p95/p99 ms</th><th>secondary p50/p95/p99 ms</th></tr>");
    for route in &report.routes {
        let c = &route.counts;
        let _ = write!(
            out,
            "<tr><td class=\"l\"><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            anchor(&route.route),
            escape(&route.route),
            c.requests,
            c.matched,
            c.mismatched,
            c.errors,
            c.skipped,
            if c.mismatched > 0 { "bad" } else { "ok" },
            percent(c.mismatch_rate),
            latency(&route.latency.primary),
            latency(&route.latency.secondary)
        );
    }
    out.push_str("</table>");
    for route in &report.routes {
        let _ = write!(
            out,
            "<h3 id=\"{}\">{}</h3>",
            anchor(&route.route),
            escape(&route.route)
        );
        if !route.top_differences.is_empty() {
            out.push_str("<table><tr><th class=\"l\">path</th><th>count</th><th>share</th></tr>");
            for path in &route.top_differences {
                let _ = write!(
                    out,
                    "<tr><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(&path.path),
                    path.count,
                    percent(path.share)
                );
            }
            out.push_str("</table>");
        }
        for hidden in &route.hidden {
            let _ = write!(
                out,
                "<p>Hidden by <code>{}</code>: {}</p>",
                escape(&hidden.rule),
                hidden.count
            );
        }
        for example in &route.examples {
            let _ = write!(
                out,
                "<h4>Example {}: <code>{} {}</code> — {} vs {}</h4><p><code>shadowdiff show {} {} {}</code></p><ul>",
                example.id,
                escape(&example.method),
                escape(&example.uri),
                example.primary_status,
                example.secondary_status,
                example.id,
                super::model::store_flag(&example.database),
                escape(&example.database)
            );
            for d in &example.differences {
                let _ = write!(
                    out,
                    "<li><code>{}</code> ({}): {} → {}</li>",
                    escape(&d.place()),
                    escape(&d.kind),
                    escape(d.primary.as_deref().unwrap_or("(none)")),
                    escape(d.secondary.as_deref().unwrap_or("(none)"))
                );
            }
            out.push_str("</ul>");
            if !example.rewrites.is_empty() {
                out.push_str("<p>Rewritten for the secondary:</p><ul>");
                for line in &example.rewrites {
                    let _ = write!(out, "<li><code>{}</code></li>", escape(line));
                }
                out.push_str("</ul>");
            }
            out.push_str(&side_by_side(example));
        }
    }
    if !report.unused_rules.is_empty() {
        let rules: Vec<String> = report
            .unused_rules
            .iter()
            .map(|r| format!("<code>{}</code>", escape(r)))
            .collect();
        let _ = write!(out, "<h2>Unused rules</h2><p>{}</p>", rules.join(", "));
    }
    if let Some(s) = &report.suggestions {
        let _ = write!(
            out,
            "<h2>Suggested rules</h2><p>{} rule(s) suggested, {} path(s) look real.</p>",
            s.rules, s.looks_real
        );
        if !s.top.is_empty() {
            out.push_str("<ul>");
            for line in &s.top {
                let _ = write!(out, "<li>{}</li>", escape(line));
            }
            out.push_str("</ul>");
        }
        let _ = write!(
            out,
            "<p>Run <code>{}</code> for the config.</p>",
            escape(&s.command)
        );
    }
    out.push_str("</body></html>\n");
    out
}

/// An id attribute value for a route: letters and digits kept, the rest as dashes.
fn anchor(route: &str) -> String {
    let mut id = String::from("route-");
    id.extend(
        route
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
    );
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{fffd}"
        );
        assert_eq!(anchor("GET /users/{id}"), "route-GET--users--id-");
    }

    #[test]
    fn long_timelines_are_merged_into_spans() {
        let points: Vec<TimelinePoint> = (0..1000)
            .map(|i| TimelinePoint {
                minute: format!("m{i}"),
                matched: 3,
                mismatched: 1,
                mismatch_rate: 0.25,
            })
            .collect();
        let merged = downsample(&points);
        assert!(merged.len() <= MAX_CHART_POINTS);
        assert_eq!(merged[0].minute, "m0");
        assert_eq!(merged.iter().map(|p| p.mismatched).sum::<u64>(), 1000);
        assert!(merged.iter().all(|p| p.mismatch_rate == 0.25));
        let long = "x".repeat(MAX_LINE_CHARS + 10);
        assert_eq!(diff_line(&long).chars().count(), MAX_LINE_CHARS + 1);
    }
}
