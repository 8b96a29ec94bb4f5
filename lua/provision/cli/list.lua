-- provision.cli.list: `provision list RECIPE`: the recipe's checks, steps
-- (with their tags), teardown and variables, as text or --json events
local core = require "provision._core"
local secret = require "provision.secret"
local step_kind = require("provision.dsl.steps").kind

local EXIT = core.EXIT

local M = {}

function M.main(recipe, report)
  if report.json then   -- checks, steps, then the variables (name, type, default: a secret's masked)
    for _, c in ipairs(recipe.checks) do
      report:event { event = "check", name = c.name, kind = step_kind(c), status = "listed" }
    end
    for i, s in ipairs(recipe.steps) do
      report:event({ event = "step", index = i, name = s.name, kind = step_kind(s), status = "listed", ms = 0,
                     tags = #(s.tags or {}) > 0 and s.tags or nil }, true)   -- (held: report.lua)
    end
    for _, k in ipairs(recipe.var_order) do
      local v = recipe.vars[k]
      local d = v.secret and secret.MASK or v.default
      report:event { event = "variable", name = k, type = v.secret and "string" or type(v.default),
                     default = d, secret = v.secret and true or false }
    end
    return EXIT.ok
  end
  local out = { recipe.name .. (recipe.description and (": " .. recipe.description) or "") .. "\n" }
  for _, c in ipairs(recipe.checks) do out[#out + 1] = ("  check  %s  (%s)\n"):format(c.name, step_kind(c)) end
  for i, s in ipairs(recipe.steps) do
    local tags = #(s.tags or {}) > 0 and ("  tags: " .. table.concat(s.tags, ", ")) or ""
    out[#out + 1] = ("  %3d.  %s  (%s)%s\n"):format(i, s.name, step_kind(s), tags)
  end
  if recipe.teardown then
    out[#out + 1] = ("  teardown  (%s)\n"):format(step_kind(recipe.teardown))
  end
  if #recipe.var_order > 0 then
    out[#out + 1] = "  variables:\n"
    for _, k in ipairs(recipe.var_order) do
      local v = recipe.vars[k]
      out[#out + 1] = ("    %s = %s\n"):format(k, v.secret and secret.MASK or tostring(v.value))
    end
  end
  report:write(table.concat(out))
  return EXIT.ok
end

return M
