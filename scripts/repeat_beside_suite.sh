#!/usr/bin/env bash
# Is a test that drives real programs reliable on a busy machine? Runs the tests a nextest
# filter selects N times in a row while the rest of the workspace's suite runs beside them,
# over and over, and prints each run's verdict and the tally.
#
#   scripts/repeat_beside_suite.sh 20 'test(heap_growth_names_the_growing_sites) | test(finds_every_leak_and_no_decoy)'
#
# Needs what the suite needs (Go on PATH or $GO, and the rest .ci/run installs). Logs of
# failed runs are kept in target/repeat/.
set -u
cd "$(dirname "$0")/.."
n=${1:?usage: $0 N FILTER}
filter=${2:?usage: $0 N FILTER}
out=target/repeat
mkdir -p "$out"
cargo nextest run --workspace --no-run >/dev/null 2>&1 || { echo "build failed"; exit 2; }

# The rest of the suite, again and again, until the runs below are done.
(
  while :; do
    cargo nextest run --workspace --no-fail-fast -E "not ($filter)" >"$out/suite.log" 2>&1
  done
) &
beside=$!
trap 'kill "$beside" 2>/dev/null; pkill -P "$beside" 2>/dev/null; wait 2>/dev/null' EXIT

pass=0
for i in $(seq 1 "$n"); do
  start=$(date +%s)
  if cargo nextest run --workspace -E "$filter" >"$out/run-$i.log" 2>&1; then
    pass=$((pass + 1))
    echo "run $i: pass ($(($(date +%s) - start)) s, load $(cut -d' ' -f1 /proc/loadavg))"
    rm -f "$out/run-$i.log"
  else
    echo "run $i: FAIL (log in $out/run-$i.log)"
  fi
done
echo "$pass passed, $((n - pass)) failed"
[ "$pass" -eq "$n" ]
