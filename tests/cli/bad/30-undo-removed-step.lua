-- expect: 30-undo-removed-step.lua:4: undo: no step named 'image' \(steps: none\)
recipe { name = "x" }
step "image" { fs.directory "./img" }
teardown { undo "image" }
remove_step "image"
