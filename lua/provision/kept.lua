-- provision.kept: what a check read, kept for a later check of the same run
-- to take instead of asking again. A compose recipe's steps ask the Docker
-- engine the same: the preflight's list of the project's containers is the
-- "start" step's, the one-shot step's inspect of its container is the
-- "start" step's too (docker/api.lua keeps the engine's GET answers).
--
-- Only from one check to a later one: the runner (run/calls.lua) calls
-- begin/finish around each check, and forget whenever something is applied
-- or reverted, since what was read may have changed then. Outside a check
-- (an apply's waits and polls) nothing is kept or taken. A check never
-- takes what it read itself (a check that polls sees each answer anew),
-- and an answer is taken once: the check after that asks again.
local M = {}

local kept = {}       -- [key] = { check, a, b, c }
local count = 0       -- checks begun
local check = false   -- the one running (its count), false when none

function M.begin() count = count + 1; check = count end
function M.finish() check = false end
function M.checking() return check ~= false end

-- put(key, a, b, c): what this check read under key
function M.put(key, a, b, c)
  if check then kept[key] = { check, a, b, c } end
end

-- take(key) -> a, b, c | nil: what an earlier check read under key, once
function M.take(key)
  if not check then return nil end
  local v = kept[key]
  if not v or v[1] == check then return nil end
  kept[key] = nil
  return v[2], v[3], v[4]
end

function M.forget()
  if next(kept) then kept = {} end
end

return M
