#!/bin/bash
# libcurl is loaded at the first request that needs it, not before (issue
# 19), and a pinned file already in place is read once, not on every run:
#   - requiring provision.http and provision.docker, and talking to a unix
#     socket, loads no libcurl (/proc/self/maps at the end of a --script);
#     http.curl_version() does;
#   - an http.file recipe: the download loads libcurl; the no-op, whose
#     file's stamp and digest hold, opens no libcurl*.so (strace);
#   - plain http:// requests to this machine go through provision's own
#     client (modules/http/plain.c): an http.expect, an unpinned
#     http.file's no-op (its conditional GET: one request, a 304), a
#     POST, Basic auth and a redirect's first hop open no libcurl; https://,
#     a name to resolve and a proxy in the environment still load it;
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
traced() { # TRACE COMMAND...: run it under strace (opens into TRACE): RC, OUT
    t=$1; shift
    strace -f -qq -e trace=open,openat,openat2 -o "$t" "$@" > "$t.out" 2>&1
    RC=$?; OUT=$(cat "$t.out"); ERR=""
}

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
traced trace3 "$P" ex.lua
expect "http.expect to 127.0.0.1: the request made, no libcurl opened" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=1" && [ "$(curl_opens trace3)" = 0 ]'
cat > ex2.lua <<R
recipe { name = "lazy-expect-more" }
step "post" { check = function()
  local r = assert(http.request { method = "POST", url = "$BASE/echo", body = "{}" })
  return r.status == 200 and r.json.method == "POST" and r.json.body == "{}"
end }
step "auth" { http.expect { url = "$BASE/auth", user = "user", password = "password", json = { user = "user" } } }
step "via redirect" { http.expect { url = "$BASE/redirect?n=1&to=/json", json = { ok = true } } }
R
traced trace4 "$P" ex2.lua
expect "a POST, Basic auth: no libcurl; the redirect's next hop: libcurl ($(curl_opens trace4) opens)" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=3" && loaded trace4'
head -n 6 ex2.lua > ex3.lua
traced trace5 "$P" ex3.lua
expect "a POST and Basic auth alone: no libcurl opened" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=2" && [ "$(curl_opens trace5)" = 0 ]'
cat > ex4.lua <<R
recipe { name = "lazy-expect-https" }
step "up" { http.expect { url = "https://127.0.0.1:1/", within = "0s" } }
R
traced trace6 "$P" ex4.lua
expect "https://: libcurl's, as before (loaded; refused)" eval '[ $RC -eq 1 ] && loaded trace6 && has "$OUT" "onnect"'
traced trace7 env http_proxy="$BASE" "$P" ex.lua
expect "http_proxy set: libcurl's, as before (it goes through the proxy)" eval '[ $RC -eq 0 ] && loaded trace7'
# an unpinned download: its no-op asks the server (a conditional GET, a 304)
cat > cond.lua <<R
recipe { name = "lazy-conditional" }
step "file" { http.file { url = "$BASE/file/cond?size=2000", dest = "cond.bin" } }
R
run "$P" cond.lua
expect "unpinned http.file: downloaded" eval '[ $RC -eq 0 ] && has "$OUT" "changed=1"'
httpd_reset
traced trace8 "$P" cond.lua
expect "unpinned http.file's no-op: one conditional GET, no libcurl opened" \
    eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0" && [ "$(httpd_count)" = 1 ] && [ "$(curl_opens trace8)" = 0 ]'

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
