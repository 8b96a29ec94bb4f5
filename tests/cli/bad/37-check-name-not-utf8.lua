-- expect: 37-check-name-not-utf8.lua:3: check: the name "port \\xed\\xa0\\x80" is not UTF-8 text
recipe { name = "x" }
check "port \xed\xa0\x80" { check = function() return true end }
step "a" { fs.directory "./out" }
