-- expect: 02-load-error.lua:3: boom
recipe { name = "x" }
error("boom")
