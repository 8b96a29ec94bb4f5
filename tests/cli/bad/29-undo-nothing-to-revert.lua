-- expect: 29-undo-nothing-to-revert.lua:4: undo: step 'probe' records nothing a teardown can revert \(http.expect has no revert\)
recipe { name = "x" }
step "probe" { http.expect { url = "http://127.0.0.1:9/" } }
teardown { fs.absent "./x", undo "probe" }
