#!/bin/bash
# End to end: one recipe on four real sshd hosts (containers from
# tests/fixtures/sshd, published on 127.0.0.1), over the system's ssh:
# apply, no-op (the binary sent once per digest), plan with one host
# drifted (exit 3, its diff), --json with "host", an unreachable host,
# include + a modules/ plugin + a file beside the recipe, secrets kept out
# of every argv and the output, a recipe error before any host is touched,
# SIGINT on the controller, teardown on every host.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/sshd/hosts.sh"
docker_require "fleet over ssh"

# h1-h3 have the libraries ./provision links; h4 only the C library: what
# travels is ./provision-static (make static; make test builds it)
ssh_hosts_start 3 --libs-of "$P" || exit 1
ssh_hosts_start 1 || exit 1
export PROVISION_SSH="ssh -F $SSH_CONFIG"
H="--host h1,h2,h3 --host h4"

# the recipe: a base it includes, a plugin, a template beside it
mkdir -p app/modules app/files
cat > app/base.lua <<'R'
step "folder" { fs.directory "./fleet-out" }
R
cat > app/modules/shout.lua <<'R'
return { up = function(s) return s:upper() end }
R
printf 'hello from %s\n' '${who}' > app/files/greeting.tmpl
cat > app/recipe.lua <<'R'
recipe { name = "fleet" }
local v = vars { who = "fleet", token = secret "fleet-token-0" }
local shout = require "shout"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
include "base.lua"
local f = assert(io.open(here .. "/files/greeting.tmpl")); local tmpl = f:read("a"); f:close()
step "greeting" { fs.template { path = "./fleet-out/greeting.txt", template = tmpl,
                                vars = { who = shout.up(v.who) } } }
step "token" { fs.file { path = "./fleet-out/token", content = v.token, mode = "0600" } }
R
printf 's3cret-fleet-value\n' > token.txt

run "$P" app/recipe.lua $H -e token=@token.txt
expect "apply on 4 hosts: exit 0, a recap row per host, each changed" \
    eval '[ $RC -eq 0 ] && [ $(printf "%s\n" "$OUT" | grep -cE "^h[1-4] +changed ") = 4 ]'
expect "h4 has none of our libraries, and the binary sent there runs: the static one" \
    eval '! ssh_host_exec 4 sh -c "ls /usr/lib/x86_64-linux-gnu/liblua5.4.so* /lib/x86_64-linux-gnu/liblua5.4.so*" >/dev/null 2>&1 && [ -n "$(ssh_host_exec 4 sh -c "cat /root/.cache/provision/*/provision" | cmp - "$ROOT/provision-static" && echo same)" ]'
expect "h4: the binary sent is kept under its own sha256, the digest the run asked for" \
    test "$(ssh_host_exec 4 ls /root/.cache/provision/)" = "$(sha256sum < "$ROOT/provision-static" | cut -d" " -f1)"
for i in 1 2 3 4; do
    got=$(ssh_host_exec "$i" cat /root/fleet-out/greeting.txt 2>&1)
    expect "h$i: the template beside the recipe, through the include and the plugin" test "$got" = "hello from FLEET"
done
expect "the secret is on the host where the recipe put it, and nowhere in the output" \
    eval '[ "$(ssh_host_exec 2 cat /root/fleet-out/token)" = s3cret-fleet-value ] && ! has "$OUT$ERR" s3cret-fleet-value'
stamp_before=$(ssh_host_exec 1 sh -c 'stat -c %Y /root/.cache/provision/*/provision')

run "$P" app/recipe.lua $H -e token=@token.txt
expect "re-run: a no-op on every host (exit 0, all ok)" \
    eval '[ $RC -eq 0 ] && [ $(printf "%s\n" "$OUT" | grep -cE "^h[1-4] +ok +ok=3 changed=0 failed=0") = 4 ]'
expect "the binary was sent once: the host still has the same file" \
    test "$(ssh_host_exec 1 sh -c 'stat -c %Y /root/.cache/provision/*/provision')" = "$stamp_before"

ssh_host_exec 2 sh -c 'echo drift > /root/fleet-out/greeting.txt'
run "$P" plan app/recipe.lua $H -e token=@token.txt
expect "plan with h2 drifted: exit 3; h2 would change, with its diff; the others ok" \
    eval '[ $RC -eq 3 ] && has "$OUT" "^h2 .*greeting .*would-change" && has "$OUT" "^h2 .*+hello from FLEET" && [ $(printf "%s\n" "$OUT" | grep -cE "^h[134] +ok ") = 3 ] && has "$OUT" "^h2  *pending"'
expect "plan changed nothing on h2" test "$(ssh_host_exec 2 cat /root/fleet-out/greeting.txt)" = drift

run "$P" app/recipe.lua $H -e token=@token.txt --json
expect "--json: every stdout line is an event with its host, and a recap event" \
    eval '[ $RC -eq 0 ] && printf "%s\n" "$OUT" | python3 -c "
import json, sys
evs = [json.loads(l) for l in sys.stdin if l.strip()]
assert all(\"host\" in e for e in evs if e[\"event\"] != \"recap\"), evs
assert {e[\"host\"] for e in evs if e[\"event\"] == \"summary\"} == {\"h1\", \"h2\", \"h3\", \"h4\"}
r = [e for e in evs if e[\"event\"] == \"recap\"][0]
assert [h[\"status\"] for h in r[\"hosts\"]] == [\"ok\", \"changed\", \"ok\", \"ok\"], r
"'

# "local" among the hosts: this machine too, in the folder provision runs in
run "$P" app/recipe.lua --host local,h1 -e token=@token.txt -e who=mixed
expect "--host local,h1: both converge; here, the file is in the current folder" \
    eval '[ $RC -eq 0 ] && has "$OUT" "^local  *changed" && [ "$(cat fleet-out/greeting.txt)" = "hello from MIXED" ] && [ "$(ssh_host_exec 1 cat /root/fleet-out/greeting.txt)" = "hello from MIXED" ]'
run "$P" app/recipe.lua --host local,h1 -e token=@token.txt -e who=fleet
[ $RC -eq 0 ] || fail "--host local,h1: back to who=fleet" "rc=$RC"

# secrets: never in an argv on the host while a step runs, nor in its environment
cat > app/slow.lua <<'R'
recipe { name = "fleet-slow" }
local v = vars { token = secret "fleet-token-0" }
local slept = false
step "slow" { check = function() return slept end, apply = function() exec.run { "sleep", "3" }; slept = true end }
step "token" { fs.file { path = "./fleet-out/token2", content = v.token } }
R
"$P" app/slow.lua --host h3 -e token=@token.txt > slow.out 2>&1 &
pid=$!
sleep 1.5
seen=$(ssh_host_exec 3 sh -c 'cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr "\0" "\n" | grep -c "s3cret-fleet-valu[e]"')
running=$(ssh_host_exec 3 sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " " | grep -c "provision --remote"')
wait $pid; rc=$?
expect "secrets: no argv or environment on the host holds the value while its run goes on (rc=$rc seen=$seen running=$running)" \
    eval '[ $rc -eq 0 ] && [ "$seen" = 0 ] && [ "$running" -ge 1 ]'

# SIGINT on the controller: the host's run stops at a safe point, nothing left running
cat > app/long.lua <<'R'
recipe { name = "fleet-long" }
step "long" { check = function() return false end, apply = function() exec.run { "sleep", "30" } end }
R
"$P" app/long.lua --host h1,h2 > long.out 2>&1 &
pid=$!
sleep 2
kill -INT $pid
t0=$(date +%s); wait $pid; rc=$?; t1=$(date +%s)
sleep 1
left=$(ssh_host_exec 1 sh -c 'ps -o args | grep -c "[p]rovision --remote"')
expect "SIGINT: exit 130 within the grace time, a recap, no remote run left" \
    eval '[ $rc -eq 130 ] && [ $((t1 - t0)) -lt 12 ] && grep -q "^RECAP" long.out && [ "$left" = 0 ]'

# a recipe error: exit 2 before any host is touched
printf 'recipe { name = "bad" }\nstep "x" { fs.file { path = "./fleet-out/bad", nope = 1 } }\n' > app/bad.lua
run "$P" app/bad.lua $H
expect "a recipe error: exit 2, named, no host touched" \
    eval '[ $RC -eq 2 ] && has "$ERR" "bad.lua:2" && ! has "$OUT" RECAP && [ -z "$(ssh_host_exec 1 sh -c "ls /root/fleet-out/bad 2>/dev/null")" ]'

# an unreachable host: the others still run; exit 1; the recap says why
ssh_host_stop 4
run "$P" app/recipe.lua $H -e token=@token.txt
expect "h4 down: exit 1, h4 unreachable with ssh's reason, the others ok" \
    eval '[ $RC -eq 1 ] && has "$OUT" "^h4  *unreachable" && [ $(printf "%s\n" "$OUT" | grep -cE "^h[123] +(ok|changed) ") = 3 ]'

run "$P" plan --teardown app/recipe.lua --host h1,h2,h3 -e token=@token.txt
expect "plan --teardown on the hosts: exit 3, each host pending, its files named, nothing removed" \
    eval '[ $RC -eq 3 ] && [ $(printf "%s\n" "$OUT" | grep -cE "^h[123] +pending ") = 3 ] && has "$OUT" "- ./fleet-out/greeting.txt" \
        && [ -n "$(ssh_host_exec 1 sh -c "ls /root/fleet-out/greeting.txt 2>/dev/null")" ]'
run "$P" teardown app/recipe.lua --host h1,h2,h3 -e token=@token.txt
expect "teardown on the hosts: exit 0, what the recipe made is gone" \
    eval '[ $RC -eq 0 ] && [ -z "$(ssh_host_exec 1 sh -c "ls /root/fleet-out 2>/dev/null")" ] && [ -z "$(ssh_host_exec 3 sh -c "ls /root/fleet-out/greeting.txt 2>/dev/null")" ]'
