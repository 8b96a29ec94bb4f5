-- provision.sys: facts about this machine (the C primitives of provision._sys)
-- and check-only resources for preflight checks:
--
--   sys.memory { min = "4GiB" }          total memory
--   sys.cpus { min = 2 }
--   sys.disk { path = ".", min = "10GB" } space available at path
--   sys.port_free { port = 8080, host?, unless = function() return bool end }
--   sys.command { name = "docker", hint? }
--
-- They have no apply: when a check fails, the runner fails with its change
-- text, which says what is wrong and what to do.
--
-- Helpers: sys.uid(), sys.gid(), sys.user(), sys.memory(), sys.cpus(),
-- sys.disk_free(path), sys.port_free(port, host), sys.command(name) -> path|nil,
-- sys.getenv(k), sys.hostname(), sys.os_release() -> { ID=, VERSION_ID=, ... },
-- sys.human_size(bytes) -> "4.0 GiB".
local C = require "provision._sys"
local R = require "provision.resource"
local core = require "provision._core"
local exec = require "provision._exec"

local M = {}
for k, v in pairs(C) do M[k] = v end

-- human_size(n) -> "512 B", "1.5 KiB", "4.0 GiB" (powers of 1024)
function M.human_size(n)
  n = tonumber(n) or 0
  local units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" }
  local i = 1
  while math.abs(n) >= 1024 and i < #units do n = n / 1024; i = i + 1 end
  if i == 1 then return ("%d B"):format(n) end
  return ("%.1f %s"):format(n, units[i])
end

-- os_release([path]) -> table of /etc/os-release (or /usr/lib/os-release) | nil, msg
function M.os_release(path)
  local text, err
  if path then text, err = core.read_file(path)
  else
    text, err = core.read_file("/etc/os-release")
    if not text then text, err = core.read_file("/usr/lib/os-release") end
  end
  if not text then return nil, err end
  local t = {}
  for line in text:gmatch("[^\n]+") do
    local k, v = line:match("^%s*([%w_]+)=(.*)$")
    if k then
      v = v:gsub("%s+$", "")
      local q = v:sub(1, 1)
      if (q == '"' or q == "'") and v:sub(-1) == q and #v >= 2 then
        v = v:sub(2, -2)
        if q == '"' then v = v:gsub("\\([\\\"$`])", "%1") end
      end
      t[k] = v
    end
  end
  return t
end

local human = M.human_size

-- sys.memory() -> bytes, but sys.memory { min = ... } -> a resource: the same
-- name serves a recipe's expression and its preflight check.
local function dual(prim, resource)
  return function(arg, ...)
    if type(arg) == "table" then return resource(arg) end
    return prim(arg, ...)
  end
end

local memory_res = R.define {
  kind = "sys.memory",
  options = { min = "size" },
  describe = function(self) return "at least " .. human(self.min) .. " of memory" end,
  check = function(self)
    local have = C.memory()
    if have >= self.min then return true end
    return false, ("need at least %s of memory, have %s (add memory, or lower the requirement)")
      :format(human(self.min), human(have))
  end,
}
M.memory = dual(C.memory, memory_res)

local cpus_res = R.define {
  kind = "sys.cpus",
  options = { min = "integer" },
  describe = function(self) return ("at least %d CPU%s"):format(self.min, self.min == 1 and "" or "s") end,
  check = function(self)
    local have = C.cpus()
    if have >= self.min then return true end
    return false, ("need at least %d CPUs, have %d"):format(self.min, have)
  end,
}
M.cpus = dual(C.cpus, cpus_res)

-- the nearest existing folder at or above path (a project folder may not exist yet)
local function existing_parent(path)
  local fs = require "provision._fs"
  local p = path
  while p ~= "" and not fs.stat(p) do
    local parent = p:match("^(.*)/[^/]*$")
    if parent == nil then p = "."
    elseif parent == "" then p = "/"
    else p = parent end
    if p == "." or p == "/" then break end
  end
  return p
end

M.disk = R.define {
  kind = "sys.disk",
  options = { path = { "string", default = "." }, min = "size" },
  describe = function(self) return ("at least %s free at %s"):format(human(self.min), self.path) end,
  check = function(self)
    local where = existing_parent(self.path)
    local have, err = C.disk_free(where)
    if not have then return nil, err end
    if have >= self.min then return true end
    return false, ("need at least %s free at %s, have %s (free some space)")
      :format(human(self.min), self.path, human(have))
  end,
}

local port_res = R.define {
  kind = "sys.port_free",
  options = { port = "integer", host = { "string", default = "0.0.0.0" }, ["unless"] = "function?" },
  validate = function(self)
    if self.port < 1 or self.port > 65535 then return nil, "port must be 1 to 65535" end
    return true
  end,
  describe = function(self) return ("port %d free on %s"):format(self.port, self.host) end,
  check = function(self)
    local ok, why = C.port_free(self.port, self.host)
    if ok then return true end
    if ok == nil then return nil, why end
    if self["unless"] and self["unless"]() then return true end
    return false, why .. " (stop what listens there, or choose another port)"
  end,
}
M.port_free = dual(C.port_free, port_res)

local command_res = R.define {
  kind = "sys.command",
  positional = "name",
  options = { name = "string", hint = "string?" },
  describe = function(self) return "command " .. self.name end,
  check = function(self)
    if exec.which(self.name) then return true end
    return false, ("command not found: %s%s"):format(self.name,
      self.hint and (" (" .. self.hint .. ")") or "")
  end,
}
M.command = function(arg)
  if type(arg) == "table" then return command_res(arg) end
  if type(arg) ~= "string" or arg == "" then error("sys.command: expected a command name", 2) end
  return exec.which(arg)
end

return M
