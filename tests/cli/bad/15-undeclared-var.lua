-- expect: 15-undeclared-var.lua:5: no variable named 'dri'
recipe { name = "x" }
local v = vars { dir = "./out" }
step "a" { check = function() return v.dri ~= nil end }
local x = v.dri
