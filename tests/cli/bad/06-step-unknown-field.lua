-- expect: 06-step-unknown-field.lua:3: step 'a': unknown field 'aply'
recipe { name = "x" }
step "a" { check = function() return true end, aply = function() end }
