#!/usr/bin/env bash
# Runs each fuzz target for a bounded time, one after another, one libFuzzer process at
# a time (the machines are small and shared), and prints one line per target: runs,
# seconds, crashes found.
#
#   fuzz/run.sh SECONDS_PER_TARGET [TARGET...]     (default: every target, 60 s each)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on the stable toolchain it runs with
# RUSTC_BOOTSTRAP=1. The corpus grows in fuzz/corpus/TARGET (not committed), starting
# from the small seeds in fuzz/seeds/TARGET; crashes land in fuzz/artifacts/TARGET, each
# to become a regression test in the main crate. Logs go to fuzz/logs/TARGET.log.
set -euo pipefail

seconds=${1:-60}
shift || true
cd "$(dirname "$0")"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(json_diff path_pattern jsonl_reader har_reader config_loader)
fi
export RUSTC_BOOTSTRAP=1
mkdir -p logs
cargo fuzz build -O
status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="logs/$target.log"
    # -fork=1 with -ignore_*: one worker process at a time that is restarted after a
    # crash, so one finding does not end the run and every distinct crash is kept.
    # -timeout: an input that takes 10 s is a hang worth a test; -rss_limit_mb: a parser
    # that needs 1 GiB for a small input is a finding too.
    cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
        -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || status=1
    runs=$(grep -o '^#[0-9]*' "$log" | tr -d '#' | tail -1)
    crashes=$(find "artifacts/$target" -type f | wc -l)
    [ "$crashes" -eq 0 ] || status=1
    echo "$target: ${runs:-?} runs in ${seconds} s, ${crashes} artifacts (log: fuzz/$log)"
done
exit $status
