# tests/servers/httpd.sh: start tests/servers/httpd.py from a shell test
# (source it after tests/lib.sh). start_httpd [args] gives $HTTPD_PID,
# $HTTPD_PORT, $BASE and stops the server by its pid when the test exits.
start_httpd() { # [extra args]
    python3 "$ROOT/tests/servers/httpd.py" "$@" > "$SANDBOX/.httpd.port" 2> "$SANDBOX/.httpd.log" &
    HTTPD_PID=$!
    cleanup_add "kill $HTTPD_PID 2>/dev/null"
    i=0
    while ! grep -q '^[0-9][0-9]*$' "$SANDBOX/.httpd.port" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "FAIL httpd: did not start: $(cat "$SANDBOX/.httpd.log")"; exit 1; }
        sleep 0.05
    done
    HTTPD_PORT=$(cat "$SANDBOX/.httpd.port")
    BASE="http://127.0.0.1:$HTTPD_PORT"
}
# requests the server has seen (all, or for one path)
httpd_count() {
    curl -s "$BASE/count" | python3 -c 'import json,sys; c=json.load(sys.stdin); p=sys.argv[1] if len(sys.argv)>1 else None; print(c["paths"].get(p,0) if p else c["total"])' "$@"
}
httpd_reset() { curl -s "$BASE/count/reset" > /dev/null; }
