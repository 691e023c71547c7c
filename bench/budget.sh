#!/usr/bin/env bash
# Peak resident memory of serve while REQUESTS clients POST a BODY-sized body each, all at
# once, with writes shadowed: the primary reads and answers every one, the secondary never
# answers, so every shadow holds its request body until the secondary timeout. Without a
# memory budget the peak grows with REQUESTS x BODY; with --max-shadow-memory it stays near
# the budget, and the requests beyond it are skipped as `overload`.
#
#   bench/budget.sh                                  # the default budget (256 MiB)
#   bench/budget.sh --max-shadow-memory 64MiB        # extra serve flags go last
#   REQUESTS=400 BODY_MIB=1 BIN=target/profiling/shadowdiff bench/budget.sh
#
# Prints one line: requests, body size, the flags, peak RSS (VmHWM) and the skip counts.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-400}
BODY_MIB=${BODY_MIB:-1}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug/shadowdiff}
OUT=$(mktemp -d)
P=19301; S=19302; SD=19303
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT

# Primary: reads each body whole, answers 200.
python3 - "$P" <<'PY' & pids+=($!)
import http.server, sys
class Primary(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        left = int(self.headers.get("content-length", 0))
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                return
            left -= len(chunk)
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True
Server(("127.0.0.1", int(sys.argv[1])), Primary).serve_forever()
PY
# Secondary: accepts and never reads or answers (a stalled upstream).
python3 - "$S" <<'PY' & pids+=($!)
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
held = []
while True:
    held.append(s.accept()[0])
PY
head -c $((BODY_MIB * 1024 * 1024)) /dev/urandom > "$OUT/body.bin"
sleep 0.5

RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:$SD \
  --primary http://127.0.0.1:$P --secondary http://127.0.0.1:$S \
  --db "$OUT/budget.db" --shadow-writes --max-body "${BODY_MIB}MiB" \
  --secondary-timeout 120s --breaker-threshold 0 --drain-timeout 1s --admin off "$@" &
sd=$!; pids+=($sd)
sleep 1
seq "$REQUESTS" | xargs -P "$REQUESTS" -I{} curl -s -o /dev/null -H 'Expect:' \
  -H 'content-type: application/octet-stream' --data-binary @"$OUT/body.bin" \
  "http://127.0.0.1:$SD/upload/{}"
hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' /proc/$sd/status)
kill -INT $sd; wait $sd || true
skips=$(sqlite3 "$OUT/budget.db" \
  "SELECT group_concat(reason || '=' || n, ' ') FROM (SELECT reason, SUM(count) n FROM outcome_counts GROUP BY reason)" 2>/dev/null || echo "?")
echo "requests=$REQUESTS body=${BODY_MIB}MiB flags=[$*] peak_rss=${hwm}MiB outcomes: $skips"
