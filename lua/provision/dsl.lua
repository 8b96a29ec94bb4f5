-- provision.dsl: loading a recipe. A recipe file only declares: recipe{},
-- vars{}, check, step, teardown (and undo "step" in it), include,
-- remove_step, replace_step. Loading has no side effects (not even on
-- package.path: dsl/loader.lua); the runner (provision.run) acts on what
-- was declared.
--
-- dsl.load(path, { vars = { KEY = "text" } }) -> recipe | nil, message
-- Every message names the recipe's file:line where one is known.
--
-- The parts: dsl/loader.lua runs the recipe file in its environment of
-- declarations, checking each call; dsl/validate.lua checks what needs the
-- whole recipe (two steps owning one path, undo targets, unknown -e
-- variables); dsl/steps.lua holds the custom-step and undo resources.
local secret = require "provision.secret"
local Loader = require "provision.dsl.loader"
local validate = require "provision.dsl.validate"

local M = {}

function M.load(path, opts)
  opts = opts or {}
  local loader = Loader.new(path, opts)
  local ok, err = loader:run()
  if not ok then return nil, err end
  local recipe = loader.recipe
  err = validate.undo_targets(recipe)
    or validate.on_change_targets(recipe)
    or validate.unknown_vars(path, recipe, loader.cli_vars, loader.used_vars)
    or validate.path_conflict(recipe)
  if err then return nil, err end
  recipe.name = recipe.name or (path:match("([^/]+)%.lua$") or path)
  secret.exempt(recipe.name)
  for _, k in ipairs(recipe.var_order) do
    local v = recipe.vars[k]
    if not v.secret and type(v.value) == "string" then secret.exempt(v.value) end
  end
  return recipe
end

return M
