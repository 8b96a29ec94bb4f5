-- expect: 34-paths-item-not-utf8.lua:3: fs.directory: option 'path' must be UTF-8 text, not item 2, "\./b\\xff\\xfe"
recipe { name = "x" }
step "a" { fs.directory { "./a", "./b\xff\xfe", mode = "0700" } }
