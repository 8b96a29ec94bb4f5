-- expect: 09-remove-missing.lua:3: remove_step: no step named 'nope'
recipe { name = "x" }
remove_step "nope"
