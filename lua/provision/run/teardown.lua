-- provision.run.teardown: the runner's teardown half. A teardown, or its
-- plan (teardown --plan, plan --teardown), and what `undo "step"` in a
-- teardown block runs (ctx:undo, ctx:preview_undo, ctx:recorded). It loads
-- when a run first needs it (provision.run's td()): an apply or a plan
-- that has no undo loads none of it. The runner lends it its own helpers
-- (M.bind): a step's ctx for a revert, a step's run, a failure's report,
-- the run's end.
local core = require "provision._core"
local EXIT = core.EXIT   -- exit codes: core/core.h, the CLI contract
local R = require "provision.resource"
local step_kind = require("provision.dsl.steps").kind
local calls = require "provision.run.calls"
local changing, timed, timed_out_after, describe = calls.changing, calls.timed, calls.timed_out_after, calls.describe

local M = {}

local revert_ctx, run_step, fail_step, finish, ms_since
function M.bind(runner)
  revert_ctx, run_step, fail_step = runner.revert_ctx, runner.run_step, runner.fail_step
  finish, ms_since = runner.finish, runner.ms_since
end

-- has the state something of step s that a revert would undo (its
-- resources', or what the ones it dropped or replaced made)?
function M.recorded(run, s)
  for _, item in ipairs(M.orphan_steps(run, s.name)) do
    for i, res in ipairs(item.resources) do
      if res.state_revert and next(item.saved[i]) ~= nil then return true end
    end
  end
  if not run.state:has(s.name) then return false end
  for i, res in ipairs(s.resources) do
    if res.revert and next(run.state:resource(s.name, i, res.kind)) ~= nil then return true end
  end
  return false
end

-- revert what the state recorded for step s, its resources newest first,
-- then forget the step: status ("ok" | "changed"; in a plan of teardown
-- "would-change"), detail, change lines | nil, failure { resource, reason }.
-- In a plan (run.plan) a resource's revert runs with ctx.plan only when its
-- kind says it can (plan_revert = true: it then changes nothing and says
-- what it would do); any other is "would revert (not previewed)". The teardown without a block runs it for every step
-- (and for the orphans of orphan_steps: s.saved, s.why, s.forget);
-- `undo "step"` in a teardown block, for one.
function M.revert_step(run, s)
  local status, detail = "ok", "nothing recorded"
  local left = false   -- an orphan whose revert needs the step's options
  local changes = {}   -- a plan's: what each revert would remove and leave
  local done = run.plan and "would-change" or "changed"
  run.detail = nil   -- a detail is one step's: the previous revert's must not show here
  if not (s.saved or run.state:has(s.name)) then return status, detail, changes end
  for i = #s.resources, 1, -1 do
    local res = s.resources[i]
    local saved = s.saved and s.saved[i] or run.state:resource(s.name, i, res.kind)
    if s.why and not res.state_revert and next(saved) ~= nil then
      left = true
      detail = ("left what it made (%s): %s; put it back to undo it"):format(res.kind, s.why)
    elseif res.revert and next(saved) ~= nil and run.plan and not res.plan_revert then
      status, detail = done, ("would revert %s (not previewed: %s cannot say what its revert would do)")
        :format(describe(res), res.kind)
      changes[#changes + 1] = "? " .. describe(res) .. ": would revert what it recorded (not previewed)"
    elseif res.revert and next(saved) ~= nil then
      local ctx = revert_ctx(run, s, saved)
      if run.plan then ctx.changes = changes end
      local ok, a, b = changing(res.revert, res, ctx)
      if not ok or (a == nil and b ~= nil) then
        return nil, { resource = describe(res), reason = ok and tostring(b) or a }
      end
      local verb = run.plan and "would revert " or "reverted "
      if a == false then   -- nothing to undo (its detail says why)
        if status ~= done then detail = run.detail or detail end
      else
        status, detail = done, run.detail or (verb .. describe(res))
        if s.why then detail = ("%s (%s)"):format(run.detail or (verb .. "what it made"), s.why) end
      end
    end
  end
  if not left then   -- (a plan: in memory only, the state is read-only)
    if s.forget then s.forget() else run.state:forget(s.name) end
  end
  -- the journal, not the whole state: a teardown stays linear in the steps
  local ok, err = run.state:flush()
  if not ok then return nil, { resource = "state", reason = err } end
  return status, detail, changes
end

-- what the state holds that the recipe no longer has, newest first, as
-- teardown items: the steps removed or renamed since they were applied, and
-- the resources a step has since replaced (another kind in their place, or
-- none). Each saved resource stands for itself by its kind's definition
-- (whose revert, when state_revert, needs no options). With only = the
-- name of a step of the recipe: what that step dropped or replaced.
function M.orphan_steps(run, only)
  local items = {}
  local function add(name, applied, list, why, forget, still)
    local resources, saved = {}, {}
    for i, r in ipairs(type(list) == "table" and list or {}) do
      local kind = type(r) == "table" and type(r.kind) == "string" and r.kind or "unknown"
      if not R.kinds[kind] then pcall(require, "provision." .. (kind:match("^([%w_]+)%.") or "")) end
      resources[i] = R.kinds[kind] or { kind = kind }
      saved[i] = type(r) == "table" and type(r.state) == "table" and r.state or {}
    end
    items[#items + 1] = { name = name, resources = resources, saved = saved, why = why, forget = forget,
                          still = still, applied = tonumber(applied) or 0 }
  end
  for name, st in pairs(only and {} or run.state:steps()) do
    if not run.recipe.by_name[name] then
      add(name, st.applied, st.resources, "the step is no longer in the recipe", function() run.state:forget(name) end,
          function() return run.state:has(name) end)
    end
  end
  for _, e in ipairs(run.state:replaced()) do
    if only == nil or e.step == only then
      add(tostring(e.step), e.applied, e.resources, "replaced in its step since",
          function() run.state:forget_replaced(e) end,
          function()
            for _, x in ipairs(run.state:replaced()) do if x == e then return true end end
            return false
          end)
    end
  end
  table.sort(items, function(a, b)
    if a.applied ~= b.applied then return a.applied > b.applied end
    return a.name < b.name
  end)
  return items
end

-- a teardown's exit code: 0; a plan of teardown: 3 when it would change something
local function teardown_code(run)
  return run.plan and run.counts["would-change"] > 0 and EXIT.pending or EXIT.ok
end

-- the folders an orphan made (what its records say they created), as
-- absolute paths
local function made_folders(item, cwd)
  local out = {}
  for i = 1, #item.resources do
    local created = type(item.saved[i]) == "table" and item.saved[i].created
    for _, e in ipairs(type(created) == "table" and created or {}) do
      if type(e) == "table" and e.type == "directory" and type(e.path) == "string" then
        out[#out + 1] = R.norm_path(e.path, cwd)
      end
    end
  end
  return out
end

-- does step s own a path inside one of folders
local function owns_inside(s, folders, cwd)
  return R.each_owned({ s }, function(_, _, _, p)
    if type(p) ~= "string" then return end
    local np = R.norm_path(p, cwd)
    for _, f in ipairs(folders) do
      if np:sub(1, #f + 1) == f .. "/" then return true end
    end
  end) == true
end

-- The walk of a teardown without a block: the orphans (the steps the
-- recipe dropped, the resources it replaced) first, newest first, as what
-- they made may sit in the recipe's own folders; then the recipe's steps,
-- newest first. An orphan that made a folder a step of the recipe still
-- puts something in goes right after the last such step instead: what the
-- step made is gone by then, and the folder empty (a dropped fs.directory
-- step with a kept fs.file inside was left "not empty" otherwise)
local function orphans_first(orphans, steps)
  local cwd = core.cwd() or "/"
  local first, after = {}, {}
  for _, o in ipairs(orphans) do
    local folders = made_folders(o, cwd)
    local last
    if #folders > 0 then
      for _, s in ipairs(steps) do
        if owns_inside(s, folders, cwd) then last = s end
      end
    end
    if last then
      after[last] = after[last] or {}
      table.insert(after[last], o)
    else
      first[#first + 1] = o
    end
  end
  local out = first
  for _, s in ipairs(steps) do
    out[#out + 1] = s
    for _, o in ipairs(after[s] or {}) do out[#out + 1] = o end
  end
  return out
end

-- teardown, or with run.plan its plan (teardown --plan, plan --teardown):
-- the same walk, every check and revert answering what it would do, and
-- nothing changed, not the state (opened read-only, no lock taken)
function M.teardown(run)
  local recipe = run.recipe
  -- the resources a step has dropped or replaced since its last apply: their
  -- records join those of the ones dropped before (state.replaced)
  for _, s in ipairs(recipe.steps) do run.state:retire(s.name, s.resources) end
  if recipe.teardown then
    -- the recipe says how: each teardown resource is brought to its state.
    -- Then what the recipe can no longer name is undone, as the teardown
    -- without a block undoes it: the steps removed or renamed since they
    -- were applied, the resources a step dropped or replaced (an `undo` in
    -- the block may have done some of those already)
    local items = {}
    for _, res in ipairs(recipe.teardown.resources) do
      items[#items + 1] = { name = describe(res), resources = { res }, where = recipe.teardown.where, kind = res.kind }
    end
    for _, o in ipairs(M.orphan_steps(run)) do
      o.kind = step_kind(o)
      items[#items + 1] = o
    end
    run.report:start({ name = recipe.name, steps = items }, "teardown", #items)
    for i, s in ipairs(items) do
      run.report:before(s)
      local t0 = core.now()
      run.step_t0 = t0
      local status, detail, changes, failure, late
      if s.forget then   -- an orphan
        changes = {}
        if s.still() then
          local st, d, ch
          late, st, d, ch = timed(run.o.timeout, "step", s.name, M.revert_step, run, s)
          if st then status, detail, changes = st, d, ch else status, failure = "failed", d end
        else
          status, detail = "ok", "undone by the block already"
        end
      else
        late, status, detail, changes, failure = timed(run.o.timeout, "step", s.name, run_step, run, s)
      end
      if status == "failed" and late then failure.reason = timed_out_after(run.o.timeout) end
      local ms = ms_since(t0)
      if status == "failed" then
        fail_step(run, "teardown", s, i, ms, changes, failure)
        run.counts.not_run = #items - i
        return finish(run, core.interrupted() and EXIT.interrupted or EXIT.failed)
      end
      run.counts[status] = run.counts[status] + 1
      run.report:step(i, s, status, ms, detail, changes)
    end
    -- the block was the teardown: what the steps recorded, and what the
    -- resources they dropped or replaced recorded, is done with
    for _, s in ipairs(recipe.steps) do
      run.state:forget(s.name)
      for _, o in ipairs(M.orphan_steps(run, s.name)) do o.forget() end
    end
    return finish(run, teardown_code(run))
  end
  -- no teardown block: revert what the state shows, newest first; first
  -- the steps it holds that the recipe no longer has (removed or renamed
  -- since: what they made may sit in the recipe's own folders), and the
  -- resources the steps have dropped or replaced. With --only or --from,
  -- just the selected steps (and what they dropped or replaced)
  local partial = run.partial
  local steps, skip = {}, {}
  for i = #recipe.steps, 1, -1 do
    local s = recipe.steps[i]
    if not run.selected[i] then skip[s] = true
    elseif partial then
      for _, o in ipairs(M.orphan_steps(run, s.name)) do steps[#steps + 1] = o end
    end
    steps[#steps + 1] = s
  end
  if not partial then steps = orphans_first(M.orphan_steps(run), steps) end
  run.report:start({ name = recipe.name, steps = steps }, "teardown", #steps)
  for n, s in ipairs(steps) do
    local t0 = core.now()
    run.step_t0 = t0
    if not s.kind then rawset(s, "kind", step_kind(s)) end   -- (as run.lua's loop)
    if skip[s] then
      run.counts.skipped = run.counts.skipped + 1
      run.report:step(n, s, "skipped", 0)
      goto next
    end
    run.report:before(s)
    local late, status, detail, changes = timed(run.o.timeout, "step", s.name, M.revert_step, run, s)
    if not status then
      if late then detail.reason = timed_out_after(run.o.timeout) end
      fail_step(run, "teardown", s, n, ms_since(t0), {}, detail)
      run.counts.not_run = 0   -- the selected ones after it
      for j = n + 1, #steps do
        if not skip[steps[j]] then run.counts.not_run = run.counts.not_run + 1 end
      end
      return finish(run, core.interrupted() and EXIT.interrupted or EXIT.failed)
    end
    run.counts[status] = run.counts[status] + 1
    run.report:step(n, s, status, ms_since(t0), detail, changes)
    ::next::
  end
  return finish(run, teardown_code(run))
end

return M
