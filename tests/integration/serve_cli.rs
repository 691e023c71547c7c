//! The real `shadowdiff serve` binary: bad input exits 2 naming what is wrong, signals shut
//! it down cleanly, and malformed client requests never take it down.

use crate::support;

use assert_cmd::Command;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn serve(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("serve")
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--primary", "localhost:8080", "--secondary", "http://b"],
            "--primary: relative URL without a scheme",
        ),
        (
            &["--primary", "http://a", "--secondary", "ftp://b"],
            "--secondary: scheme \"ftp\"",
        ),
        (&["--primary", "http://a"], "--secondary: required"),
        (
            &[
                "--primary",
                "http://a",
                "--secondary",
                "http://b",
                "--sample",
                "2",
            ],
            "--sample:",
        ),
        (
            &[
                "--primary",
                "http://a",
                "--secondary",
                "http://b",
                "--max-body",
                "lots",
            ],
            "--max-body:",
        ),
        (
            &[
                "--primary",
                "http://a",
                "--secondary",
                "http://b",
                "--secondary-timeout",
                "soon",
            ],
            "--secondary-timeout:",
        ),
        (
            &[
                "--primary",
                "http://a",
                "--secondary",
                "http://b",
                "--sample-by",
                "cookie:x",
            ],
            "--sample-by:",
        ),
        (
            &[
                "--primary",
                "http://a",
                "--secondary",
                "http://b",
                "--listen",
                "nowhere",
            ],
            "--listen:",
        ),
    ];
    for (args, expected) in cases {
        let output = serve(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn bad_config_file_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow.toml");
    std::fs::write(
        &path,
        "primary = \"http://a\"\nsecondary = \"http://b\"\nsampel = 0.5\n",
    )
    .unwrap();
    let output = serve(&["--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("shadow.toml") && err.contains("line 3") && err.contains("sampel"),
        "{err}"
    );
}

#[test]
fn address_in_use_exits_2_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let output = serve(&[
        "--primary",
        "http://127.0.0.1:1",
        "--secondary",
        "http://127.0.0.1:1",
        "--listen",
        &addr,
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(&addr), "{}", stderr(&output));
}

#[test]
fn unwritable_db_exits_2_before_the_listener_opens() {
    // The listen address is taken too: the error must be about the database, which is
    // checked first.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = serve(&[
        "--primary",
        "http://127.0.0.1:1",
        "--secondary",
        "http://127.0.0.1:1",
        "--listen",
        &addr,
        "--db",
        "/nonexistent-dir/shadowdiff.db",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent-dir/shadowdiff.db"), "{err}");
    assert!(!err.contains(&addr), "{err}");
}

/// The real binary between two upstreams, on ephemeral loopback ports.
fn spawn_serve(primary: &str, secondary: &str, db: &str) -> support::Running {
    support::spawn_serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--primary",
            primary,
            "--secondary",
            secondary,
            "--db",
            db,
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_stores_and_exits_0() {
    let primary = support::fixed(200, "same").await;
    let secondary = support::fixed(200, "same").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut running = spawn_serve(&primary.url(), &secondary.url(), db.to_str().unwrap());
    let listen = running.listen;
    let http = support::client();
    for i in 0..20 {
        let body = http
            .get(format!("http://{listen}/k/{i}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "same");
    }
    running.signal("TERM");
    let status = tokio::task::spawn_blocking(move || running.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["report", "--format", "json", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["summary"]["matched"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_client_request_gets_400_and_the_proxy_stays_up() {
    let primary = support::fixed(200, "fine").await;
    let secondary = support::fixed(200, "fine").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let running = spawn_serve(&primary.url(), &secondary.url(), db.to_str().unwrap());
    let listen = running.listen;
    let response = tokio::task::spawn_blocking({
        move || {
            let mut stream = TcpStream::connect(listen).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream
                .write_all(b"NONSENSE \x01\x02 HTTP/9\r\n\r\n")
                .unwrap();
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response);
            String::from_utf8_lossy(&response).into_owned()
        }
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response:?}");
    let body = support::client()
        .get(format!("http://{listen}/ok"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "fine");
}

/// Issue 14: two rate grammars; `--sample` refused the `5%` that gate thresholds take.
#[test]
fn sample_takes_a_percentage_like_the_gate_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "primary = \"http://a\"\nsecondary = \"http://b\"\n").unwrap();
    let check = |sample: &str| {
        assert_cmd::Command::cargo_bin("shadowdiff")
            .unwrap()
            .args(["config", "check", path.to_str().unwrap()])
            .env("SHADOWDIFF_SAMPLE", sample)
            .output()
            .unwrap()
    };
    let output = check("5%");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.lines().any(|l| l == "sample = 0.05"), "{out}");
    let output = check("150%");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--sample") && err.contains("outside 0..1"),
        "{err}"
    );
}
