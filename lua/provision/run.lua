-- provision.run: the step runner. plan runs checks only and writes nothing;
-- apply runs, per resource, check -> apply where needed -> check again (a
-- resource still unsatisfied after its apply fails the step); teardown runs
-- the recipe's teardown block, or else reverts what the state says this
-- recipe created, newest first (provision.run.teardown, loaded then). One
-- lock per state folder keeps two runs on one project apart.
local core = require "provision._core"
local EXIT = core.EXIT   -- exit codes: core/core.h, the CLI contract
local dsl = require "provision.dsl"
local Report = require "provision.report"
local State = require "provision.state"
local secret = require "provision.secret"
local R = require "provision.resource"
local selection = require "provision.selection"
local steps = require "provision.dsl.steps"
local step_kind = steps.kind
local batch = require "provision.batch"
-- provision.planned (plan: what the steps before would write) loads when a
-- plan first needs it (every module loaded costs each run its start)
local planned_m
local function planned() planned_m = planned_m or require "provision.planned"; return planned_m end

local M = {}

local calls = require "provision.run.calls"
local clean_error, changing, timed = calls.clean_error, calls.changing, calls.timed
local timed_out_after, describe, run_check, call = calls.timed_out_after, calls.describe, calls.run_check, calls.call

-- provision.run.teardown, the runner's teardown half (and what ctx:undo
-- calls), loads when a run first needs it: an apply's or a plan's start
-- loads less bytecode (issue 19). It borrows the runner's own helpers
-- below (td(): they are defined by then)
local teardown_m, lend
local function td()
  if not teardown_m then
    teardown_m = require "provision.run.teardown"
    teardown_m.bind(lend())
  end
  return teardown_m
end

-- saved[i], resource i's { kind, state }: its state is fetched from the
-- state file the first time it is wanted (a no-op's check seldom does: a
-- 10,000-step state then decodes none of its records)
local function saved_state(run, s, i, sv)
  local st = sv.state
  if st == nil then
    st = run.state and run.state:resource(s.name, i, sv.kind) or {}
    sv.state = st
  end
  return st
end
-- every resource's, before the step's records are written
local function fetch_saved(run, s, saved)
  for i, sv in ipairs(saved) do saved_state(run, s, i, sv) end
end

local Ctx = {}
Ctx.__index = Ctx
function Ctx:created(entry)
  self.state.created = self.state.created or {}
  table.insert(self.state.created, entry)
end
function Ctx:log(line)
  -- a revert in a plan of teardown: its lines are the step's change lines
  if self.changes then self.changes[#self.changes + 1] = secret.mask(tostring(line)); return end
  self.run.report:log(secret.mask(tostring(line)))
end
-- a plan of teardown: what the reverts before this one would remove (a
-- folder whose files would go first would be empty by then)
function Ctx:plan_remove(path)
  self.run.plan_gone = self.run.plan_gone or {}
  self.run.plan_gone[R.norm_path(path, core.cwd() or "/")] = true
end
function Ctx:plan_removed(path)
  return self.run.plan_gone ~= nil and self.run.plan_gone[R.norm_path(path, core.cwd() or "/")] == true
end
function Ctx:detail(text) self.run.detail = text end
function Ctx:progress(done, total, label)
  self.run.bytes = done
  self.run.report:progress(label or self.step.name, done, total, self.t0)
end
function Ctx:spin(label) self.run.report:spin(label or self.step.name, self.t0) end
function Ctx.interrupted() return (core.interrupted()) end
function Ctx:planned(path)
  if not self.run.plan or not self.run.plan_writes then return nil end
  return planned().lookup(self.run, path)   -- the last write's
end
-- in plan: would a step before this one change something (and so perhaps
-- make what this one's check finds missing: a user, a folder)?
function Ctx:earlier_change()
  return self.run.plan and (self.run.counts["would-change"] or 0) > 0
end
-- for `undo "step"` in a teardown block: is something of that step recorded;
-- revert it as the teardown without a block would (true: something undone)
function Ctx:recorded(step_name)
  local s = self.run.recipe.by_name[step_name]
  return s ~= nil and td().recorded(self.run, s)
end
function Ctx:undo(step_name)
  local s = self.run.recipe.by_name[step_name]
  if not s then return nil, ("no step named '%s'"):format(step_name) end
  -- what its dropped or replaced resources made first, as teardown does
  local items = td().orphan_steps(self.run, step_name)
  items[#items + 1] = s
  local changed, details = false, {}
  for _, item in ipairs(items) do
    local status, detail = td().revert_step(self.run, item)
    if not status then return nil, ("step '%s': %s: %s"):format(step_name, detail.resource, detail.reason) end
    -- what an orphan left says why; the step's own "nothing recorded" only alone
    if item ~= s or status == "changed" or #details == 0 then details[#details + 1] = detail end
    changed = changed or status == "changed"
  end
  self.run.detail = ("step '%s': %s"):format(step_name, table.concat(details, "; "))
  return changed
end

-- in a plan of teardown, for `undo "step"`: what undo would do, as the
-- change lines of the reverts it would run -> would (true|false), lines |
-- nil, message
function Ctx:preview_undo(step_name)
  local s = self.run.recipe.by_name[step_name]
  if not s then return nil, ("no step named '%s'"):format(step_name) end
  local items = td().orphan_steps(self.run, step_name)
  items[#items + 1] = s
  local would, lines = false, {}
  for _, item in ipairs(items) do
    local status, detail, changes = td().revert_step(self.run, item)
    if not status then return nil, ("step '%s': %s: %s"):format(step_name, detail.resource, detail.reason) end
    would = would or status == "would-change"
    for _, l in ipairs(changes or {}) do lines[#lines + 1] = l end
  end
  return would, lines
end

-- a file the recipe created that another record of the state holds (a step
-- renamed or removed since, a resource replaced) and this resource now
-- rewrites: that record lets go of it (true), this one records it
function Ctx:adopt(path)
  local cwd = core.cwd() or "/"
  local want = R.norm_path(path, cwd)
  local state = self.run.state
  local lists = {}
  for name, st in pairs(state:steps()) do lists[#lists + 1] = { st.resources, name } end
  for _, e in ipairs(state:replaced()) do lists[#lists + 1] = { e.resources } end
  for _, item in ipairs(lists) do
    for _, r in ipairs(type(item[1]) == "table" and item[1] or {}) do
      local created = type(r) == "table" and r.state ~= self.state and type(r.state) == "table" and r.state.created
      for i, c in ipairs(type(created) == "table" and created or {}) do
        if type(c) == "table" and c.type == "file" and type(c.path) == "string" and R.norm_path(c.path, cwd) == want then
          table.remove(created, i)
          if item[2] then state:touched(item[2]) else state:touched_replaced() end
          return true
        end
      end
    end
  end
  return false
end

-- what this step's resources recorded so far, into the state's journal now
-- (before a long transfer: the name of its part file; a write's intent:
-- batch.lua), not only when the step ends; nothing in plan
function Ctx:checkpoint()
  local run = self.run
  if run.plan or not run.state or not run.current_saved then return true end
  fetch_saved(run, self.step, run.current_saved)
  return batch.checkpoint(run, self.step.name, run.current_saved, self.sync_later)
end

-- ctx's methods are the runner's bookkeeping, called from resource code:
-- the shield goes up while they run (not stopped half way through a journal
-- write); what they call back (ctx:undo's reverts) lowers it again
for name, fn in pairs(Ctx) do
  if type(fn) == "function" then Ctx[name] = function(...) return core.shielded(fn, ...) end end
end

-- a step's ctx: its .state is saved[i]'s, fetched when first read, and
-- what is the run's or the step's (.plan, .sync_later, .t0, ...) read from
-- them (a table of 4 fields: a 10,000-step no-op makes 10,000)
local FROM_RUN = { plan = function(c) return c.run.plan end, verbose = function(c) return c.run.o.verbose end,
                   json = function(c) return c.run.o.json end, timeout = function(c) return c.run.o.timeout end,
                   sync_later = function(c) return c.step.sync_later end, t0 = function(c) return c.run.step_t0 end }
local LazyCtx = { __index = function(ctx, k)
  if k == "state" then
    local st = saved_state(ctx.run, ctx.step, ctx.index, ctx.saved)
    rawset(ctx, "state", st)
    return st
  end
  local f = FROM_RUN[k]
  if f then return f(ctx) end
  return Ctx[k]
end }
local function step_ctx(run, step, i, sv)
  return setmetatable({ run = run, step = step, index = i, saved = sv }, LazyCtx)
end
-- a revert's ctx: a step's, with the state given (saved: what the state
-- file recorded of the resource, or an orphan's record)
local function revert_ctx(run, step, saved)
  local ctx = step_ctx(run, step)
  rawset(ctx, "state", saved or {})
  return ctx
end

local function ms_since(t0) return math.floor((core.now() - t0) * 1000 + 0.5) end

-- Early checks. A resource (or a custom step) with a prefetch hook starts
-- its check's slow part once the preflight checks have passed: http.expect
-- sends its GET, and the server answers while the steps before are
-- checked. The check gets what prefetch gave as ctx.early, and uses it
-- only as that resource's own check would have: the answer of a whole
-- reply, else it asks again. An apply that ran (in any step before, or in
-- this step, before this resource) drops every early answer still
-- waiting: it may have changed what they answered. A plan changes nothing,
-- so its checks use them all. A hook is recipe code: run as a check is
-- (protected, interruptible, under --timeout), and a hook that fails leaves
-- its check to ask (and say why); -v shows the failure.
-- EARLY_MAX: the first ones only (each holds a connection, a descriptor,
-- until its check: a recipe of many would take the run's descriptors)
local EARLY_MAX = 32
local function start_early(run)
  local early, n = nil, 0
  for i, s in ipairs(run.recipe.steps) do
    if run.selected[i] and not s.on_change then   -- (a step that may not run asks nothing)
      for _, res in ipairs(s.resources) do
        if res.prefetch then
          local late, ok, e = timed(run.o.timeout, "prefetch", s.name, call, res.prefetch, res)
          if not ok then run.report:log(("prefetch of step '%s': %s"):format(s.name, secret.mask(tostring(e)))) end
          if late or core.interrupted() then run.early = early; return end
          if ok and e ~= nil then
            early = early or {}
            early[res] = e
            n = n + 1
            if n == EARLY_MAX then run.early = early; return end
          end
        end
      end
    end
  end
  run.early = early
end
local function close_early(e)
  if type(e) == "table" or type(e) == "userdata" then
    local close = e.close
    if close then pcall(close, e) end
  end
end
local function drop_early(run)
  if not run.early then return end
  for _, e in pairs(run.early) do close_early(e) end
  run.early = nil
end

-- run one step (apply or plan) -> status, detail, changes, failure{resource, reason}
local NONE = setmetatable({}, { __newindex = function() error("read-only", 2) end })
local function run_step(run, s)
  local changes_all, status = NONE, "ok"   -- (a table of its own at the first change)
  -- every resource's saved table, the ones a failure stops before too: the
  -- step's state is saved whole, and what they created must stay recorded
  local resources, saved = s.resources, {}
  for i = 1, #resources do saved[i] = { kind = resources[i].kind } end
  run.current_saved = not s.preflight and saved or nil   -- for ctx:checkpoint
  run.detail, run.bytes = nil, nil
  for i = 1, #resources do
    local res = resources[i]
    local ctx = step_ctx(run, s, i, saved[i])
    local early = run.early and run.early[res]
    if early then run.early[res] = nil; rawset(ctx, "early", early) end
    local ok, changes = run_check(res, ctx)
    if early then rawset(ctx, "early", nil); close_early(early) end
    -- an input an earlier step would write: a change to come, also when the
    -- check could not read it yet (an archive a step before downloads)
    if ok ~= false and run.plan and res.apply and not s.preflight then
      local dep = planned().input_changes(run, res, ctx)
      if dep then ok, changes = false, dep end
    end
    if ok == nil then
      return "failed", nil, changes_all, { resource = describe(res), reason = changes }, saved
    end
    if not ok then
      -- (one resource's list is the step's, not copied; the runner only reads it)
      if changes_all == NONE then changes_all = #resources == 1 and changes or {} end
      if changes_all ~= changes then
        for _, l in ipairs(changes) do changes_all[#changes_all + 1] = l end
      end
      if s.preflight or not res.apply then
        -- a preflight check, or a check-only resource: nothing to apply
        return "failed", nil, changes_all, { resource = describe(res), reason = table.concat(changes, "\n") }, saved
      elseif run.plan then
        status = "would-change"
        planned().note(run, res)
      else
        local aok, a, b = changing(res.apply, res, ctx)
        run.dirty_step = true
        drop_early(run)   -- (what they answered may have changed)
        if not aok or (a == nil and b ~= nil) then
          return "failed", nil, changes_all, { resource = describe(res), reason = aok and tostring(b) or a }, saved
        end
        local ok2, ch2 = true, nil
        local skip = res.unverifiable and select(2, pcall(res.unverifiable, res)) == true
        if not skip then ok2, ch2 = run_check(res, ctx) end
        if ok2 == nil then
          return "failed", nil, changes_all, { resource = describe(res), reason = "checking after apply: " .. ch2 }, saved
        elseif not ok2 then
          return "failed", nil, changes_all, { resource = describe(res),
            reason = "still not in the desired state after apply:\n" .. table.concat(ch2, "\n") }, saved
        end
        status = "changed"
      end
    end
  end
  local detail = run.detail
  if not detail then
    if status == "ok" or #changes_all == 0 then
      -- (what the report will not show is not worded: -q's ok steps)
      detail = #s.resources == 1 and run.report:shows_step(status) and describe(s.resources[1]) or nil
    else
      detail = changes_all[1]
      if #changes_all > 1 then detail = detail .. " (+" .. (#changes_all - 1) .. " more)" end
    end
  end
  return status, detail, changes_all, nil, saved
end

local function new_counts()
  return { ok = 0, changed = 0, ["would-change"] = 0, failed = 0, skipped = 0 }
end

local function finish(run, code)
  drop_early(run)
  if run.state then
    local ok, err = run.state:flush()   -- (the batch's too: batch.lua)
    if ok then ok, err = run.state:save() end
    ok, err = batch.finish(run, ok, err)
    if not ok then
      if run.unsaved and #run.unsaved > 0 then
        err = err .. "\n  what these steps created is not recorded, so teardown will not remove it: "
          .. table.concat(run.unsaved, ", ")
      end
      run.report:err("provision: " .. err .. "\n")
      if code == EXIT.ok then code = EXIT.failed end
    end
  end
  if core.interrupted() then
    run.report:err("provision: interrupted\n")
    code = EXIT.interrupted
  end
  run.report:summary(run.counts, run.verb)
  if run.state then run.state:close() end
  return code
end

local function fail_step(run, kind, s, i, ms, changes, failure)
  run.counts.failed = run.counts.failed + 1
  local reason = failure.reason
  if core.interrupted() then reason = "interrupted" end
  if kind == "check" then
    run.report:check(s, "failed", ms, reason)
  else
    run.report:step(i, s, "failed", ms, reason:match("^[^\n]*"), changes)
  end
  run.report:failure(kind, s.name, steps.where(s.where), failure.resource, reason)
end

-- every preflight check runs, so that one run names every problem (a busy
-- port and too little memory), not one per attempt
local function preflight(run)
  local all_ok = true
  for _, c in ipairs(run.recipe.checks) do
    if core.interrupted() then return false end
    local t0 = core.now()
    run.step_t0 = t0
    c.preflight = true  -- never applied, in plan as in apply
    local late, status, detail, changes, failure = timed(run.o.timeout, "check", c.name, run_step, run, c)
    if status == "failed" then
      if late then failure.reason = timed_out_after(run.o.timeout) end
      fail_step(run, "check", c, nil, ms_since(t0), changes, failure)
      all_ok = false
    else
      run.report:check(c, "ok", ms_since(t0), detail)
    end
  end
  return all_ok
end

-- the selected steps from index `from` on, which this run will not reach
local function not_run(run, from)
  local n = 0
  for j = from, #run.recipe.steps do
    if run.selected[j] then n = n + 1 end
  end
  run.counts.not_run = n
end

-- on_change: why step s runs in this run (a step it watches changed, or
-- would in plan; or an earlier run noted a change it did not get to), or
-- nil when it does not
local function change_trigger(run, s)
  for _, n in ipairs(s.on_change) do
    if run.changed[n] then return ("'%s' %s"):format(n, run.plan and "would change" or "changed") end
  end
  if run.state and run.state:notified(s.name) then
    return "a change an earlier run made before it stopped"
  end
end

-- after step s ends with status: the steps watching it are noted (in the
-- state, at once: a run stopped before them still runs them next time)
local function note_change(run, s, status)
  local watchers = run.watchers[s.name]   -- (only a watched step's: a plan of 142,000 keeps none)
  if not watchers or status ~= "changed" and status ~= "would-change" then return end
  run.changed[s.name] = true
  if run.plan or not run.state then return end
  for _, w in ipairs(watchers) do run.state:notify(w) end
end

local function apply_or_plan(run)
  local recipe = run.recipe
  -- on_change: a step's name -> the steps that watch it (made once: a run
  -- of many changed steps must not scan every step for each of them)
  run.changed, run.watchers = {}, {}
  if recipe.on_change_declared ~= false then   -- (false: the loader saw no step with on_change)
    for _, w in ipairs(recipe.steps) do
      for _, n in ipairs(w.on_change or {}) do
        run.watchers[n] = run.watchers[n] or {}
        table.insert(run.watchers[n], w.name)
      end
    end
  end
  run.report:start(recipe, run.verb, #recipe.steps)
  if not preflight(run) then
    not_run(run, 1)
    return finish(run, core.interrupted() and EXIT.interrupted or EXIT.failed)
  end
  -- (after the preflight checks: one that refuses the run, say a port held
  -- by another's process, has no request sent to it)
  if R.prefetching then start_early(run) end
  -- (what every step reads, in locals: a 10,000-step no-op is this loop)
  local selected, counts, report, timeout, now = run.selected, run.counts, run.report, run.o.timeout, core.now
  local shown = report.json or not report.quiet   -- does an ok step get a line (report:shows_step)
  for i, s in ipairs(recipe.steps) do
    if not s.kind then rawset(s, "kind", step_kind(s)) end   -- (a declared step refuses a new field)
    if core.interrupted() then   -- between steps: stop before the next one
      not_run(run, i)
      return finish(run, EXIT.interrupted)
    end
    local trigger = selected[i] and s.on_change and change_trigger(run, s)
    if not selected[i] then
      run.counts.skipped = run.counts.skipped + 1
      run.report:step(i, s, "skipped", 0)
    elseif s.on_change and not trigger then
      run.counts.skipped = run.counts.skipped + 1
      run.report:step(i, s, "skipped", 0, ("runs when %s changes; none did"):format(table.concat(s.on_change, " or ")))
    else
      -- (the batch on disk before a step of another kind; else finish says why)
      report:before(s)   -- (the lines held before it out first, unless s writes files only)
      if not batch.before_step(run, s) then not_run(run, i); return finish(run, EXIT.failed) end
      local t0 = now()
      run.step_t0, run.dirty_step = t0, false
      local late, status, detail, changes, failure, saved = timed(timeout, "step", s.name, run_step, run, s)
      if status == "failed" and late then failure.reason = timed_out_after(timeout) end
      if run.dirty_step and run.state then
        -- Into the journal at once (a write per changed step; the state
        -- file itself is rewritten and fsync'd at the end, in finish): a
        -- crash or SIGKILL loses only the step it was in. A file step's
        -- line may wait for its batch (batch.lua)
        fetch_saved(run, s, saved)
        run.state:set_step(s.name, saved)
        local ok, err, held = batch.record(run, s, status ~= "failed" and not trigger and not run.watchers[s.name], t0)
        if not ok then
          run.unsaved = run.unsaved or {}
          if not held then run.unsaved[#run.unsaved + 1] = s.name end
          if status ~= "failed" then status, failure = "failed", { resource = "state", reason = err } end
        end
      end
      local ms = ms_since(t0)
      if trigger then
        if status == "failed" then
          if not run.plan then run.state:notify(s.name); run.state:flush() end   -- still to run
        else
          if not run.plan then run.state:clear_notified(s.name); run.state:flush() end
          detail = (detail and (detail .. "; ") or "") .. "on change: " .. trigger
        end
      end
      if status ~= "ok" then note_change(run, s, status) end
      if status == "failed" then
        batch.flush(run)   -- what the batch wrote is on disk before the failure is told
        fail_step(run, "step", s, i, ms, changes, failure)
        not_run(run, i + 1)
        return finish(run, core.interrupted() and EXIT.interrupted or EXIT.failed)
      end
      counts[status] = counts[status] + 1
      if shown or status ~= "ok" then
        report:step(i, s, status, ms, detail, changes, run.bytes and { bytes = run.bytes } or nil)
      end
    end
  end
  if run.plan then return finish(run, run.counts["would-change"] > 0 and EXIT.pending or EXIT.ok) end
  return finish(run, EXIT.ok)
end

function lend()
  return { revert_ctx = revert_ctx, run_step = run_step, fail_step = fail_step, finish = finish, ms_since = ms_since }
end

function M.main(o)
  core.shield(true)   -- our own code from here on: only calls.call (changing, run_check) and the load lower it
  local report = Report.new(o)
  if o.trace then report:trace_commands(require("provision.exec").show_argv) end   -- -vv: every command shown
  -- loading runs recipe code: it gets a step's deadline
  local late, ok, recipe, err = timed(o.timeout, "loading", o.recipe, core.exposed, dsl.load, o.recipe,
                                      { vars = o.vars })
  if not ok then recipe, err = nil, recipe end
  if not recipe then
    if core.interrupted() then report:err("provision: interrupted\n"); return EXIT.interrupted end
    if late then report:err(("provision: loading %s %s\n"):format(o.recipe, timed_out_after(o.timeout))); return EXIT.failed end
    report:err("provision: " .. clean_error(err) .. "\n")
    return EXIT.usage
  end
  if o.verb == "list" then return require("provision.cli.list").main(recipe, report) end
  local selected, partial = selection.select(recipe, o)
  if not selected then report:err("provision: " .. partial .. "\n"); return EXIT.usage end
  if o.verb == "teardown" and recipe.teardown and selection.any(o) then
    report:err("provision: --only, --skip, --tags, --skip-tags and --from choose steps to undo; this recipe's teardown block runs whole\n")
    return EXIT.usage
  end

  -- o.plan: teardown --plan (or plan --teardown): a plan of the teardown
  local plan = o.verb == "plan" or o.plan == true
  local run = { o = o, verb = o.verb, recipe = recipe, report = report, plan = plan,
                selected = selected, partial = partial, counts = new_counts(), plan_writes = {},
                -- (a plan notes a path a step: room for them, not a rehash at each power of 2)
                plan_written = plan and core.map(#recipe.steps) or {} }
  local dir = State.default_dir(o)
  -- a teardown with nothing recorded and no teardown block of its own has
  -- nothing to do: it reports that and writes nothing, not even the folder
  local nothing_to_undo = o.verb == "teardown" and not recipe.teardown
    and not State.exists(dir, recipe.name)
  local writes = not run.plan and not nothing_to_undo
  -- a state folder that cannot be made, locked or trusted, a damaged state,
  -- another recipe's, or another run holding the lock: nothing has changed,
  -- and no step ran: a usage error (2), never a step failure (1)
  local state, serr, why, pid = State.open(dir, recipe.name, {
    create = writes, lock = writes, wait = o.wait_lock,
    recipe_file = o.recipe_file or require("provision._fs").realpath(o.recipe) or o.recipe, adopt = o.adopt_state })
  if not state then
    if why == "locked" then
      report:err(("provision: another provision run%s is working on this project (%s); wait for it to finish, or use --wait-lock\n")
        :format(pid and pid > 0 and (" (pid " .. pid .. ")") or "", serr))
      return EXIT.usage
    end
    report:err("provision: " .. serr .. "\n")
    return EXIT.usage
  end
  run.state = state
  if not writes then state:read_only() end  -- plan writes nothing at all
  if o.verb == "teardown" then return td().teardown(run) end
  return apply_or_plan(run)
end

return M
