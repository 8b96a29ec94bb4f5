-- expect: 36-step-name-not-utf8.lua:3: step: the name "caf\\xe9" is not UTF-8 text
recipe { name = "x" }
step "caf\xe9" { fs.directory "./out" }
