#!/bin/sh
# The live dashboard's poll against a store of 1,000,000 synthetic mismatches, beside the
# JSON report over the same store, in one run: medians of ROUNDS requests each, and their
# ratio. Run from the repository root: sh bench/dashboard-1m.sh
set -eu
N=${N:-1000000}
ROUNDS=${ROUNDS:-15}
REL=${CARGO_TARGET_DIR:-target}/release
DB=${DB:-${CARGO_TARGET_DIR:-target}/bench-dashboard.db}
cargo build --release --quiet --bin shadowdiff --example fill_store
if [ ! -s "$DB" ]; then
  "$REL"/examples/fill_store "$DB" "$N" >/dev/null
fi
LOG=$(mktemp)
"$REL"/shadowdiff serve --listen 127.0.0.1:0 --admin 127.0.0.1:0 --db "$DB" \
  --primary http://127.0.0.1:9 --secondary http://127.0.0.1:9 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$LOG"' EXIT
while ! grep -q serving "$LOG"; do sleep 0.1; done
ADMIN=$(sed -n 's/.*admin=\([0-9.:]*\).*/\1/p' "$LOG" | head -1)
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
dash=$(for i in $(seq "$ROUNDS"); do
  curl -s -o /dev/null -w '%{time_total}\n' "http://$ADMIN/dashboard/data?window=all"
done | median)
report=$(for i in $(seq "$ROUNDS"); do
  /usr/bin/time -f '%e' "$REL"/shadowdiff report --db "$DB" --format json --output /dev/null 2>&1 | tail -1
done | median)
echo "store: $N mismatches ($(du -h "$DB" | cut -f1))"
echo "dashboard poll (window=all), median of $ROUNDS: ${dash} s"
echo "report --format json, median of $ROUNDS: ${report} s"
awk -v a="$dash" -v b="$report" 'BEGIN { printf "dashboard / report: %.2f\n", a / b }'
