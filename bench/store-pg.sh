#!/bin/sh
# The PostgreSQL store (issue 16): writer throughput of one instance and of three at once,
# and a report over 1,000,000 stored mismatches, against a PostgreSQL server of Debian's
# packages that this script starts in a temporary directory with its default durability
# settings (fsync on, synchronous_commit on: what a real server does) and removes at the
# end. Run from the repository root: sh bench/store-pg.sh
#
# ROUNDS=3     writer rounds; each measurement of each round gets a fresh database
# N=200000     mismatches the single writer sends; each of the three sends N/2
# REPORT_N=1000000  mismatches filled for the report (and REPORT_N/10 for the comparison)
set -eu
ROUNDS=${ROUNDS:-3}
N=${N:-200000}
REPORT_N=${REPORT_N:-1000000}
REL=${CARGO_TARGET_DIR:-target}/release

cargo build --release --quiet --example store_writer --example fill_store --bin shadowdiff

# PostgreSQL's server binaries: pg_config's, else the highest /usr/lib/postgresql/*/bin.
pg_bin() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4n | tail -n 1
}
PGBIN=$(pg_bin)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  PGBIN=$(pg_bin)
fi
[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL server binaries found" >&2; exit 1; }

# The server runs as an unprivileged user: postgres when this script is root.
if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/shadowdiff-pg.XXXXXX")
STARTED=
cleanup() {
  status=$?
  if [ -n "$STARTED" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; fi

as_pg "$PGBIN/initdb" -D "$DIR/data" --auth=trust -U shadowdiff -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }

# A free loopback port: one nobody listens on, and retry when another process took it first.
port_free() { [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
PORT=
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  p=$(( 20000 + ($$ * 7 + attempt * 131) % 30000 ))
  port_free "$p" || continue
  if as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $p -k $DIR" start >/dev/null 2>&1; then
    PORT=$p
    STARTED=1
    break
  fi
  grep -q "could not bind\|already in use" "$DIR/server.log" 2>/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
done
[ -n "$PORT" ] || { echo "could not start PostgreSQL on a free port" >&2; cat "$DIR/server.log" >&2; exit 1; }

sql() { # sql DB STATEMENT: one value, unaligned
  "$PGBIN/psql" -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U shadowdiff -d "$1" -c "$2"
}
url() { echo "postgres://shadowdiff@127.0.0.1:$PORT/$1?sslmode=disable"; }
fresh_db() { sql postgres "CREATE DATABASE $1" >/dev/null; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
# The binaries are built from the work tree: say so when it differs from the commit.
changed=$(git status --porcelain -- src examples Cargo.toml Cargo.lock 2>/dev/null | wc -l)
[ "$changed" = 0 ] || echo "work tree: $changed uncommitted changes under src/, examples/, Cargo.* are in the binaries"
echo "server: $(sql postgres 'SHOW server_version'), port $PORT, data in $DIR ($(df -T "$DIR" | awk 'NR==2 {print $2}') on $(df "$DIR" | awk 'NR==2 {print $1}'))"
printf 'server settings (defaults):'
for s in fsync synchronous_commit wal_sync_method full_page_writes wal_level shared_buffers max_wal_size checkpoint_timeout; do
  printf ' %s=%s' "$s" "$(sql postgres "SHOW $s")"
done
echo
# What one commit's flush costs on this disk (the writer commits one transaction per batch).
WAL_SYNC=$(sql postgres "SHOW wal_sync_method")
"$PGBIN/pg_test_fsync" -s 1 -f "$DIR/fsync.test" 2>/dev/null \
  | awk -v m="$WAL_SYNC" '$1 == m && /ops\/sec/ {sub(/^ +/, ""); gsub(/ +/, " "); print "pg_test_fsync, one 8kB write with " $0; exit}' || true
rm -f "$DIR/fsync.test"

median() { # median of the arguments
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
rate_of() { awk '{print $(NF - 1)}' "$1"; }
verify() { # verify DB EXPECTED: every mismatch and difference stored, nothing lost
  got=$(sql "$1" "SELECT COUNT(*) FROM mismatches")
  diffs=$(sql "$1" "SELECT COUNT(*) FROM differences")
  losses=$(sql "$1" "SELECT COUNT(*) FROM losses")
  if [ "$got" != "$2" ] || [ "$diffs" != "$(( $2 * 2 ))" ] || [ "$losses" != 0 ]; then
    echo "FAIL $1: $got mismatches stored of $2 sent, $diffs differences (expected $(( $2 * 2 ))), $losses loss rows:" >&2
    sql "$1" "SELECT reason, SUM(count) FROM losses GROUP BY reason" >&2 || true
    exit 1
  fi
}

HALF=$(( N / 2 ))
SINGLES=
SUMS=
RATIOS=
echo
echo "writer: one store_writer x $N mismatches, then three at once x $HALF each; a fresh database for each"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  fresh_db "single_$r"
  "$REL"/examples/store_writer "$(url "single_$r")" "$N" single >"$DIR/single.out"
  verify "single_$r" "$N"
  single=$(rate_of "$DIR/single.out")

  fresh_db "three_$r"
  began=$(date +%s.%N)
  for i in 1 2 3; do
    "$REL"/examples/store_writer "$(url "three_$r")" "$HALF" "instance-$i" >"$DIR/three-$i.out" &
    eval "pid_$i=$!"
  done
  failed=0
  for i in 1 2 3; do
    eval "wait \$pid_$i" || failed=1
  done
  ended=$(date +%s.%N)
  [ "$failed" = 0 ] || { echo "a store_writer of round $r failed" >&2; exit 1; }
  verify "three_$r" "$(( HALF * 3 ))"
  a=$(rate_of "$DIR/three-1.out"); b=$(rate_of "$DIR/three-2.out"); c=$(rate_of "$DIR/three-3.out")
  sum=$(( a + b + c ))
  wall=$(awk -v s="$began" -v e="$ended" -v n="$(( HALF * 3 ))" 'BEGIN {printf "%.2f s, %.0f mismatches/s", e - s, n / (e - s)}')
  ratio=$(awk -v s="$sum" -v o="$single" 'BEGIN {printf "%.2f", s / o}')
  echo "round $r: single $single mismatches/s; three together $a + $b + $c = $sum mismatches/s (wall clock $wall); ratio $ratio; stored and verified, no losses"
  SINGLES="$SINGLES $single"
  SUMS="$SUMS $sum"
  RATIOS="$RATIOS $ratio"
  sql postgres "DROP DATABASE single_$r" >/dev/null
  sql postgres "DROP DATABASE three_$r" >/dev/null
  r=$(( r + 1 ))
done
list() { echo "$*" | sed 's/^ *//; s/ \{1,\}/, /g'; }
# shellcheck disable=SC2086
echo "single: median $(median $SINGLES) mismatches/s (rounds $(list $SINGLES)); target >= 20000"
# shellcheck disable=SC2086
echo "three together: median $(median $SUMS) mismatches/s (rounds $(list $SUMS))"
# shellcheck disable=SC2086
echo "ratio: median $(printf '%s\n' $RATIOS | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}') (rounds $(list $RATIOS)); target >= 1.5"

report() { # report DB COUNT
  fresh_db "$1"
  echo
  printf 'fill_store %s: ' "$2"
  "$REL"/examples/fill_store "$(url "$1")" "$2"
  echo "database $1: $(sql "$1" "SELECT COUNT(*) FROM mismatches") mismatches, $(sql "$1" "SELECT pg_size_pretty(pg_database_size('$1'))"), $(sql "$1" "SELECT COUNT(*) FROM outcome_counts") outcome_counts rows"
  for format in json html; do
    /usr/bin/time -f "report $2 --format $format: %e s, max RSS %M KiB" \
      "$REL"/shadowdiff report --store "$(url "$1")" --format "$format" --output /dev/null 2>&1
  done
  /usr/bin/time -f "gate $2: %e s, max RSS %M KiB" \
    "$REL"/shadowdiff gate --store "$(url "$1")" --max-mismatch-rate 1 2>&1 >/dev/null
}
report report_full "$REPORT_N"
report report_tenth "$(( REPORT_N / 10 ))"
echo
echo "targets: report over 1,000,000 mismatches < 5 s; client memory independent of the row count"
