#!/bin/bash
# Faults around the download of a compose file (the Airflow quick start's
# second step), each through a real recipe and the CLI: the server down, slow
# (headers late; body trickling past --timeout), answering 500 then 200, a
# checksum mismatch, the download killed mid-way (SIGINT, SIGKILL). Each case:
# the contract's exit code, a clear reason, nothing half-written (no file at
# dest, no temp file, the state consistent), and a re-run that converges.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
SIZE=200000

# the Airflow shape: folder, compose file, mounted folders after it
cat > r.lua <<'R'
recipe { name = "faults-http" }
local v = vars { url = "", sha = "", retries = 3, timeout = "60s", dir = "./proj" }
step "project directory" { fs.directory(v.dir) }
step "compose file" { http.file { url = v.url, dest = v.dir .. "/docker-compose.yaml",
                                  sha256 = v.sha ~= "" and v.sha or nil, retries = v.retries, timeout = v.timeout } }
step "mounted folders" { fs.directory { v.dir .. "/dags", v.dir .. "/logs", v.dir .. "/plugins" } }
R
DEST=proj/docker-compose.yaml
fresh() { rm -rf proj .provision; }
# nothing half-written after a failed download step: no dest, no temp file,
# a readable state with nothing recorded as created by the failed step, and
# the steps after it not run
clean_failure() {
    [ ! -e "$DEST" ] && [ -z "$(temp_files .)" ] && state_valid \
        && [ "$(state_created "compose file")" = 0 ] && [ ! -e proj/dags ]
}
converged() { # sha
    [ "$RC" = 0 ] && [ "$(sha256sum "$DEST" | cut -c1-64)" = "$1" ] && [ -d proj/dags ] \
        && [ -z "$(temp_files .)" ] && has "$OUT" "failed=0"
}

# ---- the server is down ----
fresh
run "$P" r.lua -e url="$BASE/file/compose?size=$SIZE" -e retries=1
expect "server down: exit 1" test "$RC" = 1
expect "server down: the reason names the connection and the retries" \
    eval 'has "$OUT$ERR" "Couldn.t connect" && has "$OUT$ERR" "gave up after 2 attempts" && has "$OUT$ERR" "step .compose file. failed"'
expect "server down: nothing half-written" clean_failure
start_httpd --port "$PORT"
SHA=$(curl -s "$BASE/sha256?size=$SIZE&seed=compose")
run "$P" r.lua -e url="$BASE/file/compose?size=$SIZE" -e retries=1
expect "server down: once it is up, the re-run converges" converged "$SHA"
run "$P" r.lua -e url="$BASE/file/compose?size=$SIZE" -e retries=1
expect "server down: and the next run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0 failed=0"'

# ---- the server is slow: headers come late ----
fresh
t0=$(date +%s%N)
run "$P" r.lua -e url="$BASE/slow/late?size=$SIZE&rate=10000000&delay=3" -e retries=0 -e timeout=1s
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "slow headers: exit 1 after the timeout (${ms}ms)" eval '[ $RC = 1 ] && [ $ms -lt 2900 ]'
expect "slow headers: the reason says it timed out" has "$OUT$ERR" "timed out"
expect "slow headers: nothing half-written" clean_failure
run "$P" r.lua -e url="$BASE/slow/late?size=$SIZE&rate=10000000&delay=3" -e retries=0 -e timeout=10s
expect "slow headers: with a longer timeout the re-run converges" \
    converged "$(curl -s "$BASE/sha256?size=$SIZE&seed=late")"

# ---- the server is slow: the body trickles past --timeout ----
fresh
run "$P" r.lua -e url="$BASE/slow/trickle?size=$SIZE&rate=100000" --timeout 1s
expect "slow body: exit 1" test "$RC" = 1
expect "slow body: the reason names --timeout" has "$OUT$ERR" "timed out after 1.0s (--timeout)"
expect "slow body: nothing half-written" clean_failure
run "$P" r.lua -e url="$BASE/slow/trickle?size=$SIZE&rate=100000" --timeout 10s
expect "slow body: with more time the re-run converges" \
    converged "$(curl -s "$BASE/sha256?size=$SIZE&seed=trickle")"

# ---- 500, then 200 ----
fresh
httpd_reset
F1SHA=$(curl -s "$BASE/sha256?size=$SIZE&seed=f1")
run "$P" r.lua -e url="$BASE/flaky/f1?size=$SIZE&fail=2" -e sha="$F1SHA" -v
expect "500 then 200: retried within the run, which succeeds" converged "$F1SHA"
expect "500 then 200: -v shows each retry and its reason" \
    eval '[ "$(printf "%s" "$OUT$ERR" | grep -c "500 Internal Server Error: flaky failure [12]; retrying in")" = 2 ]'
expect "500 then 200: three requests (two 500s, one 200)" test "$(httpd_count /flaky/f1)" = 3
fresh
run "$P" r.lua -e url="$BASE/flaky/f2?size=$SIZE&fail=2" -e retries=1
expect "500 beyond the retries: exit 1" test "$RC" = 1
expect "500 beyond the retries: the reason names the status and the body" \
    eval 'has "$OUT$ERR" "500 Internal Server Error" && has "$OUT$ERR" "flaky failure" && has "$OUT$ERR" "gave up after 2 attempts"'
expect "500 beyond the retries: nothing half-written" clean_failure
run "$P" r.lua -e url="$BASE/flaky/f2?size=$SIZE&fail=2" -e retries=1
expect "500 beyond the retries: once the server answers 200 the re-run converges" \
    converged "$(curl -s "$BASE/sha256?size=$SIZE&seed=f2")"

# ---- checksum mismatch: an older file at dest stays as it was ----
fresh
mkdir -p proj && echo "old compose file" > "$DEST"
WRONG=$(printf '%064d' 0)
run "$P" r.lua -e url="$BASE/file/compose?size=$SIZE" -e sha="$WRONG"
expect "checksum mismatch: exit 1" test "$RC" = 1
expect "checksum mismatch: the reason names both digests" \
    eval 'has "$OUT$ERR" "checksum mismatch" && has "$OUT$ERR" "$SHA" && has "$OUT$ERR" "$WRONG"'
expect "checksum mismatch: the old file is untouched, no temp file" \
    eval '[ "$(cat $DEST)" = "old compose file" ] && [ -z "$(temp_files .)" ] && state_valid && [ ! -e proj/dags ]'
run "$P" r.lua -e url="$BASE/file/compose?size=$SIZE" -e sha="$SHA"
expect "checksum mismatch: with the right checksum the re-run converges" converged "$SHA"
httpd_reset
run "$P" r.lua -e url="$BASE/file/compose?size=$SIZE" -e sha="$SHA"
expect "checksum mismatch: the next run is a no-op without a request" \
    eval '[ $RC = 0 ] && has "$OUT" "changed=0 failed=0" && [ "$(httpd_count /file/compose)" = 0 ]'

# ---- killed mid-way ----
BIG=2000000
BIGSHA=$(curl -s "$BASE/sha256?size=$BIG&seed=big")
URL="$BASE/slow/big?size=$BIG&rate=1000000"
fresh
"$P" r.lua -e url="$URL" -e sha="$BIGSHA" > kill.out 2>&1 &
pid=$!
wait_for_part "$DEST" 200000
kill -INT $pid; wait $pid; rc=$?
expect "SIGINT mid-download: exit 130" test "$rc" = 130
expect "SIGINT mid-download: says interrupted" grep -q interrupted kill.out
expect "SIGINT mid-download: nothing half-written (no dest, no temp, state sound)" \
    eval '[ ! -e "$DEST" ] && [ -z "$(temp_files .)" ] && state_valid && [ ! -e proj/dags ] && [ "$(state_created "project directory")" = 1 ]'
run "$P" r.lua -e url="$URL" -e sha="$BIGSHA"
expect "SIGINT mid-download: the re-run converges" converged "$BIGSHA"

fresh
"$P" r.lua -e url="$URL" -e sha="$BIGSHA" > kill.out 2>&1 &
pid=$!
wait_for_part "$DEST" 200000
kill -KILL $pid; wait $pid 2>/dev/null
expect "SIGKILL mid-download: no file at dest; only the resumable part, recorded in the state" \
    eval '[ ! -e "$DEST" ] && [ "$(temp_files . | wc -l)" = 1 ] && part_file "$DEST" >/dev/null \
          && [ "$(state_key "compose file" part | python3 -c "import json,sys; print(json.load(sys.stdin)[\"name\"])")" = "$(basename "$(part_file "$DEST")")" ]'
expect "SIGKILL mid-download: the state file is whole" state_valid
httpd_reset
run "$P" r.lua -e url="$URL" -e sha="$BIGSHA"
expect "SIGKILL mid-download: the re-run resumes and converges" eval 'converged "$BIGSHA" && has "$OUT" resumed'
