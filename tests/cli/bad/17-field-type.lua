-- expect: 17-field-type.lua:3: step 'a': field 'check' must be a function, not boolean
recipe { name = "x" }
step "a" { check = true }
