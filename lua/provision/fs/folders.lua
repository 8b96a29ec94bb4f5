-- provision.fs.folders: fs.directory (folders made with their parents,
-- removed at teardown only when empty) and fs.absent (whole trees
-- removed, never through a link).
local C = require "provision._fs"
local R = require "provision.resource"
local B = require "provision.fs.base"

local D = {}

local probe, log, DIR_MODE = B.probe, B.log, B.DIR_MODE

local function directory_check(self, ctx)
  local changes = {}
  for _, p in ipairs(self.path) do
    local st, err = probe(p, true)
    if st == nil then return nil, err end
    if not st then
      changes[#changes + 1] = ("+ %s/ (mode %s)"):format(p, B.octal(self.mode or DIR_MODE))
      if self.owner or self.group then
        changes[#changes + 1] = ("  owner %s:%s"):format(self.owner or "-", self.group or "-")
      end
    elseif st.type ~= "directory" then
      changes[#changes + 1] = ("! %s exists and is a %s, not a folder"):format(p, st.type)
    else
      B.attr_changes(self, st, p .. ": ", changes)
    end
  end
  if #changes == 0 then return true end
  return false, changes
end

-- The folders' intent (as a file's write has one: R.write_intent): before
-- any is made, ctx.state.pending = { folders = the missing ones, innermost
-- first, uid = their owner when the recipe names one } goes into the
-- journal (ctx:checkpoint), so that a run killed before their records are
-- journaled (in the runner's batch: until the batch's sync) leaves nothing
-- teardown cannot find. settle: each such folder still there, of the
-- running user's (or that owner's), not recorded yet, is recorded (apply:
-- outermost first, as B.mkdirs records them) or removed while empty
-- (teardown: reverting). The folders removed.
local function settle(ctx, reverting)
  local pd = ctx.state and ctx.state.pending
  if type(pd) ~= "table" then return {} end
  ctx.state.pending = nil
  local list, removed = type(pd.folders) == "table" and pd.folders or {}, {}
  local euid = C.euid()
  local uid = math.type(pd.uid) == "integer" and pd.uid or euid
  for i = reverting and 1 or #list, reverting and #list or 1, reverting and 1 or -1 do
    local p = list[i]
    local st = type(p) == "string" and not R.find_created(ctx, p) and C.lstat(p)
    if st and st.type == "directory" and (st.uid == euid or st.uid == uid) then
      if not reverting then R.record(ctx, { type = "directory", path = p, id = st.id })
      elseif C.remove_if(p, { type = "directory", id = st.id }) == true then removed[#removed + 1] = p .. "/" end
    end
  end
  return removed
end

-- the folders missing on the way to p, innermost first, into out
local function missing(p, out)
  local cur = p:gsub("/+$", "")
  while cur ~= "" and cur ~= "." and cur ~= "/" do
    local st, _, code = C.lstat(cur)
    if st or (code ~= B.ENOENT and code ~= 20) then break end   -- (20: ENOTDIR)
    out[#out + 1] = cur
    cur = B.parent_of(cur)
  end
  return out
end

local function directory_apply(self, ctx)
  settle(ctx, false)   -- what a killed run of this step left
  local made, sts, todo = 0, {}, {}
  for i, p in ipairs(self.path) do
    local st, err = probe(p, true)
    if st == nil then return nil, err end
    if st and st.type ~= "directory" then
      return nil, p .. ": exists and is a " .. st.type .. ", not a folder"
    end
    sts[i] = st
    if not st then missing(p, todo) end
  end
  if #todo > 0 then   -- the intent, journaled before any folder is made (settle)
    ctx.state.pending = { folders = todo, uid = self.owner and B.wanted_uid(self) or nil }
    if ctx.checkpoint then ctx:checkpoint() end
  end
  for i, p in ipairs(self.path) do
    local st = sts[i]
    if not st then   -- (in the runner's batch, ctx.sync_later: on disk at the batch's sync)
      local list, merr = B.mkdirs(p, self.mode or DIR_MODE, ctx)
      if not list then ctx.state.pending = nil; return nil, merr end
      made = made + #list
      for _, d in ipairs(list) do log(ctx, "created " .. d .. "/") end
    end
    -- a folder just made has its mode already; an owner it needs still
    if st or self.owner or self.group then
      local ok, aerr = B.set_attrs(self, p, st or nil)
      if not ok then ctx.state.pending = nil; return nil, aerr end
    end
  end
  ctx.state.pending = nil
  if made > 0 and ctx.detail then ctx:detail(("%d folder%s created"):format(made, made == 1 and "" or "s")) end
  return true
end

-- the folders it made, newest first, each only while it is empty and the
-- very folder made (not one put in its place since). The detail counts
-- what was really removed and what was left; false when none was removed
-- (all gone already, or left). In a plan of teardown (ctx.plan): what it
-- would do, removing nothing.
local REMOVED, LEFT = { "removed", "would remove" }, { "left", "would leave" }
local function directory_revert(self, ctx)
  local removed = not ctx.plan and settle(ctx, true) or {}
  local created = (ctx.state and ctx.state.created) or {}
  local left, why_left = {}, nil
  for _, p in ipairs(removed) do B.said_removed(ctx, p) end
  for i = #created, 1, -1 do
    local e = created[i]
    if e.type == "directory" and type(e.path) == "string" then
      -- checked and removed through one descriptor of its folder
      local ok, why, code = B.remove_if(ctx, e.path, { type = "directory", id = e.id })
      if ok then
        removed[#removed + 1] = e.path .. "/"
        B.said_removed(ctx, e.path .. "/")
      elseif ok == nil and code ~= B.ELOOP then   -- ELOOP: a link of another user's on the way: left
        return nil, why
      elseif why ~= "gone already" and why ~= "not a folder now" then
        left[#left + 1] = e.path .. "/"
        if why == "not empty" then
          local n = #(C.listdir(e.path) or {})
          why = ("not empty (%d entr%s)"):format(n, n == 1 and "y" or "ies")
        elseif why == "not the one made (replaced since)" then
          why = "not the folder it made (replaced since)"
        end
        why_left = why
        B.said_left(ctx, e.path .. "/", why)
      end
    end
  end
  if ctx.detail then
    local parts = { B.count_said(ctx, REMOVED, "folder", removed) }
    if #left == 1 then parts[#parts + 1] = ("%s %s: %s"):format(ctx.plan and LEFT[2] or LEFT[1], left[1], why_left)
    elseif #left > 1 then parts[#parts + 1] = B.count_said(ctx, LEFT, "folder", left) .. " (not empty or not the ones made)" end
    ctx:detail(#parts > 0 and table.concat(parts, "; ") or "gone already")
  end
  return #removed > 0
end

D.directory = R.define {
  kind = "fs.directory",
  owns = "path",
  -- two folders at one path agree unless both set mode, owner or group
  -- and differ on it
  agrees = function(a, b)
    for _, k in ipairs { "mode", "owner", "group" } do
      if a[k] ~= nil and b[k] ~= nil and a[k] ~= b[k] then return false end
    end
    return true
  end,
  -- a folder there already only gets its mode or owner: what is in it stays
  writes = function(self)
    local out = {}
    for _, p in ipairs(self.path) do
      local st = C.stat(p)
      out[#out + 1] = st and st.type == "directory" and { path = p, entry = true } or p
    end
    return out
  end,
  positional = "path",
  options = {
    path = { "strings", path = true, doc = "the folder or folders (their parents are made too)" },
    mode = { "mode?", doc = "their mode (\"0755\")" },
    owner = { "string?", doc = "the user who owns them (a name)" },
    group = { "string?", doc = "their group (a name)" },
  },
  describe = function(self) return B.describe_paths("directory", self.path) end,
  check = directory_check,
  apply = directory_apply,
  sync_later = true,    -- made with no sync: on disk at the batch's (run.lua, provision.batch)
  state_revert = true,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = directory_revert,
}

-- what a plan says is removed
local function what_is(p, st)
  if st.type == "directory" then
    local names = C.listdir(p) or {}
    return ("folder, %d entr%s"):format(#names, #names == 1 and "y" or "ies")
  elseif st.type == "file" then
    return ("%d bytes"):format(st.size)
  end
  return st.type
end

D.absent = R.define {
  kind = "fs.absent",
  owns = "path", absent = true,
  agrees = function() return true end,   -- two absences of one path agree
  writes = R.paths_of("path"),
  positional = "path",
  options = { path = { "strings", path = true, doc = "what must not be there: removed, folders with all in them" } },
  validate = function(self)
    for _, p in ipairs(self.path) do
      -- not the root however spelled ("/", "//", "/.", "/tmp/.."), nor any
      -- path ending in . or .. (the C side refuses them too)
      local norm = p:gsub("/+$", "")
      local last = norm:match("[^/]*$")
      if p == "" or norm == "" or last == "." or last == ".." then
        return nil, ("refusing to remove %q"):format(p)
      end
    end
    return true
  end,
  describe = function(self) return B.describe_paths("absent", self.path) end,
  check = function(self, ctx)
    local changes = {}
    for _, p in ipairs(self.path) do
      local st, err = probe(p)
      if st == nil then return nil, err end
      if st then changes[#changes + 1] = ("- %s (%s)"):format(p, what_is(p, st)) end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  -- recursive, never through a link: not one on the way to p that another
  -- user owns, not one below p
  apply = function(self, ctx)
    local n = 0
    for _, p in ipairs(self.path) do
      local st, perr = probe(p)
      if st == nil then return nil, perr end
      if st then
        local ok, err = C.remove_tree(p)
        if not ok then return nil, err end
        n = n + 1
        log(ctx, "removed " .. p)
      end
    end
    if ctx.detail and n > 0 then ctx:detail(("%d removed"):format(n)) end
    return true
  end,
}

return D
