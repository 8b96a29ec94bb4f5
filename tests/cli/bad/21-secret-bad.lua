-- expect: 21-secret-bad.lua:3: secret: expected a string
recipe { name = "x" }
local s = secret { "x" }
