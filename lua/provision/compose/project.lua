-- provision.compose.project: the compose-file model, as Compose reads it:
-- which files (the default and its override, COMPOSE_FILE, -f), their
-- merge, .env (provision.envfile) and ${VAR} interpolation, profiles, the
-- project name and the services `up` starts. Plain data from files: no
-- Docker, no process (tests/fuzz/compose_env.c drives it).
local FS = require "provision._fs"
local core = require "provision._core"
local yaml = require "provision.yaml"
local envfile = require "provision.envfile"

local M = {}
M.realpath = FS.realpath

-- digest(path) -> SHA-256 | false when there is no file (a compose file or
-- .env not there yet) | nil, "path: why"
local ENOENT = 2
local function digest(path)
  local h, err, code = FS.sha256(path)
  if h == nil and code == ENOENT then return false end
  return h, err
end

-- the default files, in v1's order
local FILES_V1 = { "docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml" }
-- the override Compose reads after the default file (v1's names, in its order)
local OVERRIDES = { "docker-compose.override.yml", "docker-compose.override.yaml",
  "compose.override.yml", "compose.override.yaml" }

-- a project name as Compose keeps it: lower case, [a-z0-9_-], no leading _ or -
function M.normalize_name(name)
  local n = name:lower():gsub("[^a-z0-9_-]", "")
  n = n:gsub("^[_-]+", "")
  return n
end

-- project_name(dir [, explicit [, env]]): the name Compose derives: explicit
-- (-p), else COMPOSE_PROJECT_NAME (the environment's, else .env's: env),
-- else the folder's own name
function M.project_name(dir, explicit, env)
  if explicit and explicit ~= "" then return M.normalize_name(explicit) end
  local from_env = os.getenv("COMPOSE_PROJECT_NAME")
  if (not from_env or from_env == "") and env then from_env = env.COMPOSE_PROJECT_NAME end
  if from_env and from_env ~= "" then return M.normalize_name(from_env) end
  local abs = FS.realpath(dir) or dir
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

-- a copy of tree v, each string interpolated; path[1..depth]: where v is
-- (the keys down to it), joined only for a message. A string without a "$"
-- is taken as it is: most of a compose file (issue 19: the quick start's
-- 700 values, 0.4 -> 0.1 ms a load)
local find, tostr = string.find, tostring
local function walk(v, env, path, depth)
  if type(v) == "string" then
    if not find(v, "$", 1, true) then return v end
    local r, err = interp(v, env, nil)
    if r == nil then return nil, depth > 0 and (table.concat(path, ".", 1, depth) .. ": " .. err) or err end
    return r
  end
  if type(v) ~= "table" or v == yaml.null then return v end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    path[depth + 1] = tostr(k)
    local nv, err = walk(x, env, path, depth + 1)
    if nv == nil and err then return nil, err end
    out[k] = nv
  end
  return out
end

-- interpolate(text_or_table, env) -> value | nil, msg (values only, as Compose does)
function M.interpolate(v, env, where)
  return walk(v, env or {}, { where }, where and 1 or 0)
end

function M.find_file(dir, file)
  if file then
    if file:sub(1, 1) ~= "/" then file = dir .. "/" .. file end
    return file
  end
  for _, f in ipairs(FILES_V1) do
    local p = dir .. "/" .. f
    if FS.stat(p) then return p end
  end
  return nil
end

-- The compose files Compose reads in dir, in order. A file named (-f): that
-- one; a list of them: those, merged in order. Else, as Compose: COMPOSE_FILE (the environment's, else .env's: env)
-- split at COMPOSE_PATH_SEPARATOR (default ":"), relative to dir; else the
-- default file and, when there is one, its override. An empty list: none.
function M.find_files(dir, file, env)
  if type(file) == "table" then   -- several named (-f a -f b): merged in order
    local out = {}
    for i, f in ipairs(file) do out[i] = M.find_file(dir, f) end
    return out
  end
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
    if FS.stat(dir .. "/" .. f) then out[#out + 1] = dir .. "/" .. f; break end
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
-- [, "missing" when the folder or a compose file is not there (yet)].
-- project: name, dir, workdir, file (the first), files, env_file, env (.env),
-- doc (the files merged), services (interpolated), lookup (environment, then .env)
function M.load_project(o)
  local dir = o.project_dir
  local st = FS.stat(dir)
  if not st or st.type ~= "directory" then return nil, "project folder " .. dir .. " does not exist", "missing" end
  local env_path = o.env_file or (dir .. "/.env")
  local env = {}
  if FS.stat(env_path) then
    local e, err = M.read_env_file(env_path)
    if not e then return nil, err end
    env = e
  end
  local files, from = M.find_files(dir, o.file, env)
  for _, f in ipairs(files) do
    if not FS.stat(f) then
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

-- the volumes the compose file declares: { name = <the engine's name>, external = bool }
function M.declared_volumes(project)
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

-- the digests up and run_once record: { compose =, env = } (.env: "none"
-- when there is none)
function M.hashes(project)
  local h1, e1 = digest(project.file)
  if h1 == nil then return nil, e1 end
  if #project.files > 1 then   -- one file: its digest alone, as states before overrides were read
    local parts = { h1 }
    for i = 2, #project.files do
      local h, e = digest(project.files[i])
      if h == nil then return nil, e end
      parts[#parts + 1] = project.files[i] .. " " .. h
    end
    h1 = FS.sha256_string(table.concat(parts, "\n"))
  end
  local h2, e2 = digest(project.env_file)
  if h2 == nil then return nil, e2 end
  return { compose = h1, env = h2 or "none" }
end

-- the files up and run_once compare with the last apply: .env and the
-- compose file (o.file, else every name Compose looks for and the files
-- COMPOSE_FILE names). o: { project_dir, file? }; project: loaded, or nil
function M.inputs(o, project)
  local out = { o.project_dir .. "/.env" }
  if o.file then
    out[#out + 1] = M.find_file(o.project_dir, o.file)
  else
    for _, f in ipairs(FILES_V1) do out[#out + 1] = o.project_dir .. "/" .. f end
    for _, f in ipairs(OVERRIDES) do out[#out + 1] = o.project_dir .. "/" .. f end
    -- COMPOSE_FILE of the environment, else of .env as it is now (a step
    -- that would rewrite .env makes .env itself a change to come): the
    -- files the project loaded from, when it loaded
    local files = project and project.files
    if not files then
      local env = FS.stat(out[1]) and M.read_env_file(out[1]) or {}
      files = M.find_files(o.project_dir, nil, env)
    end
    for _, f in ipairs(files) do out[#out + 1] = f end
  end
  return out
end

return M
