//! The `replay` subcommand through the real binary: invalid lines with and without
//! `--skip-invalid`, bad flags, and the plain progress output when stderr is not a TTY.

use crate::support::replay as replay_support;

use assert_cmd::Command;
use replay_support::{fixture, Servers};

fn replay_cmd(servers: &Servers, dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("shadowdiff").unwrap();
    cmd.arg("replay")
        .arg("--primary")
        .arg(servers.primary_url())
        .arg("--secondary")
        .arg(servers.secondary_url())
        .arg("--db")
        .arg(dir.join("out.db"));
    cmd
}

fn with_invalid_lines(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("traffic.jsonl");
    std::fs::write(
        &path,
        concat!(
            "{\"method\":\"GET\",\"path\":\"/items/1\"}\n",
            "{\"method\":\"GET\",\"path\":\"/items/2\"\n",
            "{\"method\":\"GET\",\"path\":\"/diff/3\"}\n",
            "{\"method\":\"GET\",\"path\":\"/a\",\"body\":\"x\",\"body_base64\":\"eA==\"}\n",
            "{\"method\":\"GET\",\"path\":\"/items/5\"}\n",
        ),
    )
    .unwrap();
    path
}

#[test]
fn an_invalid_line_exits_2_naming_file_and_line() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let input = with_invalid_lines(dir.path());
    let output = replay_cmd(&servers, dir.path())
        .arg("--input")
        .arg(&input)
        .arg("--concurrency")
        .arg("1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let expected = format!(
        "shadowdiff: {}:2: EOF while parsing an object",
        input.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // Nothing past the invalid line was sent.
    assert!(servers
        .primary_received()
        .iter()
        .all(|r| r.uri.path() == "/items/1"));
}

#[test]
fn skip_invalid_counts_the_invalid_lines_and_replays_the_rest() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let input = with_invalid_lines(dir.path());
    let output = replay_cmd(&servers, dir.path())
        .arg("--input")
        .arg(&input)
        .arg("--skip-invalid")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "replay done: 3 requests: 2 matched, 1 mismatched, 0 errors, 0 skipped, 2 invalid lines skipped"
        ),
        "{stderr}"
    );
    assert_eq!(servers.primary_received().len(), 3);
}

#[test]
fn quiet_prints_no_progress_only_the_final_report() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let output = replay_cmd(&servers, dir.path())
        .arg("--input")
        .arg(fixture("sample.jsonl"))
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "{:?}", output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("10 requests: 6 matched, 1 mismatched"),
        "{stdout}"
    );
    assert!(!stdout.contains("replay:"), "{stdout}");
}

#[test]
fn bad_flags_and_files_exit_2_with_a_reason() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--input", "/nonexistent/t.jsonl"],
            "/nonexistent/t.jsonl: ",
        ),
        (
            &["--rate", "fast"],
            "--rate: \"fast\" is not a positive number",
        ),
        (&["--concurrency", "0"], "--concurrency"),
        (&["--repeat", "0"], "--repeat"),
        (&["--threads", "0"], "--threads"),
    ];
    for (args, expected) in cases {
        let mut cmd = replay_cmd(&servers, dir.path());
        if !args.contains(&"--input") {
            cmd.arg("--input").arg(fixture("sample.jsonl"));
        }
        let output = cmd.args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(
        !dir.path().join("out.db").exists(),
        "no store for a run that cannot start"
    );
}

#[test]
fn a_har_file_that_is_not_json_exits_2() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("broken.har");
    std::fs::write(&input, "{\"log\": {\"entries\": [ {\"request\": ").unwrap();
    let output = replay_cmd(&servers, dir.path())
        .arg("--input")
        .arg(&input)
        .arg("--skip-invalid")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("broken.har: not a HAR file"), "{stderr}");
}

#[test]
fn upstreams_and_writes_can_come_from_the_config_file() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shadowdiff.toml");
    std::fs::write(
        &config,
        format!(
            "primary = \"{}\"\nsecondary = \"{}\"\nshadow-writes = true\n",
            servers.primary_url(),
            servers.secondary_url()
        ),
    )
    .unwrap();
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("replay")
        .arg("--input")
        .arg(fixture("sample.har"))
        .arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(dir.path().join("out.db"))
        .args(["--rate", "1000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("replay done: 4 requests: 2 matched, 2 mismatched, 0 errors, 0 skipped"),
        "{stderr}"
    );
}

#[test]
fn replay_ends_with_the_report_and_gates_on_thresholds() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("traffic.jsonl");
    std::fs::write(
        &input,
        "{\"method\":\"GET\",\"path\":\"/items/1\"}\n{\"method\":\"GET\",\"path\":\"/diff/3\"}\n",
    )
    .unwrap();
    // Thresholds apply per route: GET /diff/{id} differs every time (rate 1), GET
    // /items/{id} never; a rate equal to its threshold passes.
    for (threshold, code) in [("0", 1), ("1", 0), ("100%", 0), ("0.99", 1)] {
        let run_dir = tempfile::tempdir().unwrap();
        let output = replay_cmd(&servers, run_dir.path())
            .arg("--quiet")
            .arg("--input")
            .arg(&input)
            .arg("--max-mismatch-rate")
            .arg(threshold)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(code), "{threshold}: {stdout}");
        assert!(stdout.contains("GET /diff/{id}"), "{stdout}");
        assert!(
            stdout.contains("2 requests: 1 matched, 1 mismatched"),
            "{stdout}"
        );
    }
}

/// Issue 14: `show` on a replayed mismatch printed the Host the traffic was recorded
/// with, not the one replay sent to the primary.
#[test]
fn show_on_a_replayed_mismatch_prints_the_host_the_primary_got() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("traffic.jsonl");
    std::fs::write(
        &traffic,
        "{\"method\":\"GET\",\"path\":\"/diff/1\",\"headers\":{\"host\":\"recorded.example\"}}\n",
    )
    .unwrap();
    let output = replay_cmd(&servers, dir.path())
        .arg("--input")
        .arg(&traffic)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got = servers.primary_received();
    assert_eq!(got.len(), 1);
    let sent = got[0].headers["host"].to_str().unwrap().to_string();
    assert_eq!(sent, servers.primary.to_string());
    let shown = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["show", "--db"])
        .arg(dir.path().join("out.db"))
        .arg("1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{text}");
    assert!(!text.contains("recorded.example"), "{text}");
    assert!(text.contains(&sent), "{text}");
}
