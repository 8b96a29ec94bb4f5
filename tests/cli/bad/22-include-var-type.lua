-- expect: with-vars.lua:2: include: variable .n. must be a number, not string
recipe { name = "x" }
include("included/with-vars.lua", { n = "many" })
