-- expect: 12-vars-table-default.lua:3: vars: 'ports' must default to a string, number, boolean or secret, not table
recipe { name = "x" }
local v = vars { ports = { 1, 2 } }
