//! `shadowdiff demo`: one command, no network, and a report that names the deliberate
//! differences, first with the noise, then with the noise learnt from a baseline, then
//! with the noise hidden by fixtures/demo.toml.

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
    let (raw, rest) = stdout
        .split_once("== 2/3")
        .expect("three passes in the output");
    let (learnt, judged) = rest
        .split_once("== 3/3")
        .expect("three passes in the output");

    // Without rules: the noise and every real change.
    for expected in [
        "body/request_id",
        "body/generated_at",
        // The renamed field and the reordered list, each one difference.
        "body/email",
        "body/orders",
        "body/price",
        "status",
    ] {
        assert!(
            raw.contains(expected),
            "first pass lacks {expected}:\n{raw}"
        );
    }
    // The first pass ends with the config `suggest` proposes: the noise as rules, the
    // real changes listed as looking real.
    let (_, suggested) = raw
        .split_once("shadowdiff suggest --db")
        .expect("the suggested config");
    assert!(suggested.contains("\"body/request_id\","), "{suggested}");
    assert!(
        suggested.contains("path = \"body/orders\", key = \"id\""),
        "{suggested}"
    );
    assert!(suggested.contains("# looks real"), "{suggested}");
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
    assert!(differences.contains("body/email"), "{judged}");
    assert!(differences.contains("status"), "{judged}");
    assert!(hidden.contains("ignore body/request_id"), "{judged}");
    assert!(hidden.contains("unordered body/orders by id"), "{judged}");
    // With the baseline and no rules: the noise is hidden and named as the baseline's;
    // the changed status and price remain.
    let (differences, hidden) = learnt.split_once("hidden on").expect("hidden counts");
    for noise in ["body/request_id", "body/generated_at"] {
        assert!(
            !differences.contains(noise),
            "the baseline pass still shows {noise}:\n{learnt}"
        );
        assert!(
            hidden.contains(&format!("baseline {noise}")),
            "the baseline pass does not name {noise} as hidden:\n{learnt}"
        );
    }
    assert!(differences.contains("status"), "{learnt}");
    assert!(differences.contains("body/price"), "{learnt}");
    // The stores are kept for `show` and `report`.
    assert!(dir.path().join("demo-baseline.db").exists());
    assert!(dir.path().join("demo-raw.db").exists());
    assert!(dir.path().join("demo-rules.db").exists());
}
