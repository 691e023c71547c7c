//! `shadowdiff diff A B` through the real binary: exit codes like diff(1), both file forms,
//! rules from a config file, both output formats, and clear errors.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn diff(args: &[&std::ffi::OsStr]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("diff")
        .args(args)
        .assert()
}

#[test]
fn equal_json_bodies_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", r#"{"a":1,"b":[1,2]}"#);
    let b = write(dir.path(), "b.json", "{\"b\": [1, 2], \"a\": 1.0}\n");
    let out = diff(&[a.as_os_str(), b.as_os_str()]).code(0);
    assert_eq!(String::from_utf8_lossy(&out.get_output().stdout), "match\n");
}

#[test]
fn different_bodies_exit_1_and_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", r#"{"user":{"name":"ann"}}"#);
    let b = write(dir.path(), "b.json", r#"{"user":{"name":"bob"}}"#);
    let out = diff(&[a.as_os_str(), b.as_os_str()]).code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains(r#"body/user/name (changed): "ann" -> "bob""#),
        "{stdout}"
    );
}

#[test]
fn captured_responses_and_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.json",
        r#"{"status": 200, "headers": {"content-type": "application/json", "date": "Mon"}, "body": {"id": 1, "at": "2024-01-01T00:00:00Z"}}"#,
    );
    let b = write(
        dir.path(),
        "b.json",
        r#"{"status": 404, "headers": {"date": "Tue"}, "body": "{\"id\": 1, \"at\": \"2025-02-02T10:00:00Z\"}"}"#,
    );
    let config = write(
        dir.path(),
        "rules.toml",
        "[compare]\nmask = [\"timestamp\"]\n",
    );
    let out = diff(&[
        a.as_os_str(),
        b.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .code(1);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["match"], false);
    let paths: Vec<&str> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    // B names no content-type: a difference of its own; its body is still sniffed as JSON.
    assert_eq!(paths, ["status", "headers.content-type"]);
    assert_eq!(report["hidden"][0]["rule"], "mask timestamp");
    assert_eq!(report["hidden"][0]["count"], 1);
}

#[test]
fn route_rules_apply_with_route_flag() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", r#"{"etag":"x","v":1}"#);
    let b = write(dir.path(), "b.json", r#"{"etag":"y","v":1}"#);
    let config = write(
        dir.path(),
        "rules.toml",
        "[[route]]\npattern = \"GET /users/{id}\"\nignore = [\"body/etag\"]\n",
    );
    let base: [&std::ffi::OsStr; 4] = [
        a.as_os_str(),
        b.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    diff(&base).code(1);
    let mut with_route = base.to_vec();
    with_route.extend([
        std::ffi::OsStr::new("--route"),
        std::ffi::OsStr::new("GET /users/42"),
    ]);
    let out = diff(&with_route).code(0);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("hidden by rule `GET /users/{id}: ignore body/etag`: 1"),
        "{stdout}"
    );
}

#[test]
fn text_bodies_show_a_unified_diff() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.txt", "one\ntwo\nthree\n");
    let b = write(dir.path(), "b.txt", "one\n2\nthree\n");
    let out = diff(&[a.as_os_str(), b.as_os_str()]).code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("-two\n+2\n"), "{stdout}");
}

#[test]
fn errors_exit_2_and_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", "{}");
    let missing = dir.path().join("missing.json");
    let out = diff(&[a.as_os_str(), missing.as_os_str()]).code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("missing.json"));

    let bad = write(
        dir.path(),
        "bad.toml",
        "[compare]\nmask = [{ regex = \"(\" }]\n",
    );
    let out = diff(&[
        a.as_os_str(),
        a.as_os_str(),
        "--config".as_ref(),
        bad.as_os_str(),
    ])
    .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("bad.toml:2") && stderr.contains("compare.mask.regex"),
        "{stderr}"
    );

    let out = diff(&[
        a.as_os_str(),
        a.as_os_str(),
        "--format".as_ref(),
        "xml".as_ref(),
    ])
    .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("--format"));

    let out = diff(&[
        a.as_os_str(),
        a.as_os_str(),
        "--route".as_ref(),
        "users".as_ref(),
    ])
    .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("--route"));

    let status = write(dir.path(), "s.json", r#"{"status": 99, "body": "x"}"#);
    let out = diff(&[a.as_os_str(), status.as_os_str()]).code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("status 99"));
}

#[test]
fn inline_json_bodies_keep_huge_integers_exact() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.json",
        r#"{"status": 200, "body": {"n": 123456789012345678901234567890}}"#,
    );
    let b = write(
        dir.path(),
        "b.json",
        r#"{"status": 200, "body": {"n": 123456789012345678901234567891}}"#,
    );
    let out = diff(&[a.as_os_str(), b.as_os_str()]).code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains(
            "body/n (changed): 123456789012345678901234567890 -> 123456789012345678901234567891"
        ),
        "{stdout}"
    );
}

/// Issue 14: a reader that stops early (`diff A B | head`) made diff exit 2; the verdict
/// (1: the bodies differ) must stand.
#[test]
fn diff_into_a_closed_pipe_keeps_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", r#"{"user":{"name":"ann"}}"#);
    let b = write(dir.path(), "b.json", r#"{"user":{"name":"bob"}}"#);
    for (format, code) in [("text", 1), ("json", 1)] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("shadowdiff"))
            .arg("diff")
            .args([a.as_os_str(), b.as_os_str()])
            .args(["--format", format])
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "--format {format}: {err}");
        assert!(err.is_empty(), "{err}");
    }
}
