#!/bin/bash
# bench/fs.sh: what the fs checks cost in-process: fs.file/fs.directory
# checks per second, SHA-256 throughput against sha256sum, and the unified
# diff on a 10,000-line file (scattered changes; a full rewrite).
#   bash bench/fs.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
P=${PROVISION:-$ROOT/provision}
work=$(mktemp -d /tmp/provision-bench-fs.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
head -c 268435456 /dev/urandom > big.bin

cat > b.lua <<'LUA'
local fs, D, core = require "provision.fs", require "provision.diff", require "provision._core"
local function median(f, n)
  local t = {}
  for i = 1, n do local t0 = core.now(); f(); t[i] = core.now() - t0 end
  table.sort(t); return t[(n + 1) // 2]
end
local ctx = { state = {} }
function ctx:created() end
fs.mkdir("w")
local rs = {}
for i = 1, 500 do
  rs[#rs + 1] = fs.directory("w/d" .. i)
  rs[#rs + 1] = fs.file { path = "w/f" .. i, content = ("line %d\n"):format(i):rep(50), mode = "0644" }
end
for _, r in ipairs(rs) do assert(r:apply(ctx)) end
local s = median(function() for _, r in ipairs(rs) do assert(r:check(ctx) == true) end end, 9)
print(("1,000 no-op checks (500 folders, 500 files of 400 B): median %.2f ms"):format(s * 1000))
s = median(function() fs.sha256("big.bin") end, 3)
print(("fs.sha256 of 256 MiB: median %.0f ms (%.0f MiB/s)"):format(s * 1000, 256 / s))
local t = {}
for i = 1, 10000 do t[i] = "line " .. i end
local old = table.concat(t, "\n") .. "\n"
for i = 1, 10000, 97 do t[i] = "changed " .. i end
local new = table.concat(t, "\n") .. "\n"
s = median(function() D.unified(old, new) end, 5)
print(("diff, 10,000 lines, 104 lines changed: median %.1f ms"):format(s * 1000))
local u = {}
for i = 1, 10000 do u[i] = (i % 3 == 0) and ("line " .. i) or ("other " .. i) end
local other = table.concat(u, "\n") .. "\n"
s = median(function() D.unified(old, other) end, 5)
print(("diff, 10,000 lines, 2/3 rewritten (cut-off path): median %.1f ms"):format(s * 1000))
LUA
"$P" --script b.lua
echo "sha256sum of the same 256 MiB: median $(median_ms 3 sha256sum big.bin) ms"
