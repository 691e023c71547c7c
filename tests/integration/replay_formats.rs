//! Access logs (nginx/Apache combined and common, Envoy's default) and GoReplay `.gor`
//! captures replayed through the real binary against real local servers: exact counts,
//! skips by reason, the targets the servers receive exactly as logged, `file:LINE` for a
//! bad line, `--format` over detection, and `--rate original` (order only, no timing).

use crate::support::replay as replay_support;

use assert_cmd::Command;
use replay_support::{fixture, Servers};
use std::path::Path;

fn replay_cmd(servers: &Servers, dir: &Path, input: &Path) -> Command {
    let mut cmd = Command::cargo_bin("shadowdiff").unwrap();
    cmd.arg("replay")
        .arg("--primary")
        .arg(servers.primary_url())
        .arg("--secondary")
        .arg(servers.secondary_url())
        .arg("--db")
        .arg(dir.join("out.db"))
        .arg("--input")
        .arg(input)
        // One worker: the servers see the file's order.
        .arg("--concurrency")
        .arg("1");
    cmd
}

/// Runs to the end; returns stderr, after checking the exit code.
fn run(cmd: &mut Command, code: i32) -> String {
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    stderr
}

fn targets(received: &[replay_support::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect()
}

#[test]
fn an_access_log_replays_its_bodiless_requests_as_logged() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(
        &mut replay_cmd(&servers, dir.path(), &fixture("access.log")),
        0,
    );
    assert!(
        stderr.contains("replay done: 8 requests: 4 matched, 1 mismatched, 0 errors, 3 skipped"),
        "{stderr}"
    );
    let report = crate::support::report_json(&dir.path().join("out.db"));
    let skipped = &report["summary"]["skipped_by_reason"];
    assert_eq!(skipped["body_not_recorded"], 2, "{report:#}");
    assert_eq!(skipped["method_not_shadowed"], 1, "{report:#}");
    let expected = [
        "GET /items/1?sort=price%20asc&page=2",
        "HEAD /items/2",
        "GET /diff/3?q=%C3%A9t%C3%A9",
        "OPTIONS /items",
        "GET /status/500",
    ];
    assert_eq!(targets(&servers.primary_received()), expected);
    assert_eq!(targets(&servers.secondary_received()), expected);
    let first = &servers.primary_received()[0];
    assert_eq!(
        first.headers["user-agent"],
        "Mozilla/5.0 (X11; Linux x86_64)"
    );
    assert_eq!(first.headers["referer"], "https://shop.example/");
    assert_eq!(first.headers["x-shadowdiff"], "replay");
    assert!(first.body.is_empty());
    // A logged "-" is no header at all.
    assert!(servers.primary_received()[2]
        .headers
        .get("user-agent")
        .is_none());
}

#[test]
fn shadow_writes_sends_trace_but_never_a_logged_write_without_its_body() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(
        replay_cmd(&servers, dir.path(), &fixture("access.log")).arg("--shadow-writes"),
        0,
    );
    assert!(
        stderr.contains("replay done: 8 requests: 5 matched, 1 mismatched, 0 errors, 2 skipped"),
        "{stderr}"
    );
    let methods: Vec<_> = servers
        .secondary_received()
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(methods, ["GET", "HEAD", "GET", "OPTIONS", "TRACE", "GET"]);
}

#[test]
fn an_envoy_log_replays_with_its_user_agent() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(
        &mut replay_cmd(&servers, dir.path(), &fixture("envoy.log")),
        0,
    );
    assert!(
        stderr.contains("replay done: 4 requests: 2 matched, 1 mismatched, 0 errors, 1 skipped"),
        "{stderr}"
    );
    let received = servers.primary_received();
    assert_eq!(
        targets(&received),
        ["GET /items/1?expand=orders", "GET /diff/2", "HEAD /items/3"]
    );
    assert_eq!(received[0].headers["user-agent"], "curl/8.5.0");
    assert_eq!(received[1].headers["user-agent"], "Mozilla/5.0");
    let report = crate::support::report_json(&dir.path().join("out.db"));
    assert_eq!(
        report["summary"]["skipped_by_reason"]["body_not_recorded"], 1,
        "{report:#}"
    );
}

#[test]
fn a_gor_capture_replays_its_requests_with_their_bodies() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(
        &mut replay_cmd(&servers, dir.path(), &fixture("sample.gor")),
        0,
    );
    // Three requests (the responses are not requests): POST and PUT are writes.
    assert!(
        stderr.contains("replay done: 3 requests: 1 matched, 0 mismatched, 0 errors, 2 skipped"),
        "{stderr}"
    );
    let received = servers.primary_received();
    assert_eq!(targets(&received), ["GET /items/1?page=2&sort=name%20desc"]);
    let traces: Vec<_> = received[0].headers.get_all("x-trace").iter().collect();
    assert_eq!(traces, ["a", "b"]);

    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let stderr = run(
        replay_cmd(&servers, dir.path(), &fixture("sample.gor")).arg("--shadow-writes"),
        0,
    );
    assert!(
        stderr.contains("replay done: 3 requests: 2 matched, 1 mismatched, 0 errors, 0 skipped"),
        "{stderr}"
    );
    let received = servers.secondary_received();
    assert_eq!(
        targets(&received),
        [
            "GET /items/1?page=2&sort=name%20desc",
            "POST /orders",
            "PUT /diff/blob"
        ]
    );
    assert_eq!(received[1].body, r#"{"sku":42}"#);
    // The chunked body arrives decoded, framed by the client.
    assert_eq!(received[2].body, "hello world");
    assert!(received[2].headers.get("transfer-encoding").is_none());
    assert_eq!(received[2].headers["content-length"], "11");
}

#[test]
fn a_bad_line_exits_2_naming_file_and_line_in_every_format() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("bad-access.log");
    std::fs::write(
        &access,
        concat!(
            "192.0.2.1 - - [21/Nov/2026:09:00:00 +0000] \"GET /items/1 HTTP/1.1\" 200 1\n",
            "\n",
            "192.0.2.1 - - [21/Nov/2026:09:00:01 +0000] \"-\" 400 0 \"-\" \"-\"\n",
            "192.0.2.1 - - [21/Nov/2026:09:00:02 +0000] \"GET /items/3 HTTP/1.1\" 200 1\n",
        ),
    )
    .unwrap();
    let envoy = dir.path().join("bad-envoy.log");
    std::fs::write(
        &envoy,
        concat!(
            "[2026-11-21T09:00:00.000Z] \"GET /items/1 HTTP/1.1\" 200 - 0 1 1 1 \"-\" \"-\" \"-\" \"h\" \"-\"\n",
            "[2026-11-21T09:00:00.100Z] \"GET /a/../../etc/passwd HTTP/1.1\" 200 - 0 1 1 1 \"-\" \"-\" \"-\" \"h\" \"-\"\n",
        ),
    )
    .unwrap();
    let gor = dir.path().join("bad.gor");
    std::fs::write(
        &gor,
        concat!(
            "1 0a 1795770000000000000 0\nGET /items/1 HTTP/1.1\r\n\r\n\n🐵🙈🙉\n",
            "1 0b 1795770000000000001 0\nPOST /orders HTTP/1.1\r\nContent-Length: 50\r\n\r\ncut short\n🐵🙈🙉\n",
        ),
    )
    .unwrap();
    for (input, line, problem) in [
        (&access, 3, "the request is logged as \"-\""),
        (&envoy, 2, "is refused"),
        (&gor, 6, "shorter than its Content-Length 50"),
    ] {
        let stderr = run(&mut replay_cmd(&servers, dir.path(), input), 2);
        let expected = format!("shadowdiff: {}:{line}: ", input.display());
        assert!(
            stderr.contains(&expected) && stderr.contains(problem),
            "{stderr}"
        );
    }
    // With --skip-invalid the rest of the access log is replayed.
    let stderr = run(
        replay_cmd(&servers, dir.path(), &access).arg("--skip-invalid"),
        0,
    );
    assert!(
        stderr.contains("replay done: 2 requests: 2 matched, 0 mismatched, 0 errors, 0 skipped, 1 invalid lines skipped"),
        "{stderr}"
    );
}

#[test]
fn format_overrides_what_the_name_says_and_an_unknown_file_exits_2() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    // An access log under a JSON Lines name: the name wins unless --format says otherwise.
    let misnamed = dir.path().join("traffic.jsonl");
    std::fs::copy(fixture("access.log"), &misnamed).unwrap();
    let stderr = run(&mut replay_cmd(&servers, dir.path(), &misnamed), 2);
    assert!(
        stderr.contains(&format!("{}:1: not a JSON object", misnamed.display())),
        "{stderr}"
    );
    let stderr = run(
        replay_cmd(&servers, dir.path(), &misnamed).args(["--format", "access-log"]),
        0,
    );
    assert!(
        stderr.contains("replay done: 8 requests: 4 matched"),
        "{stderr}"
    );

    // A file neither its name nor its first line identifies.
    let unknown = dir.path().join("capture.txt");
    std::fs::write(&unknown, "GET /items/1 HTTP/1.1\nHost: a\n").unwrap();
    let before = servers.primary_received().len();
    let stderr = run(&mut replay_cmd(&servers, dir.path(), &unknown), 2);
    assert!(
        stderr.contains(&unknown.display().to_string()) && stderr.contains("--format"),
        "{stderr}"
    );
    assert_eq!(servers.primary_received().len(), before);

    // A bad --format value is a usage error.
    let output = replay_cmd(&servers, dir.path(), &unknown)
        .args(["--format", "pcap"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn rate_original_replays_in_file_order_and_repeats() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    // The Envoy log spans half a second, with one timestamp out of order.
    let stderr = run(
        replay_cmd(&servers, dir.path(), &fixture("envoy.log"))
            .args(["--rate", "original", "--repeat", "2"]),
        0,
    );
    assert!(
        stderr.contains("replay done: 8 requests: 4 matched, 2 mismatched, 0 errors, 2 skipped"),
        "{stderr}"
    );
    let once = ["GET /items/1?expand=orders", "GET /diff/2", "HEAD /items/3"];
    let twice: Vec<_> = once.iter().chain(once.iter()).copied().collect();
    assert_eq!(targets(&servers.primary_received()), twice);

    // Every format with timestamps: a .gor capture too, and JSON Lines.
    for input in [fixture("sample.gor"), fixture("sample.jsonl")] {
        run(
            replay_cmd(&servers, dir.path(), &input).args(["--rate", "original"]),
            0,
        );
    }
    let output = replay_cmd(&servers, dir.path(), &fixture("envoy.log"))
        .args(["--rate", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("original"));
}
