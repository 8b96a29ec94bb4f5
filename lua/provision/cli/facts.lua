-- provision.cli.facts: `provision facts [--json]`, what provision.sys (and
-- the Docker engine, and Compose) know about this machine, as a recipe's
-- checks see them: os, kernel and architecture, host and user, CPUs,
-- memory, disk free where the run starts, PID 1, the Docker engine (through
-- its API: version, API version, swarm state) and Compose. Text for people,
-- one {"event":"facts", ...} line with --json. Nothing is changed; no
-- process is spawned except Compose's `version` when its detection cache
-- does not already know it (the same cache recipes use).
local sys = require "provision.sys"
local core = require "provision._core"
local json = require "provision.json"

local M = {}

local function docker_facts()
  local api = require "provision.docker.api"
  local status, body, headers = api.request("GET", "/_ping", { timeout = 5, headers = true })
  if not status then return { host = api.host(), error = body } end
  if status ~= 200 then return { host = api.host(), error = ("/_ping answered %d"):format(status) } end
  local d = { host = api.host(), api = headers and headers["api-version"] or nil }
  d.engine = headers and headers.server and headers.server:match("^Docker/(%S+)") or api.engine_version()
  local info = api.info()
  if type(info) == "table" and type(info.Swarm) == "table" then
    d.swarm = info.Swarm.LocalNodeState
    if info.Swarm.ControlAvailable then d.swarm = d.swarm .. " (manager)" end
  end
  return d
end

local function compose_facts()
  local ccli = require "provision.compose.cli"
  local cache = ccli.read_cache()
  local info, err = ccli.detect { cache = cache }
  if not info then return { error = err } end
  if info.fresh then ccli.write_cache(cache) end
  return { command = info.name, version = info.version }
end

-- gather() -> the facts table (each part there, or with an error field)
function M.gather()
  local f = { provision = core.version }
  local osr = sys.os_release()
  f.os = osr and { id = osr.ID, version_id = osr.VERSION_ID, name = osr.PRETTY_NAME or osr.NAME } or nil
  local u = sys.uname()
  f.kernel, f.arch = u.release, u.machine
  f.hostname = sys.hostname()
  f.user = { name = sys.user(), uid = sys.uid(), gid = sys.gid() }
  f.cpus = sys.cpus()
  f.memory = { total = sys.memory(), available = sys.memory_available() }
  local cwd = core.cwd() or "."
  f.disk = { path = cwd, free = sys.disk_free(cwd) }
  local init = core.read_file("/proc/1/comm")
  f.init = init and init:gsub("%s+$", "") or nil
  f.docker = docker_facts()
  f.compose = compose_facts()
  return f
end

local function text(f)
  local h = sys.human_size
  local lines = {}
  local function add(k, v) lines[#lines + 1] = ("%-10s%s"):format(k, v) end
  add("os", f.os and ("%s (%s %s)"):format(f.os.name or "?", f.os.id or "?", f.os.version_id or "?") or "unknown (no os-release)")
  add("kernel", ("%s %s"):format(f.kernel, f.arch))
  add("hostname", f.hostname or "?")
  add("user", ("%s (uid %d, gid %d)"):format(f.user.name or "?", f.user.uid, f.user.gid))
  add("cpus", tostring(f.cpus))
  add("memory", ("%s (%s available)"):format(h(f.memory.total), f.memory.available and h(f.memory.available) or "?"))
  add("disk", ("%s free at %s"):format(f.disk.free and h(f.disk.free) or "?", f.disk.path))
  add("init", (f.init or "?") .. (f.init == "systemd" and "" or " (not systemd)"))
  local d = f.docker
  add("docker", d.error and ("none: " .. d.error) or ("engine %s (API %s) at %s, swarm %s")
    :format(d.engine or "?", d.api or "?", d.host, d.swarm or "?"))
  local c = f.compose
  add("compose", c.error and ("none: " .. c.error) or (c.command .. " " .. c.version))
  add("provision", f.provision)
  return table.concat(lines, "\n") .. "\n"
end

-- main(o) -> exit code: 0 (facts that could not be read say why in their place)
function M.main(o)
  local f = M.gather()
  if o.json then
    f.event = "facts"
    io.stdout:write(json.encode(f), "\n")
  else
    io.stdout:write(text(f))
  end
  return 0
end

return M
