#!/bin/bash
# A teardown without a block reverts the steps the recipe dropped first, as
# what they made may sit in the recipe's own folders; but a dropped step
# that made a folder a kept step still puts a file in goes after that step,
# so the folder is empty by then and removed, not "left: not empty"
# (run/teardown.lua). What is not provision's stays, as always.
. "$ROOT/tests/lib.sh"

# a dropped fs.directory step, a kept fs.file inside its folder
cat > r.lua <<'L'
recipe { name = "order" }
step "dir" { fs.directory { path = "w" } }
step "keep" { fs.file { path = "w/keep", content = "k" } }
L
run "$P" r.lua
expect "the folder and the file apply" eval '[ $RC -eq 0 ] && [ -f w/keep ]'
cat > r.lua <<'L'
recipe { name = "order" }
step "keep" { fs.file { path = "w/keep", content = "k" } }
L
run "$P" plan --teardown r.lua
expect "plan --teardown: the kept file first, then the dropped folder, which it would remove" \
    eval '[ $RC -eq 3 ] && has "$OUT" "^\[1/2\] keep .*would revert file w/keep" && has "$OUT" "^\[2/2\] dir .*would remove w/"'
run "$P" teardown r.lua
expect "teardown: the file reverted, then the dropped step's folder removed" \
    eval '[ $RC -eq 0 ] && [ ! -e w ] && has "$OUT" "^\[2/2\] dir .*removed w/"'

# nested: a kept folder around a dropped one around a kept file
cat > n.lua <<'L'
recipe { name = "nested" }
step "k" { fs.directory { path = "k" } }
step "d" { fs.directory { path = "k/d" } }
step "f" { fs.file { path = "k/d/f", content = "f" } }
L
run "$P" n.lua
cat > n.lua <<'L'
recipe { name = "nested" }
step "k" { fs.directory { path = "k" } }
step "f" { fs.file { path = "k/d/f", content = "f" } }
L
run "$P" teardown n.lua
expect "nested: the file, then the dropped folder, then the kept one around it: all gone" \
    eval '[ $RC -eq 0 ] && [ ! -e k ] && has "$OUT" "^\[1/3\] f " && has "$OUT" "^\[2/3\] d " && has "$OUT" "^\[3/3\] k "'

# a file of the user's in the dropped step's folder: the folder stays, and the file
cat > u.lua <<'L'
recipe { name = "users" }
step "dir" { fs.directory { path = "u" } }
step "keep" { fs.file { path = "u/keep", content = "k" } }
L
run "$P" u.lua
echo mine > u/mine
cat > u.lua <<'L'
recipe { name = "users" }
step "keep" { fs.file { path = "u/keep", content = "k" } }
L
run "$P" teardown u.lua
expect "a user's file in the folder: the folder left, the user's file as it was" \
    eval '[ $RC -eq 0 ] && [ ! -e u/keep ] && [ "$(cat u/mine)" = mine ] && has "$OUT" "left u/: not empty (1 entry)"'
