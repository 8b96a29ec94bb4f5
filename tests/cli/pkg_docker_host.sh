#!/bin/bash
# tests/cli/pkg_docker_host.sh: recipes/docker-host.lua on a machine where
# Docker is already there (CI, and the dev machine): a no-op that spawns no
# process; its install path seen through fake apt-get/service commands (so
# nothing real is installed, started or stopped: docker is never touched);
# the docker group step with a throwaway user.
. "$ROOT/tests/lib.sh"
RECIPE=$ROOT/recipes/docker-host.lua

# Fake commands first on PATH: each logs its argv and succeeds, so a run that
# wrongly wanted to change something leaves a trace and changes nothing.
FAKE=$SANDBOX/fakebin
mkdir -p "$FAKE"
for c in apt-get apt-cache dpkg dpkg-query service systemctl update-rc.d invoke-rc.d usermod gpasswd docker; do
    cat > "$FAKE/$c" <<F
#!/bin/sh
echo "$c \$* DEBIAN_FRONTEND=\${DEBIAN_FRONTEND:-}" >> "$SANDBOX/calls"
exit 0
F
    chmod 755 "$FAKE/$c"
done
: > "$SANDBOX/calls"

run env PATH="$FAKE:$PATH" "$P" plan "$RECIPE"
expect "plan on a Docker host: nothing to change (exit 0)" test "$RC" = 0
expect "plan: the engine answers" has "$OUT" "docker answers *ok"

run env PATH="$FAKE:$PATH" "$P" "$RECIPE"
expect "apply on a Docker host: exit 0" test "$RC" = 0
expect "apply on a Docker host: all ok, nothing changed" has "$OUT" "ok=4 changed=0 failed=0"
expect "apply on a Docker host: no command was run" test ! -s "$SANDBOX/calls"

if command -v strace > /dev/null; then
    strace -f -qq -e trace=execve -o "$SANDBOX/trace" "$P" "$RECIPE" > "$SANDBOX/out2" 2>&1
    RC=$?; OUT=$(cat "$SANDBOX/out2"); ERR=""
    n=$(grep -c 'execve(' "$SANDBOX/trace")
    expect "re-run (real PATH) is a no-op: exit 0" test "$RC" = 0
    expect "re-run spawns no process (1 execve: provision itself, saw $n)" test "$n" = 1
else
    skip "re-run spawns no process" "strace is not installed"
fi

run "$P" plan "$RECIPE" -e compose=v3
expect "a bad compose choice: exit 2" test "$RC" = 2
expect "a bad compose choice: says why" has "$ERR" 'compose must be auto, v1 or v2, not "v3"'

run "$P" list "$RECIPE"
expect "list: the steps" has "$OUT" "docker service  (service.running)"
run "$P" list "$RECIPE" -e user=someone
expect "list: with a user, the docker group step" has "$OUT" "docker group"

# The install path, without installing: a dpkg database without any engine
# (DPKG_ADMINDIR, as dpkg honours it), no dockerd on PATH, fake apt-get.
# Its own state folder, and fakes for the teardown too: a state that ever
# said "this recipe installed docker.io" must never meet a real apt-get.
: > "$SANDBOX/calls"
FAKE_STATE=$SANDBOX/fake-state
run env PROVISION_STATE_DIR="$FAKE_STATE" DPKG_ADMINDIR="$ROOT/tests/fixtures/dpkg" PATH="$FAKE:/usr/bin:/bin" "$P" plan "$RECIPE"
expect "no engine: plan says it would install docker.io (exit 3)" test "$RC" = 3
expect "no engine: the change" has "$OUT" "install docker.io"
expect "plan ran nothing" test ! -s "$SANDBOX/calls"
run env PROVISION_STATE_DIR="$FAKE_STATE" DPKG_ADMINDIR="$ROOT/tests/fixtures/dpkg" PATH="$FAKE:/usr/bin:/bin" "$P" "$RECIPE"
expect "no engine: apply runs apt-get install -y docker.io, noninteractive" \
    grep -q '^apt-get install -y .* docker.io DEBIAN_FRONTEND=noninteractive$' "$SANDBOX/calls"
expect "no engine: the (fake) install did not make it so: exit 1" test "$RC" = 1
expect "no engine: a package apt-get did not really install is not recorded" \
    test -z "$(grep -rl 'docker.io' "$FAKE_STATE" 2> /dev/null)"
: > "$SANDBOX/calls"
run env PROVISION_STATE_DIR="$FAKE_STATE" PATH="$FAKE:$PATH" "$P" teardown "$RECIPE"
expect "no engine: teardown then removes nothing" test "$RC" = 0 -a -z "$(grep 'apt-get remove' "$SANDBOX/calls")"

# A throwaway user added to the docker group, then removed by teardown.
U=provt$$
export PROVISION_STATE_DIR=$SANDBOX/user-state
if useradd -M -s /usr/sbin/nologin "$U" 2> /dev/null; then
    cleanup_add "gpasswd -d $U docker > /dev/null 2>&1; userdel $U > /dev/null 2>&1"
    in_group() { getent group docker | cut -d: -f4 | tr ',' '\n' | grep -qx "$U"; }
    run "$P" plan "$RECIPE" -e user="$U"
    expect "user: plan would add them (exit 3)" test "$RC" = 3
    expect "user: the change" has "$OUT" "add $U to the docker group"
    run "$P" "$RECIPE" -e user="$U"
    expect "user: apply adds them to the docker group" test "$RC" = 0
    expect "user: really in the group" in_group
    expect "user: says to log in again" has "$OUT" "must log in again"
    run "$P" "$RECIPE" -e user="$U"
    expect "user: re-run is a no-op" has "$OUT" "ok=5 changed=0 failed=0"
    run "$P" teardown "$RECIPE" -e user="$U"
    expect "user: teardown takes them out of the group (exit 0)" test "$RC" = 0
    expect "user: really out of the group" test -z "$(in_group && echo yes)"
    expect "teardown left docker running" curl -sf --unix-socket /var/run/docker.sock -o /dev/null http://docker/_ping
else
    fail "user: useradd" "cannot create a throwaway user (not root?)"
fi

run "$P" plan "$RECIPE" -e user=nosuchuser-provision
expect "an unknown user: exit 1" test "$RC" = 1
expect "an unknown user: says so" has "$OUT$ERR" 'there is no user "nosuchuser-provision"'
