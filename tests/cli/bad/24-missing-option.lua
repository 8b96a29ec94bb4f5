-- expect: 24-missing-option.lua:4: fs.file: missing required option 'path'
recipe { name = "x" }
step "dir" { fs.directory "./out" }
step "a" { fs.file { content = "x" } }
