#!/bin/bash
# Compose's own .env, as provision reads it to know what Compose will do
# (compose.read_env_file: the variables interpolated into the compose file,
# COMPOSE_FILE, COMPOSE_PROFILES, COMPOSE_PROJECT_NAME). The forms the
# Compose documentation gives, read as docker-compose 1.29 (python-dotenv)
# reads them: what tests/fuzz/compose_env.c found is a quoted value followed
# by a comment, and \r and \' escapes.
. "$ROOT/tests/lib.sh"

printf '%s\n' \
    'A="x y" # a comment' \
    "B='x \$y' # a comment" \
    'C="a\rb\tc\nd\\e\"f"' \
    'D=plain#not-a-comment' \
    '  export E = v # a comment' \
    'F="q"#c' \
    "G='Let\\'s go!'" \
    'H=a\tb' \
    "I='quoted # not a comment'" \
    'J="x"   ' > .env
cat > show.lua <<'R'
local compose = require "provision.compose"
local json = require "provision.json"
io.write(json.encode(assert(compose.read_env_file(arg[1]))))
R
run "$P" --script show.lua .env
want='{"A": "x y", "B": "x $y", "C": "a\rb\tc\nd\\e\"f", "D": "plain#not-a-comment", "E": "v", "F": "q", "G": "Let'"'"'s go!", "H": "a\\tb", "I": "quoted # not a comment", "J": "x"}'
expect ".env: quoted values before a comment, \\r and \\' escapes, read as Compose reads them" \
    eval '[ $RC -eq 0 ] && python3 -c "import json,sys; got=json.loads(sys.argv[1]); want=json.loads(sys.argv[2]); assert got == want, (got, want)" "$OUT" "$want"'

# the same, checked against docker-compose v1's own reader where it is installed
if /usr/bin/python3 -c 'import dotenv' 2>/dev/null; then
    expect ".env: the same values as python-dotenv (docker-compose v1)" \
        eval '/usr/bin/python3 -c "import dotenv,json,sys; got=json.loads(sys.argv[1]); want=dict(dotenv.dotenv_values(\".env\", interpolate=False)); assert got == want, (got, want)" "$OUT"'
else
    skip ".env: the same values as python-dotenv" "python3-dotenv is not installed"
fi

# one .env reader for the project: a value with a newline, as fs.env_file
# writes it, is read back by what compose.up reads the .env with (before,
# compose.lua's own line-based reader refused it: "./.env:3: not KEY=VALUE")
mkdir multi && cd multi || exit 1
printf 'services:\n  app:\n    image: x\n    environment:\n      CERT: "${CERT}"\n      PORT: "${PORT}"\n' > docker-compose.yaml
cat > recipe.lua <<'R'
recipe { name = "env-multiline" }
step "env" { fs.env_file { path = "./.env", values = { CERT = "line1\nline2", PORT = 8080 } } }
step "read" {
  describe = "the project as compose.up loads it",
  check = function()
    local p = assert(compose.load_project { project_dir = "." })
    local e = p.services.app.environment
    assert(e.CERT == "line1\nline2", ("CERT read as %q"):format(tostring(e.CERT)))
    assert(e.PORT == "8080", ("PORT read as %q"):format(tostring(e.PORT)))
    return true
  end,
  apply = function() return true end,
}
R
run "$P" apply recipe.lua
expect "fs.env_file's multi-line value: compose reads the .env it wrote (rc 0)" \
    eval '[ $RC -eq 0 ] && has "$OUT" "read  *ok"'
printf 'A=1\nB="two\nlines" # c\nnot a pair\n' > bad.env
cat > show.lua <<'R'
print(select(2, require("provision.compose").read_env_file(arg[1])))
R
run "$P" --script show.lua bad.env
expect "a bad line after a multi-line value: named by its own line number" test "$OUT" = "bad.env:4: not KEY=VALUE"
cd .. || exit 1
