#!/bin/bash
# Proxies from the environment, as libcurl reads them: http_proxy carries
# http.file and http.expect to a host this machine cannot resolve, no_proxy
# turns it off for that host, and a proxy's password never shows. The test
# server doubles as the proxy: it answers an absolute-form request
# ("GET http://host/path") with the route of its path.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
start_httpd
unset HTTP_PROXY HTTPS_PROXY https_proxy ALL_PROXY all_proxy NO_PROXY no_proxy
HOST=provision-proxy-test.invalid   # .invalid never resolves (RFC 2606)
SHA=$(curl -s "$BASE/sha256?size=5000&seed=px")
cat > r.lua <<R
recipe { name = "through-a-proxy" }
step "file" { http.file { url = "http://$HOST/file/px?size=5000", dest = "./px.bin", sha256 = "$SHA" } }
step "up" { http.expect { url = "http://$HOST/json", json = { ok = true } } }
R

httpd_reset
run env http_proxy="$BASE" "$P" r.lua
expect "http_proxy: the download and the check go through the proxy" \
    eval '[ $RC -eq 0 ] && [ "$(sha256sum px.bin | cut -c1-64)" = "$SHA" ]'
expect "http_proxy: the proxy saw each request once" \
    eval '[ "$(httpd_count /file/px)" = 1 ] && [ "$(httpd_count /json)" -ge 1 ]'

rm -rf px.bin .provision
run env http_proxy="$BASE" no_proxy="$HOST" "$P" r.lua
expect "no_proxy: the host is asked for directly, and cannot be resolved: exit 1" \
    eval '[ $RC -eq 1 ] && has "$OUT$ERR" "$HOST" && has "$OUT$ERR" "resolve"'
expect "no_proxy: nothing written" eval '[ -z "$(ls -A | grep px.bin)" ]'

# a proxy that is down, with credentials in its URL: a clear failure, and
# the password is not in any output
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > dead.lua <<R
recipe { name = "through-a-dead-proxy" }
step "file" { http.file { url = "http://$HOST/file/px?size=5000", dest = "./px.bin", sha256 = "$SHA", retries = 0 } }
R
run env http_proxy="http://puser:proxy-pass-0451@127.0.0.1:$DEAD" "$P" dead.lua
expect "proxy down: exit 1, the message names the connection failure" \
    eval '[ $RC -eq 1 ] && has "$OUT$ERR" "127.0.0.1"'
expect "proxy down: its password is not shown" eval '! has "$OUT$ERR" proxy-pass-0451'
echo "$OUT$ERR" > dead.txt
run env http_proxy="http://puser:proxy-pass-0451@127.0.0.1:$DEAD" "$P" dead.lua --json -v
expect "proxy down: nor with --json -v" eval '[ $RC -eq 1 ] && ! has "$OUT$ERR" proxy-pass-0451'
expect "proxy down: nothing written" eval '[ -z "$(ls -A | grep px.bin)" ] && ! grep -rq proxy-pass-0451 .provision 2>/dev/null'

expect "proxy down: the message says the address is the proxy's, from http_proxy" eval 'has "$(cat dead.txt)" "(the proxy from http_proxy)"'
run "$P" dead.lua
expect "no proxy set: no proxy note" eval '[ $RC -eq 1 ] && ! has "$OUT$ERR" "the proxy from"'
