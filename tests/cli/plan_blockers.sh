#!/bin/bash
# Plan does not over-promise (issue 18): what apply could not do and the
# check can see is a failure in plan, with the reason, not a would-change:
# an owner or group that does not exist, a file whose folder does not exist,
# a folder on a read-only filesystem. When a step before would change
# something (it may make the user or the folder), plan says would-change
# with a note instead. Apply fails on the same check with the same words.
. "$ROOT/tests/lib.sh"
export PROVISION_STATE_DIR="$SANDBOX/.state" NO_COLOR=1

printf 'recipe { name = "b" }\nstep "f" { fs.file { path = "x", content = "x", owner = "no-such-user-here" } }\n' > owner.lua
run "$P" plan owner.lua
expect "plan: an unknown owner is a failure, named (exit 1)" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "x: no such user no-such-user-here" && [ ! -e x ]'
printf 'recipe { name = "b" }\nstep "f" { fs.env_file { path = "e", values = { A = "1" }, group = "no-such-group-here" } }\n' > group.lua
run "$P" plan group.lua
expect "plan: an unknown group (fs.env_file) too" eval '[ $RC = 1 ] && has "$OUT$ERR" "e: no such group no-such-group-here"'
run "$P" group.lua
expect "apply: the same failure, nothing written" eval '[ $RC = 1 ] && has "$OUT$ERR" "no such group no-such-group-here" && [ ! -e e ]'

printf 'recipe { name = "b" }\nstep "f" { fs.file { path = "nodir/x", content = "x" } }\n' > nodir.lua
run "$P" plan nodir.lua
expect "plan: a missing folder is a failure, with the fix" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "nodir/x: its folder nodir does not exist (add an fs.directory step before this one)"'
cat > withdir.lua <<'EOF'
recipe { name = "b" }
step "d" { fs.directory "nodir" }
step "f" { fs.template { path = "nodir/x", template = "x" } }
EOF
run "$P" plan withdir.lua
expect "plan: the folder made by a step before: would-change, no failure" \
    eval '[ $RC = 3 ] && has "$OUT" "would-change=2" && ! has "$OUT" "does not exist"'
cat > maybe.lua <<'EOF'
recipe { name = "b" }
step "user" { exec.command { "true" } }
step "f" { fs.file { path = "y", content = "y", owner = "no-such-user-here" } }
EOF
run "$P" plan maybe.lua
expect "plan: a step before would change (it may make the user): would-change, with a note" \
    eval '[ $RC = 3 ] && has "$OUT" "(y: no such user no-such-user-here: a step before this one may make it)"'

mkdir ro; mount -t tmpfs -o ro,size=1m none ro || fail "read-only mount" "mount -t tmpfs -o ro failed"
cleanup_add "umount '$SANDBOX/ro' 2>/dev/null"
printf 'recipe { name = "b" }\nstep "f" { fs.file { path = "ro/x", content = "x" } }\n' > ro.lua
run "$P" plan ro.lua
expect "plan: a read-only filesystem is a failure, named" \
    eval '[ $RC = 1 ] && has "$OUT$ERR" "ro/x: the filesystem of ro is read-only"'
run "$P" ro.lua
expect "apply: the same" eval '[ $RC = 1 ] && has "$OUT$ERR" "the filesystem of ro is read-only"'

printf 'recipe { name = "b" }\nstep "f" { fs.file { path = "ok", content = "x", owner = "root" } }\n' > fine.lua
run "$P" plan fine.lua
expect "a known owner in a writable folder: would-change as before" eval '[ $RC = 3 ] && has "$OUT" "would-change=1"'
