#!/bin/bash
# The SSH test hosts of the fleet tests (tests/fixtures/sshd/hosts.sh),
# checked themselves: 4 come up in seconds and answer ssh in batch mode with
# the run's key only, each with its own filesystem; provision runs on a host
# with its libraries, and a host without them has none of them (the static
# binary's case); a stopped host fails at once with ssh's reason; a killed
# host and a dropped connection end the session at once; a read-only host
# refuses writes; and the fixture leaves no container or image behind.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/sshd/hosts.sh"
docker_require "ssh test hosts"

ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
on() { local h=$1; shift; run ssh -n -F "$SSH_CONFIG" "$h" "$@"; }   # ssh HOST CMD into OUT, ERR, RC
cmdlines() { ssh_host_exec "$1" sh -c 'for f in /proc/[0-9]*/cmdline; do tr "\0" " " < "$f"; echo; done 2>/dev/null'; }

t=$(ms)
ssh_hosts_start 3 --libs-of "$P"
ssh_hosts_start 1
up=$(( $(ms) - t ))
echo "# 4 hosts up in $up ms"
expect "4 hosts up in under 15 s: h1..h3 with provision's libraries, h4 without" \
    eval '[ "$HOSTS" = "h1 h2 h3 h4" ] && [ $up -lt 15000 ]'
for h in $HOSTS; do
    on "$h" 'echo hi-$((1+1)) $(hostname)'
    expect "$h: ssh in batch mode runs a command there" eval '[ $RC = 0 ] && [ "$OUT" = "hi-2 $h" ]'
done
expect "the ports are published on 127.0.0.1 only" \
    eval '! docker ps --filter "label=provision-test.sshd=$SSH_HOSTS_ID" --format "{{.Ports}}" | grep -v "^127\.0\.0\.1:[0-9]*->22/tcp$"'
on h1 'echo "$PATH"'
echo "# the remote PATH: $OUT"
on h1 'echo "$(id -u) $HOME $(pwd) $SHELL"'
expect "the remote user is root, HOME=/root, the session starts there" eval '[ "$OUT" = "0 /root /root /bin/sh" ]'
expect "the keys on the host are root's, mode 0600" \
    eval '[ "$(ssh_host_exec 1 stat -c "%a %u" /etc/ssh/ssh_host_ed25519_key /root/.ssh/authorized_keys | sort -u)" = "600 0" ]'

# another key is refused at once (no password prompt)
ssh-keygen -q -t ed25519 -N '' -f "$SANDBOX/other" && sed "s|IdentityFile .*|IdentityFile $SANDBOX/other|" "$SSH_CONFIG" > "$SANDBOX/other_config"
run ssh -F "$SANDBOX/other_config" h1 true
expect "another key is refused: exit 255, publickey only" eval '[ $RC = 255 ] && has "$ERR" "Permission denied (publickey)"'

on h1 'echo one > /root/mark'
on h2 'test ! -e /root/mark && echo absent'
expect "each host has its own filesystem" eval '[ "$OUT" = absent ] && [ "$(ssh_host_exec 1 cat /root/mark)" = one ]'

# provision sent as ssh sends it (stdin), then run there
for h in h1 h4; do run ssh -F "$SSH_CONFIG" "$h" 'cat > /root/provision && chmod 0755 /root/provision' < "$P"; done
on h1 /root/provision --version
expect "h1 (--libs-of provision) runs provision --version" eval '[ $RC = 0 ] && [ "$OUT" = "$("$P" --version)" ]'
on h4 'find / -xdev -name "lib*.so*"'
expect "h4 has none of provision's libraries (Lua, libyaml, jansson, libcurl, libarchive)" \
    eval '[ $RC = 0 ] && has "$OUT" "libc.so.6" && ! printf "%s" "$OUT" | grep -qE "liblua|libyaml|libjansson|libcurl|libarchive"'
on h4 /root/provision --version
# (./provision links Lua, libyaml and jansson in: it needs only libc and
# libm, which h4 has; the sanitizer build needs libasan, which it has not)
if ldd "$P" 2>/dev/null | grep -vE 'linux-vdso|ld-linux|lib[cm]\.so' | grep -q '=>'; then
    expect "h4 (no --libs-of) can't run a provision that needs libraries it has not" \
        eval '[ $RC != 0 ] && has "$ERR" "error while loading shared libraries"'
else
    expect "h4 (no --libs-of) runs a provision that needs only the C library" eval '[ $RC = 0 ] && [ "$OUT" = "$("$P" --version)" ]'
fi

# a stopped host: ssh's own reason at once; started again, its files kept
on h2 'echo kept > /root/kept'
ssh_host_stop 2
t=$(ms); on h2 true; took=$(( $(ms) - t ))
echo "# a stopped host refused in $took ms"
expect "a stopped host fails at once with exit 255 and ssh's reason" \
    eval '[ $RC = 255 ] && has "$ERR" "Connection refused" && [ $took -lt 3000 ]'
on h3 true
expect "the other hosts still answer" eval '[ $RC = 0 ]'
ssh_host_start 2
on h2 cat /root/kept
expect "ssh_host_start: the host answers again, its files kept" eval '[ $RC = 0 ] && [ "$OUT" = kept ]'

# bg_session I: a session on hI that runs until cut (sleep 30), started and
# seen running there (/proc/*/cmdline, as the fleet tests look for secrets);
# bg_end: it ended within 5 s (its status in RC)
bg_session() {
    (timeout 20 ssh -n -F "$SSH_CONFIG" "h$1" 'sleep 30'; echo "rc $?") > "$SANDBOX/bg.out" 2>&1 &
    bg=$!
    for _ in $(seq 50); do cmdlines "$1" | grep -q "^sleep 30 $" && return 0; sleep 0.1; done
    return 1
}
bg_end() {
    local t; t=$(ms)
    wait "$bg"
    RC=$(sed -n 's/^rc //p' "$SANDBOX/bg.out") OUT=$(cat "$SANDBOX/bg.out") ERR=""
    [ $(( $(ms) - t )) -lt 5000 ]
}

# a host killed mid-session: the session ends at once; started again
bg_session 3
ssh_host_kill 3
expect "a host killed mid-session: ssh ends at once with exit 255" eval 'bg_end && [ "$RC" = 255 ]'
ssh_host_start 3
on h3 true
expect "the killed host, started again, answers" eval '[ $RC = 0 ]'

# the connection dropped (the host's sshd sessions killed), the host still up;
# a run's command lines are visible through ssh_host_exec (/proc/*/cmdline)
expect "ssh_host_exec sees a session's command in /proc/*/cmdline" bg_session 1
ssh_host_drop 1
expect "a dropped connection: ssh ends at once with exit 255" eval 'bg_end && [ "$RC" = 255 ]'
on h1 true
expect "after the drop the host still answers" eval '[ $RC = 0 ]'

# a read-only disk, with the host's files as they were
ssh_host_readonly 1
on h1 'echo x > /root/new'
expect "a read-only host refuses a write" eval '[ $RC != 0 ] && has "$ERR" "Read-only file system"'
on h1 'cat /root/mark && /root/provision --version > /dev/null && echo t > /tmp/t && cat /tmp/t'
expect "the read-only host keeps its files and runs provision; /tmp is writable" \
    eval '[ $RC = 0 ] && [ "$(echo $OUT)" = "one t" ]'

# the fixture's cleanup, seen from outside: a run that exits and a run
# stopped by SIGTERM leave no container (stopped or read-only) and no image
cat > "$SANDBOX/inner.sh" <<'EOF'
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/sshd/hosts.sh"
ssh_hosts_start 2
ssh_host_readonly 2
ssh_host_stop 1
echo "id $SSH_HOSTS_ID"
if [ "${1:-}" = wait ]; then sleep 60 & cleanup_add "kill $!"; wait $!; fi
EOF
leftovers() { # ID: its containers and images
    docker ps -aq --filter "label=provision-test.sshd=$1"
    docker images -q --filter "reference=provision-test/sshd:$1-*"
}
ROOT=$ROOT PROVISION=$P bash "$SANDBOX/inner.sh" > "$SANDBOX/inner.out" 2>&1
id=$(sed -n 's/^id //p' "$SANDBOX/inner.out")
expect "a run that exits leaves no container and no image" \
    eval '[ -n "$id" ] && [ -z "$(leftovers "$id")" ] || { cat "$SANDBOX/inner.out"; false; }'
ROOT=$ROOT PROVISION=$P bash "$SANDBOX/inner.sh" wait > "$SANDBOX/inner.out" 2>&1 &
inner=$!
for _ in $(seq 200); do grep -q '^id ' "$SANDBOX/inner.out" && break; sleep 0.1; done
id=$(sed -n 's/^id //p' "$SANDBOX/inner.out")
kill -TERM "$inner"; wait "$inner"
expect "a run stopped by SIGTERM leaves no container and no image" \
    eval '[ -n "$id" ] && [ -z "$(leftovers "$id")" ] || { cat "$SANDBOX/inner.out"; false; }'
