#!/bin/bash
# End to end: the busybox stack (tests/fixtures/stack) through its recipe
# and a real Docker engine: apply, HTTP with basic auth, a no-op re-run,
# .env changed and re-applied, plan, teardown with nothing left behind.
# compose-matrix: run again with v1 (tests/run)
# engine-matrix: run again on the newer engine (tests/run)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
docker_require "compose stack end to end"

stack_env e2e
RECIPE="$FIXTURE_STACK/recipe.lua"

run "$P" "$RECIPE" "${ARGS[@]}"
expect "apply brings the stack up (rc 0, 5 steps changed)" \
    test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep 'changed=5 failed=0')"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health.json")
expect "web asks for basic auth (401 without credentials)" test "$code" = 401
body=$(curl -s -u user:pass "http://127.0.0.1:$PORT/health.json")
expect "web answers with auth: health.json" test "$body" = '{"status":"healthy"}'
body=$(curl -s -u user:pass "http://127.0.0.1:$PORT/greeting.txt")
expect "init ran before web: greeting from the volume" test "$body" = hello
state=$(docker inspect -f '{{.State.Health.Status}}' "$(svc_id "$PROJ" web)" 2>&1)
expect "web is healthy per the engine" test "$state" = healthy
init=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(svc_id "$PROJ" init)" 2>&1)
expect "init exited 0" test "$init" = "exited 0"

run "$P" "$RECIPE" "${ARGS[@]}"
expect "re-run is a no-op (all ok)" test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep 'ok=5 changed=0 failed=0')"

run "$P" plan "$RECIPE" "${ARGS[@]}"
expect "plan on the converged stack: nothing to change (rc 0)" test "$RC" = 0

run "$P" plan "$RECIPE" "${ARGS[@]}" -e greeting=bye
expect "plan with another .env: pending (rc 3)" test "$RC" = 3
expect "plan says up and the one-shot run again after the .env step (as apply does), not ok" \
    eval 'has "$OUT" "initialize .*would-change .*\.env would change first (step .environment.)" && has "$OUT" "start .*would-change .*\.env would change first (step .environment.)"'

run "$P" "$RECIPE" "${ARGS[@]}" -e greeting=bye
expect "changed .env: re-applied" test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep -E '^\[5/5\] start +changed')"
body=$(curl -s -u user:pass "http://127.0.0.1:$PORT/greeting.txt")
expect "the new .env value is served" test "$body" = bye

run "$P" "$RECIPE" "${ARGS[@]}" -e greeting=bye
expect "re-run after the change is a no-op again" test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep 'changed=0 failed=0')"

# a new root filesystem: the image step would import it anew, and up would
# then recreate the containers on it (a name, not a path: the image)
cp "$SANDBOX/rootfs.tar" "$SANDBOX/rootfs2.tar"
printf 'v2\n' > "$SANDBOX/stamp-v2"
tar -rf "$SANDBOX/rootfs2.tar" -C "$SANDBOX" stamp-v2
ARGS2=("${ARGS[@]/#rootfs=*/rootfs=$SANDBOX/rootfs2.tar}" -e greeting=bye)   # rootfs replaced: a -e key is given once
run "$P" plan "$RECIPE" "${ARGS2[@]}"
expect "plan with a new root filesystem: the image, then start, which runs it, would change (rc 3)" \
    eval '[ $RC -eq 3 ] && has "$OUT" "image .*would-change" && has "$OUT" "start .*would-change .*image $TAG would change first (step .image.)"'
run "$P" "$RECIPE" "${ARGS2[@]}"
expect "apply as the plan said: image and start changed" \
    eval '[ $RC -eq 0 ] && printf "%s" "$OUT" | grep -Eq "^\[1/5\] image +changed" && printf "%s" "$OUT" | grep -Eq "^\[5/5\] start +changed"'
run "$P" "$RECIPE" "${ARGS2[@]}"
expect "then a no-op again" test "$RC" = 0 -a -n "$(printf '%s' "$OUT" | grep 'changed=0 failed=0')"

# a stopped service is seen by the check and brought back
docker stop "$(svc_id "$PROJ" worker)" >/dev/null 2>&1
run "$P" plan "$RECIPE" "${ARGS[@]}" -e greeting=bye
expect "a stopped service shows in plan" has "$OUT$ERR" "service worker: "

# compose.up in a recipe with no teardown block: plan --teardown previews
# its revert (the containers and network it would take down, the named
# volume it keeps), then teardown does that
R2="$SANDBOX/up-only.lua"
cat > "$R2" <<'EOF'
recipe { name = "up-only" }
local v = vars { dir = "", project = "" }
step "worker" { compose.up { project_dir = v.dir, project = v.project, services = { "worker" } } }
EOF
run "$P" "$R2" -e "dir=$DIR" -e "project=${PROJ}u"
expect "compose.up of one service in project ${PROJ}u: up" eval '[ $RC = 0 ] && has "$OUT" "changed=1"'
run "$P" plan --teardown "$R2" -e "dir=$DIR" -e "project=${PROJ}u"
expect "plan --teardown: exit 3, its container and network named, the named volume kept" \
    eval '[ $RC = 3 ] && has "$OUT" "- container ${PROJ}u[-_]worker[-_]1" && has "$OUT" "- network ${PROJ}u_default" \
        && has "$OUT" "= volume ${PROJ}u_data: left, named volumes stay"'
expect "... and nothing taken down" test -n "$(docker ps -q --filter "label=com.docker.compose.project=${PROJ}u")"
run "$P" teardown "$R2" -e "dir=$DIR" -e "project=${PROJ}u"
expect "... teardown takes down what it said" eval '[ $RC = 0 ] && [ -z "$(docker ps -aq --filter "label=com.docker.compose.project=${PROJ}u")" ] && [ -z "$(docker network ls -q --filter "label=com.docker.compose.project=${PROJ}u")" ]'
docker volume rm "${PROJ}u_data" > /dev/null 2>&1

run "$P" teardown "$RECIPE" "${ARGS[@]}" -e greeting=bye
expect "teardown succeeds" test "$RC" = 0
left=$(project_leftovers "$PROJ")
expect "no container, volume or network of the project is left" test -z "$left"

run "$P" teardown "$RECIPE" "${ARGS[@]}" -e greeting=bye
expect "teardown again: nothing to do" test "$RC" = 0
