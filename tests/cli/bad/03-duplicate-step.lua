-- expect: 03-duplicate-step.lua:4: step 'a' is declared twice %(first at .*03%-duplicate%-step.lua:3%)
recipe { name = "x" }
step "a" { check = function() return true end }
step "a" { check = function() return true end }
