-- expect: 33-path-not-utf8.lua:3: fs.directory: option 'path' must be UTF-8 text, not "\./caf\\xe9" \(names, paths and commands are recorded and reported as JSON
recipe { name = "x" }
step "a" { fs.directory "./caf\xe9" }
