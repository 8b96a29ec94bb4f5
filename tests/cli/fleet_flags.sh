#!/bin/bash
# The many-hosts flags (--host, -i, --limit, --forks, --serial,
# --max-fail-percent, --chdir): bad values are exit 2 with a clear message,
# before any host is touched (no ssh runs: PROVISION_SSH would say so).
. "$ROOT/tests/lib.sh"

printf 'recipe { name = "f" }\nstep "a" { check = function() return true end }\n' > r.lua
# an ssh that leaves a mark: none of these may get that far
printf '#!/bin/sh\ntouch "%s/ssh-ran"\nexit 255\n' "$SANDBOX" > fake-ssh; chmod +x fake-ssh
export PROVISION_SSH="$SANDBOX/fake-ssh"

bad() { # NAME WANT_IN_ERR ARGS...
    local name=$1 want=$2; shift 2
    run "$P" "$@"
    expect "$name: exit 2, '$want', no ssh run" eval '[ $RC -eq 2 ] && has "$ERR" "$want" && [ ! -e ssh-ran ]'
}
bad "--forks 0" "bad --forks '0'" r.lua --host h --forks 0
bad "--forks x" "bad --forks 'x'" r.lua --host h --forks x
bad "--serial 0" "bad --serial '0'" r.lua --host h --serial 0
bad "--max-fail-percent 101" "bad --max-fail-percent '101'" r.lua --host h --max-fail-percent 101
bad "--host -oProxyCommand" "cannot start with '-'" r.lua --host=-oProxyCommand=x
bad "--host a,,b" "empty host name" r.lua --host a,,b
bad "--limit without -i" "give -i FILE" r.lua --host h --limit web
bad "--chdir without --host" "go with --host or -i" r.lua --chdir /srv
bad "--become without --host" "go with --host or -i" r.lua --become
bad "-i a file that is not there" "-i" r.lua -i nosuch.lua --limit all
printf 'recipe { name = "g" }\nstep "x" { fs.file { nope = 1 } }\n' > r2.lua
bad "a recipe error" "r2.lua:2" r2.lua --host h
run "$P" r.lua --host h
expect "an unreachable host: exit 1, the recap says unreachable" \
    eval '[ $RC -eq 1 ] && has "$OUT" "^h  *unreachable" && [ -e ssh-ran ]'

# a provision-static beside the binary that is not of its build (an older
# one would read the run's flags otherwise): refused before any host
mkdir -p stale && cp "$P" stale/provision && cp /bin/true stale/provision-static && rm -f ssh-ran
run stale/provision plan --teardown r.lua --host h
expect "a provision-static of another build: exit 2, named, no ssh started" \
    eval '[ $RC -eq 2 ] && has "$ERR" "stale/provision-static is from another build than this provision" && [ ! -e ssh-ran ]'
rm -f ssh-ran
PROVISION_SHIP= run stale/provision plan --teardown r.lua --host h
expect "... PROVISION_SHIP set to nothing is unset: refused the same" \
    eval '[ $RC -eq 2 ] && has "$ERR" "stale/provision-static is from another build than this provision" && [ ! -e ssh-ran ]'
mkfifo ship.fifo
PROVISION_SHIP=$SANDBOX/ship.fifo run stale/provision plan --teardown r.lua --host h
expect "PROVISION_SHIP that cannot be read (a FIFO): exit 2, the path and the reason said once, no ssh started" \
    eval '[ $RC -eq 2 ] && has "$ERR" "ship.fifo: not a regular file" && [ "$(printf "%s" "$ERR" | grep -o "ship.fifo" | wc -l)" -eq 1 ] && [ ! -e ssh-ran ]'
cp "$P" stale/provision-static
run stale/provision r.lua --host h
expect "... one of this build is taken (the host is then tried: unreachable here)" \
    eval '[ $RC -eq 1 ] && has "$OUT" "^h  *unreachable" && [ -e ssh-ran ]'
