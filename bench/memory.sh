#!/usr/bin/env bash
# Resident memory of shadowdiff under a flood, in two scenarios, sampled once a second:
#   stalled:  the secondary accepts connections and never answers (shadows pile up to
#             --max-inflight, then are skipped as overload; breaker off, the worst case);
#   mismatch: every response differs, so every request is a stored mismatch.
# Prints a markdown table with peak (VmHWM) and last RSS.
#
#   bench/memory.sh       # FLOOD=60s CONNECTIONS=256 MAX_INFLIGHT=1024 MAX_BODY=1MiB
#
# The bound to compare with: 64 MiB + max-inflight x max-body.
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOD=${FLOOD:-60s}
CONNECTIONS=${CONNECTIONS:-256}
MAX_INFLIGHT=${MAX_INFLIGHT:-1024}
MAX_BODY=${MAX_BODY:-1MiB}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile profiling --quiet --bin shadowdiff --example bench_backend
REL=${CARGO_TARGET_DIR:-target}/profiling
P=19201; STALLED=19202; OTHER=19203; SD=19204
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$REL"/examples/bench_backend 127.0.0.1:$P 0 a & pids+=($!)
# A secondary that takes an hour per request: stalled, as far as the proxy can tell.
"$REL"/examples/bench_backend 127.0.0.1:$STALLED 3600000 a & pids+=($!)
# A secondary whose every answer differs from the primary's in one field.
"$REL"/examples/bench_backend 127.0.0.1:$OTHER 0 b & pids+=($!)
sleep 0.5

# scenario secondary_port [extra serve flags...] -> table row
flood() {
  local name=$1 secondary=$2
  shift 2
  rm -f "$OUT/mem-$name.db"*
  RUST_LOG=warn "$REL/shadowdiff" serve --listen 127.0.0.1:$SD \
    --primary http://127.0.0.1:$P --secondary "http://127.0.0.1:$secondary" \
    --db "$OUT/mem-$name.db" --max-inflight "$MAX_INFLIGHT" --max-body "$MAX_BODY" --admin off "$@" &
  local sd=$!
  sleep 1
  ( while kill -0 $sd 2>/dev/null; do awk '/VmRSS/ {print $2}' /proc/$sd/status 2>/dev/null; sleep 1; done ) \
    > "$OUT/mem-$name-rss.txt" & local sampler=$!
  wrk -t2 -c"$CONNECTIONS" -d"$FLOOD" "http://127.0.0.1:$SD/users/42" > "$OUT/wrk-mem-$name.txt"
  local hwm last rps
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$sd/status)
  kill $sampler 2>/dev/null || true
  kill -INT $sd; wait $sd || true
  last=$(tail -n 1 "$OUT/mem-$name-rss.txt")
  rps=$(awk '/^Requests\/sec/ {print $2}' "$OUT/wrk-mem-$name.txt")
  echo "| $name | $FLOOD | $CONNECTIONS | $MAX_INFLIGHT | $MAX_BODY | $rps | $((hwm / 1024)) MiB | $((last / 1024)) MiB |"
}

echo "| scenario | flood | connections | max-inflight | max-body | req/s | peak RSS (VmHWM) | RSS at the end |"
echo "|---|---|---:|---:|---|---:|---:|---:|"
# The breaker would pause shadowing after 20 timeouts and hide the worst case: every
# in-flight permit taken, for the whole flood.
flood stalled $STALLED --breaker-threshold 0
flood mismatch $OTHER
