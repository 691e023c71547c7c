//! Properties of the compare engine over arbitrary JSON: a document never differs from
//! itself, and no difference is ever reported at a path an ignore rule covers.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use serde_json::Value;
use shadowdiff::compare::path::{segments, PathPattern};
use shadowdiff::compare::{Comparator, RulesConfig};
use shadowdiff::config::FileConfig;
use shadowdiff::exchange::Captured;
use std::path::Path;
use std::time::Duration;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-cé ]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[abc]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof!["[abc01]", Just("*".to_string()), Just("**".to_string())],
        0..4,
    )
    .prop_map(|segs| {
        let mut p = String::from("body");
        for s in segs {
            p.push('/');
            p.push_str(&s);
        }
        p
    })
}

fn captured(body: String) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    Captured {
        trailers: Default::default(),
        status: StatusCode::OK,
        headers,
        body: Bytes::from(body),
        latency: Duration::ZERO,
    }
}

fn comparator(toml: &str) -> Comparator {
    let file = FileConfig::parse(Path::new("p.toml"), toml).unwrap();
    Comparator::new(&RulesConfig {
        compare: file.compare,
        routes: file.route,
        source: None,
        recorded_redactions: false,
    })
    .unwrap()
}

proptest! {
    #[test]
    fn a_document_never_differs_from_itself(value in json_value()) {
        // Compact against pretty, so the engine parses rather than short-cutting on bytes.
        let engine = comparator("");
        let a = captured(serde_json::to_string(&value).unwrap());
        let b = captured(serde_json::to_string_pretty(&value).unwrap());
        let verdict = engine.compare("GET /x", &a, &b);
        prop_assert!(verdict.is_match(), "{:?}", verdict.differences);
        prop_assert!(verdict.hidden.is_empty());
    }

    #[test]
    fn nothing_is_reported_under_an_ignored_path(
        a in json_value(),
        b in json_value(),
        ignored in pattern(),
        unordered in any::<bool>(),
    ) {
        let mut toml = format!("[compare]\nignore = [{ignored:?}]\n");
        if unordered {
            toml.push_str("unordered = [\"body/**\"]\n");
        }
        let engine = comparator(&toml);
        let verdict = engine.compare(
            "GET /x",
            &captured(a.to_string()),
            &captured(b.to_string()),
        );
        let compiled = PathPattern::compile(&ignored).unwrap();
        for d in &verdict.differences {
            prop_assert!(!compiled.covers(&segments(&d.path)), "{} reported despite {}", d.path, ignored);
        }
    }
}
