//! The JSON tape parser and the structural diff on arbitrary bytes: parsing never panics,
//! a document never differs from itself, and diffing two arbitrary documents (JSON or
//! not, through the same body decoding serve uses) never panics.
#![no_main]

use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use shadowdiff::compare::json::Tape;
use shadowdiff::compare::{Comparator, RulesConfig};
use std::sync::OnceLock;

fn comparator() -> &'static Comparator {
    static ENGINE: OnceLock<Comparator> = OnceLock::new();
    ENGINE.get_or_init(|| Comparator::new(&RulesConfig::default()).expect("no rules compile"))
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

fuzz_target!(|data: &[u8]| {
    // One input is two documents: primary before the first 0xff byte (never in UTF-8),
    // secondary after it.
    let (a, b) = match data.iter().position(|&byte| byte == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    let parsed = Tape::parse(a).is_ok();
    if !parsed {
        let _ = shadowdiff::compare::json::describe_invalid(a);
    }
    let engine = comparator();
    let headers = json_headers();
    let ok = StatusCode::OK;
    let same = engine.compare_parts("GET /f", (ok, &headers, a), (ok, &headers, a));
    assert!(
        same.is_match(),
        "a document differs from itself: {:?}",
        same.differences
    );
    let _ = engine.compare_parts("GET /f", (ok, &headers, a), (ok, &headers, b));
});
