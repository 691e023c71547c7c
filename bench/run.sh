#!/usr/bin/env bash
# Side-by-side load benchmark on loopback: direct to the primary, nginx as a reverse proxy,
# nginx with its mirror module, and shadowdiff (100% sampling, compare and store), each with
# a fast secondary and with a secondary that takes 200 ms. Prints a markdown table.
#
#   bench/run.sh                 # DURATION=10s CONNECTIONS=64 by default
#   DURATION=30s bench/run.sh
#
# Installs wrk and nginx from Debian's packages when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  apt-get update -qq && apt-get install -y -qq wrk nginx >/dev/null
fi
cargo build --release --quiet --bin shadowdiff --example bench_backend
BIN=target/release/shadowdiff
BACKEND=target/release/examples/bench_backend

# Loopback ports, fixed so the nginx config stays readable.
P=19101; FAST=19102; SLOW=19103; NGX_PLAIN=19111; NGX_MIRROR=19112; NGX_MIRROR_SLOW=19113
SD=19121; SD_SLOW=19122; ADMIN=19131; ADMIN_SLOW=19132

pids=()
sd_pids=()
cleanup() {
  # shadowdiff first, gracefully, while its upstreams are still up: otherwise the shadows
  # in flight at the end would be stored as errors that the benchmark itself caused.
  for pid in "${sd_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${sd_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

$BACKEND 127.0.0.1:$P 0 a & pids+=($!)
$BACKEND 127.0.0.1:$FAST 0 a & pids+=($!)
$BACKEND 127.0.0.1:$SLOW 200 a & pids+=($!)

cat > "$OUT/nginx.conf" <<NGINX
worker_processes auto;
pid $PWD/$OUT/nginx.pid;
error_log $PWD/$OUT/nginx-error.log warn;
daemon on;
events { worker_connections 4096; }
http {
  access_log off;
  upstream primary { server 127.0.0.1:$P; keepalive 128; }
  upstream fast { server 127.0.0.1:$FAST; keepalive 128; }
  upstream slow { server 127.0.0.1:$SLOW; keepalive 128; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  server { listen 127.0.0.1:$NGX_PLAIN; location / { proxy_pass http://primary; } }
  server {
    listen 127.0.0.1:$NGX_MIRROR;
    location / { mirror /mirror; proxy_pass http://primary; }
    location = /mirror { internal; proxy_pass http://fast\$request_uri; }
  }
  server {
    listen 127.0.0.1:$NGX_MIRROR_SLOW;
    location / { mirror /mirror; proxy_pass http://primary; }
    location = /mirror { internal; proxy_pass http://slow\$request_uri; }
  }
}
NGINX
nginx -c "$PWD/$OUT/nginx.conf" -p "$PWD/$OUT"

rm -f "$OUT"/sd*.db*
RUST_LOG=warn $BIN serve --listen 127.0.0.1:$SD --primary http://127.0.0.1:$P \
  --secondary http://127.0.0.1:$FAST --db "$OUT/sd-fast.db" --admin 127.0.0.1:$ADMIN & sd_pids+=($!)
RUST_LOG=warn $BIN serve --listen 127.0.0.1:$SD_SLOW --primary http://127.0.0.1:$P \
  --secondary http://127.0.0.1:$SLOW --db "$OUT/sd-slow.db" --admin 127.0.0.1:$ADMIN_SLOW & sd_pids+=($!)
sleep 1

# name url -> "rps p50_ms p99_ms"
measure() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2/users/42")
  echo "$out" > "$OUT/wrk-$1.txt"
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    else print v }'
}

declare -A R
for case in direct:http://127.0.0.1:$P nginx:http://127.0.0.1:$NGX_PLAIN \
            mirror-fast:http://127.0.0.1:$NGX_MIRROR shadowdiff-fast:http://127.0.0.1:$SD \
            mirror-slow:http://127.0.0.1:$NGX_MIRROR_SLOW shadowdiff-slow:http://127.0.0.1:$SD_SLOW; do
  name=${case%%:*}; url=${case#*:}
  R[$name]=$(measure "$name" "$url")
  echo "measured $name: ${R[$name]}" >&2
done

field() { awk -v i="$2" '{print $i}' <<<"${R[$1]}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "| setup | secondary | req/s | p50 ms | p99 ms |"
echo "|---|---|---:|---:|---:|"
echo "| direct to primary | - | $(field direct 1) | $(field direct 2) | $(field direct 3) |"
echo "| nginx reverse proxy | - | $(field nginx 1) | $(field nginx 2) | $(field nginx 3) |"
echo "| nginx mirror | fast | $(field mirror-fast 1) | $(field mirror-fast 2) | $(field mirror-fast 3) |"
echo "| shadowdiff | fast | $(field shadowdiff-fast 1) | $(field shadowdiff-fast 2) | $(field shadowdiff-fast 3) |"
echo "| nginx mirror | 200 ms | $(field mirror-slow 1) | $(field mirror-slow 2) | $(field mirror-slow 3) |"
echo "| shadowdiff | 200 ms | $(field shadowdiff-slow 1) | $(field shadowdiff-slow 2) | $(field shadowdiff-slow 3) |"
echo
echo "- shadowdiff / nginx mirror, req/s, fast secondary: $(ratio "$(field shadowdiff-fast 1)" "$(field mirror-fast 1)") (target >= 1.0)"
echo "- shadowdiff / direct, req/s, fast secondary: $(ratio "$(field shadowdiff-fast 1)" "$(field direct 1)")"
echo "- shadowdiff p50, 200 ms secondary / fast secondary: $(ratio "$(field shadowdiff-slow 2)" "$(field shadowdiff-fast 2)") (target <= 1.5)"
echo "- nginx mirror p50, 200 ms secondary / fast secondary: $(ratio "$(field mirror-slow 2)" "$(field mirror-fast 2)")"
