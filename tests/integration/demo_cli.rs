//! `shadowdiff demo`: one command, no network, and a report that names the deliberate
//! differences, first with the noise, then with the noise hidden by fixtures/demo.toml.

use assert_cmd::Command;

#[test]
fn demo_exits_0_and_names_the_deliberate_differences() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["demo", "--quiet", "--requests", "100", "--out"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let (raw, judged) = stdout
        .split_once("== 2/2")
        .expect("two passes in the output");

    // Without rules: the noise and every real change.
    for expected in [
        "body/request_id",
        "body/generated_at",
        "body/email_address",
        // The orders newest first: one `reordered` difference at the array.
        "body/orders",
        "body/price",
        "status",
    ] {
        assert!(
            raw.contains(expected),
            "first pass lacks {expected}:\n{raw}"
        );
    }
    // With the rules: the noise is gone from the differences and counted as hidden, the
    // renamed field and the changed status remain.
    let (differences, hidden) = judged.split_once("hidden on").expect("hidden counts");
    for noise in [
        "body/request_id",
        "body/generated_at",
        "body/orders",
        "body/price",
    ] {
        assert!(
            !differences.contains(noise),
            "second pass still shows {noise}:\n{judged}"
        );
    }
    assert!(differences.contains("body/email_address"), "{judged}");
    assert!(differences.contains("status"), "{judged}");
    assert!(hidden.contains("ignore body/request_id"), "{judged}");
    assert!(hidden.contains("unordered body/orders by id"), "{judged}");
    // Both stores are kept for `show` and `report`.
    assert!(dir.path().join("demo-raw.db").exists());
    assert!(dir.path().join("demo-rules.db").exists());
}
