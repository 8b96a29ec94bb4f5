#!/bin/bash
# Where require looks (issue 13, case 6): the recipe's modules/ folder and
# PROVISION_PATH, then the system's Lua folders; never the folder provision
# runs in (Lua's defaults end with ./?.lua and ./?.so). A json.lua or
# cmod.lua lying in the working folder is not loaded.
. "$ROOT/tests/lib.sh"

# what a stray module in the working folder would do: say so, leave a mark
for m in json cmod; do
    printf 'io.stderr:write("STRAY-%s loaded\\n")\nio.open("stray-%s", "w"):close()\nreturn { stray = true }\n' "$m" "$m" > "$m.lua"
done
mkdir -p proj/modules

# the recipe's own C module beats a cmod.lua in the working folder (the Lua
# searcher runs before the C one, so ./?.lua won over modules/?.so)
cc -shared -fPIC $(pkg-config --cflags lua5.4) -Dluaopen_greet=luaopen_cmod \
    -o proj/modules/cmod.so "$ROOT/tests/cli/plugin/greet.c"
cat > proj/r.lua <<'R'
recipe { name = "paths" }
local cmod = require "cmod"
local has_json = pcall(require, "json")
step "show" { describe = cmod.hello("own") .. " json=" .. tostring(has_json), check = function() return true end }
R
run "$P" proj/r.lua
expect "the recipe's own C module is loaded, not ./cmod.lua" \
    eval '[ $RC -eq 0 ] && has "$OUT" "hello, own" && ! has "$ERR" "STRAY-cmod" && [ ! -e stray-cmod ]'
expect "require \"json\" does not load ./json.lua" \
    eval '[ $RC -eq 0 ] && has "$OUT" "json=false" && ! has "$ERR" "STRAY-json" && [ ! -e stray-json ]'

# the recipe's own Lua module, with the recipe in the working folder itself
# (its modules/ folder is ./modules): that one, not ./cmod.lua
mkdir -p modules
printf 'return { hello = function(s) return "lua module, " .. s end }\n' > modules/cmod.lua
printf 'recipe { name = "here" }\nlocal cmod = require "cmod"\nstep "show" { describe = cmod.hello("here"), check = function() return true end }\n' > here.lua
run "$P" here.lua
expect "a recipe in the working folder gets its modules/cmod.lua" \
    eval '[ $RC -eq 0 ] && has "$OUT" "lua module, here" && [ ! -e stray-cmod ]'

# --script: no recipe, no modules/ folder; the working folder is not searched either
printf 'print(pcall(require, "json"))\n' > s.lua
run "$P" --script s.lua
expect "--script: require \"json\" does not load ./json.lua" \
    eval '[ $RC -eq 0 ] && has "$OUT" "^false" && ! has "$ERR" "STRAY-json" && [ ! -e stray-json ]'
