//! HTML: one self-contained page (no fonts, images or scripts fetched: its one small
//! script, which sorts the route table, is inline), so it can be attached to a CI run and
//! opened offline. The markup is also well-formed XML, which keeps it checkable by any XML
//! parser.

use super::diffview::{DiffView, DIFF_CSS};
use super::model::{Example, Report, TimelinePoint};
use super::text::{latency, percent, reasons};
use std::fmt::Write;

/// Rows of the side-by-side diff shown per example; `show` prints everything.
const MAX_DIFF_ROWS: usize = 200;
/// Bars the chart draws at most before it picks the next coarser bucket.
const MAX_BARS: usize = 120;
/// The chart's buckets, finest first: per minute (the store's own resolution), then ten
/// minutes, hours, days and weeks.
const BUCKETS_MS: [i64; 5] = [60_000, 600_000, 3_600_000, 86_400_000, 7 * 86_400_000];

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td.l,th.l{text-align:left}.bad{color:#b00}.ok{color:#070}
table.sortable th{cursor:pointer;user-select:none}table.sortable th[aria-sort=ascending]::after{content:' \\25B2'}table.sortable th[aria-sort=descending]::after{content:' \\25BC'}
details.route{margin:.5em 0}details.route>summary{cursor:pointer}details.route>summary h3{display:inline}
.chart-note{color:#555;font-size:.9em}
.gate-fail{color:#b00;font-weight:bold}.gate-pass{color:#070;font-weight:bold}
code{background:#f4f4f4;padding:0 .2em}";

/// Sorts a `table.sortable` by the clicked header (again: the other way), numerically
/// where the header says `data-type="num"` (a cell's `data-v` holds its number), and opens
/// the folded route a link points to. Inside CDATA so the page stays well-formed XML.
const SCRIPT: &str = r#"<script>//<![CDATA[
(function(){
function key(row,i,num){var c=row.cells[i];if(!c)return num?-Infinity:'';var v=c.getAttribute('data-v');if(v===null)v=c.textContent;if(!num)return v.toLowerCase();var n=parseFloat(v);return isNaN(n)?-Infinity:n;}
Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){
var heads=t.tHead.rows[0].cells;
Array.prototype.forEach.call(heads,function(th,i){th.addEventListener('click',function(){
var num=th.getAttribute('data-type')==='num',dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',dir===1?'ascending':'descending');
var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a,i,num),y=key(b,i,num);return (x<y?-1:(x>y?1:0))*dir;});
rows.forEach(function(r){body.appendChild(r);});});});});
function reveal(){var id=location.hash.slice(1);var el=id?document.getElementById(id):null;if(el&&el.tagName==='DETAILS'){el.open=true;}}
window.addEventListener('hashchange',reveal);reveal();
})();
//]]></script>"#;

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

/// The chart's bucket for a span: the finest of [`BUCKETS_MS`] that needs at most
/// [`MAX_BARS`] bars, or whole weeks beyond that.
fn bucket_for(span_ms: i64) -> i64 {
    let bars = |bucket: i64| (span_ms.max(1) + bucket - 1) / bucket;
    BUCKETS_MS
        .into_iter()
        .find(|&bucket| bars(bucket) <= MAX_BARS as i64)
        .unwrap_or_else(|| {
            let week = BUCKETS_MS[BUCKETS_MS.len() - 1];
            week * (bars(week) + MAX_BARS as i64 - 1) / MAX_BARS as i64
        })
}

/// Buckets of a chart in seconds, for a run of up to ten minutes.
const SECOND_BUCKETS_MS: [i64; 5] = [1_000, 5_000, 10_000, 30_000, 60_000];

/// The finest of [`SECOND_BUCKETS_MS`] that needs at most [`MAX_BARS`] bars.
fn second_bucket_for(span_ms: i64) -> i64 {
    let bars = |bucket: i64| (span_ms.max(1) + bucket - 1) / bucket;
    SECOND_BUCKETS_MS
        .into_iter()
        .find(|&bucket| bars(bucket) <= MAX_BARS as i64)
        .unwrap_or(60_000)
}

/// One bar: the compared requests of one bucket.
#[derive(Debug, PartialEq)]
struct Bar {
    start_ms: i64,
    matched: u64,
    mismatched: u64,
}

impl Bar {
    fn rate(&self) -> f64 {
        match self.matched + self.mismatched {
            0 => 0.0,
            n => self.mismatched as f64 / n as f64,
        }
    }
}

/// The timeline's minutes summed into `bucket`-long bars aligned on the epoch (UTC).
fn bars(points: &[TimelinePoint], bucket: i64) -> Vec<Bar> {
    let mut bars: Vec<Bar> = Vec::new();
    for point in points {
        let start_ms = point.at_ms.div_euclid(bucket) * bucket;
        match bars.last_mut() {
            Some(bar) if bar.start_ms == start_ms => {
                bar.matched += point.matched;
                bar.mismatched += point.mismatched;
            }
            _ => bars.push(Bar {
                start_ms,
                matched: point.matched,
                mismatched: point.mismatched,
            }),
        }
    }
    bars
}

/// A UTC time as the axis labels it for `bucket`: seconds for the run's own start and end
/// (`bucket` 0), minutes for minute buckets, the date once bars are hours or longer.
fn axis_time(ms: i64, bucket: i64) -> String {
    let Some(at) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    let format = match bucket {
        b if b < 60_000 => "%H:%M:%S",
        b if b < 3_600_000 => "%H:%M",
        b if b < 86_400_000 => "%m-%d %H:%M",
        _ => "%Y-%m-%d",
    };
    at.format(format).to_string()
}

fn bucket_name(bucket: i64) -> String {
    match bucket {
        1_000 => "second".into(),
        b if b < 60_000 => format!("{} seconds", b / 1000),
        60_000 => "minute".into(),
        600_000 => "10 minutes".into(),
        3_600_000 => "hour".into(),
        86_400_000 => "day".into(),
        b if b % 86_400_000 == 0 => format!("{} days", b / 86_400_000),
        b => format!("{} minutes", b / 60_000),
    }
}

fn duration_text(ms: i64) -> String {
    let secs = (ms.max(0) + 500) / 1000;
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", (s + 30) / 60),
        s if s < 2 * 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

/// The mismatch rate over time as an inline SVG bar chart whose bucket fits the run: per
/// minute up to two hours, then ten minutes, hours (a day is 24 bars), days, weeks. The
/// store counts per minute, so finer is not possible: a run shorter than a few minutes
/// gets one bar per minute, with its own start and end marked in seconds on the axis.
fn chart(
    minutes: &[TimelinePoint],
    seconds: &[TimelinePoint],
    span_ms: Option<(i64, i64)>,
) -> String {
    // A short run's per-second counts when the store has them (schema 5 on), else minutes.
    let fine = !seconds.is_empty();
    let (points, step) = match fine {
        true => (seconds, 1000),
        false => (minutes, 60_000),
    };
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return "<p>No comparisons in range.</p>".into();
    };
    let data_start = first.at_ms;
    let data_end = last.at_ms.saturating_add(step);
    // The runs' own times, within the counted minutes (a --since cut or a run's idle
    // tail lies outside them).
    let (start, end) = match span_ms {
        Some((start, end)) => {
            let start = start.clamp(data_start, data_end);
            (start, end.clamp(start, data_end))
        }
        None => (data_start, data_end),
    };
    let bucket = match fine {
        true => second_bucket_for(end - start),
        false => bucket_for(end - start),
    };
    let bars = bars(points, bucket);
    let t0 = data_start.div_euclid(bucket) * bucket;
    let t1 = (data_end + bucket - 1).div_euclid(bucket) * bucket;
    let (width, height) = (640.0, 190.0);
    let (left, right, top_pad, bottom) = (44.0, 16.0, 26.0, 34.0);
    let plot_w = width - left - right;
    let plot_h = height - top_pad - bottom;
    let x = |t: i64| left + plot_w * (t - t0) as f64 / (t1 - t0).max(1) as f64;
    let base = height - bottom;
    let top = bars.iter().map(Bar::rate).fold(0.0_f64, f64::max).max(0.01);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-size=\"10\" role=\"img\" aria-label=\"mismatch rate per {}\">",
        escape(&bucket_name(bucket))
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{r}\" y2=\"{base}\" stroke=\"#888\"/><line x1=\"{left}\" y1=\"{top_pad}\" x2=\"{left}\" y2=\"{base}\" stroke=\"#888\"/>\
<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{}</text><text x=\"{lx}\" y=\"{base}\" text-anchor=\"end\">0%</text>",
        escape(&percent(top)),
        r = width - right,
        lx = left - 4.0,
        ty = top_pad + 4.0,
    );
    for bar in &bars {
        let (x0, x1) = (x(bar.start_ms), x(bar.start_ms + bucket));
        let w = (x1 - x0 - 1.0).max(1.0);
        let h = plot_h * bar.rate() / top;
        let end_ms = bar.start_ms + bucket;
        let _ = write!(
            svg,
            "<g><title>{} to {} UTC: {} mismatched ({} of {})</title><rect x=\"{x0:.1}\" y=\"{top_pad}\" width=\"{w:.1}\" height=\"{plot_h}\" fill=\"#f2f2f2\"/><rect class=\"bar\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#b00\"/></g>",
            escape(&super::model::timestamp(bar.start_ms)),
            escape(&axis_time(end_ms, bucket)),
            percent(bar.rate()),
            bar.mismatched,
            bar.matched + bar.mismatched,
            base - h,
        );
    }
    // Labels at the bucket edges, at most about six of them.
    let edges = ((t1 - t0) / bucket) as usize;
    let step = edges.div_ceil(6).max(1);
    for i in (0..=edges).step_by(step) {
        let t = t0 + i as i64 * bucket;
        let anchor = match i {
            0 => "start",
            i if i == edges => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{base}\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"#888\"/><text x=\"{px:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            base + 4.0,
            base + 15.0,
            escape(&axis_time(t, bucket)),
            px = x(t),
        );
    }
    if !fine && bucket == BUCKETS_MS[0] && end - start < 10 * 60_000 {
        // A short run: where it started and ended, to the second, above the bars.
        for (t, label, anchor) in [(start, "start", "end"), (end, "end", "start")] {
            let _ = write!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{base}\" stroke=\"#06c\" stroke-dasharray=\"3,2\"/><text x=\"{px:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"#06c\">{label} {}</text>",
                top_pad - 6.0,
                top_pad - 9.0,
                escape(&axis_time(t, 0)),
                px = x(t),
            );
        }
    }
    svg.push_str("</svg>");
    let per = bucket_name(bucket);
    let day = |ms| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let mut note = format!(
        "Mismatch rate per {per} (UTC), {} to {} ({}).",
        day(start),
        day(end),
        duration_text(end - start)
    );
    if !fine && bucket == BUCKETS_MS[0] && end - start < 10 * 60_000 {
        note.push_str(" The store counts per minute, so a run this short gets one bar per minute; the dashed lines mark its start and end.");
    }
    let _ = write!(svg, "<p class=\"chart-note\">{}</p>", escape(&note));
    svg
}

/// The two bodies side by side, as [`DiffView`] lays them out.
fn side_by_side(example: &Example) -> String {
    let mut paths: Vec<&str> = Vec::new();
    for d in &example.differences {
        paths.push(&d.path);
        paths.extend(d.to.as_deref());
    }
    let mut view = DiffView::from_stored(
        &example.primary_headers,
        &example.primary_body,
        &example.secondary_headers,
        &example.secondary_body,
        &paths,
    );
    let cut = view.rows().len() > MAX_DIFF_ROWS;
    view.limit_rows(MAX_DIFF_ROWS);
    let mut out = view.to_html();
    if cut {
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
        "<style>{STYLE}\n{DIFF_CSS}</style></head><body><h1>shadowdiff report</h1>"
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
        chart(&report.timeline, &report.seconds, report.span_ms)
    );
    out.push_str("<h2>Routes</h2><table class=\"sortable\" id=\"routes\"><thead><tr><th class=\"l\">route</th><th data-type=\"num\">requests</th><th data-type=\"num\">matched</th><th data-type=\"num\">mismatched</th><th data-type=\"num\">errors</th><th data-type=\"num\">skipped</th><th data-type=\"num\">mismatch rate</th><th data-type=\"num\">primary p50/p95/p99 ms</th><th data-type=\"num\">secondary p50/p95/p99 ms</th></tr></thead><tbody>");
    for route in &report.routes {
        let c = &route.counts;
        // Latencies sort by their p50, the first number shown; a leg without any, first.
        let p50 = |p: &Option<super::model::Percentiles>| match p {
            Some(p) => p.p50_ms.to_string(),
            None => "-1".into(),
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\"><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\" data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td></tr>",
            anchor(&route.route),
            escape(&route.route),
            c.requests,
            c.matched,
            c.mismatched,
            c.errors,
            c.skipped,
            if c.mismatched > 0 { "bad" } else { "ok" },
            c.mismatch_rate,
            percent(c.mismatch_rate),
            p50(&route.latency.primary),
            latency(&route.latency.primary),
            p50(&route.latency.secondary),
            latency(&route.latency.secondary)
        );
    }
    out.push_str("</tbody></table>");
    for route in &report.routes {
        // Routes with mismatches start open; the rest fold away until clicked or linked.
        let _ = write!(
            out,
            "<details class=\"route\" id=\"{}\"{}><summary><h3>{}</h3> — {} requests, {} mismatched ({})</summary>",
            anchor(&route.route),
            if route.counts.mismatched > 0 { " open=\"open\"" } else { "" },
            escape(&route.route),
            route.counts.requests,
            route.counts.mismatched,
            percent(route.counts.mismatch_rate)
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
        out.push_str("</details>");
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
    out.push_str(SCRIPT);
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

    /// A point per minute from `start_ms` for `minutes` minutes, 3 matched and 1 not.
    fn minutes(start_ms: i64, minutes: i64) -> Vec<TimelinePoint> {
        (0..minutes)
            .map(|i| {
                let at_ms = (start_ms / 60_000 + i) * 60_000;
                TimelinePoint {
                    minute: super::super::model::timestamp(at_ms),
                    at_ms,
                    matched: 3,
                    mismatched: 1,
                    mismatch_rate: 0.25,
                }
            })
            .collect()
    }

    /// 2026-01-01T10:00:00Z
    const T: i64 = 1_767_261_600_000;

    #[test]
    fn the_bucket_fits_the_span() {
        let minute = 60_000;
        assert_eq!(bucket_for(25_000), minute);
        assert_eq!(bucket_for(90 * minute), minute);
        assert_eq!(bucket_for(5 * 60 * minute), 10 * minute);
        assert_eq!(
            bucket_for(24 * 60 * minute),
            60 * minute,
            "a day is 24 hour bars"
        );
        assert_eq!(bucket_for(30 * 1440 * minute), 1440 * minute);
        let years = bucket_for(3 * 365 * 1440 * minute);
        assert!(
            3 * 365 * 1440 * minute / years <= MAX_BARS as i64,
            "{years}"
        );
    }

    #[test]
    fn a_short_run_with_per_second_counts_is_charted_in_seconds() {
        // 25 seconds from 10:00:40 with traffic in 5 of them.
        let start = T + 40_000;
        let seconds: Vec<TimelinePoint> = [0, 3, 7, 12, 24]
            .iter()
            .map(|s| TimelinePoint {
                minute: String::new(),
                at_ms: start + s * 1000,
                matched: 3,
                mismatched: 1,
                mismatch_rate: 0.25,
            })
            .collect();
        let svg = chart(&minutes(start, 2), &seconds, Some((start, start + 25_000)));
        assert_eq!(svg.matches("class=\"bar\"").count(), 5, "{svg}");
        assert!(svg.contains("per second"), "{svg}");
        assert!(svg.contains(">10:00:40<"), "{svg}");
        assert_eq!(second_bucket_for(25_000), 1_000);
        assert_eq!(second_bucket_for(9 * 60_000), 5_000);
    }

    #[test]
    fn long_timelines_are_summed_into_coarser_bars() {
        let points = minutes(T, 1000);
        let bars = bars(&points, bucket_for(1000 * 60_000));
        assert!(bars.len() <= MAX_BARS, "{}", bars.len());
        assert_eq!(bars.iter().map(|b| b.mismatched).sum::<u64>(), 1000);
        assert!(bars.iter().all(|b| b.rate() == 0.25));
        let svg = chart(&points, &[], Some((T, T + 1000 * 60_000)));
        assert!(svg.contains("per 10 minutes"), "{svg}");
    }

    #[test]
    fn a_short_run_gets_minute_bars_and_its_times_in_seconds_never_a_dot() {
        // 25 seconds from 10:00:40, across a minute boundary: two bars.
        let start = T + 40_000;
        let points = minutes(start, 2);
        let svg = chart(&points, &[], Some((start, start + 25_000)));
        assert_eq!(svg.matches("class=\"bar\"").count(), 2, "{svg}");
        assert!(!svg.contains("<circle"));
        assert!(svg.contains("start 10:00:40"), "{svg}");
        assert!(svg.contains("end 10:01:05"), "{svg}");
        assert!(svg.contains(">10:00<") && svg.contains(">10:02<"), "{svg}");
        assert!(svg.contains("(25 s)"), "{svg}");
        // A run still going (no end) ends at its last counted minute.
        let svg = chart(&minutes(T, 1), &[], None);
        assert_eq!(svg.matches("class=\"bar\"").count(), 1);
    }

    #[test]
    fn a_day_is_drawn_in_hours_with_dates() {
        let points = minutes(T, 24 * 60);
        let svg = chart(&points, &[], Some((T, T + 24 * 3_600_000)));
        assert!(svg.contains("per hour"), "{svg}");
        assert_eq!(svg.matches("class=\"bar\"").count(), 24);
        assert!(
            svg.contains(">01-01 10:00<") && svg.contains(">01-02 10:00<"),
            "{svg}"
        );
        assert!(!svg.contains("stroke-dasharray") && !svg.contains("start 10"));
    }
}
