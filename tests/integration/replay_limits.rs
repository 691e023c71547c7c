//! What replay holds of a traffic file at once: one request, up to a bound tied to
//! max-body (`6 × max-body + 2 MiB`; a JSONL line, which may hold the primary's response
//! too, `12 × max-body + 4 MiB`; docs/TRAFFIC.md). A longer JSONL line or HAR entry is
//! refused while it streams, through the real binary, naming the file, where, and the
//! bound.

use crate::support::replay as replay_support;

use assert_cmd::Command;
use replay_support::Servers;
use std::io::Write;
use std::path::Path;

/// The bound for `max-body = "1KiB"`: 6 × 1024 + 2 MiB.
const BOUND: u64 = 6 * 1024 + 2 * 1024 * 1024;
/// A JSONL line's, which covers a recorded response too: 12 × 1024 + 4 MiB.
const LINE_BOUND: u64 = 12 * 1024 + 4 * 1024 * 1024;

fn replay(servers: &Servers, dir: &Path, input: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let config = dir.join("limits.toml");
    std::fs::write(&config, "max-body = \"1KiB\"\n").unwrap();
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .arg("replay")
        .arg("--primary")
        .arg(servers.primary_url())
        .arg("--secondary")
        .arg(servers.secondary_url())
        .arg("--db")
        .arg(dir.join("out.db"))
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(input)
        .args(["--concurrency", "1"])
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Writes `prefix`, `len` bytes of `a`, then `suffix`, in pieces: the test holds no line.
fn write_long(out: &mut impl Write, prefix: &str, len: u64, suffix: &str) {
    out.write_all(prefix.as_bytes()).unwrap();
    let piece = [b'a'; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        out.write_all(&piece[..n]).unwrap();
        left -= n as u64;
    }
    out.write_all(suffix.as_bytes()).unwrap();
}

#[test]
fn a_jsonl_line_longer_than_the_max_body_bound_is_refused_naming_file_line_and_bound() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    file.write_all(b"{\"method\":\"GET\",\"path\":\"/items/1\"}\n")
        .unwrap();
    write_long(
        &mut file,
        "{\"method\":\"GET\",\"path\":\"/items/2\",\"body\":\"",
        LINE_BOUND,
        "\"}\n",
    );
    file.write_all(b"{\"method\":\"GET\",\"path\":\"/items/3\"}\n")
        .unwrap();
    drop(file);

    let (code, stderr) = replay(&servers, dir.path(), &input, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "shadowdiff: {}:2: the line is longer than {LINE_BOUND} bytes, the bound for max-body 1024",
        input.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(servers
        .primary_received()
        .iter()
        .all(|r| r.uri.path() == "/items/1"));

    // The rest of the line is read past, not parsed: --skip-invalid goes on at line 3.
    let (code, stderr) = replay(&servers, dir.path(), &input, &["--skip-invalid"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("replay done: 2 requests: 2 matched, 0 mismatched, 0 errors, 0 skipped, 1 invalid lines skipped"),
        "{stderr}"
    );
    let paths: Vec<String> = servers
        .primary_received()
        .iter()
        .map(|r| r.uri.path().to_string())
        .collect();
    assert!(paths.contains(&"/items/3".to_string()), "{paths:?}");
}

#[test]
fn a_har_entry_longer_than_the_max_body_bound_is_refused_naming_the_entry() {
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.har");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    // A long response is skipped unread and costs nothing; a long request body is refused.
    write_long(
        &mut file,
        "{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://x/items/1\"},\"response\":{\"content\":{\"text\":\"",
        BOUND,
        "\"}}},",
    );
    write_long(
        &mut file,
        "{\"request\":{\"method\":\"POST\",\"url\":\"http://x/items/2\",\"postData\":{\"text\":\"",
        BOUND,
        "\"}}}]}}",
    );
    drop(file);

    let (code, stderr) = replay(&servers, dir.path(), &input, &["--skip-invalid"]);
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "shadowdiff: {}: entry 2 is longer than {BOUND} bytes, the bound for max-body 1024",
        input.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
