-- expect: 14-duplicate-check.lua:4: check 'c' is declared twice
recipe { name = "x" }
check "c" { check = function() return true end }
check "c" { check = function() return true end }
