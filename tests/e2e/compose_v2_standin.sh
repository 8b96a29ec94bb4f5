#!/bin/bash
# Compose v2 (`docker compose`, a Docker CLI plugin) as provision meets it:
# through the real docker CLI's plugin dispatch. No v2 binary is installable
# here (Debian 12 packages only docker-compose 1.29.2), so the plugin is a
# STAND-IN: a shell script in $HOME/.docker/cli-plugins that answers the
# plugin metadata and `version` as v2 does ("Docker Compose version
# v2.99.0"), logs every call, and hands the rest to docker-compose v1. It
# shows what is ours to get right: `docker compose` is preferred to
# `docker-compose`, the arguments we pass reach the plugin as v2 takes them,
# a no-op re-run calls it not at all, replacing or removing the plugin is
# noticed (detection is redone), and teardown goes through it too. What v2
# itself does differently is not shown here.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
docker_require "compose v2 stand-in"

stack_env v2
RECIPE="$FIXTURE_STACK/recipe.lua"

# a home of our own: the plugin folder, and an empty detection cache
export HOME="$SANDBOX/home" XDG_CACHE_HOME="$SANDBOX/home/.cache"
unset PROVISION_COMPOSE DOCKER_CONFIG
PLUGIN="$HOME/.docker/cli-plugins/docker-compose"
LOG="$SANDBOX/plugin.log" V1LOG="$SANDBOX/v1.log"
# docker-compose v1 as found on PATH logs its direct calls (the plugin runs
# the real one by its full path)
DC=$(command -v docker-compose) || { fail "compose v2 stand-in" "docker-compose is not installed"; exit 1; }
mkdir -p "$SANDBOX/bin"
printf '#!/bin/sh\necho "$*" >> "%s"\nexec "%s" "$@"\n' "$V1LOG" "$DC" > "$SANDBOX/bin/docker-compose"
chmod +x "$SANDBOX/bin/docker-compose"
export PATH="$SANDBOX/bin:$PATH"
: > "$V1LOG"
plugin() { # VERSION: (re)write the stand-in
    mkdir -p "$(dirname "$PLUGIN")"
    cat > "$PLUGIN.tmp" <<EOF
#!/bin/sh
# STAND-IN for the Compose v2 CLI plugin (tests/e2e/compose_v2_standin.sh)
if [ "\$1" = docker-cli-plugin-metadata ]; then
    echo '{"SchemaVersion":"0.1.0","Vendor":"provision tests","Version":"v$1","ShortDescription":"stand-in for Compose v2"}'
    exit 0
fi
echo "\$*" >> "$LOG"
shift   # the docker CLI passes the plugin's name first
[ "\$1" = version ] && { echo "Docker Compose version v$1"; exit 0; }
exec "$DC" "\$@"
EOF
    chmod +x "$PLUGIN.tmp" && mv "$PLUGIN.tmp" "$PLUGIN"
}
calls() { [ -f "$LOG" ] && grep -c . "$LOG" || echo 0; }
plugin 2.99.0
expect "the stand-in answers as v2 through the docker CLI" \
    eval '[ "$(docker compose version)" = "Docker Compose version v2.99.0" ]'
: > "$LOG"

run "$P" "$RECIPE" "${ARGS[@]}" -v
expect "apply through 'docker compose': exit 0, 5 steps changed" \
    eval '[ $RC = 0 ] && has "$OUT" "changed=5 failed=0"'
expect "it chose 'docker compose' 2.99.0 over docker-compose" has "$OUT" "docker compose 2.99.0"
expect "the plugin got 'compose -p $PROJ up -d' (run_once of init, then the stack)" \
    eval 'grep -q "^compose -p $PROJ up -d init\$" "$LOG" && grep -q "^compose -p $PROJ up -d\$" "$LOG"'
expect "docker-compose was never called directly (every call went through the plugin)" \
    eval '[ ! -s "$V1LOG" ]'
body=$(curl -s -u user:pass "http://127.0.0.1:$PORT/health.json")
expect "the stack answers: health.json with basic auth" test "$body" = '{"status":"healthy"}'

n=$(calls)
run "$P" "$RECIPE" "${ARGS[@]}"
expect "re-run: a no-op that calls the plugin not at all" \
    eval '[ $RC = 0 ] && has "$OUT" "ok=5 changed=0 failed=0" && [ "$(calls)" = "$n" ]'

plugin 2.99.1   # an upgrade of the plugin: detection is redone, once
n=$(calls)
run "$P" "$RECIPE" "${ARGS[@]}" -v
expect "after the plugin changed: detected again (2.99.1), still a no-op" \
    eval '[ $RC = 0 ] && has "$OUT" "docker compose 2.99.1" && has "$OUT" "changed=0 failed=0"'
expect "after the plugin changed: one call, 'version'" \
    eval '[ "$(calls)" = $((n + 1)) ] && [ "$(tail -1 "$LOG")" = "compose version" ]'

# the plugin gone: back to docker-compose v1. The docker CLI would find a
# system-wide plugin next (make deps installs the real v2 in
# /usr/local/lib/docker/cli-plugins): an empty folder is mounted over each
# system plugin folder, in a mount namespace of this run only, so the
# machine is a Debian 12 one with v1 alone
rm -f "$PLUGIN"
hide=""
for d in /usr/local/lib/docker/cli-plugins /usr/local/libexec/docker/cli-plugins \
         /usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins; do
    [ -d "$d" ] && hide="$hide mount -t tmpfs -o mode=0755 none $d &&"
done
run unshare --mount --propagation private sh -c "$hide exec \"\$0\" \"\$@\"" "$P" "$RECIPE" "${ARGS[@]}" -v
expect "without the plugin: docker-compose 1.29 is used, still a no-op" \
    eval '[ $RC = 0 ] && has "$OUT" "docker-compose 1.29" && has "$OUT" "changed=0 failed=0"'
expect "without the plugin: docker-compose itself was asked its version, nothing else" \
    eval '[ "$(cat "$V1LOG")" = version ]'

plugin 2.99.1
n=$(calls)
run "$P" teardown "$RECIPE" "${ARGS[@]}"
expect "teardown through the plugin: exit 0, 'down' went through it" \
    eval '[ $RC = 0 ] && tail -n +$((n + 1)) "$LOG" | grep -q "^compose -p $PROJ down"'
expect "teardown: nothing of the project is left" project_gone "$PROJ"
