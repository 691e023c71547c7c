#!/usr/bin/env bash
# Resident memory of shadowdiff under a flood with a stalled secondary (it accepts
# connections and never answers), sampled once a second; prints peak and last RSS.
#
#   bench/memory.sh                # FLOOD=60s CONNECTIONS=256 MAX_INFLIGHT=1024 MAX_BODY=1MiB
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
cargo build --release --quiet --bin shadowdiff --example bench_backend
P=19201; STALLED=19202; SD=19203
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

target/release/examples/bench_backend 127.0.0.1:$P 0 a & pids+=($!)
# A secondary that takes an hour per request: stalled, as far as the proxy can tell.
target/release/examples/bench_backend 127.0.0.1:$STALLED 3600000 a & pids+=($!)
rm -f "$OUT"/mem.db*
RUST_LOG=warn target/release/shadowdiff serve --listen 127.0.0.1:$SD \
  --primary http://127.0.0.1:$P --secondary http://127.0.0.1:$STALLED \
  --db "$OUT/mem.db" --max-inflight "$MAX_INFLIGHT" --max-body "$MAX_BODY" & sd=$!
pids+=($sd)
sleep 1
peak=0
( while kill -0 $sd 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/$sd/status 2>/dev/null || echo 0)
    echo "$rss"; sleep 1
  done ) > "$OUT/mem-rss.txt" & sampler=$!
wrk -t2 -c"$CONNECTIONS" -d"$FLOOD" "http://127.0.0.1:$SD/users/42" > "$OUT/wrk-mem.txt"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$sd/status)
kill $sampler 2>/dev/null || true
last=$(tail -n 1 "$OUT/mem-rss.txt")
rps=$(awk '/^Requests\/sec/ {print $2}' "$OUT/wrk-mem.txt")
echo "| flood | connections | max-inflight | max-body | req/s | peak RSS (VmHWM) | last RSS |"
echo "|---|---:|---:|---|---:|---:|---:|"
echo "| $FLOOD, stalled secondary | $CONNECTIONS | $MAX_INFLIGHT | $MAX_BODY | $rps | $((hwm / 1024)) MiB | $((last / 1024)) MiB |"
