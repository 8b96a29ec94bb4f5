-- expect: 32-writes-on-resource-step.lua:3: step 'env': describe/revert/writes/reads/prefetch go with check/apply functions
recipe { name = "x" }
step "env" { fs.file { path = "a", content = "x" }, writes = "a" }
