-- expect: 27-undo-missing-step.lua:4: undo: no step named 'imgae' \(steps: image\)
recipe { name = "x" }
step "image" { fs.directory "./img" }
teardown { undo "imgae" }
