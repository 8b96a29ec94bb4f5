#!/bin/bash
# http.file / http.expect through real recipes: apply, re-run, plan, --json,
# teardown; a matching checksum makes no request.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
start_httpd
SHA=$(curl -s "$BASE/sha256?size=200000&seed=compose")

cat > r.lua <<R
recipe { name = "http-demo" }
local v = vars { dir = "./out", sha = "$SHA" }
step "dir" { check = function() return io.open(v.dir .. "/.keep") ~= nil end,
             apply = function() os.execute("mkdir -p " .. v.dir .. " && touch " .. v.dir .. "/.keep") end }
step "compose file" { http.file { url = "$BASE/file/compose?size=200000", dest = v.dir .. "/compose.bin", sha256 = v.sha } }
step "no checksum" { http.file { url = "$BASE/file/plain?size=1000", dest = v.dir .. "/plain.txt", mode = "0600" } }
step "api up" { http.expect { url = "$BASE/auth?user=airflow&password=airflow", user = "airflow",
                password = secret "airflow", json = { user = "airflow" } } }
R

run "$P" r.lua --json
expect "apply: exit 0" eval '[ $RC -eq 0 ]'
expect "apply: file fetched and verified" eval '[ "$(sha256sum out/compose.bin | cut -c1-64)" = "$SHA" ]'
expect "apply: no temp files" eval '[ -z "$(ls -A out | grep provision)" ]'
expect "apply: mode 0600" eval '[ "$(stat -c %a out/plain.txt)" = 600 ]'
expect "--json: the download step carries bytes and a detail" eval \
  'printf "%s\n" "$OUT" | grep "\"compose file\"" | grep -q "\"bytes\":200000" && printf "%s\n" "$OUT" | grep "\"compose file\"" | grep -q "KiB in"'
expect "--json: the secret never shows (masked even in the URL)" eval '! has "$OUT$ERR" airflow && has "$OUT" "password=\*\*\*\*"'

httpd_reset
run "$P" r.lua
expect "re-run: exit 0, all ok" eval '[ $RC -eq 0 ]'
expect "re-run: no request for the file whose checksum matches" eval '[ "$(httpd_count /file/compose)" = 0 ]'
expect "re-run: one conditional request for the file without checksum" eval '[ "$(httpd_count /file/plain)" = 1 ]'

run "$P" plan r.lua
expect "plan: nothing to change (exit 0)" eval '[ $RC -eq 0 ]'
echo changed > out/compose.bin
run "$P" plan r.lua
expect "plan: a changed file is pending (exit 3)" eval '[ $RC -eq 3 ] && has "$OUT$ERR" "want $SHA"'
run "$P" r.lua
expect "apply: the changed file is fetched again" eval '[ $RC -eq 0 ] && [ "$(sha256sum out/compose.bin | cut -c1-64)" = "$SHA" ]'

cat > bad.lua <<R
recipe { name = "http-bad" }
step "compose file" { http.file { url = "$BASE/file/compose?size=200000", dest = "./bad.bin", sha256 = "$(printf '0%.0s' $(seq 64))" } }
R
run "$P" bad.lua
expect "wrong checksum: exit 1, both digests named" eval '[ $RC -eq 1 ] && has "$OUT$ERR" "checksum mismatch" && has "$OUT$ERR" "$SHA" && [ ! -e bad.bin ] && [ -z "$(ls | grep provision-part)" ]'

cat > down.lua <<R
recipe { name = "http-down" }
step "web UI" { http.expect { url = "$BASE/until/web?after=1000", within = "1s", interval = "0.3s", password = secret "hunter2-pw", user = "x" } }
R
run "$P" down.lua
expect "expect: exit 1 naming the last status and the body" eval '[ $RC -eq 1 ] && has "$OUT$ERR" "503" && has "$OUT$ERR" "not yet"'
run "$P" plan down.lua
expect "expect: plan asks once (exit 3 or 1)" eval '[ $RC -ne 0 ] && has "$OUT$ERR" "503"'

run "$P" teardown r.lua
expect "teardown: downloaded files removed" eval '[ $RC -eq 0 ] && [ ! -e out/compose.bin ] && [ ! -e out/plain.txt ]'

# teardown over a file that was there before the first apply: kept, the
# step is ok and says why, and that detail does not spill onto the next step
printf 'mine\n' > before.txt
cat > kept.lua <<R
recipe { name = "http-kept" }
step "made" { fs.file { path = "made.txt", content = "x" } }
step "over" { http.file { url = "$BASE/file/kept?size=100", dest = "./before.txt" } }
R
run "$P" kept.lua
run "$P" teardown kept.lua
expect "teardown: a file that existed before is kept, ok, and says so" \
    eval '[ $RC -eq 0 ] && [ -f before.txt ] && printf "%s\n" "$OUT" | grep "over" | grep -q "ok .*kept ./before.txt, which existed before the first apply"'
expect "teardown: the next step has its own detail" \
    eval '[ ! -e made.txt ] && printf "%s\n" "$OUT" | grep " made " | grep -qv "existed before" && has "$OUT" "ok=1 changed=1"'
