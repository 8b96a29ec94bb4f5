-- expect: 01-syntax.lua:4: .*expected
recipe { name = "x" }
step "a" {
  check = function() return true end,,
}
