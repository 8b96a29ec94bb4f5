-- expect: 40-describe-not-utf8.lua:3: step 'a': field 'describe' must be UTF-8 text, not "made \\xc0\\xaf"
recipe { name = "x" }
step "a" { describe = "made \xc0\xaf", check = function() return false end, apply = function() os.execute("mkdir out") end }
