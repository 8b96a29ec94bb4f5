-- expect: 26-exec-shell-string.lua:3: exec.command
recipe { name = "x" }
step "a" { exec.command { "rm -rf ./out" } }
