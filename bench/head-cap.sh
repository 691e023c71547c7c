#!/usr/bin/env bash
# CPU a replay spends on a hostile secondary whose every answer carries a huge header
# field, next to a normal secondary: REQUESTS requests, one worker, one thread.
#
#   bench/head-cap.sh                          # FILLER_MIB=10 REQUESTS=100
#   BASE_BIN=/tmp/old/shadowdiff bench/head-cap.sh   # an older build in the same run
#
# Prints user + system CPU seconds of each replay and the error kinds it stored.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-100}
FILLER_MIB=${FILLER_MIB:-10}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug/shadowdiff}
OUT=$(mktemp -d)
NORMAL=19401; HOSTILE=19402
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
cat > "$OUT/server.py" <<'PY'
import socket, sys, threading
response = (b"HTTP/1.1 200 OK\r\nx-filler: " + b"a" * int(sys.argv[2])
            + b"\r\ncontent-length: 2\r\n\r\nok")
def serve(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            buf = buf[buf.index(b"\r\n\r\n") + 4:]
            conn.sendall(response)
    except OSError:
        pass
    finally:
        conn.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
python3 "$OUT/server.py" $NORMAL 2 & pids+=($!)
python3 "$OUT/server.py" $HOSTILE $((FILLER_MIB * 1024 * 1024)) & pids+=($!)
for i in $(seq "$REQUESTS"); do echo "{\"method\":\"GET\",\"path\":\"/x/$i\"}"; done > "$OUT/traffic.jsonl"
sleep 0.5
for bin in ${BASE_BIN:-} "$BIN"; do
  for secondary in $NORMAL $HOSTILE; do
    rm -f "$OUT/r.db"*
    /usr/bin/time -o "$OUT/time" -f "%U %S" "$bin" replay --quiet --concurrency 1 --threads 1 \
      --primary http://127.0.0.1:$NORMAL --secondary http://127.0.0.1:$secondary \
      --db "$OUT/r.db" --input "$OUT/traffic.jsonl" >/dev/null 2>&1 || true
    cpu=$(awk '{print $1 + $2}' "$OUT/time" | tail -n 1)
    kinds=$(sqlite3 "$OUT/r.db" "SELECT group_concat(reason || '=' || n, ' ') FROM (SELECT reason, SUM(count) n FROM outcome_counts WHERE outcome = 'error' GROUP BY reason)")
    label=$([ "$secondary" = $HOSTILE ] && echo "${FILLER_MIB} MiB header" || echo normal)
    echo "$bin | $label | ${cpu}s CPU | errors: ${kinds:-none}"
  done
done
