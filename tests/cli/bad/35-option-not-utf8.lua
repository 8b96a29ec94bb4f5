-- expect: 35-option-not-utf8.lua:3: exec.command: option 'creates' must be UTF-8 text, not "\./done-\\xc3"
recipe { name = "x" }
step "a" { exec.command { "touch", "./out", creates = "./done-\xc3" } }
