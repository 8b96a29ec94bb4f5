-- expect: 25-option-type.lua:3: fs.directory: option 'mode' must be a file mode
recipe { name = "x" }
step "a" { fs.directory { "./out", mode = "rwxr-xr-x" } }
