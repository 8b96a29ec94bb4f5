#!/bin/bash
# tests/cli/fs_recipe.sh: the fs resources through the real runner: apply,
# no-op re-run, plan (diffs and key changes, secrets masked), teardown that
# removes exactly what was created.
. "$ROOT/tests/lib.sh"

mkdir keep
echo "not ours" > keep/existing.txt
cat > r.lua <<'R'
recipe { name = "fs-recipe" }
local v = vars { dir = "./proj", greeting = "hello", uid = 50000, pw = secret "s3cr3t-value" }
check "memory" { sys.memory { min = "1MiB" } }
check "sh" { sys.command { name = "sh" } }
step "folders" { fs.directory { v.dir, v.dir .. "/dags", v.dir .. "/logs" } }
step "config" { fs.file { path = v.dir .. "/app.cfg", content = v.greeting .. "\nline2\nline3\n", mode = "0640" } }
step "template" { fs.template { path = v.dir .. "/db.conf", template = "user=${user}\npass=${pw}\n", vars = { user = "airflow", pw = v.pw } } }
step "env" { fs.env_file { path = v.dir .. "/.env", values = { AIRFLOW_UID = v.uid, AIRFLOW_GID = 0, PASSWORD = v.pw } } }
step "link" { fs.symlink { path = v.dir .. "/current", target = "dags" } }
step "marker" { exec.command { argv = { "touch", "marker" }, cwd = v.dir, creates = "marker" } }
step "not ours" { fs.file { path = "keep/existing.txt", content = "not ours\n" } }
R

run "$P" r.lua
expect "apply: exit 0" eval '[ $RC -eq 0 ]'
expect "apply: all changed but the file that was already right" has "$OUT" "ok=1 changed=6 failed=0"
expect "apply: files in place" eval '[ -f proj/app.cfg ] && [ -L proj/current ] && [ -f proj/marker ] && [ "$(stat -c %a proj/.env)" = 600 ] && [ "$(stat -c %a proj/app.cfg)" = 640 ]'
expect "apply: template rendered" eval '[ "$(cat proj/db.conf)" = "$(printf "user=airflow\npass=s3cr3t-value")" ]'
expect "apply: the secret never shows" eval '! has "$OUT$ERR" "s3cr3t"'

run "$P" r.lua
expect "re-run: all ok" eval '[ $RC -eq 0 ] && has "$OUT" "ok=7 changed=0 failed=0"'
run "$P" plan r.lua
expect "plan after apply: exit 0" eval '[ $RC -eq 0 ]'

run "$P" plan r.lua -e greeting=bonjour -e uid=1000 -e pw=other-secret
expect "plan with changes: exit 3" eval '[ $RC -eq 3 ]'
expect "plan shows a unified diff" eval 'has "$OUT" "-hello" && has "$OUT" "+bonjour"'
expect "plan shows env key changes" has "$OUT" "AIRFLOW_UID: 50000 -> 1000"
expect "plan masks a changed secret" has "$OUT" "PASSWORD (secret)"
expect "plan shows no secret" eval '! has "$OUT$ERR" "s3cr3t" && ! has "$OUT$ERR" "other-secret"'
expect "plan changed nothing" eval 'head -1 proj/app.cfg | grep -qx hello'

run "$P" r.lua -v -e greeting=bonjour
expect "apply -v: the diff is shown" eval '[ $RC -eq 0 ] && has "$OUT" "+bonjour"'

echo "hand edit" >> proj/app.cfg
echo "user data" > proj/logs/run.log
run "$P" teardown r.lua
expect "teardown: exit 0" eval '[ $RC -eq 0 ]'
expect "teardown: created files gone" eval '[ ! -e proj/db.conf ] && [ ! -e proj/.env ] && [ ! -e proj/current ] && [ ! -e proj/dags ]'
expect "teardown: a file edited since is left" eval '[ -f proj/app.cfg ]'
expect "teardown: a folder with someone else's file is left" eval '[ -f proj/logs/run.log ]'
expect "teardown: a file that was there before is never removed" eval '[ "$(cat keep/existing.txt)" = "not ours" ]'
