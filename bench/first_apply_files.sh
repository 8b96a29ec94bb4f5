#!/bin/bash
# bench/first_apply_files.sh: the first apply of N small files (issue 19's
# target: <= 0.4 s for 1,000), this build against another one, paired: the
# two run alternately, each from nothing (a fresh folder d/ and state), the
# disk synced before each run (so that neither pays for what the other
# left dirty). The time is the whole run, wall clock, to its exit: the
# files and the state on disk included. The recipe:
#
#   recipe { name = "f" }
#   for i = 1, N do step("f" .. i) { fs.file { path = "d/" .. i, content = "x", mode = "0644" } } end
#
# Then, once each under strace -c -f: the syscalls per step, and how many
# fsync and syncfs calls the run made.
#   PROVISION_OLD=/path/to/the/old/provision RUNS=11 N=1000 bash bench/first_apply_files.sh
#   PROVISION=another build than ./provision; BENCH_DIR=where the files go
#   (default /tmp: its filesystem is the one measured; see fresh() below
#   for why a folder that other runs churn measures the allocator too)
# Without PROVISION_OLD, this build alone. To build the old one:
#   git worktree add /tmp/before COMMIT && make -C /tmp/before
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NEW=${PROVISION:-$ROOT/provision}
OLD=${PROVISION_OLD:-}
RUNS=${RUNS:-11}
N=${N:-1000}
[ -x "$NEW" ] || { echo "bench/first_apply_files.sh: $NEW is not an executable (make first)" >&2; exit 2; }
[ -z "$OLD" ] || [ -x "$OLD" ] || { echo "bench/first_apply_files.sh: PROVISION_OLD=$OLD is not an executable" >&2; exit 2; }
work=$(mktemp -d "${BENCH_DIR:-/tmp}/provision-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
{
    echo 'recipe { name = "f" }'
    echo "for i = 1, $N do step(\"f\" .. i) { fs.file { path = \"d/\" .. i, content = \"x\", mode = \"0644\" } } end"
} > r.lua

# each run in a folder of its own, all removed at the end only: on ext4 a
# file created soon after many were removed near it costs the inode
# allocator a scan past them (recently_deleted(): 0.2-0.5 ms a file on
# this VM's /tmp, which other runs churn), which would be measured too
fresh() {
    cd "$(mktemp -d "$work/run.XXXXXX")"
    mkdir d
    cp "$work/r.lua" .
    sync -f . 2> /dev/null || sync
}
# one first apply, in ms (3 decimals); fails loudly when the run does
apply_ms() {
    local t0 t1
    fresh
    t0=$(date +%s%N)
    "$1" -q r.lua > /dev/null 2> "$work/err" || { echo "$1 failed: $(cat "$work/err")" >&2; exit 1; }
    t1=$(date +%s%N)
    [ "$(ls d | wc -l)" = "$N" ] || { echo "$1: $(ls d | wc -l) files, not $N" >&2; exit 1; }
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m}'; }
syscalls() { # BIN: "per step, fsync, syncfs" from strace -c -f
    command -v strace > /dev/null || { echo "(no strace)"; return; }
    fresh
    strace -f -c -o "$work/sc" "$1" -q r.lua > /dev/null 2>&1
    cd "$work"
    awk -v n="$N" '$NF == "total" { total = $4 } $NF == "fsync" { f = $4 } $NF == "syncfs" { s = $4 }
                   END { printf "%.1f syscalls a step, fsync %d, syncfs %d", total / n, f, s }' "$work/sc"
}

echo "first apply of $N small files (fs.file, content \"x\", mode 0644), $(df -T . | awk 'NR == 2 { print $2 " on " $1 }'), RUNS=$RUNS"
echo "this: $NEW"
[ -z "$OLD" ] || echo "old:  $OLD"
new_t=() old_t=()
for ((i = 0; i < RUNS; i++)); do
    if [ -n "$OLD" ]; then
        # alternate which goes first
        if ((i % 2 == 0)); then old_t+=("$(apply_ms "$OLD")"); new_t+=("$(apply_ms "$NEW")")
        else new_t+=("$(apply_ms "$NEW")"); old_t+=("$(apply_ms "$OLD")"); fi
    else
        new_t+=("$(apply_ms "$NEW")")
    fi
done
mn=$(median "${new_t[@]}")
printf '  this: median %8s ms  (runs: %s)\n' "$mn" "${new_t[*]}"
if [ -n "$OLD" ]; then
    mo=$(median "${old_t[@]}")
    printf '  old:  median %8s ms  (runs: %s)\n' "$mo" "${old_t[*]}"
    printf '  this / old: %s\n' "$(awk -v a="$mn" -v b="$mo" 'BEGIN { printf "%.3f", a / b }')"
fi
echo "  this: $(syscalls "$NEW")"
[ -z "$OLD" ] || echo "  old:  $(syscalls "$OLD")"
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
