-- provision.compose: Docker Compose stacks, through the real Compose CLI
-- (`docker compose` v2 or `docker-compose` v1, argv only, never a shell
-- string) for changes, and through the Engine API (provision.docker) for
-- every check and every wait, so a converged stack is confirmed without
-- spawning a process.
--
-- Functions:
--   compose.detect { command? }  -> { argv = {...}, version = "1.29.2", name = "docker-compose" } | nil, msg
--        command (or PROVISION_COMPOSE, or compose.use(cmd)): "docker compose" or "docker-compose";
--        else `docker compose version`, then `docker-compose version`.
--   compose.project_name(dir [, explicit]) -> the name Compose derives
--   compose.read_env_file(path) -> { K = V } | nil, msg    (.env as Compose reads it)
--   compose.interpolate(text_or_table, env) -> same shape | nil, msg
--        ${VAR} ${VAR:-default} ${VAR-default} ${VAR:?err} ${VAR?err} $VAR $$
--   compose.load_project { project_dir, file?, project? } -> project | nil, msg
--        project.name, .file (the first), .files, .services (interpolated,
--        the files merged), .env
--   compose.find_files(dir, file?, env?) -> the compose files Compose reads
--   compose.status(project, services, wait) -> states, problems
-- Resources:
--   compose.available { min_version?, command? }       check-only preflight
--   compose.up { project_dir, services?, wait = "running"|"healthy", timeout?, project?, file? }
--        timeout (default 5m): how long the services may take to be running
--        or healthy once Compose has started them
--   compose.run_once { project_dir, service, timeout?, project?, file? }
--   compose.down { project_dir, volumes?, remove_orphans?, rmi?, project?, file? }
--        volumes: removes only the volumes Compose created for the project
--        (labelled com.docker.compose.project=<name>) and the anonymous ones
--        of its containers, never a same-name volume that was there before
local FS = require "provision._fs"
local exec = require "provision._exec"
local core = require "provision._core"
local docker = require "provision.docker"
local yaml = require "provision.yaml"
local R = require "provision.resource"
local json = require "provision.json"
local envfile = require "provision.envfile"

local M = {}
-- the file primitives are provision._fs's; a compose file or .env that is
-- not there (yet) hashes to false
local C = {
  stat = FS.stat, realpath = FS.realpath,
  sha256_file = function(path)
    local h, err, code = FS.sha256(path)
    if h == nil and code == 2 then return false end   -- ENOENT
    return h, err
  end,
}
M.sha256_file = C.sha256_file
M.realpath = C.realpath

local FILES_V1 = { "docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml" }
-- the override Compose reads after the default file (v1's names, in its order)
local OVERRIDES = { "docker-compose.override.yml", "docker-compose.override.yaml",
  "compose.override.yml", "compose.override.yaml" }

-- ---- detection ----

local chosen        -- compose.use(...)
local detected = {} -- per-process cache: command key -> result

function M.use(cmd) chosen = cmd end

local function argv_of(cmd)
  if type(cmd) == "table" then return cmd end
  local t = {}
  for w in tostring(cmd):gmatch("%S+") do t[#t + 1] = w end
  return t
end

-- a cheap signature of the binaries detection depends on (stat only)
function M.signature(argv)
  local parts = {}
  local paths = { exec.which(argv[1]) or ("missing:" .. argv[1]) }
  if argv[1] == "docker" and argv[2] == "compose" then
    local home = os.getenv("HOME") or ""
    for _, d in ipairs { home .. "/.docker/cli-plugins", "/usr/local/lib/docker/cli-plugins",
                         "/usr/local/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins",
                         "/usr/libexec/docker/cli-plugins" } do
      paths[#paths + 1] = d .. "/docker-compose"
    end
  end
  for _, p in ipairs(paths) do
    local st = C.stat(p)
    parts[#parts + 1] = p .. "=" .. (st and (st.size .. "@" .. st.mtime) or "none")
  end
  return table.concat(parts, ";")
end

local function try_version(argv)
  if not exec.which(argv[1]) then return nil, argv[1] .. ": not found" end
  local cmd = { table.unpack(argv) }
  cmd[#cmd + 1] = "version"
  local r, err = exec.run(cmd)
  if not r then return nil, err end
  if r.status ~= 0 then
    return nil, table.concat(argv, " ") .. " version: exit " .. r.status .. ": " .. (r.output:match("[^\n]*") or "")
  end
  local v = r.output:match("version v?(%d+%.%d+%.%d+)") or r.output:match("v?(%d+%.%d+%.%d+)")
  if not v then return nil, table.concat(argv, " ") .. " version: cannot read a version in " .. ("%q"):format(r.output:sub(1, 80)) end
  return v
end

-- detect { command?, cache? } -> info | nil, msg
-- cache: a table (e.g. ctx.state) holding an earlier result; it is used when
-- the binaries' signature is unchanged, and updated otherwise.
function M.detect(o)
  o = o or {}
  local want = o.command or chosen or os.getenv("PROVISION_COMPOSE")
  if want == "" then want = nil end
  local candidates = want and { argv_of(want) } or { { "docker", "compose" }, { "docker-compose" } }
  local key = want and table.concat(argv_of(want), " ") or "auto"
  if detected[key] then return detected[key] end
  local cache = o.cache
  if cache and cache.key == key and cache.argv then
    local sig = M.signature(cache.argv)
    if sig == cache.signature then
      local info = { argv = cache.argv, version = cache.version, name = table.concat(cache.argv, " "), signature = sig }
      detected[key] = info
      return info
    end
  end
  local errs = {}
  for _, argv in ipairs(candidates) do
    local v, err = try_version(argv)
    if v then
      local info = { argv = argv, version = v, name = table.concat(argv, " "), signature = M.signature(argv), fresh = true }
      detected[key] = info
      if cache then
        cache.key, cache.argv, cache.version, cache.signature = key, argv, v, info.signature
      end
      return info
    end
    errs[#errs + 1] = err
  end
  if want then return nil, "compose command " .. key .. " does not work: " .. table.concat(errs, "; ") end
  return nil, "neither `docker compose` (v2) nor `docker-compose` (v1) works (" .. table.concat(errs, "; ") ..
    "): install docker-compose or the docker compose plugin"
end

function M.cache_dir()
  local x = os.getenv("XDG_CACHE_HOME")
  if x and x ~= "" then return x .. "/provision" end
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.cache/provision" end
  return nil
end

-- ---- project ----

function M.normalize_name(name)
  local n = name:lower():gsub("[^a-z0-9_-]", "")
  n = n:gsub("^[_-]+", "")
  return n
end

function M.project_name(dir, explicit, env)
  if explicit and explicit ~= "" then return M.normalize_name(explicit) end
  local from_env = os.getenv("COMPOSE_PROJECT_NAME")
  if (not from_env or from_env == "") and env then from_env = env.COMPOSE_PROJECT_NAME end
  if from_env and from_env ~= "" then return M.normalize_name(from_env) end
  local abs = C.realpath(dir) or dir
  local base = abs:gsub("/+$", ""):match("([^/]*)$")
  local n = M.normalize_name(base or "")
  return n ~= "" and n or "default"
end

-- .env as Compose reads it: provision.envfile's reader, the one of the
-- project (the same that reads back what fs.env_file writes)
function M.read_env_file(path)
  local text = core.read_file(path)
  if not text then return nil, path .. ": cannot read" end
  return envfile.decode(text, path)
end

-- interpolate one string, in one pass as Compose v1 does: "$$" is a "$",
-- "${NAME}", "${NAME:-default}" (and -, :?, ?) and "$NAME" are looked up;
-- what a substitution gives (a value, a default) is not read again
local function interp(s, env, where)
  local err
  local function braced(expr)
    local name, op, rest = expr:match("^([%a_][%w_]*)(:?[-?])(.*)$")
    if not name then
      name = expr:match("^([%a_][%w_]*)$")
      if not name then err = err or ("invalid interpolation format in %q"):format(s); return "" end
      return env[name] or ""
    end
    local v = env[name]
    local unset = v == nil or (op:sub(1, 1) == ":" and v == "")
    if op:sub(-1) == "-" then
      if unset then return rest end   -- as is: v1 does not read a default again
      return v
    end
    if unset then
      err = err or ("required variable %s is missing a value: %s"):format(name, rest)
      return ""
    end
    return v
  end
  local out, i = {}, 1
  while true do
    local j = s:find("$", i, true)
    if not j then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, j - 1)
    local nx = s:sub(j + 1, j + 1)
    if nx == "$" then
      out[#out + 1] = "$"; i = j + 2
    elseif nx == "{" then
      local close = s:find("}", j + 2, true)
      if not close then err = err or ("invalid interpolation format in %q"):format(s); break end
      out[#out + 1] = braced(s:sub(j + 2, close - 1)); i = close + 1
    else
      local name = s:match("^[%a_][%w_]*", j + 1)
      if name then out[#out + 1] = env[name] or ""; i = j + 1 + #name
      else out[#out + 1] = "$"; i = j + 1 end
    end
  end
  if err then return nil, (where and (where .. ": ") or "") .. err end
  return table.concat(out)
end

-- interpolate(text_or_table, env) -> value | nil, msg (values only, as Compose does)
function M.interpolate(v, env, where)
  env = env or {}
  if type(v) == "string" then return interp(v, env, where) end
  if type(v) ~= "table" or v == yaml.null then return v end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    local nv, err = M.interpolate(x, env, where and (where .. "." .. tostring(k)) or tostring(k))
    if nv == nil and err then return nil, err end
    out[k] = nv
  end
  return out
end

function M.find_file(dir, file)
  if file then
    if file:sub(1, 1) ~= "/" then file = dir .. "/" .. file end
    return file
  end
  for _, f in ipairs(FILES_V1) do
    local p = dir .. "/" .. f
    if C.stat(p) then return p end
  end
  return nil
end

-- The compose files Compose reads in dir, in order. A file named (-f): that
-- one. Else, as Compose: COMPOSE_FILE (the environment's, else .env's: env)
-- split at COMPOSE_PATH_SEPARATOR (default ":"), relative to dir; else the
-- default file and, when there is one, its override. An empty list: none.
function M.find_files(dir, file, env)
  if file then return { M.find_file(dir, file) } end
  local function var(k)
    local v = os.getenv(k)
    if v == nil and env then v = env[k] end
    return v
  end
  local list = var("COMPOSE_FILE")
  if list and list ~= "" then
    local sep = var("COMPOSE_PATH_SEPARATOR")
    if not sep or sep == "" then sep = ":" end
    local out, from = {}, 1
    while from <= #list + 1 do
      local i = list:find(sep, from, true) or #list + 1
      local f = list:sub(from, i - 1)
      if f ~= "" then out[#out + 1] = f:sub(1, 1) == "/" and f or dir .. "/" .. f end
      from = i + #sep
    end
    return out, "COMPOSE_FILE"
  end
  local main = M.find_file(dir)
  if not main then return {} end
  local out = { main }
  for _, f in ipairs(OVERRIDES) do
    if C.stat(dir .. "/" .. f) then out[#out + 1] = dir .. "/" .. f; break end
  end
  return out
end

-- Compose's merge of a later file into an earlier one, as far as provision
-- reads it: mappings merge key by key; the options Compose concatenates
-- (ports, expose, dns, dns_search, tmpfs, external_links) are concatenated;
-- depends_on and profiles are the union (depends_on: a list and a mapping
-- alike; profiles: an override cannot take one away, `profiles: []` too);
-- anything else the later file sets replaces the earlier value.
local CONCAT = { ports = true, expose = true, dns = true, dns_search = true, tmpfs = true, external_links = true }
local UNION = { depends_on = true, profiles = true }
local function as_mapping(deps)
  if not yaml.is_array(deps) then return deps end
  local m = {}
  for _, d in ipairs(deps) do m[d] = { condition = "service_started" } end
  return m
end
local function merge(base, over, key)
  -- a key with nothing under it (`web:` alone, a null) over a mapping
  -- changes nothing, as in Compose (it took the service's place: a null)
  if over == yaml.null and type(base) == "table" and not yaml.is_array(base) then return base end
  if type(base) ~= "table" or type(over) ~= "table" then return over end
  if key == "depends_on" and (yaml.is_array(base) ~= yaml.is_array(over)) then
    base, over = as_mapping(base), as_mapping(over)
  end
  if yaml.is_array(base) and yaml.is_array(over) then
    if not (CONCAT[key] or UNION[key]) then return over end
    local out, seen = yaml.array {}, {}
    for _, list in ipairs { base, over } do
      for _, v in ipairs(list) do
        if not UNION[key] or not seen[v] then out[#out + 1] = v; seen[v] = true end
      end
    end
    return out
  end
  if yaml.is_array(base) or yaml.is_array(over) then return over end
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  for k, v in pairs(over) do out[k] = merge(out[k], v, k) end
  return out
end
M.merge = merge

-- a whole file merged into the ones before it. The top-level volumes,
-- networks, secrets and configs: an entry the later file names replaces
-- the earlier one whole (Compose v1: a volume's `name` an override does
-- not repeat is gone). Version 1 files (services at the top, no
-- `services:`): a service's image in the later file drops its build, and
-- its build the image (v1's legacy merge).
local TOP_ENTRIES = { volumes = true, networks = true, secrets = true, configs = true }
local function merge_file(doc, d)
  local v1 = type(doc.services) ~= "table" and type(d.services) ~= "table"
  local out = {}
  for k, v in pairs(doc) do out[k] = v end
  for k, v in pairs(d) do
    if not v1 and TOP_ENTRIES[k] and type(v) == "table" and not yaml.is_array(v)
       and type(out[k]) == "table" and not yaml.is_array(out[k]) then
      local m = {}
      for name, e in pairs(out[k]) do m[name] = e end
      for name, e in pairs(v) do m[name] = e end
      out[k] = m
    else
      local had = out[k]
      out[k] = merge(had, v, k)
      if v1 and type(v) == "table" and type(had) == "table" and out[k] ~= had then
        if v.image ~= nil then out[k].build = nil
        elseif v.build ~= nil then out[k].image = nil end
      end
    end
  end
  return out
end

-- load_project { project_dir, file?, project?, env_file? } -> project | nil, msg
function M.load_project(o)
  local dir = o.project_dir
  local st = C.stat(dir)
  if not st or st.type ~= "directory" then return nil, "project folder " .. dir .. " does not exist", "missing" end
  local env_path = o.env_file or (dir .. "/.env")
  local env = {}
  if C.stat(env_path) then
    local e, err = M.read_env_file(env_path)
    if not e then return nil, err end
    env = e
  end
  local files, from = M.find_files(dir, o.file, env)
  for _, f in ipairs(files) do
    if not C.stat(f) then
      return nil, "no compose file " .. f .. (from and (" (from " .. from .. ")") or ""), "missing"
    end
  end
  local file = files[1]
  if not file then
    return nil, "no compose file in " .. dir .. " (looked for " .. table.concat(FILES_V1, ", ") .. ")", "missing"
  end
  -- process environment wins over .env, as in Compose
  local lookup = setmetatable({}, { __index = function(_, k)
    local v = os.getenv(k)
    if v ~= nil then return v end
    return env[k]
  end })
  local doc
  for _, f in ipairs(files) do
    local d, err = yaml.load_file(f)
    if not d then return nil, err end
    if type(d) ~= "table" or yaml.is_array(d) then return nil, f .. ": not a compose file (no mapping at the top)" end
    doc = doc and merge_file(doc, d) or d
  end
  local services = doc.services
  if type(services) ~= "table" then
    -- version 1 files: services at the top
    services = {}
    for k, v in pairs(doc) do
      if type(v) == "table" and (v.image or v.build) then services[k] = v end
    end
  end
  local isvc, ierr = M.interpolate(services, lookup, "services")
  if not isvc then return nil, file .. ": " .. ierr end
  -- the folder Compose labels the containers with (working_dir): the
  -- first file's, as v1 and v2 take it (COMPOSE_FILE=sub/app.yml: sub)
  local workdir = file:match("^(.*)/[^/]*$") or "."
  if workdir == "" then workdir = "/" end
  return {
    dir = dir, workdir = workdir, file = file, files = files, env_file = env_path, env = env, doc = doc,
    services = isvc, name = M.project_name(dir, o.project, env), lookup = lookup,
  }
end

-- the services `up` starts: the listed ones and what they depend on, or
-- every service without a profile
function M.expected_services(project, listed)
  local out, seen = {}, {}
  local function add(name)
    if seen[name] then return end
    seen[name] = true
    out[#out + 1] = name
    local svc = project.services[name]
    local deps = svc and svc.depends_on
    if type(deps) == "table" then
      if yaml.is_array(deps) or deps[1] then
        for _, d in ipairs(deps) do add(d) end
      else
        for d in pairs(deps) do add(d) end
      end
    end
  end
  if listed and #listed > 0 then
    for _, s in ipairs(listed) do add(s) end
  else
    -- the profiles COMPOSE_PROFILES turns on (the environment's, else .env's)
    local active = {}
    local prof = project.lookup and project.lookup.COMPOSE_PROFILES
    for name in tostring(prof or ""):gmatch("[^,%s]+") do active[name] = true end
    local names = {}
    for name, svc in pairs(project.services) do
      local ps = type(svc) == "table" and svc.profiles
      local on = type(ps) ~= "table" or #ps == 0
      for _, p in ipairs(type(ps) == "table" and ps or {}) do on = on or active[p] == true end
      if on then names[#names + 1] = name end
    end
    table.sort(names)
    for _, n in ipairs(names) do add(n) end
  end
  table.sort(out)
  return out
end

-- ---- state through the Engine API ----

local GOOD_STATES = { healthy = true, running = true, completed = true }
local ONE_SHOT = { [""] = true, no = true, ["on-failure"] = true }

-- "2026-11-26T18:10:03.123456789Z" (Docker's StartedAt) -> seconds since the epoch, or nil
local function utc_seconds(ts)
  local y, mo, d, h, mi, sec, frac = tostring(ts):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)(%.?%d*)Z$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- days from 1970-01-01 (Howard Hinnant's days_from_civil)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) + (tonumber("0" .. frac) or 0)
end
M.utc_seconds = utc_seconds

-- a container restarted by its policy is taken for running once it has
-- stayed up this long: caught between two crashes it is not up
local RESTARTED_SETTLE = 3

-- container_state(inspect) -> state word, detail
--   "healthy" | "running" | "starting" | "unhealthy" | "completed" | "exited" | other docker states
local function container_state(ins)
  local st = ins.State or {}
  local status = st.Status
  if status == "running" then
    local h = st.Health
    if type(h) == "table" and h.Status then
      if h.Status == "healthy" then return "healthy" end
      if h.Status == "unhealthy" then
        local last = type(h.Log) == "table" and h.Log[#h.Log]
        return "unhealthy", last and type(last.Output) == "string" and last.Output:gsub("%s+$", "") or nil
      end
      return "starting"
    end
    local started = utc_seconds(st.StartedAt)
    local up = started and core.time() - started
    if (ins.RestartCount or 0) > 0 and up and up < RESTARTED_SETTLE then
      return "restarted", ("restarted %d times, up %.1fs"):format(ins.RestartCount, math.max(0, up))
    end
    return "running"
  end
  if status == "restarting" then   -- it exited and its restart policy brings it back
    return "restarting", ("exit code %s, restarted %d times"):format(tostring(st.ExitCode), ins.RestartCount or 0)
  end
  if status == "exited" or status == "dead" then
    local rp = ins.HostConfig and ins.HostConfig.RestartPolicy
    local policy = rp and rp.Name or ""
    if st.ExitCode == 0 and ONE_SHOT[policy] then return "completed", "exit code 0" end
    return "exited", "exit code " .. tostring(st.ExitCode)
  end
  return status or "unknown"
end
M.container_state = container_state

-- state from the container list alone (no inspect): nil when it needs one
local function listed_state(c)
  if c.State ~= "running" then return nil end
  local st = c.Status or ""
  if st:find("%(healthy%)") then return "healthy" end
  if st:find("%(health: starting%)") then return "starting" end
  if st:find("unhealthy") then return nil end
  -- a service without a health check counts as running once it has stayed
  -- up for a second: one that exits at once is not taken for started
  if st:find("^Up Less than a second") then return "just started" end
  return "running"
end

-- the service a container of a project runs; nil for a one-off (`run`) container
local function service_of(c)
  local l = c.Labels
  local svc = l and l[docker.SERVICE_LABEL]
  if svc and (l["com.docker.compose.oneoff"] or "False") == "False" then return svc end
end

-- service_states(project_name, services [, full [, list]]) ->
--   { [service] = { state=, detail=, id=, name=, started=, exit_code= } } | nil, msg
-- One GET /containers/json; a container is inspected only when the list
-- cannot tell (exited: its restart policy; unhealthy: the probe's output),
-- or for every container with full = true (started times). list: the
-- project's containers when the caller has them already.
function M.service_states(name, services, full, list)
  local err
  if not list then
    list, err = docker.containers { project = name }
    if not list then return nil, err end
  end
  local by = {}
  for _, c in ipairs(list) do
    local svc = service_of(c)
    if svc then
      local entry = { id = c.Id, name = (c.Names and c.Names[1] or ""):gsub("^/", "") }
      local s = not full and listed_state(c)
      if s then
        entry.state, entry.exit_code = s, 0
      else
        local ins, ierr = docker.inspect(c.Id)
        if ins then
          entry.state, entry.detail = container_state(ins)
          entry.started = ins.State and ins.State.StartedAt
          entry.exit_code = ins.State and ins.State.ExitCode
          entry.restarts = ins.RestartCount or 0
        elseif not ierr:find("404") then
          return nil, ierr
        end
      end
      local prev = by[svc]
      -- of several replicas, report the worst
      if entry.state and (not prev or not GOOD_STATES[entry.state]) then by[svc] = entry end
    end
  end
  for _, sname in ipairs(services or {}) do
    if not by[sname] then by[sname] = { state = "missing" } end
  end
  return by
end

local GOOD = GOOD_STATES
local RESTARTS_FAILED = 3

-- judge(states, services, wait) -> ready, pending lines, failed line (or nil)
function M.judge(states, services, wait)
  local pending, failed = {}, nil
  for _, s in ipairs(services) do
    local st = states[s]
    local w = st.state
    -- restarting: it exited; a few restarts may be a slow dependency, more
    -- is a crash loop that waiting out the timeout would not cure
    if w == "unhealthy" or w == "exited" or w == "dead" or (w == "restarting" and (st.restarts or 0) >= RESTARTS_FAILED) then
      failed = failed or ("service %s: %s%s"):format(s, w, st.detail and (" (" .. st.detail .. ")") or "")
      pending[#pending + 1] = ("service %s: %s"):format(s, w)
    elseif w == "missing" then
      pending[#pending + 1] = ("service %s: no container"):format(s)
    elseif w == "starting" then
      if wait == "healthy" then pending[#pending + 1] = ("service %s: health starting"):format(s) end
    elseif not GOOD[w] then
      pending[#pending + 1] = ("service %s: not running (%s)"):format(s, w)
    end
  end
  return #pending == 0, pending, failed
end

local function logs_tail(states, service, n)
  local st = states and states[service]
  if not st or not st.id then return "" end
  local text = docker.logs(st.id, { tail = n or 20 })
  if not text or text == "" then return "" end
  text = R.mask(text):gsub("%s+$", "")
  return "\n--- last log lines of " .. service .. " ---\n" .. text
end

-- wait_for(project, services, wait, timeout, ctx) -> true | nil, msg
function M.wait_for(name, services, wait, timeout, ctx)
  local t0 = core.now()
  local delay = 0.1
  while true do
    local states, err = M.service_states(name, services)
    if not states then return nil, err end
    local ready, pending, failed = M.judge(states, services, wait)
    if ready then return true end
    if failed then
      local svc = failed:match("^service (%S+):")
      return nil, failed .. logs_tail(states, svc)
    end
    local elapsed = core.now() - t0
    if elapsed > timeout then
      local svc = pending[1]:match("^service (%S+):")
      return nil, ("timed out after %ds waiting for %s: %s%s"):format(math.floor(timeout),
        wait, table.concat(pending, ", "), logs_tail(states, svc))
    end
    if (ctx and ctx.interrupted and ctx.interrupted()) or core.interrupted() then return nil, "interrupted" end
    if ctx and ctx.spin then ctx:spin(("waiting for %s: %s"):format(wait, pending[1])) end
    core.sleep(delay)
  end
end

-- Compose tells projects apart by name alone, and the name comes from the
-- folder's: ./a/airflow and ./b/airflow are both "airflow". Before taking a
-- project down, make sure its containers are this folder's (Compose labels
-- each with the folder it was started from): nil, message when one is not.
local WORKDIR_LABEL = "com.docker.compose.project.working_dir"
local function container_name(c)
  return (((c.Names and c.Names[1]) or c.Id or "?"):gsub("^/", ""))
end

local function foreign_guard(project)
  local list, err = docker.containers { project = project.name }
  if not list then return nil, err end
  local wdir = project.workdir or project.dir
  local here = C.realpath(wdir) or wdir
  for _, c in ipairs(list) do
    local wd = c.Labels and c.Labels[WORKDIR_LABEL]
    if wd and wd ~= "" and (C.realpath(wd) or wd) ~= here then
      return nil, ("project %s: container %s was started from %s, not %s; not taking it down (give the stacks different project names: project = \"...\")")
        :format(project.name, container_name(c), wd, here)
    end
  end
  return true
end
M.foreign_guard = foreign_guard

-- the containers of the project whose service the compose file no longer
-- has (removed or renamed since they were started): "name (service x)".
-- list: the project's containers when the caller has them already.
local function orphans(project, list)
  local err
  if not list then
    list, err = docker.containers { project = project.name }
    if not list then return nil, err end
  end
  local out = {}
  for _, c in ipairs(list) do
    local svc = service_of(c)
    if svc and not project.services[svc] then
      out[#out + 1] = ("%s (service %s)"):format(container_name(c), svc)
    end
  end
  return out
end
M.orphans = orphans

-- the services whose container runs another image than the one their
-- `image:` names now (imported or built anew since: the tag moved): `up`
-- recreates them, as Compose compares image ids. An image that is not
-- there is no change (`up` could only try to pull it). list: the
-- project's containers (up's check has them already).
local function stale_images(project, services, list)
  local want, ids, out = {}, {}, {}
  for _, s in ipairs(services) do want[s] = true end
  for _, c in ipairs(list) do
    local svc = service_of(c)
    local spec = svc and want[svc] and project.services[svc]
    local ref = type(spec) == "table" and type(spec.image) == "string" and spec.image
    if ref then
      if ids[ref] == nil then
        local img = docker.image_inspect(ref)
        ids[ref] = type(img) == "table" and img.Id or false
      end
      if ids[ref] and c.ImageID ~= ids[ref] then
        out[#out + 1] = ("service %s: %s runs an earlier image of %s (recreated by up)"):format(svc, container_name(c), ref)
      end
    end
  end
  return out
end

-- `down` without --remove-orphans leaves an orphan running, and then fails
-- to remove the network it still holds: say so before anything changes
local function orphan_guard(self, project)
  if self.remove_orphans then return true end
  local orph, err = orphans(project)
  if not orph then return nil, err end
  if #orph == 0 then return true end
  local one = #orph == 1
  return nil, ("project %s: %s %s: `down` without remove_orphans leaves %s (and its network), so the stack would not be down; not taking it down (remove_orphans = true takes %s down too)")
    :format(project.name, table.concat(orph, ", "), one and "is not in the compose file" or "are not in the compose file",
      one and "it" or "them", one and "it" or "them")
end

-- remove, through the Engine API (the compose file may be gone), the
-- containers of project `name` started from `dir` (only those of `service`
-- when given), with their anonymous volumes, then the project's networks
-- once none of its containers is left; named volumes stay, as in the
-- teardown of up. -> the number of containers removed | nil, message
local function remove_by_api(name, dir, service)
  local safe, ferr = foreign_guard { name = name, dir = dir }
  if not safe then return nil, ferr end
  local list, err = docker.containers { project = name, service = service }
  if not list then return nil, err end
  for _, c in ipairs(list) do
    local _, rerr, status = docker.call("DELETE", "/containers/" .. c.Id .. "?force=1&v=1")
    if rerr and status ~= 404 then return nil, rerr end
  end
  local rest, lerr = docker.containers { project = name }
  if not rest then return nil, lerr end
  if #rest > 0 then return #list end
  local nets, nerr = docker.networks { project = name }
  if not nets then return nil, nerr end
  for _, n in ipairs(nets) do
    local _, rerr, status = docker.call("DELETE", "/networks/" .. n.Id)
    if rerr and status ~= 404 then return nil, rerr end
  end
  return #list
end

-- the stack this resource brought up before under another name (the
-- project option, COMPOSE_PROJECT_NAME or the folder changed since): taken
-- down as its teardown would have. Without this it kept running, holding
-- its ports, and nothing recorded it any more.
-- -> the number of containers removed | nil, message
local function retire_previous(ctx, project)
  local old = ctx.state.project
  if not old or old == project.name then return 0 end
  return remove_by_api(old, ctx.state.dir or project.workdir)
end

-- ---- running Compose ----

-- run(project, args, o) -> result | nil, msg (exit status other than 0 is a failure)
function M.run(project, args, o)
  o = o or {}
  local info, err = M.detect { command = o.command, cache = o.cache }
  if not info then return nil, err end
  local argv = { table.unpack(info.argv) }
  argv[#argv + 1] = "-p"; argv[#argv + 1] = project.name
  if o.file then   -- Compose runs in project.dir: a relative path is not from there
    local f = project.file
    if f:sub(1, 1) ~= "/" then f = (core.cwd() or ".") .. "/" .. f end
    argv[#argv + 1] = "-f"; argv[#argv + 1] = f
  end
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv.cwd, argv.timeout, argv.passthrough = project.dir, o.timeout, o.passthrough
  local r, rerr = exec.run(argv)
  if not r then return nil, rerr end
  if r.interrupted then return nil, "interrupted" end
  if r.timed_out then return nil, table.concat(argv, " ") .. ": timed out" end
  if r.status ~= 0 then
    local out = R.mask(r.output):gsub("%s+$", "")
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    local tail = table.concat(lines, "\n", math.max(1, #lines - 14))
    return nil, ("%s: exit %d\n%s"):format(table.concat(argv, " "), r.status, tail), r
  end
  return r
end

local function file_hashes(project)
  local h1, e1 = C.sha256_file(project.file)
  if h1 == nil then return nil, e1 end
  if #project.files > 1 then   -- one file: its digest alone, as states before overrides were read
    local parts = { h1 }
    for i = 2, #project.files do
      local h, e = C.sha256_file(project.files[i])
      if h == nil then return nil, e end
      parts[#parts + 1] = project.files[i] .. " " .. h
    end
    h1 = FS.sha256_string(table.concat(parts, "\n"))
  end
  local h2, e2 = C.sha256_file(project.env_file)
  if h2 == nil then return nil, e2 end
  return { compose = h1, env = h2 or "none" }
end

-- what up and run_once start from: the project and the hashes of its files
-- (what the state records at apply); nil, message, missing on failure
local function project_and_hashes(self)
  local project, err, missing = M.load_project(self)
  if not project then return nil, err, missing end
  local hashes, herr = file_hashes(project)
  if not hashes then return nil, herr end
  return project, hashes
end

-- in plan: a file a step before would put back as the last apply saw it
-- (ctx:planned gives the digest it would leave), a .env edited by hand, say,
-- is no change for the stack. Any other content a step before would leave
-- is reported by the runner, naming that step (reads, inputs_seen).
local function planned_hashes(ctx, project, hashes, rec)
  if not (ctx and ctx.planned and type(rec) == "table") then return hashes end
  if ctx:planned(project.env_file) == rec.env then hashes.env = rec.env end
  if #project.files == 1 and ctx:planned(project.file) == rec.compose then hashes.compose = rec.compose end
  return hashes
end

-- a check's answer when project_and_hashes failed: on a fresh machine (plan
-- before the folder or compose file exists) a change to come, not a failure
local function check_failed(err, missing)
  if missing then return false, err .. " yet" end
  return nil, err
end

local function hash_changes(saved, now)
  local changes = {}
  if not saved then
    changes[#changes + 1] = "no record of an earlier apply"
  else
    if saved.compose ~= now.compose then changes[#changes + 1] = "compose file changed since the last apply" end
    if saved.env ~= now.env then changes[#changes + 1] = ".env changed since the last apply" end
  end
  return changes
end

local common_opts = {
  project_dir = "string",
  project = "string?",
  file = "string?",
  command = "string?",
  timeout = "duration?",
}

local function with(extra)
  local t = {}
  for k, v in pairs(common_opts) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

-- the containers that mount volume `name`, but those of project `own` (nil:
-- all of them): "x_web_1 (project x)" lines
local function volume_users(name, own)
  local list, err = docker.containers { volume = name }
  if not list then return nil, err end
  local out = {}
  for _, c in ipairs(list) do
    local p = c.Labels and c.Labels[docker.PROJECT_LABEL]
    if own == nil or p ~= own then
      out[#out + 1] = ("%s (%s)"):format(container_name(c), p and ("project " .. p) or "not a Compose container")
    end
  end
  return out
end

-- before anything is taken down: a volume of the project that a container
-- of another project (or none) still mounts cannot be removed; say which,
-- and change nothing
local function volume_guard(name)
  local vols, err = docker.volumes { project = name }
  if not vols then return nil, err end
  for _, v in ipairs(vols) do
    local users, uerr = volume_users(v.Name, name)
    if not users then return nil, uerr end
    if #users > 0 then
      return nil, ("project %s: volume %s is in use by container %s; not taking the stack down with its volumes (remove that container first, or leave volumes out)")
        :format(name, v.Name, table.concat(users, ", "))
    end
  end
  return true
end

-- the volumes the compose file declares: { name = <the engine's name>, external = bool }
local function declared_volumes(project)
  local out = {}
  local vols = project.doc and project.doc.volumes
  if type(vols) ~= "table" or vols == yaml.null then return out end
  for key, spec in pairs(vols) do
    if type(key) == "string" then
      if type(spec) ~= "table" or spec == yaml.null then spec = {} end
      local ext = spec.external
      local external = ext ~= nil and ext ~= false and ext ~= yaml.null
      local name = spec.name
      if external and type(ext) == "table" and ext.name then name = ext.name end
      if type(name) == "string" then
        name = M.interpolate(name, project.lookup or {}) or name
      else
        name = external and key or (project.name .. "_" .. key)
      end
      out[#out + 1] = { name = name, external = external }
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- the anonymous volumes of the project's containers (named by the engine:
-- 64 hex digits), which `down --volumes` removed with the containers
local function anonymous_volumes(project)
  local list, err = docker.containers { project = project.name }
  if not list then return nil, err end
  local declared = {}
  for _, d in ipairs(declared_volumes(project)) do declared[d.name] = true end
  local out, seen = {}, {}
  for _, c in ipairs(list) do
    for _, m in ipairs(type(c.Mounts) == "table" and c.Mounts or {}) do
      local n = m.Type == "volume" and m.Name
      if type(n) == "string" and #n == 64 and n:find("^%x+$") and not declared[n] and not seen[n] then
        seen[n] = true
        out[#out + 1] = n
      end
    end
  end
  return out
end

-- after `down`: the anonymous volumes its containers had (names appended
-- to removed) -> removed | nil, message. As the engine does for `down
-- --volumes`: one another container still mounts (volumes_from) stays.
local function remove_anonymous(anonymous, removed)
  for _, n in ipairs(anonymous) do
    local ok, rerr, status = docker.volume_remove(n)
    if ok then removed[#removed + 1] = n
    elseif status ~= 409 then return nil, rerr end
  end
  return removed
end

-- after `down`: remove the volumes Compose created for the project (they
-- carry its label; external ones never do), then the anonymous ones that
-- no other container mounts. -> the names removed | nil, message
local function remove_volumes(project, anonymous)
  local vols, err = docker.volumes { project = project.name }
  if not vols then return nil, err end
  local removed = {}
  for _, v in ipairs(vols) do
    local ok, rerr, status = docker.volume_remove(v.Name)
    if not ok then
      local users = status == 409 and volume_users(v.Name, nil)
      if users and #users > 0 then
        rerr = ("volume %s is in use by container %s; not removed"):format(v.Name, table.concat(users, ", "))
      end
      return nil, rerr
    end
    removed[#removed + 1] = v.Name
  end
  return remove_anonymous(anonymous or {}, removed)
end

-- the declared volumes there under the name Compose would give them but
-- without the project's label: Compose found them and used them; they stay
local function kept_volumes(project)
  local out = {}
  for _, d in ipairs(declared_volumes(project)) do
    if not d.external then
      local v, err = docker.volume_inspect(d.name)
      if v == nil then return nil, err end
      local labels = v and type(v.Labels) == "table" and v.Labels or {}
      if v and labels[docker.PROJECT_LABEL] ~= project.name then out[#out + 1] = d.name end
    end
  end
  return out
end

-- what up and run_once compare with the last apply: the compose file (the
-- one named, else every name Compose looks for) and .env
local function project_inputs(self, project)
  local out = { self.project_dir .. "/.env" }
  if self.file then
    out[#out + 1] = M.find_file(self.project_dir, self.file)
  else
    for _, f in ipairs(FILES_V1) do out[#out + 1] = self.project_dir .. "/" .. f end
    for _, f in ipairs(OVERRIDES) do out[#out + 1] = self.project_dir .. "/" .. f end
    -- COMPOSE_FILE of the environment, else of .env as it is now (a step
    -- that would rewrite .env makes .env itself a change to come): the
    -- files the project loaded from, when it loaded
    local files = project and project.files
    if not files then
      local env = C.stat(out[1]) and M.read_env_file(out[1]) or {}
      files = M.find_files(self.project_dir, nil, env)
    end
    for _, f in ipairs(files) do out[#out + 1] = f end
  end
  return out
end

-- ---- resources ----

M.available = R.define {
  kind = "compose.available",
  options = { min_version = "string?", command = "string?" },
  describe = function(self)
    return "Docker Compose is there" .. (self.min_version and (" (>= " .. self.min_version .. ")") or "")
  end,
  check = function(self, ctx)
    -- Detection spawns Compose (a second or more for the Python v1); its
    -- result is kept with a stat signature of the binaries in ctx.state and
    -- in the user's cache (${XDG_CACHE_HOME:-~/.cache}/provision/), since
    -- the runner does not save a preflight check's state: a later run, of
    -- this recipe or another, spawns nothing while the binaries are the same.
    local cache_dir = M.cache_dir()
    local cache_path = cache_dir and (cache_dir .. "/compose-detected.json")
    local cache = ctx.state.detected
    if not cache then
      local text = cache_path and core.read_file(cache_path)
      cache = text and json.decode(text)
      if type(cache) ~= "table" then cache = {} end
      ctx.state.detected = cache
    end
    local info, err = M.detect { command = self.command, cache = cache }
    if not info then return false, err end
    if info.fresh and not ctx.plan and cache_path and core.mkdirs(cache_dir, 448) then
      core.write_atomic(cache_path, json.encode(cache), 384)
      info.fresh = nil
    end
    if self.min_version and docker.version_compare(info.version, self.min_version) < 0 then
      return false, ("%s %s is older than %s: upgrade it"):format(info.name, info.version, self.min_version)
    end
    if ctx.detail then ctx:detail(info.name .. " " .. info.version) end
    return true
  end,
}

-- the inputs with the digests the last apply saw (rec: ctx.state.applied or
-- .ran): the .env, and the compose file when it is the only one. A step
-- before that would put that same content back changes nothing for us.
local function inputs_seen(self, rec, project)
  local out = project_inputs(self, project)
  if type(rec) ~= "table" then return out end
  local env_path = self.env_file or (self.project_dir .. "/.env")
  for i, p in ipairs(out) do
    if p == env_path and type(rec.env) == "string" and #rec.env == 64 then
      out[i] = { path = p, sha256 = rec.env }
    elseif project and #project.files == 1 and p == project.file and type(rec.compose) == "string" then
      out[i] = { path = p, sha256 = rec.compose }
    end
  end
  return out
end

-- up's inputs: the files, and the images its services run (a docker.image
-- step before it that would import one anew: up would recreate them). The
-- images come from the project as it is now: a compose file an earlier
-- step would rewrite is an input already.
local function up_inputs(self, ctx)
  local project = M.load_project(self)
  local out = inputs_seen(self, ctx and ctx.state and ctx.state.applied, project)
  if project then
    for _, svc in ipairs(M.expected_services(project, self.services)) do
      local spec = project.services[svc]
      if type(spec) == "table" and type(spec.image) == "string" then
        out[#out + 1] = docker.image_key(spec.image)
      end
    end
  end
  return out
end

M.up = R.define {
  kind = "compose.up",
  reads = up_inputs,
  positional = "project_dir",
  options = with { services = "strings?", wait = { "string", default = "running" }, remove_orphans = "boolean?" },
  validate = function(self)
    if self.wait ~= "running" and self.wait ~= "healthy" then
      return nil, "option 'wait' must be \"running\" or \"healthy\", not " .. ("%q"):format(self.wait)
    end
    return true
  end,
  describe = function(self)
    return ("compose stack in %s up%s%s"):format(self.project_dir,
      self.services and (" (" .. table.concat(self.services, ", ") .. ")") or "",
      self.wait == "healthy" and " and healthy" or "")
  end,
  check = function(self, ctx)
    local project, hashes, missing = project_and_hashes(self)   -- hashes: the message on failure
    if not project then return check_failed(hashes, missing) end
    hashes = planned_hashes(ctx, project, hashes, ctx.state.applied)
    local services = M.expected_services(project, self.services)
    local changes = hash_changes(ctx.state.applied, hashes)
    -- one list of the project's containers for the states, the images
    -- and the orphans (the no-op re-run's cost is these calls)
    local list, lerr = docker.containers { project = project.name }
    if not list then return nil, lerr end
    local states, serr = M.service_states(project.name, services, nil, list)
    if not states then return nil, serr end
    local _, pending = M.judge(states, services, self.wait)
    for _, p in ipairs(pending) do changes[#changes + 1] = p end
    for _, l in ipairs(stale_images(project, services, list)) do changes[#changes + 1] = l end
    local old = ctx.state.project
    if old and old ~= project.name then
      local list = docker.containers { project = old }
      if list and #list > 0 then
        changes[#changes + 1] = ("project %s (this stack under its earlier name) is taken down first"):format(old)
      end
    end
    if self.remove_orphans then   -- apply's `up --remove-orphans` takes them down
      for _, o in ipairs(orphans(project, list)) do changes[#changes + 1] = "orphan container " .. o .. ": not in the compose file" end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local project, hashes = project_and_hashes(self)
    if not project then return nil, hashes end
    local args = { "up", "-d" }
    if self.remove_orphans then args[#args + 1] = "--remove-orphans" end
    for _, s in ipairs(self.services or {}) do args[#args + 1] = s end
    ctx.state.detected = ctx.state.detected or {}
    -- timeout: how long the services may take to be running/healthy once
    -- Compose has started them (Compose itself gets ctx.timeout or 10 min)
    local timeout = self.timeout or ctx.timeout or 300
    local gone, gerr = retire_previous(ctx, project)
    if not gone then return nil, gerr end
    if gone > 0 and ctx.log then ctx:log(("project %s taken down: %d containers"):format(ctx.state.project, gone)) end
    local r, rerr = M.run(project, args, { command = self.command, cache = ctx.state.detected,
      file = self.file, timeout = ctx.timeout or 600, passthrough = ctx.verbose })
    if not r then return nil, rerr end
    local services = M.expected_services(project, self.services)
    local ok, werr = M.wait_for(project.name, services, self.wait, timeout, ctx)
    if not ok then return nil, werr end
    ctx.state.applied = hashes
    ctx.state.project, ctx.state.dir = project.name, C.realpath(project.workdir) or project.workdir
    if ctx.detail then ctx:detail(("%d services %s"):format(#services, self.wait)) end
    return true
  end,
  revert = function(self, ctx)
    local project, err, missing = M.load_project(self)
    if not project and missing and ctx.state.project then
      -- the folder or the compose file is gone: Compose cannot take the
      -- stack down, the Engine API can (by the project's label)
      local dir = ctx.state.dir or self.project_dir
      if dir:sub(1, 1) ~= "/" then dir = (core.cwd() or ".") .. "/" .. dir end
      local n, rerr = remove_by_api(ctx.state.project, dir)
      if not n then return nil, rerr end
      ctx.state.applied = nil
      if ctx.detail then ctx:detail(("%s; %d containers removed through the engine"):format(err, n)) end
      return n > 0
    end
    if not project then return nil, err end
    -- what the last apply brought up, under the name it had then
    local gone, gerr = retire_previous(ctx, project)
    if not gone then return nil, gerr end
    local safe, ferr = foreign_guard(project)
    if not safe then return nil, ferr end
    -- the named volumes (the stack's data) stay; the anonymous ones its
    -- containers had go with them, as `docker run --rm` does: with the
    -- containers gone nothing can reach them any more
    local anonymous, aerr = anonymous_volumes(project)
    if not anonymous then return nil, aerr end
    local r, rerr = M.run(project, { "down", "--remove-orphans" }, { command = self.command, file = self.file })
    if not r then return nil, rerr end
    local removed, verr = remove_anonymous(anonymous, {})
    if not removed then return nil, verr end
    ctx.state.applied = nil
    if ctx.detail and #removed > 0 then
      ctx:detail(("stack down; %d anonymous volume%s removed, named volumes kept"):format(#removed, #removed == 1 and "" or "s"))
    end
    return true
  end,
}

M.run_once = R.define {
  kind = "compose.run_once",
  reads = function(self, ctx)
    return inputs_seen(self, ctx and ctx.state and ctx.state.ran, (M.load_project(self)))
  end,
  options = with { service = "string" },
  describe = function(self)
    return ("one-shot service %s in %s ran to completion"):format(self.service, self.project_dir)
  end,
  check = function(self, ctx)
    local project, hashes, missing = project_and_hashes(self)   -- hashes: the message on failure
    if not project then return check_failed(hashes, missing) end
    hashes = planned_hashes(ctx, project, hashes, ctx.state.ran)
    if not project.services[self.service] then
      return nil, ("no service %s in %s"):format(self.service, project.file)
    end
    local changes = hash_changes(ctx.state.ran, hashes)
    local states, serr = M.service_states(project.name, { self.service })
    if not states then return nil, serr end
    local st = states[self.service]
    if st.state == "missing" then
      changes[#changes + 1] = ("service %s: has not run"):format(self.service)
    elseif st.state == "exited" then
      changes[#changes + 1] = ("service %s: last run failed (%s)"):format(self.service, st.detail or "")
    elseif st.exit_code ~= 0 or (st.state ~= "completed" and st.state ~= "exited") then
      -- running again (compose up restarts one-shot services): fine when it had succeeded
      if not (ctx.state.ran and (st.state == "running" or st.state == "healthy" or st.state == "starting")) then
        changes[#changes + 1] = ("service %s: %s"):format(self.service, st.state)
      end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local project, hashes = project_and_hashes(self)
    if not project then return nil, hashes end
    local before = M.service_states(project.name, { self.service }, true)
    local prev_start = before and before[self.service].started
    -- what teardown removes, recorded before it may fail half-way
    ctx.state.project, ctx.state.service = project.name, self.service
    ctx.state.dir = C.realpath(project.workdir) or project.workdir
    ctx.state.detected = ctx.state.detected or {}
    local timeout = self.timeout or ctx.timeout or 600
    local t0 = core.now()
    local r, rerr = M.run(project, { "up", "-d", self.service }, { command = self.command,
      cache = ctx.state.detected, file = self.file, timeout = ctx.timeout or 600, passthrough = ctx.verbose })
    if not r then return nil, rerr end
    t0 = core.now()
    while true do
      local states, serr = M.service_states(project.name, { self.service }, true)
      if not states then return nil, serr end
      local st = states[self.service]
      local fresh = st.started and st.started ~= prev_start
      -- a one-shot whose restart policy brings it back after a failure
      -- (on-failure) has failed: it is not waited for until the timeout
      if st.state == "restarting" and st.exit_code and st.exit_code ~= 0 then
        return nil, ("service %s exited with code %s (%s)%s"):format(self.service, tostring(st.exit_code),
          st.detail or "restarting", logs_tail(states, self.service, 30))
      end
      if fresh and (st.state == "completed" or st.state == "exited") then
        if st.exit_code ~= 0 then
          return nil, ("service %s exited with code %s%s"):format(self.service, tostring(st.exit_code),
            logs_tail(states, self.service, 30))
        end
        break
      end
      if st.state == "missing" and core.now() - t0 > 5 then
        return nil, ("service %s: no container after `up`"):format(self.service)
      end
      if core.now() - t0 > timeout then
        return nil, ("service %s: still %s after %ds%s"):format(self.service, st.state,
          math.floor(timeout), logs_tail(states, self.service))
      end
      if core.interrupted() then return nil, "interrupted" end
      if ctx.spin then ctx:spin(("running %s"):format(self.service)) end
      core.sleep(0.1)
    end
    ctx.state.ran = hashes
    if ctx.detail then ctx:detail(self.service .. " exited 0") end
    return true
  end,
  -- the one-shot's container goes (and the project's network, when no
  -- other container of it is left: a stack that `up` also started stays)
  state_revert = true,
  revert = function(_, ctx)
    local st = ctx.state
    if not (st.project and st.service and st.dir) then return false end
    local n, err = remove_by_api(st.project, st.dir, st.service)
    if not n then return nil, err end
    st.ran = nil
    if n == 0 then return false end
    if ctx.detail then ctx:detail(("removed the container of one-shot service %s"):format(st.service)) end
    return true
  end,
}

local function leftovers(name, volumes)
  local out = {}
  local list, err = docker.containers { project = name }
  if not list then return nil, err end
  for _, c in ipairs(list) do
    out[#out + 1] = ("container %s (%s)"):format(container_name(c), c.State or "?")
  end
  local nets, nerr = docker.networks { project = name }
  if not nets then return nil, nerr end
  for _, n in ipairs(nets) do out[#out + 1] = "network " .. n.Name end
  if volumes then
    local vols, verr = docker.volumes { project = name }
    if not vols then return nil, verr end
    for _, v in ipairs(vols) do out[#out + 1] = "volume " .. v.Name end
  end
  return out
end
M.leftovers = leftovers

M.down = R.define {
  kind = "compose.down",
  positional = "project_dir",
  options = with { volumes = "boolean?", remove_orphans = "boolean?", rmi = "any?" },
  validate = function(self)
    if self.rmi == true then self.rmi = "all" end
    if self.rmi ~= nil and self.rmi ~= false and self.rmi ~= "all" and self.rmi ~= "local" then
      return nil, 'option \'rmi\' must be "all", "local" or true'
    end
    return true
  end,
  describe = function(self)
    return ("compose stack in %s down%s"):format(self.project_dir, self.volumes and " (with volumes)" or "")
  end,
  check = function(self, ctx)
    local project = M.load_project(self)
    local name = project and project.name or ctx.state.project or M.project_name(self.project_dir, self.project)
    local left, err = leftovers(name, self.volumes)
    if not left then return nil, err end
    if #left == 0 then return true end
    if project then   -- plan says what apply would: refuse another folder's stack
      local safe, ferr = foreign_guard(project)
      if not safe then return nil, ferr end
      safe, ferr = orphan_guard(self, project)
      if not safe then return nil, ferr end
      if self.volumes then
        local free, uerr = volume_guard(project.name)
        if not free then return nil, uerr end
      end
    end
    return false, left
  end,
  apply = function(self, ctx)
    local project, err = M.load_project(self)
    if not project then return nil, err .. " (compose needs it to take the stack down)" end
    local safe, ferr = foreign_guard(project)
    if not safe then return nil, ferr end
    safe, ferr = orphan_guard(self, project)
    if not safe then return nil, ferr end
    local anonymous
    if self.volumes then
      local used, uerr = volume_guard(project.name)
      if not used then return nil, uerr end
      anonymous, uerr = anonymous_volumes(project)
      if not anonymous then return nil, uerr end
    end
    -- never --volumes: Compose v1 removes every volume the file declares by
    -- its name (<project>_<volume>), also one it found there and adopted;
    -- the volumes are removed below, through the Engine API, by label
    local args = { "down" }
    if self.remove_orphans then args[#args + 1] = "--remove-orphans" end
    if self.rmi then args[#args + 1] = "--rmi"; args[#args + 1] = self.rmi end
    ctx.state.detected = ctx.state.detected or {}
    local r, rerr = M.run(project, args, { command = self.command, cache = ctx.state.detected,
      file = self.file, timeout = self.timeout or ctx.timeout or 300, passthrough = ctx.verbose })
    if not r then return nil, rerr end
    ctx.state.project = project.name
    if self.volumes then
      local removed, verr = remove_volumes(project, anonymous)
      if not removed then return nil, verr end
      local kept, kerr = kept_volumes(project)
      if not kept then return nil, kerr end
      for _, k in ipairs(kept) do
        if ctx.log then ctx:log(("volume %s kept: Compose did not create it (no %s label)"):format(k, docker.PROJECT_LABEL)) end
      end
      if ctx.detail then
        ctx:detail(("%d volume%s removed%s"):format(#removed, #removed == 1 and "" or "s",
          #kept > 0 and ("; kept " .. table.concat(kept, ", ") .. ": not created by Compose") or ""))
      end
    end
    return true
  end,
}

return M
