//! Known workloads written through the real `StoreWriter`, shared by the store and report
//! tests.
#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use shadowdiff::compare::{DiffKind, Difference, HiddenCount};
use shadowdiff::exchange::{Captured, ErrorKind, Leg, RecordedRequest, SkipReason};
use shadowdiff::store::{MismatchDetail, Outcome, Record, RunInfo, StoreOptions, StoreWriter};
use std::path::Path;
use std::time::{Duration, SystemTime};

pub fn base(route: &str, outcome: Outcome) -> Record {
    Record {
        baseline: None,
        count: 1,
        at: SystemTime::now(),
        route: route.to_string(),
        outcome,
        primary_status: Some(200),
        secondary_status: Some(200),
        primary_latency: Some(Duration::from_millis(10)),
        secondary_latency: Some(Duration::from_millis(20)),
        hidden: Vec::new(),
        mismatch: None,
    }
}

pub fn matched(route: &str) -> Record {
    base(route, Outcome::Matched)
}

pub fn skipped(route: &str, reason: SkipReason) -> Record {
    let mut record = base(route, Outcome::Skipped(reason));
    record.primary_latency = None;
    record.secondary_latency = None;
    record
}

pub fn error(route: &str, kind: ErrorKind) -> Record {
    base(
        route,
        Outcome::Error {
            leg: Leg::Secondary,
            kind,
        },
    )
}

fn captured(status: u16, body: &str) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    Captured {
        trailers: Default::default(),
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: Bytes::from(body.to_string()),
        latency: Duration::from_millis(10),
    }
}

/// A mismatch of `route` differing at each of `paths`.
pub fn mismatched(route: &str, uri: &str, paths: &[&str]) -> Record {
    let mut record = base(route, Outcome::Mismatched);
    let status_differs = paths.contains(&"status");
    record.secondary_status = Some(if status_differs { 500 } else { 200 });
    let method: Method = route.split(' ').next().unwrap().parse().unwrap();
    record.mismatch = Some(Box::new(MismatchDetail {
        request: RecordedRequest {
            method,
            uri: uri.parse().unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        },
        primary: captured(200, "{\"name\": \"ada\",\n\"price\": 1}\n"),
        secondary: captured(
            if status_differs { 500 } else { 200 },
            "{\"name\": \"ada\",\n\"price\": 2}\n",
        ),
        differences: paths
            .iter()
            .map(|path| Difference {
                path: path.to_string(),
                kind: if *path == "status" {
                    DiffKind::Status
                } else {
                    DiffKind::Changed
                },
                primary: Some("1".into()),
                secondary: Some("2".into()),
                to: None,
            })
            .collect(),
        body_diff: None,
        rewrites: Vec::new(),
    }));
    record
}

pub fn with_hidden(mut record: Record, rule: &str, count: u64) -> Record {
    record.hidden.push(HiddenCount {
        rule: rule.into(),
        count,
    });
    record
}

pub fn run_info(rules: &[&str]) -> RunInfo {
    RunInfo {
        mode: "replay".into(),
        primary: "http://old.test".into(),
        secondary: "http://new.test".into(),
        config_digest: "digest".into(),
        rules: rules.iter().map(|r| r.to_string()).collect(),
        instance: String::new(),
        answered_by: Default::default(),
    }
}

/// Writes `records` as one run and returns its id.
pub fn write(
    store: impl Into<shadowdiff::store::Location>,
    records: Vec<Record>,
    options: StoreOptions,
) -> i64 {
    let writer = StoreWriter::open(store, run_info(&["ignore-date", "mask-ids"]), options)
        .expect("opening the store");
    let id = writer.run_id();
    let sender = writer.sender();
    for record in records {
        sender.send(record).unwrap();
    }
    drop(sender);
    writer.finish().expect("finishing the store");
    id
}

/// The standard workload:
/// - `GET /users/{id}`: 90 matched, 10 mismatched (4 at status+body/price, 6 at
///   body/price), 2 secondary timeouts, 5 sampled out; one rule hid 7 differences.
/// - `POST /orders`: 3 skipped as method_not_shadowed.
/// - `GET /health`: 50 matched.
pub fn standard_workload() -> Vec<Record> {
    let users = "GET /users/{id}";
    let mut records = Vec::new();
    for _ in 0..90 {
        records.push(matched(users));
    }
    for i in 0..4 {
        records.push(mismatched(
            users,
            &format!("/users/{i}"),
            &["status", "body/price"],
        ));
    }
    for i in 0..6 {
        records.push(mismatched(users, &format!("/users/{i}"), &["body/price"]));
    }
    records.push(error(users, ErrorKind::Timeout));
    records.push(error(users, ErrorKind::Timeout));
    for _ in 0..5 {
        records.push(skipped(users, SkipReason::SampledOut));
    }
    for _ in 0..3 {
        records.push(skipped("POST /orders", SkipReason::MethodNotShadowed));
    }
    for _ in 0..50 {
        records.push(matched("GET /health"));
    }
    records.push(with_hidden(matched(users), "ignore-date", 7));
    records
}
// (the last record makes GET /users/{id} 91 matched in total)

/// A mismatch of `route` with exactly these differences: (path, kind, primary, secondary).
/// Kinds the engine of this build cannot make yet (`reordered`, `renamed`) are written as
/// `changed` here and set with [`set_kind`] once the store is written.
pub fn with_differences(
    route: &str,
    uri: &str,
    differences: &[(String, &str, String, String)],
) -> Record {
    let mut record = mismatched(route, uri, &[]);
    let detail = record.mismatch.as_mut().unwrap();
    detail.differences = differences
        .iter()
        .map(|(path, kind, primary, secondary)| Difference {
            path: path.clone(),
            kind: match *kind {
                "status" => DiffKind::Status,
                "added" => DiffKind::Added,
                "removed" => DiffKind::Removed,
                _ => DiffKind::Changed,
            },
            primary: Some(primary.clone()),
            secondary: Some(secondary.clone()),
            to: None,
        })
        .collect();
    record
}

/// Rewrites the stored kind (and `to_path`) of every difference at `path`, for the kinds
/// another part of the engine writes.
pub fn set_kind(db: &Path, path: &str, kind: &str, to_path: Option<&str>) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "UPDATE differences SET kind = ?1, to_path = ?2 WHERE path = ?3",
        rusqlite::params![kind, to_path, path],
    )
    .unwrap();
}
