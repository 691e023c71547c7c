#!/bin/sh
# Regenerates the example reports in reports/ from the demo traffic: `shadowdiff demo`
# drives its built-in traffic through the real proxy between the embedded primary and
# "migrated" secondary; these reports read the store judged with fixtures/demo.toml.
# Run from the repository root: sh reports/generate.sh
set -eu
OUT=target/demo
cargo build --quiet --release --bin shadowdiff
./target/release/shadowdiff demo --quiet --out "$OUT" >/dev/null
DB="$OUT/demo-rules.db"
for format in text json markdown html junit; do
  ext=$format; [ "$format" = markdown ] && ext=md; [ "$format" = junit ] && ext=xml; [ "$format" = text ] && ext=txt
  # The thresholds make the JUnit testcases and the gate section meaningful; exit 1 (a
  # broken threshold) is the expected verdict for this demo.
  ./target/release/shadowdiff report --db "$DB" --format "$format" --output "reports/demo.$ext" \
    --max-mismatch-rate 0.05 || [ $? -eq 1 ]
done
# Screenshots of the live dashboard and the HTML report, made by the browser tests in a
# real headless Chromium (Debian's chromium and chromium-driver).
SHADOWDIFF_REQUIRE_BROWSER=1 SHADOWDIFF_SCREENSHOTS="$(pwd)/reports" \
  cargo test --quiet --test integration dashboard_browser >/dev/null
