-- expect: 23-unknown-option.lua:3: fs.file: unknown option 'contents'
recipe { name = "x" }
step "a" { fs.file { path = "./out/a", contents = "x" } }
