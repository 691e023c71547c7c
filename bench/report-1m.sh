#!/bin/sh
# Store 1,000,000 synthetic mismatches through the real writer, then time a report over
# them and record its peak memory. Run from the repository root: sh bench/report-1m.sh
set -eu
N=${N:-1000000}
REL=${CARGO_TARGET_DIR:-target}/profiling
DB=${DB:-${CARGO_TARGET_DIR:-target}/bench-1m.db}
rm -f "$DB" "$DB-wal" "$DB-shm"
cargo build --profile profiling --quiet --bin shadowdiff --example fill_store
"$REL"/examples/fill_store "$DB" "$N"
ls -l "$DB"
for format in json html; do
  /usr/bin/time -f "report --format $format: %e s, max RSS %M KiB" \
    "$REL"/shadowdiff report --db "$DB" --format "$format" --output /dev/null
done
/usr/bin/time -f "gate: %e s, max RSS %M KiB" \
  "$REL"/shadowdiff gate --db "$DB" --max-mismatch-rate 1 >/dev/null
