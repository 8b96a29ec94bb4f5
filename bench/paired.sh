#!/bin/bash
# bench/paired.sh: this build against another (the one before a change), on
# the recipe of bench/steps.sh, the two run alternately so that both see the
# same machine. For each N: the first apply (a fresh ./out and state each
# run), the no-op re-run and the plan; medians of RUNS runs each, and the
# ratio this/before.
#   bash bench/paired.sh BEFORE_BINARY [N...]     (default N: 100 1000 10000)
#   RUNS=15 (default 11; 5 for the first apply at 10,000 steps)
# To build the one before: git worktree add /tmp/before COMMIT && make -C /tmp/before
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
[ $# -ge 1 ] || { echo "usage: bash bench/paired.sh BEFORE_BINARY [N...]" >&2; exit 2; }
OLD=$(realpath "$1"); shift
NEW=${PROVISION:-$ROOT/provision}
[ -x "$OLD" ] || { echo "bench/paired.sh: $OLD is not an executable" >&2; exit 2; }
RUNS=${RUNS:-11}
sizes=${*:-100 1000 10000}
work=$(mktemp -d /tmp/provision-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

us_of() { local t0 t1; t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m / 1000}'; }
# paired WHAT RUNS ARGS...: alternate before/this; prints "before this ratio"
paired() {
    local what=$1 runs=$2 i b=() t=(); shift 2
    for ((i = 0; i < runs; i++)); do
        for who in old new; do
            local bin=$OLD d=$work/old; [ $who = new ] && { bin=$NEW; d=$work/new; }
            if [ "$what" = apply ]; then rm -rf "$d/out" "$d/.provision"; mkdir -p "$d/out"; fi
            local us; us=$(cd "$d" && us_of "$bin" -q "$@" bench.lua)
            if [ $who = old ]; then b+=("$us"); else t+=("$us"); fi
        done
    done
    local mb mt; mb=$(median "${b[@]}"); mt=$(median "${t[@]}")
    printf '%10s %10s %7s' "$mb" "$mt" "$(awk -v a="$mb" -v b="$mt" 'BEGIN { printf "%.3f", b / a }')"
}

echo "before: $OLD"
echo "this:   $NEW"
printf '%-6s %-8s %10s %10s %7s\n' steps run "before ms" "this ms" ratio
for n in $sizes; do
    for who in old new; do mkdir -p "$work/$who"; steps_recipe "$n" > "$work/$who/bench.lua"; done
    runs=$RUNS; [ "$n" -ge 10000 ] && runs=5
    printf '%-6s %-8s %s\n' "$n" "apply" "$(paired apply "$runs")"
    # the state of the last apply stays: what follows re-runs it
    printf '%-6s %-8s %s\n' "$n" "no-op" "$(paired noop "$RUNS")"
    printf '%-6s %-8s %s\n' "$n" "plan" "$(paired noop "$RUNS" plan)"
done
