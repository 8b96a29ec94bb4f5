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
-- sys.listeners(port) -> { "127.0.0.1", "::", ... } (from /proc/net/tcp*),
-- sys.getenv(k), sys.hostname(), sys.os_release() -> { ID=, VERSION_ID=, ... },
-- sys.uname() -> { sysname=, release=, version=, machine= },
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

-- a check's answer that says what was measured, met or not: true, with
-- "MEASURE (need MIN)" as the check line's detail; or false, "MEASURE,
-- need at least MIN (TODO)"
local function measured(ctx, ok, measure, min, todo)
  if ok then
    if ctx and ctx.detail then ctx:detail(("%s (need %s)"):format(measure, min)) end
    return true
  end
  return false, ("%s, need at least %s%s"):format(measure, min, todo and (" (" .. todo .. ")") or "")
end

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
  options = { min = { "size", doc = "the least memory the machine must have (\"4GiB\")" } },
  describe = function(self) return "at least " .. human(self.min) .. " of memory" end,
  -- the check line says what was measured, met or not ("15.5 GiB of
  -- memory (need 4.0 GiB)"): ctx:detail when met, the reason when not
  check = function(self, ctx)
    local have = C.memory()
    return measured(ctx, have >= self.min, ("%s of memory"):format(human(have)), human(self.min),
      "add memory, or lower the requirement")
  end,
}
M.memory = dual(C.memory, memory_res)

local cpus_res = R.define {
  kind = "sys.cpus",
  options = { min = { "integer", doc = "the least number of CPUs the machine must have" } },
  describe = function(self) return ("at least %d CPU%s"):format(self.min, self.min == 1 and "" or "s") end,
  check = function(self, ctx)
    local have = C.cpus()
    return measured(ctx, have >= self.min, ("%d CPU%s"):format(have, have == 1 and "" or "s"), tostring(self.min))
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
  options = {
    path = { "string", default = ".", doc = "a path on the filesystem whose free space counts" },
    min = { "size", doc = "the least free space there (\"10GB\")" },
  },
  describe = function(self) return ("at least %s free at %s"):format(human(self.min), self.path) end,
  check = function(self, ctx)
    local where = existing_parent(self.path)
    local have, err = C.disk_free(where)
    if not have then return nil, err end
    local at = where == self.path and self.path or ("%s (for %s, not there yet)"):format(where, self.path)
    return measured(ctx, have >= self.min, ("%s free at %s"):format(human(have), at), human(self.min), "free some space")
  end,
}

-- the listening TCP sockets on port, from /proc/net/tcp and tcp6:
-- { "127.0.0.1", "::", ... } (empty where /proc is not there)
local LITTLE = string.pack("=I4", 1):byte(1) == 1
local function proc_addr(hex)
  local bytes = {}
  for w in hex:gmatch("%x%x%x%x%x%x%x%x") do   -- 32-bit words in host order
    local b = {}
    for i = 1, 4 do b[i] = tonumber(w:sub(2 * i - 1, 2 * i), 16) end
    if LITTLE then b[1], b[2], b[3], b[4] = b[4], b[3], b[2], b[1] end
    for i = 1, 4 do bytes[#bytes + 1] = b[i] end
  end
  if #bytes == 4 then return table.concat(bytes, ".") end
  local g = {}
  for i = 1, 8 do g[i] = bytes[2 * i - 1] * 256 + bytes[2 * i] end
  if g[1] + g[2] + g[3] + g[4] + g[5] == 0 and g[6] == 0xffff then   -- ::ffff:a.b.c.d
    return ("::ffff:%d.%d.%d.%d"):format(bytes[13], bytes[14], bytes[15], bytes[16])
  end
  local best, blen, i = 0, 1, 1   -- the longest run of zero groups (two or more) becomes ::
  while i <= 8 do
    local j = i
    while j <= 8 and g[j] == 0 do j = j + 1 end
    if j - i > blen then best, blen = i, j - i end
    i = j + 1
  end
  local parts = {}
  for k = 1, 8 do parts[k] = ("%x"):format(g[k]) end
  if best == 0 then return table.concat(parts, ":") end
  return table.concat(parts, ":", 1, best - 1) .. "::" .. table.concat(parts, ":", best + blen, 8)
end

local function listeners(port)
  local out, seen = {}, {}
  for _, f in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    for line in (core.read_file(f) or ""):gmatch("[^\n]+") do
      local addr, p, st = line:match("^%s*%d+:%s+(%x+):(%x+)%s+%x+:%x+%s+(%x%x)")
      if addr and st == "0A" and tonumber(p, 16) == port then
        local a = proc_addr(addr)
        if not seen[a] then seen[a] = true; out[#out + 1] = a end
      end
    end
  end
  return out
end
M.listeners = listeners

local WILDCARD = { ["0.0.0.0"] = true, ["::"] = true, [""] = true }

-- in_use(port, host, why): why, naming the addresses that listen on port
-- (a listener on 127.0.0.1 makes 0.0.0.0 busy too). Reading /proc/net/tcp
-- walks the kernel's whole socket table (milliseconds on a big machine), so
-- it is done only for a message that will be shown.
local function in_use(n, host, why)
  local all, used = listeners(n), {}
  for _, a in ipairs(all) do
    if WILDCARD[host] or a == host or WILDCARD[a] then used[#used + 1] = a end
  end
  if #used == 0 then used = all end
  if #used == 0 then return why end
  local where = table.concat(used, " and ")
  if where == host then return why end
  return ("port %d is in use on %s, so not free on %s"):format(n, where, host)
end

-- probe(port, host): C.port_free with the port checked; "in use" is
-- false, "in use" (not yet naming the listeners: see in_use)
local function probe(port, host)
  local n = math.tointeger(tonumber(port))
  if not n or n < 1 or n > 65535 then
    error(("sys.port_free: port must be an integer from 1 to 65535, not %s"):format(
      type(port) == "string" and ("%q"):format(port) or tostring(port)), 3)
  end
  local ok, why = C.port_free(n, host)
  return ok, why, n, ok == false and why:find(" is in use$") ~= nil
end

-- port_free(port, host): C.port_free, but "in use" names the address that is listening
local function port_free(port, host)
  host = host or "0.0.0.0"
  local ok, why, n, busy = probe(port, host)
  if busy then return false, in_use(n, host, why) end
  return ok, why
end

local port_res = R.define {
  kind = "sys.port_free",
  options = {
    port = { "integer", doc = "the TCP port that must be free" },
    host = { "string", default = "0.0.0.0", doc = "the address a bind to the port is tried on" },
    ["unless"] = { "function?", doc = "a function: when it returns true, the port may be taken (by this very stack)" },
  },
  validate = function(self)
    if self.port < 1 or self.port > 65535 then
      return nil, ("port must be 1 to 65535, not %d"):format(self.port)
    end
    return true
  end,
  describe = function(self) return ("port %d free on %s"):format(self.port, self.host) end,
  check = function(self, ctx)
    local ok, why, n, busy = probe(self.port, self.host)
    if ok then   -- what was measured: a bind there succeeded
      if ctx and ctx.detail then ctx:detail(("port %d free on %s (a bind to it succeeded)"):format(self.port, self.host)) end
      return true
    end
    if ok == nil then return nil, why end
    if self["unless"] and self["unless"]() then
      if ctx and ctx.detail then ctx:detail(("port %d in use (accepted by unless)"):format(self.port)) end
      return true
    end
    if busy then why = in_use(n, self.host, why) end
    return false, why .. " (stop what listens there, or choose another port)"
  end,
}
M.port_free = dual(port_free, port_res)

local command_res = R.define {
  kind = "sys.command",
  positional = "name",
  options = {
    name = { "string", doc = "a program that must be on PATH" },
    hint = { "string?", doc = "what to do when it is missing (shown with the failure)" },
  },
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
