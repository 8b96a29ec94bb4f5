-- expect: 20-before-and-after.lua:4: step 'b': give before or after, not both
recipe { name = "x" }
step "a" { check = function() return true end }
step "b" { check = function() return true end, before = "a", after = "a" }
