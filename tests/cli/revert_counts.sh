#!/bin/bash
# What teardown says it reverted counts what it really removed (issue 18:
# "reverted directory ./www (+2 more)" when only ./www was removed, the two
# others being there before): fs.directory and fs.symlink name what they
# removed and what they left and why; a revert that removed nothing is ok,
# not changed.
. "$ROOT/tests/lib.sh"

mkdir a b
cat > d.lua <<'EOF2'
recipe { name = "d" }
step "dirs" { fs.directory { "./www", "./a", "./b" } }
EOF2
run "$P" d.lua
run "$P" teardown d.lua
expect "one of three made: 'removed ./www/', not '+2 more'" \
    eval '[ $RC = 0 ] && has "$OUT" "changed .*removed \./www/$" && ! has "$OUT" "more" && [ ! -e www ] && [ -d a ] && [ -d b ]'

cat > n.lua <<'EOF2'
recipe { name = "n" }
step "dirs" { fs.directory { "./n/m/o", "./p" } }
EOF2
run "$P" n.lua
run "$P" teardown n.lua
expect "four made (parents too): all four counted" \
    eval '[ $RC = 0 ] && has "$OUT" "removed 4 folders: \./p/, \./n/m/o/ (+2 more)" && [ ! -e n ] && [ ! -e p ]'

run "$P" d.lua
echo x > www/keep
run "$P" teardown d.lua
expect "the one made is not empty: left, why, and the step is ok (nothing removed)" \
    eval '[ $RC = 0 ] && has "$OUT" "\] dirs .* ok .*left \./www/: not empty (1 entry)" && [ -f www/keep ] && has "$OUT" "ok=1 changed=0"'
rm -r www

run "$P" n.lua
rm -r n p
run "$P" teardown n.lua
expect "all gone already: ok, said" eval '[ $RC = 0 ] && has "$OUT" "dirs .* ok .*gone already" && has "$OUT" "changed=0"'

run "$P" n.lua
touch p/x
run "$P" teardown n.lua
expect "some removed, one left: both said" \
    eval '[ $RC = 0 ] && has "$OUT" "changed .*removed 3 folders: \./n/m/o/, \./n/m/ (+1 more); left \./p/: not empty (1 entry)" && [ -e p/x ] && [ ! -e n ]'
rm -r p

cat > l.lua <<'EOF2'
recipe { name = "l" }
step "links" { fs.symlink { path = "./ln", target = "/etc" } }
EOF2
run "$P" l.lua
ln -sfn /tmp ln
run "$P" teardown l.lua
expect "a link changed since: left, why, ok" \
    eval '[ $RC = 0 ] && has "$OUT" "links .* ok .*left \./ln: changed since it was made" && [ "$(readlink ln)" = /tmp ]'
rm ln
run "$P" l.lua
run "$P" teardown l.lua
expect "a link removed: said" eval '[ $RC = 0 ] && has "$OUT" "changed .*removed \./ln$" && [ ! -L ln ]'
