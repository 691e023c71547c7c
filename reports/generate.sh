#!/bin/sh
# Regenerates the example reports in reports/ from a demo store.
# Run from the repository root: sh reports/generate.sh
# The demo store is synthetic (20 routes, recurring difference signatures, varied mismatch
# rates) and is written through the real store writer.
set -eu
DB=target/demo.db
rm -f "$DB" "$DB-wal" "$DB-shm"
cargo build --quiet --bin shadowdiff --example fill_store
./target/debug/examples/fill_store "$DB" 200 5 >/dev/null
for format in text json markdown html junit; do
  ext=$format; [ "$format" = markdown ] && ext=md; [ "$format" = junit ] && ext=xml; [ "$format" = text ] && ext=txt
  ./target/debug/shadowdiff report --db "$DB" --format "$format" --output "reports/demo.$ext" \
    --max-mismatch-rate 0.1 || [ $? -eq 1 ]
done
