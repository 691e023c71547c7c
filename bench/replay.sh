#!/usr/bin/env bash
# Replay throughput against wrk, side by side in one run, and replay memory over a long file.
#
#   bench/replay.sh                       # LINES=200000 CONCURRENCY=32 RUNS=3
#   MEMORY_LINES=1000000 bench/replay.sh  # also sample RSS while replaying a 1,000,000-line file
#   BASE_BIN=/tmp/old/shadowdiff bench/replay.sh  # also an older build, in the same runs
#
# Two bench_backend processes (examples/bench_backend.rs, one worker thread each) serve as
# primary and secondary. For each run, side by side:
#   - wrk: `wrk -t2 -cCONCURRENCY` against the primary alone (the issue's yardstick);
#   - wrk pairs: one `wrk -t1 -cCONCURRENCY` against each backend at the same time, the
#     slower of the two: how many requests per second a C client reaches when every
#     request must go to both upstreams on the same two cores (the ceiling for any replay);
#   - replay: `shadowdiff replay --concurrency CONCURRENCY` of LINES requests against both.
# Prints each run and the median ratios. Installs wrk from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-200000}
CONCURRENCY=${CONCURRENCY:-32}
RUNS=${RUNS:-3}
DURATION=${DURATION:-8s}
MEMORY_LINES=${MEMORY_LINES:-0}
EXTRA=${EXTRA:-}
BASE_BIN=${BASE_BIN:-}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --profile profiling --quiet --bin shadowdiff --example bench_backend
BIN=${CARGO_TARGET_DIR:-target}/profiling/shadowdiff
BACKEND=${CARGO_TARGET_DIR:-target}/profiling/examples/bench_backend
P=19201; S=19202

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
$BACKEND 127.0.0.1:$P 0 a & pids+=($!)
$BACKEND 127.0.0.1:$S 0 a & pids+=($!)
sleep 0.5

# Realistic-looking GETs: varied paths and queries, a few headers each.
make_traffic() {
  awk -v n="$1" 'BEGIN {
    for (i = 0; i < n; i++)
      printf "{\"method\":\"GET\",\"path\":\"/users/%d?page=%d\",\"headers\":[[\"accept\",\"application/json\"],[\"x-request-id\",\"r%d\"]]}\n", i % 5000, i % 7, i
  }' > "$2"
}
TRAFFIC="$OUT/replay-$LINES.jsonl"
[ -f "$TRAFFIC" ] || make_traffic "$LINES" "$TRAFFIC"

rps_of() { awk '/^Requests\/sec/ {print $2}' "$1"; }
# bin extra-flags -> requests/s of one replay of $TRAFFIC; its peak RSS in $OUT/replay-time.txt
replay_rps() {
  rm -f "$OUT"/replay.db*
  local start end
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  /usr/bin/time -f "%M" -o "$OUT/replay-time.txt" \
    "$1" replay --quiet --input "$TRAFFIC" --primary "http://127.0.0.1:$P" \
    --secondary "http://127.0.0.1:$S" --db "$OUT/replay.db" --concurrency "$CONCURRENCY" \
    $2 > "$OUT/replay-report.txt"
  end=$(date +%s.%N)
  awk -v n="$LINES" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }'
}
base_ratios=()
ratios=()
pair_ratios=()
echo "| run | wrk req/s (primary alone) | wrk pairs/s (both at once) | replay req/s | replay / wrk | replay / wrk pairs | replay max RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for run in $(seq 1 "$RUNS"); do
  wrk -t2 -c"$CONCURRENCY" -d"$DURATION" "http://127.0.0.1:$P/users/42" > "$OUT/wrk-alone.txt"
  wrk_rps=$(rps_of "$OUT/wrk-alone.txt")
  wrk -t1 -c"$CONCURRENCY" -d"$DURATION" "http://127.0.0.1:$P/users/42" > "$OUT/wrk-p.txt" &
  other=$!
  wrk -t1 -c"$CONCURRENCY" -d"$DURATION" "http://127.0.0.1:$S/users/42" > "$OUT/wrk-s.txt"
  wait "$other"
  pairs_rps=$(awk -v a="$(rps_of "$OUT/wrk-p.txt")" -v b="$(rps_of "$OUT/wrk-s.txt")" \
    'BEGIN { printf "%.0f", (a < b ? a : b) }')
  if [ -n "$BASE_BIN" ]; then
    base_rps=$(replay_rps "$BASE_BIN" "")
    base_ratios+=("$(awk -v a="$base_rps" -v b="$wrk_rps" 'BEGIN { printf "%.2f", a / b }')")
    echo "run $run: base build $base_rps req/s" >&2
  fi
  replay_rps=$(replay_rps "$BIN" "$EXTRA")
  rss_kb=$(tail -n 1 "$OUT/replay-time.txt")
  ratio=$(awk -v a="$replay_rps" -v b="$wrk_rps" 'BEGIN { printf "%.2f", a / b }')
  pair_ratio=$(awk -v a="$replay_rps" -v b="$pairs_rps" 'BEGIN { printf "%.2f", a / b }')
  ratios+=("$ratio")
  pair_ratios+=("$pair_ratio")
  echo "| $run | $wrk_rps | $pairs_rps | $replay_rps | $ratio | $pair_ratio | $((rss_kb / 1024)) MiB |"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo
echo "- median replay / wrk: $(median "${ratios[@]}") (target >= 0.80)"
echo "- median replay / wrk pairs: $(median "${pair_ratios[@]}")"
if [ -n "$BASE_BIN" ]; then
  echo "- base build, median replay / wrk: $(median "${base_ratios[@]}")"
fi
grep -E "^(requests|compared|Requests)" "$OUT/replay-report.txt" | head -3 || true

if [ "$MEMORY_LINES" -gt 0 ]; then
  BIG="$OUT/replay-$MEMORY_LINES.jsonl"
  [ -f "$BIG" ] || make_traffic "$MEMORY_LINES" "$BIG"
  rm -f "$OUT"/replay-big.db*
  $BIN replay --quiet --input "$BIG" --primary "http://127.0.0.1:$P" \
    --secondary "http://127.0.0.1:$S" --db "$OUT/replay-big.db" --concurrency "$CONCURRENCY" \
    $EXTRA > /dev/null &
  rp=$!
  samples=()
  while kill -0 "$rp" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$rp/status" 2>/dev/null || true)
    [ -n "$rss" ] && samples+=("$rss")
    sleep 1
  done
  wait "$rp"
  echo
  echo "- RSS (MiB) once a second over $MEMORY_LINES lines: ${samples[*]}"
fi
