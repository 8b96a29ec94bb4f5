-- provision.run.calls: how the runner calls resource and recipe code:
-- protected, with the shield down (an interrupt or the deadline raises
-- only there), under --timeout's deadline, the folder the checks keep
-- forgotten around what changes things; and what it returns, cleaned (an
-- error's message without our own file:line, change lines as a list).
local core = require "provision._core"
local Report = require "provision.report"
local forget_folders = require("provision._fs").forget_folders
local kept = require "provision.kept"

local M = {}

-- Errors raised inside our own Lua files carry "lua/provision/x.lua:12: "
-- prefixes that mean nothing to a user: drop them (recipe positions stay).
function M.clean_error(e)
  if e == nil then return "raised an error without a message" end
  local mt = getmetatable(e)
  if type(e) ~= "string" and type(e) ~= "number" and not (mt and mt.__tostring) then
    return ("raised a %s instead of a message"):format(type(e))
  end
  local msg = tostring(e)
  msg = msg:gsub("^[^\n]-lua/provision/[%w_/]+%.lua:%d+: ", "")
  msg = msg:gsub("\nstack traceback:.*$", "")
  return msg
end

local function normalize_changes(c)
  if c == nil then return {} end
  if type(c) == "table" then
    -- (a list of strings, as checks return: itself, not a copy; a loop of
    -- its own, not ipairs: a call less a line, in a plan of 142,000 steps
    -- of 5 lines each)
    local n, i = #c, 1
    while i <= n and type(c[i]) == "string" do i = i + 1 end
    if i > n then return c end
    local out = {}
    for k, l in ipairs(c) do out[k] = tostring(l) end
    return out
  end
  local out = {}
  for l in tostring(c):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- call resource or recipe code, protected, with the shield down (an
-- interrupt or the deadline raises in it; everywhere else the runner keeps
-- the shield up): ok, a, b | false, message
function M.call(fn, ...)
  local ok, a, b = core.exposed(fn, ...)
  if not ok then return false, M.clean_error(a) end
  return true, a, b
end

-- call for what changes things (apply, revert): the folder the checks'
-- probe keeps open is forgotten before and after (a folder on the way may
-- be another one then)
function M.changing(fn, ...)
  forget_folders()
  kept.forget()   -- (what the checks read may change: provision.kept)
  local ok, a, b = M.call(fn, ...)
  forget_folders()
  return ok, a, b
end

-- fn(...) under --timeout's deadline, kind and name saying what runs if
-- the watchdog must stop it (a SIGTERM's too, with no --timeout): timed_out,
-- fn's results
function M.timed(timeout, kind, name, fn, ...)
  core.deadline(timeout, kind, name)
  local a, b, c, d, e = fn(...)
  local late = core.timed_out()
  core.deadline(nil)
  return late, a, b, c, d, e
end

function M.timed_out_after(timeout)
  return ("timed out after %s (--timeout)"):format(Report.fmt_ms(math.floor(timeout * 1000)))
end

-- check -> true | false, changes | nil, message
function M.describe(res)
  local ok, d = pcall(res.describe, res)
  return ok and tostring(d) or res.kind
end

local exposed = core.exposed
local begin_check, finish_check = kept.begin, kept.finish
function M.run_check(res, ctx)
  begin_check()   -- (what it reads, a later check may take: provision.kept)
  local ok, a, b = exposed(res.check, res, ctx)   -- (call, written out)
  finish_check()
  if ok and a == true then return true end
  if not ok then return nil, M.clean_error(a) end
  if a == nil and b ~= nil then return nil, tostring(b) end
  if a == nil or a == false then
    local ch = normalize_changes(b)
    if #ch == 0 then ch = { M.describe(res) } end
    return false, ch
  end
  return true
end

return M
