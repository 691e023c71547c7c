//! What the dashboard page polls: one overview of the store in a window, and one mismatch
//! with its side-by-side diff. Built from the report model, so the page and `report` agree.

use crate::report::diffview::DiffView;
use crate::report::model::{Report, Scope, Summary};
use crate::store::read::{MismatchRow, ReadFilter, StoreReader};
use crate::store::{Location, StoreError};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Minutes of history a route's sparkline spans.
const SPARK_MINUTES: i64 = 30;
/// Latest examples listed.
const LATEST: usize = 20;
/// Paths listed under "top differing paths".
const TOP_PATHS: usize = 10;

/// Why a dashboard read failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}")]
    NotFound(String),
    /// The read could not run (no thread for it, or it stopped): the page retries.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which stretch of the store the overview covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Since this process started (the default).
    SinceStart(i64),
    /// The last this many minutes.
    Last(i64),
    Everything,
}

impl Window {
    pub fn parse(text: Option<&str>, started_ms: i64) -> Result<Window, String> {
        Ok(match text.unwrap_or("start") {
            "start" | "" => Window::SinceStart(started_ms),
            "15m" => Window::Last(15),
            "1h" => Window::Last(60),
            "24h" => Window::Last(24 * 60),
            "all" => Window::Everything,
            other => return Err(format!("window {other:?}: one of start, 15m, 1h, 24h, all")),
        })
    }

    fn since_ms(self, now_ms: i64) -> Option<i64> {
        match self {
            Window::SinceStart(ms) => Some(ms),
            Window::Last(minutes) => Some(now_ms - minutes * 60_000),
            Window::Everything => None,
        }
    }
}

fn now_ms() -> i64 {
    crate::store::millis_since_epoch(std::time::SystemTime::now())
}

/// The summary, routes (with latencies and a sparkline), top paths, latest examples and
/// instances of the store in `window`, for one instance or all.
pub fn overview(
    location: &Location,
    window: Window,
    instance: Option<String>,
) -> Result<Value, DataError> {
    let now = now_ms();
    let reader = StoreReader::open(location.clone())?;
    // The instances offered by the filter are those of the whole window.
    let all = ReadFilter {
        run: None,
        since_ms: window.since_ms(now),
        instance: None,
    };
    let filter = ReadFilter {
        instance: instance.clone(),
        ..all.clone()
    };
    let scope = Scope {
        filter: filter.clone(),
        route: None,
        examples_per_route: 0,
    };
    let report = Report::build(std::slice::from_ref(&reader), &scope)?;
    let instances = if instance.is_some() {
        let whole = Scope {
            filter: all,
            route: None,
            examples_per_route: 0,
        };
        Report::build(std::slice::from_ref(&reader), &whole)?.instances
    } else {
        report.instances.clone()
    };

    // Per route and minute, for the sparklines: the last SPARK_MINUTES minutes up to now.
    let last_minute = now.div_euclid(60_000);
    let first_minute = last_minute - SPARK_MINUTES + 1;
    let mut per_minute: BTreeMap<&str, BTreeMap<i64, (u64, u64)>> = BTreeMap::new();
    let timeline = reader.timeline(&filter)?;
    for (minute, route, outcome, count) in &timeline {
        if *minute < first_minute {
            continue;
        }
        let cell = per_minute
            .entry(route.as_str())
            .or_default()
            .entry(*minute)
            .or_default();
        match outcome {
            Some(crate::store::OutcomeKind::Matched) => cell.0 += count,
            Some(crate::store::OutcomeKind::Mismatched) => cell.1 += count,
            _ => {}
        }
    }
    let spark = |route: &str| -> Vec<Value> {
        (first_minute..=last_minute)
            .map(
                |minute| match per_minute.get(route).and_then(|m| m.get(&minute)) {
                    Some((matched, mismatched)) if matched + mismatched > 0 => {
                        json!(*mismatched as f64 / (matched + mismatched) as f64)
                    }
                    _ => Value::Null,
                },
            )
            .collect()
    };
    let latency = |p: &Option<crate::report::model::Percentiles>| match p {
        Some(p) => json!({ "p50_ms": p.p50_ms, "p95_ms": p.p95_ms, "p99_ms": p.p99_ms }),
        None => Value::Null,
    };
    let routes: Vec<Value> = report
        .routes
        .iter()
        .map(|r| {
            json!({
                "route": r.route,
                "requests": r.counts.requests,
                "matched": r.counts.matched,
                "mismatched": r.counts.mismatched,
                "errors": r.counts.errors,
                "skipped": r.counts.skipped,
                "mismatch_rate": r.counts.mismatch_rate,
                "latency": {
                    "primary": latency(&r.latency.primary),
                    "secondary": latency(&r.latency.secondary),
                },
                "spark": spark(&r.route),
            })
        })
        .collect();
    let mut paths: Vec<(&str, &str, u64)> = report
        .routes
        .iter()
        .flat_map(|r| {
            r.top_differences
                .iter()
                .map(move |p| (r.route.as_str(), p.path.as_str(), p.count))
        })
        .collect();
    paths.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (a.0, a.1).cmp(&(b.0, b.1))));
    let top_paths: Vec<Value> = paths
        .iter()
        .take(TOP_PATHS)
        .map(|(route, path, count)| json!({ "route": route, "path": path, "count": count }))
        .collect();
    let examples: Vec<Value> = reader
        .latest_examples(&filter, LATEST)?
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "at": crate::report::model::timestamp(m.at_ms),
                "route": m.route,
                "method": m.method,
                "uri": m.uri,
                "primary_status": m.primary_status,
                "secondary_status": m.secondary_status,
                "differences": m.differences.len(),
                "first": m.differences.first().map(|d| format!("{} ({})", d.place(), d.kind)),
            })
        })
        .collect();
    Ok(json!({
        "generated_at": crate::report::model::timestamp(now),
        "store": reader.path().display().to_string(),
        "window": match window {
            Window::SinceStart(ms) => json!({ "kind": "start", "since": crate::report::model::timestamp(ms) }),
            Window::Last(minutes) => json!({ "kind": "last", "minutes": minutes }),
            Window::Everything => json!({ "kind": "all" }),
        },
        "instance": instance,
        "summary": summary(&report.summary),
        "routes": routes,
        "spark_from": crate::report::model::timestamp(first_minute * 60_000),
        "top_paths": top_paths,
        "examples": examples,
        "instances": instances
            .iter()
            .map(|i| json!({ "instance": i.instance, "requests": i.counts.requests, "mismatched": i.counts.mismatched }))
            .collect::<Vec<_>>(),
        "notes": report.notes,
    }))
}

fn summary(s: &Summary) -> Value {
    json!({
        "requests": s.counts.requests,
        "matched": s.counts.matched,
        "mismatched": s.counts.mismatched,
        "errors": s.counts.errors,
        "skipped": s.counts.skipped,
        "mismatch_rate": s.counts.mismatch_rate,
        "error_rate": s.counts.error_rate,
        "dropped": s.dropped,
        "lost": s.lost.values().sum::<u64>(),
        "answered_by": s.answered_by,
    })
}

/// One stored mismatch: its request, differences, rewrites and the side-by-side diff of
/// the bodies as stored (redacted).
pub fn mismatch(location: &Location, id: i64) -> Result<Value, DataError> {
    let reader = StoreReader::open(location.clone())?;
    let row = match reader.mismatch(id) {
        Ok(row) => row,
        Err(StoreError::NoSuchMismatch { .. }) => {
            return Err(DataError::NotFound(format!(
                "no mismatch {id} in the store"
            )))
        }
        Err(other) => return Err(other.into()),
    };
    Ok(mismatch_json(&row))
}

fn mismatch_json(row: &MismatchRow) -> Value {
    let paths: Vec<&str> = row.differences.iter().map(|d| d.path.as_str()).collect();
    let diff = row.is_example.then(|| {
        DiffView::from_stored(
            row.primary_headers.as_deref().unwrap_or_default(),
            row.primary_body.as_deref().unwrap_or_default(),
            row.secondary_headers.as_deref().unwrap_or_default(),
            row.secondary_body.as_deref().unwrap_or_default(),
            &paths,
        )
        .to_html()
    });
    json!({
        "id": row.id,
        "run": row.run_id,
        "at": crate::report::model::timestamp(row.at_ms),
        "route": row.route,
        "method": row.method,
        "uri": row.uri,
        "primary_status": row.primary_status,
        "secondary_status": row.secondary_status,
        "primary_latency_ms": row.primary_latency_us as f64 / 1000.0,
        "secondary_latency_ms": row.secondary_latency_us as f64 / 1000.0,
        "differences": row.differences.iter().map(|d| json!({
            "place": d.place(),
            "kind": d.kind,
            "primary": d.primary,
            "secondary": d.secondary,
        })).collect::<Vec<_>>(),
        "rewrites": row.rewrites,
        "diff_html": diff,
    })
}
