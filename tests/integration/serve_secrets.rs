//! Secrets never reach the disk or the logs (issue 12, bugs 4 and 5, secrets beyond
//! headers): the real binary between two real backends, a real SQLite file, a real record
//! file, and every byte of them searched for the secrets that went through.

use crate::support;

use assert_cmd::Command;
use http::Response;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{backend, full, Body, Received};

/// Every secret value the test sends or the backends answer. Each is distinctive, so a
/// match anywhere is a leak.
const SECRETS: [&str; 20] = [
    "QUERYTOKEN-1111",
    "AMZSIG-2222",
    "AUTHBEARER-3333",
    "REQCOOKIE-4444",
    "PRIMPASS-5555",
    "SECPASS-5556",
    "PRIMSSN-6666",
    "SECSSN-6667",
    "PRIMTOKEN-7777",
    "SECTOKEN-7778",
    "PRIMCOOKIE-8888",
    "SECCOOKIE-8889",
    "FORMPASS-9999",
    "PRIMFORM-AAAA",
    "SECFORM-AAAB",
    "MULTIPASS-CCCC",
    "JSONREQ-DDDD",
    "JSONREQ-EEEE",
    "URLPASS-FFFF",
    "APIKEY-0000",
];

fn response(content_type: &str, cookie: Option<&str>, body: String) -> Response<Body> {
    let mut builder = Response::builder().header("content-type", content_type);
    if let Some(cookie) = cookie {
        builder = builder.header("set-cookie", cookie);
    }
    builder.body(full(body)).unwrap()
}

/// The same API on both sides, except every secret it answers with.
fn answer(side: &str, request: &Received) -> Response<Body> {
    let (pass, ssn, token, cookie, form, n) = match side {
        "primary" => (
            "PRIMPASS-5555",
            "PRIMSSN-6666",
            "PRIMTOKEN-7777",
            "PRIMCOOKIE-8888",
            "PRIMFORM-AAAA",
            1,
        ),
        _ => (
            "SECPASS-5556",
            "SECSSN-6667",
            "SECTOKEN-7778",
            "SECCOOKIE-8889",
            "SECFORM-AAAB",
            2,
        ),
    };
    match request.uri.path() {
        "/account" => response(
            "application/json",
            Some(&format!("sid={cookie}; Path=/; HttpOnly")),
            format!(
                r#"{{"user": {{"name": "ann", "password": "{pass}", "ssn": "{ssn}"}}, "token": "{token}", "n": {n}}}"#
            ),
        ),
        "/login" => response(
            "application/x-www-form-urlencoded",
            None,
            format!("user=ann&client_secret={form}&n={n}"),
        ),
        _ => response("text/plain", None, format!("ok {n}\n")),
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} found in {what}");
    }
}

fn shadowdiff(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

/// `[redacted hmac:...]` digests of one difference line `path (kind): A -> B`.
fn digests_of(show: &str, path: &str) -> (String, String) {
    let line = show
        .lines()
        .find(|l| l.starts_with(&format!("{path} (")))
        .unwrap_or_else(|| panic!("no difference at {path} in:\n{show}"));
    let (a, b) = line.split_once(" -> ").unwrap();
    let a = a.split_once("): ").unwrap().1;
    assert!(a.starts_with("[redacted hmac:"), "{line}");
    assert!(b.starts_with("[redacted hmac:"), "{line}");
    (a.to_string(), b.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_headers_query_and_bodies_never_reach_the_store_the_record_file_or_the_logs() {
    let primary = backend(|r| async move { answer("primary", &r) }).await;
    let secondary = backend(|r| async move { answer("secondary", &r) }).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("secrets.db");
    let record = dir.path().join("secrets.jsonl");
    let config = dir.path().join("shadowdiff.toml");
    let secondary_url = format!("http://user:URLPASS-FFFF@{}", secondary.addr);
    std::fs::write(
        &config,
        format!(
            "primary = {:?}\nsecondary = {secondary_url:?}\ndb = {:?}\nrecord = {:?}\n\
             listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nshadow-writes = true\n\
             [compare]\nheaders = [\"set-cookie\"]\n\
             [redact]\nbody = [\"body/user/ssn\"]\nheaders = [\"x-custom-key\"]\n",
            primary.url(),
            db.display().to_string(),
            record.display().to_string(),
        ),
    )
    .unwrap();

    // config check shows the [redact] lists and no URL password.
    let (code, checked) = shadowdiff(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{checked}");
    assert!(checked.contains("user:***@"), "{checked}");
    assert!(checked.contains("[redact]") && checked.contains("body/user/ssn"));
    assert_no_secret("config check", checked.as_bytes());

    let running = support::spawn_serve(
        &["--config", config.to_str().unwrap(), "--log-level", "debug"],
        &[],
    );
    let http = support::client();
    let proxy = |path: &str| format!("http://{}{path}", running.listen);
    http.get(proxy(
        "/account?access_token=QUERYTOKEN-1111&X-Amz-Signature=AMZSIG-2222&page=1",
    ))
    .header("authorization", "Bearer AUTHBEARER-3333")
    .header("cookie", "sid=REQCOOKIE-4444")
    .header("x-custom-key", "APIKEY-0000")
    .send()
    .await
    .unwrap();
    http.post(proxy("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=ann&password=FORMPASS-9999")
        .send()
        .await
        .unwrap();
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nMULTIPASS-CCCC\r\n\
                     --XyZ--\r\n";
    http.post(proxy("/upload"))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(multipart)
        .send()
        .await
        .unwrap();
    http.post(proxy("/api"))
        .header("content-type", "application/json")
        .body(r#"{"client_secret": "JSONREQ-DDDD", "nested": {"refreshToken": "JSONREQ-EEEE"}}"#)
        .send()
        .await
        .unwrap();

    // The WAL while serve runs: poll /status until the four mismatches are judged, then
    // until the store holds them (the WAL is where they are first written).
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = http
            .get(format!("http://{}/status", running.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&status).unwrap();
        if json["counters"]["mismatched"] == 4 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_no_secret("/status", status.as_bytes());
    let wal = db.with_extension("db-wal");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&read(&wal)).contains("/upload") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written = read(&wal);
    assert!(
        String::from_utf8_lossy(&written).contains("/upload"),
        "the WAL holds the examples"
    );
    assert_no_secret("the -wal file while serving", &written);

    let mut running = running;
    running.signal("TERM");
    assert!(running.wait().success());
    let stored = read(&db);
    assert!(String::from_utf8_lossy(&stored).contains("[redacted hmac:"));
    assert_no_secret("the database file", &stored);
    assert_no_secret("the -wal file after shutdown", &read(&wal));
    let recorded = read(&record);
    assert!(String::from_utf8_lossy(&recorded).contains("[redacted]"));
    assert_no_secret("the record file", &recorded);
    let logs = format!(
        "{}\n{}",
        running.serving,
        running.logs.lock().unwrap().join("\n")
    );
    assert!(logs.contains("user:***@"), "{logs}");
    assert!(
        logs.contains("mismatch"),
        "debug logs one line per mismatch: {logs}"
    );
    assert_no_secret("the log output", logs.as_bytes());

    // The report still shows what changed: a changed secret as two different digests.
    let (code, report) = shadowdiff(&["report", "--db", db.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{report}");
    assert_no_secret("report", report.as_bytes());
    let mut shown = String::new();
    for id in 1..=4 {
        let (code, text) = shadowdiff(&["show", &id.to_string(), "--db", db.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{text}");
        shown.push_str(&text);
    }
    assert_no_secret("show", shown.as_bytes());
    for path in [
        "headers.set-cookie",
        "body/token",
        "body/user/password",
        "body/user/ssn",
    ] {
        let (a, b) = digests_of(&shown, path);
        assert_ne!(a, b, "a changed secret at {path} shows two digests");
    }
    assert!(shown.contains("body/n (changed): 1 -> 2"), "{shown}");
    assert!(shown.contains("access_token=[redacted]&X-Amz-Signature=[redacted]&page=1"));
    assert!(shown.contains("client_secret=[redacted hmac:"), "{shown}");
}

#[test]
fn a_bad_redact_entry_is_refused_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "primary = \"http://a\"\nsecondary = \"http://b\"\n[redact]\nbody = [\"user/ssn\"]\n",
    )
    .unwrap();
    let (code, text) = shadowdiff(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("bad.toml: key `redact.body`"), "{text}");
    assert!(text.contains("\"user/ssn\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_url_password_stays_out_of_error_pages_logs_and_the_runs_table() {
    let closed = support::closed_port().await;
    let secondary = support::fixed(200, "ok").await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("urls.db");
    let primary_url = format!("http://ops:URLPASS-FFFF@{closed}/base");
    let secondary_url = format!("http://ops:URLPASS-FFFF@{}", secondary.addr);
    let mut running = support::spawn_serve(
        &[
            "--primary",
            &primary_url,
            "--secondary",
            &secondary_url,
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--log-level",
            "debug",
        ],
        &[],
    );
    let response = support::client()
        .get(format!("http://{}/x", running.listen))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let page = response.text().await.unwrap();
    assert_no_secret("the 502 page", page.as_bytes());
    running.signal("TERM");
    assert!(running.wait().success());
    let logs = format!(
        "{}\n{}",
        running.serving,
        running.logs.lock().unwrap().join("\n")
    );
    assert!(logs.contains("ops:***@"), "{logs}");
    assert_no_secret("the log output", logs.as_bytes());
    let stored = read(&db);
    assert!(String::from_utf8_lossy(&stored).contains("http://ops:***@"));
    assert_no_secret("the database file", &stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_secrets_keeps_query_and_body_secrets_in_the_record_file() {
    for keep in [false, true] {
        let primary = support::fixed(200, "ok").await;
        let secondary = support::fixed(200, "ok").await;
        let (mut config, dir) = support::config(&primary.url(), &secondary.url());
        let path = dir.path().join("kept.jsonl");
        config.shadow.shadow_writes = true;
        config.record = Some(shadowdiff::config::RecordConfig {
            path: path.clone(),
            max_size: 1 << 20,
            keep_secrets: keep,
            responses: false,
        });
        let proxy = support::start(config, dir).await;
        support::client()
            .post(proxy.url("/token?client_secret=QUERYTOKEN-1111"))
            .header("content-type", "application/json")
            .body(r#"{"password": "JSONREQ-DDDD"}"#)
            .send()
            .await
            .unwrap();
        let _db = proxy.stop().await;
        let text = String::from_utf8(read(&path)).unwrap();
        for secret in ["QUERYTOKEN-1111", "JSONREQ-DDDD"] {
            assert_eq!(
                text.contains(secret),
                keep,
                "{secret} with keep={keep}: {text}"
            );
        }
    }
}
