-- expect: 05-step-item-not-resource.lua:3: step 'a': item 1 is not a resource %(got string%)
recipe { name = "x" }
step "a" { "mkdir /tmp/x" }
