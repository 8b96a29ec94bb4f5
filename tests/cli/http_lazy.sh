#!/bin/bash
# libcurl is loaded at the first request that needs it, not before (issue
# 19), and a pinned file already in place is read once, not on every run:
#   - requiring provision.http and provision.docker, and talking to a unix
#     socket, loads no libcurl (/proc/self/maps at the end of a --script);
#     http.curl_version() does;
#   - an http.file recipe: the download loads libcurl; the no-op, whose
#     file's stamp and digest hold, opens no libcurl*.so (strace); an
#     http.expect does (by design);
#   - a file pinned with sha256 that was there before the first run (a
#     user's): the first run reads it once and records its stamp, the next
#     ones read nothing (strace: no open of it for reading), a changed
#     stamp is read again, plan records nothing, and teardown keeps it (it
#     was adopted, not created).
#   - a Docker recipe's no-op (the engine on its unix socket) opens no
#     libcurl (when an engine answers).
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
start_httpd
if ! command -v strace > /dev/null; then
    skip "lazy libcurl" "strace is needed (apt-get install strace)"
    exit 0
fi
# libcurl*.so opened by a run (and the programs it starts)
curl_opens() { grep -E 'open(at2?)?\(.*libcurl[^"]*\.so' "$1" | grep -vc ENOENT; }
loaded() { [ $LINKED = 1 ] || [ "$(curl_opens "$1")" -ge 1 ]; }   # a request loaded libcurl

cat > maps.lua <<'L'
local http = require "provision.http"
local docker = require "provision.docker"
local C = require "provision._docker"
local c = assert(C.open("unix:///nonexistent/docker.sock"))
print(select(2, c:request("GET", "/_ping")))
print(docker.demux("x"), type(http.file), type(http.curl_version))
local maps = assert(io.open("/proc/self/maps")):read("a")
print("libcurl mapped: " .. tostring(maps:find("libcurl", 1, true) ~= nil))
print(http.curl_version():match("^libcurl/") and "version ok" or "no version")
maps = assert(io.open("/proc/self/maps")):read("a")
print("libcurl mapped after curl_version: " .. tostring(maps:find("libcurl", 1, true) ~= nil))
L
run "$P" --script maps.lua
expect "require provision.http and provision.docker, a unix socket request: no libcurl mapped" \
    eval '[ $RC -eq 0 ] && has "$OUT" "no Docker engine answers at /nonexistent/docker.sock: connect" && has "$OUT" "^libcurl mapped: false"'
# ./provision-static (make static) has libcurl linked in: nothing to open
LINKED=0
has "$OUT" "libcurl mapped after curl_version: false" && LINKED=1
if [ $LINKED = 1 ]; then
    expect "curl_version(): libcurl's (linked in: the static build)" has "$OUT" "version ok"
else
    expect "curl_version() loads it" eval 'has "$OUT" "version ok" && has "$OUT" "libcurl mapped after curl_version: true"'
fi

SHA=$(curl -s "$BASE/sha256?size=5000&seed=lazy")
cat > dl.lua <<R
recipe { name = "lazy" }
step "file" { http.file { url = "$BASE/file/lazy?size=5000", dest = "got.bin", sha256 = "$SHA" } }
R
strace -f -qq -e trace=open,openat,openat2 -o trace1 "$P" dl.lua > out1 2>&1
RC=$?; OUT=$(cat out1); ERR=""
expect "http.file, the download: exit 0, libcurl loaded ($(curl_opens trace1) opens)" \
    eval '[ $RC -eq 0 ] && loaded trace1 && has "$OUT" "changed=1"'
httpd_reset
strace -f -qq -e trace=open,openat,openat2 -o trace2 "$P" dl.lua > out2 2>&1
RC=$?; OUT=$(cat out2); ERR=""
expect "http.file, the no-op (stamp and digest hold): no request, no libcurl opened" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0" && [ "$(curl_opens trace2)" = 0 ] && [ "$(httpd_count)" = 0 ]'
cat > ex.lua <<R
recipe { name = "lazy-expect" }
step "up" { http.expect { url = "$BASE/file/x?size=3" } }
R
strace -f -qq -e trace=open,openat,openat2 -o trace3 "$P" ex.lua > out3 2>&1
RC=$?; OUT=$(cat out3); ERR=""
expect "http.expect: a request, libcurl loaded" eval '[ $RC -eq 0 ] && loaded trace3'

# ---- a pinned file that was there before the first run
head -c 3000000 /dev/urandom > mine.bin
MSHA=$(sha256sum mine.bin | cut -c1-64)
cat > pin.lua <<R
recipe { name = "pinned-mine" }
step "mine" { http.file { url = "http://127.0.0.1:1/never-asked", dest = "mine.bin", sha256 = "$MSHA" } }
R
# opens of mine.bin for reading (O_PATH opens only look at it)
reads() { grep -E 'open(at2?)?\(.*"mine\.bin"' "$1" | grep -v O_PATH | grep -vc ENOENT; }
run "$P" plan pin.lua
expect "plan over the file: nothing to do, nothing recorded" eval '[ $RC -eq 0 ] && [ ! -e .provision/pinned-mine.json ]'
strace -f -qq -e trace=open,openat,openat2 -o ptrace1 "$P" pin.lua > pout1 2>&1
RC=$?; OUT=$(cat pout1); ERR=""
expect "first run: ok without a request (the URL answers nothing), the file read once ($(reads ptrace1))" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0" && [ "$(reads ptrace1)" = 1 ]'
expect "first run: its stamp and digest recorded" \
    eval 'grep -q "\"stamp\"" .provision/pinned-mine.json && grep -q "$MSHA" .provision/pinned-mine.json'
expect "first run: nothing recorded as created" eval '! grep -q "\"created\"" .provision/pinned-mine.json'
strace -f -qq -e trace=open,openat,openat2 -o ptrace2 "$P" pin.lua > pout2 2>&1
RC=$?; OUT=$(cat pout2); ERR=""
expect "second run: ok, the file not read ($(reads ptrace2) reads), no libcurl" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0" && [ "$(reads ptrace2)" = 0 ] && [ "$(curl_opens ptrace2)" = 0 ]'
touch mine.bin
strace -f -qq -e trace=open,openat,openat2 -o ptrace3 "$P" pin.lua > pout3 2>&1
RC=$?; OUT=$(cat pout3); ERR=""
expect "its stamp changed (touch): read again, still ok" eval '[ $RC -eq 0 ] && [ "$(reads ptrace3)" = 1 ]'
strace -f -qq -e trace=open,openat,openat2 -o ptrace4 "$P" pin.lua > pout4 2>&1
expect "... and recorded again: the next run reads nothing" test "$(reads ptrace4)" = 0
printf 'x' >> mine.bin
run "$P" pin.lua
expect "its content changed: the step fails (the URL answers nothing), the file left as it was" \
    eval '[ $RC -eq 1 ] && [ "$(stat -c %s mine.bin)" = 3000001 ]'
head -c 3000000 mine.bin > mine.tmp && mv mine.tmp mine.bin
run "$P" pin.lua
expect "put back: ok again" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0"'
run "$P" teardown pin.lua
expect "teardown keeps it (adopted, not created) and says so" \
    eval '[ $RC -eq 0 ] && [ "$(sha256sum mine.bin | cut -c1-64)" = "$MSHA" ] && has "$OUT" "kept mine.bin, which existed before the first apply"'

# ---- the Docker Engine API on the local socket: no libcurl (when an engine answers)
if docker info > /dev/null 2>&1; then
    cat > dk.lua <<'R'
recipe { name = "lazy-docker" }
check "engine" { docker.engine { min_version = "1.0" } }
step "listed" { check = function() return type(docker.containers { all = true }) == "table" end }
R
    strace -f -qq -e trace=open,openat,openat2 -o dtrace "$P" dk.lua > dout 2>&1
    RC=$?; OUT=$(cat dout); ERR=""
    expect "a Docker recipe's no-op: the engine answers, no libcurl opened" \
        eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0" && [ "$(curl_opens dtrace)" = 0 ]'
else
    skip "a Docker recipe's no-op without libcurl" "no Docker engine answers"
fi
