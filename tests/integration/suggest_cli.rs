//! `shadowdiff suggest` through the real binary, on a store whose mismatches mix generated
//! noise (fresh UUIDs, timestamps, nonces, reordered lists, float jitter, durations in text
//! lines) with real changes (an email, a count, a status, a renamed field).
use crate::support::store as common;

use assert_cmd::Command;
use common::*;
use shadowdiff::store::StoreOptions;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const USERS: &str = "GET /users/{id}";
const ORDERS: &str = "GET /orders/{id}";
const STATUS: &str = "GET /status";
const EXAMPLES: u64 = 20;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A deterministic scramble, so every generated value is new.
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

fn uuid(n: u64) -> String {
    let (a, b) = (mix(n), mix(n + 1_000_003));
    format!(
        "\"{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}\"",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

fn nonce(n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = mix(n);
    let text: String = (0..22)
        .map(|i| {
            x = mix(x + i);
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect();
    format!("\"{text}\"")
}

fn iso(ms: u128) -> String {
    let at = UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    format!("\"{}\"", humantime::format_rfc3339_millis(at))
}

fn d(
    path: &str,
    kind: &'static str,
    a: String,
    b: String,
) -> (String, &'static str, String, String) {
    (path.to_string(), kind, a, b)
}

fn noisy_db(dir: &Path) -> PathBuf {
    let db = dir.join("noisy.db");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut records = Vec::new();
    for i in 0..EXAMPLES {
        let n = i * 10;
        let mut diffs = vec![
            d("body/id", "changed", uuid(n), uuid(n + 1)),
            d("body/request_id", "changed", uuid(n + 2), uuid(n + 3)),
            d("body/created_at", "changed", iso(now - 5), iso(now - 3)),
            d("body/nonce", "changed", nonce(n), nonce(n + 1)),
            d(
                "body/items",
                "changed",
                r#"[{"id": 1, "tag": "x"}, {"id": 2, "tag": "x"}]"#.into(),
                r#"[{"id": 2, "tag": "x"}, {"id": 1, "tag": "x"}]"#.into(),
            ),
            d(
                "body/score",
                "changed",
                format!("{}.123456789{}", 10 + i, i % 10),
                format!("{}.123456789{}", 10 + i, (i + 3) % 10),
            ),
            d(
                "body/old_name",
                "changed",
                "\"ada\"".into(),
                "\"ada\"".into(),
            ),
            // A secret field, as the store writes it: digests, never the values.
            d(
                "body/token",
                "changed",
                format!("\"[redacted hmac:{:012x}]\"", mix(n) >> 16),
                format!("\"[redacted hmac:{:012x}]\"", mix(n + 1) >> 16),
            ),
        ];
        // Mostly UUIDs, once an email: the path must not be ignored.
        diffs.push(if i == 7 {
            d(
                "body/owner",
                "changed",
                "\"ann@old.test\"".into(),
                "\"ann@new.test\"".into(),
            )
        } else {
            d("body/owner", "changed", uuid(n + 4), uuid(n + 5))
        });
        if i % 4 == 0 {
            diffs.push(d(
                "body/email",
                "changed",
                "\"a@x.test\"".into(),
                "\"b@x.test\"".into(),
            ));
            diffs.push(d("body/count", "changed", "3".into(), "4".into()));
        }
        if i == 5 {
            diffs.push(d("status", "status", "200".into(), "500".into()));
        }
        records.push(with_differences(USERS, &format!("/users/{i}"), &diffs));
        records.push(with_differences(
            ORDERS,
            &format!("/orders/{i}"),
            &[
                d("body/request_id", "changed", uuid(n + 6), uuid(n + 7)),
                d(
                    "body/lines/0/sku",
                    "changed",
                    "\"A-1\"".into(),
                    "\"B-1\"".into(),
                ),
            ],
        ));
        records.push(with_differences(
            STATUS,
            "/status",
            &[d(
                "body#L2",
                "changed",
                format!("request took {}.{}ms", 10 + i, i % 10),
                format!("request took {}.{}ms", 20 + i, (i + 1) % 10),
            )],
        ));
    }
    write(&db, records, StoreOptions::default());
    set_kind(&db, "body/items", "reordered", None);
    set_kind(&db, "body/old_name", "renamed", Some("body/name"));
    db
}

/// Every string a rule list of the config names, by table pattern ("" for `[compare]`).
fn rules_of(config: &str) -> Vec<(String, String, String)> {
    let value: toml::Value = toml::from_str(config).expect("the output is TOML");
    let mut out = Vec::new();
    let mut tables = Vec::new();
    if let Some(compare) = value.get("compare") {
        tables.push((String::new(), compare.clone()));
    }
    for route in value
        .get("route")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let pattern = route["pattern"].as_str().unwrap().to_string();
        tables.push((pattern, route));
    }
    for (pattern, table) in tables {
        for key in ["ignore", "mask", "unordered"] {
            for item in table
                .get(key)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default()
            {
                out.push((pattern.clone(), key.to_string(), item.to_string()));
            }
        }
        if let Some(t) = table.get("tolerance") {
            out.push((pattern.clone(), "tolerance".into(), t.to_string()));
        }
    }
    out
}

#[test]
fn suggest_proposes_rules_for_noise_and_lists_real_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = noisy_db(dir.path());
    let (code, config, stderr) = run(&["suggest", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    if std::env::var_os("SUGGEST_PRINT").is_some() {
        eprintln!("{config}");
    }
    let rules = rules_of(&config);
    let has = |pattern: &str, key: &str, needle: &str| {
        rules
            .iter()
            .any(|(p, k, item)| p == pattern && k == key && item.contains(needle))
    };
    assert!(has(USERS, "ignore", "body/id"), "{config}");
    assert!(has(USERS, "ignore", "body/created_at"), "{config}");
    assert!(has(USERS, "ignore", "body/nonce"), "{config}");
    assert!(has(USERS, "unordered", "body/items"), "{config}");
    assert!(has(USERS, "unordered", "\"id\""), "{config}");
    assert!(has(USERS, "tolerance", "relative"), "{config}");
    assert!(has(STATUS, "mask", "took"), "{config}");
    // The same UUID noise on two routes goes to [compare].
    assert!(has("", "ignore", "body/request_id"), "{config}");
    assert!(config.contains(&format!(
        "# differed in {EXAMPLES} of {EXAMPLES} examples on {USERS}; values look like UUIDs"
    )));
    // Never a rule for a path with a real change.
    for real in [
        "body/email",
        "body/count",
        "status",
        "body/old_name",
        "body/owner",
        "body/lines",
        "body/token",
    ] {
        assert!(
            !rules.iter().any(|(_, _, item)| item.contains(real)),
            "{real} got a rule:\n{config}"
        );
    }
    let real = config
        .split("# looks real")
        .nth(1)
        .expect("a looks-real section");
    for path in [
        "body/email",
        "body/count",
        "status",
        "body/old_name",
        "body/owner",
        "body/lines/0/sku",
    ] {
        assert!(real.contains(path), "{path} not listed as real:\n{config}");
    }
    assert!(real.contains("renamed to body/name"), "{config}");
    let not_judged = config
        .split("# not judged")
        .nth(1)
        .expect("a not-judged section");
    assert!(not_judged.contains("body/token"), "{config}");
    assert!(
        !config.contains("[redacted hmac:"),
        "no digest printed:\n{config}"
    );
}

#[test]
fn suggested_config_passes_config_check_and_write_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = noisy_db(dir.path());
    let file = dir.path().join("suggested.toml");
    let (code, stdout, stderr) = run(&[
        "suggest",
        "--db",
        db.to_str().unwrap(),
        "--write",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("[[route]]"), "{written}");
    let (code, checked, stderr) = run(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}\n{written}");
    assert!(checked.contains("compare rule(s)"), "{checked}");
}

#[test]
fn suggest_route_limits_the_proposals() {
    let dir = tempfile::tempdir().unwrap();
    let db = noisy_db(dir.path());
    let (code, config, stderr) = run(&[
        "suggest",
        "--db",
        db.to_str().unwrap(),
        "--route",
        "GET /orders/*",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(config.contains(ORDERS), "{config}");
    assert!(
        !config.contains(USERS) && !config.contains(STATUS),
        "{config}"
    );
    // On one route only, the UUID noise stays in that route's table.
    assert!(rules_of(&config)
        .iter()
        .any(|(p, k, item)| p == ORDERS && k == "ignore" && item.contains("body/request_id")));
}

#[test]
fn suggest_refuses_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let (code, _, stderr) = run(&["suggest", "--db", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no such file"), "{stderr}");
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "not a database at all, just some text").unwrap();
    let (code, _, stderr) = run(&["suggest", "--db", text.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a shadowdiff database"), "{stderr}");
    let (code, _, stderr) = run(&[
        "suggest",
        "--db",
        missing.to_str().unwrap(),
        "--route",
        "users",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--route"), "{stderr}");
}

#[test]
fn text_and_html_reports_end_with_the_suggestions_in_short() {
    let dir = tempfile::tempdir().unwrap();
    let db = noisy_db(dir.path());
    let (code, text, stderr) = run(&["report", "--db", db.to_str().unwrap(), "--format", "text"]);
    assert_eq!(code, 0, "{stderr}");
    let tail = text
        .split("suggestions: ")
        .nth(1)
        .expect("a suggestions line");
    assert!(tail.contains("look real"), "{text}");
    assert!(tail.contains("ignore body/"), "{text}");
    assert!(
        tail.contains(&format!("run `shadowdiff suggest --db {}`", db.display())),
        "{text}"
    );
    let (code, html, _) = run(&["report", "--db", db.to_str().unwrap(), "--format", "html"]);
    assert_eq!(code, 0);
    assert!(html.contains("<h2>Suggested rules</h2>"), "{html}");
    let (_, json, _) = run(&["report", "--db", db.to_str().unwrap(), "--format", "json"]);
    assert!(!json.contains("suggest"), "JSON stays as it was");
}
