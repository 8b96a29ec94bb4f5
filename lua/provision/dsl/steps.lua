-- provision.dsl.steps: the two resources a recipe makes without a module:
-- a custom step (its own check/apply/revert functions) and `undo "step"`
-- in a teardown block.
local R = require "provision.resource"

local M = {}

-- a custom step: a resource made of the step's own functions
local Custom = { kind = "custom" }
Custom.__index = Custom
setmetatable(Custom, R.Resource)
function Custom:describe() return self.text or "custom step" end
function Custom:check(ctx)
  if not self.check_fn then return false, "no check: always applied" end
  return self.check_fn(ctx)
end
function Custom:apply(ctx)
  if not self.apply_fn then return nil, "check failed and the step has no apply" end
  return self.apply_fn(ctx)
end
function Custom:revert_fn_wrapper(ctx) return self.revert_fn(ctx) end
function Custom:prefetch_fn_wrapper() return self.prefetch_fn() end

-- custom(body) -> the resource of a step body with check/apply functions
function M.custom(t)
  local c = setmetatable({ text = t.describe, check_fn = t.check, apply_fn = t.apply, revert_fn = t.revert,
                           prefetch_fn = t.prefetch, write_paths = t.writes, read_paths = t.reads }, Custom)
  if t.writes then c.writes = R.paths_of("write_paths") end
  if t.reads then c.reads = R.paths_of("read_paths") end
  if t.revert then c.revert = Custom.revert_fn_wrapper end
  if t.prefetch then c.prefetch = Custom.prefetch_fn_wrapper; R.prefetching = true end
  return c
end

-- `undo "step"`, in a teardown block: revert what the state recorded for
-- that step of the recipe, exactly as the teardown without a block does
-- (the runner's ctx:recorded and ctx:undo). A teardown block can so remove
-- only what a step created: an image it imported, not one that was there.
local Undo = { kind = "undo" }
Undo.__index = Undo
setmetatable(Undo, R.Resource)
function Undo:describe() return ("undo step '%s'"):format(self.step) end
function Undo:check(ctx)
  if not ctx:recorded(self.step) then return true end
  if ctx.plan and ctx.preview_undo then   -- a plan of teardown: what it would undo
    local would, lines = ctx:preview_undo(self.step)
    if would == nil then return nil, lines end
    if not would then return true end
    if #lines > 0 then return false, lines end
  end
  return false, ("revert what step '%s' created"):format(self.step)
end
function Undo:apply(ctx) return ctx:undo(self.step) end
-- what undo leaves (a custom step's work) stays recorded: its own result
-- decides, not a second check
function Undo.unverifiable() return true end

-- no tags: one table for every step without (read-only)
local NO_TAGS = setmetatable({}, { __newindex = function() error("a step's tags are read-only", 2) end })

-- tags(v) -> a step's tags (or on_change names) as a list (one alone, a
-- list, or none: {}); the loader has checked each (provision.dsl.validate)
function M.tags(v)
  if v == nil then return NO_TAGS end
  if type(v) == "string" then return { v } end
  local out = {}
  for i, t in ipairs(v) do out[i] = t end
  return out
end

-- A step's where, its recipe line, is one integer: the number of its file
-- (M.file) * 2^32 + the line. M.where(w) makes the "file:line" of it when a
-- message needs it. A string a step was 3 of a declaration's 6 allocations:
-- "file:line" and the line's digits (garbage at once), and a 142,000-step
-- recipe's string table doubled (its load: 22 MB and ~25 % of its time).
-- Other declarations (checks, vars, teardown, undo) keep a string: M.where
-- gives a string back as it is.
local file_names, file_numbers = {}, {}
-- file(short_src) -> its number (a recipe file's: Loader:at)
function M.file(src)
  local n = file_numbers[src]
  if not n then
    n = #file_names + 1
    file_names[n], file_numbers[src] = src, n
  end
  return n
end
function M.where(w)
  local file = math.type(w) == "integer" and file_names[w >> 32]
  if not file then return tostring(w) end
  return file .. ":" .. (w & 0xffffffff)
end

-- new(name, where) -> a step of the recipe before its body: { name, where,
-- resources = false, kind = false }, with room for its one resource at [1].
-- step "name" makes it (dsl/loader.lua), and the body fills it in (step):
-- the step's table is the one thing a declaration makes, no closure to
-- hold the name and line until the body comes.
function M.new(name, where)
  return { false, name = name, resources = false, where = where, kind = false }
end

-- step(s, resources, body) -> s, a step of the recipe: { name, resources,
-- where, kind, tags, on_change } (body: its tags and on_change, checked).
-- tags and on_change are absent when none (readers say `s.tags or {}`),
-- and kind, the runner's "fs.file" or "a+b", is filled in here for a step
-- of one resource (nil else): the usual step has 4 named fields, not 5
-- (Lua sizes a table's fields by powers of 2: 128 bytes a step less, 142,000
-- steps: 18 MB). A step of one resource is its own list of resources: the
-- resource is s[1] and s.resources is s (#, ipairs and [i] read it as the
-- list they read), not a table of its own (56 bytes a step less, and one
-- object fewer for the collector to trace: a 142,000-step recipe, 8 MB)
function M.step(s, resources, body)
  if resources[2] == nil and resources[1] ~= nil then
    s[1], s.resources, s.kind = resources[1], s, resources[1].kind
  else
    s[1], s.resources, s.kind = nil, resources, nil
  end
  -- (rawset: a declared step refuses a new field, dsl/loader.lua)
  if body.tags ~= nil then rawset(s, "tags", M.tags(body.tags)) end
  if body.on_change then rawset(s, "on_change", M.tags(body.on_change)) end
  return s
end

function M.undo(step, where) return setmetatable({ step = step, where = where }, Undo) end
function M.is_undo(res) return getmetatable(res) == Undo end
M.Undo = Undo   -- (the loader compares a resource's metatable with it)

-- kind(s): what a step is made of, as the report names it: its one
-- resource's kind, or the kinds of its resources, each once ("a+b")
function M.kind(s)
  if #s.resources == 1 then return s.resources[1].kind end
  local kinds, seen = {}, {}
  for _, r in ipairs(s.resources) do
    if not seen[r.kind] then seen[r.kind] = true; kinds[#kinds + 1] = r.kind end
  end
  return table.concat(kinds, "+")
end

return M
