-- provision.fs.backup: backup = true on fs.file, fs.template and
-- fs.env_file. Before apply rewrites a file that is there, its content is
-- kept beside it, as PATH.YYYYMMDD-HHMMSS[-N].provision~ (Ansible keeps its
-- backups beside the file too), with the file's owner and mode; each
-- rewrite keeps one. Teardown puts the oldest back (the content from
-- before this step first wrote the file) and removes that backup, when the
-- file still holds what the step last wrote (or is gone); a file changed
-- since is left as it is, with its backups, and said. Only a file the step
-- keeps is backed up: one it replaces for safety (a link, another user's
-- file, one with other hard links: fs/file.lua) is not read at all.
local C = require "provision._fs"
local core = require "provision._core"

local M = {}

local function log(ctx, line) if ctx.log then ctx:log(line) end end

-- keep(path, st, ctx) -> true | nil, why: the content of the regular file
-- at path (st: its probe, with sha256) kept beside it, recorded in ctx.state
function M.keep(path, st, ctx)
  local old, err = core.read_file(path)
  if not old then return nil, "backup: " .. tostring(err) end
  if C.sha256_string(old) ~= st.sha256 then return nil, "backup: " .. path .. " changed while it was read" end
  local base = ("%s.%s"):format(path, os.date("!%Y%m%d-%H%M%S"))
  local bpath, n = base .. ".provision~", 1
  while C.lstat(bpath) do n = n + 1; bpath = ("%s-%d.provision~"):format(base, n) end
  local ok, werr = core.write_atomic(bpath, old, st.mode, st.uid, st.gid)
  if not ok then return nil, "backup: " .. tostring(werr) end
  ctx.state.backups = ctx.state.backups or {}
  table.insert(ctx.state.backups, { path = bpath, of = path, sha256 = st.sha256, uid = st.uid })
  log(ctx, ("kept the old content of %s in %s"):format(path, bpath))
  return true
end

-- wrote(ctx, digest): what apply left in the file (teardown compares it)
function M.wrote(ctx, digest)
  if ctx.state.backups then ctx.state.last_written = digest end
end

-- restore(ctx) -> true (put back) | false (nothing to do) | nil, why
function M.restore(ctx)
  local list = ctx.state.backups
  local first = type(list) == "table" and list[1]
  if type(first) ~= "table" or type(first.path) ~= "string" or type(first.of) ~= "string" then return false end
  local path = first.of
  local st, _, code = C.probe(path)
  if st and (st.type ~= "file" or st.sha256 ~= ctx.state.last_written) then
    local why = ("%s %s: changed since it was written; its old content is in %s"):format(
      ctx.plan and "would leave" or "left", path, first.path)
    log(ctx, why)
    if ctx.detail then ctx:detail(why) end
    return false
  end
  if not st and code ~= 2 then return nil, ("%s: cannot be looked at to put its backup back"):format(path) end
  local bst = C.probe(first.path)
  if not bst or bst.type ~= "file" or bst.sha256 ~= first.sha256 or bst.uid ~= first.uid or bst.nlink ~= 1 then
    local why = ("left %s as it is: its backup %s is not there as it was kept"):format(path, first.path)
    log(ctx, why)
    if ctx.detail then ctx:detail(why) end
    return false
  end
  if ctx.plan then   -- a plan of teardown: what it would put back, nothing done
    log(ctx, ("~ %s: its old content put back (from %s)"):format(path, first.path))
    if ctx.detail then ctx:detail(("would put back %s as it was"):format(path)) end
    return true
  end
  local old, rerr = core.read_file(first.path)
  if not old or C.sha256_string(old) ~= first.sha256 then
    return nil, "backup " .. first.path .. ": " .. tostring(rerr or "changed while read")
  end
  local ok, werr = core.write_atomic(path, old, bst.mode, bst.uid, bst.gid)
  if not ok then return nil, werr end
  C.remove_if(first.path, { type = "file", sha256 = first.sha256 })
  log(ctx, ("put back the old content of %s (from %s)"):format(path, first.path))
  if ctx.detail then
    local more = #list > 1 and (" (%d newer backups left beside it)"):format(#list - 1) or ""
    ctx:detail(("put back %s as it was%s"):format(path, more))
  end
  return true
end

return M
