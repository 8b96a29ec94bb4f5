-- provision.compose.cli: running the Compose CLI, `docker compose` (v2) or
-- `docker-compose` (v1), argv only, never a shell string: finding which one
-- works (and its version), remembering that while its binaries stay the
-- same, and running one command in a project's folder.
local FS = require "provision._fs"
local exec = require "provision._exec"
local core = require "provision._core"
local json = require "provision.json"
local secret = require "provision.secret"
local usercache = require "provision.cache"

local M = {}
-- the detection cache: a folder of the user's only, a file others cannot read
local CACHE_FILE_MODE = tonumber("600", 8)

local chosen        -- compose.use(...)
local detected = {} -- per-process cache: command key -> result

-- use(cmd): the command detect takes when none is given ("docker compose")
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
    local st = FS.stat(p)
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

-- the detection cache file, ${XDG_CACHE_HOME:-~/.cache}/provision/
-- compose-detected.json: the last detect's result (the command provision
-- will run), for a later run of this recipe or another; kept only in a
-- folder that is ours and private (provision.cache), never read from one
-- another user could have planted it in
local function cache_path(only_look)
  local dir = usercache.dir(nil, only_look)
  return dir and (dir .. "/compose-detected.json")
end

-- read_cache() -> the table detect { cache = } keeps its result in ({} when none)
function M.read_cache()
  local path = cache_path(true)
  local text = path and core.read_file(path)
  local cache = text and json.decode(text)
  if type(cache) ~= "table" then cache = {} end
  return cache
end

-- write_cache(cache) -> true once its folder is there (the write itself may fail)
function M.write_cache(cache)
  local path = cache_path()
  if not path then return false end
  core.write_atomic(path, json.encode(cache), CACHE_FILE_MODE)
  return true
end

-- run(project, args, o) -> result | nil, msg (exit status other than 0 is a failure)
-- o: command, cache, file, timeout, passthrough, env (added to Compose's environment)
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
  argv.env = o.env   -- the engine's (DOCKER_HOST, TLS): compose/init.lua's cli_opts
  local r, rerr = exec.run(argv)
  if not r then return nil, rerr end
  if r.interrupted then return nil, "interrupted" end
  if r.timed_out then return nil, table.concat(argv, " ") .. ": timed out" end
  if r.status ~= 0 then
    local out = secret.mask(r.output):gsub("%s+$", "")
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    local tail = table.concat(lines, "\n", math.max(1, #lines - 14))
    if out:find("KeyError: 'ContainerConfig'", 1, true) then   -- Compose v1's traceback: say why first
      tail = "docker-compose 1.x cannot recreate a container on Docker Engine 25 or later (the Engine API no "
        .. "longer gives an image's ContainerConfig): use Compose v2 (`docker compose`; PROVISION_COMPOSE), "
        .. "or remove the project's containers first\n" .. tail
    end
    return nil, ("%s: exit %d\n%s"):format(table.concat(argv, " "), r.status, tail), r
  end
  return r
end

return M
