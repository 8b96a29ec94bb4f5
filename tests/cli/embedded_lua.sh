#!/bin/bash
# The Lua half is embedded as bytecode (core/gen/embedgen.c) that keeps
# each file's name and line numbers, so errors and tracebacks from
# provision's own Lua still say lua/provision/x.lua:LINE, and drops the
# names of locals and upvalues (a third of a 10-step no-op's cost was
# loading them, issue 19). PROVISION_LUA_DIR=lua reads the files: names
# and all, for debugging.
. "$ROOT/tests/lib.sh"
cat > t.lua <<'L'
local yaml = require "provision.yaml"
local info = debug.getinfo(yaml.load, "S")
print("defined " .. info.short_src .. ":" .. info.linedefined)
print("local " .. tostring(debug.getlocal(yaml.load, 1)))
local _, tb = xpcall(function() return yaml.load(nil) end, debug.traceback)
print(tb)
L
LINE=$(grep -n '^function M.load(text, name)' "$ROOT/lua/provision/yaml.lua" | cut -d: -f1)
run "$P" --script t.lua
expect "an embedded function names its file and the line it is defined on" \
    eval '[ $RC = 0 ] && has "$OUT" "defined lua/provision/yaml.lua:$LINE"'
expect "a traceback through embedded Lua names its file and line" \
    eval 'grep -qE "^	lua/provision/yaml.lua:[0-9]+: in function .provision.yaml.load." <<< "$OUT"'
expect "the names of locals are not embedded" has "$OUT" "local nil"
run env PROVISION_LUA_DIR="$ROOT/lua" "$P" --script t.lua
expect "PROVISION_LUA_DIR=lua: the files, with the names of locals" \
    eval '[ $RC = 0 ] && has "$OUT" "local text" && has "$OUT" "defined $ROOT/lua/provision/yaml.lua:$LINE"'
