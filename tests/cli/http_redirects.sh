#!/bin/bash
# http.file through redirects in real recipes, against three instances of
# tests/servers/httpd.py (another port is another origin; one over TLS): a
# secret header and basic auth reach the first origin only, plan follows
# the redirect too, https to http is refused leaving nothing behind, and
# max_size stops a body without Content-Length. No secret in any output or
# in the state folder.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
start_httpd

# start_more TAG ARGS...: another server; its port in $MORE_PORT
start_more() {
    tag=$1; shift
    python3 "$ROOT/tests/servers/httpd.py" "$@" > "$SANDBOX/.httpd-$tag.port" 2> "$SANDBOX/.httpd-$tag.log" &
    cleanup_add "kill $! 2>/dev/null"
    i=0
    while ! grep -q '^[0-9][0-9]*$' "$SANDBOX/.httpd-$tag.port" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "FAIL httpd $tag: did not start: $(cat "$SANDBOX/.httpd-$tag.log")"; exit 1; }
        sleep 0.05
    done
    MORE_PORT=$(cat "$SANDBOX/.httpd-$tag.port")
}
start_more other
OTHER="http://127.0.0.1:$MORE_PORT"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out crt.pem -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null || { echo "FAIL openssl: no certificate"; exit 1; }
start_more tls --tls crt.pem key.pem
TLS="https://127.0.0.1:$MORE_PORT"

TOK=Tok-redirect-Hd83kQ7
PW=Pw-redirect-Zm27xV
B64=$(printf 'alice:%s' "$PW" | base64)
# nothing secret may show in what provision prints or keeps
no_secret() { ! has "$OUT$ERR" "$TOK" && ! has "$OUT$ERR" "$PW" && ! has "$OUT$ERR" "$B64" \
              && ! grep -rqF -e "$TOK" -e "$PW" -e "$B64" .provision; }
other_count() { curl -s "$OTHER/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["paths"].get(sys.argv[1], 0))' "$1"; }

cat > r.lua <<R
recipe { name = "http-redirects" }
local v = vars { token = secret "$TOK", password = secret "$PW" }
local function get(url, dest)
  return http.file { url = url, dest = dest, headers = { ["PRIVATE-TOKEN"] = v.token }, user = "alice",
                     password = v.password }
end
step "same origin" { get("$BASE/redirect?to=/echo", "./same.json") }
step "other port" { get("$BASE/redirect?to=$OTHER/echo", "./other.json") }
step "other file" { get("$BASE/redirect?to=$OTHER/file/cond%3Fsize%3D300", "./cond.bin") }
R
run "$P" r.lua
expect "apply: exit 0" eval '[ $RC -eq 0 ]'
expect "same origin: the header and the credentials arrive" \
    eval 'grep -qF "\"private-token\": \"$TOK\"" same.json && grep -qF "\"authorization\": \"Basic $B64\"" same.json'
expect "other port: neither the header nor the credentials arrive, the User-Agent does" \
    eval '[ -s other.json ] && ! grep -qi "private-token\|authorization" other.json && grep -q "\"user-agent\": \"provision/" other.json'
expect "apply: no secret shows" no_secret

before=$(other_count /file/cond)
run "$P" plan r.lua
expect "plan: follows the redirect to the other origin (one conditional request), nothing to change (exit 0)" \
    eval '[ $RC -eq 0 ] && [ "$(other_count /file/cond)" = $((before + 1)) ] && ! has "$OUT" "would change"'

# https to http: refused, nothing fetched from the http server, no file
# and no part file, the secret nowhere
httpd_reset
cat > down.lua <<R
recipe { name = "http-downgrade" }
local v = vars { token = secret "$TOK" }
step "downgrade" { http.file { url = "$TLS/redirect?to=$BASE/file/down", dest = "./down.bin", ca_file = "crt.pem",
                   headers = { ["PRIVATE-TOKEN"] = v.token }, user = "alice", password = secret "$PW" } }
R
run "$P" down.lua
expect "https to http: exit 1, refused, says why" \
    eval '[ $RC -eq 1 ] && has "$OUT$ERR" "refusing a redirect from https to plain http"'
expect "https to http: nothing fetched, no file, no part file" \
    eval '[ "$(httpd_count /file/down)" = 0 ] && [ ! -e down.bin ] && [ -z "$(ls -A | grep provision-part)" ]'
expect "https to http: no secret shows" no_secret

# max_size: a chunked body past it fails, dest as it was
printf 'old\n' > big.bin
cat > big.lua <<R
recipe { name = "http-max-size" }
step "fits" { http.file { url = "$BASE/stream/fits?size=4096", dest = "./fits.bin", max_size = "4KiB" } }
step "big" { http.file { url = "$BASE/stream/big?size=5000", dest = "./big.bin", max_size = "4KiB" } }
R
run "$P" big.lua
expect "max_size: exit 1 naming max_size, dest untouched, no part file" \
    eval '[ $RC -eq 1 ] && has "$OUT$ERR" "more than max_size (4096 bytes) arrived" && [ "$(cat big.bin)" = old ] && [ -z "$(ls -A | grep provision-part)" ]'
expect "max_size: a file of exactly max_size lands" \
    eval '[ "$(stat -c %s fits.bin)" = 4096 ] && [ "$(sha256sum < fits.bin | cut -c1-64)" = "$(curl -s "$BASE/sha256?size=4096&seed=fits")" ]'
