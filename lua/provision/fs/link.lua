-- provision.fs.link: the fs.symlink resource (fs/init.lua makes
-- fs.symlink the primitive too, when called with a target and a path).
local C = require "provision._fs"
local R = require "provision.resource"
local B = require "provision.fs.base"

local L = {}

local probe, log = B.probe, B.log

-- The link's intent (as a file's write has one: R.write_intent): before
-- the link is made, ctx.state.pending = { path, link = target, dir, new }
-- goes into the journal (ctx:checkpoint), so that a run killed before its
-- record is journaled (in the runner's batch: until the batch's sync) leaves
-- nothing teardown cannot find. settle: what such a run left, while it is
-- a link of the running user's to that target in that folder, is recorded
-- (apply), its record's target updated (a link this step made before), or
-- removed (teardown: reverting). The number of links removed, and the path.
local function settle(ctx, reverting)
  local pd = ctx.state and ctx.state.pending
  if type(pd) ~= "table" then return 0 end
  ctx.state.pending = nil
  if type(pd.path) ~= "string" or type(pd.link) ~= "string" then return 0 end
  local mine = R.find_created(ctx, pd.path)
  if not pd.new and not mine then return 0 end
  local st = C.lstat(pd.path)
  local dir = type(pd.dir) == "string" and pd.dir or nil
  if not (st and st.type == "link" and st.uid == C.euid() and C.readlink(pd.path) == pd.link
          and (not dir or C.dir_id(pd.path) == dir)) then
    return 0
  end
  if mine then mine.target = pd.link; return 0 end   -- (a revert then removes it by its record)
  if reverting then
    return C.remove_if(pd.path, { type = "link", id = st.id, target = pd.link, dir = dir }) == true and 1 or 0, pd.path
  end
  R.record(ctx, { type = "link", path = pd.path, target = pd.link, dir = dir })
  return 0
end

L.symlink = R.define {
  kind = "fs.symlink",
  owns = "path",
  writes = R.paths_of("path"),
  options = {
    path = { "string", path = true, doc = "the link" },
    target = { "string", doc = "what it points to (kept as written: relative or absolute)" },
    force = { "boolean", default = false, doc = "true: a file (never a folder) found at path is replaced by the link" },
  },
  describe = function(self) return ("link %s -> %s"):format(self.path, self.target) end,
  check = function(self, ctx)
    local st, err = probe(self.path)
    if st == nil then return nil, err end
    if not st then return false, { ("+ %s -> %s"):format(self.path, self.target) } end
    if st.type ~= "link" then
      if st.type == "directory" then   -- never replaced, force or not: plan says what apply will
        return nil, ("%s exists and is a folder, not a link (a folder is never replaced, not even with force = true)")
          :format(self.path)
      end
      if self.force then
        return false, { ("~ %s: replace the %s with a link to %s"):format(self.path, st.type, self.target) }
      end
      return false, { ("! %s exists and is a %s, not a link (force = true replaces it)"):format(self.path, st.type) }
    end
    local have = C.readlink(self.path)
    if have == self.target then return true end
    return false, { ("~ %s -> %s (was -> %s)"):format(self.path, self.target, tostring(have)) }
  end,
  apply = function(self, ctx)
    settle(ctx, false)   -- what a killed run of this step left
    local st, perr = probe(self.path)
    if st == nil then return nil, perr end
    if st and st.type ~= "link" and (not self.force or st.type == "directory") then
      return nil, self.path .. ": exists and is a " .. st.type .. ", not a link"
    end
    if st and st.type == "link" and C.readlink(self.path) == self.target then return true end
    local e = st and R.find_created(ctx, self.path)   -- a link this step made before
    local dir = (not st or e) and C.dir_id(self.path) or nil
    if dir then   -- the intent, journaled before the link is made (settle)
      ctx.state.pending = { path = self.path, link = self.target, dir = dir, new = not st or nil }
      if ctx.checkpoint then ctx:checkpoint() end
    end
    -- made beside it under a random name, then renamed over it: atomic; in
    -- the runner's batch (ctx.sync_later) on disk at the batch's sync
    local ok, err = C.symlink(self.target, self.path, true, ctx.sync_later)
    ctx.state.pending = nil
    if not ok then return nil, err end
    if not st then
      R.record(ctx, { type = "link", path = self.path, target = self.target, dir = dir })
    elseif e then   -- points elsewhere now
      e.target = self.target
    end
    log(ctx, ("linked %s -> %s"):format(self.path, self.target))
    return true
  end,
  sync_later = true,    -- made with no sync: on disk at the batch's (run.lua, provision.batch)
  state_revert = true,
  -- the links it made, each while it is still a link to what it made it
  -- to; false when none was removed (gone already, or changed: left)
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = function(self, ctx)
    local removed, left = {}, {}
    local begun, path = 0, nil
    if not ctx.plan then begun, path = settle(ctx, true) end
    if begun > 0 then removed[1] = path; B.said_removed(ctx, path) end
    for _, e in ipairs((ctx.state and ctx.state.created) or {}) do
      if e.type == "link" and type(e.path) == "string" then
        -- only a link of the running user's: one another user put in its
        -- place (with the same target) is theirs
        local st = C.lstat(e.path)
        local ok, why, code
        if st and st.type == "link" and st.uid ~= C.euid() then ok, why = false, "another user's link now"
        else ok, why, code = B.remove_if(ctx, e.path, { type = "link", dir = e.dir, target = e.target, id = st and st.id }) end
        if ok then
          removed[#removed + 1] = e.path
          B.said_removed(ctx, e.path)
        elseif ok == nil and code ~= B.ELOOP then   -- ELOOP: a link of another user's on the way: left
          return nil, why
        elseif why ~= "gone already" then
          left[#left + 1] = ("%s: %s"):format(e.path, why)
          B.said_left(ctx, e.path, why)
        end
      end
    end
    if ctx.detail then
      local parts = { B.count_said(ctx, { "removed", "would remove" }, "link", removed) }
      if #left > 0 then parts[#parts + 1] = (ctx.plan and "would leave " or "left ") .. left[1] end
      ctx:detail(#parts > 0 and table.concat(parts, "; ") or "gone already")
    end
    return #removed > 0
  end,
}

return L
