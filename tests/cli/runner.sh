#!/bin/bash
# The runner: apply, no-op re-run, plan, teardown, exit codes, --only/--from,
# failures, preflight checks, the lock, --json, secrets, include, plugins.
. "$ROOT/tests/lib.sh"

# A recipe of custom steps that make marker files, so the tests see exactly
# what ran. fail_at=NAME makes that step raise.
cat > r.lua <<'R'
recipe { name = "runner-test" }
local v = vars { dir = "./out", fail_at = "", sleep = 0, pw = secret "hunter2-secret", bad_check = false }
check "always fine" { check = function() return true end }
check "configurable" { check = function() return not v.bad_check, "the preflight says no" end }
local function marker(name)
  local path = v.dir .. "/" .. name
  return {
    describe = "marker " .. name,
    check = function(ctx) return io.open(path) ~= nil end,
    apply = function(ctx)
      if v.sleep > 0 then exec.run { "sleep", tostring(v.sleep) } end
      if v.fail_at == name then error("step " .. name .. " broke on purpose") end
      os.execute("mkdir -p " .. v.dir)
      local f = assert(io.open(path, "w")); f:write(name); f:close()
      ctx:created { type = "file", path = path }
      ctx:log("wrote " .. path .. " with " .. tostring(v.pw))
    end,
    revert = function(ctx)
      for _, c in ipairs(ctx.state.created or {}) do os.remove(c.path) end
      local f = io.open(v.dir .. "/reverted", "a"); f:write(name, "\n"); f:close()
    end,
  }
end
step "one" (marker "one")
step "two" (marker "two")
step "three" (marker "three")
R

run "$P" plan r.lua
expect "plan on a fresh machine: exit 3" eval '[ $RC -eq 3 ]'
expect "plan changes nothing" eval '[ ! -e out ] && [ ! -e .provision ]'
expect "plan lists would-change" has "$OUT" "would-change"

run "$P" r.lua
expect "apply: exit 0" eval '[ $RC -eq 0 ] && [ -f out/one ] && [ -f out/three ]'
expect "apply: summary" has "$OUT" "ok=0 changed=3 failed=0"
run "$P" r.lua
expect "re-run is a no-op" eval '[ $RC -eq 0 ] && has "$OUT" "ok=3 changed=0 failed=0"'
run "$P" plan r.lua
expect "plan after apply: exit 0" eval '[ $RC -eq 0 ]'

run "$P" teardown r.lua
expect "teardown: exit 0" eval '[ $RC -eq 0 ] && [ ! -e out/one ] && [ ! -e out/two ]'
expect "teardown: newest first" eval '[ "$(cat out/reverted | tr "\n" " ")" = "three two one " ]'
rm -rf out
run "$P" teardown r.lua
expect "teardown again: nothing recorded" eval '[ $RC -eq 0 ] && [ ! -e out ]'

# undo "step" in a teardown block: reverts what that step recorded, exactly
# as the teardown without a block would: not a file that was there before
cat > u.lua <<'R'
recipe { name = "undo-test" }
include "r.lua"
teardown { undo "one", undo "two" }
R
mkdir out && printf mine > out/two
run "$P" u.lua
expect "undo: apply over a file that was there (two: ok, not created)" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=2 failed=0"'
run "$P" teardown u.lua
expect "undo: teardown reverts step one, keeps the file step two did not create" \
    eval '[ $RC -eq 0 ] && [ ! -e out/one ] && [ "$(cat out/two)" = mine ] && [ "$(cat out/reverted)" = one ]'
expect "undo: the step lines say what was undone" \
    eval 'has "$OUT" "undo step .one. *changed.*step .one.: reverted marker one" && has "$OUT" "undo step .two. *ok"'
expect "undo: a step the block does not undo stays (three)" test -e out/three
rm -rf out
run "$P" u.lua
run "$P" teardown u.lua
expect "undo: what the steps created is removed" eval '[ $RC -eq 0 ] && [ ! -e out/one ] && [ ! -e out/two ] && [ "$(tr "\n" " " < out/reverted)" = "one two " ]'
run "$P" teardown u.lua
expect "undo: teardown again: nothing to do" eval '[ $RC -eq 0 ] && has "$OUT" "ok=2 changed=0 failed=0"'
rm -rf out

# undo "step" also reverts what the step's dropped or replaced resources
# made, as the teardown without a block does (applied since the edit or not)
mkdir w
cat > ur.lua <<'R'
recipe { name = "undo-replaced" }
step "conf" { fs.file { path = "w/a", content = "a\n" }, fs.file { path = "w/b", content = "b\n" } }
teardown { undo "conf" }
R
run "$P" ur.lua
sed -i 's/fs.file { path = "w.a", content = "a.n" }, //' ur.lua
run "$P" ur.lua
sed -i 's/fs.file { path = "w.b", content = "b.n" }/fs.symlink { path = "w\/l", target = "b" }/' ur.lua
run "$P" teardown ur.lua
expect "undo: what the step's replaced resources made is reverted too" \
    eval '[ $RC -eq 0 ] && [ -z "$(ls -A w)" ] && has "$OUT" "replaced in its step since" && [ ! -e .provision/undo-replaced.json ]'
run "$P" teardown ur.lua
expect "undo: after them, teardown again: nothing to do" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0 failed=0"'
rm -rf w
# ... and says what it left: a custom step's work, replaced since
mkdir w
cat > ul.lua <<'R'
recipe { name = "undo-left" }
step "x" { check = function() return io.open("w/c") ~= nil end, revert = function() os.remove("w/c") end,
           apply = function(ctx) io.open("w/c", "w"):close(); ctx:created { path = "w/c" } end }
teardown { undo "x" }
R
run "$P" ul.lua
printf 'recipe { name = "undo-left" }\nstep "x" { fs.file { path = "w/f", content = "f" } }\nteardown { undo "x" }\n' > ul.lua
run "$P" ul.lua
run "$P" teardown ul.lua
expect "undo: what it left of a replaced custom step is said" \
    eval '[ $RC -eq 0 ] && [ -e w/c ] && [ ! -e w/f ] && has "$OUT" "left what it made (custom): replaced in its step since"'
rm -rf w

# a teardown block that does not undo the step: what its dropped or
# replaced resources recorded is done with too (the state file stayed)
mkdir w
cat > ub.lua <<'R'
recipe { name = "block-replaced" }
step "conf" { fs.file { path = "w/a", content = "a\n" }, fs.file { path = "w/b", content = "b\n" } }
teardown { fs.absent "w" }
R
run "$P" ub.lua
sed -i 's/, fs.file { path = "w.b", content = "b.n" }//' ub.lua
run "$P" ub.lua
run "$P" teardown ub.lua
expect "teardown block: nothing is left in the state after it" \
    eval '[ $RC -eq 0 ] && [ ! -e w ] && [ ! -e .provision/block-replaced.json ]'

# a teardown block, and a step removed from the recipe since it was applied:
# the block cannot name it, and it is undone after the block all the same
# (its record was kept for ever and what it made was left)
mkdir w
cat > uo.lua <<'R'
recipe { name = "block-orphan" }
step "gone" { fs.file { path = "w/gone", content = "g\n" } }
step "kept" { fs.file { path = "w/kept", content = "k\n" } }
teardown { fs.absent "w/kept" }
R
run "$P" uo.lua
sed -i '/step "gone"/d' uo.lua
run "$P" uo.lua
printf 'mine\n' > w/other
run "$P" teardown uo.lua
expect "teardown block: then the removed step's file is removed, as the teardown without a block does" \
    eval '[ $RC -eq 0 ] && [ ! -e w/gone ] && [ ! -e w/kept ] && [ "$(cat w/other)" = mine ] && [ ! -e .provision/block-orphan.json ]'
expect "teardown block: the removed step's line says why it was undone" \
    has "$OUT" "gone .*changed.*reverted what it made (the step is no longer in the recipe)"
run "$P" teardown uo.lua
expect "teardown block: again, nothing to do" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=0 failed=0"'
rm -rf w

# a failing step: exit 1, named, with the recipe position and the reason
run "$P" r.lua -e fail_at=two
expect "failing step: exit 1" eval '[ $RC -eq 1 ]'
expect "failing step: names the step and reason" eval 'has "$ERR" "step .two. failed (r.lua:" && has "$OUT" "broke on purpose"'
expect "failing step: the error block on stderr, none of it on stdout (text mode)" eval 'has "$ERR" "^  reason: " && ! has "$OUT" "^error: " && ! has "$OUT" "^  resource: "'
expect "failing step: earlier steps done, later not" eval '[ -f out/one ] && [ ! -e out/two ] && [ ! -e out/three ]'
expect "failing step: the summary counts the step not run" eval 'has "$OUT" "ok=0 changed=1 failed=1 not-run=1"'
run "$P" r.lua
expect "re-run after failure converges" eval '[ $RC -eq 0 ] && has "$OUT" "ok=1 changed=2"'
rm -rf out .provision

# a teardown that fails at one step counts the ones it did not reach
cat > tf.lua <<'R'
recipe { name = "teardown-fails" }
local function m(n, bad)
  return { check = function() return io.open(n) ~= nil end,
    apply = function(ctx) io.open(n, "w"):close(); ctx:created { path = n } end,
    revert = function(ctx) if bad then error("cannot undo " .. n) end; os.remove(n) end }
end
step "one" (m "tf-one")
step "two" (m "tf-two")
step "three" (m("tf-three", true))
R
run "$P" tf.lua
run "$P" teardown tf.lua --json
expect "failing teardown: the summary counts the steps not run" \
    eval '[ $RC -eq 1 ] && [ -e tf-one ] && has "$OUT" "\"failed\":1,\"skipped\":0,\"not-run\":2"'
rm -f tf-one tf-two tf-three

# a failing preflight check stops the run before anything changes
run "$P" r.lua -e bad_check=true
expect "preflight failure: exit 1, nothing changed" eval '[ $RC -eq 1 ] && [ ! -e out ] && has "$OUT" "the preflight says no"'
cat > checks.lua <<'R'
recipe { name = "checks" }
check "memory" { sys.memory { min = "100TiB" } }
check "fine" { check = function() return true end }
check "command" { sys.command { name = "no-such-command-xyz" } }
step "a" { fs.file { path = "checks-a", content = "a" } }
step "b" { fs.file { path = "checks-b", content = "b" } }
R
run "$P" checks.lua --json
expect "preflight: every check runs, each failure is named (one run, not one per fix)" \
    eval '[ $RC -eq 1 ] && has "$OUT" "\"name\":\"memory\",\"status\":\"failed\"" && has "$OUT" "\"name\":\"fine\",\"status\":\"ok\"" && has "$OUT" "\"name\":\"command\",\"status\":\"failed\""'
expect "preflight: nothing changed, the summary says 2 failed, 2 not run" \
    eval '[ ! -e checks-a ] && [ ! -e checks-b ] && has "$OUT" "\"failed\":2,\"skipped\":0,\"not-run\":2"'

# --only and --from
run "$P" r.lua --only two
expect "--only runs one step" eval '[ $RC -eq 0 ] && [ -f out/two ] && [ ! -e out/one ] && [ ! -e out/three ]'
run "$P" r.lua --from three
expect "--from resumes at a step" eval '[ $RC -eq 0 ] && [ -f out/three ] && [ ! -e out/one ]'
# ... and in teardown, choose what to undo (it undid every step)
run "$P" teardown r.lua --only two
expect "teardown --only undoes that step alone" \
    eval '[ $RC -eq 0 ] && [ ! -e out/two ] && [ -f out/three ] && has "$OUT" "changed=1 failed=0 skipped=2"'
run "$P" r.lua
run "$P" teardown r.lua --from two --json
expect "teardown --from undoes that step and the ones after it" \
    eval '[ $RC -eq 0 ] && [ -f out/one ] && [ ! -e out/two ] && [ ! -e out/three ] && has "$OUT" "\"name\":\"one\",\"kind\":\"custom\",\"status\":\"skipped\""'
run "$P" teardown u.lua --only one
expect "teardown --only with a teardown block: exit 2, nothing undone" eval '[ $RC -eq 2 ] && [ -f out/one ] && has "$ERR" "teardown block runs whole"'
rm -rf out .provision

# apply that does not converge fails
cat > liar.lua <<'R'
recipe { name = "liar" }
step "never done" { check = function() return false, "still missing" end, apply = function() end }
R
run "$P" liar.lua
expect "apply that leaves its check unsatisfied fails" eval '[ $RC -eq 1 ] && has "$OUT" "still not in the desired state after apply"'

# --json: only JSON on stdout, the contract's shapes
run "$P" r.lua --json -v
expect "--json: every stdout line is an event" eval '[ $RC -eq 0 ] && ! printf "%s\n" "$OUT" | grep -qv "^{\"event\":"'
expect "--json: start, step, summary" eval 'has "$OUT" "{\"event\":\"start\",\"recipe\":\"runner-test\",\"steps\":3" && has "$OUT" "{\"event\":\"step\",\"index\":1,\"name\":\"one\",\"kind\":\"custom\",\"status\":\"changed\",\"ms\":" && has "$OUT" "{\"event\":\"summary\",\"ok\":0,\"changed\":3,"'

expect "--json: no secret" eval '! has "$OUT$ERR" "hunter2-secret"'
if python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <<< "$OUT"; then pass "--json: valid JSON"; else fail "--json: valid JSON" "$OUT"; fi
# print() in a custom step, io.write, and a child process writing to its
# stdout do not break the event stream: they land on stderr
cat > chatty.lua <<'R'
recipe { name = "chatty" }
local done = false
step "talks" { check = function() print("from-print"); io.write("from-io-write\n"); return done end,
               apply = function() os.execute("echo from-child"); done = true end }
step "runs" { exec.command { argv = { "sh", "-c", "echo from-command" } } }
R
run "$P" chatty.lua --json -v
expect "--json: stdout holds only events, whatever a step prints" eval '! printf "%s\n" "$OUT" | grep -qv "^{\"event\":" && has "$OUT" "\"event\":\"summary\""'
expect "--json: what steps print goes to stderr" eval 'has "$ERR" from-print && has "$ERR" from-io-write && has "$ERR" from-child'

rm -rf out .provision
run "$P" r.lua -v
expect "-v shows the log, secrets masked" eval 'has "$OUT" "wrote ./out/one with \*\*\*\*\*\*\*\*" && ! has "$OUT" "hunter2"'
expect "state file holds no secret" eval '! grep -rq hunter2 .provision'
run "$P" r.lua -q
expect "-q: just the summary" eval '[ "$(printf "%s\n" "$OUT" | wc -l)" -eq 1 ]'
rm -rf out .provision

# the lock: a second run on the same project fails clearly, or waits
"$P" r.lua -e sleep=2 > first.out 2>&1 &
first=$!
sleep 0.7
run "$P" r.lua
expect "second concurrent run fails clearly (exit 2: nothing changed)" eval '[ $RC -eq 2 ] && has "$ERR" "another provision run (pid $first) is working on this project"'
run "$P" r.lua --wait-lock
wait $first
expect "--wait-lock waits for the first run" eval '[ $RC -eq 0 ] && has "$OUT" "ok=3 changed=0"'
rm -rf out .provision

# SIGINT mid-step: exit 130, state kept, re-run completes
"$P" r.lua -e sleep=3 > int.out 2>&1 &
pid=$!
sleep 1
kill -INT $pid
wait $pid; rc=$?
expect "interrupted run exits 130" eval '[ $rc -eq 130 ]'
run "$P" r.lua
expect "re-run after interrupt completes" eval '[ $RC -eq 0 ] && [ -f out/three ]'
rm -rf out .provision

# include, insert before/after, replace, remove
mkdir -p base
cp r.lua base/base.lua
cat > custom.lua <<'R'
recipe { name = "custom" }
include("base/base.lua", { dir = "./custom-out" })
local v = vars { extra = "x" }
step "zero" { before = "one", check = function() return io.open("./custom-out/zero") ~= nil end,
  apply = function() os.execute("mkdir -p custom-out && touch custom-out/zero") end }
step "two and a half" { after = "two", check = function() return true end }
replace_step "three" { check = function() return true end }
remove_step "one"
R
run "$P" list custom.lua
expect "include: steps in order" eval '[ $RC -eq 0 ] && [ "$(printf "%s\n" "$OUT" | grep -E "^ +[0-9]+\." | sed -E "s/^ +[0-9]+\.  //; s/  \(.*//" | tr "\n" ",")" = "zero,two,two and a half,three," ]'
run "$P" custom.lua
expect "include: var default overridden" eval '[ $RC -eq 0 ] && [ -f custom-out/two ] && [ -f custom-out/zero ] && [ ! -e custom-out/one ] && [ ! -e custom-out/three ]'
sed 's/{ dir = /{ dri = "typo", dir = /' custom.lua > typo.lua
rm -rf custom-out
run "$P" typo.lua
expect "include: an override the included recipe does not declare is exit 2, named, nothing done" \
    eval '[ $RC -eq 2 ] && has "$ERR" "typo.lua:2: include: base/base.lua declares no variable .dri." && has "$ERR" "variables: bad_check, dir," && [ ! -e custom-out ]'

# plugins: a Lua module and a C module from the recipe's modules/ folder,
# and from PROVISION_PATH
mkdir -p plug/modules other
cat > plug/modules/shout.lua <<'R'
return { up = function(s) return s:upper() end }
R
cc -shared -fPIC $(pkg-config --cflags lua5.4) -o other/greet.so "$ROOT/tests/cli/plugin/greet.c"
cat > plug/p.lua <<'R'
recipe { name = "plugins" }
local shout = require "shout"
local greet = require "greet"
step "use them" { describe = shout.up(greet.hello("world")), check = function() return true end }
R
PROVISION_PATH="$SANDBOX/other" run "$P" plug/p.lua
expect "plugins: Lua and C modules load" eval '[ $RC -eq 0 ] && has "$OUT" "HELLO, WORLD"'
printf 'not an object file' > other/greet.so
PROVISION_PATH="$SANDBOX/other" run "$P" plug/p.lua
expect "plugins: a broken C plugin is exit 2 with name and reason" eval '[ $RC -eq 2 ] && has "$ERR" "greet" && has "$ERR" "file too short\|invalid ELF\|not an ELF"'

# --timeout: a step that runs too long fails (exit 1), in C waits and in Lua loops
cat > slow.lua <<'R'
recipe { name = "slow" }
step "waits" { check = function() return false end, apply = function() exec.run { "sleep", "5" } end }
step "spins" { check = function() return false end, apply = function() while true do end end }
R
start=$(date +%s)
run "$P" slow.lua --timeout 1s
expect "--timeout stops a waiting step" eval '[ $RC -eq 1 ] && has "$OUT" "timed out after 1.0s" && [ $(( $(date +%s) - start )) -lt 4 ]'
run "$P" slow.lua --timeout 500ms --from spins
expect "--timeout stops a busy Lua step" eval '[ $RC -eq 1 ] && has "$ERR" "step .spins. failed" && has "$OUT" "timed out"'

# a custom step raising nil or a table still gets a readable reason
cat > odd.lua <<'R'
recipe { name = "odd" }
step "nil" { check = function() return false end, apply = function() error(nil) end }
R
run "$P" odd.lua
expect "error(nil) has a readable reason" eval '[ $RC -eq 1 ] && has "$OUT" "raised an error without a message"'
sed -i 's/error(nil)/error({})/' odd.lua
run "$P" odd.lua
expect "error({}) has a readable reason" eval '[ $RC -eq 1 ] && has "$OUT" "raised a table instead of a message"'

# a command with no creates/unless guard always runs; its exit status decides
# (the check after apply cannot turn true, so it is not asked)
cat > unguarded.lua <<'R'
recipe { name = "unguarded" }
step "a" { exec.command { argv = { "touch", "a.txt" } } }
step "b" { exec.command { argv = { "sh", "-c", "echo run >> b.txt" } } }
step "c" { exec.command { argv = { "touch", "c.txt" }, creates = "never-made" } }
R
run "$P" unguarded.lua
expect "unguarded commands run and are changed; the next steps run" \
    eval '[ -f a.txt ] && [ "$(cat b.txt)" = run ] && [ -f c.txt ] && has "$OUT" "changed=2"'
expect "a guard the command does not satisfy still fails the step" \
    eval '[ $RC -eq 1 ] && has "$OUT" "still not in the desired state after apply" && has "$ERR" never-made'
sed -i '/step "c"/d' unguarded.lua
run "$P" unguarded.lua
expect "unguarded commands run again on every apply" eval '[ $RC -eq 0 ] && [ "$(cat b.txt)" = "$(printf "run\nrun")" ]'
cat > unguarded-fail.lua <<'R'
recipe { name = "unguarded-fail" }
step "f" { exec.command { argv = { "sh", "-c", "exit 3" } } }
R
run "$P" unguarded-fail.lua
expect "an unguarded command that fails fails its step with its status" eval '[ $RC -eq 1 ] && has "$OUT" "exit 3\|exited 3\|status 3"'

# a teardown with nothing recorded (and no teardown block) writes nothing,
# not even the state folder
cat > nothing.lua <<'R'
recipe { name = "nothing-yet" }
step "a" { fs.file { path = "nothing-a", content = "a" } }
R
run "$P" teardown nothing.lua --state-dir never-made
expect "teardown of a recipe never applied: ok, nothing recorded, no state folder made" \
    eval '[ $RC -eq 0 ] && has "$OUT" "nothing recorded" && [ ! -e never-made ]'
