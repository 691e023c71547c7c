//! `show`: one stored mismatch in full, for the person chasing a difference.

use crate::report::diffview::DiffView;
use crate::report::model::timestamp;
use crate::store::read::MismatchRow;
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

/// How `show` lays out the bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShowOptions {
    /// Terminal columns the side-by-side view fits in.
    pub width: usize,
    /// ANSI colours in the side-by-side view.
    pub colour: bool,
}

impl Default for ShowOptions {
    fn default() -> ShowOptions {
        ShowOptions {
            width: 100,
            colour: false,
        }
    }
}

/// The request, the rewrites, both responses' status and headers, the differences, then
/// both bodies side by side ([`DiffView`]).
pub fn render(row: &MismatchRow, options: ShowOptions) -> String {
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
    for (leg, status, latency_us, hs) in [
        (
            "primary",
            row.primary_status,
            row.primary_latency_us,
            &row.primary_headers,
        ),
        (
            "secondary",
            row.secondary_status,
            row.secondary_latency_us,
            &row.secondary_headers,
        ),
    ] {
        let _ = writeln!(
            out,
            "\n== {leg} response ({:.1} ms)\n{status}",
            latency_us as f64 / 1000.0
        );
        headers(&mut out, hs);
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
    let (primary, secondary) = (
        row.primary_body.as_deref().unwrap_or_default(),
        row.secondary_body.as_deref().unwrap_or_default(),
    );
    if primary.is_empty() && secondary.is_empty() {
        let _ = writeln!(out, "\n== bodies\n(both empty)");
        return out;
    }
    let mut paths: Vec<&str> = Vec::new();
    for d in &row.differences {
        paths.push(&d.path);
        paths.extend(d.to.as_deref());
    }
    let view = DiffView::from_stored(
        row.primary_headers.as_deref().unwrap_or_default(),
        primary,
        row.secondary_headers.as_deref().unwrap_or_default(),
        secondary,
        &paths,
    );
    let _ = writeln!(
        out,
        "\n== bodies (pretty-printed, JSON keys sorted; -/+ changed, * a differing path)\n{}",
        view.to_terminal(options.width, options.colour)
            .trim_end_matches('\n')
    );
    out
}
