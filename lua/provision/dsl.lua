-- provision.dsl: loading a recipe. A recipe file only declares: recipe{},
-- vars{}, check, step, teardown (and undo "step" in it), include,
-- remove_step, replace_step. Loading has no side effects; the runner
-- (provision.run) acts on what was declared.
--
-- dsl.load(path, { vars = { KEY = "text" } }) -> recipe | nil, message
-- Every message names the recipe's file:line where one is known.
local core = require "provision._core"
local json = require "provision.json"
local R = require "provision.resource"
local secret = require "provision.secret"
local env = require "provision.env"

local M = {}

local STEP_FIELDS = {
  describe = "string", check = "function", apply = "function", revert = "function",
  before = "string", after = "string",
  writes = "paths", reads = "paths",   -- a path or a list of paths (for plan: see resource.lua)
}

local function where_from(level)
  local info = debug.getinfo(level + 1, "Sl")
  if info and info.currentline and info.currentline > 0 then
    return info.short_src .. ":" .. info.currentline
  end
  return "?"
end

-- the first stack frame that belongs to a recipe file being loaded
local function recipe_where(files)
  for level = 2, 50 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if files[info.source] and info.currentline > 0 then
      return info.short_src .. ":" .. info.currentline, level
    end
  end
  return "?", 2
end

-- Custom steps: a resource made of the step's own functions.
local Custom = { kind = "custom" }
Custom.__index = Custom
setmetatable(Custom, R.Resource)
function Custom:describe() return self.text or "custom step" end
function Custom:check(ctx)
  if not self.check_fn then return false, "no check: always applied" end
  return self.check_fn(ctx)
end
function Custom:apply(ctx)
  if not self.apply_fn then return nil, "check failed and the step has no apply" end
  return self.apply_fn(ctx)
end
function Custom:revert_fn_wrapper(ctx) return self.revert_fn(ctx) end

-- `undo "step"`, in a teardown block: revert what the state recorded for
-- that step of the recipe, exactly as the teardown without a block does
-- (the runner's ctx:recorded and ctx:undo). A teardown block can so remove
-- only what a step created: an image it imported, not one that was there.
local Undo = { kind = "undo" }
Undo.__index = Undo
setmetatable(Undo, R.Resource)
function Undo:describe() return ("undo step '%s'"):format(self.step) end
function Undo:check(ctx)
  if ctx:recorded(self.step) then
    return false, ("revert what step '%s' created"):format(self.step)
  end
  return true
end
function Undo:apply(ctx) return ctx:undo(self.step) end
-- what undo leaves (a custom step's work) stays recorded: its own result
-- decides, not a second check
function Undo.unverifiable() return true end

local function custom_resource(t)
  local c = setmetatable({ text = t.describe, check_fn = t.check, apply_fn = t.apply, revert_fn = t.revert,
                           write_paths = t.writes, read_paths = t.reads }, Custom)
  if t.writes then c.writes = R.paths_of("write_paths") end
  if t.reads then c.reads = R.paths_of("read_paths") end
  if t.revert then c.revert = Custom.revert_fn_wrapper end
  return c
end

-- coerce an -e value to the type of the variable's default
local function coerce(name, default, text)
  local t = type(default)
  if secret.is(default) then   -- may be any bytes, but long enough to mask
    local short = secret.too_short(text)
    if short then return nil, ("variable '%s': %s"):format(name, short) end
    return secret.new(text)
  end
  if t == "string" then
    if not json.is_text(text) then
      return nil, ("variable '%s' must be UTF-8 text, not %s as -e gives it%s"):format(name, R.quote(text), R.NOT_TEXT)
    end
    return text
  end
  if t == "number" then
    -- decimal only: Lua's tonumber also takes " 80", "0x10" and "0x1p4"
    local n = (text:find("^[+-]?%.?%d") and not text:find("[%sxX]")) and tonumber(text) or nil
    if n == nil then return nil, ("variable '%s' must be a number, not %q"):format(name, text) end
    if math.type(default) == "integer" then
      local i = math.tointeger(n)
      if i == nil then return nil, ("variable '%s' must be a whole number, not %q"):format(name, text) end
      return i
    end
    return n + 0.0
  end
  if t == "boolean" then
    local l = text:lower()
    if l == "true" or l == "yes" or l == "1" or l == "on" then return true end
    if l == "false" or l == "no" or l == "0" or l == "off" or l == "" then return false end
    return nil, ("variable '%s' must be true or false, not %q"):format(name, text)
  end
  return nil, ("variable '%s' (a %s) cannot be set with -e"):format(name, t)
end

-- the path each resource that owns one wants in a state: two that want one
-- path in different states never converge (each apply undoes the other's
-- work, and plan calls the first one fine). Absences agree, and so do
-- folders unless both set one of mode, owner, group and differ on it;
-- anything else on one path is a second owner.
local OWNS = { ["fs.file"] = "path", ["fs.template"] = "path", ["fs.env_file"] = "path",
  ["fs.symlink"] = "path", ["fs.directory"] = "path", ["fs.absent"] = "path",
  ["http.file"] = "dest", ["archive.create"] = "dest" }
local function agree(a, b)
  if a.kind ~= b.kind then return false end
  if a.kind == "fs.absent" then return true end
  if a.kind ~= "fs.directory" then return false end
  for _, k in ipairs { "mode", "owner", "group" } do
    if a.res[k] ~= nil and b.res[k] ~= nil and a.res[k] ~= b.res[k] then return false end
  end
  return true
end
local function path_conflict(recipe)
  local claims, cwd = {}, core.cwd() or "/"
  for _, s in ipairs(recipe.steps) do
    for _, res in ipairs(s.resources) do
      local field = OWNS[res.kind]
      local v = field and res[field]
      for _, p in ipairs(type(v) == "table" and v or { v }) do
        local key, claim = R.norm_path(p, cwd), { kind = res.kind, res = res, step = s, path = p }
        claims[key] = claims[key] or {}
        for _, prev in ipairs(claims[key]) do
          if not agree(prev, claim) then
            return ("%s: %s of step '%s' and %s of step '%s' (%s) both own %s: each run would undo "
              .. "the other's work; keep one")
              :format(s.where, res.kind, s.name, prev.kind, prev.step.name, prev.step.where, p)
          end
        end
        table.insert(claims[key], claim)
      end
    end
  end
  -- an absence over a folder another resource writes in: each run removes
  -- what the other makes (in recipe order, so the message is stable)
  for _, s in ipairs(recipe.steps) do
    for _, res in ipairs(s.resources) do
      if res.kind == "fs.absent" then
        for _, p in ipairs(type(res.path) == "table" and res.path or { res.path }) do
          local akey = R.norm_path(p, cwd)
          local inside
          for key, list in pairs(claims) do
            if key:sub(1, #akey + 1) == akey .. "/" then
              for _, c in ipairs(list) do
                if c.kind ~= "fs.absent" and (not inside or c.path < inside.path) then inside = c end
              end
            end
          end
          if inside then
            return ("%s: fs.absent of step '%s' removes %s, where %s of step '%s' (%s) writes %s: each run "
              .. "would undo the other's work; keep one"):format(s.where, s.name, p, inside.kind,
              inside.step.name, inside.step.where, inside.path)
          end
        end
      end
    end
  end
end

function M.load(path, opts)
  opts = opts or {}
  local cli_vars = opts.vars or {}
  local used_vars = {}
  local recipe = {
    file = path, name = nil, description = nil,
    steps = {}, by_name = {}, checks = {}, check_names = {}, teardown = nil,
    vars = {}, var_order = {},
  }
  local files = {}            -- chunk sources of the recipe files being loaded
  local var_defaults = {}     -- include(path, overrides): new defaults
  local depth = 0

  local function fail(msg, level)
    local w = recipe_where(files)
    error({ where = w, msg = msg }, level or 2)
  end

  local function step_index(name)
    for i, s in ipairs(recipe.steps) do if s.name == name then return i end end
  end

  -- parse a step body: resources in the array part, custom functions by name
  local function parse_body(kind, name, body)
    if type(body) ~= "table" or R.is(body) then
      fail(("%s '%s': expected a table { resource, ... } after the name"):format(kind, name))
    end
    local resources = {}
    for k, v in pairs(body) do
      if math.type(k) == "integer" then
        if not R.is(v) then
          fail(("%s '%s': item %d is not a resource (got %s); resources come from fs.*, http.*, compose.*, ..."):format(
            kind, name, k, type(v)))
        end
        if getmetatable(v) == Undo and kind ~= "teardown" then
          fail(("%s '%s': undo \"%s\" goes in teardown { ... } (in a %s it would undo at every apply)"):format(
            kind, name, v.step, kind))
        end
      elseif type(k) ~= "string" or not STEP_FIELDS[k] then
        local names = {}
        for n in pairs(STEP_FIELDS) do names[#names + 1] = n end
        table.sort(names)
        fail(("%s '%s': unknown field '%s' (fields: %s)"):format(kind, name, tostring(k), table.concat(names, ", ")))
      elseif STEP_FIELDS[k] == "paths" then
        local ok = type(v) == "string"
        if type(v) == "table" then
          ok = #v > 0
          for i, p in pairs(v) do ok = ok and math.type(i) == "integer" and type(p) == "string" end
        end
        if not ok then
          fail(("%s '%s': field '%s' must be a path or a list of paths"):format(kind, name, k))
        end
        for _, p in ipairs(type(v) == "table" and v or { v }) do
          if not json.is_text(p) then
            fail(("%s '%s': field '%s' must be UTF-8 text, not %s%s"):format(kind, name, k, R.quote(p), R.NOT_TEXT))
          end
        end
      elseif type(v) ~= STEP_FIELDS[k] then
        fail(("%s '%s': field '%s' must be a %s, not %s"):format(kind, name, k, STEP_FIELDS[k], type(v)))
      elseif type(v) == "string" and not json.is_text(v) then
        fail(("%s '%s': field '%s' must be UTF-8 text, not %s%s"):format(kind, name, k, R.quote(v), R.NOT_TEXT))
      end
    end
    for i = 1, #body do resources[i] = body[i] end
    if #resources == 0 and body.check == nil and body.apply == nil then
      fail(("%s '%s' is empty: give it a resource, or check/apply functions"):format(kind, name))
    end
    if body.check or body.apply then
      if #resources > 0 then
        fail(("%s '%s': give either resources or check/apply functions, not both"):format(kind, name))
      end
      resources[1] = custom_resource(body)
    elseif body.describe or body.revert or body.writes or body.reads then
      fail(("%s '%s': describe/revert/writes/reads go with check/apply functions"):format(kind, name))
    end
    return resources
  end

  -- names, paths and plain values the recipe shows in the open are exempt
  -- from masking from the moment they appear (see secret.exempt): an error
  -- while loading must not blank "airflow" out of "recipes/airflow-x.lua"
  -- because a password defaults to "airflow"
  local function check_name(kind, name)
    if type(name) ~= "string" or name == "" then
      fail(("%s: expected a name string, as in %s \"name\" { ... }"):format(kind, kind))
    end
    if not json.is_text(name) then
      fail(("%s: the name %s is not UTF-8 text%s"):format(kind, R.quote(name), R.NOT_TEXT))
    end
    secret.exempt(name)
  end

  local api = {}

  function api.recipe(t)
    if type(t) ~= "table" then fail("recipe: expected a table { name = ..., description = ... }") end
    for k, v in pairs(t) do
      if k ~= "name" and k ~= "description" then fail(("recipe: unknown field '%s' (fields: description, name)"):format(tostring(k))) end
      if type(v) ~= "string" then fail(("recipe: field '%s' must be a string"):format(k)) end
      if not json.is_text(v) then
        fail(("recipe: field '%s' must be UTF-8 text, not %s%s"):format(k, R.quote(v), R.NOT_TEXT))
      end
    end
    secret.exempt(t.name)
    if depth == 0 or recipe.name == nil then
      recipe.name = t.name or recipe.name
      recipe.description = t.description or recipe.description
    end
  end

  function api.vars(t)
    if type(t) ~= "table" then fail("vars: expected a table of name = default") end
    local out = {}
    local names = {}
    for k in pairs(t) do
      if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
        fail(("vars: bad variable name %s"):format(tostring(k)))
      end
      names[#names + 1] = k
    end
    table.sort(names)
    for _, k in ipairs(names) do
      local default = t[k]
      local tt = type(default)
      if not (tt == "string" or tt == "number" or tt == "boolean" or secret.is(default)) then
        fail(("vars: '%s' must default to a string, number, boolean or secret, not %s"):format(k, tt))
      end
      local existing = recipe.vars[k]
      if existing then
        out[k] = existing.value
      else
        if var_defaults[k] ~= nil then
          local d = var_defaults[k]
          if secret.is(default) and not secret.is(d) then d = secret.new(tostring(d)) end
          if type(d) ~= type(default) and not (secret.is(default) and secret.is(d)) then
            fail(("include: variable '%s' must be a %s, not %s"):format(k, secret.is(default) and "secret" or tt, type(d)))
          end
          default = d
        end
        if type(default) == "string" and not json.is_text(default) then
          fail(("vars: '%s' must default to UTF-8 text, not %s%s"):format(k, R.quote(default), R.NOT_TEXT))
        end
        local value = default
        -- -e, else PROVISION_VAR_<name> from the environment (for secrets:
        -- an -e value is in the process's argv, which any user can read)
        local given = cli_vars[k]
        if given == nil then given = os.getenv("PROVISION_VAR_" .. k) end
        if given ~= nil then
          local v, err = coerce(k, default, given)
          if v == nil then fail(err) end
          value = v
          used_vars[k] = true
        end
        if not secret.is(value) and type(value) == "string" then secret.exempt(value) end
        recipe.vars[k] = { value = value, default = default, secret = secret.is(default), where = recipe_where(files) }
        recipe.var_order[#recipe.var_order + 1] = k
        out[k] = value
      end
    end
    return setmetatable(out, {
      __index = function(_, k) fail(("no variable named '%s' (declare it in vars{})"):format(tostring(k))) end,
    })
  end

  api.secret = function(v)
    if type(v) ~= "string" and type(v) ~= "number" then fail("secret: expected a string") end
    local short = secret.too_short(tostring(v))
    if short then fail("secret: " .. short) end
    return secret.new(v)
  end

  function api.step(name)
    check_name("step", name)
    local where = recipe_where(files)
    return function(body)
      local resources = parse_body("step", name, body)
      local prev = recipe.by_name[name]
      if prev then
        fail(("step '%s' is declared twice (first at %s)"):format(name, prev.where))
      end
      local s = { name = name, resources = resources, where = where }
      local anchor = body.before or body.after
      if body.before and body.after then fail(("step '%s': give before or after, not both"):format(name)) end
      if anchor then
        local i = step_index(anchor)
        if not i then fail(("step '%s': no step named '%s' to insert %s"):format(name, anchor, body.before and "before" or "after")) end
        table.insert(recipe.steps, body.before and i or i + 1, s)
      else
        recipe.steps[#recipe.steps + 1] = s
      end
      recipe.by_name[name] = s
    end
  end

  function api.check(name)
    check_name("check", name)
    local where = recipe_where(files)
    return function(body)
      local resources = parse_body("check", name, body)
      if recipe.check_names[name] then
        fail(("check '%s' is declared twice (first at %s)"):format(name, recipe.check_names[name].where))
      end
      local c = { name = name, resources = resources, where = where }
      recipe.check_names[name] = c
      recipe.checks[#recipe.checks + 1] = c
    end
  end

  function api.teardown(body)
    if type(body) ~= "table" then fail("teardown: expected a table { resource, ... }") end
    recipe.teardown = { name = "teardown", resources = parse_body("teardown", "teardown", body), where = recipe_where(files) }
  end

  function api.undo(name)
    check_name("undo", name)
    return setmetatable({ step = name, where = recipe_where(files) }, Undo)
  end

  function api.remove_step(name)
    check_name("remove_step", name)
    local i = step_index(name)
    if not i then fail(("remove_step: no step named '%s'"):format(name)) end
    table.remove(recipe.steps, i)
    recipe.by_name[name] = nil
  end

  function api.replace_step(name)
    check_name("replace_step", name)
    local i = step_index(name)
    if not i then fail(("replace_step: no step named '%s'"):format(name)) end
    local where = recipe_where(files)
    return function(body)
      local s = { name = name, resources = parse_body("step", name, body), where = where }
      recipe.steps[i] = s
      recipe.by_name[name] = s
    end
  end

  local load_file

  function api.include(rel, overrides)
    if type(rel) ~= "string" then fail("include: expected a recipe path") end
    if overrides ~= nil and type(overrides) ~= "table" then fail("include: the second argument must be a table of variable defaults") end
    local base = files.current_dir or "."
    local p = rel:sub(1, 1) == "/" and rel or (base .. "/" .. rel)
    for k, v in pairs(overrides or {}) do
      if recipe.vars[k] then fail(("include: variable '%s' is already declared"):format(k)) end
      var_defaults[k] = v
    end
    depth = depth + 1
    load_file(p)
    depth = depth - 1
    -- an override for a variable the included recipe does not declare is a
    -- typo ({ verison = "2.9.3" }), not something to ignore
    local unknown = {}
    for k in pairs(overrides or {}) do
      if not recipe.vars[k] then unknown[#unknown + 1] = tostring(k) end
    end
    if #unknown > 0 then
      table.sort(unknown)
      local known = {}
      for _, k in ipairs(recipe.var_order) do known[#known + 1] = k end
      table.sort(known)
      fail(("include: %s declares no variable%s '%s' (variables: %s)"):format(rel, #unknown > 1 and "s" or "",
        table.concat(unknown, "', '"), #known > 0 and table.concat(known, ", ") or "none"))
    end
    return recipe
  end

  local recipe_env = env.globals(api)

  load_file = function(p)
    secret.exempt(p)
    local f = io.open(p, "r")
    if not f then fail(("cannot open recipe %s"):format(p)) end
    f:close()
    local chunk, err = loadfile(p, "t", recipe_env)
    if not chunk then error({ msg = err, where = "" }, 0) end
    local info = debug.getinfo(chunk, "S")
    files[info.source] = true
    local saved = files.current_dir
    files.current_dir = p:match("^(.*)/[^/]*$") or "."
    chunk()
    files.current_dir = saved
  end

  -- plugin modules: the recipe's own modules/ folder, then PROVISION_PATH
  local dir = path:match("^(.*)/[^/]*$") or "."
  local lpath, cpath = { dir .. "/modules/?.lua", dir .. "/modules/?/init.lua" }, { dir .. "/modules/?.so" }
  for d in (os.getenv("PROVISION_PATH") or ""):gmatch("[^:]+") do
    lpath[#lpath + 1] = d .. "/?.lua"; lpath[#lpath + 1] = d .. "/?/init.lua"
    cpath[#cpath + 1] = d .. "/?.so"
  end
  -- in front of the search paths, once (dsl.load may run more than once)
  local function prepend(list, paths)
    local new = {}
    for _, p in ipairs(list) do
      if not (";" .. paths .. ";"):find(";" .. p .. ";", 1, true) then new[#new + 1] = p end
    end
    if #new == 0 then return paths end
    return table.concat(new, ";") .. ";" .. paths
  end
  package.path = prepend(lpath, package.path)
  package.cpath = prepend(cpath, package.cpath)

  local ok, err = xpcall(load_file, function(e)
    if type(e) == "table" and e.msg then return e end
    -- a plain error: Lua already prefixed file:line when it was raised from
    -- recipe code; otherwise, find the recipe line in the stack
    local msg = tostring(e)
    if msg:match("^[^:\n]+:%d+: ") then
      local src = msg:match("^([^:\n]+):%d+: ")
      local is_recipe = false
      for s in pairs(files) do
        if type(s) == "string" and s:sub(2) == src then is_recipe = true end
      end
      if is_recipe then return { msg = msg, where = "" } end
    end
    return { msg = msg, where = recipe_where(files) }
  end, path)
  if not ok then
    if err.where and err.where ~= "" and err.where ~= "?" then
      return nil, err.where .. ": " .. err.msg
    end
    return nil, err.msg
  end
  -- undo "x" names a step the recipe ends up with (after include,
  -- remove_step, ...), one with something a teardown can revert
  for _, res in ipairs(recipe.teardown and recipe.teardown.resources or {}) do
    if getmetatable(res) == Undo then
      local s = recipe.by_name[res.step]
      if not s then
        local names = {}
        for _, st in ipairs(recipe.steps) do names[#names + 1] = st.name end
        return nil, ("%s: undo: no step named '%s' (steps: %s)"):format(res.where, res.step,
          #names > 0 and table.concat(names, ", ") or "none")
      end
      local revertible, kinds = false, {}
      for _, r in ipairs(s.resources) do
        revertible = revertible or r.revert ~= nil
        kinds[#kinds + 1] = r.kind
      end
      if not revertible then
        return nil, ("%s: undo: step '%s' records nothing a teardown can revert (%s has no revert)"):format(
          res.where, res.step, table.concat(kinds, ", "))
      end
    end
  end
  -- -e keys nobody declared
  local unknown = {}
  for k in pairs(cli_vars) do if not used_vars[k] then unknown[#unknown + 1] = k end end
  if #unknown > 0 then
    table.sort(unknown)
    local known = {}
    for _, k in ipairs(recipe.var_order) do known[#known + 1] = k end
    table.sort(known)
    return nil, ("%s: unknown variable%s %s (variables: %s)"):format(path, #unknown > 1 and "s" or "",
      "'" .. table.concat(unknown, "', '") .. "'", #known > 0 and table.concat(known, ", ") or "none")
  end
  local cerr = path_conflict(recipe)
  if cerr then return nil, cerr end
  recipe.name = recipe.name or (path:match("([^/]+)%.lua$") or path)
  secret.exempt(recipe.name)
  for _, k in ipairs(recipe.var_order) do
    local v = recipe.vars[k]
    if not v.secret and type(v.value) == "string" then secret.exempt(v.value) end
  end
  return recipe
end

M.where_from = where_from
return M
