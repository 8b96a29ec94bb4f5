-- expect: 11-include-missing.lua:3: cannot open recipe .*no%-such%-recipe.lua
recipe { name = "x" }
include "no-such-recipe.lua"
