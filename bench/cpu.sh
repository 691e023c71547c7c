#!/usr/bin/env bash
# Where the CPU goes per request: for each mode, wrk drives the proxy for DURATION and the
# CPU time (user + system, from /proc) that every process spent is divided by the requests
# wrk completed. Printed per process (the proxy, the primary and secondary bench_backend,
# wrk itself) and per thread of the proxy. On a machine that the benchmark saturates
# (2 cores here), requests/s is this total's inverse, so the table says what a change to
# the proxy can still win: the backends' and wrk's share is out of its reach.
#
# Modes:
#   bare      examples/bare_proxy.rs (hyper + hyper-util, nothing else)
#   sample0   shadowdiff serve --sample 0
#   full      shadowdiff serve, every request shadowed, compared, stored; fast secondary
#   slow      the same with a secondary that answers after 200 ms, --max-inflight 8192
#
#   bench/cpu.sh                      # MODES="bare sample0 full slow" ROUNDS=2 DURATION=8s
#   BIN=/path/to/older/shadowdiff MODES="full" bench/cpu.sh
#
# Builds with `cargo build --profile profiling` (into $CARGO_TARGET_DIR if set); installs
# wrk from Debian's packages when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
MODES=${MODES:-bare sample0 full slow}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-32}
command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile profiling --quiet --bin shadowdiff --example bench_backend --example bare_proxy
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/profiling/shadowdiff}
BARE=$TARGET/profiling/examples/bare_proxy
BACKEND=$TARGET/profiling/examples/bench_backend
TICK=$(getconf CLK_TCK)

P=19601; FAST=19602; SLOW=19603; SERVER=19610
for port in $P $FAST $SLOW $SERVER; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is already in use" >&2
    exit 2
  fi
done
WORK=$(mktemp -d)
pids=()
server=""
cleanup() {
  set +e
  trap - EXIT INT TERM
  if [ -n "$server" ]; then kill -KILL "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

$BACKEND 127.0.0.1:$P 0 a & pids+=($!); primary=$!; wait_port $P $!
$BACKEND 127.0.0.1:$FAST 0 a & pids+=($!); fast=$!; wait_port $FAST $!
$BACKEND 127.0.0.1:$SLOW 200 a & pids+=($!); slow=$!; wait_port $SLOW $!

# pid -> clock ticks of user + system time so far
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# mode round -> one table row on stdout, the proxy's threads on stderr
measure() {
  local mode=$1 round=$2 secondary=$fast cmd=() stop=INT
  case $mode in
    bare) cmd=("$BARE" "127.0.0.1:$SERVER" "127.0.0.1:$P"); stop=TERM ;;
    sample0|full|slow)
      rm -f "$WORK"/sd.db*
      cmd=("$BIN" serve --listen "127.0.0.1:$SERVER" --primary "http://127.0.0.1:$P"
           --db "$WORK/sd.db" --admin off)
      case $mode in
        sample0) cmd+=(--secondary "http://127.0.0.1:$FAST" --sample 0) ;;
        full) cmd+=(--secondary "http://127.0.0.1:$FAST") ;;
        slow) cmd+=(--secondary "http://127.0.0.1:$SLOW" --max-inflight 8192); secondary=$slow ;;
      esac
      ;;
    *) echo "unknown mode $mode (bare, sample0, full, slow)" >&2; exit 2 ;;
  esac
  RUST_LOG=warn "${cmd[@]}" 2> "$WORK/$mode.log" &
  server=$!
  wait_port $SERVER $server
  # Warm the pools before counting.
  wrk -t1 -c"$CONNECTIONS" -d1s "http://127.0.0.1:$SERVER/users/42" > /dev/null
  local p0 s0 b0 t0
  p0=$(ticks $server); s0=$(ticks $primary); b0=$(ticks $secondary)
  declare -A thread0=()
  for t in /proc/$server/task/*; do thread0[$t]=$(ticks "$server/task/${t##*/}"); done
  local out
  out=$( { /usr/bin/time -f "wrkcpu %U %S" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" \
    "http://127.0.0.1:$SERVER/users/42"; } 2>&1 )
  local requests rps wrk_cpu
  requests=$(awk '/requests in/ { print $1 }' <<<"$out")
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  wrk_cpu=$(awk '/^wrkcpu/ { print $2 + $3 }' <<<"$out")
  # ticks -> microseconds per request
  us() { awk -v t="$1" -v n="$requests" -v hz="$TICK" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }'; }
  local proxy_us primary_us secondary_us wrk_us
  proxy_us=$(us $(( $(ticks $server) - p0 )))
  primary_us=$(us $(( $(ticks $primary) - s0 )))
  if [ "$mode" = bare ] || [ "$mode" = sample0 ]; then secondary_us=0; else
    secondary_us=$(us $(( $(ticks $secondary) - b0 ))); fi
  wrk_us=$(awk -v c="$wrk_cpu" -v n="$requests" 'BEGIN { printf "%.0f", c * 1e6 / n }')
  local threads="" name
  for t in /proc/$server/task/*; do
    name=$(cat "$t/comm")
    local spent=$(( $(ticks "$server/task/${t##*/}") - ${thread0[$t]:-0} ))
    [ "$spent" -gt 0 ] && threads="$threads $name $(us $spent)"
  done
  echo "round $round $mode: $rps req/s; threads (us/request):$threads" >&2
  echo "| $round | $mode | $rps | $proxy_us | $primary_us | $secondary_us | $wrk_us | $((proxy_us + primary_us + secondary_us + wrk_us)) |"
  kill -"$stop" $server
  for ((i = 0; i < 100; i++)); do kill -0 $server 2>/dev/null || break; sleep 0.1; done
  kill -KILL $server 2>/dev/null || true
  wait $server 2>/dev/null || true
  server=""
}

echo "$(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), BIN=$BIN, $(nproc) cores, wrk -t1 -c$CONNECTIONS -d$DURATION."
echo
echo "CPU microseconds per request (user + system), by process:"
echo
echo "| round | mode | req/s | proxy | primary | secondary | wrk | total |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in $MODES; do measure "$mode" "$round"; done
done
