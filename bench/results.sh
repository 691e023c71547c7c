#!/usr/bin/env bash
# Regenerates bench/RESULTS.md: the load comparison (bench/run.sh), memory under floods
# (bench/memory.sh), the criterion benches of the compare engine and the store, and the
# report over 1,000,000 stored mismatches (bench/report-1m.sh). Takes about 15 minutes
# (run.sh alone: 3 interleaved rounds of 8 contenders, 10 s each).
#
#   bench/results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
load=$(bench/run.sh)
memory=$(bench/memory.sh)
cargo bench --quiet --bench compare -- --warm-up-time 1 --measurement-time 3 --noplot \
  > "$OUT/criterion-compare.txt" 2>&1
cargo bench --quiet --bench store -- --warm-up-time 1 --measurement-time 3 --noplot \
  > "$OUT/criterion-store.txt" 2>&1
report=$(sh bench/report-1m.sh 2>&1 | grep -E "report|gate|mismatches" || true)

# criterion prints "name  time: [lo mid hi]" then "thrpt: [lo mid hi]" lines.
criterion_table() {
  awk '
    /time:/ { name = $1; if (name == "time:") name = prev }
    /thrpt:/ { gsub(/\[|\]/, ""); printf "| `%s` | %s %s |\n", name, $4, $5 }
    { prev = $1 }' "$1"
}

{
  echo "# Benchmark results"
  echo
  echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(nproc) cores, $(uname -m)."
  echo "Regenerate with \`bench/results.sh\`; each section names the script that measures it."
  echo "Everything runs on one machine over loopback, side by side in one run: compare ratios,"
  echo "not absolute numbers, across machines."
  echo
  echo "## Load: shadowdiff against bare_proxy, nginx and nginx mirror (bench/run.sh)"
  echo
  echo "$load"
  echo
  echo "## Memory under a flood (bench/memory.sh)"
  echo
  echo "$memory"
  echo
  echo "Target: peak at most 64 MiB + max-inflight x max-body."
  echo
  echo "## Compare engine (cargo bench --bench compare), input throughput, both sides counted"
  echo
  echo "| case | median |"
  echo "|---|---:|"
  criterion_table "$OUT/criterion-compare.txt"
  echo
  echo "Target: at least 150 MB/s for equal 10 KB pairs."
  echo
  echo "## Store (cargo bench --bench store)"
  echo
  echo "| case | median |"
  echo "|---|---:|"
  criterion_table "$OUT/criterion-store.txt"
  echo
  echo "Target: at least 20,000 mismatches per second through the writer."
  echo
  echo "## Report over 1,000,000 stored mismatches (bench/report-1m.sh)"
  echo
  echo '```'
  echo "$report"
  echo '```'
  echo
  echo "Target: under 5 seconds, with memory independent of the number of rows."
} > bench/RESULTS.md
cat bench/RESULTS.md
