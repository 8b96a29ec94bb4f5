-- provision.fs.link: the fs.symlink resource (fs/init.lua makes
-- fs.symlink the primitive too, when called with a target and a path).
local C = require "provision._fs"
local R = require "provision.resource"
local B = require "provision.fs.base"

local L = {}

local probe, log = B.probe, B.log

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
    local st, perr = probe(self.path)
    if st == nil then return nil, perr end
    if st and st.type ~= "link" and (not self.force or st.type == "directory") then
      return nil, self.path .. ": exists and is a " .. st.type .. ", not a link"
    end
    if st and st.type == "link" and C.readlink(self.path) == self.target then return true end
    -- made beside it under a random name, then renamed over it: atomic
    local ok, err = C.symlink(self.target, self.path, true)
    if not ok then return nil, err end
    if not st then
      R.record(ctx, { type = "link", path = self.path, target = self.target, dir = C.dir_id(self.path) })
    else   -- a link this step made before points elsewhere now
      local e = R.find_created(ctx, self.path)
      if e then e.target = self.target end
    end
    log(ctx, ("linked %s -> %s"):format(self.path, self.target))
    return true
  end,
  state_revert = true,
  -- the links it made, each while it is still a link to what it made it
  -- to; false when none was removed (gone already, or changed: left)
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = function(self, ctx)
    local removed, left = {}, {}
    for _, e in ipairs((ctx.state and ctx.state.created) or {}) do
      if e.type == "link" and type(e.path) == "string" then
        local ok, why, code = B.remove_if(ctx, e.path, { type = "link", dir = e.dir, target = e.target })
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
