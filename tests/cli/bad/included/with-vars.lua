recipe { name = "inner" }
local v = vars { n = 3, dir = "./inner" }
step "inner step" { check = function() return true end }
