-- expect: 10-replace-missing.lua:3: replace_step: no step named 'nope'
recipe { name = "x" }
replace_step "nope" { check = function() return true end }
