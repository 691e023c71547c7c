#!/bin/sh
# Store 1,000,000 synthetic mismatches (1-3 differences each) through the real writer, then
# time `suggest` over all of them and record its peak memory; a second store of 100,000
# shows the memory does not follow the number of mismatches.
# Run from the repository root: sh bench/suggest-1m.sh
set -eu
N=${N:-1000000}
SMALL=${SMALL:-100000}
TARGET=${CARGO_TARGET_DIR:-target}
REL=$TARGET/profiling
DB=${DB:-$TARGET/bench-1m.db}
SMALL_DB=$TARGET/bench-suggest-small.db
cargo build --profile profiling --quiet --bin shadowdiff --example fill_store
for pair in "$DB $N" "$SMALL_DB $SMALL"; do
  set -- $pair
  if [ ! -s "$1" ] || [ "${REFILL:-0}" = 1 ]; then
    rm -f "$1" "$1-wal" "$1-shm"
    "$REL"/examples/fill_store "$1" "$2"
  fi
  ls -l "$1"
  /usr/bin/time -v "$REL"/shadowdiff suggest --db "$1" --write /dev/null 2>"$TARGET/suggest-time.txt"
  printf 'suggest over %s mismatches: %s s, max RSS %s KiB\n' "$2" \
    "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$TARGET/suggest-time.txt")" \
    "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TARGET/suggest-time.txt")"
done
