#!/bin/bash
# The newer Docker Engine (Debian trixie's docker.io 26.1, Engine API 1.45:
# tests/deps/engine-next.sh), started here side by side with the system's:
# the compose stack's recipe with Compose v2 converges, re-applies a change
# and tears down; Compose v1 (docker-compose 1.29) cannot recreate a
# container on Engine 25+ (its images no longer carry ContainerConfig: an
# upstream bug, a Python traceback): provision says so first, with the fix.
# (tests/run also runs the files marked engine-matrix against this engine.)
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
docker_require "compose on the newer engine"
[ -x "${ENGINE_NEXT_DIR:-/usr/local/lib/provision-tests/engine-next}/usr/sbin/dockerd" ] \
    || { fail "compose on the newer engine" "not installed: sh tests/deps/engine-next.sh (make deps)"; exit 1; }
if [ -z "${PROVISION_ENGINE_NEXT:-}" ]; then   # not inside tests/run's pass on it: start one
    next=$(mktemp -d /tmp/provision-engine-next.XXXXXX)
    cleanup_add "sh '$ROOT/tests/deps/engine-next-run.sh' stop '$next'"
    DOCKER_HOST=$(sh "$ROOT/tests/deps/engine-next-run.sh" start "$next") \
        || { fail "the newer engine starts" "$(tail -3 "$next/dockerd.log" 2>/dev/null)"; exit 1; }
    export DOCKER_HOST
fi
ver=$(docker version --format '{{.Server.APIVersion}}' 2>&1)
expect "the engine is the newer one (API 1.45): $ver" test "$ver" = 1.45

stack_env next
RECIPE="$FIXTURE_STACK/recipe.lua"
run env PROVISION_COMPOSE="docker compose" "$P" "$RECIPE" "${ARGS[@]}"
expect "Compose v2: apply (5 steps changed)" eval '[ $RC = 0 ] && has "$OUT" "changed=5 failed=0"'
run env PROVISION_COMPOSE="docker compose" "$P" "$RECIPE" "${ARGS[@]}"
expect "Compose v2: a no-op re-run" eval '[ $RC = 0 ] && has "$OUT" "ok=5 changed=0 failed=0"'
run env PROVISION_COMPOSE="docker compose" "$P" "$RECIPE" "${ARGS[@]}" -e greeting=bye
expect "Compose v2: a changed .env re-applied (containers recreated)" \
    eval '[ $RC = 0 ] && [ "$(curl -s -u user:pass "http://127.0.0.1:$PORT/greeting.txt")" = bye ]'
run env PROVISION_COMPOSE=docker-compose "$P" "$RECIPE" "${ARGS[@]}" -e greeting=again
expect "Compose v1 recreating on Engine 26: fails (exit 1), saying why and what to do first" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "docker-compose 1.x cannot recreate a container on Docker Engine 25 or later" && has "$OUT$ERR" "use Compose v2"'
run env PROVISION_COMPOSE="docker compose" "$P" teardown "$RECIPE" "${ARGS[@]}"
expect "teardown with v2: nothing of the project left" eval '[ $RC = 0 ] && project_gone "$PROJ"'
