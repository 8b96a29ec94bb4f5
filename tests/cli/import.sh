#!/bin/bash
# import(path, values) (issue 17's airflow-swarm reuses the quick start
# with it): another recipe loaded on its own, its steps and checks taken by
# name; and the loader's messages that used to hide the cause (issue 18):
# an include cycle named, why a recipe cannot be opened, a recipe nested
# too deeply. Every recipe shipped in recipes/ loads with its defaults.
. "$ROOT/tests/lib.sh"
export PROVISION_STATE_DIR="$SANDBOX/.state" NO_COLOR=1

mkdir lib
cat > lib/base.lua <<'EOF'
recipe { name = "base" }
local v = vars { greeting = "hello", n = 1 }
check "always" { check = function() return true end }
step "greet" { tags = "words", fs.file { path = "out/greet", content = v.greeting .. " " .. v.n .. "\n" } }
step "other" { fs.file { path = "out/other", content = "o\n" } }
teardown { fs.absent "out" }
EOF
cat > top.lua <<'EOF'
recipe { name = "top" }
local v = vars { greeting = "hi" }
local base = import("lib/base.lua", { greeting = v.greeting })
check "always" (base.checks["always"])
step "greet" (base.steps["greet"])
step "n is" { check = function() return base.vars.n == 1, "n is " .. tostring(base.vars.n) end }
EOF
mkdir out
run "$P" top.lua
expect "import: the step taken by name runs with the values given, nothing else of it" \
    eval '[ $RC = 0 ] && [ "$(cat out/greet)" = "hi 1" ] && [ ! -e out/other ]'
run "$P" list top.lua
expect "import: its tags come along; its teardown block does not" \
    eval 'has "$OUT" "greet  (fs.file)  tags: words" && ! has "$OUT" teardown'
run "$P" teardown top.lua
expect "teardown: what the imported step made goes" eval '[ $RC = 0 ] && [ ! -e out/greet ]'

refused() { # NAME WANT(regex) FILE
    run "$P" plan "$3"
    if [ "$RC" = 2 ] && printf '%s' "$ERR" | grep -Eq -- "$2"; then pass "$1"; else fail "$1" "rc=$RC err=[$ERR]"; fi
}
printf 'recipe { name = "t" }\nlocal b = import("lib/base.lua", { greting = "x" })\n' > typo.lua
refused "import: a value for no variable: exit 2, the variables named" \
    "^provision: typo.lua:2: import: lib/base.lua declares no variable 'greting' \(variables: greeting, n\)$" typo.lua
printf 'recipe { name = "t" }\nlocal b = import("lib/nosuch.lua")\n' > missing.lua
refused "import: a file that is not there: the reason" "cannot open recipe \./lib/nosuch.lua: No such file or directory" missing.lua
printf 'recipe { name = "t" }\nlocal v = vars { n = 1 }\nstep "x" { fs.file { path = "a", content = "a", mode = 644 } }\n' > lib/bad.lua
printf 'recipe { name = "t" }\nlocal b = import("lib/bad.lua")\n' > usebad.lua
refused "import: an error in the imported file names its file:line" "lib/bad.lua:3:" usebad.lua
printf 'recipe { name = "i1" }\nlocal b = import("i2.lua")\n' > i1.lua
printf 'recipe { name = "i2" }\nlocal b = import("i1.lua")\n' > i2.lua
refused "import cycle: named" "import cycle: i1.lua -> \./i2.lua -> \./i1.lua" i1.lua

printf 'include("b.lua")\nrecipe { name = "a" }\n' > a.lua
printf 'include("a.lua")\nrecipe { name = "b" }\n' > b.lua
refused "include cycle: named, not a stack overflow" "include cycle: a.lua -> \./b.lua -> \./a.lua$" a.lua
python3 -c "print('recipe { name = \"deep\" }'); print('local x = ' + '{' * 300 + '}' * 300)" > deep.lua
refused "a recipe nested too deeply: Lua's message with the file, not 'raised a table'" \
    "^provision: deep.lua: .*(C stack overflow|too many).*" deep.lua
ln -s loop1 loop2; ln -s loop2 loop1
refused "a recipe that is a link loop: the reason" "cannot open recipe loop1: Too many levels of symbolic links" loop1
printf 'recipe { name = "x" }\n' > noread.lua; chmod 000 noread.lua; chmod 755 "$SANDBOX"
run setpriv --reuid=65534 --regid=65534 --clear-groups "$P" plan "$SANDBOX/noread.lua"
expect "a recipe that cannot be read: the reason" eval '[ $RC = 2 ] && has "$ERR" "cannot open recipe $SANDBOX/noread.lua: Permission denied"'
chmod 700 "$SANDBOX"

# every recipe shipped loads with its defaults (a default that breaks one is caught here)
for r in "$ROOT"/recipes/*.lua "$ROOT"/recipes/examples/*.lua; do
    run "$P" list "$r"
    expect "recipes: $(basename "$r") loads with its defaults" test "$RC" = 0
done
