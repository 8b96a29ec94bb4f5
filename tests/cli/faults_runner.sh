#!/bin/bash
# Faults of the run itself, through real recipes and the CLI: two runs at once
# on one project (the second fails clearly or, with --wait-lock, waits; plan
# is not blocked; a killed run leaves no stale lock), a custom step that
# raises or returns nil, msg, a check that raises, and SIGINT during a custom
# step. Each: the contract's exit code, a clear reason, nothing half-done in
# the state, and a re-run that converges.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/fixtures/faults/lib.sh"

cat > r.lua <<'R'
recipe { name = "faults-runner" }
local core = require "provision._core"
local v = vars { secs = 1.5, fail = "", dir = "./proj" }
step "project directory" { fs.directory(v.dir) }
step "slow" {
  describe = "a slow marker",
  check = function() return fs.exists(v.dir .. "/slow.done") end,
  apply = function()
    fs.write(v.dir .. "/slow.started", tostring(core.getpid()), "0644")
    core.sleep(v.secs)
    if core.interrupted() then return nil, "interrupted while waiting" end
    fs.write(v.dir .. "/slow.done", "done", "0644")
  end,
}
step "custom" {
  describe = "a marker from a custom step",
  check = function()
    if v.fail == "check" then local t = nil; return t.field end
    return fs.exists(v.dir .. "/marker")
  end,
  apply = function()
    if v.fail == "raise" then error("the marker service refused: code 42") end
    if v.fail == "return" then return nil, "the marker service is read-only" end
    fs.write(v.dir .. "/marker", "ok", "0644")
  end,
}
step "after" { fs.directory(v.dir .. "/after") }
R
fresh() { rm -rf proj .provision; }
wait_started() {
    i=0; while [ ! -e proj/slow.started ]; do i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.05; done
}

# ---- two runs at once ----
fresh
"$P" r.lua > a.out 2>&1 &
a=$!
wait_started
run "$P" r.lua
expect "two runs: the second exits 2 at once (nothing changed)" test "$RC" = 2
expect "two runs: it names the other run's pid and --wait-lock" \
    eval 'has "$ERR" "another provision run (pid $a) is working on this project" && has "$ERR" "wait-lock"'
expect "two runs: the second changed nothing" eval '[ ! -e proj/after ] && kill -0 $a'
run "$P" plan r.lua
expect "two runs: plan is not blocked by the lock (exit 3)" eval '[ $RC = 3 ] && has "$OUT" "would-change"'
run "$P" r.lua --wait-lock
expect "two runs: --wait-lock waits for the first, then finds all done (exit 0)" \
    eval '[ $RC = 0 ] && has "$OUT" "changed=0 failed=0" && [ -d proj/after ]'
wait $a; rc=$?
expect "two runs: the first one completed (exit 0)" eval '[ $rc = 0 ] && grep -q "changed=4 failed=0" a.out'

# ---- a run killed outright leaves no stale lock ----
fresh
"$P" r.lua -e secs=5 > a.out 2>&1 &
a=$!
wait_started
kill -KILL $a; wait $a 2>/dev/null
expect "killed run: the state file is whole" state_valid
t0=$(date +%s%N)
run "$P" r.lua -e secs=0
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "killed run: the next run takes the lock at once and converges (${ms}ms)" \
    eval '[ $RC = 0 ] && has "$OUT" "failed=0" && [ -d proj/after ] && [ $ms -lt 2000 ]'

# ---- SIGINT during a custom step ----
fresh
"$P" r.lua -e secs=5 > a.out 2>&1 &
a=$!
wait_started
t0=$(date +%s%N)
kill -INT $a; wait $a; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect "SIGINT in a custom step: exit 130, promptly (${ms}ms)" eval '[ $rc = 130 ] && [ $ms -lt 2000 ]'
expect "SIGINT in a custom step: says interrupted, names the step" \
    eval 'grep -q "interrupted" a.out && grep -q "step .slow. failed" a.out'
expect "SIGINT in a custom step: later steps not run, state whole" \
    eval '[ ! -e proj/slow.done ] && [ ! -e proj/after ] && state_valid && [ "$(state_created "project directory")" = 1 ]'
run "$P" r.lua -e secs=0
expect "SIGINT in a custom step: the re-run converges" eval '[ $RC = 0 ] && has "$OUT" "failed=0" && [ -d proj/after ]'

# ---- a custom step that raises ----
fresh
run "$P" r.lua -e secs=0 -e fail=raise
expect "custom step raises: exit 1" test "$RC" = 1
expect "custom step raises: the reason is its message, with the recipe line" \
    eval 'has "$OUT$ERR" "step .custom. failed (r.lua:[0-9]*)" && has "$OUT$ERR" "r.lua:[0-9]*: the marker service refused: code 42"'
expect "custom step raises: no Lua traceback shown" eval '! has "$OUT$ERR" "stack traceback"'
expect "custom step raises: steps before it are kept, after it not run" \
    eval 'state_valid && [ "$(state_created "project directory")" = 1 ] && [ -e proj/slow.done ] && [ ! -e proj/marker ] && [ ! -e proj/after ]'
run "$P" r.lua -e secs=0 -e fail=raise --json
expect "custom step raises, --json: only JSON lines on stdout, the failed event carries the reason" \
    eval '[ $RC = 1 ] && printf "%s\n" "$OUT" | python3 -c "
import json, sys
ev = [json.loads(l) for l in sys.stdin if l.strip()]
f = [e for e in ev if e.get(\"status\") == \"failed\"]
assert f and f[0][\"name\"] == \"custom\" and \"code 42\" in f[0][\"detail\"], ev
assert ev[-1][\"event\"] == \"summary\" and ev[-1][\"failed\"] == 1
"'
run "$P" r.lua -e secs=0 -e fail=return
expect "custom step returns nil, msg: exit 1 with that message" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "the marker service is read-only" && [ ! -e proj/after ]'
run "$P" r.lua -e secs=0 -e fail=check
expect "custom check raises: exit 1 with the error and its line" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "r.lua:[0-9]*: attempt to index a nil value" && [ ! -e proj/after ]'
run "$P" plan r.lua -e secs=0 -e fail=check
expect "custom check raises: plan fails too (exit 1), changing nothing" \
    eval '[ $RC = 1 ] && [ ! -e proj/marker ] && [ ! -e proj/after ]'
run "$P" r.lua -e secs=0
expect "custom step fixed: the re-run converges" \
    eval '[ $RC = 0 ] && has "$OUT" "failed=0" && [ -e proj/marker ] && [ -d proj/after ] && state_valid'
run "$P" r.lua -e secs=0
expect "custom step fixed: the next run is a no-op" eval '[ $RC = 0 ] && has "$OUT" "changed=0 failed=0"'
run "$P" teardown r.lua
expect "teardown after the faults: removes what the runs created" eval '[ $RC = 0 ] && [ ! -e proj/after ]'
