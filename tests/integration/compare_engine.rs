//! Table-driven cases for every difference kind and every rule of the compare engine,
//! through its public interface: a [`Comparator`] compiled from TOML text.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use shadowdiff::compare::{Comparator, DiffKind, RulesConfig, Verdict};
use shadowdiff::config::FileConfig;
use shadowdiff::exchange::Captured;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Name, primary body, secondary body, expected (path, kind) differences.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, DiffKind)],
);

fn comparator(toml: &str) -> Comparator {
    let file = FileConfig::parse(Path::new("rules.toml"), toml).expect("test config parses");
    Comparator::new(&RulesConfig {
        compare: file.compare,
        routes: file.route,
        source: None,
        recorded_redactions: false,
    })
    .expect("test rules compile")
}

fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Captured {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    Captured {
        trailers: Default::default(),
        status: StatusCode::from_u16(status).unwrap(),
        headers: map,
        body: body.into(),
        latency: Duration::ZERO,
    }
}

fn json(body: &str) -> Captured {
    response(
        200,
        &[("content-type", "application/json")],
        body.to_string(),
    )
}

fn found(verdict: &Verdict) -> Vec<(String, DiffKind)> {
    verdict
        .differences
        .iter()
        .map(|d| (d.path.clone(), d.kind))
        .collect()
}

fn hidden(verdict: &Verdict) -> Vec<(String, u64)> {
    verdict
        .hidden
        .iter()
        .map(|h| (h.rule.clone(), h.count))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn json_bodies_without_rules() {
    use DiffKind::*;
    let cases: &[Case] = &[
        (
            "equal after key reorder",
            r#"{"a":1,"b":2}"#,
            r#"{"b":2,"a":1}"#,
            &[],
        ),
        (
            "whitespace only",
            r#"{"a":[1,2]}"#,
            "{ \"a\" : [ 1 , 2 ] }\n",
            &[],
        ),
        (
            "nested change",
            r#"{"a":{"b":{"c":1}}}"#,
            r#"{"a":{"b":{"c":2}}}"#,
            &[("body/a/b/c", Changed)],
        ),
        (
            "added key",
            r#"{"a":1}"#,
            r#"{"a":1,"b":2}"#,
            &[("body/b", Added)],
        ),
        (
            "removed key",
            r#"{"a":1,"b":2}"#,
            r#"{"a":1}"#,
            &[("body/b", Removed)],
        ),
        (
            "null against missing",
            r#"{"a":null}"#,
            r#"{}"#,
            &[("body/a", Removed)],
        ),
        (
            "null against value",
            r#"{"a":null}"#,
            r#"{"a":0}"#,
            &[("body/a", Type)],
        ),
        (
            "number against string",
            r#"{"a":1}"#,
            r#"{"a":"1"}"#,
            &[("body/a", Type)],
        ),
        ("1 equals 1.0", r#"{"a":1}"#, r#"{"a":1.0}"#, &[]),
        ("1e2 equals 100", r#"[1e2]"#, r#"[100]"#, &[]),
        (
            "huge integers equal",
            r#"[123456789012345678901234567890]"#,
            r#"[123456789012345678901234567890]"#,
            &[],
        ),
        (
            "huge integers differ in the last digit",
            r#"[123456789012345678901234567890]"#,
            r#"[123456789012345678901234567891]"#,
            &[("body/0", Changed)],
        ),
        (
            "u64 max against one more",
            r#"[18446744073709551615]"#,
            r#"[18446744073709551616]"#,
            &[("body/0", Changed)],
        ),
        (
            "unicode keys and values",
            r#"{"ключ":"värde","名前":"太郎"}"#,
            r#"{"名前":"次郎","ключ":"värde"}"#,
            &[("body/名前", Changed)],
        ),
        (
            "pointer escapes in keys",
            r#"{"a/b":1,"c~d":1}"#,
            r#"{"a/b":2,"c~d":2}"#,
            &[("body/a~1b", Changed), ("body/c~0d", Changed)],
        ),
        (
            "array order matters by default: a permutation is one difference",
            r#"[1,2]"#,
            r#"[2,1]"#,
            &[("body", Reordered)],
        ),
        (
            "array order and content both differ: index by index",
            r#"[1,2]"#,
            r#"[3,1]"#,
            &[("body/0", Changed), ("body/1", Changed)],
        ),
        (
            "array element added",
            r#"[1]"#,
            r#"[1,2]"#,
            &[("body/1", Added)],
        ),
        (
            "array element removed",
            r#"[1,2]"#,
            r#"[1]"#,
            &[("body/1", Removed)],
        ),
        ("object against array", r#"{}"#, r#"[]"#, &[("body", Type)]),
        (
            "invalid JSON on one side",
            r#"{"a":1}"#,
            r#"{"a":1"#,
            &[("body", Type)],
        ),
        ("empty against JSON", "", r#"{"a":1}"#, &[("body", Added)]),
        ("JSON against empty", r#"{"a":1}"#, "", &[("body", Removed)]),
        ("both empty", "", "", &[]),
        (
            "booleans",
            r#"[true]"#,
            r#"[false]"#,
            &[("body/0", Changed)],
        ),
    ];
    let engine = comparator("");
    for (name, a, b, want) in cases {
        let verdict = engine.compare("GET /x", &json(a), &json(b));
        let want: Vec<(String, DiffKind)> = want.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        assert_eq!(found(&verdict), want, "case: {name}");
    }
}

#[test]
fn differences_carry_both_values() {
    let verdict = comparator("").compare(
        "GET /x",
        &json(r#"{"n":1,"s":"x"}"#),
        &json(r#"{"n":2,"s":"y"}"#),
    );
    let rendered: Vec<String> = verdict.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        rendered,
        [
            "body/n (changed): 1 -> 2",
            r#"body/s (changed): "x" -> "y""#
        ]
    );
}

#[test]
fn json_is_sniffed_when_the_type_is_missing_or_generic() {
    let engine = comparator("");
    for headers in [
        &[][..],
        &[("content-type", "application/octet-stream")][..],
        &[("content-type", "text/plain")][..],
    ] {
        let a = response(200, headers, r#"{"a":1,"b":2}"#);
        let b = response(200, headers, r#"{"b":2, "a":1}"#);
        assert!(engine.compare("GET /x", &a, &b).is_match(), "{headers:?}");
    }
}

#[test]
fn unordered_arrays() {
    use DiffKind::*;
    let config = r#"
        [compare]
        unordered = ["body/tags", { path = "body/items", key = "id" }, "body/rows"]
    "#;
    let cases: &[Case] = &[
        (
            "reordered scalars",
            r#"{"tags":["a","b","c"]}"#,
            r#"{"tags":["c","a","b"]}"#,
            &[],
        ),
        (
            "multiset counts duplicates",
            r#"{"tags":["a","a","b"]}"#,
            r#"{"tags":["a","b","b"]}"#,
            &[("body/tags/1", Changed)],
        ),
        (
            "extra element",
            r#"{"tags":["a"]}"#,
            r#"{"tags":["b","a"]}"#,
            &[("body/tags/0", Added)],
        ),
        (
            "keyed reorder",
            r#"{"items":[{"id":1,"p":5},{"id":2,"p":6}]}"#,
            r#"{"items":[{"id":2,"p":6},{"id":1,"p":5}]}"#,
            &[],
        ),
        (
            "keyed reorder with a changed field stays precise",
            r#"{"items":[{"id":1,"p":5},{"id":2,"p":6}]}"#,
            r#"{"items":[{"id":2,"p":7},{"id":1,"p":5}]}"#,
            &[("body/items/1/p", Changed)],
        ),
        (
            "keyed missing and extra",
            r#"{"items":[{"id":1},{"id":2}]}"#,
            r#"{"items":[{"id":3},{"id":1}]}"#,
            &[("body/items/1", Removed), ("body/items/0", Added)],
        ),
        (
            "unkeyed objects reordered",
            r#"{"rows":[{"a":1},{"a":2}]}"#,
            r#"{"rows":[{"a":2},{"a":1}]}"#,
            &[],
        ),
        (
            "unkeyed objects, one changed, stays precise",
            r#"{"rows":[{"a":1,"b":1},{"a":2,"b":2}]}"#,
            r#"{"rows":[{"a":2,"b":2},{"a":1,"b":9}]}"#,
            &[("body/rows/0/b", Changed)],
        ),
        (
            "other arrays stay ordered",
            r#"{"other":[1,2]}"#,
            r#"{"other":[2,1]}"#,
            &[("body/other", Reordered)],
        ),
    ];
    let engine = comparator(config);
    for (name, a, b, want) in cases {
        let verdict = engine.compare("GET /x", &json(a), &json(b));
        let want: Vec<(String, DiffKind)> = want.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        assert_eq!(found(&verdict), want, "case: {name}");
    }
}

#[test]
fn unordered_rules_count_the_reorderings_they_hide() {
    let engine = comparator(
        r#"
        [compare]
        unordered = ["body/tags", { path = "body/items", key = "id" }, "body/never"]
        "#,
    );
    let verdict = engine.compare(
        "GET /x",
        &json(r#"{"tags":["a","b"],"items":[{"id":1},{"id":2}]}"#),
        &json(r#"{"tags":["b","a"],"items":[{"id":2},{"id":1}]}"#),
    );
    assert!(verdict.is_match(), "{verdict:?}");
    assert_eq!(
        hidden(&verdict),
        [
            ("unordered body/tags".to_string(), 1),
            ("unordered body/items by id".to_string(), 1)
        ]
    );
    let in_order = engine.compare(
        "GET /x",
        &json(r#"{"tags":["a","b"]}"#),
        &json(r#"{"tags":["a", "b"]}"#),
    );
    assert!(in_order.hidden.is_empty());
}

#[test]
fn ignore_rules_hide_and_count() {
    let engine = comparator(
        r#"
        [compare]
        ignore = ["body/**/updated_at", "body/meta"]
        "#,
    );
    let verdict = engine.compare(
        "GET /x",
        &json(r#"{"updated_at":1,"a":{"updated_at":1,"x":1},"meta":{"t":1,"u":1}}"#),
        &json(r#"{"updated_at":2,"a":{"updated_at":2,"x":2},"meta":{"t":2,"u":2}}"#),
    );
    assert_eq!(
        found(&verdict),
        [("body/a/x".to_string(), DiffKind::Changed)]
    );
    assert_eq!(
        hidden(&verdict),
        [
            ("ignore body/**/updated_at".to_string(), 2),
            ("ignore body/meta".to_string(), 2)
        ]
    );
    assert_eq!(
        engine.rule_ids(),
        ["ignore body/**/updated_at", "ignore body/meta"]
    );
}

#[test]
fn masks_presets_and_regexes() {
    let engine = comparator(
        r#"
        [compare]
        mask = ["uuid", "timestamp", "hex-id", { regex = "req-[0-9]+", replace = "req-N" }]
        "#,
    );
    let verdict = engine.compare(
        "GET /x",
        &json(r#"{"id":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","at":"2024-01-02T03:04:05Z","log":"10/Oct/2000:13:55:36 -0700 ok","h":"0123456789abcdef01","r":"req-1","name":"a"}"#),
        &json(r#"{"id":"9a2504e0-4f89-11d3-9a0c-0305e82c33ff","at":"2025-11-12T13:14:15.123+01:00","log":"11/Nov/2001:01:02:03 +0000 ok","h":"fedcba98765432100f","r":"req-22","name":"b"}"#),
    );
    assert_eq!(
        found(&verdict),
        [("body/name".to_string(), DiffKind::Changed)]
    );
    assert_eq!(
        hidden(&verdict),
        [
            ("mask uuid".to_string(), 1),
            ("mask timestamp".to_string(), 2),
            ("mask hex-id".to_string(), 1),
            ("mask /req-[0-9]+/ -> req-N".to_string(), 1),
        ]
    );
}

#[test]
fn masks_apply_to_text_bodies() {
    let engine = comparator("[compare]\nmask = [\"uuid\"]\n");
    let text = |id: &str| {
        response(
            200,
            &[("content-type", "text/plain; charset=utf-8")],
            format!("hello\nid {id}\n"),
        )
    };
    let verdict = engine.compare(
        "GET /x",
        &text("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        &text("00000000-4f89-11d3-9a0c-0305e82c3301"),
    );
    assert!(verdict.is_match(), "{verdict:?}");
    assert_eq!(hidden(&verdict), [("mask uuid".to_string(), 1)]);
}

#[test]
fn tolerance_for_numbers() {
    let engine = comparator("[compare]\ntolerance = { absolute = 0.01 }\n");
    let verdict = engine.compare("GET /x", &json("[1.000, 2.0]"), &json("[1.005, 2.5]"));
    assert_eq!(found(&verdict), [("body/1".to_string(), DiffKind::Changed)]);
    assert_eq!(
        hidden(&verdict),
        [("tolerance absolute=0.01 relative=0".to_string(), 1)]
    );
    let relative = comparator("[compare]\ntolerance = { relative = 0.001 }\n");
    assert!(relative
        .compare("GET /x", &json("[1000]"), &json("[1000.5]"))
        .is_match());
}

#[test]
fn status_and_headers() {
    use DiffKind::*;
    let engine = comparator("[compare]\nheaders = [\"ETag\", \"x-version\"]\n");
    let a = response(
        200,
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("date", "Mon"),
            ("server", "a"),
            ("etag", "\"1\""),
            ("x-version", "1"),
        ],
        "{}",
    );
    let b = response(
        201,
        &[
            ("content-type", "application/json"),
            ("date", "Tue"),
            ("server", "b"),
            ("etag", "\"2\""),
        ],
        "{}",
    );
    let verdict = engine.compare("GET /x", &a, &b);
    assert_eq!(
        found(&verdict),
        [
            ("status".to_string(), Status),
            ("headers.etag".to_string(), Changed),
            ("headers.x-version".to_string(), Removed)
        ]
    );
    let c = response(200, &[("content-type", "text/html")], "{}");
    let d = response(200, &[("content-type", "application/json")], "{}");
    let verdict = comparator("").compare("GET /x", &c, &d);
    assert_eq!(
        found(&verdict),
        [("headers.content-type".to_string(), Changed)]
    );
}

#[test]
fn text_and_binary_bodies() {
    let engine = comparator("");
    let text = |s: &str| response(200, &[("content-type", "text/plain")], s.to_string());
    let verdict = engine.compare("GET /x", &text("a\nb\nc\n"), &text("a\nB\nc\n"));
    assert_eq!(
        found(&verdict),
        [("body#L2".to_string(), DiffKind::Changed)]
    );
    let unified = verdict.body_diff.expect("a unified diff");
    assert!(
        unified.contains("-b\n") && unified.contains("+B\n"),
        "{unified}"
    );

    let bin = |b: &'static [u8]| response(200, &[("content-type", "image/png")], b);
    let verdict = engine.compare("GET /x", &bin(b"\x89PNG1"), &bin(b"\x89PNG2"));
    assert_eq!(found(&verdict), [("body".to_string(), DiffKind::Binary)]);
    assert!(verdict.differences[0]
        .primary
        .as_deref()
        .unwrap()
        .contains("sha256:"));
}

#[test]
fn content_encodings_and_charsets_are_undone() {
    let engine = comparator("");
    let body = br#"{"name":"caf\u00e9","n":[1,2,3]}"#;
    let plain = response(200, &[("content-type", "application/json")], &body[..]);
    let gz = response(
        200,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        gzip(body),
    );
    assert!(engine.compare("GET /x", &plain, &gz).is_match());

    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(body).unwrap();
    let deflate = response(
        200,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "deflate"),
        ],
        zlib.finish().unwrap(),
    );
    assert!(engine.compare("GET /x", &deflate, &plain).is_match());

    let latin1 = response(
        200,
        &[("content-type", "text/plain; charset=iso-8859-1")],
        &b"caf\xe9\n"[..],
    );
    let utf8 = response(
        200,
        &[("content-type", "text/plain; charset=utf-8")],
        "café\n",
    );
    assert!(engine.compare("GET /x", &latin1, &utf8).is_match());
}

#[test]
fn a_body_that_fails_to_decode_is_its_own_difference() {
    let engine = comparator("");
    let bad = response(
        500,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &b"not gzip"[..],
    );
    let good = json("{}");
    let verdict = engine.compare("GET /x", &good, &bad);
    assert_eq!(
        found(&verdict),
        [
            ("status".to_string(), DiffKind::Status),
            ("body".to_string(), DiffKind::Decode)
        ]
    );
    let unknown = response(
        200,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "lzma"),
        ],
        "{}",
    );
    assert_eq!(
        found(&engine.compare("GET /x", &good, &unknown)),
        [("body".to_string(), DiffKind::Decode)]
    );
}

#[test]
fn route_rules_apply_to_their_route_only() {
    let engine = comparator(
        r#"
        [compare]
        ignore = ["body/t"]

        [[route]]
        pattern = "GET /users/{id}"
        ignore = ["body/name"]

        [[route]]
        pattern = "/orders/**"
        "#,
    );
    assert_eq!(engine.route_of(&Method::GET, "/users/7"), "GET /users/{id}");
    assert_eq!(
        engine.route_of(&Method::POST, "/users/7"),
        "POST /users/{id}"
    );
    assert_eq!(
        engine.route_of(&Method::POST, "/orders/1/lines/2"),
        "POST /orders/**"
    );
    assert_eq!(
        engine.route_of(&Method::GET, "/items/42"),
        "GET /items/{id}"
    );
    let a = json(r#"{"name":"a","t":1}"#);
    let b = json(r#"{"name":"b","t":2}"#);
    let on_route = engine.compare("GET /users/{id}", &a, &b);
    assert!(on_route.is_match(), "{on_route:?}");
    assert_eq!(
        hidden(&on_route),
        [
            ("GET /users/{id}: ignore body/name".to_string(), 1),
            ("ignore body/t".to_string(), 1)
        ]
    );
    let elsewhere = engine.compare("GET /items/{id}", &a, &b);
    assert_eq!(
        found(&elsewhere),
        [("body/name".to_string(), DiffKind::Changed)]
    );
    assert_eq!(
        engine.rule_ids(),
        ["ignore body/t", "GET /users/{id}: ignore body/name"]
    );
}

#[test]
fn bad_rules_fail_at_startup_naming_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[compare]\nignore = [\"body/ok\",\n  \"bodyx/a\"]\n",
            ":3",
            "compare.ignore",
        ),
        (
            "[compare]\n\nmask = [{ regex = \"(unclosed\" }]\n",
            ":3",
            "compare.mask.regex",
        ),
        ("[compare]\nmask = [\"guid\"]\n", ":2", "compare.mask"),
        (
            "[[route]]\npattern = \"GET users/{id}\"\n",
            ":2",
            "route pattern",
        ),
        (
            "[[route]]\npattern = \"/x\"\nunordered = [\"body/i*\"]\n",
            ":3",
            "route.unordered",
        ),
    ];
    for (text, line, key) in cases {
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).unwrap();
        let file = FileConfig::load(&path).unwrap();
        let err = Comparator::new(&RulesConfig {
            compare: file.compare,
            routes: file.route,
            source: Some(path.clone()),
            recorded_redactions: false,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("rules.toml{line}")), "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn brotli_and_zstd_bodies_match_plain_ones() {
    let engine = comparator("");
    let body = br#"{"k":[1,2,3],"s":"text"}"#;
    let plain = response(200, &[("content-type", "application/json")], &body[..]);
    let mut br = Vec::new();
    brotli::BrotliCompress(&mut &body[..], &mut br, &Default::default()).unwrap();
    let br = response(
        200,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
        br,
    );
    assert!(engine.compare("GET /x", &plain, &br).is_match());
    let zst = zstd::encode_all(&body[..], 3).unwrap();
    let zst = response(
        200,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "zstd"),
        ],
        zst,
    );
    assert!(engine.compare("GET /x", &zst, &plain).is_match());
}

#[test]
fn misspelled_rule_keys_are_rejected_with_their_line() {
    for text in [
        "[compare]\nmask = [{ regex = \"x\", replacement = \"y\" }]\n",
        "[compare]\nunordered = [{ path = \"body/a\", keys = \"id\" }]\n",
        "[compare]\nignored = [\"body/a\"]\n",
    ] {
        let err = FileConfig::parse(Path::new("rules.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rules.toml") && err.contains("line 2"),
            "{text}: {err}"
        );
    }
}

#[test]
fn a_global_allow_added_applies_on_routes_with_their_own_table() {
    let engine = comparator(
        r#"
        [compare]
        allow = ["added"]

        [[route]]
        pattern = "GET /users/{id}"
        ignore = ["body/t"]
        "#,
    );
    let a = json(r#"{"name":"a"}"#);
    let b = json(r#"{"name":"a","email":"e@x"}"#);
    let on_route = engine.compare("GET /users/{id}", &a, &b);
    assert!(on_route.is_match(), "{on_route:?}");
    assert_eq!(hidden(&on_route), [("allow added".to_string(), 1)]);
}

#[test]
fn a_header_rename_compares_the_old_name_with_the_new_one() {
    let engine = comparator(
        r#"
        [compare]
        headers = ["x-request-cost"]
        rename = { "headers.x-request-cost" = "headers.x-cost" }
        "#,
    );
    let with = |name: &str, value: &str| {
        response(
            200,
            &[("content-type", "application/json"), (name, value)],
            "{}",
        )
    };
    let old = with("x-request-cost", "3");
    let verdict = engine.compare("GET /x", &old, &with("x-cost", "3"));
    assert!(verdict.is_match(), "{verdict:?}");
    assert_eq!(
        hidden(&verdict),
        [(
            "rename headers.x-request-cost -> headers.x-cost".to_string(),
            1
        )]
    );
    let verdict = engine.compare("GET /x", &old, &with("x-cost", "4"));
    assert_eq!(
        found(&verdict),
        [("headers.x-request-cost".to_string(), DiffKind::Changed)]
    );
    let verdict = engine.compare("GET /x", &old, &with("x-other", "3"));
    assert_eq!(
        found(&verdict),
        [("headers.x-request-cost".to_string(), DiffKind::Removed)],
        "without the new name on the secondary the rename hides nothing"
    );
    assert!(verdict.hidden.is_empty(), "{verdict:?}");
}
