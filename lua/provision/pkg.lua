-- provision.pkg: Debian and Ubuntu packages.
--
--   pkg.installed { "docker.io", "hello=2.10-3", update = true, max_age = "1d",
--                   recommends = true }
--   pkg.absent    { "hello", purge = false }
--   pkg.supported {}          -- check only: a dpkg/apt system (preflight)
--
-- The check reads the dpkg status database in-process (provision._pkg): a
-- no-op run spawns no dpkg-query and no apt. apply runs apt-get (an argv,
-- DEBIAN_FRONTEND=noninteractive), first refreshing the package lists when
-- they are missing or older than max_age (update = false: never). apt's
-- output is shown live with -v; on failure its error lines and tail are the
-- message. "name=version" pins a version: the check compares it exactly.
--
-- Primitives for recipes: pkg.distro(), pkg.check_system(), pkg.query(names), pkg.is_installed(name),
-- pkg.candidate(name) (spawns apt-cache: for apply functions, not checks),
-- pkg.install(ctx, names, opts), pkg.remove(ctx, names, opts),
-- pkg.remove_created(ctx) (a revert: what install{record=true} installed).
local R = require "provision.resource"
local C = require "provision._pkg"
local exec = require "provision._exec"

local M = {}
M.read_status = C.read_status
M.lists_age = C.lists_age

-- Where the system keeps things. DPKG_ADMINDIR moves the dpkg database, as
-- it does for dpkg itself.
M.status_file = (os.getenv("DPKG_ADMINDIR") or "/var/lib/dpkg") .. "/status"
M.lists_dir = "/var/lib/apt/lists"
M.os_release_file = "/etc/os-release"

local APT_ENV = { DEBIAN_FRONTEND = "noninteractive", NEEDRESTART_MODE = "a",
                  LC_ALL = "C", APT_LISTCHANGES_FRONTEND = "none" }
local APT_OPTS = { "-o", "DPkg::Lock::Timeout=300",
                   "-o", "Dpkg::Options::=--force-confdef",
                   "-o", "Dpkg::Options::=--force-confold" }

-- distro([path]) -> { id=, version_id=, codename=, id_like=, name=, pretty= }
-- | nil, why  (/etc/os-release, read in-process)
function M.distro(path)
  path = path or M.os_release_file
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local kv = {}
  for line in f:lines() do
    local k, v = line:match("^%s*([%w_]+)=(.*)$")
    if k then
      v = v:match('^"(.*)"$') or v:match("^'(.*)'$") or v
      kv[k] = v:gsub("\\(.)", "%1")
    end
  end
  f:close()
  return {
    id = kv.ID or "linux",
    id_like = kv.ID_LIKE or "",
    version_id = kv.VERSION_ID or "",
    codename = kv.VERSION_CODENAME or kv.UBUNTU_CODENAME or "",
    name = kv.NAME or kv.ID or "Linux",
    pretty = kv.PRETTY_NAME or kv.NAME or kv.ID or "Linux",
  }
end

local function system_name()
  local d = M.distro()
  return d and d.pretty or "this system"
end

-- check_system() -> true | nil, message: is this a dpkg system?
function M.check_system()
  local f = io.open(M.status_file, "r")
  if f then f:close(); return true end
  return nil, ("packages are supported on Debian and Ubuntu (dpkg and apt-get) only; " ..
    "%s has no dpkg database (%s)"):format(system_name(), M.status_file)
end

-- "hello=2.10-3" -> "hello", "2.10-3"; "libc6:amd64" -> "libc6:amd64", nil
function M.parse_spec(spec)
  local name, version = spec:match("^([^=]+)=(.+)$")
  if name then return name, version end
  return spec, nil
end

local function valid_name(name)
  return name:match("^[a-z0-9][a-z0-9+.%-]*$") or name:match("^[a-z0-9][a-z0-9+.%-]*:[a-z0-9%-]+$")
end

-- query(names) -> { [name] = { version=, status=, arch=, installed= } } | nil, message
function M.query(names)
  local set = {}
  for _, n in ipairs(names) do set[(M.parse_spec(n))] = true end
  local ok, err = M.check_system()
  if not ok then return nil, err end
  local t, rerr = C.read_status(M.status_file, set)
  if not t then return nil, "reading the dpkg database: " .. rerr end
  return t
end

-- is_installed(name) -> installed?, version | nil, message
function M.is_installed(name)
  local t, err = M.query { name }
  if not t then return nil, err end
  local info = t[(M.parse_spec(name))]
  if info and info.installed then return true, info.version end
  return false
end

-- ---------------------------------------------------------------- apt-get

-- The message for a failed apt command: apt's own error lines first, then the
-- last lines of its output.
local function apt_failure(what, r)
  local out = R.mask(r.output or "")
  local errs, lines = {}, {}
  for line in out:gmatch("[^\n]+") do
    lines[#lines + 1] = line
    if line:match("^E: ") then errs[#errs + 1] = line end
  end
  local why
  if r.interrupted then why = "interrupted"
  elseif r.timed_out then why = "timed out"
  else why = "exit " .. tostring(r.status) end
  local msg = what .. ": " .. why
  if #errs > 0 then msg = msg .. ": " .. table.concat(errs, "; ") end
  if #lines > 0 then
    local from = math.max(1, #lines - 11)
    msg = msg .. "\n" .. table.concat(lines, "\n", from)
  end
  return msg
end

-- apt(ctx, argv) -> result | nil, message
local function apt(ctx, argv, what)
  if not exec.which(argv[1]) then
    return nil, ("%s: %s not found on PATH (packages need apt, on Debian or Ubuntu)"):format(what, argv[1])
  end
  local cmd = { argv[1] }
  for i = 2, #argv do cmd[#cmd + 1] = argv[i] end
  cmd.env = APT_ENV
  cmd.passthrough = ctx.verbose and true or false
  cmd.timeout = ctx.timeout
  if ctx.log then ctx:log("$ " .. table.concat(argv, " ")) end
  local r, err = exec.run(cmd)
  if not r then return nil, what .. ": " .. err end
  if r.status ~= 0 or r.timed_out or r.interrupted then return nil, apt_failure(what, r) end
  return r
end

local function human_age(s)
  if s < 120 then return ("%ds"):format(s) end
  if s < 7200 then return ("%dm"):format(s // 60) end
  if s < 2 * 86400 then return ("%dh"):format(s // 3600) end
  return ("%dd"):format(s // 86400)
end

-- lists_stale(max_age) -> nil | reason: do the package lists need an update?
function M.lists_stale(max_age)
  local age = C.lists_age(M.lists_dir)
  if not age then return "no package lists yet" end
  if age > max_age then return "package lists are " .. human_age(math.floor(age)) .. " old" end
  return nil
end

-- update_lists(ctx, max_age|nil) -> true, updated? | nil, message
-- max_age nil: always.
function M.update_lists(ctx, max_age)
  if max_age then
    local why = M.lists_stale(max_age)
    if not why then return true, false end
    if ctx.log then ctx:log(why .. ": apt-get update") end
  end
  local ok, err = apt(ctx, { "apt-get", "update" }, "apt-get update")
  if not ok then return nil, err end
  if ctx.state then ctx.state.lists_updated = os.time() end
  return true, true
end

-- install(ctx, specs, { update=, max_age=, recommends=, record= }) -> true | nil, message
-- record: note in ctx.state.created each package that was not installed
-- before and is installed now (with its version), for remove_created().
function M.install(ctx, specs, opts)
  opts = opts or {}
  if opts.update ~= false then
    local ok, err = M.update_lists(ctx, opts.max_age or 86400)
    if not ok then return nil, err end
  end
  local before = opts.record and (M.query(specs) or {}) or nil
  local argv = { "apt-get", "install", "-y" }
  for _, o in ipairs(APT_OPTS) do argv[#argv + 1] = o end
  if opts.recommends == false then argv[#argv + 1] = "--no-install-recommends" end
  for _, s in ipairs(specs) do
    if s:find("=", 1, true) then argv[#argv + 1] = "--allow-downgrades"; break end
  end
  for _, s in ipairs(specs) do argv[#argv + 1] = s end
  local ok, err = apt(ctx, argv, "apt-get install " .. table.concat(specs, " "))
  if not ok then return nil, err end
  local added = {}
  if before then
    -- only what is really there now: never record a package apt-get did not install
    local after = M.query(specs) or {}
    for _, spec in ipairs(specs) do
      local name = M.parse_spec(spec)
      local b, a = before[name], after[name]
      if a and a.installed and not (b and b.installed) then
        added[#added + 1] = name
        ctx:created { type = "package", name = name, version = a.version }
      elseif a and a.installed and b.version ~= a.version then
        -- one this resource installed, now at another version (a new pin):
        -- still its own, so teardown must know the version it is at
        for _, e in ipairs(ctx.state.created or {}) do
          if e.type == "package" and e.name == name and e.version == b.version then e.version = a.version end
        end
      end
    end
  end
  if ctx.detail then
    ctx:detail(#added > 0 and ("installed " .. table.concat(added, ", "))
               or ("installed " .. table.concat(specs, ", ")))
  end
  return true
end

-- remove_created(ctx) -> true | nil, message: remove the packages install()
-- recorded in ctx.state.created, where the very version it installed is
-- still the one installed (a package reinstalled or upgraded since is kept).
function M.remove_created(ctx)
  local recorded = {}
  for _, e in ipairs(ctx.state.created or {}) do
    if e.type == "package" and e.name then recorded[#recorded + 1] = e end
  end
  if #recorded == 0 then return true end
  local names = {}
  for _, e in ipairs(recorded) do names[#names + 1] = e.name end
  local t, err = M.query(names)
  if not t then return nil, err end
  local todo, kept = {}, {}
  for _, e in ipairs(recorded) do
    local info = t[e.name]
    if info and info.installed then
      if e.version == nil or info.version == e.version then todo[#todo + 1] = e.name
      else kept[#kept + 1] = e.name .. " (now " .. info.version .. ", installed " .. e.version .. ")" end
    end
  end
  if #kept > 0 and ctx.log then
    ctx:log((ctx.plan and "= would keep, changed since: " or "kept, changed since: ") .. table.concat(kept, ", "))
  end
  if ctx.plan then   -- a plan of teardown: what it would remove, nothing done
    for _, n in ipairs(todo) do ctx:log("- package " .. n) end
    if ctx.detail and #todo > 0 then ctx:detail("would remove " .. table.concat(todo, ", ")) end
    return #todo > 0
  end
  if #todo == 0 then return true end
  local ok, rerr = M.remove(ctx, todo, {})
  if not ok then return nil, rerr end
  if ctx.detail then ctx:detail("removed " .. table.concat(todo, ", ")) end
  return true
end

-- remove(ctx, names, { purge= }) -> true | nil, message
function M.remove(ctx, names, opts)
  local argv = { "apt-get", (opts and opts.purge) and "purge" or "remove", "-y" }
  for _, o in ipairs(APT_OPTS) do argv[#argv + 1] = o end
  for _, n in ipairs(names) do argv[#argv + 1] = n end
  return apt(ctx, argv, "apt-get " .. argv[2] .. " " .. table.concat(names, " "))
end

-- candidate(name) -> version | nil: what apt would install (spawns apt-cache)
function M.candidate(name)
  if not exec.which("apt-cache") then return nil end
  local r = exec.run { "apt-cache", "policy", name, env = APT_ENV }
  if not r or r.status ~= 0 then return nil end
  local v = r.output:match("\n%s*Candidate:%s*(%S+)")
  if not v or v == "(none)" then return nil end
  return v
end

-- ---------------------------------------------------------------- resources

local function check_names(self, what)
  for _, spec in ipairs(self.names) do
    local name, version = M.parse_spec(spec)
    if not valid_name(name) then
      return nil, ("bad package name %q"):format(name)
    end
    if version and what == "absent" then
      return nil, ("%q: a version makes no sense for a package to remove"):format(spec)
    end
  end
  return true
end

-- what_to_install(self) -> list of specs, list of change lines | nil, message
local function pending_installs(self)
  local t, err = M.query(self.names)
  if not t then return nil, err end
  local todo, changes = {}, {}
  for _, spec in ipairs(self.names) do
    local name, version = M.parse_spec(spec)
    local info = t[name]
    if not info or not info.installed then
      todo[#todo + 1] = spec
      if info and info.status ~= "" and not info.status:match("not%-installed$")
         and not info.status:match("config%-files$") then
        changes[#changes + 1] = ("install %s (now: %s)"):format(spec, info.status)
      else
        changes[#changes + 1] = "install " .. spec
      end
    elseif version and info.version ~= version then
      todo[#todo + 1] = spec
      changes[#changes + 1] = ("install %s %s (installed: %s)"):format(name, version, info.version)
    end
  end
  return todo, changes
end

M.installed = R.define {
  kind = "pkg.installed",
  positional = "names",
  options = {
    names = { "strings", doc = "the packages, each a name or name=version (a pin)" },
    update = { "boolean", default = true,       -- refresh stale lists first
               doc = "run apt-get update first when the package lists are missing or older than max_age" },
    max_age = { "duration", default = "1d",     -- how old the lists may be
                doc = "how old the package lists may be before update refreshes them" },
    recommends = { "boolean?",                  -- false: --no-install-recommends
                   doc = "false: install without recommended packages (--no-install-recommends)" },
  },
  validate = function(self) return check_names(self, "installed") end,
  describe = function(self) return "packages " .. table.concat(self.names, ", ") end,
  check = function(self, ctx)
    local todo, changes = pending_installs(self)
    if not todo then return nil, changes end
    if #todo == 0 then return true end
    if self.update then
      local why = M.lists_stale(self.max_age)
      if why then table.insert(changes, 1, "apt-get update (" .. why .. ")") end
    end
    return false, changes
  end,
  apply = function(self, ctx)
    local todo, err = pending_installs(self)
    if not todo then return nil, err end
    if #todo == 0 then return true end
    local ok, ierr = M.install(ctx, todo, { update = self.update, max_age = self.max_age,
                                          recommends = self.recommends, record = true })
    if not ok then return nil, ierr end
    return true
  end,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  state_revert = true,
  revert = function(self, ctx) return M.remove_created(ctx) end,
}

M.absent = R.define {
  kind = "pkg.absent",
  positional = "names",
  options = {
    names = { "strings", doc = "the packages that must not be installed" },
    purge = { "boolean", default = false,     -- also remove configuration files
              doc = "true: also remove their configuration files (apt-get purge)" },
  },
  validate = function(self) return check_names(self, "absent") end,
  describe = function(self)
    return (self.purge and "packages purged: " or "packages absent: ") .. table.concat(self.names, ", ")
  end,
  check = function(self, ctx)
    local t, err = M.query(self.names)
    if not t then return nil, err end
    local changes = {}
    for _, name in ipairs(self.names) do
      local info = t[name]
      if info and info.installed then
        changes[#changes + 1] = (self.purge and "purge " or "remove ") .. name .. " " .. info.version
      elseif info and self.purge and info.status:match("config%-files$") then
        changes[#changes + 1] = "purge " .. name .. " (configuration files left)"
      end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local t, err = M.query(self.names)
    if not t then return nil, err end
    local todo = {}
    for _, name in ipairs(self.names) do
      local info = t[name]
      if info and (info.installed or (self.purge and info.status:match("config%-files$"))) then
        todo[#todo + 1] = name
      end
    end
    if #todo == 0 then return true end
    local ok, rerr = M.remove(ctx, todo, { purge = self.purge })
    if not ok then return nil, rerr end
    if ctx.detail then ctx:detail((self.purge and "purged " or "removed ") .. table.concat(todo, ", ")) end
    return true
  end,
}

-- check only: a preflight that this is a dpkg/apt system
M.supported = R.define {
  kind = "pkg.supported",
  options = {},
  describe = function() return "a Debian or Ubuntu system (dpkg, apt-get)" end,
  check = function()
    local ok, err = M.check_system()
    if not ok then return false, err end
    if not exec.which("apt-get") then
      return false, "apt-get is not on PATH; packages are supported on Debian and Ubuntu (dpkg and apt-get) only"
    end
    return true
  end,
}

return M
