//! Properties of every parser that reads outside input, on small random inputs (the fuzz
//! targets under `fuzz/` run the same parsers for longer): the JSON tape agrees with
//! serde_json on what is JSON and on which documents are equal; any body compared with
//! itself matches; the JSONL reader never panics and round-trips recorded requests; the
//! HAR reader, the config loader and path patterns never panic.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use shadowdiff::compare::json::Tape;
use shadowdiff::compare::path::{segments, PathPattern};
use shadowdiff::compare::{Comparator, RulesConfig};
use shadowdiff::config::{FileConfig, Overrides, ServeConfig};
use shadowdiff::exchange::RecordedRequest;
use shadowdiff::traffic::har::HarReader;
use shadowdiff::traffic::jsonl::{to_line, JsonLinesReader};
use shadowdiff::traffic::EntryBound;
use shadowdiff::upstream::target::normalize;
use std::path::Path;

fn cases() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Small values over a small alphabet, so that two drawn values are often equal.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..3).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ab\"\\\\/é\u{1F600}\n]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[ab]", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Byte strings made of JSON tokens, valid and not, in any order.
fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just("["),
        Just("]"),
        Just("{"),
        Just("}"),
        Just(","),
        Just(":"),
        Just("\"a\""),
        Just("\""),
        Just("\"\\u00e9\""),
        Just("\"\\x\""),
        Just("0"),
        Just("12"),
        Just("-"),
        Just("-3"),
        Just(".5"),
        Just("e2"),
        Just("true"),
        Just("nul"),
        Just("null"),
        Just(" "),
        Just("\n"),
    ];
    prop::collection::vec(token, 0..12).prop_map(|tokens| tokens.concat().into_bytes())
}

fn engine() -> Comparator {
    Comparator::new(&RulesConfig::default()).unwrap()
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

fn same(engine: &Comparator, a: &[u8], b: &[u8]) -> bool {
    let headers = json_headers();
    let ok = StatusCode::OK;
    engine
        .compare_parts("GET /p", (ok, &headers, a), (ok, &headers, b))
        .is_match()
}

fn recorded_request() -> impl Strategy<Value = RecordedRequest> {
    let method = prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::DELETE),
        Just(Method::from_bytes(b"PURGE").unwrap()),
    ];
    let uri = "/[a-z0-9%._~-]{0,8}(\\?[a-z=&%0-9]{0,8})?";
    let header = ("x-[a-z]{1,4}", "[ -~]{0,8}");
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        "[ -~\n\té]{0,16}".prop_map(String::into_bytes),
    ];
    (method, uri, prop::collection::vec(header, 0..4), body).prop_map(
        |(method, uri, headers, body)| {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
            RecordedRequest {
                method,
                uri: uri.parse().unwrap(),
                headers: map,
                body: Bytes::from(body),
            }
        },
    )
}

/// Lines of `key = value` over the config file's keys and value shapes, with noise.
fn toml_ish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("primary"),
        Just("secondary"),
        Just("listen"),
        Just("sample"),
        Just("sample-by"),
        Just("max-body"),
        Just("secondary-timeout"),
        Just("max-inflight"),
        Just("breaker-threshold"),
        Just("admin"),
        Just("record-max-size"),
        Just("unknown-key"),
    ];
    let value = prop_oneof![
        Just("\"http://127.0.0.1:1\"".to_string()),
        Just("\"https://u:p@127.0.0.1/base\"".to_string()),
        Just("\"1KiB\"".to_string()),
        Just("\"5s\"".to_string()),
        Just("\"header:x-id\"".to_string()),
        Just("[\"body/**\"]".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        "\"[ -~]{0,6}\"",
        "[ -~]{0,6}",
    ];
    let section = prop_oneof![
        Just("[compare]\n"),
        Just("[[route]]\n"),
        Just("[compare.tolerance]\n"),
        Just(""),
    ];
    let rule_key = prop_oneof![
        Just("ignore"),
        Just("unordered"),
        Just("mask"),
        Just("match"),
        Just("\"body/x\""),
    ];
    let line = prop_oneof![
        (key, value.clone()).prop_map(|(k, v)| format!("{k} = {v}\n")),
        (section, rule_key, value).prop_map(|(s, k, v)| format!("{s}{k} = {v}\n")),
        "[ -~\n]{0,12}",
    ];
    prop::collection::vec(line, 0..6).prop_map(|lines| lines.concat())
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn the_tape_accepts_whatever_serde_json_writes(value in json_value()) {
        let compact = serde_json::to_vec(&value).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        prop_assert!(Tape::parse(&compact).is_ok());
        prop_assert!(same(&engine(), &compact, &pretty));
    }

    #[test]
    fn the_tape_and_serde_json_agree_on_what_is_json(bytes in json_ish()) {
        let tape = Tape::parse(&bytes).is_ok();
        let serde = serde_json::from_slice::<Value>(&bytes).is_ok();
        prop_assert_eq!(tape, serde, "{:?}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_diff_and_serde_json_agree_on_which_documents_are_equal(
        a in json_value(),
        b in json_value(),
    ) {
        let (ja, jb) = (serde_json::to_vec(&a).unwrap(), serde_json::to_vec(&b).unwrap());
        prop_assert_eq!(same(&engine(), &ja, &jb), a == b, "{} vs {}", a, b);
    }

    #[test]
    fn any_body_compared_with_itself_matches(bytes in prop_oneof![
        json_ish(),
        prop::collection::vec(any::<u8>(), 0..32),
    ]) {
        prop_assert!(same(&engine(), &bytes, &bytes));
    }

    #[test]
    fn the_jsonl_reader_never_panics_on_random_bytes(
        bytes in prop_oneof![
            json_ish(),
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(
                prop_oneof![
                    Just(&b"{\"method\":\"GET\",\"path\":\"/a\"}"[..]),
                    Just(&b"{\"method\":\"G T\",\"url\":\"x\"}"[..]),
                    Just(&b"\n"[..]),
                    Just(&b"\"headers\":[[\"a\",1]]"[..]),
                    Just(&b"\xff"[..]),
                ],
                0..6,
            ).prop_map(|parts| parts.concat()),
        ],
        bound in 0u64..80,
    ) {
        let bound = EntryBound {
            bytes: bound,
            max_body: 0,
            responses: false,
        };
        let reader = std::io::BufReader::with_capacity(8, &bytes[..]);
        let read = JsonLinesReader::new(Path::new("p.jsonl"), reader, bound).count();
        prop_assert!(read <= bytes.iter().filter(|&&b| b == b'\n').count() + 1);
    }

    #[test]
    fn the_jsonl_reader_round_trips_recorded_requests(
        requests in prop::collection::vec(recorded_request(), 1..5),
    ) {
        let mut text = String::new();
        for request in &requests {
            text.push_str(&to_line(Some("2026-12-01T20:00:00Z"), request));
            text.push('\n');
        }
        let bound = EntryBound::for_max_body(16);
        let read: Vec<_> =
            JsonLinesReader::new(Path::new("p.jsonl"), text.as_bytes(), bound).collect();
        prop_assert_eq!(read.len(), requests.len());
        for (entry, request) in read.iter().zip(&requests) {
            // What comes back is the request as it will be sent: dot segments removed, a
            // target that would leave the base path refused (the request-target rule).
            let entry = match (entry, normalize(request.uri.path_and_query().unwrap().as_str())) {
                (Ok(entry), Ok(target)) => {
                    prop_assert_eq!(entry.request.uri.to_string(), target.into_owned());
                    entry
                }
                (Err(_), Err(_)) => continue,
                (entry, target) => {
                    return Err(TestCaseError::fail(format!("{entry:?} for {target:?}")))
                }
            };
            prop_assert_eq!(entry.ts.as_deref(), Some("2026-12-01T20:00:00Z"));
            prop_assert_eq!(&entry.request.method, &request.method);
            prop_assert_eq!(&entry.request.headers, &request.headers);
            prop_assert_eq!(&entry.request.body, &request.body);
        }
    }

    #[test]
    fn the_har_reader_never_panics(
        bytes in prop_oneof![
            json_ish(),
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(
                prop_oneof![
                    Just("{\"log\":{\"entries\":["),
                    Just("{\"request\":{\"method\":\"GET\",\"url\":\"http://x/a\"}}"),
                    Just("{\"request\":{\"url\":5,\"headers\":[{\"name\":\":a\",\"value\":\"\"}]}}"),
                    Just("{\"postData\":{\"params\":[{\"name\":\"a\"}]}}"),
                    Just(","),
                    Just("]}}"),
                    Just("[[[["),
                ],
                0..8,
            ).prop_map(|parts| parts.concat().into_bytes()),
        ],
        bound in 0u64..200,
    ) {
        let bound = EntryBound {
            bytes: bound,
            max_body: 0,
            responses: false,
        };
        let reader = HarReader::spawn(Path::new("p.har"), std::io::Cursor::new(bytes), bound);
        let _ = reader.count();
    }

    #[test]
    fn the_config_loader_never_panics(text in toml_ish()) {
        let _ = FileConfig::parse(Path::new("p.toml"), &text);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &text).unwrap();
        let loaded = ServeConfig::load(&Overrides::over_file(Some(path)));
        if let Ok(config) = loaded {
            let _ = config.effective(&[]);
            let _ = Comparator::new(&config.rules);
        }
    }

    #[test]
    fn path_pattern_compile_never_panics(
        pattern in "(body|headers|status|headers\\.|x)?([/.*~01a\\\\ ]|\\*\\*){0,10}",
        paths in prop::collection::vec("(body|headers\\.a)?(/[a*~0]{0,2}){0,5}", 0..4),
    ) {
        if let Ok(compiled) = PathPattern::compile(&pattern) {
            for path in &paths {
                let segs = segments(path);
                prop_assert!(!compiled.matches(&segs) || compiled.covers(&segs));
            }
        }
    }
}
