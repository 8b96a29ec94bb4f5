-- provision.fleet.remote: `provision --remote`, what a host runs for the
-- controller (provision.fleet): read the bundle from stdin, put its files
-- in a private folder of ours (~/.cache/provision/run.RANDOM, 0700), run
-- the recipe there with --json (the events are the controller's input),
-- then remove the folder. The working folder is the one ssh started in
-- (the controller's --chdir): relative paths and .provision/ are there, as
-- in a local run. Once the bundle is read, stdin stays open for the whole
-- run; its end means the controller is gone (interrupted, or its ssh
-- connection dropped): the run stops at a safe point, as on SIGTERM.
local FS = require "provision._fs"
local core = require "provision._core"
local bundle = require "provision.fleet.bundle"
local cache = require "provision.cache"
local EXIT = core.EXIT

local M = {}

local PRIVATE = tonumber("700", 8)

local function fail(msg)
  io.stderr:write("provision --remote: ", msg, "\n")
  return EXIT.usage
end

-- unpack(dir, header, contents): the files, in a folder nobody else can enter
local function unpack(dir, header, contents)
  local made = { [""] = true }
  for i, e in ipairs(header.files) do
    local parent = e.path:match("^(.*)/[^/]*$") or ""
    if not made[parent] then
      local acc = ""
      for part in parent:gmatch("[^/]+") do
        acc = acc == "" and part or (acc .. "/" .. part)
        if not made[acc] then
          local ok, err = FS.mkdir(dir .. "/" .. acc, PRIVATE)
          if not ok then return nil, err end
          made[acc] = true
        end
      end
    end
    local ok, err = core.write_atomic(dir .. "/" .. e.path, contents[i], e.mode & PRIVATE)
    if not ok then return nil, err end
  end
  return true
end

function M.main()
  local header, contents = bundle.read(io.stdin)
  if not header then return fail(contents) end
  local base, err = cache.dir()
  if not base then return fail(err) end
  local dir = base .. "/" .. FS.temp_name("run")
  local made, id = FS.mkdir(dir, PRIVATE)
  if not made then return fail(id) end
  local guard <close> = core.guard(function() FS.remove_own(dir, id) end) -- luacheck: ignore guard
  local ok, uerr = unpack(dir, header, contents)
  if not ok then return fail(uerr) end
  core.interrupt_on_stdin_eof()
  local o = { verb = header.verb, recipe = dir .. "/" .. header.recipe, json = true, vars = header.vars,
              var_order = {}, only = {}, recipe_file = "bundle:" .. header.recipe }
  for k in pairs(header.vars) do o.var_order[#o.var_order + 1] = k end
  table.sort(o.var_order)
  for k, v in pairs(header.flags) do o[k] = v end
  for _, k in ipairs { "only", "skip", "tags", "skip_tags" } do
    o[k] = type(o[k]) == "table" and o[k] or {}
  end
  return require("provision.run").main(o)
end

return M
