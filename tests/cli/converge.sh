#!/bin/bash
# tests/cli/converge.sh: apply once, change one thing (an option, the thing
# on disk, the state), apply again: the run converges, the re-run is a no-op,
# plan tells the truth, and teardown removes exactly what was created.
. "$ROOT/tests/lib.sh"

# a step whose first resource fails on a later run still keeps the record of
# what its other resources created: teardown removes them
mkdir w
cat > pair.lua <<'R'
recipe { name = "pair" }
local v = vars { owner = "root" }
step "pair" { fs.file { path = "w/a", content = "a\n", owner = v.owner }, fs.file { path = "w/b", content = "b\n" } }
R
run "$P" pair.lua
expect "pair: first apply" eval '[ $RC -eq 0 ] && [ -f w/a ] && [ -f w/b ]'
run "$P" pair.lua -e owner=no-such-user-here
expect "pair: the first resource fails" eval '[ $RC -eq 1 ] && has "$OUT" "no such user"'
run "$P" teardown pair.lua
expect "pair: teardown after the failure still removes what the second resource made" \
    eval '[ $RC -eq 0 ] && [ ! -e w/a ] && [ ! -e w/b ]'
