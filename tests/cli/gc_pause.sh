#!/bin/bash
# The collector's pause (core/main.c): 1000 % while provision's own
# modules load, Lua's 200 % from the recipe's load on (Loader:run) and in
# a --script (before its chunk). A step that keeps 16 MB and churns 400 MB
# of garbage must peak near twice what is live, not ten times.
. "$ROOT/tests/lib.sh"
RC= OUT= ERR=
# (under AddressSanitizer, freed blocks wait in its quarantine, 256 MB by
# default: a peak would measure that, not the collector)
if [ -n "${ASAN_OPTIONS:-}" ]; then export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=1"; fi

cat > churn.lua <<'R'
recipe { name = "churn" }
step "churn" {
  check = function()
    local keep = {}
    for i = 1, 16 * 1024 do keep[i] = ("k"):rep(1000) .. i end   -- ~16 MB live
    for i = 1, 400 * 1024 do local _ = ("g"):rep(1000) .. i end   -- ~400 MB of garbage
    return #keep > 0
  end,
}
R
kib=$( { /usr/bin/time -f '%M' "$P" churn.lua > /dev/null; } 2>&1 | tail -n 1)
expect "a recipe: 16 MB live, 400 MB churned: peak ${kib} KiB (< 120 MiB: Lua's pause, not 1000 %)" \
    eval '[ "$kib" -gt 0 ] && [ "$kib" -lt 122880 ]'

cat > churn_script.lua <<'R'
local keep = {}
for i = 1, 16 * 1024 do keep[i] = ("k"):rep(1000) .. i end
for i = 1, 400 * 1024 do local _ = ("g"):rep(1000) .. i end
return #keep > 0 and 0 or 1
R
kib=$( { /usr/bin/time -f '%M' "$P" --script churn_script.lua > /dev/null; } 2>&1 | tail -n 1)
expect "--script: the same churn peaks at ${kib} KiB (< 120 MiB)" eval '[ "$kib" -gt 0 ] && [ "$kib" -lt 122880 ]'

# --remote reads its whole bundle (here 30 MB) before the recipe loads,
# under the start's pause: the cycle under way then began at ten times the
# start's heap, and a new pause only counts from its end. core.gc_settle
# collects such a heap at once, so the churn after it peaks near twice what
# lives (without: ~300 MB)
mkdir -p rb home
head -c 30000000 /dev/zero | tr '\0' x > rb/big.dat
cat > rb/r.lua <<'R'
recipe { name = "rb" }
step "churn" {
  check = function()
    for i = 1, 200 * 1024 do local _ = ("g"):rep(1000) .. i end
    return true
  end,
}
R
cat > mk.lua <<'L'
local bundle = require "provision.fleet.bundle"
local json = require "provision.json"
local files = { { path = "r.lua", mode = 420 }, { path = "big.dat", mode = 420 } }
local parts = {}
for i, f in ipairs(files) do
  local h = assert(io.open("rb/" .. f.path, "rb")); parts[i] = h:read("a"); h:close(); f.size = #parts[i]
end
local out = assert(io.open("bundle.bin", "wb"))
out:write(bundle.MAGIC, "\n", json.encode({ verb = "plan", recipe = "r.lua", vars = {}, flags = {}, files = files }), "\n", table.concat(parts))
out:close()
L
"$P" --script mk.lua
kib=$( { { cat bundle.bin; sleep 1; } | HOME=$SANDBOX/home /usr/bin/time -f '%M' "$P" --remote > remote.out; } 2>&1 | tail -n 1)
expect "--remote with a 30 MB bundle, then 200 MB churned: peak ${kib} KiB (< 160 MiB)" \
    eval 'grep -q "\"event\":\"summary\"" remote.out && [ "$kib" -gt 0 ] && [ "$kib" -lt 163840 ]'
