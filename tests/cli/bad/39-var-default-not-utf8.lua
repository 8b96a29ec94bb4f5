-- expect: 39-var-default-not-utf8.lua:3: vars: 'dir' must default to UTF-8 text, not "\./w\\xe9b"
recipe { name = "x" }
local v = vars { dir = "./w\xe9b", key = secret "binary \xff is fine in a secret" }
step "a" { fs.directory(v.dir) }
