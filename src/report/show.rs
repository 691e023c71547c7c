//! `show`: one stored mismatch in full, for the person chasing a difference.

use crate::report::model::timestamp;
use crate::store::read::MismatchRow;
use similar::TextDiff;
use std::fmt::Write;

fn headers(out: &mut String, headers: &Option<Vec<(String, String)>>) {
    for (name, value) in headers.iter().flatten() {
        let _ = writeln!(out, "{name}: {value}");
    }
}

fn body(out: &mut String, body: &Option<Vec<u8>>) {
    if let Some(body) = body {
        if !body.is_empty() {
            let _ = writeln!(
                out,
                "\n{}",
                String::from_utf8_lossy(body).trim_end_matches('\n')
            );
        }
    }
}

pub fn render(row: &MismatchRow) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mismatch {} · run {} · {} · {}",
        row.id,
        row.run_id,
        timestamp(row.at_ms),
        row.route
    );
    let _ = writeln!(out, "\n== request\n{} {}", row.method, row.uri);
    headers(&mut out, &row.request_headers);
    body(&mut out, &row.request_body);
    if !row.rewrites.is_empty() {
        // The request above is the client's, as the primary got it; the secondary got it
        // changed by these, in this order.
        let _ = writeln!(out, "\n== rewritten for the secondary");
        for line in &row.rewrites {
            let _ = writeln!(out, "{line}");
        }
    }
    for (leg, status, latency_us, hs, b) in [
        (
            "primary",
            row.primary_status,
            row.primary_latency_us,
            &row.primary_headers,
            &row.primary_body,
        ),
        (
            "secondary",
            row.secondary_status,
            row.secondary_latency_us,
            &row.secondary_headers,
            &row.secondary_body,
        ),
    ] {
        let _ = writeln!(
            out,
            "\n== {leg} response ({:.1} ms)\n{status}",
            latency_us as f64 / 1000.0
        );
        headers(&mut out, hs);
        body(&mut out, b);
    }
    let _ = writeln!(out, "\n== differences");
    for d in &row.differences {
        let _ = writeln!(
            out,
            "{} ({}): {} -> {}",
            d.place(),
            d.kind,
            d.primary.as_deref().unwrap_or("(none)"),
            d.secondary.as_deref().unwrap_or("(none)")
        );
    }
    if !row.is_example {
        let _ = writeln!(
            out,
            "\n(bodies not kept: past --examples-per-signature or --max-db-size)"
        );
        return out;
    }
    let diff = row.body_diff.clone().unwrap_or_else(|| {
        let primary = String::from_utf8_lossy(row.primary_body.as_deref().unwrap_or_default());
        let secondary = String::from_utf8_lossy(row.secondary_body.as_deref().unwrap_or_default());
        TextDiff::from_lines(primary.as_ref(), secondary.as_ref())
            .unified_diff()
            .context_radius(3)
            .header("primary", "secondary")
            .to_string()
    });
    if !diff.is_empty() {
        let _ = writeln!(out, "\n== body diff\n{diff}");
    }
    out
}
