#!/bin/bash
# Secrets never show: a recipe holding secrets (var defaults and -e values)
# in an .env file, a file's content, HTTP basic auth (an expect and a
# download, against tests/servers/httpd.py), exec.command argv and env (a
# command that prints them, and one that fails printing them), and a custom
# step whose error carries one. Every verb (list, plan, apply, re-run, apply
# -v, a changed secret, failures, teardown), plain, -v and --json; then no
# secret value may appear in stdout, stderr, the state folder or any file
# under the sandbox (HOME too) but the two outputs meant to hold them.
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/servers/httpd.sh"
start_httpd
export HOME="$SANDBOX/home"
unset XDG_CACHE_HOME
mkdir -p "$HOME"

PW=Pw-default-7Hq2xK9          # default of a secret var: env file, basic auth
TOK_DEFAULT=Tok-default-Qx55Lm  # default overridden by -e: must not show either
TOK=Tok-cli-Zr81mWq4            # given with -e: env file, file content, exec argv/env
TOK2=Tok-cli-new-Bv3Nc07        # a changed secret (plan and apply show the change)
API=Api-key-Ue90Pz2             # only in the env file, default
SECRETS="$PW $TOK_DEFAULT $TOK $TOK2 $API"

cat > r.lua <<R
recipe { name = "secrets" }
local R = require "provision.resource"
local v = vars {
  dir = "./proj",
  password = secret "$PW",
  token = secret "$TOK_DEFAULT",
  api_key = secret "$API",
  exec_fail = false,
  custom_fail = false,
}
step "project directory" { fs.directory(v.dir) }
step "environment" { fs.env_file { path = v.dir .. "/.env",
  values = { DB_PASSWORD = v.password, API_TOKEN = v.token, API_KEY = v.api_key, USER_NAME = "admin" } } }
step "token file" { fs.file { path = v.dir .. "/token.txt", content = v.token, mode = "0600" } }
step "config download" { http.file { url = "$BASE/auth/file/conf?user=admin&password=$PW&size=4096",
  dest = v.dir .. "/conf.bin", user = "admin", password = v.password } }
step "api answers" { http.expect { url = "$BASE/auth?user=admin&password=$PW", user = "admin",
  password = v.password, status = 200, json = { user = "admin" } } }
step "command" { exec.command { argv = { "sh", "-c",
  'echo "argv token: \$1"; echo "env token: \$TOKEN_ENV"; [ "\$3" = false ] || { echo "failing with \$1" >&2; exit 3; }; printf %s "\$1" | sha256sum > "\$2"',
  "sh", v.token, v.dir .. "/token.sha", tostring(v.exec_fail) },
  env = { TOKEN_ENV = v.token }, creates = v.dir .. "/token.sha" } }
step "custom" {
  describe = "a custom step that logs in",
  check = function() return fs.exists(v.dir .. "/logged-in") end,
  apply = function(ctx)
    ctx:log("logging in with " .. R.reveal(v.password))
    if v.custom_fail then error("login refused for password " .. R.reveal(v.password)) end
    fs.write(v.dir .. "/logged-in", "yes", "0644")
  end,
}
R

ALL="$SANDBOX/all-output.txt"
: > "$ALL"
leaks() { # text: the secret values found in it
    for s in $SECRETS; do printf '%s' "$1" | grep -qF -- "$s" && printf '%s ' "$s"; done
}
# vrun NAME EXPECTED_RC ARGS...: run provision, check its exit code and that
# neither stdout nor stderr shows a secret
vrun() {
    local label=$1 want=$2; shift 2
    run "$P" "$@"
    printf '%s\n%s\n' "$OUT" "$ERR" >> "$ALL"
    expect "$label: exit $want" test "$RC" = "$want"
    l=$(leaks "$OUT$ERR")
    expect "$label: no secret in stdout or stderr${l:+ (leaked: $l)}" test -z "$l"
}
SHA_TOK=$(printf %s "$TOK" | sha256sum)

vrun "list" 0 list r.lua -e token="$TOK"
expect "list: secret variables show masked" has "$OUT" "password = \*\*\*\*\*\*\*\*"
vrun "list --json" 0 list r.lua -e token="$TOK" --json
vrun "plan before apply" 3 plan r.lua -e token="$TOK"
vrun "plan -v --json before apply" 3 plan r.lua -e token="$TOK" -v --json
vrun "apply" 0 r.lua -e token="$TOK"
expect "apply: the outputs hold the real values (the secrets were used)" \
    eval 'grep -qx "DB_PASSWORD=$PW" proj/.env && grep -qx "API_TOKEN=$TOK" proj/.env && [ "$(cat proj/token.txt)" = "$TOK" ] && [ "$(cat proj/token.sha)" = "$SHA_TOK" ] && [ -e proj/logged-in ]'
vrun "re-run" 0 r.lua -e token="$TOK"
vrun "re-run -v --json" 0 r.lua -e token="$TOK" -v --json
rm -f proj/token.sha proj/logged-in proj/token.txt
vrun "apply -v (command, custom step and file applied again)" 0 r.lua -e token="$TOK" -v
expect "apply -v: the command's output is shown, masked" \
    eval 'has "$OUT$ERR" "argv token: \*\*\*\*\*\*\*\*" && has "$OUT$ERR" "env token: \*\*\*\*\*\*\*\*"'
expect "apply -v: the custom step's log line is shown, masked" has "$OUT$ERR" "logging in with \*\*\*\*\*\*\*\*"
rm -f proj/token.sha proj/logged-in
vrun "apply -v --json" 0 r.lua -e token="$TOK" -v --json
vrun "plan with a changed secret" 3 plan r.lua -e token="$TOK2" -v
expect "plan with a changed secret: the change is named, not shown" has "$OUT$ERR" "API_TOKEN"
vrun "plan --json with a changed secret" 3 plan r.lua -e token="$TOK2" --json
vrun "apply -v with a changed secret" 0 r.lua -e token="$TOK2" -v
expect "apply with a changed secret: written" eval 'grep -qx "API_TOKEN=$TOK2" proj/.env && [ "$(cat proj/token.txt)" = "$TOK2" ]'
rm -f proj/token.sha proj/logged-in
vrun "exec.command failing with the secret in its output" 1 r.lua -e token="$TOK2" -e exec_fail=true
expect "exec.command failing: its output tail is shown, masked" has "$OUT$ERR" "failing with \*\*\*\*\*\*\*\*"
vrun "exec.command failing, -v --json" 1 r.lua -e token="$TOK2" -e exec_fail=true -v --json
rm -f proj/token.sha proj/logged-in
vrun "custom step raising with the secret in its message" 1 r.lua -e token="$TOK2" -e custom_fail=true
expect "custom step raising: the message is shown, masked" has "$OUT$ERR" "login refused for password \*\*\*\*\*\*\*\*"
rm -f proj/logged-in
vrun "custom step raising, -v --json" 1 r.lua -e token="$TOK2" -e custom_fail=true -v --json
vrun "apply after the failures" 0 r.lua -e token="$TOK2"
vrun "teardown -v --json" 0 teardown r.lua -e token="$TOK2" -v --json
vrun "apply again" 0 r.lua -e token="$TOK2"
vrun "re-run" 0 r.lua -e token="$TOK2"
expect "re-run: a no-op (a URL holding a secret matches its record)" has "$OUT" "changed=0 failed=0"

# every file but the recipe (the input), the test server's own files (its
# request log holds the URLs), and the two outputs meant to hold secrets
scan() { # label
    files=$(find "$SANDBOX" -type f ! -name r.lua ! -name '.httpd.*' ! -path "$SANDBOX/proj/.env" ! -path "$SANDBOX/proj/token.txt")
    found=""
    for f in $files; do
        for x in $SECRETS; do grep -qF -- "$x" "$f" && found="$found $f: $x;"; done
    done
    expect "$1: no secret value in the state folder or any other file under the sandbox${found:+ (found:$found)}" test -z "$found"
}
expect "applied: the scan covers a real state file and the captured output" \
    eval 'has "$(cat .provision/secrets.json)" "\"created\"" && [ -s "$ALL" ]'
scan "applied"
vrun "teardown -v" 0 teardown r.lua -e token="$TOK2" -v
vrun "teardown again" 0 teardown r.lua -e token="$TOK2"
scan "torn down"

# text joined with a secret stays a secret: the file and the argv get the
# real value, every output shows the mask, and plan notices a new value
cat > joined.lua <<'R'
recipe { name = "joined" }
local v = vars { tok = secret "j0ined-s3cret" }
step "f" { fs.file { path = "tokfile", content = "Bearer " .. v.tok } }
step "x" { exec.command { argv = { "sh", "-c", "echo \"$1\" > argv.txt", "x", "--password=" .. v.tok }, creates = "argv.txt" } }
R
run "$P" joined.lua -v --json
expect "joined secret: the file and the argv hold the real value" \
    eval '[ $RC -eq 0 ] && [ "$(cat tokfile)" = "Bearer j0ined-s3cret" ] && [ "$(cat argv.txt)" = "--password=j0ined-s3cret" ]'
expect "joined secret: not in the output nor the state" eval '! has "$OUT$ERR" j0ined && ! grep -rq j0ined .provision'
run "$P" plan joined.lua -e tok=other
expect "joined secret: plan sees a new value" eval '[ $RC -eq 3 ] && has "$OUT" "content changed (secret)" && ! has "$OUT" other'
expect "plan: a single change is said once (on the step line), not twice" eval '[ "$(printf "%s\n" "$OUT" | grep -c "content changed (secret)")" = 1 ]'

# a secret whose value is also part of a path or a name (a password
# "airflow" in recipes/airflow-x.lua) does not garble errors while loading
mkdir -p airflow-dir
cat > airflow-dir/airflow-x.lua <<'R'
recipe { name = "airflow-x" }
local v = vars { password = secret "airflow", port = 8080 }
step "airflow.sh" { fs.file { path = "airflow.sh", content = "x" } }
R
run "$P" plan airflow-dir/airflow-x.lua -e port=abc
expect "load error: the path is shown as it is" eval '[ $RC -eq 2 ] && has "$ERR" "airflow-dir/airflow-x.lua:2: variable .port. must be a number"'
printf 'include("airflow-x.lua")\nremove_step "airflow.shx"\n' > airflow-dir/mine.lua
run "$P" list airflow-dir/mine.lua
expect "load error: a step name is shown as it is" eval '[ $RC -eq 2 ] && has "$ERR" "no step named .airflow.shx."'

# output copied through as a program runs (-v for compose, apt, systemctl:
# passthrough) is masked too: a secret in a .env reached the terminal raw
cat > pass.lua <<'R'
recipe { name = "passthrough" }
local v = vars { pw = secret "pa55-thr0ugh" }
step "env" { fs.env_file { path = "pass.env", values = { PW = v.pw } } }
local shown = false
step "show" { check = function() return shown end,
  apply = function() exec.run { "cat", "pass.env", passthrough = true }; shown = true end }
R
run "$P" pass.lua -v
expect "passthrough output: the secret is masked on stderr and stdout" eval '[ $RC -eq 0 ] && ! has "$OUT$ERR" pa55-thr0ugh && has "$ERR" "PW=\*\*\*\*\*\*\*\*"'

# list --json gives the checks and the variables too: a secret's default masked
cat > lv.lua <<'R'
recipe { name = "lv" }
local v = vars { port = 8080, name = "x", tok = secret "lv-secret-default-77" }
check "cpus" { sys.cpus { min = 1 } }
step "s1" { fs.directory "./lv-out" }
R
run "$P" list lv.lua --json
expect "list --json: a check event, a step event, one variable event each with name, type, default" \
    eval '[ $RC = 0 ] && has "$OUT" "{\"event\":\"check\",\"name\":\"cpus\",\"kind\":\"sys.cpus\",\"status\":\"listed\"}" && has "$OUT" "\"event\":\"variable\",\"name\":\"port\",\"default\":8080,\"secret\":false,\"type\":\"number\"" && has "$OUT" "\"name\":\"tok\",\"default\":\"\*\*\*\*\*\*\*\*\",\"secret\":true,\"type\":\"string\""'
expect "list --json: the secret default is not in it" eval '! has "$OUT$ERR" lv-secret-default-77'
