#!/bin/bash
# bench/steps.sh: how the cost of a recipe grows with its size, and what a
# run costs at all. For N fs steps (half folders, half files with content):
# the first apply, a no-op re-run and a plan (medians), and peak RSS; plus
# `provision --version`.
#   bash bench/steps.sh [N...]        (default: 10 100 1000 10000)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
P=${PROVISION:-$ROOT/provision}
RUNS=${RUNS:-10}
sizes=${*:-10 100 1000 10000}
work=$(mktemp -d /tmp/provision-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "provision --version: median $(median_ms 50 "$P" --version) ms over 50 runs"
printf '%-7s %12s %14s %12s %14s\n' steps "apply (ms)" "no-op (ms)" "plan (ms)" "peak RSS (KiB)"
for n in $sizes; do
    rm -rf out .provision
    steps_recipe "$n" > bench.lua
    mkdir -p out
    t0=$(date +%s%N); "$P" -q bench.lua > /dev/null; t1=$(date +%s%N)
    apply=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
    runs=$RUNS; [ "$n" -ge 10000 ] && runs=5
    noop=$(median_ms "$runs" "$P" -q bench.lua)
    plan=$(median_ms "$runs" "$P" -q plan bench.lua)
    rss=$(peak_rss_kib "$P" -q bench.lua)
    printf '%-7s %12s %14s %12s %14s\n' "$n" "$apply" "$noop" "$plan" "$rss"
done
