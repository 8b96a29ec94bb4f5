-- provision.dsl.validate: the checks on what a recipe declared that need
-- more than one call to see (the loader checks each call as it comes):
-- a step body's fields, -e values against their variable's type, two
-- steps owning one path, undo naming a step, -e naming no variable.
-- Each returns nil when all is well, else the message (with file:line).
local core = require "provision._core"
local json = require "provision.json"
local R = require "provision.resource"
local secret = require "provision.secret"
local steps = require "provision.dsl.steps"
local where = steps.where   -- (a step's where: steps.lua)

local M = {}

M.STEP_FIELDS = {
  describe = "string", check = "function", apply = "function", revert = "function", prefetch = "function",
  before = "string", after = "string",
  writes = "paths", reads = "paths",   -- a path or a list of paths (for plan: see resource.lua)
  tags = "tags",                       -- a tag or a list of them: --tags / --skip-tags pick steps by them
  on_change = "names",                 -- a step name or a list: run only when one of them changed
}

local function paths_ok(v)
  if type(v) == "string" then return true end
  if type(v) ~= "table" or #v == 0 then return false end
  for i, p in pairs(v) do
    if math.type(i) ~= "integer" or type(p) ~= "string" then return false end
  end
  return true
end

-- body_field(kind, name, k, v) -> nil | why: a named field of a step body
function M.body_field(kind, name, k, v)
  local want = type(k) == "string" and M.STEP_FIELDS[k]
  if not want then
    local names = {}
    for n in pairs(M.STEP_FIELDS) do names[#names + 1] = n end
    table.sort(names)
    return ("%s '%s': unknown field '%s' (fields: %s)"):format(kind, name, tostring(k), table.concat(names, ", "))
  end
  if want == "tags" then
    local list = type(v) == "string" and { v } or v
    if type(list) ~= "table" or #list == 0 then
      return ("%s '%s': field 'tags' must be a tag or a list of tags"):format(kind, name)
    end
    for k2, t in pairs(list) do
      if math.type(k2) ~= "integer" or type(t) ~= "string" or not t:find("^[%w_.:/-]+$") then
        return ("%s '%s': tag %s: a tag is a word of letters, digits and _ . : / - (no spaces or commas)")
          :format(kind, name, type(t) == "string" and R.quote(t) or tostring(t))
      end
    end
  elseif want == "names" then
    local list = type(v) == "string" and { v } or v
    if type(list) ~= "table" or #list == 0 then
      return ("%s '%s': field '%s' must be a step name or a list of them"):format(kind, name, k)
    end
    for k2, n in pairs(list) do
      if math.type(k2) ~= "integer" or type(n) ~= "string" or n == "" then
        return ("%s '%s': field '%s' must be a step name or a list of them"):format(kind, name, k)
      end
    end
  elseif want == "paths" then
    if not paths_ok(v) then return ("%s '%s': field '%s' must be a path or a list of paths"):format(kind, name, k) end
    for _, p in ipairs(type(v) == "table" and v or { v }) do
      if not json.is_text(p) then
        return ("%s '%s': field '%s' must be UTF-8 text, not %s%s"):format(kind, name, k, R.quote(p), R.NOT_TEXT)
      end
    end
  elseif type(v) ~= want then
    return ("%s '%s': field '%s' must be a %s, not %s"):format(kind, name, k, want, type(v))
  elseif type(v) == "string" and not json.is_text(v) then
    return ("%s '%s': field '%s' must be UTF-8 text, not %s%s"):format(kind, name, k, R.quote(v), R.NOT_TEXT)
  end
end

-- coerce(name, default, text) -> value | nil, why: an -e value, to the
-- type of the variable's default
function M.coerce(name, default, text)
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
    -- nor one that overflows to inf (1e400), as "inf" itself is not taken
    if n == nil or n == math.huge or n == -math.huge then
      return nil, ("variable '%s' must be a number, not %q%s"):format(name, text, n and " (out of range)" or "")
    end
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
    if l == "false" or l == "no" or l == "0" or l == "off" then return false end
    -- "" is refused too: -e flag= is more likely a value left out than a no
    return nil, ("variable '%s' must be true or false, not %q (true, yes, on, 1 or false, no, off, 0)"):format(name,
      text)
  end
  return nil, ("variable '%s' (a %s) cannot be set with -e"):format(name, t)
end

-- ---- two steps owning one path
--
-- A resource kind that writes a path says so in its definition (R.define's
-- `owns`: the option holding the path or paths; `agrees`: when two of the
-- kind may own one path; `absent`: it removes the path). Two that want one
-- path in different states never converge: each apply undoes the other's
-- work, and plan calls the first one fine.
local NONE = {}
local function def_of(res) return R.kinds[res.kind] or NONE end

local function agree(a, b)
  if a.kind ~= b.kind then return false end
  local agrees = def_of(a.res).agrees
  return agrees ~= nil and agrees(a.res, b.res) == true
end

local function both_own(s, res, p, prev)
  return ("%s: %s of step '%s' and %s of step '%s' (%s) both own %s: each run would undo "
    .. "the other's work; keep one")
    :format(where(s.where), res.kind, s.name, prev.kind, prev.step.name, where(prev.step.where), p)
end

-- one pass over every path claimed, in recipe order: claims = {
-- [normalized path] = the first claim { kind, res, step, path } }, more =
-- { [normalized path] = { the claims after the first } } (kinds that
-- agree), absences = { { res, step, path, key }, ... }. nil, message when
-- two claims of one path do not agree.
local function claims_of(recipe, cwd)
  local claims, more, absences = {}, {}, {}
  local norm_path = R.norm_path
  local err = R.each_owned(recipe.steps, function(s, res, def, p)
    local key = norm_path(p, cwd)
    local claim = { kind = res.kind, res = res, step = s, path = p }
    local first = claims[key]
    if not first then
      claims[key] = claim
    else
      if not agree(first, claim) then return both_own(s, res, p, first) end
      local list = more[key]
      if not list then list = {}; more[key] = list end
      for _, prev in ipairs(list) do
        if not agree(prev, claim) then return both_own(s, res, p, prev) end
      end
      list[#list + 1] = claim
    end
    if def.absent then absences[#absences + 1] = { res = res, step = s, path = p, key = key } end
  end)
  if err then return nil, err end
  return claims, more, absences
end

-- for each folder an absence removes: the first (by path) claim strictly
-- inside it, not an absence. Each claimed path's folders are looked up
-- (a path's folders are its prefixes up to a "/": normalized paths have
-- no "//", "." or ".."), so the work is that of the paths' depths.
local function claims_inside(claims, more, absences)
  local removed = {}
  for _, a in ipairs(absences) do removed[a.key] = false end
  local function consider(key, c)
    if def_of(c.res).absent then return end
    local folder = key
    while true do
      folder = folder:match("^(.+)/[^/]*$")
      if not folder then return end
      local inside = removed[folder]
      if inside ~= nil and (not inside or c.path < inside.path) then removed[folder] = c end
    end
  end
  for key, c in pairs(claims) do
    consider(key, c)
    for _, c2 in ipairs(more[key] or NONE) do consider(key, c2) end
  end
  return removed
end

-- shared(recipe, cwd) -> true when some path is claimed twice, or an
-- absence is declared: then claims_of, whose claims make the messages, is
-- needed. The usual recipe has neither: this pass makes no table per
-- claim, and keys the usual relative path by itself (no cwd prepended):
-- a path's key is its normalized form, relative when under cwd ("." for
-- cwd itself), so that two spellings of one path share a key.
local function shared(recipe, cwd)
  local seen = core.map(#recipe.steps)   -- (room for a path a step: no rehash on the way)
  local norm_path, clean_path = R.norm_path, R.clean_path
  local under = cwd == "/" and "/" or cwd .. "/"
  return R.each_owned(recipe.steps, function(_, _, def, p)
    if def.absent or type(p) ~= "string" then return true end   -- (claims_of raises what it always did)
    local key
    if clean_path(p, true) then   -- (relative)
      key = p
    else
      local abs = norm_path(p, cwd)
      if abs:sub(1, #under) == under then key = abs:sub(#under + 1)
      else key = abs == cwd and "." or abs end
    end
    if seen[key] then return true end
    seen[key] = true
  end) or false
end

function M.path_conflict(recipe)
  local cwd = core.cwd() or "/"
  if not shared(recipe, cwd) then return nil end
  local claims, more, absences = claims_of(recipe, cwd)
  if not claims then return more end
  if #absences == 0 then return nil end
  -- an absence over a folder another resource writes in: each run removes
  -- what the other makes (in recipe order, so the message is stable)
  local inside_of = claims_inside(claims, more, absences)
  for _, a in ipairs(absences) do
    local inside = inside_of[a.key]
    if inside then
      return ("%s: %s of step '%s' removes %s, where %s of step '%s' (%s) writes %s: each run "
        .. "would undo the other's work; keep one"):format(where(a.step.where), a.res.kind, a.step.name, a.path,
        inside.kind, inside.step.name, where(inside.step.where), inside.path)
    end
  end
end

-- undo "x" names a step the recipe ends up with (after include,
-- remove_step, ...), one with something a teardown can revert
function M.undo_targets(recipe)
  for _, res in ipairs(recipe.teardown and recipe.teardown.resources or {}) do
    if steps.is_undo(res) then
      local s = recipe.by_name[res.step]
      if not s then
        local names = {}
        for _, st in ipairs(recipe.steps) do names[#names + 1] = st.name end
        return ("%s: undo: no step named '%s' (steps: %s)"):format(res.where, res.step,
          #names > 0 and table.concat(names, ", ") or "none")
      end
      local revertible, kinds = false, {}
      for _, r in ipairs(s.resources) do
        revertible = revertible or r.revert ~= nil
        kinds[#kinds + 1] = r.kind
      end
      if not revertible then
        return ("%s: undo: step '%s' records nothing a teardown can revert (%s has no revert)"):format(
          res.where, res.step, table.concat(kinds, ", "))
      end
    end
  end
end

-- on_change names steps the recipe ends up with (after include,
-- remove_step, ...), each before the step that watches it
function M.on_change_targets(recipe)
  if recipe.on_change_declared == false then return nil end   -- the loader saw no step with on_change
  local index
  for i, s in ipairs(recipe.steps) do
    local watched = s.on_change
    if watched and #watched > 0 and not index then   -- the steps by name, made once, when one is needed
      index = {}
      for j, s2 in ipairs(recipe.steps) do index[s2.name] = j end
    end
    for _, n in ipairs(watched or NONE) do
      if n == s.name then
        return ("%s: step '%s': on_change names the step itself"):format(where(s.where), s.name)
      elseif not index[n] then
        local names = {}
        for _, st in ipairs(recipe.steps) do names[#names + 1] = st.name end
        return ("%s: step '%s': on_change: no step named '%s' (steps: %s)"):format(where(s.where), s.name, n,
          table.concat(names, ", "))
      elseif index[n] > i then
        return ("%s: step '%s': on_change names '%s', which runs after it: a step that runs on a change goes "
          .. "after the steps it watches"):format(where(s.where), s.name, n)
      end
    end
  end
end

-- the variables a recipe declares, sorted, for a message
function M.known_vars(recipe)
  local known = {}
  for _, k in ipairs(recipe.var_order) do known[#known + 1] = k end
  table.sort(known)
  return #known > 0 and table.concat(known, ", ") or "none"
end

-- -e keys nobody declared
function M.unknown_vars(path, recipe, given, used)
  local unknown = {}
  for k in pairs(given) do if not used[k] then unknown[#unknown + 1] = k end end
  if #unknown == 0 then return nil end
  table.sort(unknown)
  return ("%s: unknown variable%s %s (variables: %s)"):format(path, #unknown > 1 and "s" or "",
    "'" .. table.concat(unknown, "', '") .. "'", M.known_vars(recipe))
end

return M
