-- provision.fs.template: fs.template and fs.render. "${name}" is replaced
-- by vars.name; "$${" is a literal "${".
local R = require "provision.resource"
local B = require "provision.fs.base"
local F = require "provision.fs.file"

local T = {}

-- a placeholder: the "$" that escapes it (or ""), and its name
local PLACEHOLDER = "(%$?)%${([^}]*)}"

local function template_names(t)
  local names = {}
  for esc, name in t:gmatch(PLACEHOLDER) do
    if esc == "" then names[#names + 1] = name end
  end
  return names
end

-- reveal: a secret's value, else the mask
local function render(t, vars, reveal)
  return (t:gsub(PLACEHOLDER, function(esc, name)
    if esc ~= "" then return "${" .. name .. "}" end
    local v = vars[name]
    if R.is_secret(v) then return reveal and R.reveal(v) or B.MASK end
    return tostring(v)
  end))
end
T.render = function(t, vars) return render(t, vars or {}, true) end

-- s as a Lua pattern that matches it literally
local function literal(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?{}]", "%%%0")) end

local function holds_secret(line, vars)
  for esc, name in line:gmatch(PLACEHOLDER) do
    if esc == "" and R.is_secret(vars[name]) then return true end
  end
  return false
end

-- a template line that holds a secret, as a pattern that matches the line
-- rendered with any value of the secret
local function secret_line_pattern(line, vars)
  local pat, pos = {}, 1
  while true do
    local a, b, esc, name = line:find(PLACEHOLDER, pos)
    pat[#pat + 1] = literal(line:sub(pos, a and a - 1 or -1))
    if not a then break end
    if esc ~= "" then pat[#pat + 1] = literal("${" .. name .. "}")
    elseif R.is_secret(vars[name]) then pat[#pat + 1] = ".-"
    else   -- a plain value is known: the line must hold it as it is now
      pat[#pat + 1] = literal(render("${" .. name .. "}", vars, true))
    end
    pos = b + 1
  end
  return "^" .. table.concat(pat) .. "$"
end

-- The old file's line that matches a template line holding a secret is
-- shown masked, so an old secret no longer known (the recipe changed it)
-- cannot show in a diff. -> mask(old) -> old masked; mask(line, true) ->
-- line masked, whether a rule took it | nil: no line holds a secret
local function secret_line_masker(t, vars)
  local rules = {}
  for line in (t .. "\n"):gmatch("(.-)\n") do
    if holds_secret(line, vars) then
      rules[#rules + 1] = { secret_line_pattern(line, vars), render(line, vars, false) }
    end
  end
  if #rules == 0 then return nil end
  return function(old, one_line)
    if one_line then
      for _, r in ipairs(rules) do if old:match(r[1]) then return r[2], true end end
      return old, false
    end
    return (old:gsub("[^\n]+", function(l)
      for _, r in ipairs(rules) do if l:match(r[1]) then return r[2] end end
    end))
  end
end

-- the line_key()s of the rendered lines of t that hold a secret value
local function secret_line_keys(t, vars)
  local out = {}
  for line in (t .. "\n"):gmatch("(.-)\n") do
    if holds_secret(line, vars) then out[#out + 1] = F.line_key(render(line, vars, true)) end
  end
  return out
end

T.template = R.define {
  kind = "fs.template",
  owns = "path",
  writes = F.content_writes(function(self) return render(self.template, self.vars, true) end),
  options = {
    path = { "string", path = true, doc = "the file" },
    template = { "string", doc = "its text, with ${name} placeholders" },
    vars = { "table", default = {}, doc = "the placeholders' values, { name = value } (may be secrets)" },
    mode = { "mode?", doc = "its mode; a new file: 0644 (0600 when its content holds a secret); else kept" },
    owner = { "string?", doc = "the user who owns it (a name)" },
    group = { "string?", doc = "its group (a name)" },
    backup = { "boolean?", doc = "true: keep the content it replaces beside it; teardown puts the oldest back" },
  },
  validate = function(self)
    local ok, err = F.validate(self)
    if not ok then return nil, err end
    for _, name in ipairs(template_names(self.template)) do
      if not name:match("^[%a_][%w_]*$") then
        return nil, ("template: bad placeholder ${%s} (names are letters, digits and _; write $${ for a literal ${)")
          :format(name)
      end
      if self.vars[name] == nil then
        return nil, ("template uses ${%s}, which is not in vars"):format(name)
      end
    end
    for k, v in pairs(self.vars) do
      local t = type(v)
      if type(k) ~= "string" or not (t == "string" or t == "number" or t == "boolean" or R.is_secret(v)) then
        return nil, ("vars.%s must be a string, number, boolean or secret, not a %s"):format(tostring(k), t)
      end
    end
    -- a template that writes a secret is written 0600 unless the recipe says
    for _, name in ipairs(template_names(self.template)) do
      if R.is_secret(self.vars[name]) then
        self.holds_secret = true
        if self.mode == nil then self.mode = B.SECRET_MODE end
      end
    end
    return true
  end,
  describe = function(self) return "file " .. self.path .. " (template)" end,
  check = function(self, ctx)
    return F.check(self, ctx, render(self.template, self.vars, true), render(self.template, self.vars, false),
      secret_line_masker(self.template, self.vars))
  end,
  apply = function(self, ctx)
    return F.apply(self, ctx, render(self.template, self.vars, true),
      self.holds_secret and secret_line_keys(self.template, self.vars) or nil)
  end,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = F.revert,
  state_revert = true,
  sync_later = true,    -- its write may wait for the batch's sync (run.lua)
}

return T
