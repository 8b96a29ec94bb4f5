-- expect: 38-recipe-name-not-utf8.lua:2: recipe: field 'name' must be UTF-8 text, not "caf\\xe9"
recipe { name = "caf\xe9" }
step "a" { fs.directory "./out" }
