//! Synthetic mismatches for benchmarks and demos: realistic shapes (a handful of routes,
//! recurring difference signatures, JSON bodies) without a proxy in front.

use super::{MismatchDetail, Outcome, Record};
use crate::compare::{DiffKind, Difference};
use crate::exchange::{Captured, RecordedRequest};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use std::time::{Duration, SystemTime};

const ROUTES: usize = 20;
const PATHS: [&str; 6] = [
    "body/price",
    "body/items/0/sku",
    "headers.etag",
    "body/updated_at",
    "status",
    "body/owner/name",
];

/// The `i`-th synthetic mismatch, `spacing` after the previous one starting at `start`:
/// route `i % 20`, one to three differing paths.
pub fn synthetic_mismatch(i: u64, start: SystemTime, spacing: Duration) -> Record {
    let route_index = i as usize % ROUTES;
    let route = format!("GET /resource{route_index}/{{id}}");
    let first = (i / ROUTES as u64) as usize % PATHS.len();
    let count = 1 + (i as usize / 7) % 3;
    let differences = (0..count)
        .map(|k| Difference {
            path: PATHS[(first + k) % PATHS.len()].to_string(),
            kind: DiffKind::Changed,
            primary: Some(format!("{}", i % 1000)),
            secondary: Some(format!("{}", i % 1000 + 1)),
            to: None,
        })
        .collect();
    let body = |price: u64| {
        Bytes::from(format!(
            "{{\"id\": {i},\n\"price\": {price},\n\"items\": [{{\"sku\": \"A-{i}\"}}]}}\n"
        ))
    };
    let captured = |price| Captured {
        trailers: Default::default(),
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: body(price),
        latency: Duration::from_millis(5 + i % 50),
    };
    Record {
        baseline: None,
        count: 1,
        at: start + spacing * (i as u32),
        route,
        outcome: Outcome::Mismatched,
        primary_status: Some(200),
        secondary_status: Some(200),
        primary_latency: Some(Duration::from_millis(5 + i % 50)),
        secondary_latency: Some(Duration::from_millis(8 + i % 70)),
        hidden: Vec::new(),
        mismatch: Some(Box::new(MismatchDetail {
            request: RecordedRequest {
                method: Method::GET,
                uri: format!("/resource{route_index}/{i}")
                    .parse()
                    .expect("a valid path"),
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
            primary: captured(i % 1000),
            secondary: captured(i % 1000 + 1),
            differences,
            body_diff: None,
            rewrites: Vec::new(),
        })),
    }
}

/// A matched request on the same route as [`synthetic_mismatch`] `i`, at the same time.
pub fn synthetic_match(i: u64, start: SystemTime, spacing: Duration) -> Record {
    let mut record = synthetic_mismatch(i, start, spacing);
    record.outcome = Outcome::Matched;
    record.mismatch = None;
    record
}

/// The store benchmark's mismatch (bench/store-pg.sh): two differences with 100-byte values
/// each, on one of 20 routes, at `at`. No bodies are kept beyond the first examples, as in
/// production, so the figure is the writer's rate for what a fleet writes most.
pub fn bench_mismatch(i: u64, at: SystemTime) -> Record {
    let mut record = synthetic_mismatch(i, at, Duration::ZERO);
    let value = |side: char| {
        let mut text = format!("{side}{i:019}");
        while text.len() < 100 {
            text.push_str("-0123456789");
        }
        text.truncate(100);
        text
    };
    if let Some(detail) = record.mismatch.as_mut() {
        detail.differences = ["body/price", "body/owner/name"]
            .into_iter()
            .map(|path| Difference {
                path: path.to_string(),
                kind: DiffKind::Changed,
                primary: Some(value('p')),
                secondary: Some(value('s')),
                to: None,
            })
            .collect();
    }
    record.primary_latency = Some(Duration::from_millis(5 + i % 4));
    record.secondary_latency = Some(Duration::from_millis(8 + i % 4));
    record
}
