#!/bin/bash
# on_change (issue 18; Ansible's handlers, Chef's notifies): a step with
# on_change = { "a", "b" } runs only in a run where one of those steps
# changed (plan says it would, and why); otherwise it is skipped, saying
# what it waits for. A change whose watcher did not get to run (the run
# failed or stopped before it) runs it next time. Names that are not
# steps, the step itself, a step after it, or on_change on a check: exit 2.
. "$ROOT/tests/lib.sh"
export PROVISION_STATE_DIR="$SANDBOX/.state" NO_COLOR=1

cat > oc.lua <<'EOF'
recipe { name = "on-change" }
local v = vars { text = "a", cert = "c", fail_between = false }
step "config" { fs.file { path = "out/conf", content = v.text } }
step "certs" { fs.file { path = "out/cert", content = v.cert } }
if v.fail_between then
  step "breaks" { check = function() return false, "will fail" end, apply = function() return nil, "broken on purpose" end }
end
step "reload" { on_change = { "config", "certs" }, exec.command { "sh", "-c", "echo reload >> out/reloads" } }
step "after" { fs.file { path = "out/after", content = "x" } }
EOF
mkdir out
reloads() { [ -f out/reloads ] && wc -l < out/reloads || echo 0; }

run "$P" oc.lua
expect "first apply: config changed, so reload runs (once)" \
    eval '[ $RC = 0 ] && [ "$(reloads)" = 1 ] && has "$OUT" "reload .*changed.*on change: '"'"'config'"'"' changed"'
run "$P" oc.lua
expect "no-op: reload skipped, saying what it waits for" \
    eval '[ $RC = 0 ] && [ "$(reloads)" = 1 ] && has "$OUT" "reload .*skipped.*runs when config or certs changes; none did" && has "$OUT" "changed=0"'
run "$P" plan oc.lua
expect "plan of a no-op: reload skipped, exit 0" eval '[ $RC = 0 ] && has "$OUT" "reload .*skipped"'
run "$P" plan oc.lua -e cert=d
expect "plan after a cert change: reload would run, and why (exit 3)" \
    eval '[ $RC = 3 ] && has "$OUT" "reload .*would-change.*on change: '"'"'certs'"'"' would change" && [ "$(reloads)" = 1 ]'
run "$P" oc.lua -e cert=d
expect "apply after a cert change: reload runs" eval '[ $RC = 0 ] && [ "$(reloads)" = 2 ]'
run "$P" oc.lua -e cert=d --skip reload
expect "--skip reload: skipped as asked" eval '[ $RC = 0 ] && [ "$(reloads)" = 2 ]'

# a run that fails between the change and its watcher: the next run still reloads
run "$P" oc.lua -e cert=e -e fail_between=true
expect "a failure after certs changed: reload not reached" eval '[ $RC = 1 ] && [ "$(reloads)" = 2 ]'
run "$P" plan oc.lua -e cert=e
expect "plan: reload would run for the change the failed run made" \
    eval '[ $RC = 3 ] && has "$OUT" "on change: a change an earlier run made before it stopped"'
run "$P" oc.lua -e cert=e
expect "the next run: nothing changes, yet reload runs for that change" \
    eval '[ $RC = 0 ] && [ "$(reloads)" = 3 ] && has "$OUT" "on change: a change an earlier run made"'
run "$P" oc.lua -e cert=e
expect "... once: then it is skipped again" eval '[ $RC = 0 ] && [ "$(reloads)" = 3 ] && has "$OUT" "reload .*skipped"'

# a watcher that fails keeps its change pending
cat > of.lua <<'EOF'
recipe { name = "on-change-fail" }
local v = vars { text = "a", ok = false }
step "config" { fs.file { path = "out/conf2", content = v.text } }
step "reload" { on_change = "config", exec.command { "sh", "-c", "echo r >> out/r2; " .. (v.ok and "true" or "false") } }
EOF
run "$P" of.lua
expect "the watcher fails" eval '[ $RC = 1 ] && [ "$(wc -l < out/r2)" = 1 ]'
run "$P" of.lua -e ok=true
expect "... and runs again next time, though config is as it was" eval '[ $RC = 0 ] && [ "$(wc -l < out/r2)" = 2 ]'
run "$P" of.lua -e ok=true
expect "... and is done then" eval '[ $RC = 0 ] && [ "$(wc -l < out/r2)" = 2 ]'
run "$P" teardown of.lua
expect "teardown: exit 0, the file goes" eval '[ $RC = 0 ] && [ ! -e out/conf2 ]'

# refused at load time, exit 2, file:line
refused() {
    n=$1 want=$2
    run "$P" plan bad.lua
    if [ "$RC" = 2 ] && [ "$ERR" = "$want" ]; then pass "$n"; else fail "$n" "rc=$RC want [$want] got [$ERR]"; fi
}
printf 'recipe { name = "b" }\nstep "a" { fs.file { path = "out/a", content = "a" } }\nstep "r" { on_change = "nosuch", fs.file { path = "out/r", content = "r" } }\n' > bad.lua
refused "on_change naming no step" "provision: bad.lua:3: step 'r': on_change: no step named 'nosuch' (steps: a, r)"
printf 'recipe { name = "b" }\nstep "r" { on_change = "a", fs.file { path = "out/r", content = "r" } }\nstep "a" { fs.file { path = "out/a", content = "a" } }\n' > bad.lua
refused "on_change naming a later step" \
    "provision: bad.lua:2: step 'r': on_change names 'a', which runs after it: a step that runs on a change goes after the steps it watches"
printf 'recipe { name = "b" }\nstep "r" { on_change = "r", fs.file { path = "out/r", content = "r" } }\n' > bad.lua
refused "on_change naming itself" "provision: bad.lua:2: step 'r': on_change names the step itself"
printf 'recipe { name = "b" }\nstep "r" { on_change = {}, fs.file { path = "out/r", content = "r" } }\n' > bad.lua
refused "on_change = {}" "provision: bad.lua:2: step 'r': field 'on_change' must be a step name or a list of them"
printf 'recipe { name = "b" }\ncheck "c" { on_change = "x", check = function() return true end }\n' > bad.lua
refused "on_change on a check" "provision: bad.lua:2: check 'c': on_change makes a step run when others changed; a check always runs"
