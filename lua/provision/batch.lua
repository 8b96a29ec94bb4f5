-- provision.batch: the runner's batch of file steps (issue 19): many files
-- written, one syncfs for them all. run.lua calls it around each step of an
-- apply; its fields live in run (run.held, run.held_since, run.step_others,
-- run.step_unsynced, run.unsynced, run.flush_error).
--
-- A step whose resources all say sync_later (fs.file, fs.template,
-- fs.env_file: whole files, a temp file and a rename each; fs.symlink and
-- fs.directory: a link, folders; resource.lua) writes its files with no
-- fsync: core.write_atomic's sync "later" for a new file, "data" for one
-- that replaces content (that content fsync'd before the rename: after a
-- power failure the name holds the old content or the new, whole); its
-- links and folders with their filesystem noted for the same syncfs
-- (C.symlink's and C.mkdir's "later"). Its line in the journal is held
-- back: the journal has the intent already (R.write_intent, a link's or
-- folders' pending, through ctx:checkpoint and checkpoint below: appended
-- alone, at once, before the file, link or folder exists), so a run killed
-- before the batch is flushed leaves files, links and folders the next run
-- and teardown know as the step's (R.settle_pending, fs/link.lua's and
-- fs/folders.lua's settle: only while they are the running user's). A
-- mixed recipe (files in folders, links beside them) is one batch, not a
-- syncfs per run of files (issue 19). The batch is flushed
-- (State:flush: one syncfs per filesystem written, then the held lines
-- appended; a record never reaches the disk before what it records):
--   - once it holds STEPS steps or is SECONDS old (what a power failure
--     can take back is bounded);
--   - before any step of another kind runs: a command, a service, a
--     container may act on those files, and they are on disk first;
--   - before a failure is told, and at the end (finish: before the state
--     is saved and the summary printed): "done" means on disk.
-- A step of the batch that failed, that other steps watch (on_change), that
-- runs on a change, or that noted anything but its own line (a file adopted
-- from another step's records, records it retired) is flushed at once, as
-- any other step is.
local core = require "provision._core"

local M = {}

M.STEPS, M.SECONDS = 1000, 1.0

-- does step s join the batch (every resource sync_later; never in plan)?
-- (kept in s.sync_later, which a step's ctx gives as ctx.sync_later)
local function joins(run, s)
  if run.plan then return false end   -- (nothing noted in a plan's steps: each kept field costs)
  if s.sync_later == nil then
    local all = true
    for _, r in ipairs(s.resources) do
      if not r.sync_later then all = false; break end
    end
    rawset(s, "sync_later", all)   -- (a declared step refuses a new field: dsl/loader.lua)
  end
  return s.sync_later
end

-- flush(run): the batch on disk and journaled -> true | nil, message (kept
-- in run.flush_error for finish; run.unsynced: the steps it held)
function M.flush(run)
  if not run.held then return true end
  run.report:flush()   -- (the step lines held, out before a sync that may take a while)
  local ok, err = run.state:flush()
  if not ok then
    run.unsynced = run.unsynced or {}
    for _, n in ipairs(run.held) do run.unsynced[#run.unsynced + 1] = n end
    run.flush_error = run.flush_error or err
  end
  run.held, run.held_since = nil, nil
  return ok, err
end

-- before_step(run, s) -> true | false (the batch could not be flushed:
-- stop, finish says why): before step s runs
function M.before_step(run, s)
  if run.plan then return true end
  if run.held and not joins(run, s) and not M.flush(run) then return false end
  joins(run, s)
  if run.state then run.step_others, run.step_unsynced = run.state.others, core.unsynced() end
  return true
end

-- checkpoint(run, name, saved, sync_later) -> true | nil, message:
-- ctx:checkpoint's journal write (saved: the step's records so far). In a
-- step of the batch, the step's line alone, with no sync, while the step
-- has written nothing not yet synced and noted nothing else since it began
function M.checkpoint(run, name, saved, sync_later)
  local others = run.state.others
  run.state:set_step(name, saved)
  if sync_later and run.state.others == others and others == run.step_others
     and core.unsynced() == run.step_unsynced then
    return run.state:flush_step(name)
  end
  local ok, err = run.state:flush()
  run.step_others, run.step_unsynced = run.state.others, core.unsynced()
  return ok, err
end

-- record(run, s, may_hold, t0) -> true, held | nil, message, held: after
-- step s (begun at t0) ran and its records were noted (set_step): held
-- with the batch (may_hold: the runner sees no reason not to, above), or
-- journaled now with the batch before it; a full batch is flushed
function M.record(run, s, may_hold, t0)
  local held = may_hold and s.sync_later and run.state.others == run.step_others
  if held then
    run.held = run.held or {}
    run.held[#run.held + 1] = s.name
    run.held_since = run.held_since or t0
    if #run.held < M.STEPS and core.now() - run.held_since < M.SECONDS then return true, true end
  end
  local ok, err
  if run.held then ok, err = M.flush(run) else ok, err = run.state:flush() end
  return ok, err, held
end

-- finish(run, ok, err) -> ok, err: the end of the run's flush and save
-- (ok, err); a batch that could not be flushed before fails the run, and
-- the message names the steps whose files may not be on disk
function M.finish(run, ok, err)
  if not ok and run.held then
    run.unsynced = run.unsynced or {}
    for _, n in ipairs(run.held) do run.unsynced[#run.unsynced + 1] = n end
  end
  run.held = nil
  if ok and run.flush_error then ok, err = false, run.flush_error end
  if not ok and run.unsynced and #run.unsynced > 0 then
    err = err .. "\n  the files these steps wrote may not be on disk; the state has them as writes begun "
      .. "(the next run checks them again, teardown removes them while they are as written): "
      .. table.concat(run.unsynced, ", ")
  end
  return ok, err
end

return M
