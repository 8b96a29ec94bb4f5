#!/bin/bash
# bench/download.sh: http.file against `curl -o` on loopback, same server,
# same run, alternating; peak RSS; and the request count of a re-run whose
# file already matches its checksum. http.file is timed twice: without a
# checksum (the same job as `curl -o`: fetch the file; http.file also
# keeps its XXH3-128, renames it into place and fsyncs it) and with the
# sha256 pinned (checked before the rename: SHA-256 of every byte, the CPU's
# own floor; compared with the plain tools that give the same guarantee).
#   bench/download.sh [SIZE_MIB=1024] [RUNS=5]
#   BENCH_DIR=/dev/shm bench/download.sh     the same on tmpfs (no disk)
#   BASE=/path/to/older/provision bench/download.sh   also that binary, in
#                                            the same alternation (before/after)
# Both tools write into the same folder ($BENCH_DIR, default /tmp); every
# output is removed before each run. Also shown: `curl -o`, then `openssl
# dgst -sha256` compared with the expected digest, then `sync FILE`: the
# plain tools giving what http.file promises (checked, on disk); and, for
# reference only:
# `curl -o` followed by an fsync of its file (`sync FILE`), the durability
# http.file promises before its rename; and `openssl dgst -sha256` of the
# source file from the page cache (one thread reading and hashing the same
# bytes), the scale of the hashing alone that http.file overlaps.
# Needs: busybox (static file server), curl, python3, /usr/bin/time.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${PROVISION:-$ROOT/provision}
SIZE_MIB=${1:-1024}
RUNS=${2:-5}
W=$(mktemp -d "${BENCH_DIR:-/tmp}/provision-bench.XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; rm -rf "$W"' EXIT INT TERM
mkdir -p "$W/www" "$W/out"
echo "making a ${SIZE_MIB} MiB file..." >&2
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$W/www/big.bin"
SHA=$(sha256sum "$W/www/big.bin" | cut -c1-64)
sync "$W/www/big.bin"   # its writeback must not land in a measured run
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
busybox httpd -f -p "127.0.0.1:$PORT" -h "$W/www" & PIDS="$PIDS $!"
sleep 0.3
URL="http://127.0.0.1:$PORT/big.bin"
cat > "$W/r.lua" <<R
recipe { name = "bench" }
step "download" { http.file { url = "$URL", dest = "$W/out/big.bin" } }
R
cat > "$W/rs.lua" <<R
recipe { name = "bench-sha256" }
step "download" { http.file { url = "$URL", dest = "$W/out/big.bin", sha256 = "$SHA" } }
R
export PROVISION_STATE_DIR="$W/state"
curl -s -o /dev/null "$URL"     # warm the page cache of the source file

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
: > "$W/curl.t"; : > "$W/prov.t"; : > "$W/cs.t"; : > "$W/prov.rss"; : > "$W/curl.rss"
: > "$W/curl.cpu"; : > "$W/prov.cpu"; : > "$W/base.t"; : > "$W/hash.t"; : > "$W/css.t"
: > "$W/provs.t"; : > "$W/provs.rss"; : > "$W/provs.cpu"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$RUNS"); do   # provision last: the re-run below needs its file
    rm -f "$W/out/"*; rm -rf "$W/state"
    /usr/bin/time -f "%e %M %U %S" -o "$W/t" curl -s -o "$W/out/curl.bin" "$URL"
    read -r t m u s < "$W/t"; echo "$t" >> "$W/curl.t"; echo "$m" >> "$W/curl.rss"
    echo "$u $s" | awk '{print $1 + $2}' >> "$W/curl.cpu"
    rm -f "$W/out/"*
    /usr/bin/time -f "%e" -o "$W/t" sh -c 'curl -s -o "$1" "$2" && sync "$1"' sh "$W/out/cs.bin" "$URL"
    cat "$W/t" >> "$W/cs.t"
    rm -f "$W/out/"*
    # the same guarantees with the plain tools: the download, its SHA-256
    # compared, the file on disk (what http.file does before its rename)
    # (openssl, not sha256sum: Debian's coreutils hashes without SHA-NI,
    # ~10x slower here, which would flatter provision)
    /usr/bin/time -f "%e" -o "$W/t" sh -c 'curl -s -o "$1" "$2" && [ "$(openssl dgst -sha256 -r "$1" | cut -c1-64)" = "$3" ] && sync "$1"' sh "$W/out/css.bin" "$URL" "$SHA"
    cat "$W/t" >> "$W/css.t"
    if [ -n "${BASE:-}" ]; then
        rm -f "$W/out/"*; rm -rf "$W/state"
        /usr/bin/time -f "%e" -o "$W/t" "$BASE" "$W/r.lua" -q > /dev/null
        cat "$W/t" >> "$W/base.t"
    fi
    rm -f "$W/out/"*; rm -rf "$W/state"
    /usr/bin/time -f "%e %M %U %S" -o "$W/t" "$P" "$W/rs.lua" -q > /dev/null
    read -r t m u s < "$W/t"; echo "$t" >> "$W/provs.t"; echo "$m" >> "$W/provs.rss"
    echo "$u $s" | awk '{print $1 + $2}' >> "$W/provs.cpu"
    rm -f "$W/out/"*; rm -rf "$W/state"
    /usr/bin/time -f "%e %M %U %S" -o "$W/t" "$P" "$W/r.lua" -q > /dev/null
    read -r t m u s < "$W/t"; echo "$t" >> "$W/prov.t"; echo "$m" >> "$W/prov.rss"
    echo "$u $s" | awk '{print $1 + $2}' >> "$W/prov.cpu"
    [ "$(openssl dgst -sha256 -r "$W/out/big.bin" | cut -c1-64)" = "$SHA" ] || { echo "bad download" >&2; exit 1; }
    # for scale: reading and hashing the same bytes, one thread, no network
    /usr/bin/time -f "%e" -o "$W/t" openssl dgst -sha256 "$W/www/big.bin" > /dev/null
    cat "$W/t" >> "$W/hash.t"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
ct=$(median < "$W/curl.t"); pt=$(median < "$W/prov.t"); cst=$(median < "$W/cs.t"); pst=$(median < "$W/provs.t")
crss=$(sort -n "$W/curl.rss" | tail -1); prss=$(sort -n "$W/prov.rss" "$W/provs.rss" | tail -1)
fs=$(stat -f -c %T "$W/out")
echo "download of ${SIZE_MIB} MiB over loopback (busybox httpd) into $W/out ($fs), median of $RUNS, alternating:"
echo "  curl -o             ${ct}s   (runs: $(tr '\n' ' ' < "$W/curl.t")) cpu $(median < "$W/curl.cpu")s"
# the ratio to curl of each alternating pair (curl and provision of one round)
pairs() {
    paste "$W/curl.t" "$1" | awk '{ r = $2 / $1; printf "%.3f\n", r; if (r <= 1.10) k++ } END { printf "within %d\n", k }' > "$W/pairs"
    echo "    per pair: ratios $(grep -v within "$W/pairs" | tr '\n' ' '); median $(grep -v within "$W/pairs" | median); $(grep within "$W/pairs" | cut -d' ' -f2)/$RUNS pairs within 10 %"
}
echo "  provision http.file, no checksum (the same job as curl -o; XXH3-128 kept, rename, fsync)"
echo "                      ${pt}s   (runs: $(tr '\n' ' ' < "$W/prov.t")) cpu $(median < "$W/prov.cpu")s"
awk -v c="$ct" -v p="$pt" 'BEGIN { printf "    ratio provision/curl %.3f\n", p / c }'
pairs "$W/prov.t"
echo "  provision http.file, sha256 pinned (checked before the rename, fsync)"
echo "                      ${pst}s   (runs: $(tr '\n' ' ' < "$W/provs.t")) cpu $(median < "$W/provs.cpu")s"
awk -v c="$ct" -v p="$pst" 'BEGIN { printf "    ratio provision/curl %.3f (no tool that checks SHA-256 can beat the hash below)\n", p / c }'
pairs "$W/provs.t"
[ -n "${BASE:-}" ] && echo "  base: $BASE $(median < "$W/base.t")s (runs: $(tr '\n' ' ' < "$W/base.t")); ratio base/curl $(awk -v c="$ct" -v p="$(median < "$W/base.t")" 'BEGIN { printf "%.3f", p / c }')"
echo "  for reference, curl -o + fsync ${cst}s (runs: $(tr '\n' ' ' < "$W/cs.t")); provision (no checksum)/that $(awk -v c="$cst" -v p="$pt" 'BEGIN { printf "%.3f", p / c }')"
echo "  the guarantees of the pinned case with plain tools, curl -o && openssl dgst -sha256 (compared) && sync: $(median < "$W/css.t")s (runs: $(tr '\n' ' ' < "$W/css.t")); provision (sha256)/that $(awk -v c="$(median < "$W/css.t")" -v p="$pst" 'BEGIN { printf "%.3f", p / c }')"
echo "  for reference, openssl dgst -sha256 of the source (page cache): $(median < "$W/hash.t")s (runs: $(tr '\n' ' ' < "$W/hash.t")); provision (sha256)/that $(awk -v c="$(median < "$W/hash.t")" -v p="$pst" 'BEGIN { printf "%.3f", p / c }')"
echo "  peak RSS: provision ${prss} KiB ($((prss / 1024)) MiB), curl ${crss} KiB"
echo "  load average before: $load0, after: $load1 ($(nproc) CPUs)"

# the re-run whose file matches its checksum: count the server's requests
python3 "$ROOT/tests/servers/httpd.py" --root "$W/www" > "$W/port" 2>/dev/null & PIDS="$PIDS $!"
while ! grep -q '^[0-9]' "$W/port" 2>/dev/null; do sleep 0.05; done
HP=$(cat "$W/port")
cat > "$W/r2.lua" <<R
recipe { name = "bench-rerun" }
step "download" { http.file { url = "http://127.0.0.1:$HP/static/big.bin", dest = "$W/out/big.bin", sha256 = "$SHA" } }
R
curl -s "http://127.0.0.1:$HP/count/reset" > /dev/null
/usr/bin/time -f "%e" -o "$W/t" "$P" "$W/r2.lua" -q > /dev/null
n=$(curl -s "http://127.0.0.1:$HP/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
echo "re-run with the file already matching its sha256: $n requests to the server, $(cat "$W/t")s (hashing ${SIZE_MIB} MiB)"
