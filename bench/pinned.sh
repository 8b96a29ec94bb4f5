#!/bin/bash
# bench/pinned.sh: an http.file pinned with sha256 whose file is already in
# place before the first run (a user's, put there by hand): the first run
# reads and hashes it once and records its stamp (adopted: not created,
# teardown keeps it); every run after trusts the stamp and reads nothing
# (issue 19; before, nothing was recorded and every run hashed it again).
#   bench/pinned.sh [SIZE_MIB=256] [RUNS=11]
#   BASE=/path/to/older/provision bench/pinned.sh    the same with that binary too
# The URL answers nothing (127.0.0.1:1): a run that asked would fail. Shown:
# the first run (median of RUNS, each from an empty state), the no-op after
# it (median of RUNS), the reads of the file a no-op makes (strace: opens
# of it that are not O_PATH), whether libcurl was opened, and what
# teardown leaves. The file is from /dev/urandom in $BENCH_DIR (default /tmp).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${PROVISION:-$ROOT/provision}
SIZE_MIB=${1:-256}
RUNS=${2:-11}
W=$(mktemp -d "${BENCH_DIR:-/tmp}/provision-bench-pinned.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
echo "making a ${SIZE_MIB} MiB file..." >&2
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$W/mine.bin"
SHA=$(sha256sum "$W/mine.bin" | cut -c1-64)
sync "$W/mine.bin"
cat > "$W/r.lua" <<R
recipe { name = "bench-pinned" }
step "mine" { http.file { url = "http://127.0.0.1:1/mine.bin", dest = "$W/mine.bin", sha256 = "$SHA" } }
R
export PROVISION_STATE_DIR="$W/state" NO_COLOR=1
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000 )); }   # microseconds since $1 (ns)

bench() { # BINARY LABEL
    b=$1; : > "$W/first"; : > "$W/noop"
    for _ in $(seq "$RUNS"); do
        rm -rf "$W/state"
        t0=$(date +%s%N); "$b" "$W/r.lua" -q > /dev/null || { echo "run failed" >&2; exit 1; }; ms "$t0" >> "$W/first"
        t0=$(date +%s%N); "$b" "$W/r.lua" -q > /dev/null || { echo "run failed" >&2; exit 1; }; ms "$t0" >> "$W/noop"
    done
    reads="?"; curl="?"
    if command -v strace > /dev/null; then
        strace -f -qq -e trace=open,openat,openat2 -o "$W/trace" "$b" "$W/r.lua" -q > /dev/null
        reads=$(grep -F '"'"$W/mine.bin"'"' "$W/trace" | grep -v O_PATH | grep -vc ENOENT || true)
        curl=$(grep -E 'libcurl[^"]*\.so' "$W/trace" | grep -vc ENOENT || true)
    fi
    printf '  %-6s first run %8.1f ms   no-op %8.1f ms   reads of the file per no-op: %s   libcurl opened: %s\n' \
        "$2" "$(median < "$W/first" | awk '{print $1 / 1000}')" "$(median < "$W/noop" | awk '{print $1 / 1000}')" "$reads" "$curl"
}
echo "http.file, sha256 pinned, ${SIZE_MIB} MiB already in place ($(stat -f -c %T "$W")), median of $RUNS:"
[ -n "${BASE:-}" ] && bench "$BASE" base
bench "$P" this
# for scale: hashing the file once with openssl (page cache)
t0=$(date +%s%N); openssl dgst -sha256 "$W/mine.bin" > /dev/null; echo "  for scale: openssl dgst -sha256 of it: $(( $(ms "$t0") / 1000 )) ms"
"$P" teardown "$W/r.lua" -q > /dev/null
if [ "$(sha256sum "$W/mine.bin" | cut -c1-64)" = "$SHA" ]; then
    echo "  teardown: the file kept (it was there before the first run)"
else
    echo "  teardown: THE FILE IS GONE OR CHANGED" >&2; exit 1
fi
