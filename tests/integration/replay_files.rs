//! Replaying the sample JSONL and HAR files against real local servers, with the exact
//! counts each file must produce.

use crate::support::replay as replay_support;

use replay_support::{fixture, Servers};
use shadowdiff::config::ServeConfig;
use shadowdiff::replay::{replay, ProgressMode, ReplayOptions, ReplaySummary};
use std::path::Path;

fn run(servers: &Servers, input: &Path, shadow_writes: bool, repeat: u32) -> ReplaySummary {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(&servers.primary_url(), &servers.secondary_url()).unwrap();
    config.store.location = (dir.path().join("replay.db")).into();
    config.shadow.shadow_writes = shadow_writes;
    let options = ReplayOptions {
        input: input.to_path_buf(),
        format: None,
        config,
        concurrency: 4,
        threads: 1,
        rate: None,
        repeat,
        skip_invalid: false,
        progress: ProgressMode::Quiet,
        against_recorded: false,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let summary = runtime.block_on(replay(options)).unwrap();
    assert_eq!(
        summary.store.sqlite_path().expect("an SQLite store"),
        dir.path().join("replay.db")
    );
    summary
}

fn counts(s: &ReplaySummary) -> [u64; 6] {
    [
        s.requests,
        s.matched,
        s.mismatched,
        s.errors,
        s.skipped,
        s.dropped,
    ]
}

#[test]
fn jsonl_safe_methods_only() {
    let servers = Servers::start();
    let summary = run(&servers, &fixture("sample.jsonl"), false, 1);
    // 10 requests: 6 match, /diff/3 differs, POST, DELETE and PUT are not shadowed.
    assert_eq!(counts(&summary), [10, 6, 1, 0, 3, 0]);
    assert_eq!(servers.primary_received().len(), 7);
    assert_eq!(servers.secondary_received().len(), 7);
}

#[test]
fn jsonl_with_shadow_writes_and_repeat() {
    let servers = Servers::start();
    let summary = run(&servers, &fixture("sample.jsonl"), true, 3);
    assert_eq!(counts(&summary), [30, 24, 6, 0, 0, 0]);
    let received = servers.secondary_received();
    assert_eq!(received.len(), 30);
    let put = received.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(&put.body[..], &[0u8, 1, 2, 255]);
    assert_eq!(put.headers["x-shadowdiff"], "replay");
    let url_form = received
        .iter()
        .find(|r| r.uri.path() == "/items/7")
        .unwrap();
    assert_eq!(url_form.uri, "/items/7?a=b");
}

#[test]
fn har_every_entry() {
    let servers = Servers::start();
    let summary = run(&servers, &fixture("sample.har"), false, 1);
    assert_eq!(counts(&summary), [4, 1, 1, 0, 2, 0]);
    let summary = run(&servers, &fixture("sample.har"), true, 1);
    assert_eq!(counts(&summary), [4, 2, 2, 0, 0, 0]);
    let received = servers.primary_received();
    let form = received
        .iter()
        .find(|r| r.uri.path() == "/items/form")
        .unwrap();
    assert_eq!(form.body, "name=a+b&qty=2");
    let first = received
        .iter()
        .find(|r| r.uri.path() == "/items/a")
        .unwrap();
    assert_eq!(first.uri, "/items/a?page=2");
    let traces: Vec<_> = first.headers.get_all("x-trace").iter().collect();
    assert_eq!(traces, ["1", "2"]);
}

#[test]
fn an_unreachable_secondary_is_an_error_per_request() {
    let servers = Servers::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(&servers.primary_url(), &dead).unwrap();
    config.store.location = (dir.path().join("replay.db")).into();
    let options = ReplayOptions {
        input: fixture("sample.har"),
        format: None,
        config,
        concurrency: 2,
        threads: 2,
        rate: None,
        repeat: 1,
        skip_invalid: false,
        progress: ProgressMode::Quiet,
        against_recorded: false,
    };
    let summary = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replay(options))
        .unwrap();
    assert_eq!(counts(&summary), [4, 0, 0, 2, 2, 0]);
}

#[test]
fn method_override_header_naming_a_write_is_not_replayed_without_shadow_writes() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("override.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"method":"GET","path":"/items/1","headers":{"x-http-method-override":"DELETE"}}"#,
            "\n",
            r#"{"method":"POST","path":"/items/1","headers":{"x-method-override":"GET"}}"#,
            "\n",
            r#"{"method":"GET","path":"/items/1","headers":{"x-http-method":"HEAD"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let summary = run(&servers, &input, false, 1);
    assert_eq!(summary.skipped, 2, "{summary:?}");
    assert_eq!(servers.primary_received().len(), 1);
    assert_eq!(servers.secondary_received().len(), 1);
}
