-- provision.dsl.loader: running a recipe file (and what it includes) in an
-- environment of declarations, each checked as it is called. A Loader holds
-- what was declared so far; dsl.load makes one per recipe.
--
-- A recipe's `require` looks in the recipe's modules/ folder and in the
-- folders of PROVISION_PATH (Lua modules, then C ones) before Lua's own
-- paths: its own searcher, so loading a recipe leaves package.path and
-- package.cpath as they were. A module it loads that way sees the same
-- `require`, so a plugin may require its own helper modules.
local FS = require "provision._fs"
local json = require "provision.json"
local R = require "provision.resource"
local secret = require "provision.secret"
local env = require "provision.env"
local steps = require "provision.dsl.steps"
local validate = require "provision.dsl.validate"

local Loader = {}
Loader.__index = Loader

-- the first stack frame that belongs to a recipe file being loaded (its
-- line asked for only then: every step's declaration comes here), as a
-- step keeps it: its file's number (steps.file) << 32 | its line; or "?". Level 1 is this, 2 at or
-- where, 3 their caller (a decl_ method): never a recipe's.
-- A frame of a recipe file's main chunk (the usual caller) is known by its
-- function (self.chunks: its file's number), which core.frame gives faster
-- than the source; a frame elsewhere is looked up by its source.
local core = require "provision._core"
local frame = core.frame   -- debug.getinfo(level, "fl") without its table
local function recipe_frame(self)
  local chunks = self.chunks
  for level = 4, 51 do
    local func, line = frame(level)
    if not func then break end
    local n = chunks[func]
    if not n then
      local info = debug.getinfo(level, "Sl")
      n = self.sources[info.source] and steps.file(info.short_src)
    end
    if n and line > 0 then return n << 32 | line end
  end
  return "?"
end

-- at() -> the recipe line, as a step keeps it (steps.where formats it), or
-- "?". (Not tail calls: recipe_frame counts this frame as level 2.)
function Loader:at()
  return (recipe_frame(self))
end

-- where() -> "file:line" of the recipe line, or "?"
function Loader:where()
  return (steps.where(recipe_frame(self)))
end

-- fail(msg): stop loading; dsl.load reports msg at the recipe's line
function Loader:fail(msg)
  error({ where = self:where(), msg = msg }, 2)
end

function Loader:step_index(name)
  for i, s in ipairs(self.recipe.steps) do if s.name == name then return i end end
end

-- A name is shown on one line of the output (and --json): not blank,
-- without a newline or other control character (C0, DEL, C1)
local function shown_name(name)
  return '"' .. name:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("[%c]", function(c)
    return c == "\n" and "\\n" or c == "\t" and "\\t" or ("\\x%02x"):format(c:byte())
  end):gsub("\xC2([\x80-\x9F])", function(c) return ("\\u%04x"):format(c:byte()) end) .. '"'
end

-- names, paths and plain values the recipe shows in the open are exempt
-- from masking from the moment they appear (see secret.exempt): an error
-- while loading must not blank "airflow" out of "recipes/airflow-x.lua"
-- because a password defaults to "airflow"
function Loader:check_name(kind, name)
  -- the usual name (printable ASCII, not starting with a space) passes
  -- every check below at once
  if type(name) == "string" and name:find("^[!-~][ -~]*$") then
    secret.exempt(name)
    return
  end
  if type(name) ~= "string" or name == "" then
    self:fail(("%s: expected a name string, as in %s \"name\" { ... }"):format(kind, kind))
  end
  if not json.is_text(name) then
    self:fail(("%s: the name %s is not UTF-8 text%s"):format(kind, R.quote(name), R.NOT_TEXT))
  end
  if not name:find("%S") then self:fail(("%s: the name %s is blank"):format(kind, shown_name(name))) end
  if name:find("%c") or name:find("\xC2[\x80-\x9F]") then
    self:fail(("%s: the name %s holds a control character (a name is shown on one line)"):format(kind,
      shown_name(name)))
  end
  secret.exempt(name)
end

-- a step body: resources in the array part, custom functions by name
local Resource, is_resource, Undo = R.Resource, R.is, steps.Undo
-- item k of a body, v: a resource (and an undo only in a teardown)
local function check_item(self, kind, name, k, v)
  local mt = getmetatable(v)   -- (R.is written out: a resource's metatable is its kind's definition)
  if not (mt and type(v) == "table" and getmetatable(mt) == Resource) then
    self:fail(("%s '%s': item %d is not a resource (got %s); resources come from fs.*, http.*, compose.*, ...")
      :format(kind, name, k, type(v)))
  end
  if mt == Undo and kind ~= "teardown" then
    self:fail(("%s '%s': undo \"%s\" goes in teardown { ... } (in a %s it would undo at every apply)"):format(
      kind, name, v.step, kind))
  end
end

-- parse_body(kind, name, body [, borrow]) -> the list of body's resources.
-- borrow: the caller keeps no list of one resource (steps.step makes the
-- step its own list): the usual body, one resource and nothing else, is
-- given back as it is, not copied (a table less a step)
function Loader:parse_body(kind, name, body, borrow)
  if type(body) ~= "table" or (getmetatable(body) ~= nil and is_resource(body)) then
    self:fail(("%s '%s': expected a table { resource, ... } after the name"):format(kind, name))
  end
  local one = body[1]
  if one ~= nil and next(body, 1) == nil then   -- one resource and nothing else: the usual step
    check_item(self, kind, name, 1, one)
    return borrow and body or { one }
  end
  local named = false   -- a field other than the resources
  for k, v in next, body do
    if math.type(k) == "integer" then
      check_item(self, kind, name, k, v)
    else
      named = true
      local why = validate.body_field(kind, name, k, v)
      if why then self:fail(why) end
    end
  end
  local n = #body
  if not named then   -- resources only (the usual body): none of the checks on fields below applies
    if n == 0 then self:fail(("%s '%s' is empty: give it a resource, or check/apply functions"):format(kind, name)) end
    if n == 1 then return { body[1] } end
    return table.move(body, 1, n, 1, {})
  end
  if kind ~= "step" and body.tags then
    self:fail(("%s '%s': tags pick steps (--tags, --skip-tags); a %s has none"):format(kind, name, kind))
  end
  if kind ~= "step" and body.on_change then
    self:fail(("%s '%s': on_change makes a step run when others changed; a %s always runs"):format(kind, name, kind))
  end
  if kind ~= "step" and (body.before or body.after) then   -- ignored, silently, before
    self:fail(("%s '%s': before/after place a step among the steps; a %s has no place among them"):format(kind,
      name, kind))
  end
  local resources = {}
  for i = 1, #body do resources[i] = body[i] end
  if #resources == 0 and body.check == nil and body.apply == nil then
    self:fail(("%s '%s' is empty: give it a resource, or check/apply functions"):format(kind, name))
  end
  if body.check or body.apply then
    if #resources > 0 then
      self:fail(("%s '%s': give either resources or check/apply functions, not both"):format(kind, name))
    end
    resources[1] = steps.custom(body)
  elseif body.describe or body.revert or body.writes or body.reads or body.prefetch then
    self:fail(("%s '%s': describe/revert/writes/reads/prefetch go with check/apply functions"):format(kind, name))
  end
  return resources
end

-- ---- the declarations (a recipe calls them as globals: recipe_env)

function Loader:decl_recipe(t)
  if type(t) ~= "table" then self:fail("recipe: expected a table { name = ..., description = ... }") end
  for k, v in pairs(t) do
    if k ~= "name" and k ~= "description" and k ~= "hosts" then
      self:fail(("recipe: unknown field '%s' (fields: description, hosts, name)"):format(tostring(k)))
    end
    if type(v) ~= "string" then self:fail(("recipe: field '%s' must be a string"):format(k)) end
    if not json.is_text(v) then
      self:fail(("recipe: field '%s' must be UTF-8 text, not %s%s"):format(k, R.quote(v), R.NOT_TEXT))
    end
  end
  -- twice in one file: the last name won, silently. An included recipe's
  -- recipe {} is legitimate (it is a recipe of its own): the includer's
  -- name wins, or the first included one's when the includer has none
  local this = self.open[#self.open]
  if self.recipe_where[this] then
    self:fail(("recipe {} is declared twice (first at %s): declare it once"):format(self.recipe_where[this]))
  end
  self.recipe_where[this] = self:where()
  secret.exempt(t.name)
  local recipe = self.recipe
  if self.depth == 0 or recipe.name == nil then
    recipe.name = t.name or recipe.name
    recipe.description = t.description or recipe.description
    recipe.hosts = t.hosts or recipe.hosts   -- the hosts -i picks when no --limit says (fleet)
  end
end

-- the default a variable gets: the recipe's, or an include's override
function Loader:var_default(k, default)
  local d = self.var_defaults[k]
  if d == nil then return default end
  if secret.is(default) and not secret.is(d) then d = secret.new(tostring(d)) end
  if type(d) ~= type(default) and not (secret.is(default) and secret.is(d)) then
    self:fail(("include: variable '%s' must be a %s, not %s"):format(k, secret.is(default) and "secret" or type(default),
      type(d)))
  end
  return d
end

-- declare variable k: its value is -e's, else PROVISION_VAR_<k>'s (for
-- secrets: an -e value is in the process's argv, which any user can
-- read), else the default
function Loader:declare_var(k, default)
  local tt = type(default)
  if not (tt == "string" or tt == "number" or tt == "boolean" or secret.is(default)) then
    self:fail(("vars: '%s' must default to a string, number, boolean or secret, not %s"):format(k, tt))
  end
  default = self:var_default(k, default)
  if type(default) == "string" and not json.is_text(default) then
    self:fail(("vars: '%s' must default to UTF-8 text, not %s%s"):format(k, R.quote(default), R.NOT_TEXT))
  end
  local value = default
  local given = self.cli_vars[k]
  if given == nil then given = os.getenv("PROVISION_VAR_" .. k) end
  if given ~= nil then
    local v, err = validate.coerce(k, default, given)
    if v == nil then self:fail(err) end
    value = v
    self.used_vars[k] = true
  end
  if not secret.is(value) and type(value) == "string" then secret.exempt(value) end
  local recipe = self.recipe
  recipe.vars[k] = { value = value, default = default, secret = secret.is(default), where = self:where() }
  recipe.var_order[#recipe.var_order + 1] = k
  return value
end

-- a default, in a message (never a secret's)
local function show_default(v)
  if secret.is(v) then return "a secret" end
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end
local function type_of(v)
  if secret.is(v) then return "a secret" end
  if math.type(v) == "integer" then return "a whole number" end
  if type(v) == "number" then return "a number" end
  return "a " .. type(v)
end
local function same_default(a, b)
  if secret.is(a) and secret.is(b) then return secret.reveal(a) == secret.reveal(b) end
  return type_of(a) == type_of(b) and a == b
end
local PLACEHOLDER = { [""] = true, [0] = true, [false] = true }

-- A variable declared again (vars twice kept the first default silently,
-- with no type check). The rule, as README's "Customizing a recipe" says:
--   * in the same file: an error, naming both lines;
--   * another type (string, number, whole number, boolean, secret): an
--     error naming both places, as include's overrides are checked;
--   * the same type and default: the recipe and one it includes share the
--     variable (each declares what it uses: an included recipe still loads
--     on its own);
--   * in a recipe that includes the declaring one, after the include, with
--     an empty default ("", 0, false): it reads the included recipe's value
--     (recipes/examples/airflow-custom.lua: vars { dir = "", ... });
--   * any other default: an error naming both places; one of the two
--     defaults would be ignored (include(path, { k = v }) sets an included
--     recipe's default).
function Loader:redeclare_var(k, default, existing)
  local first = self.var_loads[k] or {}
  local this = self.open[#self.open]
  if first[#first] == this then
    self:fail(("vars: variable '%s' is declared twice (first at %s): declare it once"):format(k, existing.where))
  end
  if type_of(default) ~= type_of(existing.default) then
    self:fail(("vars: variable '%s' is %s here but %s at %s: a variable has one type"):format(k, type_of(default),
      type_of(existing.default), existing.where))
  end
  if same_default(default, existing.default) then return end
  local includer = false
  for i = 1, #first - 1 do includer = includer or first[i] == this end
  if includer and PLACEHOLDER[default] ~= nil then return end
  self:fail(("vars: variable '%s' defaults to %s here but to %s at %s: a recipe and one it includes share a "
    .. "variable only with the same default (to set the included recipe's: include(path, { %s = ... }); to read "
    .. "its value: declare it after the include with \"\", 0 or false)"):format(k, show_default(default),
    show_default(existing.default), existing.where, k))
end

function Loader:decl_vars(t)
  if type(t) ~= "table" then self:fail("vars: expected a table of name = default") end
  local names = {}
  for k in pairs(t) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      self:fail(("vars: bad variable name %s"):format(tostring(k)))
    end
    names[#names + 1] = k
  end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    local existing = self.recipe.vars[k]
    if existing then
      self:redeclare_var(k, t[k], existing)
      out[k] = existing.value
    else
      out[k] = self:declare_var(k, t[k])
      self.var_loads[k] = table.move(self.open, 1, #self.open, 1, {})
    end
  end
  return setmetatable(out, {
    __index = function(_, k) self:fail(("no variable named '%s' (declare it in vars{})"):format(tostring(k))) end,
  })
end

function Loader:decl_secret(v)
  if type(v) ~= "string" and type(v) ~= "number" then self:fail("secret: expected a string") end
  local short = secret.too_short(tostring(v))
  if short then self:fail("secret: " .. short) end
  return secret.new(v)
end

-- step "name" -> the step, to be called with its body: its table (steps.new),
-- callable until then (self.step_mt): a 142,000-step recipe made a closure
-- and its three upvalues a step, garbage as soon as the body came. Once
-- declared, a call again says so (DECLARED: it holds no loader, which the
-- recipe's steps would keep alive, and the recipe's compiled code with it),
-- and a new field set on it is refused (the runner sets its own by rawset)
local DECLARED = { __call = function(s)
  error(("step '%s' is declared twice (first at %s)"):format(s.name, steps.where(s.where)), 2)
end, __newindex = function(s, k)
  error(("step '%s': %s is given in its body (step \"%s\" { ..., %s = ... }), not set on the step")
    :format(s.name, tostring(k), s.name, tostring(k)), 2)
end }
function Loader:decl_step(name)
  self:check_name("step", name)
  return setmetatable(steps.new(name, self:at()), self.step_mt)
end

-- step "name" { body }: the body of step s. Every check comes before s is
-- written: a body refused inside the recipe's own pcall leaves s as it was,
-- to be given its body again
function Loader:step_body(s, body)
  local name = s.name
  local resources = self:parse_body("step", name, body, true)
  local recipe = self.recipe
  local prev = recipe.by_name[name]
  if prev then self:fail(("step '%s' is declared twice (first at %s)"):format(name, steps.where(prev.where))) end
  local anchor = body.before or body.after
  if body.before and body.after then self:fail(("step '%s': give before or after, not both"):format(name)) end
  local at = #recipe.steps + 1
  if anchor then
    local i = self:step_index(anchor)
    if not i then
      self:fail(("step '%s': no step named '%s' to insert %s"):format(name, anchor, body.before and "before" or "after"))
    end
    at = body.before and i or i + 1
  end
  setmetatable(s, DECLARED)   -- (steps.step sets its fields by rawset)
  steps.step(s, resources, body)
  if s.on_change then recipe.on_change_declared = true end
  if anchor then table.insert(recipe.steps, at, s) else recipe.steps[at] = s end
  recipe.by_name[name] = s
  if #recipe.steps % 4096 == 0 then self:big_recipe() end
end

-- A recipe of tens of thousands of steps holds as many tables, which live
-- as long as the run; each step's check and report then make ~2 KB of
-- garbage that dies with the step. Past BIG_HEAP KiB, the collector turns
-- generational: a minor collection looks at what was made since the last
-- one (GEN_MINOR % of the heap), not at the recipe's tables again; a major
-- one runs when the heap has grown by GEN_MAJOR % since the last. While
-- the recipe loads, nearly all it makes stays: Lua then finds its major
-- collections "bad" (they free less than half of the growth) and waits for
-- the pause before the next: BIG_PAUSE %, not Lua's 200 %, so the peak is
-- ~1.2x what is live, not 2x. A plan of 142,000 steps: ~30 % less time than
-- incremental collection at the same pause, the same peak (bench/README.md).
-- Smaller recipes keep Lua's defaults: their heap is small anyway.
local BIG_HEAP, BIG_PAUSE, GEN_MINOR, GEN_MAJOR = 64 * 1024, 120, 20, 50
function Loader:big_recipe()
  if not self.big and collectgarbage("count") > BIG_HEAP then
    self.big = true
    collectgarbage("incremental", BIG_PAUSE)   -- (the pause is kept in generational mode)
    collectgarbage("generational", GEN_MINOR, GEN_MAJOR)
    -- Lua 5.4.4 (Debian 12's) sets no target for the first minor collection
    -- when it enters generational mode (fixed in 5.4.5): one young step
    -- does, from there on the collector times itself
    collectgarbage("step", 0)
  end
end

function Loader:decl_check(name)
  self:check_name("check", name)
  local where = self:where()
  return function(body)
    local resources = self:parse_body("check", name, body)
    local recipe = self.recipe
    if recipe.check_names[name] then
      self:fail(("check '%s' is declared twice (first at %s)"):format(name, recipe.check_names[name].where))
    end
    local c = { name = name, resources = resources, where = where }
    recipe.check_names[name] = c
    recipe.checks[#recipe.checks + 1] = c
  end
end

function Loader:decl_teardown(body)
  if type(body) ~= "table" then self:fail("teardown: expected a table { resource, ... }") end
  -- a second one replaced the first, silently; so it would an included
  -- recipe's (there is no way to drop that one: a recipe that includes one
  -- with a teardown block uses it, with undo "step" for its own steps)
  local prev = self.recipe.teardown
  if prev then
    self:fail(("teardown {} is declared twice (first at %s): a recipe has one teardown block"):format(prev.where))
  end
  self.recipe.teardown = { name = "teardown", resources = self:parse_body("teardown", "teardown", body),
    where = self:where() }
end

function Loader:decl_undo(name)
  self:check_name("undo", name)
  return steps.undo(name, self:where())
end

function Loader:decl_remove_step(name)
  self:check_name("remove_step", name)
  local i = self:step_index(name)
  if not i then self:fail(("remove_step: no step named '%s'"):format(name)) end
  table.remove(self.recipe.steps, i)
  self.recipe.by_name[name] = nil
end

function Loader:decl_replace_step(name)
  self:check_name("replace_step", name)
  local i = self:step_index(name)
  if not i then self:fail(("replace_step: no step named '%s'"):format(name)) end
  local where = self:at()
  local prev = self.recipe.steps[i]
  return function(body)
    local resources = self:parse_body("step", name, body, true)
    local anchor = type(body) == "table" and (body.before and "before" or body.after and "after")
    if anchor then   -- it was ignored, silently
      self:fail(("replace_step '%s': %s = \"%s\" would be ignored: the step keeps its place (declared at %s); "
        .. "remove_step it and declare it again with %s = ..."):format(name, anchor, body[anchor], steps.where(prev.where),
          anchor))
    end
    local s = steps.step(steps.new(name, where), resources, body)
    if s.on_change then self.recipe.on_change_declared = true end
    self.recipe.steps[i] = s
    self.recipe.by_name[name] = s
  end
end

-- the path include(rel, t) or import(rel, t) names (relative to the file
-- that calls it), their arguments checked
function Loader:other_recipe(what, rel, t)
  if type(rel) ~= "string" then self:fail(what .. ": expected a recipe path") end
  if t ~= nil and type(t) ~= "table" then
    self:fail(("%s: the second argument must be a table of variable %s"):format(what,
      what == "include" and "defaults" or "values"))
  end
  return rel:sub(1, 1) == "/" and rel or ((self.current_dir or ".") .. "/" .. rel)
end

function Loader:decl_include(rel, overrides)
  local p = self:other_recipe("include", rel, overrides)
  local recipe = self.recipe
  for k, v in pairs(overrides or {}) do
    if recipe.vars[k] then
      self:fail(("include: variable '%s' is already declared (at %s)"):format(k, recipe.vars[k].where))
    end
    self.var_defaults[k] = v
  end
  -- a recipe that includes itself, through others or not: name the cycle
  -- (it would end in Lua's "stack overflow")
  local real = FS.realpath(p) or p
  self.including = self.including or { { real = FS.realpath(self.path) or self.path, shown = self.path } }
  for _, q in ipairs(self.including) do
    if q.real == real then
      local names = {}
      for _, x in ipairs(self.including) do names[#names + 1] = x.shown end
      self:fail(("include cycle: %s -> %s"):format(table.concat(names, " -> "), p))
    end
  end
  self.including[#self.including + 1] = { real = real, shown = p }
  self.depth = self.depth + 1
  self:load_file(p)
  self.depth = self.depth - 1
  self.including[#self.including] = nil
  -- an override for a variable the included recipe does not declare is a
  -- typo ({ verison = "2.9.3" }), not something to ignore
  local unknown = {}
  for k in pairs(overrides or {}) do
    if not recipe.vars[k] then unknown[#unknown + 1] = tostring(k) end
  end
  if #unknown > 0 then
    table.sort(unknown)
    self:fail(("include: %s declares no variable%s '%s' (variables: %s)"):format(rel, #unknown > 1 and "s" or "",
      table.concat(unknown, "', '"), validate.known_vars(recipe)))
  end
  return recipe
end

-- import(path [, values]) -> { steps = { [name] = body }, checks = { [name]
-- = body }, vars = { [name] = value } }: another recipe, loaded on its own
-- (its variables take values, else their defaults: not this run's -e,
-- which are this recipe's), declaring nothing here. This recipe declares
-- what it wants of it by name: step "x" (imported.steps["x"]). Its files
-- are this recipe's files (a fleet ships them); an error in it names its
-- file:line.
local function body_of(s)
  local b = { table.unpack(s.resources) }
  if s.tags and #s.tags > 0 then b.tags = s.tags end
  return b
end

function Loader:decl_import(rel, values)
  local p = self:other_recipe("import", rel, values)
  local chain = self.importing or { self.path }
  for _, q in ipairs(chain) do
    if q == p then self:fail(("import cycle: %s -> %s"):format(table.concat(chain, " -> "), p)) end
  end
  local sub = Loader.new(p, { vars = {} })
  sub.lua_path, sub.c_path = self.lua_path, self.c_path   -- the same plugin folders
  sub.importing = { table.unpack(chain) }
  sub.importing[#sub.importing + 1] = p
  for k, v in pairs(values or {}) do sub.var_defaults[k] = v end
  local ok, err = sub:run()
  if not ok then self:fail(("import %s: %s"):format(rel, err)) end
  local unknown = {}
  for k in pairs(values or {}) do
    if not sub.recipe.vars[k] then unknown[#unknown + 1] = tostring(k) end
  end
  if #unknown > 0 then
    table.sort(unknown)
    self:fail(("import: %s declares no variable%s '%s' (variables: %s)"):format(rel, #unknown > 1 and "s" or "",
      table.concat(unknown, "', '"), validate.known_vars(sub.recipe)))
  end
  for _, f in ipairs(sub.recipe.files) do table.insert(self.recipe.files, f) end
  for src in pairs(sub.sources) do self.sources[src] = true end
  for src in pairs(sub.short_srcs) do self.short_srcs[src] = true end
  local out = { steps = {}, checks = {}, vars = {} }
  for _, st in ipairs(sub.recipe.steps) do out.steps[st.name] = body_of(st) end
  for _, c in ipairs(sub.recipe.checks) do out.checks[c.name] = body_of(c) end
  for k, var in pairs(sub.recipe.vars) do out.vars[k] = var.value end
  return out
end

-- ---- the recipe's require

-- load_plugin(name) -> module, file | nil when the recipe's folders hold
-- none; raises (a message without position) when one does not load
function Loader:load_plugin(name)
  local file = package.searchpath(name, self.lua_path)
  local loader, err
  if file then
    loader, err = loadfile(file, "bt", self.plugin_env)
  else
    file = package.searchpath(name, self.c_path)
    if not file then return nil end
    loader, err = package.loadlib(file, "luaopen_" .. name:gsub("^[^-]*%-", ""):gsub("%.", "_"))
  end
  if not loader then error(("error loading module '%s' from file '%s':\n\t%s"):format(name, file, err), 0) end
  table.insert(self.recipe.files, file)
  local mod = loader(name, file)
  if mod == nil then mod = package.loaded[name] == nil and true or package.loaded[name] end
  package.loaded[name] = mod
  return mod, file
end

-- require(name, level): as Lua's, the recipe's folders first; an error is
-- raised at `level` (the recipe's line), as Lua's require raises it
function Loader:require(name, level)
  local ok, mod, extra = true, nil, nil
  if type(name) == "string" and package.loaded[name] == nil and not package.preload[name]
     and not name:find("^provision[._]") then
    ok, mod, extra = pcall(self.load_plugin, self, name)
  end
  -- Lua's require, called from pcall: its message then has no position
  if ok and extra == nil then ok, mod, extra = pcall(require, name) end
  if ok then return mod, extra end
  if type(mod) ~= "string" then error(mod, 0) end
  if mod:find("^module '.-' not found:") then  -- say where the recipe's modules were looked for
    for tpl in (self.lua_path .. ";" .. self.c_path):gmatch("[^;]+") do
      mod = mod .. "\n\tno file '" .. tpl:gsub("%?", (name:gsub("%.", "/"))) .. "'"
    end
  end
  error(mod, level + 1)
end

-- the recipe's modules/ folder, then each folder of PROVISION_PATH
function Loader:search_paths()
  local dir = self.path:match("^(.*)/[^/]*$") or "."
  local lpath, cpath = { dir .. "/modules/?.lua", dir .. "/modules/?/init.lua" }, { dir .. "/modules/?.so" }
  for d in (os.getenv("PROVISION_PATH") or ""):gmatch("[^:]+") do
    lpath[#lpath + 1] = d .. "/?.lua"; lpath[#lpath + 1] = d .. "/?/init.lua"
    cpath[#cpath + 1] = d .. "/?.so"
  end
  return table.concat(lpath, ";"), table.concat(cpath, ";")
end

-- ---- loading

local DECLS = { "recipe", "vars", "secret", "step", "check", "teardown", "undo", "remove_step", "replace_step",
  "include", "import" }

function Loader.new(path, opts)
  local self = setmetatable({
    path = path,
    cli_vars = opts.vars or {},
    used_vars = {},
    recipe = { file = path, name = nil, description = nil, steps = {}, by_name = {}, checks = {},
               check_names = {}, teardown = nil, vars = {}, var_order = {},
               files = {},     -- every file loaded: the recipe, its includes, its plugins
               on_change_declared = false },   -- a step with on_change (validate.on_change_targets)
    sources = {},          -- chunk sources of the recipe files being loaded
    chunks = {},           -- their main functions: their files' numbers (steps.file)
    short_srcs = {},       -- their short_src: Lua's "file:line" in an error (run)
    var_defaults = {},     -- include(path, overrides): new defaults
    depth = 0,
    loads = 0,             -- files loaded so far (an include of one file twice: two)
    open = {},             -- the loads being run: the recipe, ..., the current file
    var_loads = {},        -- variable name -> the open list when it was declared
    recipe_where = {},     -- load -> where its recipe {} is
  }, Loader)
  self.lua_path, self.c_path = self:search_paths()
  local api = {}
  function api.require(name)
    local mod, extra = self:require(name, 2)   -- not a tail call: level 2 is the recipe's line
    return mod, extra
  end
  for _, n in ipairs(DECLS) do
    local method = Loader["decl_" .. n]
    api[n] = function(a, b) return method(self, a, b) end   -- (each takes 2 at most; not vararg: cheaper)
  end
  -- a step before its body: called with it; a field set on it is refused
  -- (`local a = step "a"; a.tags = "web"`: its body gives them, checked)
  self.step_mt = { __call = function(s, body) return self:step_body(s, body) end,
                   __newindex = DECLARED.__newindex }
  self.env = env.globals(api)
  -- a plugin's globals are the process's, but for its require
  self.plugin_env = setmetatable({ require = api.require }, { __index = _G, __newindex = _G })
  return self
end

function Loader:load_file(p)
  secret.exempt(p)
  local f, why = io.open(p, "r")
  if not f then
    why = tostring(why):gsub("^" .. p:gsub("%p", "%%%0") .. ": ", "")
    self:fail(("cannot open recipe %s: %s"):format(p, why))
  end
  f:close()
  local chunk, err = loadfile(p, "t", self.env)
  if not chunk then
    -- a parse error past the C stack (nesting hundreds deep) goes through
    -- run()'s handler, which makes a table of it
    if type(err) == "table" then err = err.msg end
    err = tostring(err):gsub("\nstack traceback:.*$", "")
    if err:sub(1, #p + 1) ~= p .. ":" then err = ("%s: %s (nested too deeply?)"):format(p, err) end
    error({ msg = err, where = "" }, 0)
  end
  local info = debug.getinfo(chunk, "S")
  self.sources[info.source] = true
  self.chunks[chunk] = steps.file(info.short_src)
  self.short_srcs[info.short_src] = true
  table.insert(self.recipe.files, p)
  local saved = self.current_dir
  self.current_dir = p:match("^(.*)/[^/]*$") or "."
  self.loads = self.loads + 1
  self.open[#self.open + 1] = self.loads   -- this file, above the files that include it
  chunk()
  self.open[#self.open] = nil
  self.current_dir = saved
end

-- run() -> true | nil, "file:line: message"
function Loader:run()
  core.gc_settle()   -- Lua's pause again (core/main.c: 1000 % while the modules load)
  local ok, err = xpcall(self.load_file, function(e)
    if type(e) == "table" and e.msg then return e end
    -- a plain error: Lua already prefixed file:line when it was raised from
    -- recipe code; otherwise, find the recipe line in the stack
    local msg = tostring(e)
    for at in msg:match("^[^\n]*"):gmatch("():%d+: ") do   -- (a folder's name may hold ':')
      if self.short_srcs[msg:sub(1, at - 1)] then return { msg = msg, where = "" } end
    end
    return { msg = msg, where = self:where() }
  end, self, self.path)
  if ok then return true end
  if err.where and err.where ~= "" and err.where ~= "?" then return nil, err.where .. ": " .. err.msg end
  return nil, err.msg
end

return Loader
