-- expect: 07-empty-step.lua:3: step 'a' is empty
recipe { name = "x" }
step "a" {}
