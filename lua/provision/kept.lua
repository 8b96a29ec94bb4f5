-- provision.kept: what a check read, kept for a later check of the same run
-- to take instead of asking again. A compose recipe's steps ask the Docker
-- engine the same: the preflight's list of the project's containers is the
-- "start" step's, the one-shot step's inspect of its container is the
-- "start" step's too (docker/api.lua keeps the engine's GET answers).
--
-- Only from one check to a later one: the runner (run/calls.lua) calls
-- begin/finish around each check, and forget whenever something is applied
-- or reverted, since what was read may have changed then (docker/api.lua
-- forgets too when anything but a GET is sent). Outside a check (an apply's
-- waits and polls) nothing is kept or taken. A check never takes what it
-- read itself (a check that polls sees each answer anew), an answer is
-- taken once (the check after that asks again), and only within
-- M.max_age seconds of being read. At most MAX are kept (a plan of many
-- checks keeps no more).
local core = require "provision._core"

local M = { max_age = 1 }
local MAX = 64

local kept = {}       -- [key] = { check, time, value }
local n = 0           -- how many
local count = 0       -- checks begun
local check = false   -- the one running (its count), false when none

function M.begin() count = count + 1; check = count end
function M.finish() check = false end
function M.checking() return check ~= false end

-- put(key, value): what this check read under key (value not nil)
function M.put(key, value)
  if not check or value == nil then return end
  if not kept[key] then
    if n == MAX then M.forget() end
    n = n + 1
  end
  kept[key] = { check, core.now(), value }
end

-- take(key) -> value | nil: what an earlier check read under key, once
function M.take(key)
  if not check then return nil end
  local v = kept[key]
  if not v or v[1] == check then return nil end
  kept[key], n = nil, n - 1
  if core.now() - v[2] > M.max_age then return nil end
  return v[3]
end

function M.forget()
  if n > 0 then kept, n = {}, 0 end
end

return M
