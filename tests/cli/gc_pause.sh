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
