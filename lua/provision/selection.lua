-- provision.selection: which steps of a recipe a run takes, from the
-- command line: --only NAME and --skip NAME (names or globs: * ? [...]),
-- --tags T and --skip-tags T (steps carry tags = { ... }), --from NAME.
--
--   steps chosen = all steps, or (when --only or --tags is given) those
--   --only names plus those with a --tags tag; then less those --skip
--   names and those with a --skip-tags tag; then, with --from, only those
--   from that step on. A name, glob or tag that matches no step is an error
--   (a typo would otherwise run nothing, or everything, silently).
local M = {}

local function is_glob(s) return s:find("[%*%?%[]") ~= nil end

-- glob(s) -> a Lua pattern matching the whole name: * any run, ? one
-- character, [abc] [a-z] [!x] a class; everything else is itself
function M.pattern(glob)
  local out, i = { "^" }, 1
  while i <= #glob do
    local c = glob:sub(i, i)
    if c == "*" then out[#out + 1] = ".*"
    elseif c == "?" then out[#out + 1] = "."
    elseif c == "[" and glob:find("]", i + 2, true) then
      local j = glob:find("]", i + 2, true)
      local body = glob:sub(i + 1, j - 1):gsub("^!", "^"):gsub("([%%%.%(%)%+%*%?%$])", "%%%1")
      out[#out + 1] = "[" .. body .. "]"
      i = j
    else out[#out + 1] = (c:gsub("%W", "%%%0"))
    end
    i = i + 1
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

local function names_of(recipe)
  local t = {}
  for _, s in ipairs(recipe.steps) do t[#t + 1] = s.name end
  return t
end

local function tags_of(recipe)
  local seen, t = {}, {}
  for _, s in ipairs(recipe.steps) do
    for _, tag in ipairs(s.tags or {}) do
      if not seen[tag] then seen[tag] = true; t[#t + 1] = tag end
    end
  end
  table.sort(t)
  return t
end

local function listed(t) return #t > 0 and table.concat(t, ", ") or "none" end

-- mark(set, recipe, flag, names): each step whose name is or matches one of names
local function by_name(set, recipe, flag, names)
  for _, n in ipairs(names) do
    local hit = false
    if is_glob(n) then
      local pat = M.pattern(n)
      for _, s in ipairs(recipe.steps) do
        if s.name:find(pat) then set[s] = true; hit = true end
      end
      if not hit then return nil, ("%s: no step matches '%s' (steps: %s)"):format(flag, n, listed(names_of(recipe))) end
    else
      local s = recipe.by_name[n]
      if not s then return nil, ("%s: no step named '%s'"):format(flag, n) end
      set[s] = true
    end
  end
  return set
end

local function by_tag(set, recipe, flag, tags)
  for _, tag in ipairs(tags) do
    local hit = false
    for _, s in ipairs(recipe.steps) do
      for _, t in ipairs(s.tags or {}) do
        if t == tag then set[s] = true; hit = true end
      end
    end
    if not hit then return nil, ("%s: no step has the tag '%s' (tags: %s)"):format(flag, tag, listed(tags_of(recipe))) end
  end
  return set
end

-- select(recipe, o) -> { [i] = true | false } by step index, partial | nil, message
--   o.only, o.skip, o.tags, o.skip_tags: lists (empty or nil: not given); o.from: a name
function M.select(recipe, o)
  local only, tags = o.only or {}, o.tags or {}
  local chosen, err = by_name({}, recipe, "--only", only); if not chosen then return nil, err end
  chosen, err = by_tag(chosen, recipe, "--tags", tags); if not chosen then return nil, err end
  local dropped; dropped, err = by_name({}, recipe, "--skip", o.skip or {}); if not dropped then return nil, err end
  dropped, err = by_tag(dropped, recipe, "--skip-tags", o.skip_tags or {}); if not dropped then return nil, err end
  if o.from and not recipe.by_name[o.from] then return nil, ("--from: no step named '%s'"):format(o.from) end
  local all = #only == 0 and #tags == 0
  local run_it, started, partial = {}, o.from == nil, false
  if all and started and next(dropped) == nil then   -- no selection: every step
    for i = 1, #recipe.steps do run_it[i] = true end
    return run_it, false
  end
  for i, s in ipairs(recipe.steps) do
    if s.name == o.from then started = true end
    run_it[i] = started and (all or chosen[s] == true) and not dropped[s]
    if not run_it[i] then partial = true end
  end
  return run_it, partial
end

-- flag(o, a, value) -> true when a is a selection flag (its value put in
-- o) | nil, message for a bad value | false when a is another flag
function M.flag(o, a, value)
  if a ~= "--only" and a ~= "--skip" and a ~= "--tags" and a ~= "--skip-tags" then return false end
  local n, err = value(a)
  if not n then return nil, err end
  if a == "--only" or a == "--skip" then
    if n == "" then return nil, a .. " needs a step name or glob, not an empty string" end
    local list = a == "--only" and o.only or o.skip
    list[#list + 1] = n
    return true
  end
  local list = a == "--tags" and o.tags or o.skip_tags
  for t in (n .. ","):gmatch("([^,]*),") do
    t = t:match("^%s*(.-)%s*$")
    if t == "" then return nil, ("%s '%s': an empty tag (tags are comma-separated words)"):format(a, n) end
    list[#list + 1] = t
  end
  return true
end

-- any(o) -> true when the command line chose steps (teardown blocks run whole)
function M.any(o)
  return #(o.only or {}) > 0 or #(o.skip or {}) > 0 or #(o.tags or {}) > 0 or #(o.skip_tags or {}) > 0
    or o.from ~= nil
end

return M
