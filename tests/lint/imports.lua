-- tests/lint/imports.lua: the import rules of lua/provision/README.md,
-- checked on every file under lua/provision (run by tests/lint.sh):
--   lua5.4 tests/lint/imports.lua lua/provision
-- Prints one line per broken rule ("FILE:LINE: why") and exits 1 if any.
--
-- A module's name is its first part under provision. (provision.compose.cli
-- belongs to compose). Its layer:
--   C        provision._NAME (modules/*.c, core/)
--   runner   cli, run, batch, planned, dsl, state, env, fleet: may require anything
--   resource a module some file of which calls R.define (fs, http, ...)
--   library  any other (json, yaml, envfile, diff, secret, report, ...)
-- A file of a resource module that defines no resource (docker.api: the
-- Engine API client) is a library to the other modules: they may require
-- that file, not the module's resources.
-- Rules: a resource module may require resource, libraries, C modules and
-- its own files, never another resource module nor the runner; a library
-- may require libraries and C modules only (not resource, not a resource
-- module, not the runner).
local root = assert(arg[1], "usage: imports.lua lua/provision")
local RUNNER = { cli = true, run = true, batch = true, planned = true, dsl = true, state = true, env = true, fleet = true }

local function files_under(dir)
  local p = assert(io.popen("find " .. dir .. " -name '*.lua' | sort"))
  local out = {}
  for f in p:lines() do out[#out + 1] = f end
  p:close()
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- lua/provision/compose/cli.lua -> compose; lua/provision/fs.lua -> fs
local function owner(path)
  local rel = path:sub(#root + 2)
  return rel:match("^([^/]+)/") or rel:match("^(.-)%.lua$")
end

-- lua/provision/docker/api.lua -> docker.api; lua/provision/docker/init.lua -> docker
local function modname(path)
  return (path:sub(#root + 2):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."))
end

local files, resource_mod, text, defines = files_under(root), {}, {}, {}
for _, f in ipairs(files) do
  text[f] = read(f)
  local name = owner(f)
  defines[modname(f)] = text[f]:find("R%.define%s*[{(]") ~= nil
  if name ~= "resource" and defines[modname(f)] then resource_mod[name] = true end
end

local function layer(name)
  if name:sub(1, 1) == "_" then return "C" end
  if RUNNER[name] then return "runner" end
  if name == "resource" then return "resource" end
  if resource_mod[name] then return "resource module" end
  return "library"
end

local bad = 0
for _, f in ipairs(files) do
  local me = owner(f)
  local mine = layer(me)
  local n = 0
  for line in (text[f] .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local code = line:gsub("%-%-.*$", "")
    for target in code:gmatch("require%s*%(?%s*[\"']provision%.([%w_.]+)[\"']") do
      local name = target:match("^[^.]+")
      local theirs = layer(name)
      if target ~= name and defines[target] == false and theirs == "resource module" then theirs = "library" end
      local why
      if mine == "resource module" and name ~= me
        and (theirs == "resource module" or theirs == "runner") then
        why = ("a resource module (%s) requires the %s %s"):format(me, theirs, name)
      elseif mine == "library" and name ~= me and theirs ~= "library" and theirs ~= "C" then
        why = ("a library (%s) requires %s %s"):format(me, theirs == "resource" and "the contract" or
          ("the " .. theirs), name)
      end
      if why then
        print(("%s:%d: %s (lua/provision/README.md: import rules)"):format(f, n, why))
        bad = bad + 1
      end
    end
  end
end
os.exit(bad == 0 and 0 or 1)
