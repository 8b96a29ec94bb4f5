#!/bin/bash
# What a server that does not answer HTTP, or answers with headers libcurl
# refuses, sent (issue 18): libcurl's "Received HTTP/0.9 when not allowed"
# and "Out of memory" hid it. Each through http.file and http.expect, with
# a stand-in server on 127.0.0.1 (tests/servers/raw_reply.py): the message
# says what came, non-printable bytes escaped; no retry (the reply will not
# change); nothing written at dest.
. "$ROOT/tests/lib.sh"

start_raw() { # mode -> $RAW_PORT (the server stopped by its pid at exit)
    python3 "$ROOT/tests/servers/raw_reply.py" "$1" > "raw.$1" 2> "raw.$1.log" &
    cleanup_add "kill $! 2>/dev/null"
    i=0; while ! grep -q '^[0-9][0-9]*$' "raw.$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "FAIL raw_reply $1 did not start: $(cat "raw.$1.log")"; exit 1; }
        sleep 0.05
    done
    RAW_PORT=$(cat "raw.$1")
}
recipe() { # port
    cat > r.lua <<EOF2
recipe { name = "not-http" }
step "download" { http.file { url = "http://127.0.0.1:$1/compose.yaml", dest = "./compose.yaml", retries = 2 } }
EOF2
    cat > e.lua <<EOF2
recipe { name = "not-http-expect" }
step "web UI" { http.expect { url = "http://127.0.0.1:$1/health", status = 200 } }
EOF2
}

start_raw garbage; recipe "$RAW_PORT"
run "$P" r.lua
expect "not HTTP: exit 1, the first bytes shown, escaped" \
    eval '[ $RC = 1 ] && has "$OUT" "the server did not answer HTTP (first bytes: \"\\\\x00\\\\x01SSH-2.0-OpenSSH_9.6\\\\r\\\\n"'
expect "not HTTP: not libcurl's words, no retry, nothing at dest" \
    eval '! has "$OUT$ERR" "HTTP/0.9" && ! has "$OUT" "attempts" && [ -z "$(ls -A | grep compose)" ]'
run "$P" e.lua
expect "not HTTP: http.expect says it too" \
    eval '[ $RC = 1 ] && has "$OUT" "GET http://127.0.0.1:$RAW_PORT/health: the server did not answer HTTP (first bytes: \"\\\\x00\\\\x01SSH"'

start_raw binary; recipe "$RAW_PORT"
run "$P" r.lua --json
expect "binary noise: every byte escaped, the message JSON text" \
    eval '[ $RC = 1 ] && has "$ERR" "first bytes: \"\\\\xff\\\\xfe\\\\x80\\\\x7f\\\\x00abc\")"'

start_raw bigheader; recipe "$RAW_PORT"
run "$P" r.lua
expect "a header line over 100 KiB: said so, not 'Out of memory' alone" \
    eval '[ $RC = 1 ] && has "$ERR" "reason: .*the server sent a header line over 100 KiB (libcurl: " && [ ! -e compose.yaml ]'
run "$P" e.lua
expect "a header line over 100 KiB: http.expect says it too" \
    has "$OUT" "/health: the server sent a header line over 100 KiB"

start_raw manyheaders; recipe "$RAW_PORT"
run "$P" r.lua
expect "too many header lines: said so, with how much came" \
    eval '[ $RC = 1 ] && has "$OUT" "the server sent too many header lines: [0-9]* bytes of them before libcurl stopped" && [ ! -e compose.yaml ]'
