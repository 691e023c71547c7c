#!/usr/bin/env bash
# Side-by-side load benchmark on loopback, in interleaved rounds (round 1 measures every
# contender once, then round 2 does, ...), so that a noisy neighbour spreads over all of
# them instead of landing on one. The contenders, all in front of the same primary:
#
#   direct        wrk straight to the primary
#   nginx         nginx as a plain reverse proxy (keep-alive upstreams)
#   bare          examples/bare_proxy.rs: hyper + hyper-util and nothing else, the ceiling
#                 of shadowdiff's design
#   sample0       shadowdiff --sample 0: its pass-through path, nothing shadowed
#   mirror-fast   nginx with its mirror module, fast secondary
#   full-fast     shadowdiff, every request shadowed, compared and stored, fast secondary
#   baseline      shadowdiff, every request shadowed to the fast secondary and to a
#                 baseline (--baseline: a second instance of the primary's backend)
#   mirror-slow   nginx mirror, secondary that takes 200 ms
#   full-slow     shadowdiff, 200 ms secondary, --max-inflight 8192 (so that at least ~90%
#                 are still shadowed rather than skipped as overload)
#   base-fast     BASE_BIN's shadowdiff (an older build), fast secondary   } only with
#   base-slow     BASE_BIN's shadowdiff, 200 ms secondary                  } BASE_BIN set
#
# For every shadowdiff case the admin /metrics are read before and after the run, and the
# share of requests actually shadowed (both responses compared) and skipped (by reason) is
# printed beside it; errors are counted apart (the requests wrk cuts off when it stops show
# up there, as the primary's incomplete responses). Progress and per-round rows go to stderr; stdout gets a
# markdown table of the medians over rounds, the median ratios with their targets, and the
# ratios of each round.
#
#   bench/run.sh                 # THREADS=1 CONNECTIONS=32 DURATION=10s ROUNDS=3
#   ROUNDS=5 DURATION=20s bench/run.sh
#   BASE_BIN=/path/to/old/shadowdiff bench/run.sh
#
# Builds with `cargo build --profile profiling` (release plus line tables), into
# $CARGO_TARGET_DIR if set, else target/. Installs wrk and nginx from Debian's packages
# when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
BASE_BIN=${BASE_BIN:-}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  apt-get update -qq && apt-get install -y -qq wrk nginx >/dev/null
fi
need curl || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
cargo build --profile profiling --quiet --bin shadowdiff --example bench_backend --example bare_proxy
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/profiling/shadowdiff
BACKEND=$TARGET/profiling/examples/bench_backend
BARE=$TARGET/profiling/examples/bare_proxy
if [ -n "$BASE_BIN" ] && [ ! -x "$BASE_BIN" ]; then
  echo "BASE_BIN=$BASE_BIN is not an executable" >&2
  exit 2
fi

# Loopback ports, fixed so the nginx config stays readable.
P=19101; FAST=19102; SLOW=19103; BL=19104; NGX_PLAIN=19111; NGX_MIRROR=19112; NGX_MIRROR_SLOW=19113
BARE_PORT=19115
SD_S0=19120; SD=19121; SD_SLOW=19122; BASE_SD=19123; BASE_SD_SLOW=19124; SD_BL=19125
ADMIN_S0=19130; ADMIN=19131; ADMIN_SLOW=19132; BASE_ADMIN=19133; BASE_ADMIN_SLOW=19134; ADMIN_BL=19135

for port in $P $FAST $SLOW $BL $SD_BL $ADMIN_BL $NGX_PLAIN $NGX_MIRROR $NGX_MIRROR_SLOW $BARE_PORT $SD_S0 $SD \
            $SD_SLOW $BASE_SD $BASE_SD_SLOW $ADMIN_S0 $ADMIN $ADMIN_SLOW $BASE_ADMIN $BASE_ADMIN_SLOW; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is already in use: is another bench/run.sh running?" >&2
    exit 2
  fi
done

pids=()     # killed with SIGTERM
sd_pids=()  # shadowdiff: SIGINT first, so it drains and closes its store cleanly
# Waits up to $1 seconds for every pid after it to exit; SIGKILLs the ones still there.
reap() {
  local limit=$1 pid i
  shift
  for pid in "$@"; do
    for ((i = 0; i < limit * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() {
  set +e
  trap - EXIT INT TERM
  # shadowdiff first, while its upstreams are still up: otherwise the shadows in flight at
  # the end would be stored as errors that the benchmark itself caused.
  for pid in "${sd_pids[@]}"; do kill -INT "$pid" 2>/dev/null; done
  reap 15 "${sd_pids[@]}"
  # nginx's workers are its master's children: noted now, killed below if the master's
  # TERM did not take them along.
  local orphans=()
  for pid in "${pids[@]}"; do orphans+=($(pgrep -P "$pid" 2>/dev/null)); done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  reap 5 "${pids[@]}"
  for pid in "${orphans[@]}"; do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ] && kill -KILL "$pid" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until something listens on 127.0.0.1:$1 (up to 10 s); $2 is the pid that should.
wait_port() {
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "the process meant to listen on $1 exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 10 s" >&2
  exit 1
}

$BACKEND 127.0.0.1:$P 0 a & pids+=($!); wait_port $P $!
$BACKEND 127.0.0.1:$FAST 0 a & pids+=($!); wait_port $FAST $!
$BACKEND 127.0.0.1:$SLOW 200 a & pids+=($!); wait_port $SLOW $!
$BACKEND 127.0.0.1:$BL 0 a & pids+=($!); wait_port $BL $!
$BARE 127.0.0.1:$BARE_PORT 127.0.0.1:$P & pids+=($!); wait_port $BARE_PORT $!

cat > "$OUT/nginx.conf" <<NGINX
worker_processes auto;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
# In the foreground, so that its master is one of this script's children and is stopped
# with the rest; TERM to the master stops the workers.
daemon off;
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
nginx -c "$OUT/nginx.conf" -p "$OUT" & pids+=($!)
wait_port $NGX_PLAIN $!; wait_port $NGX_MIRROR $!; wait_port $NGX_MIRROR_SLOW $!

rm -f "$OUT"/sd-*.db*
# name bin listen admin secondary [extra flags...]
start_sd() {
  local name=$1 bin=$2 listen=$3 admin=$4 secondary=$5
  shift 5
  RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$listen" --primary "http://127.0.0.1:$P" \
    --secondary "http://127.0.0.1:$secondary" --db "$OUT/sd-$name.db" \
    --admin "127.0.0.1:$admin" "$@" 2> "$OUT/sd-$name.log" &
  sd_pids+=($!)
  wait_port "$listen" $!
  wait_port "$admin" $!
}
start_sd sample0 "$BIN" $SD_S0 $ADMIN_S0 $FAST --sample 0
start_sd full-fast "$BIN" $SD $ADMIN $FAST
start_sd full-slow "$BIN" $SD_SLOW $ADMIN_SLOW $SLOW --max-inflight 8192
start_sd baseline "$BIN" $SD_BL $ADMIN_BL $FAST --baseline "http://127.0.0.1:$BL"
CASES="direct nginx bare sample0 mirror-fast full-fast baseline mirror-slow full-slow"
if [ -n "$BASE_BIN" ]; then
  base_flags=()
  if "$BASE_BIN" serve --help 2>/dev/null | grep -q -- '--max-inflight'; then
    base_flags=(--max-inflight 8192)
  else
    echo "note: $BASE_BIN has no --max-inflight; its 200 ms case runs with its default" >&2
  fi
  start_sd base-fast "$BASE_BIN" $BASE_SD $BASE_ADMIN $FAST
  start_sd base-slow "$BASE_BIN" $BASE_SD_SLOW $BASE_ADMIN_SLOW $SLOW "${base_flags[@]}"
  CASES="direct nginx bare sample0 mirror-fast full-fast baseline base-fast mirror-slow full-slow base-slow"
fi

declare -A URL=(
  [direct]=$P [nginx]=$NGX_PLAIN [bare]=$BARE_PORT [sample0]=$SD_S0
  [mirror-fast]=$NGX_MIRROR [full-fast]=$SD [mirror-slow]=$NGX_MIRROR_SLOW [full-slow]=$SD_SLOW
  [base-fast]=$BASE_SD [base-slow]=$BASE_SD_SLOW [baseline]=$SD_BL
)
declare -A ADMIN_OF=(
  [sample0]=$ADMIN_S0 [full-fast]=$ADMIN [full-slow]=$ADMIN_SLOW
  [base-fast]=$BASE_ADMIN [base-slow]=$BASE_ADMIN_SLOW [baseline]=$ADMIN_BL
)
declare -A LABEL=(
  [direct]="direct to primary|-" [nginx]="nginx reverse proxy|-" [bare]="bare_proxy (hyper-util)|-"
  [sample0]="shadowdiff --sample 0|fast" [mirror-fast]="nginx mirror|fast"
  [full-fast]="shadowdiff|fast" [base-fast]="shadowdiff BASE_BIN|fast"
  [mirror-slow]="nginx mirror|200 ms" [full-slow]="shadowdiff --max-inflight 8192|200 ms"
  [base-slow]="shadowdiff BASE_BIN|200 ms" [baseline]="shadowdiff --baseline|fast"
)

to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    else print v }'
}

# Prints "outcome value" and "skipped:reason value" lines, summed over routes.
scrape() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" | awk '
    /^shadowdiff_requests_total\{/ {
      match($0, /outcome="[^"]*"/); o = substr($0, RSTART + 9, RLENGTH - 10); n[o] += $NF }
    /^shadowdiff_shadow_skipped_total\{/ {
      match($0, /reason="[^"]*"/); r = substr($0, RSTART + 8, RLENGTH - 9); n["skipped:" r] += $NF }
    /^shadowdiff_inflight_shadows / { n["inflight"] = $NF }
    END { for (k in n) print k, n[k] }'
}
# The judged total (every outcome), for waiting until the counts settle.
judged_total() { scrape "$1" | awk '$1 !~ /:/ && $1 != "inflight" { t += $2 } END { print t + 0 }'; }
inflight() { scrape "$1" | awk '$1 == "inflight" { print $2 }'; }

# After wrk: shadows still in flight finish and are counted by the compare thread a little
# later. Waits (up to 10 s) until nothing is in flight and the total stopped moving.
settle() {
  local admin=$1 last=-1 now i
  for ((i = 0; i < 50; i++)); do
    now=$(judged_total "$admin")
    if [ "$now" = "$last" ] && [ "$(inflight "$admin")" = "0" ]; then return 0; fi
    last=$now
    sleep 0.2
  done
  echo "warning: admin $admin did not settle within 10 s" >&2
}

# before-file after-file -> "shadowed%|shadowed x% (compared N), errors N, skipped y% (reason N, ...)"
shadow_share() {
  awk 'NR == FNR { b[$1] = $2; next } { d[$1] = $2 - b[$1] }
    END {
      total = d["matched"] + d["mismatched"] + d["error"] + d["skipped"]
      if (total <= 0) { print "n/a|no requests judged"; exit }
      shadowed = d["matched"] + d["mismatched"]
      reasons = ""
      for (k in d) if (k ~ /^skipped:/ && d[k] > 0) {
        r = substr(k, 9); reasons = reasons (reasons == "" ? "" : ", ") r " " d[k] }
      printf "%.1f|shadowed %.1f%% (compared %d of %d), errors %d, skipped %.1f%% (%d%s)\n",
        100 * shadowed / total, 100 * shadowed / total, shadowed, total,
        d["error"], 100 * d["skipped"] / total, d["skipped"],
        reasons == "" ? "" : ": " reasons
    }' "$1" "$2"
}

declare -A R      # [round,case] = "rps p50 p99"
declare -A SHARE  # [round,case] = shadowed percentage
# round case -> fills R and SHARE
measure() {
  local round=$1 name=$2 admin=${ADMIN_OF[$2]:-} out rps p50 p99 errors note=""
  if [ -n "$admin" ]; then scrape "$admin" > "$OUT/metrics-$name-r$round-before.txt"; fi
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:${URL[$name]}/users/42")
  echo "$out" > "$OUT/wrk-$name-r$round.txt"
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  R[$round,$name]="$rps $p50 $p99"
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr -s ' ' | paste -sd';' - || true)
  if [ -n "$admin" ]; then
    settle "$admin"
    scrape "$admin" > "$OUT/metrics-$name-r$round-after.txt"
    local share
    share=$(shadow_share "$OUT/metrics-$name-r$round-before.txt" "$OUT/metrics-$name-r$round-after.txt")
    SHARE[$round,$name]=${share%%|*}
    note=" | ${share#*|}"
  fi
  echo "round $round  $(printf '%-12s' "$name") req/s $rps  p50 $p50 ms  p99 $p99 ms$note${errors:+ | wrk: $errors}" >&2
}

field() { awk -v i="$3" '{print $i}' <<<"${R[$1,$2]:-}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() {
  tr ' ' '\n' <<<"$*" | grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "n/a"; else if (NR % 2) printf "%.2f", v[(NR + 1) / 2];
          else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The ratios: key|description|numerator case field|denominator case field|target
RATIOS=(
  "sample0/bare|shadowdiff --sample 0 / bare_proxy, req/s|sample0 1|bare 1|>= 0.95"
  "sample0/nginx|shadowdiff --sample 0 / nginx, req/s|sample0 1|nginx 1|>= 0.9 (stretch)"
  "bare/nginx|bare_proxy / nginx, req/s|bare 1|nginx 1|-"
  "full/bare|shadowdiff full / bare_proxy, req/s, fast secondary|full-fast 1|bare 1|>= 0.6"
  "full/mirror|shadowdiff full / nginx mirror, req/s, fast secondary|full-fast 1|mirror-fast 1|>= 1.5"
  "slow/fast p50|shadowdiff p50, 200 ms secondary / fast secondary|full-slow 2|full-fast 2|<= 1.2"
  "baseline/full|shadowdiff --baseline / shadowdiff, req/s, fast secondary|baseline 1|full-fast 1|>= 0.7"
  "baseline/full p50|shadowdiff --baseline p50 / shadowdiff p50, fast secondary|baseline 2|full-fast 2|<= 1.1"
  "mirror slow/fast p50|nginx mirror p50, 200 ms secondary / fast secondary|mirror-slow 2|mirror-fast 2|-"
)
if [ -n "$BASE_BIN" ]; then
  RATIOS+=(
    "full p99 / base p99|shadowdiff full p99 / BASE_BIN's, fast secondary|full-fast 3|base-fast 3|lower is better"
    "full / base req/s|shadowdiff full / BASE_BIN's, req/s, fast secondary|full-fast 1|base-fast 1|higher is better"
    "slow p99 / base slow p99|shadowdiff p99 / BASE_BIN's, 200 ms secondary|full-slow 3|base-slow 3|lower is better"
    "base full/bare|BASE_BIN full / bare_proxy, req/s, fast secondary|base-fast 1|bare 1|>= 0.6"
    "base full/mirror|BASE_BIN full / nginx mirror, req/s, fast secondary|base-fast 1|mirror-fast 1|>= 1.5"
    "base slow/fast p50|BASE_BIN p50, 200 ms secondary / fast secondary|base-slow 2|base-fast 2|<= 1.2"
  )
fi
declare -A RV  # [round,key] = ratio
# Fills RV for the round and sets ROUND_LINE; not called in $(...), whose subshell would
# lose RV.
round_ratios() {
  local round=$1 spec key num den line="" value
  for spec in "${RATIOS[@]}"; do
    IFS='|' read -r key _ num den _ <<<"$spec"
    read -r nc nf <<<"$num"; read -r dc df <<<"$den"
    value=$(ratio "$(field "$round" "$nc" "$nf")" "$(field "$round" "$dc" "$df")")
    RV[$round,$key]=$value
    line+="${line:+, }$key $value"
    case $key in
      "slow/fast p50") line+=" (shadowed ${SHARE[$round,full-slow]:-n/a}%)" ;;
      "base slow/fast p50") line+=" (shadowed ${SHARE[$round,base-slow]:-n/a}%)" ;;
    esac
  done
  ROUND_LINE="round $round: $line"
}

echo "$ROUNDS rounds of: $CASES; wrk -t$THREADS -c$CONNECTIONS -d$DURATION each" >&2
round_lines=()
for ((round = 1; round <= ROUNDS; round++)); do
  for name in $CASES; do measure "$round" "$name"; done
  round_ratios "$round"
  round_lines+=("$ROUND_LINE")
  echo "$ROUND_LINE" >&2
done

# case field -> median over rounds
med_field() {
  local r values=""
  for ((r = 1; r <= ROUNDS; r++)); do values+=" $(field "$r" "$1" "$2")"; done
  median "$values"
}
med_share() {
  local r values=""
  for ((r = 1; r <= ROUNDS; r++)); do values+=" ${SHARE[$r,$1]:-}"; done
  median "$values" | awk '$1 == "n/a" { print; next } { printf "%.1f", $1 }'
}

echo "Medians over $ROUNDS rounds (interleaved), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores."
echo
echo "| setup | secondary | req/s | p50 ms | p99 ms | shadowed |"
echo "|---|---|---:|---:|---:|---:|"
for name in $CASES; do
  IFS='|' read -r label secondary <<<"${LABEL[$name]}"
  share="-"
  [ -n "${ADMIN_OF[$name]:-}" ] && share="$(med_share "$name")%"
  echo "| $label | $secondary | $(med_field "$name" 1) | $(med_field "$name" 2) | $(med_field "$name" 3) | $share |"
done
echo
echo "| ratio (median of the rounds') | value | target |"
echo "|---|---:|---|"
for spec in "${RATIOS[@]}"; do
  IFS='|' read -r key desc _ _ target <<<"$spec"
  values=""
  for ((r = 1; r <= ROUNDS; r++)); do values+=" ${RV[$r,$key]:-}"; done
  extra=""
  case $key in
    "slow/fast p50") extra=" (shadowed $(med_share full-slow)%)" ;;
    "base slow/fast p50") extra=" (shadowed $(med_share base-slow)%)" ;;
  esac
  echo "| $desc | $(median "$values")$extra | $target |"
done
if [ -n "$BASE_BIN" ]; then
  echo
  echo "p99, fast secondary: shadowdiff full $(med_field full-fast 3) ms, BASE_BIN ($BASE_BIN) $(med_field base-fast 3) ms."
fi
echo
echo "Per round:"
echo
for line in "${round_lines[@]}"; do echo "- $line"; done
