#!/bin/bash
# bench/teardown.sh: teardown against apply, as the recipe grows. For N
# fs.file steps (one folder), the first apply and the teardown that undoes
# it, each timed (wall, one run: both change the disk), and how many times
# each wrote the state file (strace: renames of <recipe>.json). Teardown
# used to save the whole state after every step it reverted (quadratic:
# 8,000 steps took 420 s); now each reverted step is one journal line and
# the state is written once at the end.
# The floor: the same files removed by a few lines of Python in the same
# order (newest first: lstat, read, unlink each), which on ext4 is itself not
# linear (a big folder emptied from its last entry gets slower per entry).
#   bash bench/teardown.sh [N...]        (default: 1000 2000 8000)
#   PROVISION=path/to/provision: another build (the one before, to compare)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${PROVISION:-$ROOT/provision}
sizes=${*:-1000 2000 8000}
work=$(mktemp -d /tmp/provision-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

ms_of() { local t0 t1; t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
state_writes() { # CMD...: how many times CMD renamed the state file into place
    strace -f -e trace=rename,renameat,renameat2 -o "$work/trace" "$@" > /dev/null 2>&1 || true
    grep -c 'teardown-bench.json' "$work/trace" || true
}

floor_ms() { # N: remove ./out/f1..fN newest first, as teardown does, in Python
    python3 - "$1" <<'PY'
import os, sys, time
n = int(sys.argv[1])
t = time.time()
for i in range(n, 0, -1):
    p = "out/f%d" % i
    os.lstat(p)
    with open(p, "rb") as f: f.read()
    os.unlink(p)
os.rmdir("out")
print(int((time.time() - t) * 1000))
PY
}

printf '%-7s %11s %14s %11s %12s %16s\n' steps "apply (ms)" "teardown (ms)" "td / apply" "floor (ms)" "state writes a/t"
for n in $sizes; do
    rm -rf out .provision
    {
        echo 'recipe { name = "teardown-bench" }'
        echo 'step "folder" { fs.directory "./out" }'
        echo "for i = 1, $n do step(\"f\" .. i) { fs.file { path = \"./out/f\" .. i, content = \"file \" .. i .. \"\\n\" } } end"
    } > r.lua
    apply=$(ms_of "$P" -q r.lua)
    td=$(ms_of "$P" -q teardown r.lua)
    [ -e out ] && { echo "teardown left ./out"; exit 1; }
    "$P" -q r.lua > /dev/null 2>&1
    rm -rf .provision
    floor=$(floor_ms "$n")
    # the same again under strace, for the count of state writes
    wa=$(state_writes "$P" -q r.lua)
    wt=$(state_writes "$P" -q teardown r.lua)
    printf '%-7s %11s %14s %11s %12s %16s\n' "$n" "$apply" "$td" \
        "$(awk -v a="$apply" -v t="$td" 'BEGIN { printf "%.2f", t / a }')" "$floor" "$wa / $wt"
done
