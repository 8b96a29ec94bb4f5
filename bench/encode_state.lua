-- bench/encode_state.lua: json.encode of a state file, as a run's state
-- save does it (big_recipe.sh ENCODE=1 runs it after the first apply).
-- Prints the median of 5 encodes (CPU seconds) and how far the peak RSS
-- rose over them (MiB): "s MiB".
--   provision --script bench/encode_state.lua .provision/big.json
local json = require "provision.json"
local f = assert(io.open(assert(arg[1], "a state file"), "r"))
local data = assert(json.decode(f:read("a")))
f:close()
local function hwm()
  for l in io.lines("/proc/self/status") do
    local kb = l:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end
collectgarbage()
local before, times = hwm(), {}
for i = 1, 5 do
  local t = os.clock()
  assert(#json.encode(data) > 0)
  times[i] = os.clock() - t
end
table.sort(times)
print(("%.3f %.1f"):format(times[3], (hwm() - before) / 1024))
