-- tests/lua/test_fleet.lua: the parts of provision.fleet that need no ssh:
-- --host lists, and the bundle a host gets on stdin (what goes in, what the
-- remote side accepts). The runs on real sshd hosts: tests/e2e/fleet.sh.
local T = dofile "tests/lua/harness.lua"
local fleet = require "provision.fleet"
local bundle = require "provision.fleet.bundle"
local dsl = require "provision.dsl"
local core = require "provision._core"
local FS = require "provision._fs"

local function write(p, s) assert(core.write_atomic(p, s, tonumber("644", 8))) end
local function as_file(s)
  local f = assert(io.tmpfile())
  f:write(s); f:seek("set", 0)
  return f
end

T.test("--host: repeated and comma lists, trimmed, deduplicated; bad names refused", function()
  T.eq(fleet.hosts { "a,b", " c ", "a", "ssh://u@h:2222" }, { "a", "b", "c", "ssh://u@h:2222" })
  local _, err = fleet.hosts { "a,,b" }
  T.match(err, "empty host")
  _, err = fleet.hosts { "-oProxyCommand=x" }
  T.match(err, "cannot start with '%-'")
  _, err = fleet.hosts { "a b" }
  T.match(err, "no blanks")
end)

-- a recipe in d/app that includes d/shared/base.lua, with a plugin and a file beside it
local function project()
  local d = T.tmpdir()
  for _, sub in ipairs { "/app", "/app/modules", "/app/files", "/app/.provision", "/shared", "/other" } do
    assert(core.mkdirs(d .. sub, tonumber("755", 8)))
  end
  write(d .. "/shared/base.lua", 'step "b" { check = function() return true end }\n')
  write(d .. "/app/modules/plug.lua", "return { x = 1 }\n")
  write(d .. "/app/files/t.tmpl", "\0binary\255")
  write(d .. "/app/.provision/state.json", "{}")
  write(d .. "/other/unrelated.txt", "not sent")
  write(d .. "/app/r.lua", 'recipe { name = "b" }\nlocal v = vars { pw = secret "initial-pw" }\n'
    .. 'local p = require "plug"\ninclude "../shared/base.lua"\n'
    .. 'step "a" { check = function() return true end }\n')
  assert(FS.symlink("/etc/passwd", d .. "/app/link"))
  return d
end

T.test("bundle: the folders of the recipe, its include and plugin; no state, no links, nothing else", function()
  local d = project()
  local o = { verb = "plan", recipe = d .. "/app/r.lua", vars = { pw = "s3cret\0\255bytes" }, only = { "a" } }
  local recipe = assert(dsl.load(o.recipe, { vars = o.vars }))
  local b = assert(bundle.build(recipe, o))
  T.eq(b.recipe, "app/r.lua")
  local text = bundle.text(b, o.vars)
  local h, contents = bundle.read(as_file(text))
  T.ok(h, contents)
  local names = {}
  for i, e in ipairs(h.files) do names[#names + 1] = e.path; T.eq(#contents[i], e.size) end
  T.eq(names, { "app/files/t.tmpl", "app/modules/plug.lua", "app/r.lua", "shared/base.lua" })
  T.eq(contents[1], "\0binary\255")
  T.eq(h.vars.pw, "s3cret\0\255bytes")                -- any bytes, through hex
  T.ok(not text:find("s3cret", 1, true), "the secret is not in the stream as text")
  T.eq(h.verb, "plan"); T.eq(h.flags.only, { "a" })
end)

T.test("bundle.read refuses what a controller would not send", function()
  local function bad(text, pattern)
    local h, err = bundle.read(as_file(text))
    T.eq(h, nil); T.match(err, pattern)
  end
  local function with(header, body)
    return bundle.MAGIC .. "\n" .. require("provision.json").encode(header) .. "\n" .. (body or "")
  end
  local ok = { verb = "apply", recipe = "r.lua", vars = {}, flags = {}, files = { { path = "r.lua", mode = 420, size = 2 } } }
  T.ok(bundle.read(as_file(with(ok, "--"))))
  bad("GET / HTTP/1.0\n", "not a provision bundle")
  bad(bundle.MAGIC .. "\n{not json\n", "damaged bundle header")
  for _, p in ipairs { "../x", "/etc/passwd", "a/../../x", "a//b", "./a", "" } do
    bad(with({ verb = "apply", recipe = "r.lua", vars = {}, flags = {},
               files = { { path = p, mode = 420, size = 0 } } }), "damaged bundle entry")
  end
  bad(with({ verb = "apply", recipe = "../r.lua", vars = {}, flags = {}, files = {} }), "outside the bundle")
  bad(with(ok, "-"), "cut short")
  bad(with({ verb = "apply", recipe = "r.lua", vars = {}, flags = {},
             files = { { path = "big", mode = 420, size = bundle.MAX_BYTES + 1 } } }), "larger than")
  bad(with({ verb = "apply", recipe = "r.lua", vars = { k = "zz" }, flags = {}, files = {} }), "damaged bundle variable")
end)

T.test("bundle: a recipe folder too large to send is refused, naming the folder", function()
  local d = T.tmpdir()
  write(d .. "/r.lua", 'recipe { name = "big" }\nstep "a" { check = function() return true end }\n')
  local saved = bundle.MAX_BYTES
  bundle.MAX_BYTES = 10
  local recipe = assert(dsl.load(d .. "/r.lua", {}))
  local b, err = bundle.build(recipe, { verb = "apply", recipe = d .. "/r.lua", vars = {} })
  bundle.MAX_BYTES = saved
  T.eq(b, nil); T.match(err, "too much to send")
end)

local inventory = require "provision.fleet.inventory"

local function inv_file(text)
  local d = T.tmpdir()
  write(d .. "/hosts.lua", text)
  return d .. "/hosts.lua"
end

local INV = [[
return {
  web = { vars = { port = 8080, who = "web" }, hosts = { "web1", web2 = { port = 9090 } } },
  db = { vars = { who = "db" }, hosts = { "db1", "web2" } },
}
]]

T.test("inventory: groups, globs, all; a host's variables: its groups' (by name), then its own", function()
  local inv = assert(inventory.load(inv_file(INV)))
  T.eq(inventory.select(inv, "web"), { "web1", "web2" })
  T.eq(inventory.select(inv, "db,web1"), { "db1", "web2", "web1" })
  T.eq(inventory.select(inv, "web*"), { "web1", "web2" })
  T.eq(inventory.select(inv, "all"), { "db1", "web1", "web2" })
  local _, err = inventory.select(inv, "web,nosuch")
  T.match(err, "no group or host matches 'nosuch'")
  T.eq(inventory.vars_of(inv, "web1"), { port = "8080", who = "web" })
  T.eq(inventory.vars_of(inv, "web2"), { port = "9090", who = "web" })   -- db < web (by name), own last
  T.eq(inventory.vars_of(inv, "db1"), { who = "db" })
end)

T.test("inventory: what is not one is refused, naming the file and the place", function()
  local cases = {
    { "return 1", "must return a table of groups" },
    { "return { web = { hosts = { 'a b' } } }", "group web: bad host" },
    { "return { web = { hosts = { '-oX' } } }", "group web: bad host" },
    { "return { web = { hosts = {}, extra = 1 } }", "unknown field 'extra'" },
    { "return { web = { hosts = { a = { ['not a name'] = 1 } } } }", "host a: bad variable name" },
    { "return { web = { vars = { x = {} }, hosts = {} } }", "variable 'x' must be" },
    { "return { ['we b'] = { hosts = {} } }", "bad group name" },
    { "return {", "expected" },
  }
  for _, c in ipairs(cases) do
    local inv, err = inventory.load(inv_file(c[1]))
    T.eq(inv, nil, c[1]); T.match(err, c[2])
  end
end)

T.test("targets: --limit, else the recipe's hosts; inventory vars checked against the recipe, -e wins", function()
  local d = T.tmpdir()
  write(d .. "/r.lua", 'recipe { name = "t", hosts = "db" }\nlocal v = vars { port = 80, who = "x" }\n'
    .. 'step "a" { check = function() return true end }\n')
  local recipe = assert(dsl.load(d .. "/r.lua", {}))
  local inv = inv_file(INV)
  local names, vars = fleet.targets({ hosts = {}, inventory = inv, vars = {} }, recipe)
  T.eq(names, { "db1", "web2" })
  T.eq(vars[2], { port = "9090", who = "web" })
  names, vars = fleet.targets({ hosts = {}, inventory = inv, limit = "web1", vars = { who = "cli" } }, recipe)
  T.eq(names, { "web1" }); T.eq(vars[1], { port = "8080", who = "cli" })
  local bad = inv_file("return { web = { vars = { port = 'eighty' }, hosts = { 'w' } } }")
  local _, err = fleet.targets({ hosts = {}, inventory = bad, limit = "all", vars = {} }, recipe)
  T.match(err, "host w: variable 'port' must be a number")
  write(d .. "/n.lua", 'recipe { name = "n" }\nstep "a" { check = function() return true end }\n')
  _, err = fleet.targets({ hosts = {}, inventory = inv, vars = {} }, assert(dsl.load(d .. "/n.lua", {})))
  T.match(err, "which hosts%?")
  _, err = fleet.targets({ hosts = { "a" }, limit = "web", vars = {} }, recipe)
  T.match(err, "give %-i FILE")
end)

T.done()
