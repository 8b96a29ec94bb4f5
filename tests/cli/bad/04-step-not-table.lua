-- expect: 04-step-not-table.lua:3: step 'a': expected a table
recipe { name = "x" }
step "a" "b"
