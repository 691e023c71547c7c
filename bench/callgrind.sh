#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: a figure that, unlike requests
# per second, does not move with the machine's load, so two builds can be compared on a
# busy or small machine.
#
# For each mode the server runs under `valgrind --tool=callgrind` (every thread counted:
# tokio's workers, and for shadowdiff its compare and store threads too, so the figure is
# the whole process's cost per request) against bench_backend upstreams that answer at
# once and run natively. A python3 http.client loop sends exactly N1 sequential GET
# requests over one keep-alive connection; the server is stopped (SIGINT: shadowdiff
# drains its shadows and closes its store), and callgrind writes its totals. A second run
# does the same with N2 requests, and
#
#     instructions per request = (Ir(N2) - Ir(N1)) / (N2 - N1)
#
# so that startup and shutdown cancel out. The per-function profile is the same difference
# taken function by function (self cost, per request).
#
# Modes:
#   sample0   shadowdiff serve --sample 0: the pass-through path alone
#   full      shadowdiff serve with default sampling (every request shadowed, compared,
#             stored), fast secondary
#   bare      examples/bare_proxy.rs, hyper + hyper-util alone: the ceiling of the design
#
#   bench/callgrind.sh                            # the profiling build of this tree
#   BIN=/path/to/older/shadowdiff bench/callgrind.sh
#   MODES="sample0 full" N1=200 N2=1000 bench/callgrind.sh
#
# BIN defaults to the profiling build (`cargo build --profile profiling`, in
# $CARGO_TARGET_DIR if set); bare_proxy and bench_backend always come from this tree's
# profiling build. Output: a markdown summary on stdout; callgrind files, annotations and
# per-request profiles under bench/out/callgrind/. Installs valgrind from Debian's
# packages when missing (needs root). Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-500}
N2=${N2:-2500}
MODES=${MODES:-sample0 full bare}
TOP=${TOP:-25}
OUT=${OUT:-bench/out}/callgrind
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ "$N2" -le "$N1" ]; then echo "N2 ($N2) must be larger than N1 ($N1)" >&2; exit 2; fi

command -v valgrind >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v python3 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
cargo build --profile profiling --quiet --bin shadowdiff --example bench_backend --example bare_proxy
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/profiling/shadowdiff}
BARE=$TARGET/profiling/examples/bare_proxy
BACKEND=$TARGET/profiling/examples/bench_backend
[ -x "$BIN" ] || { echo "BIN=$BIN is not an executable" >&2; exit 2; }

P=19501; FAST=19502; SERVER=19510
for port in $P $FAST $SERVER; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is already in use" >&2
    exit 2
  fi
done

STORE=$(mktemp -d)
pids=()
server=""
cleanup() {
  set +e
  trap - EXIT INT TERM
  if [ -n "$server" ]; then kill -KILL "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$STORE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until something listens on 127.0.0.1:$1 (up to $3 s); $2 is the pid that should.
wait_port() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "the process meant to listen on $1 exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after $3 s" >&2
  exit 1
}

$BACKEND 127.0.0.1:$P 0 a & pids+=($!); wait_port $P $! 10
$BACKEND 127.0.0.1:$FAST 0 a & pids+=($!); wait_port $FAST $! 10

# N sequential GETs over one keep-alive connection; exits non-zero unless all are 200.
client() {
  python3 - "$SERVER" "$1" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
bad = 0
for _ in range(n):
    conn.request("GET", "/users/42")
    response = conn.getresponse()
    response.read()
    bad += response.status != 200
conn.close()
if bad:
    sys.exit(f"{bad} of {n} responses were not 200")
PY
}

# mode n -> runs the server under callgrind for n requests; prints its total Ir
run_one() {
  local mode=$1 n=$2 file="$OUT/$1-$2.callgrind" i stop=INT
  local cmd=()
  case $mode in
    sample0|full)
      rm -f "$STORE/$mode-$n.db"*
      cmd=("$BIN" serve --listen "127.0.0.1:$SERVER" --primary "http://127.0.0.1:$P"
           --secondary "http://127.0.0.1:$FAST" --db "$STORE/$mode-$n.db" --admin off)
      [ "$mode" = sample0 ] && cmd+=(--sample 0)
      ;;
    bare)
      # No signal handler of its own (and a background job of a script ignores SIGINT):
      # SIGTERM's default action ends it, and valgrind still writes the counts.
      cmd=("$BARE" "127.0.0.1:$SERVER" "127.0.0.1:$P")
      stop=TERM
      ;;
    *) echo "unknown mode $mode (sample0, full, bare)" >&2; exit 2 ;;
  esac
  rm -f "$file"
  RUST_LOG=warn valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file="$file" \
    "${cmd[@]}" 2> "$OUT/$mode-$n.log" &
  server=$!
  wait_port $SERVER $server 120
  client "$n"
  kill -"$stop" "$server"
  # Under valgrind the drain and exit are slow; callgrind writes its file at the very end.
  for ((i = 0; i < 1200; i++)); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server" 2>/dev/null; then
    echo "$mode ($n requests) did not exit within 120 s of SIG$stop" >&2
    exit 1
  fi
  wait "$server" 2>/dev/null || true
  server=""
  if [ "$mode" != bare ]; then
    # Every request judged and stored before the exit, or the difference would not be
    # N2 - N1 requests' worth of work.
    "$BIN" report --db "$STORE/$mode-$n.db" --format json 2>/dev/null | python3 -c '
import json, sys
mode, n = sys.argv[1], int(sys.argv[2])
s = json.load(sys.stdin)["summary"]
compared = s["matched"] + s["mismatched"]
judged, errors, skipped, reasons = s["requests"], s["errors"], s["skipped"], s["skipped_by_reason"]
print(f"{mode}, {n} requests: the store has {judged} judged: compared {compared},"
      f" errors {errors}, skipped {skipped} {reasons or str()}")
expected = 0 if mode == "sample0" else n
if compared != expected or judged != n:
    print(f"warning: expected {n} judged and {expected} compared", file=sys.stderr)
' "$mode" "$n" >&2 || echo "warning: could not read the store of $mode, $n requests" >&2
  fi
  awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

# Self cost per function, per request: (annotation of N2 - annotation of N1) / (N2 - N1).
per_request_profile() {
  local mode=$1
  for n in "$N1" "$N2"; do
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$OUT/$mode-$n.callgrind" \
      > "$OUT/$mode-$n.annotate.txt" 2>/dev/null
  done
  python3 - "$OUT/$mode-$N1.annotate.txt" "$OUT/$mode-$N2.annotate.txt" "$N1" "$N2" "$TOP" <<'PY'
import re, sys
first, second, n1, n2, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
line_re = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*\S)\s*$")
def parse(path):
    costs, in_functions = {}, False
    for line in open(path, errors="replace"):
        if "file:function" in line:
            in_functions = True
            continue
        if not in_functions or line.startswith("---"):
            continue
        if not line.strip():
            break
        m = line_re.match(line)
        if m and not m.group(2).startswith("PROGRAM TOTALS"):
            name = function_of(m.group(2))
            costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs
def function_of(entry):
    # "file:function [object]" -> "function"; the annotator names the object only where it
    # changes, so the same function can come with and without it: they are summed.
    m = re.match(r"(?:[^:]*:)?(.*?)(?: \[[^\]]*\])?$", entry)
    return m.group(1) if m else entry
a, b = parse(first), parse(second)
diff = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
total = sum(diff.values())
print(f"{'Ir/request':>11}  {'share':>6}  function")
for name, value in sorted(diff.items(), key=lambda kv: -kv[1])[:top]:
    print(f"{value:>11,.0f}  {100 * value / total if total else 0:>5.1f}%  {name}")
PY
}

# 1234567 -> 1,234,567
group() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }

declare -A IR
for mode in $MODES; do
  for n in "$N1" "$N2"; do
    IR[$mode,$n]=$(run_one "$mode" "$n")
    echo "$mode, $n requests: $(group "${IR[$mode,$n]}") instructions" >&2
  done
  per_request_profile "$mode" > "$OUT/$mode-per-request.txt"
  # awk rather than head: head would leave the annotator a broken pipe (and pipefail).
  callgrind_annotate --inclusive=no --auto=no "$OUT/$mode-$N2.callgrind" 2>/dev/null \
    | awk -v n=$((TOP + 20)) 'NR <= n' > "$OUT/$mode-$N2.top.txt"
done

echo "$(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), BIN=$BIN, N1=$N1, N2=$N2, $(valgrind --version)."
echo
echo "| mode | Ir, $N1 requests | Ir, $N2 requests | instructions per request |"
echo "|---|---:|---:|---:|"
for mode in $MODES; do
  a=${IR[$mode,$N1]} b=${IR[$mode,$N2]}
  echo "| $mode | $(group "$a") | $(group "$b") | $(group $(((b - a) / (N2 - N1)))) |"
done
for mode in $MODES; do
  echo
  echo "Top self cost per request, $mode (bench/out/callgrind/$mode-per-request.txt):"
  echo
  echo '```'
  awk -v n=$((TOP + 1)) 'NR <= n' "$OUT/$mode-per-request.txt"
  echo '```'
done
