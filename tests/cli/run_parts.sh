#!/bin/bash
# provision.run.teardown, the runner's teardown half, loads only when a run
# needs it (issue 19: every module loaded costs each run its start): an
# apply, its no-op and a plan load none of it (a step's own check looks, in
# package.loaded, while the run is under way); a teardown, its plan, and
# `undo "step"` in a teardown block (ctx:undo) load it and do their work.
. "$ROOT/tests/lib.sh"

cat > r.lua <<'L'
recipe { name = "parts" }
step "f" { fs.file { path = "f", content = "x" } }
step "look" {
  check = function()
    if package.loaded["provision.run.teardown"] then return nil, "the teardown half is loaded" end
    return true
  end,
  apply = function() end,
}
L
run "$P" r.lua
expect "an apply: the teardown half not loaded" eval '[ $RC -eq 0 ] && [ -f f ] && has "$OUT" "changed=1"'
run "$P" r.lua
expect "its no-op: not loaded either" eval '[ $RC -eq 0 ] && has "$OUT" "ok=2 changed=0"'
rm f
run "$P" plan r.lua
expect "a plan: not loaded either (exit 3: f would change)" eval '[ $RC -eq 3 ] && ! has "$OUT" "teardown half"'
run "$P" plan --teardown r.lua
expect "a plan of teardown loads it: what it would revert (f is gone already)" eval '[ $RC -eq 0 ] && has "$OUT" "teardown"'
run "$P" r.lua
run "$P" teardown r.lua
expect "a teardown loads it and reverts: f removed" eval '[ $RC -eq 0 ] && [ ! -e f ] && has "$OUT" "changed=1"'

# undo "step" in a teardown block: ctx:undo, through the lazy half
cat > u.lua <<'L'
recipe { name = "undo" }
step "f" { fs.file { path = "g", content = "y" } }
teardown { undo "f" }
L
run "$P" u.lua
expect "a recipe with a teardown block applies" eval '[ $RC -eq 0 ] && [ -f g ]'
run "$P" plan --teardown u.lua
expect "its plan of teardown: undo would remove g (exit 3)" eval '[ $RC -eq 3 ] && [ -f g ] && has "$OUT" "g"'
run "$P" teardown u.lua
expect "its teardown: undo removed g" eval '[ $RC -eq 0 ] && [ ! -e g ]'
