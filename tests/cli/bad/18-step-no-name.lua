-- expect: 18-step-no-name.lua:3: step: expected a name string
recipe { name = "x" }
step { check = function() return true end }
