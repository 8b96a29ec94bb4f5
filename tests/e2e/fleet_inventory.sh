#!/bin/bash
# End to end, on real sshd hosts (tests/fixtures/sshd): an inventory's
# groups and per-host variables, --limit and the recipe's own hosts,
# --serial stopping after a failed batch (a host whose disk is read-only),
# and a connection killed mid-run (the host's run stops at a safe point,
# the re-run converges).
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/lib_docker.sh"
. "$ROOT/tests/fixtures/sshd/hosts.sh"
docker_require "fleet inventory over ssh"

ssh_hosts_start 3 --libs-of "$P" || exit 1
export PROVISION_SSH="ssh -F $SSH_CONFIG"

mkdir -p r && cd r || exit 1   # the recipes in a folder of their own: all of it travels
cat > hosts.lua <<'R'
return {
  web = { vars = { who = "web" }, hosts = { "h1", h2 = { who = "web-two" } } },
  db = { vars = { who = "db", port = 5432 }, hosts = { "h3" } },
}
R
cat > who.lua <<'R'
recipe { name = "who", hosts = "db" }
local v = vars { who = "nobody", port = 0 }
step "who" { fs.file { path = "./who.txt", content = v.who .. " " .. v.port .. "\n" } }
R
got() { ssh_host_exec "$1" sh -c 'cat /root/who.txt 2>/dev/null || echo none'; }

run "$P" who.lua -i hosts.lua --limit web
expect "--limit web: h1 and h2, each with its own variables; h3 untouched" \
    eval '[ $RC -eq 0 ] && [ "$(got 1)" = "web 0" ] && [ "$(got 2)" = "web-two 0" ] && [ "$(got 3)" = none ]'
run "$P" who.lua -i hosts.lua
expect "no --limit: the recipe's own hosts (db), with the group's variables" \
    eval '[ $RC -eq 0 ] && [ "$(got 3)" = "db 5432" ] && has "$OUT" "who: apply on 1 host"'
run "$P" who.lua -i hosts.lua --limit 'h*' -e who=cli
expect "-e wins over the inventory; a glob picks hosts" \
    eval '[ $RC -eq 0 ] && [ "$(got 1)" = "cli 0" ] && [ "$(got 3)" = "cli 5432" ]'
printf 'return { web = { vars = { port = "eighty" }, hosts = { "h1" } } }\n' > bad-hosts.lua
run "$P" who.lua -i bad-hosts.lua --limit web
expect "an inventory value the recipe's variable cannot take: exit 2, named, before any host" \
    eval '[ $RC -eq 2 ] && has "$ERR" "host h1: variable .port. must be a number" && [ "$(got 1)" = "cli 0" ]'
run "$P" who.lua -i hosts.lua --limit nosuch
expect "--limit matching nothing: exit 2" eval '[ $RC -eq 2 ] && has "$ERR" "no group or host matches .nosuch."'

# --serial 1 with h2's disk read-only: h1 done, h2 failed with the reason, h3 not started
ssh_host_readonly 2 || exit 1
run "$P" who.lua --host h1,h2,h3 --serial 1 -e who=serial
expect "--serial 1: h1 done; h2 (read-only disk) failed, saying so; h3 not started; exit 1" \
    eval '[ $RC -eq 1 ] && [ "$(got 1)" = "serial 0" ] && has "$OUT" "^h2  *failed .*[Rr]ead-only" && has "$OUT" "^h3  *not-run" && [ "$(got 3)" = "cli 5432" ]'

# the connection killed mid-run: h1 reported failed with the reason; its run
# stopped at a safe point (no process left, the state whole); a re-run converges
cat > long.lua <<'R'
recipe { name = "long" }
local done = false
step "first" { fs.file { path = "./long-first.txt", content = "1\n" } }
step "wait" { check = function() return done end, apply = function() exec.run { "sleep", "20" }; done = true end }
step "last" { fs.file { path = "./long-last.txt", content = "3\n" } }
R
"$P" long.lua --host h1 > long.out 2>&1 &
pid=$!
sleep 2
ssh_host_drop 1
wait $pid; rc=$?
sleep 1
left=$(ssh_host_exec 1 sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " " | grep -c "provision [-]-remote"')
expect "connection killed: exit 1, h1 failed, the connection named as the reason, no run left on h1" \
    eval '[ $rc -eq 1 ] && grep -q "^h1  *failed .*connection was lost" long.out && [ "$left" = 0 ] && [ "$(ssh_host_exec 1 cat /root/long-first.txt)" = 1 ]'
run "$P" long.lua --host h1
expect "after the lost connection, the re-run converges" \
    eval '[ $RC -eq 0 ] && [ "$(ssh_host_exec 1 cat /root/long-last.txt)" = 3 ]'

# --chdir: the run starts there (relative paths, .provision/); --max-fail-percent 0
# with one host at a time: after h2 fails, h3 is not started
ssh_host_exec 1 mkdir -p /srv/app
run "$P" who.lua --host h1 --chdir /srv/app -e who=chdir
expect "--chdir: the file and the state are in that folder on the host" \
    eval '[ $RC -eq 0 ] && [ "$(ssh_host_exec 1 cat /srv/app/who.txt)" = "chdir 0" ] && ssh_host_exec 1 test -d /srv/app/.provision'
run "$P" who.lua --host h1,h2,h3 --forks 1 --max-fail-percent 0 -e who=maxfail
expect "--max-fail-percent 0: h1 done, h2 failed, h3 not started; exit 1" \
    eval '[ $RC -eq 1 ] && [ "$(got 1)" = "maxfail 0" ] && has "$OUT" "^h3  *not-run" && [ "$(got 3)" = "cli 5432" ]'
