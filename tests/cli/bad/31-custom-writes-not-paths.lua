-- expect: 31-custom-writes-not-paths.lua:3: step 'env': field 'writes' must be a path or a list of paths
recipe { name = "x" }
step "env" { writes = { "a", 5 }, check = function() return true end }
