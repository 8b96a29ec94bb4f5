#!/bin/bash
# Exit codes (issue 18): what stops a run before any step ran is exit 2 (a
# usage, recipe or state error: nothing changed), never 1 (a step failed):
# a damaged state file or journal, another recipe's state, and another run
# holding the project's lock. --help, `help exit-codes` and the man page
# say so.
. "$ROOT/tests/lib.sh"
export PROVISION_STATE_DIR="$SANDBOX/.state"

cat > r.lua <<'EOF2'
recipe { name = "codes" }
local v = vars { sleep = 0 }
step "slow" {
  check = function() return io.open("done") ~= nil end,
  apply = function()
    if v.sleep > 0 then exec.run { "sleep", tostring(v.sleep) } end
    local f = assert(io.open("done", "w")); f:close()
  end,
}
step "dir" { fs.directory "./made" }
EOF2
run "$P" r.lua
expect "first apply" test "$RC" = 0

cp .state/codes.json good.json
echo '{"version":1,"steps":' > .state/codes.json
for verb in apply plan teardown; do
    run "$P" $verb r.lua
    expect "a damaged state file: $verb exits 2, says so, changes nothing" \
        eval '[ $RC = 2 ] && has "$ERR" "state file .*codes.json is damaged" && [ -d made ] && [ "$(cat .state/codes.json)" = "{\"version\":1,\"steps\":" ]'
done
cp good.json .state/codes.json
printf '{"set":"dir","value":7}\n' > .state/codes.journal
run "$P" r.lua
expect "a damaged journal: exit 2" eval '[ $RC = 2 ] && has "$ERR" "codes.journal is damaged"'
rm .state/codes.journal

mkdir other && cp r.lua other/r.lua
run "$P" other/r.lua
expect "another recipe file's state: exit 2" eval '[ $RC = 2 ] && has "$ERR" "belongs to the recipe"'

rm -rf done made .state
"$P" r.lua > /dev/null 2>&1   # a state to undo: teardown then takes the lock too
rm done
printf '4194304999\n' > .state/lock   # a past holder's pid, longer than any real one
"$P" r.lua -e sleep=3 > first.out 2>&1 &
first=$!
i=0; while [ "$(cat .state/lock)" != "$first" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
expect "the lock file names its holder alone: a past holder's longer pid is cut (written over, not cut to 0 first)" \
    eval '[ "$(cat .state/lock)" = "$first" ] && [ "$(wc -c < .state/lock)" -eq $(( ${#first} + 1 )) ]'
sleep 0.3
run "$P" r.lua
expect "another run holds the lock: exit 2 (no step ran), the holder named" \
    eval '[ $RC = 2 ] && has "$ERR" "another provision run (pid $first) is working on this project" && ! has "$OUT" "FAILED"'
run "$P" teardown r.lua
expect "teardown while another run holds the lock: exit 2, nothing undone" \
    eval '[ $RC = 2 ] && has "$ERR" "another provision run" && [ -z "$OUT" ] && [ -d made ]'
wait $first
expect "the first run was not disturbed" eval '[ $? = 0 ] && [ -e done ] && [ -d made ]'
# a lock held by something else whose file holds no pid that fits: no pid said
printf '4294967297\n' > .state/lock   # (2^32 + 1: an int of 1, were it read as one)
flock .state/lock sleep 3 &
holder=$!
i=0; while flock -n .state/lock true && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
run "$P" r.lua
expect "a held lock whose file's number is no pid: exit 2, held, no pid named" \
    eval '[ $RC = 2 ] && has "$ERR" "another provision run is working on this project" && ! has "$ERR" "pid"'
kill $holder 2>/dev/null; wait $holder 2>/dev/null

run "$P" --help
expect "--help: exit 2 covers state errors and the lock" has "$OUT" "2 usage, recipe or state error, or the lock held by another run"
run "$P" help exit-codes
expect "help exit-codes: the damaged state and the lock are exit 2" \
    eval '[ $RC = 0 ] && has "$OUT" "state file that is damaged" && has "$OUT" "another run holding the" && has "$OUT" "project'"'"'s lock"'
expect "the man page says so in EXIT STATUS" \
    eval 'sed -n "/^# EXIT STATUS/,/^# FILES/p" "$ROOT/docs/provision.1.scd" | tr -s "\n\t" "  " | grep -q "another run holding the project.s lock"'
