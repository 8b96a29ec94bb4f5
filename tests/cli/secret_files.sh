#!/bin/bash
# Files that hold secrets and secrets given on the command line (issue 13,
# case 7): such a file is 0600 unless the recipe says otherwise; a diff
# never shows the old value of a rotated secret; a secret too short to be
# searched for in the output is refused; a secret can be given without
# putting it in argv (-e KEY=@FILE, PROVISION_VAR_KEY).
. "$ROOT/tests/lib.sh"

OLD=OldPassw0rd-Q9 NEW=NewPassw0rd-R7
cat > s.lua <<'R'
recipe { name = "secret-files" }
local v = vars { pw = secret "Default-pw-5511", sep = "=" }
step "folder" { fs.directory "./app" }
step "token" { fs.file { path = "./app/token", content = v.pw } }
step "conf" { fs.template { path = "./app/app.conf", template = "user=admin\npassword" .. v.sep .. "${pw}\n", vars = { pw = v.pw } } }
step "plain" { fs.template { path = "./app/plain.conf", template = "user=${u}\n", vars = { u = "admin" } } }
R
run "$P" s.lua -e pw="$OLD"
expect "apply: exit 0" test "$RC" = 0
expect "a file with secret content is 0600; a template with a secret too; a plain one 0644" \
    eval '[ "$(stat -c %a app/token)" = 600 ] && [ "$(stat -c %a app/app.conf)" = 600 ] && [ "$(stat -c %a app/plain.conf)" = 644 ]'

# the secret rotates, and the template line that holds it changes too: the
# old value is no longer known to the mask, and must not show in a diff
run "$P" plan s.lua -e pw="$NEW" -e sep=": " -v
expect "rotation: plan shows the change (exit 3)" eval '[ $RC = 3 ] && has "$OUT" "a line that held a secret"'
expect "rotation: neither the old nor the new secret shows" eval '! has "$OUT$ERR" "$OLD" && ! has "$OUT$ERR" "$NEW"'
run "$P" s.lua -e pw="$NEW" -e sep=": " -v
expect "rotation: apply, -v: neither secret shows" eval '[ $RC = 0 ] && ! has "$OUT$ERR" "$OLD" && ! has "$OUT$ERR" "$NEW"'
expect "rotation: the file holds the new one" has "$(cat app/app.conf)" "password: $NEW"

# ---- secrets too short to mask ----
run "$P" plan s.lua -e pw=1
expect "-e pw=1: refused, exit 2, saying why" eval '[ $RC = 2 ] && has "$ERR" "variable .pw.: a secret of 1 byte is too short"'
run "$P" plan s.lua -e "pw=    "
expect "-e 'pw=    ': refused, exit 2" eval '[ $RC = 2 ] && has "$ERR" "only of spaces"'
cat > short.lua <<'R'
recipe { name = "short" }
local v = vars { pw = secret "abc" }
step "x" { fs.file { path = "./x", content = v.pw } }
R
run "$P" plan short.lua
expect "secret \"abc\" in a recipe: refused at load time with file:line (exit 2)" \
    eval '[ $RC = 2 ] && has "$ERR" "short.lua:2: secret: a secret of 3 bytes is too short"'
run "$P" plan s.lua -e pw="$NEW" -e sep=": "
expect "the summary line is never masked by a secret" eval '[ $RC = 0 ] && has "$OUT" "ok=4 would-change=0 failed=0"'

# ---- secrets without argv ----
printf '%s\n' "$NEW" > pw.txt
run "$P" s.lua -e pw=@pw.txt
expect "-e pw=@FILE: the value is the file's (its newline dropped)" \
    eval '[ $RC = 0 ] && [ "$(cat app/token)" = "$NEW" ]'
run "$P" s.lua -e pw=@missing.txt
expect "-e pw=@FILE that cannot be read: exit 2, naming it" eval '[ $RC = 2 ] && has "$ERR" "missing.txt"'
cat > lit.lua <<'R'
recipe { name = "lit" }
local v = vars { s = "" }
step "x" { fs.file { path = "./lit.txt", content = v.s } }
R
run "$P" lit.lua -e s=@@at-sign
expect "-e s=@@text: the literal @text" eval '[ $RC = 0 ] && [ "$(cat lit.txt)" = "@at-sign" ]'
PROVISION_VAR_pw="Env-pw-7788zz" run "$P" s.lua
expect "PROVISION_VAR_pw: the value from the environment" eval '[ $RC = 0 ] && [ "$(cat app/token)" = "Env-pw-7788zz" ]'
PROVISION_VAR_pw="Env-pw-7788zz" run "$P" s.lua -e pw=@pw.txt
expect "-e wins over PROVISION_VAR_" eval '[ $RC = 0 ] && [ "$(cat app/token)" = "$NEW" ]'
# while it runs, the secret is not in its argv (what any user can read)
cat > slow.lua <<'R'
recipe { name = "slow" }
local v = vars { pw = secret "Default-pw-5511" }
step "wait" { exec.command { argv = { "sleep", "1" } } }
step "token" { fs.file { path = "./slow-token", content = v.pw } }
R
"$P" slow.lua -e pw=@pw.txt > /dev/null 2>&1 &
pid=$!
sleep 0.3
cmdline=$(tr '\0' ' ' < /proc/$pid/cmdline)
wait $pid
expect "-e pw=@FILE: the running process's argv holds the file name, not the secret" \
    eval 'has "$cmdline" "pw=@pw.txt" && ! has "$cmdline" "$NEW" && [ "$(cat slow-token)" = "$NEW" ]'
