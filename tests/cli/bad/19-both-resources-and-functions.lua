-- expect: 19-both-resources-and-functions.lua:8: step 'a': give either resources or check/apply functions, not both
recipe { name = "x" }
local R = require "provision.resource"
local noop = R.define {
  kind = "test.noop", options = { name = "string?" },
  check = function() return true end,
}
step "a" {
  noop {}, check = function() return true end }
