#!/bin/bash
# At exit, provision skips Lua's walk over every object to free it (issue
# 19: core/main.c's exit_last, the first finalizer set, runs last and exits
# from there). What lua_close promised still holds: every finalizer runs,
# newest first (a recipe's own __gc, as ssh tunnels and archive working
# folders), one that fails does not stop the rest, the exit code is the
# run's, and all of stdout is written. The same with PROVISION_FREE_AT_EXIT=1
# (the valgrind tier), which frees for real.
. "$ROOT/tests/lib.sh"

cat > gc.lua <<'L'
local log = os.getenv("GC_LOG")
local function mark(what)
  return setmetatable({}, { __gc = function()
    local f = assert(io.open(log, "a")); f:write(what, "\n"); f:close()
  end })
end
first = mark("global")                         -- a global
local held = mark("upvalue")
function keep() return held end                -- an upvalue
package.loaded.kept = { mark("in a table") }   -- inside a table
setmetatable({}, { __gc = function() error("a finalizer that fails") end })
io.stdout:write(string.rep("y", 1000000))      -- no newline: exit writes it out
if os.getenv("GC_FAIL") then error("the script fails") end
L

for free in 0 1; do
    how="(PROVISION_FREE_AT_EXIT=$free)"
    rm -f log
    run env PROVISION_FREE_AT_EXIT=$free GC_LOG="$SANDBOX/log" "$P" --script gc.lua
    expect "$how a script's finalizers all run at exit, newest first" \
        test "$(cat log 2>/dev/null | tr '\n' ,)" = "in a table,upvalue,global,"
    expect "$how the exit code is the run's (0)" test "$RC" = 0
    expect "$how all of stdout is written" test "${#OUT}" = 1000000
    rm -f log
    run env PROVISION_FREE_AT_EXIT=$free GC_FAIL=1 GC_LOG="$SANDBOX/log" "$P" --script gc.lua
    expect "$how a failed script: its finalizers run too" \
        test "$(cat log 2>/dev/null | tr '\n' ,)" = "in a table,upvalue,global,"
    expect "$how a failed script exits 1" test "$RC" = 1
    expect "$how ... and says why" has "$ERR" "the script fails"
done

# the exit object collected early (a script dropping the registry's hold):
# nothing happens then, the run goes on and ends as usual
cat > drop.lua <<'L'
debug.getregistry()["provision.exit_last"] = nil
collectgarbage(); collectgarbage()
print("still running")
L
run "$P" --script drop.lua
expect "the exit object collected before the end: the run goes on, exit 0" test "$RC:$OUT" = "0:still running"
