-- luacheck's settings for `make lint` (tests/lint.sh): Lua 5.4, and the
-- globals a recipe (and a --script) sees (lua/provision/env.lua, dsl.lua)
std = "lua54"
max_line_length = 140
-- a resource's check/apply/revert take (self, ctx) whether they use them
unused_args = false

local modules = { "archive", "compose", "docker", "exec", "fs", "http", "json", "pkg",
  "service", "stack", "swarm", "sys", "yaml" }
local recipe_api = { "recipe", "vars", "secret", "step", "check", "teardown", "undo", "import",
  "remove_step", "replace_step", "include" }

stds.provision_script = { read_globals = modules }
stds.provision_recipe = { read_globals = recipe_api }

files["recipes/"] = { std = "+provision_script+provision_recipe" }
files["tests/fixtures/"] = { std = "+provision_script+provision_recipe" }
-- tests: long lines, and `ok, err = ...` where only err is looked at
files["tests/lua/"] = { std = "+provision_script", max_line_length = false, ignore = { "311" } }
