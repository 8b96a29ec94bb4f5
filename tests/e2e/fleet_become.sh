#!/bin/bash
# End to end: --become on real sshd hosts with sudo (tests/fixtures/sshd
# --sudo): deploy logs in and may sudo without a password, guest may only
# with one. The recipe then runs as root (sudo -n -H), in root's home or
# --chdir; a host where sudo would prompt, or that has no sudo, fails at
# once with the reason; a root login needs no sudo; teardown as root
# removes what root made, not what deploy made.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/sshd/hosts.sh"
docker_require "fleet --become"

ssh_hosts_start 3 --sudo || exit 1
export PROVISION_SSH="ssh -F $SSH_CONFIG"
cat > r.lua <<'R'
recipe { name = "become" }
local v = vars { word = "hi", token = secret "tok-0" }
step "dir" { fs.directory "./become-out" }
step "file" { fs.file { path = "./become-out/f", content = v.word .. "\n" } }
step "secret" { fs.file { path = "./become-out/token", content = v.token, mode = "0600" } }
R
owner() { ssh_host_exec "$1" stat -c '%u %a' "$2" 2>&1; }

run "$P" r.lua --host deploy@h1,deploy@h2 --become -e token=s3cret-become
expect "--become as deploy: exit 0, both hosts changed" \
    eval '[ $RC -eq 0 ] && [ $(printf "%s\n" "$OUT" | grep -cE "^deploy@h[12] +changed ") = 2 ]'
expect "the files are root's, in root's home (sudo -H)" \
    eval '[ "$(owner 1 /root/become-out/f)" = "0 644" ] && [ "$(owner 2 /root/become-out/token)" = "0 600" ]'
expect "the state is root's, in root's home" test "$(owner 1 /root/.provision)" = "0 700"
expect "nothing in deploy's home but the binary's cache" \
    eval '! ssh_host_exec 1 test -e /home/deploy/become-out && ! ssh_host_exec 1 test -e /home/deploy/.provision && ssh_host_exec 1 sh -c "test -x /home/deploy/.cache/provision/*/provision"'
expect "root's run folder is gone after the run" \
    eval 'ssh_host_exec 1 test -d /root/.cache/provision && [ -z "$(ssh_host_exec 1 sh -c "ls -A /root/.cache/provision | grep ^run")" ]'
expect "the secret: where the recipe put it, not in the output" \
    eval '[ "$(ssh_host_exec 2 cat /root/become-out/token)" = s3cret-become ] && ! has "$OUT$ERR" s3cret-become'

run "$P" r.lua --host deploy@h1,deploy@h2 --become -e token=s3cret-become
expect "re-run with --become: a no-op" \
    eval '[ $RC -eq 0 ] && [ $(printf "%s\n" "$OUT" | grep -cE "^deploy@h[12] +ok +ok=3 changed=0") = 2 ]'

run "$P" r.lua --host deploy@h1 -e token=tok-plain
expect "without --become deploy runs as deploy, in its home" \
    eval '[ $RC -eq 0 ] && [ "$(owner 1 /home/deploy/become-out/f)" = "1000 644" ]'

ssh_host_exec 1 mkdir -p /srv/app
run "$P" r.lua --host deploy@h1 --become --chdir /srv/app -e token=tok-plain
expect "--become --chdir: root runs in that folder" \
    eval '[ $RC -eq 0 ] && [ "$(owner 1 /srv/app/become-out/f)" = "0 644" ] && [ "$(owner 1 /srv/app/.provision)" = "0 700" ]'
run "$P" r.lua --host deploy@h1 --become --chdir /srv/none -e token=tok-plain
expect "--become --chdir to a folder that is missing: failed, naming it" \
    eval '[ $RC -eq 1 ] && has "$OUT" "deploy@h1 *failed" && has "$OUT" "/srv/none"'

t0=$(date +%s%N)
run "$P" r.lua --host guest@h3,deploy@h3 --become -e token=tok-plain
t1=$(date +%s%N)
expect "a user sudo would ask a password of: failed at once with sudo's word; the other host runs" \
    eval '[ $RC -eq 1 ] && has "$OUT" "guest@h3 *failed .*--become: sudo -n refused: a password is required" && has "$OUT" "deploy@h3 *changed"'
expect "... in well under the sudo timeout (no prompt waited on): $(( (t1 - t0) / 1000000 )) ms" \
    test $(( (t1 - t0) / 1000000 )) -lt 10000
expect "... and nothing of the guest's run on the host" \
    eval '[ $RC -eq 1 ] && ! ssh_host_exec 3 test -e /home/guest/become-out && ! ssh_host_exec 3 test -e /home/guest/.provision'

ssh_host_exec 2 rm /usr/bin/sudo
run "$P" r.lua --host deploy@h2 --become -e token=tok-plain
expect "a host without sudo: failed, saying so" \
    eval '[ $RC -eq 1 ] && has "$OUT" "deploy@h2 *failed .*--become: there is no sudo there"'
run "$P" r.lua --host h2 --become -e token=s3cret-become
expect "a root login with --become needs no sudo: a no-op there" \
    eval '[ $RC -eq 0 ] && has "$OUT" "h2 *ok "'

run "$P" teardown r.lua --host deploy@h1 --become
expect "teardown --become: root's files go, deploy's own stay" \
    eval '[ $RC -eq 0 ] && ! ssh_host_exec 1 test -e /root/become-out && ssh_host_exec 1 test -f /home/deploy/become-out/f'
