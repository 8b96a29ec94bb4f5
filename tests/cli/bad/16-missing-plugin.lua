-- expect: 16-missing-plugin.lua:3: module 'nosuchplugin' not found
recipe { name = "x" }
local p = require "nosuchplugin"
