#!/bin/bash
# --timeout and SIGINT/SIGTERM stop a run whatever it is doing: a coroutine
# the recipe made while it loaded, a loop while it loads, code in a chunk
# named like provision's own files, and one long C call (the watchdog).
# Each run is under `timeout -s KILL 20`: a hang fails instead of hanging.
. "$ROOT/tests/lib.sh"

# t_run CMD...: run, and $ms it took
t_run() { t0=$(date +%s%N); run timeout -s KILL 20 "$@"; ms=$(( ($(date +%s%N) - t0) / 1000000 )); }
# t_signal SIG CMD...: start CMD, once ./spinning exists send SIG, wait:
# $RC, $ms (from the signal to the exit), $OUT, $ERR
t_signal() {
    sig=$1; shift
    rm -f spinning
    timeout -s KILL 20 "$@" > .sig.out 2> .sig.err &
    pid=$!
    i=0; while [ ! -e spinning ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    t0=$(date +%s%N)
    kill -"$sig" $pid
    wait $pid; RC=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    OUT=$(cat .sig.out); ERR=$(cat .sig.err)
}

# ---- 1. a coroutine made at load time, looping in a step ----
cat > co.lua <<'R'
recipe { name = "co" }
local spin = coroutine.wrap(function() while true do end end)
step "mark" { fs.file { path = "./marked", content = "x\n" } }
step "spin" { check = function() io.open("spinning", "w"):close(); spin(); return true end }
step "after" { fs.file { path = "./after", content = "x\n" } }
R
t_run "$P" co.lua --timeout 1s
expect "coroutine made at load: --timeout stops it, exit 1 (${ms}ms)" eval '[ $RC -eq 1 ] && [ $ms -lt 4000 ]'
expect "coroutine made at load: the step fails as timed out, the next is not run" \
    eval 'has "$OUT" "timed out after 1.0s (--timeout)" && [ -e marked ] && [ ! -e after ]'
rm -rf .provision marked
# without --timeout it has no hook: a SIGTERM is left to the watchdog
t_signal TERM "$P" co.lua
expect "coroutine made at load: SIGTERM stops it, exit 130 (${ms}ms)" \
    eval '[ $RC -eq 130 ] && [ $ms -lt 5000 ] && has "$ERR" "step .spin. is stuck in a call that cannot be interrupted (SIGTERM came 2s ago)"'
rm -rf .provision marked

# ---- 2. a loop at load time: the load has a step's deadline ----
cat > load.lua <<'R'
recipe { name = "load" }
while true do end
R
t_run "$P" load.lua --timeout 1s
expect "loop at load: --timeout stops it, exit 1 (${ms}ms)" eval '[ $RC -eq 1 ] && [ $ms -lt 4000 ]'
expect "loop at load: says so" has "$ERR" "provision: loading load.lua timed out after 1.0s (--timeout)"
t_run "$P" load.lua --timeout 1s --json
expect "loop at load, --json: stdout holds no stray text" eval '[ $RC -eq 1 ] && [ -z "$OUT" ]'

# ---- 3. a chunk named like provision's own files ----
cat > named.lua <<'R'
recipe { name = "named" }
step "mark" { fs.file { path = "./marked", content = "x\n" } }
step "spin" {
  check = function()
    io.open("spinning", "w"):close()
    load("while true do end", "@lua/provision/run.lua")()
  end,
}
step "after" { fs.file { path = "./after", content = "x\n" } }
R
t_run "$P" named.lua --timeout 1s
expect "chunk named lua/provision/run.lua: --timeout stops it, exit 1 (${ms}ms)" \
    eval '[ $RC -eq 1 ] && [ $ms -lt 4000 ] && has "$OUT" "timed out after 1.0s (--timeout)"'
rm -rf .provision marked
t_signal INT "$P" named.lua
expect "chunk named lua/provision/run.lua: one SIGINT stops it, exit 130 (${ms}ms)" eval '[ $RC -eq 130 ] && [ $ms -lt 1500 ]'
expect "chunk named lua/provision/run.lua, SIGINT: reported, the first step recorded, the next not run" \
    eval 'has "$OUT$ERR" "interrupted" && has "$OUT" "failed=1" && grep -rq marked .provision && [ ! -e after ]'
rm -rf .provision marked

# a <close> guard's cleanup (core.guard) is not stopped half way: it runs
# whole although the run timed out long before it ends
cat > guard.lua <<'R'
recipe { name = "guard" }
local core = require "provision._core"
step "spin" {
  check = function()
    local g <close> = core.guard(function()
      local s = 0
      for i = 1, 2e6 do s = s + i end
      io.open("cleaned", "w"):close()
    end)
    while true do end
  end,
}
R
t_run "$P" guard.lua --timeout 1s
expect "core.guard: the cleanup runs to its end after the timeout (${ms}ms)" \
    eval '[ $RC -eq 1 ] && [ $ms -lt 4000 ] && [ -e cleaned ]'

# ---- 4. one long C call: the watchdog ----
cat > stuck.lua <<'R'
recipe { name = "stuck" }
step "mark" { fs.file { path = "./marked", content = "x\n" } }
step "stuck" {
  check = function()
    io.open("spinning", "w"):close()
    return string.find(("a"):rep(40), ("a*"):rep(40) .. "b") ~= nil
  end,
}
R
t_run "$P" stuck.lua --timeout 1s
expect "C call past --timeout: the watchdog stops it 2 s later, exit 1 (${ms}ms)" \
    eval '[ $RC -eq 1 ] && [ $ms -ge 2500 ] && [ $ms -lt 6000 ]'
expect "C call past --timeout: one line says why" \
    has "$ERR" "provision: step 'stuck' is stuck in a call that cannot be interrupted (--timeout 1s passed 2s ago); stopping"
expect "C call past --timeout: what the step before made is recorded" grep -rq marked .provision
t_run "$P" teardown stuck.lua
expect "C call past --timeout: teardown removes what the step before made" eval '[ $RC -eq 0 ] && [ ! -e marked ]'
rm -rf .provision marked

t_signal TERM "$P" stuck.lua
expect "C call, SIGTERM: the watchdog stops it 2 s later, exit 130 (${ms}ms)" \
    eval '[ $RC -eq 130 ] && [ $ms -ge 1900 ] && [ $ms -lt 5000 ]'
expect "C call, SIGTERM: one line says why" \
    has "$ERR" "provision: step 'stuck' is stuck in a call that cannot be interrupted (SIGTERM came 2s ago); stopping"
rm -rf .provision marked

# a main thread that noticed the signal (it started the watchdog thread)
# and then got stuck: code that raised the shield itself, in the same C call
cat > shielded.lua <<'R'
recipe { name = "shielded" }
local core = require "provision._core"
step "stuck" {
  check = function()
    return core.shielded(function()
      io.open("spinning", "w"):close()
      core.sleep(30)   -- polls: sees the signal
      return string.find(("a"):rep(40), ("a*"):rep(40) .. "b") ~= nil
    end)
  end,
}
R
t_signal TERM "$P" shielded.lua
expect "stuck after the signal was seen: the watchdog stops it, exit 130 (${ms}ms)" \
    eval '[ $RC -eq 130 ] && [ $ms -ge 1900 ] && [ $ms -lt 5000 ] && has "$ERR" "step .stuck. is stuck .*(SIGTERM came 2s ago)"'
rm -rf .provision

# ---- a preflight check and a teardown's revert have a step's deadline ----
cat > td.lua <<'R'
recipe { name = "td" }
local v = vars { spin_check = false }
check "pre" { check = function() while v.spin_check do end; return true end }
step "undone" {
  check = function(ctx) return ctx.state.done == true end,
  apply = function(ctx) ctx.state.done = true end,
  revert = function() while true do end end,
}
R
t_run "$P" td.lua -e spin_check=true --timeout 1s
expect "preflight check: --timeout stops it, exit 1 (${ms}ms)" \
    eval '[ $RC -eq 1 ] && [ $ms -lt 4000 ] && has "$OUT" "check pre .*timed out after 1.0s (--timeout)"'
run "$P" td.lua
t_run "$P" teardown td.lua --timeout 1s
expect "teardown: --timeout stops a revert, exit 1 (${ms}ms)" \
    eval '[ $RC -eq 1 ] && [ $ms -lt 4000 ] && has "$OUT" "undone .*timed out after 1.0s (--timeout)"'
rm -rf .provision

# ---- --timeout 0 is refused, not taken as "no limit" ----
printf 'recipe { name = "ok" }\nstep "d" { fs.directory "./d" }\n' > ok.lua
for v in 0 0s; do
    rm -rf d
    t_run "$P" ok.lua --timeout $v
    expect "--timeout $v: refused, exit 2" eval '[ $RC -eq 2 ] && has "$ERR" "timeout" && [ ! -e d ]'
done
exit 0
