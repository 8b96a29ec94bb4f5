#!/bin/bash
# backup = true on fs.file, fs.template and fs.env_file (issue 18): the
# content a rewrite replaces is kept beside the file (owner and mode kept),
# one backup per rewrite; plan says so; teardown puts the oldest back and
# removes it, or leaves all when the file changed since. A file replaced
# for safety (a link, another user's file) is never read nor backed up.
. "$ROOT/tests/lib.sh"
export PROVISION_STATE_DIR="$SANDBOX/.state" NO_COLOR=1
NB() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
backups() { ls -A "$1" | grep -c 'provision~$'; }

mkdir d; printf 'original\n' > d/app.conf; chmod 640 d/app.conf
printf 'A=1\n' > d/app.env
printf 'old template\n' > d/app.tpl.out
cat > b.lua <<'EOF'
recipe { name = "backup" }
local v = vars { text = "new\n", n = "2" }
step "conf" { fs.file { path = "d/app.conf", content = v.text, backup = true } }
step "env" { fs.env_file { path = "d/app.env", values = { A = v.n }, backup = true } }
step "tpl" { fs.template { path = "d/app.tpl.out", template = "t=${n}\n", vars = { n = v.n }, backup = true } }
step "fresh" { fs.file { path = "d/fresh", content = "f\n", backup = true } }
EOF
run "$P" plan b.lua
expect "plan: each rewrite says the old content will be kept" \
    eval '[ $RC = 3 ] && [ "$(printf "%s\n" "$OUT" | grep -c "backup = true: the old content is kept beside it")" = 3 ] && [ "$(backups d)" = 0 ]'
run "$P" b.lua
expect "apply: one backup per rewritten file (none for the new one)" eval '[ $RC = 0 ] && [ "$(backups d)" = 3 ]'
bk=$(ls d/app.conf.*.provision~)
expect "the backup holds the old content, with the file's mode" \
    eval '[ "$(cat "$bk")" = original ] && [ "$(stat -c %a "$bk")" = 640 ] && [ "$(cat d/app.conf)" = new ]'
expect "fs.env_file and fs.template keep theirs" \
    eval '[ "$(cat d/app.env.*.provision~)" = "A=1" ] && [ "$(cat d/app.tpl.out.*.provision~)" = "old template" ]'
run "$P" b.lua
expect "no-op: no new backup" eval '[ $RC = 0 ] && [ "$(backups d)" = 3 ]'
run "$P" b.lua -e text='newer' -e n=3
expect "another rewrite: another backup each" eval '[ $RC = 0 ] && [ "$(backups d)" = 6 ]'
run "$P" teardown b.lua
expect "teardown: each file as it was before the first apply, its oldest backup gone" \
    eval '[ $RC = 0 ] && [ "$(cat d/app.conf)" = original ] && [ "$(stat -c %a d/app.conf)" = 640 ] && [ "$(cat d/app.env)" = A=1 ] && [ "$(cat d/app.tpl.out)" = "old template" ] && [ ! -e d/fresh ] && [ "$(backups d)" = 3 ]'
expect "teardown says the newer backups are left" has "$OUT" "put back d/app.conf as it was (1 newer backups left beside it)"

rm -f d/*.provision~
run "$P" b.lua
printf 'edited by hand\n' > d/app.conf
run "$P" teardown b.lua
expect "a file edited after the apply: left as it is, with its backup, said" \
    eval '[ $RC = 0 ] && [ "$(cat d/app.conf)" = "edited by hand" ] && [ -e "$(ls d/app.conf.*.provision~)" ] && has "$OUT" "left d/app.conf: changed since it was written; its old content is in d/app.conf"'

# a link and another user's file are replaced, never read nor backed up
SH=$(mktemp -d /tmp/provision-shared.XXXXXX); chmod 1777 "$SH"; cleanup_add "rm -rf '$SH'"
printf 'secret of root\n' > victim; chmod 600 victim
NB ln -s "$SANDBOX/victim" "$SH/link.conf"
NB sh -c "printf 'nobody s\n' > '$SH/nobody.conf'"
cat > h.lua <<'EOF'
recipe { name = "backup-hostile" }
local v = vars { dir = "" }
step "link" { fs.file { path = v.dir .. "/link.conf", content = "x\n", backup = true } }
step "other" { fs.file { path = v.dir .. "/nobody.conf", content = "y\n", backup = true } }
EOF
run "$P" h.lua -e dir="$SH"
expect "a planted link and nobody's file: replaced, no backup made" \
    eval '[ $RC = 0 ] && [ "$(backups "$SH")" = 0 ] && [ "$(cat victim)" = "secret of root" ] && [ ! -L "$SH/link.conf" ] && [ "$(stat -c %U "$SH/nobody.conf")" = root ]'

printf 'recipe { name = "b" }\nstep "s" { fs.file { path = "x", content = "x", backup = "yes" } }\n' > bad.lua
run "$P" bad.lua
expect "backup = \"yes\": exit 2, named" eval '[ $RC = 2 ] && has "$ERR" "bad.lua:2" && has "$ERR" "backup"'
