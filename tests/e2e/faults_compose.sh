#!/bin/bash
# Faults of a compose stack, through a real recipe (tests/fixtures/faults/
# recipe.lua: the busybox stack with a chosen compose file) and a real
# engine: the one-shot init exits non-zero, a service exits non-zero, a
# service turns unhealthy, a service never turns healthy (timeout), the
# engine stops mid-run (a socket proxy killed during compose.up's wait).
# Each: exit 1, a clear reason (with the service's last log lines where it
# has any), nothing recorded as done that is not, and a re-run with the good
# compose file that converges.
# compose-matrix: run again with v1 (tests/run)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"
docker_require "compose faults"

F="$ROOT/tests/fixtures/faults"
GOOD="$FIXTURE_STACK/docker-compose.yaml"
stack_env faults
ARGS+=(-e "project=$PROJ")
apply() { run "$P" "$F/recipe.lua" "${ARGS[@]}" "$@"; }

# after a failure: nothing half-written in the project folder, a whole state
sound() { [ -z "$(temp_files "$DIR")" ] && state_valid; }
# the good compose file converges: exit 0, web healthy and serving
converge() { # name
    apply -e compose="$GOOD" -e timeout=60s
    expect "$1: the re-run with the good compose file converges" \
        eval '[ $RC = 0 ] && has "$OUT" "failed=0" && [ "$(curl -s -u user:pass "http://127.0.0.1:$PORT/health.json")" = "{\"status\":\"healthy\"}" ]'
}

# ---- the one-shot init service exits non-zero ----
apply -e compose="$F/init-fails.yaml"
expect "init exits 3: exit 1 at step 'initialize'" eval '[ $RC = 1 ] && has "$OUT$ERR" "step .initialize. failed"'
expect "init exits 3: the reason names the code and shows its log" \
    eval 'has "$OUT$ERR" "service init exited with code 3" && has "$OUT$ERR" "init: cannot prepare the data volume"'
expect "init exits 3: not recorded as run; the stack was not started" \
    eval 'sound && [ "$(state_key initialize ran)" = absent ] && [ -z "$(svc_id "$PROJ" web)" ]'
converge "init exits 3"
GOOD_APPLIED=$(state_key start applied)

# ---- a service (no health check) exits non-zero at once: not taken for running ----
apply -e compose="$F/worker-exits.yaml"
expect "worker exits 4: exit 1 at step 'start'" eval '[ $RC = 1 ] && has "$OUT$ERR" "step .start. failed"'
expect "worker exits 4: the reason names the service, the code and its log" \
    eval 'has "$OUT$ERR" "service worker: exited (exit code 4)" && has "$OUT$ERR" "worker: cannot reach the broker"'
expect "worker exits 4: the state still holds only the last good apply" \
    eval 'sound && [ "$(state_key start applied)" = "$GOOD_APPLIED" ]'
run "$P" plan "$F/recipe.lua" "${ARGS[@]}" -e compose="$F/worker-exits.yaml"
expect "worker exits 4: plan shows the stack pending (exit 3)" eval '[ $RC = 3 ] && has "$OUT" "service worker: exited"'
converge "worker exits 4"

# ---- a service turns unhealthy ----
apply -e compose="$F/web-unhealthy.yaml"
expect "web unhealthy: exit 1 at step 'start'" eval '[ $RC = 1 ] && has "$OUT$ERR" "step .start. failed"'
expect "web unhealthy: the reason names the service and the probe's output" \
    eval 'has "$OUT$ERR" "service web: unhealthy (wget: server returned error: HTTP/1.1 404 Not Found)"'
expect "web unhealthy: the state still holds only the last good apply" \
    eval 'sound && [ "$(state_key start applied)" = "$GOOD_APPLIED" ]'
converge "web unhealthy"

# ---- a service never turns healthy ----
t0=$(date +%s)
apply -e compose="$F/web-never-healthy.yaml" -e timeout=5s
secs=$(( $(date +%s) - t0 ))
expect "web never healthy: exit 1 after the 5 s wait (${secs}s in all)" eval '[ $RC = 1 ] && [ $secs -lt 40 ]'
expect "web never healthy: the reason says what it waited for and for how long" \
    has "$OUT$ERR" "timed out after 5s waiting for healthy: service web: health starting"
expect "web never healthy: the state still holds only the last good apply" \
    eval 'sound && [ "$(state_key start applied)" = "$GOOD_APPLIED" ]'
converge "web never healthy"

# ---- the engine stops mid-run ----
# DOCKER_HOST points at a forwarder to the real engine; killing it during
# compose.up's wait makes the engine vanish for provision (and Compose)
# without touching the machine's dockerd.
SOCK="$SANDBOX/engine.sock"
start_proxy() {
    python3 "$F/sockproxy.py" "$SOCK" > "$SANDBOX/proxy.out" 2>&1 &
    PROXY=$!
    cleanup_add "kill $PROXY 2>/dev/null"
    i=0; while ! grep -q ready "$SANDBOX/proxy.out" 2>/dev/null; do i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.05; done
}
start_proxy || fail "engine stops: the socket proxy did not start" "$(cat "$SANDBOX/proxy.out")"
DOCKER_HOST="unix://$SOCK" "$P" "$F/recipe.lua" "${ARGS[@]}" -e compose="$F/web-never-healthy.yaml" -e timeout=120s \
    > engine.out 2>&1 &
pid=$!
# wait until Compose is done and provision waits for web to be healthy
i=0
while :; do
    i=$((i + 1))
    w=$(svc_id "$PROJ" web)
    if [ -n "$w" ] && [ -z "$(pgrep -P $pid)" ] \
       && [ "$(docker inspect -f '{{.State.Health.Status}}' "$w" 2>/dev/null)" = starting ] \
       && grep -q "initialize *changed" engine.out; then break; fi
    [ $i -gt 600 ] && { fail "engine stops: provision never reached the wait for web (60 s)" "$(cat engine.out)"; break; }
    sleep 0.1
done
sleep 0.5
t0=$(date +%s%N)
kill -KILL $PROXY; wait $PROXY 2>/dev/null
wait $pid; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
OUT=$(cat engine.out); ERR=""   # what a failed expect below shows
expect "engine stops: exit 1, promptly (${ms}ms)" eval '[ $rc = 1 ] && [ $ms -lt 3000 ]'
expect "engine stops: the failed step is 'start', the reason names the engine's socket" \
    eval 'grep -q "step .start. failed" engine.out && grep -q "$SOCK" engine.out'
expect "engine stops: the state still holds only the last good apply" \
    eval 'sound && [ "$(state_key start applied)" = "$GOOD_APPLIED" ]'
DOCKER_HOST="unix://$SOCK" run "$P" "$F/recipe.lua" "${ARGS[@]}"
expect "engine still down: the preflight check fails clearly (exit 1)" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "check .docker engine. failed" && has "$OUT$ERR" "no Docker engine answers"'
start_proxy || fail "engine back: the socket proxy did not start" "$(cat "$SANDBOX/proxy.out")"
DOCKER_HOST="unix://$SOCK" run "$P" "$F/recipe.lua" "${ARGS[@]}" -e compose="$GOOD" -e timeout=60s
expect "engine back: the re-run (through the same DOCKER_HOST) converges" \
    eval '[ $RC = 0 ] && has "$OUT" "failed=0" && [ "$(curl -s -u user:pass "http://127.0.0.1:$PORT/health.json")" = "{\"status\":\"healthy\"}" ]'
kill $PROXY; wait $PROXY 2>/dev/null

run "$P" "$F/recipe.lua" "${ARGS[@]}" -e compose="$GOOD"
expect "after all the faults: a no-op run" eval '[ $RC = 0 ] && has "$OUT" "changed=0 failed=0"'
run "$P" teardown "$F/recipe.lua" "${ARGS[@]}" -e compose="$GOOD"
expect "teardown: nothing of the project left" eval '[ $RC = 0 ] && project_gone "$PROJ"'
