-- expect: 08-before-missing.lua:4: step 'b': no step named 'nope' to insert before
recipe { name = "x" }
step "a" { check = function() return true end }
step "b" { check = function() return true end, before = "nope" }
