//! Issue 12, bug 2: no request leaves the configured base path, on any leg, in serve and in
//! replay. Both upstreams are real servers on 127.0.0.1:0 that record the path they
//! received, configured as `http://127.0.0.1:P/api/v2`. Requests are written byte for byte
//! on a `TcpStream`, because HTTP clients normalize dot segments before sending.
//!
//! https upstreams go through the same code: every leg builds its target with
//! `Upstream::url_for` (pooled client, http and https alike) or `Upstream::origin_form`
//! (replay's direct connections), and both refuse or normalize through the one check in
//! `shadowdiff::upstream::target` (the unit test `targets_outside_the_base_path_are_never_built`
//! builds an https URL); one test below also runs the secondary behind TLS.

use crate::support;

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The hostile targets of the issue; each must be answered 400 and reach no upstream.
const HOSTILE: [&str; 8] = [
    "/../../admin/secret",
    "/%2e%2e/%2E%2E/admin",
    "/./../..",
    "/..;/admin",
    "/a%2fb",
    "/a%5cb",
    "/a\\b",
    "/%252e%252e/",
];

async fn recording() -> Backend {
    backend(|_| async { text(200, "ok") }).await
}

/// Sends `head` as written and reads the whole answer (the request asks to close).
async fn raw(proxy: &Proxy, head: &str) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the proxy answered and closed")
}

async fn get(proxy: &Proxy, target: &str) -> String {
    raw(
        proxy,
        &format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
    )
    .await
}

fn paths(backend: &Backend) -> Vec<String> {
    backend
        .received()
        .iter()
        .map(|r| r.uri.path_and_query().unwrap().to_string())
        .collect()
}

fn report(db: &Path) -> Value {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["report", "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_never_escape_the_base_path_on_either_leg() {
    let primary = recording().await;
    let secondary = recording().await;
    let (config, dir) = config(
        &format!("{}/api/v2", primary.url()),
        &format!("{}/api/v2", secondary.url()),
    );
    let proxy = start(config, dir).await;

    for target in HOSTILE {
        let response = get(&proxy, target).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{target}: {response}");
    }
    // An upgrade request is refused the same way before it could become a tunnel.
    let response = raw(
        &proxy,
        "GET /../ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade, close\r\nupgrade: echo\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("request target refused"), "{response}");

    // Removable dot segments are removed; the query and other encodings are kept.
    let response = get(&proxy, "/a/./b/../c?q=/../x&e=%41").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let db = proxy.stop().await;

    let want = vec!["/api/v2/a/c?q=/../x&e=%41".to_string()];
    assert_eq!(paths(&primary), want, "primary");
    assert_eq!(paths(&secondary), want, "secondary");

    let report = report(&db);
    assert_eq!(report["summary"]["matched"], 1, "{report:#}");
    // Every hostile request is counted as refused, the upgrade one included.
    let refused: u64 = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["skipped_by_reason"]["refused"].as_u64())
        .sum();
    assert_eq!(refused, HOSTILE.len() as u64 + 1, "{report:#}");
    let matched = report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["matched"] == 1)
        .unwrap();
    assert_eq!(matched["route"], "GET /a/c", "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_paths_never_escape_the_base_path() {
    let primary = recording().await;
    let secondary = recording().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("traffic.jsonl");
    let mut lines = String::from("{\"method\":\"GET\",\"path\":\"/a/./b/../c\"}\n");
    for target in HOSTILE {
        lines.push_str(&serde_json::json!({"method": "GET", "path": target}).to_string());
        lines.push('\n');
    }
    lines.push_str("{\"method\":\"GET\",\"url\":\"http://old.test/x/%2E%2E/y\"}\n");
    std::fs::write(&input, lines).unwrap();

    let replay = |extra: &'static [&'static str], db: &'static str| {
        let mut cmd = Command::cargo_bin("shadowdiff").unwrap();
        cmd.arg("replay")
            .arg("--primary")
            .arg(format!("{}/api/v2", primary.url()))
            .arg("--secondary")
            .arg(format!("{}/api/v2", secondary.url()))
            .arg("--db")
            .arg(dir.path().join(db))
            .arg("--input")
            .arg(&input)
            .args(["--concurrency", "1"])
            .args(extra)
            .timeout(Duration::from_secs(60));
        cmd
    };

    // Without --skip-invalid the first hostile line (line 2) stops the run with exit 2.
    let mut strict = replay(&[], "strict.db");
    let output = tokio::task::spawn_blocking(move || strict.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:2: ", input.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("climbs above its root"), "{stderr}");

    let mut lenient = replay(&["--skip-invalid"], "lenient.db");
    let output = tokio::task::spawn_blocking(move || lenient.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{} invalid lines skipped", HOSTILE.len())),
        "{stderr}"
    );

    for backend in [&primary, &secondary] {
        let mut seen = paths(backend);
        seen.sort();
        seen.dedup();
        assert_eq!(seen, ["/api/v2/a/c", "/api/v2/y"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn har_entries_never_escape_the_base_path() {
    let primary = recording().await;
    let secondary = recording().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("traffic.har");
    let entry =
        |url: &str| serde_json::json!({"request": {"method": "GET", "url": url, "headers": []}});
    let har = serde_json::json!({"log": {"version": "1.2", "entries": [
        entry("http://old.test/a/./b/../c"),
        entry("http://old.test/%2e%2e/admin"),
    ]}});
    std::fs::write(&input, har.to_string()).unwrap();
    let mut cmd = Command::cargo_bin("shadowdiff").unwrap();
    cmd.arg("replay")
        .arg("--primary")
        .arg(format!("{}/api/v2", primary.url()))
        .arg("--secondary")
        .arg(format!("{}/api/v2", secondary.url()))
        .arg("--db")
        .arg(dir.path().join("out.db"))
        .arg("--input")
        .arg(&input)
        .args(["--concurrency", "1"])
        .timeout(Duration::from_secs(60));
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:entry 2: ", input.display());
    assert!(stderr.contains(&expected), "{stderr}");
    for backend in [&primary, &secondary] {
        assert!(
            paths(backend).iter().all(|p| p == "/api/v2/a/c"),
            "{:?}",
            paths(backend)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_secondary_gets_the_normalized_path_and_nothing_hostile() {
    // The https secondary: a second shadowdiff with a self-signed certificate for
    // localhost, shadowing nothing, in front of a recording backend.
    let behind_tls = recording().await;
    let (mut front, front_dir) = config(&behind_tls.url(), &behind_tls.url());
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = shadowdiff::config::TlsFiles {
        cert: front_dir.path().join("cert.pem"),
        key: front_dir.path().join("key.pem"),
    };
    std::fs::write(&tls.cert, made.cert.pem()).unwrap();
    std::fs::write(&tls.key, made.signing_key.serialize_pem()).unwrap();
    let ca = tls.cert.clone();
    front.listener.tls = Some(tls);
    front.shadow.sample = 0.0;
    let front = start(front, front_dir).await;

    let primary = recording().await;
    let (mut config, dir) = config(
        &format!("{}/api/v2", primary.url()),
        &format!("https://localhost:{}/api/v2", front.addr.port()),
    );
    config.secondary.connect.trust.extra_ca = Some(ca);
    let proxy = start(config, dir).await;
    for target in HOSTILE {
        let response = get(&proxy, target).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{target}: {response}");
    }
    let response = get(&proxy, "/a/./b/../c").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let db = proxy.stop().await;
    front.stop().await;

    assert_eq!(paths(&primary), ["/api/v2/a/c"]);
    assert_eq!(paths(&behind_tls), ["/api/v2/a/c"]);
    assert_eq!(report(&db)["summary"]["matched"], 1);
}
