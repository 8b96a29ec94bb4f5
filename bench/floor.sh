#!/bin/bash
# bench/floor.sh: a no-op of N fs.file steps (content "x", mode 0644) against
# the floor: bench/floor.c, which makes the same lstat + open + read +
# compare per file and nothing else (process start included). Runs
# alternate (floor, provision, floor, ...) so each ratio is from one paired
# run; medians of RUNS. Also: provision's peak RSS on the no-op, its `list`
# and `plan` of the same recipe, and --version; with hyperfine, --version
# and a 10-step no-op as hyperfine -N measures them.
#   bash bench/floor.sh [N...]        (default: 1000 10000; RUNS=21)
#   PROVISION_OLD=/path/to/provision  the build before: its --version and
#                 10-step no-op alternating with this build's (bench/
#                 alternate.py, 201 rounds; the 10-step no-op in a folder and
#                 state of its own, so neither build's run lock is the other's)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
P=$(realpath "${PROVISION:-$ROOT/provision}")
OLD=${PROVISION_OLD:+$(realpath "$PROVISION_OLD")}
RUNS=${RUNS:-21}
sizes=${*:-1000 10000}
work=$(mktemp -d /tmp/provision-floor.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/floor" "$ROOT/bench/floor.c"
cd "$work"
us_of() { local t0 t1; t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m / 1000}'; }

echo "provision --version: median $(median_ms 51 "$P" --version) ms over 51 runs"
printf '%-7s %10s %10s %7s %10s %10s %12s\n' steps "floor ms" "no-op ms" ratio "list ms" "plan ms" "no-op RSS KiB"
declare -A noop_of
for n in $sizes; do
    rm -rf d .provision && mkdir d
    printf 'recipe { name = "floor" }\nfor i = 1, %d do step("f" .. i) { fs.file { path = "d/" .. i, content = "x", mode = "0644" } } end\n' "$n" > r.lua
    "$P" -q r.lua > /dev/null
    "$work/floor" d "$n" > /dev/null || { echo "bench/floor.sh: the files are not in place after the apply" >&2; exit 1; }
    "$P" -q r.lua | grep -q "changed=0" || { echo "bench/floor.sh: the re-run is not a no-op" >&2; exit 1; }
    runs=$RUNS; [ "$n" -gt 10000 ] && runs=5
    f=(); p=()
    for ((i = 0; i < runs; i++)); do
        f+=("$(us_of "$work/floor" d "$n")")
        p+=("$(us_of "$P" -q r.lua)")
    done
    mf=$(median "${f[@]}"); mp=$(median "${p[@]}")
    noop_of[$n]=$mp
    list=$(median_ms "$runs" "$P" list r.lua)
    plan=$(median_ms "$runs" "$P" -q plan r.lua)
    rss=$(peak_rss_kib "$P" -q r.lua)
    printf '%-7s %10s %10s %7s %10s %10s %12s\n' "$n" "$mf" "$mp" \
        "$(awk -v a="$mf" -v b="$mp" 'BEGIN { printf "%.2fx", b / a }')" "$list" "$plan" "$rss"
done
# the issue's own measure of the fixed costs: hyperfine -N (no shell
# between), --version and a 10-step no-op
if command -v hyperfine > /dev/null; then
    # ten BUILD NAME: a folder NAME of its own (recipe, files, state) where
    # BUILD applies the 10 steps, then re-runs them as a no-op; CMD is that
    # no-op's command line (hyperfine -N splits it on spaces: mktemp's
    # folder has none)
    ten() {
        local d=$work/$2
        mkdir -p "$d/d"
        printf 'recipe { name = "floor" }\nfor i = 1, 10 do step("f" .. i) { fs.file { path = "%s/d/" .. i, content = "x", mode = "0644" } } end\n' "$d" > "$d/r.lua"
        "$1" -q "$d/r.lua" --state-dir "$d/.provision" > /dev/null &&
            "$1" -q "$d/r.lua" --state-dir "$d/.provision" | grep -q "changed=0" ||
            { echo "bench/floor.sh: $1: the 10-step recipe's apply, or its no-op, failed" >&2; exit 1; }
        CMD="$1 -q $d/r.lua --state-dir $d/.provision"
    }
    ten "$P" new
    hyperfine -N -w 5 -r 51 --export-json h.json "$P --version" "$CMD" > /dev/null ||
        { echo "bench/floor.sh: hyperfine failed" >&2; exit 1; }
    python3 -c 'import json, sys
for name, r in zip(("--version", "10-step no-op"), json.load(open(sys.argv[1]))["results"]):
    print("hyperfine -N, median of 51: %-14s %.2f ms" % (name, r["median"] * 1000))' h.json
    # the build before: alternating with this one, a round each in turn
    # (hyperfine runs one command's runs, then the next's: on this VM two
    # blocks a minute apart differ by up to 1 ms, --version's same code too)
    if [ -n "$OLD" ]; then
        new_cmd=$CMD
        ten "$OLD" old
        echo "alternating, 201 rounds (bench/alternate.py): /bin/true, old and new --version, old and new 10-step no-op"
        python3 "$ROOT/bench/alternate.py" 201 /bin/true "$OLD --version" "$P --version" "$CMD" "$new_cmd" ||
            { echo "bench/floor.sh: bench/alternate.py failed" >&2; exit 1; }
    fi
fi
set -- $sizes
if [ $# -ge 2 ]; then
    echo "growth: $2 / $1 steps: no-op $(awk -v a="${noop_of[$1]}" -v b="${noop_of[$2]}" 'BEGIN { printf "%.2fx", b / a }') the time for $(( $2 / $1 ))x the steps"
fi
