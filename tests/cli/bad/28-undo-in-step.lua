-- expect: 28-undo-in-step.lua:4: step 'again': undo "image" goes in teardown \{ ... \}
recipe { name = "x" }
step "image" { fs.directory "./img" }
step "again" { undo "image" }
