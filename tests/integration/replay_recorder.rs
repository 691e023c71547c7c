//! Record, then replay: the upstream receives the recorded requests byte for byte, except
//! secret header values, which the recorder redacts unless told to keep them.

use crate::support::replay as replay_support;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use replay_support::{Received, Servers};
use shadowdiff::exchange::RecordedRequest;
use shadowdiff::redact::REDACTED;
use shadowdiff::traffic::{Recorder, RecorderOptions};

fn originals() -> Vec<RecordedRequest> {
    let mut out = Vec::new();
    for n in 0..5u8 {
        let mut headers = HeaderMap::new();
        headers.append("accept", HeaderValue::from_static("application/json"));
        headers.append("x-seq", HeaderValue::from_str(&n.to_string()).unwrap());
        headers.append("x-multi", HeaderValue::from_static("first"));
        headers.append("x-multi", HeaderValue::from_static("second, with comma"));
        headers.append(
            "authorization",
            HeaderValue::from_static("Bearer top-secret"),
        );
        headers.append("cookie", HeaderValue::from_static("session=abc"));
        let (method, body) = match n {
            0 => (Method::GET, Bytes::new()),
            1 => (
                Method::POST,
                Bytes::from_static(b"{\"json\": [1, 2.50, \"\\u00e9\"]}\n"),
            ),
            2 => (Method::PUT, Bytes::from(vec![0u8, 255, 128, 10, 13, 0])),
            3 => (Method::PATCH, Bytes::from("caf\u{e9} \u{1F600}")),
            _ => (Method::DELETE, Bytes::new()),
        };
        out.push(RecordedRequest {
            method,
            uri: format!("/round/{n}/trip?q=a%20b&q=%C3%A9&empty=")
                .parse()
                .unwrap(),
            headers,
            body,
        });
    }
    out
}

fn record(path: &std::path::Path, keep_secrets: bool) {
    let recorder = Recorder::open(
        path,
        RecorderOptions {
            max_size: None,
            keep_secrets,
            ..RecorderOptions::default()
        },
    )
    .unwrap();
    for request in originals() {
        recorder.record(&request);
    }
    assert_eq!(recorder.dropped(), 0);
    recorder.finish().unwrap();
}

fn replay(servers: &Servers, input: &std::path::Path, dir: &std::path::Path) {
    assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("replay")
        .arg("--input")
        .arg(input)
        .arg("--primary")
        .arg(servers.primary_url())
        .arg("--secondary")
        .arg(servers.secondary_url())
        .arg("--db")
        .arg(dir.join("out.db"))
        .args(["--shadow-writes", "--concurrency", "1", "--quiet"])
        .assert()
        .code(0);
}

fn assert_same(original: &RecordedRequest, received: &Received, secrets_kept: bool) {
    assert_eq!(received.method, original.method);
    assert_eq!(received.uri, original.uri);
    assert_eq!(received.body, original.body, "{}", original.uri);
    for name in original.headers.keys() {
        let sent: Vec<&[u8]> = received
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let expected: Vec<&[u8]> = original
            .headers
            .get_all(name)
            .iter()
            .map(|v| {
                let secret = name == "authorization" || name == "cookie";
                if secret && !secrets_kept {
                    REDACTED.as_bytes()
                } else {
                    v.as_bytes()
                }
            })
            .collect();
        assert_eq!(sent, expected, "header {name}");
    }
}

#[test]
fn recorded_requests_replay_byte_for_byte_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.jsonl");
    record(&file, false);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("top-secret") && !text.contains("session=abc"));
    let servers = Servers::start();
    replay(&servers, &file, dir.path());
    for received in [servers.primary_received(), servers.secondary_received()] {
        assert_eq!(received.len(), 5);
        for (original, got) in originals().iter().zip(&received) {
            assert_same(original, got, false);
        }
    }
}

#[test]
fn record_secrets_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.jsonl");
    record(&file, true);
    let servers = Servers::start();
    replay(&servers, &file, dir.path());
    let received = servers.primary_received();
    assert_eq!(received.len(), 5);
    for (original, got) in originals().iter().zip(&received) {
        assert_same(original, got, true);
    }
}
