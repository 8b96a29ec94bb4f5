#!/bin/bash
# Interrupting a download: SIGINT and SIGTERM leave no file at dest and no
# temp file, and exit 130; SIGKILL leaves a partial file that the next run
# resumes with Range; every re-run completes with the right file. On a slow
# body the partial file keeps up with what arrived (about a second behind,
# not a whole slot of the download ring), so a kill loses little.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"
start_httpd
SIZE=1000000
SHA=$(curl -s "$BASE/sha256?size=$SIZE&seed=big")
cat > r.lua <<R
recipe { name = "slow-download" }
step "big file" { http.file { url = "$BASE/slow/big?size=$SIZE&rate=300000", dest = "./big.bin", sha256 = "$SHA" } }
R

# wait until the part file (big.bin.provision-part.RANDOM) holds some bytes
wait_part() { wait_for_part big.bin 100000; }

for sig in INT TERM; do
    rm -rf big.bin* .provision
    "$P" r.lua > out.txt 2>&1 &
    pid=$!
    wait_part
    t0=$(date +%s%N)
    kill -$sig $pid
    wait $pid; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    expect "SIG$sig: exit 130" eval '[ $rc -eq 130 ]'
    expect "SIG$sig: stops promptly (${ms}ms)" eval '[ $ms -lt 2000 ]'
    expect "SIG$sig: no file at dest, no temp file" eval '[ ! -e big.bin ] && [ -z "$(ls -A | grep big.bin)" ]'
    run "$P" r.lua
    expect "SIG$sig: the re-run completes" eval '[ $RC -eq 0 ] && [ "$(sha256sum big.bin | cut -c1-64)" = "$SHA" ]'
done

rm -rf big.bin* .provision
"$P" r.lua > out.txt 2>&1 &
pid=$!
wait_part
kill -KILL $pid
wait $pid 2>/dev/null
have=$(stat -c %s "$(part_file big.bin)" 2>/dev/null || echo 0)
expect "SIGKILL: a partial file is left, its name in the state" \
    eval '[ $have -gt 0 ] && [ ! -e big.bin ] && has "$(state_key "big file" part)" "$(basename "$(part_file big.bin)")"'
httpd_reset
run "$P" r.lua --json
expect "SIGKILL: the re-run resumes and completes" eval '[ $RC -eq 0 ] && [ "$(sha256sum big.bin | cut -c1-64)" = "$SHA" ] && has "$OUT" resumed'
expect "SIGKILL: the re-run made one request and left no temp file" eval '[ "$(httpd_count /slow/big)" = 1 ] && [ -z "$(ls -A | grep provision-part)" ]'

# ---- a slow body: the part file keeps up (not held back by the ring) ----
cat > slow.lua <<R
recipe { name = "slower-download" }
step "big file" { http.file { url = "$BASE/slow/slower?size=400000&rate=60000", dest = "./slow.bin", sha256 = "$(curl -s "$BASE/sha256?size=400000&seed=slower")" } }
R
rm -rf slow.bin* .provision
"$P" slow.lua > out.txt 2>&1 &
pid=$!
sleep 3.5   # ~210,000 bytes have arrived; the ring holds 512 KiB slots
have=$(stat -c %s "$(part_file slow.bin)" 2>/dev/null || echo 0)
{ kill -KILL $pid; wait $pid; } 2>/dev/null
expect "slow body: after 3.5 s at 60 kB/s the part file holds what came until a second or two ago ($have bytes)" \
    eval '[ $have -ge 90000 ] && [ $have -le 240000 ]'
httpd_reset
run "$P" slow.lua
expect "slow body: after SIGKILL the re-run resumes and completes" \
    eval '[ $RC -eq 0 ] && [ "$(sha256sum slow.bin | cut -c1-64)" = "$(curl -s "$BASE/sha256?size=400000&seed=slower")" ] && has "$OUT" resumed'
