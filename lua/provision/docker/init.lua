-- provision.docker: the docker.* resources, and (re-exported, so recipes
-- call docker.containers{...} as before) the Engine API client's functions
-- of provision.docker.api.
--
-- Resources:
--   docker.engine { min_version?, engine? }               check-only preflight
--   docker.image { name = "repo:tag", from_rootfs = "rootfs.tar", engine? }
-- engine: the engine's URL (unix:///path, tcp://host:port, ssh://[user@]
-- host[:port]; docker/transport.lua), default DOCKER_HOST, else the local
-- socket; a malformed one is refused at load time.
local api = require "provision.docker.api"
local R = require "provision.resource"
local FS = require "provision._fs"

local M = {}
for k, v in pairs(api) do M[k] = v end

local function engine_ok(self)
  if self.engine == nil then return true end   -- "" too: the default (check_engine)
  return api.check_engine(self.engine)
end

M.engine = R.define {
  kind = "docker.engine",
  options = {
    min_version = { "string?", doc = "the oldest engine version that will do (\"20.10\")" },
    engine = { "string?", doc = "the Docker engine's URL (docs/engines.md; default: DOCKER_HOST, else the local socket)" },
  },
  validate = engine_ok,
  describe = function(self)
    return "a Docker engine answers" .. (self.engine and (" at " .. self.engine) or "")
      .. (self.min_version and (" (>= " .. self.min_version .. ")") or "")
  end,
  check = function(self, ctx)
    local E = api.on(self.engine)
    local ok, err = E.ping()
    if not ok then return false, err end
    if self.min_version then
      local version, verr = E.engine_version()
      if not version then return false, verr end
      if E.version_compare(version, self.min_version) < 0 then
        return false, ("Docker engine %s is older than %s: upgrade docker"):format(version, self.min_version)
      end
      if ctx.detail then ctx:detail("engine " .. version) end
    end
    return true
  end,
}

M.image = R.define {
  kind = "docker.image",
  reads = R.paths_of("from_rootfs"),
  writes = function(self) return self.from_rootfs and { api.image_key(self.name) } or {} end,
  positional = "name",
  options = {
    name = { "string", doc = "the image, repo:tag (:latest when no tag)" },
    from_rootfs = { "string?", doc = "a root filesystem tarball to import as the image (no registry needed)" },
    engine = { "string?", doc = "the Docker engine's URL (docs/engines.md; default: DOCKER_HOST, else the local socket)" },
  },
  validate = function(self)
    if not self.name:find(":") then self.name = self.name .. ":latest" end
    return engine_ok(self)
  end,
  describe = function(self)
    return "image " .. self.name .. (self.from_rootfs and (" (imported from " .. self.from_rootfs .. ")") or "")
  end,
  -- An image this resource imported follows its source: the state keeps
  -- the image's id and the digest of from_rootfs at the import, and a new
  -- root filesystem (or the name now on another image) imports again. An
  -- image that was there before (nothing imported) is taken as it is.
  check = function(self, ctx)
    local E = api.on(self.engine)
    local img, err, status = E.image_inspect(self.name)
    if not img then
      if status ~= 404 then return nil, err end
      return false, "image " .. self.name .. " is not there" ..
        (self.from_rootfs and ("; import " .. self.from_rootfs) or "")
    end
    local rec = ctx.state.imported
    if not (rec and rec.name == self.name and self.from_rootfs) then return true end
    local changes = {}
    -- read again only when it is not the very file imported (its stamp)
    local sum, serr = R.known_digest(self.from_rootfs, rec.stamp, rec.sha256, FS.sha256)
    if not sum then return nil, self.from_rootfs .. ": " .. tostring(serr) end
    if sum ~= rec.sha256 then
      changes[#changes + 1] = ("%s is not what image %s was imported from: import it again"):format(self.from_rootfs, self.name)
    end
    if img.Id ~= rec.id then
      changes[#changes + 1] = ("image %s is no longer the one imported here (tagged anew since): import again"):format(self.name)
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    if not self.from_rootfs then
      return nil, "image " .. self.name .. " is not there and no from_rootfs is given (no registry pull)"
    end
    local E = api.on(self.engine)
    local stamp = FS.stamp(self.from_rootfs)
    local sum, serr = FS.sha256(self.from_rootfs)
    if not sum then return nil, self.from_rootfs .. ": " .. tostring(serr) end
    local repo, tag = E.split_ref(self.name)
    local id, err = E.image_import(self.from_rootfs, { repo = repo, tag = tag })
    if not id then return nil, err end
    local img, ierr = E.image_inspect(self.name)
    if not img then return nil, ierr end
    local mine = false
    for _, e in ipairs(ctx.state.created or {}) do
      if e.type == "docker.image" and e.name == self.name then mine = true end
    end
    if not mine then ctx:created { type = "docker.image", name = self.name } end
    -- the image this resource imported before, superseded: removed (one
    -- a container still uses, or another name still holds, is left to
    -- teardown, which keeps it if it is still held by another name then)
    local prev = ctx.state.imported
    if prev and prev.id and prev.id ~= img.Id and not E.image_remove(prev.id) then
      ctx:created { type = "docker.image", id = prev.id }
    end
    ctx.state.imported = { name = self.name, id = img.Id, sha256 = sum, stamp = stamp }
    ctx:detail("imported " .. self.name)
    return true
  end,
  plan_revert = true,   -- revert with ctx.plan: the images it would remove, nothing done
  revert = function(self, ctx)
    local E = api.on(self.engine)
    if ctx.plan then
      local n = 0
      for _, e in ipairs(ctx.state.created or {}) do
        local ref = e.type == "docker.image" and (e.name or e.id)
        local there, xerr
        if ref then there, xerr = E.image_exists(ref) end
        if there == nil and xerr then return nil, xerr end
        if there then
          n = n + 1
          ctx:log(e.name and ("- image " .. ref) or ("- image %s (an earlier import, unless another name holds it)"):format(ref))
        end
      end
      if n == 0 then ctx:detail("nothing to remove: the images it imported are gone") end
      return n > 0
    end
    for _, e in ipairs(ctx.state.created or {}) do
      if e.type == "docker.image" and e.name then
        local ok, err = E.image_remove(e.name, { force = true })
        if not ok then return nil, err end
      elseif e.type == "docker.image" and e.id then
        -- an earlier import, superseded: kept when something else tagged it
        local ok, err, status = E.image_remove(e.id)
        if not ok and status ~= 409 then return nil, err end
        if status == 409 and ctx.log then ctx:log(("image %s kept: %s"):format(e.id, err)) end
      end
    end
    return true
  end,
}

return M
