#!/bin/bash
# tests/cli/envfile_compose.sh: a .env written by fs.env_file is read back
# exactly by docker-compose (v1, python-dotenv) and, where installed, by
# Compose v2 (compose-go): `config` must print every tricky value as given.
. "$ROOT/tests/lib.sh"

composes=""
command -v docker-compose >/dev/null 2>&1 && composes="docker-compose"
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    composes="$composes docker compose"
fi
if [ -z "$composes" ]; then
    if [ "${PROVISION_REQUIRE_DOCKER:-}" = 1 ]; then fail "envfile compose" "no docker-compose on PATH"; else skip "envfile compose" "no docker-compose"; fi
    exit 0
fi

# The values (as JSON, so the test and the reader agree byte for byte), the
# .env through the resource, and a compose file that uses each one.
cat > values.json <<'JSON'
{ "PLAIN": "airflow", "NUM": "50000", "SPACES": "with  two spaces", "HASH": "has # hash",
  "HASH_START": "#start", "SQ": "it's", "DQ": "say \"hi\"", "DQ_AROUND": "\"quoted\"",
  "DOLLAR": "$HOME", "DOLLARS": "a$$b", "EQ": "a=b==c", "BACKSLASH": "C:\\path\\n",
  "TWO_BACKSLASH": "a\\\\b", "TRAIL": "trailing  ", "LEAD": "  leading", "NL": "line1\nline2\n",
  "CRLF": "x\r\ny", "TAB": "tab\there", "UNICODE": "ünï € 日本", "EMPTY": "",
  "BOTH_QUOTES": "'\"x", "DOLLAR_DQ": "$ and \"dq\"", "BRACE_OPEN": "${not closed",
  "COLON_BRACE": "${a:b}", "SEMI": "a;b&c|d", "BACKTICK": "`cmd`" }
JSON
cat > recipe.lua <<'LUA'
local json = require "provision.json"
local fs = require "provision.fs"
local values = json.decode(fs.read("values.json"))
local ctx = { state = {} }
function ctx:created(e) end
function ctx:log() end
function ctx:detail() end
local r = fs.env_file { path = ".env", values = values }
assert(r:apply(ctx))
assert(r:check(ctx) == true, "check after apply")
local f = io.open("docker-compose.yml", "w")
f:write("version: '3'\nservices:\n  s:\n    image: busybox\n    environment:\n")
for k in pairs(values) do f:write("      ", k, ": ${", k, "}\n") end
f:close()
LUA
run "$P" --script recipe.lua
expect "fs.env_file writes the tricky values" [ "$RC" = 0 ]

check_one() { # label, command...
    label=$1; shift
    # the .env must win: no variable of the same name in the environment
    env -i PATH="$PATH" HOME="$HOME" DOCKER_HOST="${DOCKER_HOST:-}" "$@" config > config.out 2> config.err
    rc=$?
    if [ $rc -ne 0 ]; then fail "$label config" "$(cat config.err)"; return; fi
    # `config` prints a compose file: every $ of a value is written $$
    python3 - "$label" <<'PY'
import json, sys, yaml
label = sys.argv[1]
want = json.load(open("values.json"))
got = yaml.safe_load(open("config.out"))["services"]["s"]["environment"]
bad = 0
for k, v in sorted(want.items()):
    g = got.get(k)
    if isinstance(g, str):
        g = g.replace("$$", "$")
    if g != v:
        bad += 1
        print("FAIL %s reads %s back: want %r, got %r" % (label, k, v, g))
if not bad:
    print("PASS %s reads back all %d values exactly" % (label, len(want)))
PY
}
check_one docker-compose docker-compose
case "$composes" in *"docker compose"*) check_one "docker compose" docker compose ;; esac

# what cannot be written is refused before anything is written
rm -f .env
cat > bad.lua <<'LUA'
local fs = require "provision.fs"
local ok, err = pcall(fs.env_file, { path = ".env", values = { X = "${HOME}" } })
print(ok, err)
LUA
run "$P" --script bad.lua
expect "a \${...} value is refused (compose v1 expands it in any quoting)" has "$OUT" "expands whatever the quoting"
expect "nothing written for a refused value" [ ! -e .env ]
