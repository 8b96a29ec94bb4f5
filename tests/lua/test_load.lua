-- tests/lua/test_load.lua: what makes loading a recipe fast gives the
-- answers the plain way gives: a constructor's option checks once it runs
-- the code written out for its kind (resource.lua: specialize), norm_path's
-- quick way for the usual spelling, the one-pass path-conflict check.
local T = dofile "tests/lua/harness.lua"
local R = require "provision.resource"
local fs = require "provision.fs"
local secret = require "provision.secret"
local steps = require "provision.dsl.steps"

-- what a constructor call gives: the table's fields, or the error
local function outcome(ctor, args)
  local ok, v = pcall(ctor, args)
  if not ok then return "error: " .. tostring(v):gsub("^[^:]*:%d+: ", "") end
  local keys = {}
  for k, x in pairs(v) do
    if type(x) == "table" and not secret.is(x) then x = "{" .. table.concat(x, ",") .. "}" end
    keys[#keys + 1] = tostring(k) .. "=" .. tostring(x)
  end
  table.sort(keys)
  return table.concat(keys, " ")
end

T.test("a kind's options are checked the same before and after its check is written out", function()
  local calls = {
    { path = "d/1", content = "x", mode = "0644" },
    { path = "d/1", content = "x" },
    { path = "d/1", content = secret.new("hunter22") },
    { path = "d/1", content = "x", mode = 644 },
    { path = "d/1", content = "x", mode = "999" },
    { path = "", content = "x" },
    { path = "d/1" },
    { content = "x" },
    { path = "d/1", content = "x", colour = "red" },
    { "d/1", content = "x" },
    { path = "a\0b", content = "x" },
    { path = "caf\xe9", content = "x" },
    { path = 12, content = 34, backup = "yes" },
    { path = "d/", content = "x" },
  }
  local dirs = {
    { path = { "a", "b" }, mode = "0700" },
    { path = { "a", "" } },
    { path = "a" },
    { path = {} },
    { path = { "a", 3 } },
  }
  local before, before_dirs = {}, {}
  for i, a in ipairs(calls) do before[i] = outcome(fs.file, a) end
  for i, a in ipairs(dirs) do before_dirs[i] = outcome(fs.directory, a) end
  -- past the number of calls after which a kind's check is written out
  for _ = 1, 200 do fs.file { path = "d/1", content = "x" }; fs.directory "a" end
  for i, a in ipairs(calls) do T.eq(outcome(fs.file, a), before[i], "fs.file call " .. i) end
  for i, a in ipairs(dirs) do T.eq(outcome(fs.directory, a), before_dirs[i], "fs.directory call " .. i) end
  T.match(before[5], "option 'mode' must be a file mode")
  T.match(before[6], "option 'path' is an empty path")
  T.match(before[7], "missing required option 'content'")
  T.match(before[9], "unknown option 'colour'")
  T.match(before_dirs[2], "item 2 is an empty path")
  -- a default is checked and set as before too
  local spec = { name = { "string" }, port = { "integer", default = 80 }, on = { "boolean?" } }
  local first = { R.validate("x.y", spec, { name = "a" }) }
  for _ = 1, 200 do R.validate("x.y", spec, { name = "a" }) end
  T.eq({ R.validate("x.y", spec, { name = "a" }) }, first)
  T.eq(first[1], { name = "a", port = 80 })
  T.eq({ R.validate("x.y", spec, { name = "a", port = "x" }) },
    { nil, "x.y: option 'port' must be an integer, not \"x\"" })
  T.eq({ R.validate("x.y", spec, { port = 1 }) }, { nil, "x.y: missing required option 'name'" })
end)

T.test("norm_path: the usual spelling and every other give what the long way gives", function()
  -- the long way: rewrite the string until nothing changes
  local function long_way(p, cwd)
    if not p:find("^/") then p = cwd .. "/" .. p end
    p = p .. "/"
    local before
    repeat
      before = p
      p = p:gsub("//+", "/"):gsub("/%./", "/"):gsub("^/%.%./", "/")
      p = p:gsub("/[^/]+/%.%./", function(m) return m == "/../../" and m or "/" end, 1)
    until p == before
    return p == "/" and p or p:sub(1, -2)
  end
  local pieces = { "/", ".", "a", ".b", "" }
  local n = 0
  for _, cwd in ipairs { "/", "/srv/x" } do
    -- every string of up to 5 pieces
    local function each(prefix, depth)
      if prefix ~= "" then
        n = n + 1
        T.eq(R.norm_path(prefix, cwd), long_way(prefix, cwd), ("%q under %s"):format(prefix, cwd))
      end
      if depth == 0 then return end
      for _, piece in ipairs(pieces) do each(prefix .. piece, depth - 1) end
    end
    each("", 5)
  end
  T.ok(n > 1000)
end)

T.test("path conflicts: the first claim, then the agreeing ones; an absence over a folder", function()
  local validate = require "provision.dsl.validate"
  local function recipe(...)
    local list = {}
    for i, res in ipairs { ... } do list[i] = { name = "s" .. i, where = "r.lua:" .. i, resources = res } end
    return { steps = list }
  end
  T.eq(validate.path_conflict(recipe({ fs.file { path = "a", content = "x" } }, { fs.file { path = "b", content = "x" } })), nil)
  T.eq(validate.path_conflict(recipe({ fs.directory { "w", mode = "0700" } }, { fs.directory { "./w/", mode = "0700" } },
    { fs.directory { "w//", mode = "0755" } })),
    "r.lua:3: fs.directory of step 's3' and fs.directory of step 's1' (r.lua:1) both own w//: each run would "
    .. "undo the other's work; keep one")
  T.eq(validate.path_conflict(recipe({ fs.file { path = "w/in/z", content = "x" }, fs.file { path = "w/in/y", content = "x" } },
    { fs.absent { "w/other", "./w//in/" } })),
    "r.lua:2: fs.absent of step 's2' removes ./w//in/, where fs.file of step 's1' (r.lua:1) writes w/in/y: each "
    .. "run would undo the other's work; keep one")
  T.eq(validate.path_conflict(recipe({ fs.file { path = "w/in-old/x", content = "x" } }, { fs.absent "w/in" })), nil)
  T.eq(validate.path_conflict(recipe({ fs.absent "w" }, { fs.absent "w/x" })), nil)
end)

T.test("a step of one resource is 4 named fields (its kind filled in) and its own list of resources at [1]; tags and on_change only when given", function()
  local dir = T.tmpdir()
  local f = io.open(dir .. "/r.lua", "w")
  f:write('recipe { name = "shape" }\n',
    'step "a" { fs.file { path = "d/a", content = "x" } }\n',
    'step "b" { fs.file { path = "d/b", content = "x" }, fs.directory "d/c", tags = "web" }\n',
    'step "c" { fs.directory "d/e", on_change = "a" }\n')
  f:close()
  local recipe = assert(require("provision.dsl").load(dir .. "/r.lua", {}))
  local a, b, c = recipe.steps[1], recipe.steps[2], recipe.steps[3]
  local keys = {}
  for k in pairs(a) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  T.eq(table.concat(keys, " "), "1 kind name resources where")
  T.eq(rawequal(a.resources, a), true, "one resource: the step is the list")
  T.eq(#a.resources, 1)
  T.eq(a.resources[1].path, "d/a")
  local n = 0
  for i, r in ipairs(a.resources) do n = n + 1; T.eq(r, a[i]) end
  T.eq(n, 1, "ipairs: the one resource")
  T.eq(rawequal(b.resources, b), false, "two resources: a list of their own")
  T.eq(#b.resources, 2)
  T.eq(b[1], nil)
  T.eq(a.kind, "fs.file")
  T.eq(math.type(a.where), "integer", "where: a number, no string a step")
  T.eq(steps.where(a.where), dir .. "/r.lua:2")
  T.eq(b.kind, nil, "two resources: the runner joins their kinds")
  T.eq(b.tags, { "web" })
  T.eq(c.kind, "fs.directory")
  T.eq(c.tags, nil)
  T.eq(c.on_change, { "a" })
end)

-- step "name" gives the step's own table, callable until its body comes
-- (no closure a step): what a recipe does with it works as a closure did
T.test("step \"name\" is the step to be: called later, out of order, or twice; once declared it holds no loader", function()
  local dir = T.tmpdir()
  local function load(src)
    local f = io.open(dir .. "/r.lua", "w")
    f:write('recipe { name = "later" }\n', src)
    f:close()
    return require("provision.dsl").load(dir .. "/r.lua", {})
  end
  local recipe = assert(load('local a, b = step "a", step "b"\n'
    .. 'b { fs.file { path = "d/b", content = "x" } }\n'
    .. 'step "c" { fs.file { path = "d/c", content = "x" }, fs.directory "d/e" }\n'
    .. 'a { fs.directory "d" }\n'))
  local names, mt = {}, getmetatable(recipe.steps[1])
  for i, s in ipairs(recipe.steps) do
    names[i] = s.name
    T.eq(getmetatable(s), mt, "declared: one metatable for every step")
  end
  T.eq(select(2, debug.getupvalue(mt.__call, 1)), _G, "its __call holds the globals (for error)")
  T.eq(select(2, debug.getupvalue(mt.__call, 2)), steps, "and provision.dsl.steps (for where)")
  T.eq(debug.getupvalue(mt.__call, 3), nil, "and nothing else: nothing of the loader's")
  T.eq(table.concat(names, " "), "b c a", "each body goes to its own name, in the order the bodies come")
  T.eq(steps.where(recipe.by_name.a.where), dir .. "/r.lua:2", "where: the line of step \"a\", not of its body")
  T.eq(recipe.by_name.a.resources[1].path, { "d" })
  T.eq(recipe.by_name.b.resources[1].path, "d/b")
  T.eq(recipe.by_name.c.kind, nil)
  T.eq(recipe.by_name.c[1], nil, "two resources: nothing at [1]")
  local _, err = load('local a = step "a"\na { fs.directory "d" }\na { fs.directory "e" }\n')
  T.eq(err, dir .. "/r.lua:4: step 'a' is declared twice (first at " .. dir .. "/r.lua:2)")
  -- a long path: Lua shortens it ("...") in its own positions; said once
  local deep = dir .. "/" .. ("a-folder-with-a-long-name/"):rep(4)
  assert(os.execute("mkdir -p " .. deep))
  local f = io.open(deep .. "r.lua", "w")
  f:write('recipe { name = "deep" }\nlocal a = step "a"\na { fs.directory "d" }\na { fs.directory "e" }\n')
  f:close()
  _, err = require("provision.dsl").load(deep .. "r.lua", {})
  T.eq(select(2, err:gsub("declared twice", "")), 1, err)
  T.ok(err:find("^%.%.%.[^:]*r%.lua:4: step 'a' is declared twice %(first at %.%.%.[^:]*r%.lua:2%)$"), err)
  -- and so is a recipe's own error() there (Lua's position is the file's
  -- short_src, which the loader knows)
  f = io.open(deep .. "r.lua", "w")
  f:write('recipe { name = "deep" }\nerror("boom")\n')
  f:close()
  _, err = require("provision.dsl").load(deep .. "r.lua", {})
  T.ok(err:find("^%.%.%.[^:]*r%.lua:2: boom$"), err)
  -- a body refused inside the recipe's pcall leaves the step to be declared
  local r2 = assert(load('local a = step "a"\n'
    .. 'assert(not pcall(a, { fs.directory "d", before = "x", after = "y" }))\n'
    .. 'a { fs.directory "d" }\n'))
  T.eq(r2.by_name.a.resources[1].path, { "d" })
  -- ... and keeps nothing of it: not its tags, not its place
  r2 = assert(load('step "b" { fs.directory "b" }\nlocal a = step "a"\n'
    .. 'assert(not pcall(a, { fs.directory "d", tags = "web", on_change = "b", before = "nope" }))\n'
    .. 'a { fs.directory "d" }\n'))
  T.eq(r2.by_name.a.tags, nil, "the refused body's tags are not the step's")
  T.eq(r2.by_name.a.on_change, nil)
  T.eq(r2.on_change_declared, false)
  T.eq(r2.steps[2], r2.by_name.a, "the step where its body puts it")
  -- a field set on a step before its body: refused at its line (the body
  -- gives them, checked), and nothing declared
  _, err = load('local a = step "a"\na.tags = "web"\na { fs.directory "d" }\n')
  T.eq(err, dir .. "/r.lua:3: step 'a': tags is given in its body (step \"a\" { ..., tags = ... }), not set on the step")
  -- ... and after it (the runner would not see it: on_change, tags)
  _, err = load('step "b" { fs.directory "b" }\nlocal a = step "a"\na { fs.directory "d" }\na.on_change = { "b" }\n')
  T.eq(err, dir .. "/r.lua:5: step 'a': on_change is given in its body (step \"a\" { ..., on_change = ... }), "
    .. "not set on the step")
  -- a folder whose name holds ':': Lua's position is still known, said once
  local colon = dir .. "/a:b"
  assert(os.execute("mkdir -p '" .. colon .. "'"))
  f = io.open(colon .. "/r.lua", "w")
  f:write('recipe { name = "colon" }\nlocal a = step "a"\na { fs.directory "d" }\na { fs.directory "e" }\n')
  f:close()
  _, err = require("provision.dsl").load(colon .. "/r.lua", {})
  T.eq(err, colon .. "/r.lua:4: step 'a' is declared twice (first at " .. colon .. "/r.lua:2)")
  -- where: a string as it is; a number of no file said as it is, not an error
  T.eq(steps.where("?"), "?")
  T.eq(steps.where(7), "7")
  _, err = load('step "a" (42)\n')
  T.eq(err, dir .. "/r.lua:2: step 'a': expected a table { resource, ... } after the name")
  T.eq(type(load('step "a"\n').by_name.a), "nil", "a name without a body declares nothing, as before")
end)

T.test("report: a step and its change lines are one write (one flush), as they read", function()
  local Report = require "provision.report"
  local writes = {}
  local r = Report.new({ verb = "plan" })
  r.out = { write = function(_, s) writes[#writes + 1] = s end, flush = function() end }
  r:start({ name = "x", steps = { { name = "f1" } } }, "plan", 1)
  writes = {}
  r:step(1, { name = "f1" }, "would-change", 0, "+ d/f1", { "+ d/f1 (1 bytes)", "--- /dev/null", "+++ d/f1" })
  T.eq(#writes, 1)
  T.match(writes[1], "^%[1/1%] f1 +would%-change +0ms  %+ d/f1\n      %+ d/f1 %(1 bytes%)\n      %-%-%- /dev/null\n"
    .. "      %+%+%+ d/f1\n$")
  writes = {}
  r:step(1, { name = "f1" }, "ok", 0)
  T.eq(#writes, 1)
end)

T.test("planned: a path's key and under give what the normalized paths give", function()
  local planned = require "provision.planned"
  local spell = { "a", "a/b", "./a", "a//b/", "a/../c", ".", "./", "..", "../x", "/", "/etc", "/etc/x" }
  for _, cwd in ipairs { "/w/p", "/" } do
    local run = { cwd = cwd }
    local all = {}
    for _, p in ipairs(spell) do all[#all + 1] = p end
    all[#all + 1] = cwd; all[#all + 1] = cwd .. "/a/b"; all[#all + 1] = (cwd == "/" and "" or cwd) .. "/a"
    local function long(a, b)
      a, b = R.norm_path(a, cwd), R.norm_path(b, cwd)
      return a == b or b == "/" or a:sub(1, #b + 1) == b .. "/"
    end
    for _, a in ipairs(all) do
      for _, b in ipairs(all) do
        local ka, kb = planned.key(run, a), planned.key(run, b)
        T.eq(ka == kb, R.norm_path(a, cwd) == R.norm_path(b, cwd), ("%s: %s and %s: one key"):format(cwd, a, b))
        T.eq(planned.under(run, ka, kb), long(a, b), ("%s: %s under %s"):format(cwd, a, b))
      end
    end
  end
end)

-- a plan of n new files (fresh: every step would change), in process: the
-- live heap when it ends, less the loaded recipe's -> bytes a step
local function plan_keeps(n)
  local Report = require "provision.report"
  local dir = os.tmpname(); os.remove(dir)
  assert(fs.mkdir(dir))
  local f = assert(io.open(dir .. "/r.lua", "w"))
  f:write(('recipe { name = "k" }\nstep "d" { fs.directory { path = "%s/s" } }\n'):format(dir))
  for i = 1, n do f:write(('step("f%d") { fs.file { path = "%s/s/f%d", content = "a=%d\\n" } }\n'):format(i, dir, i, i)) end
  f:close()
  local dsl = require "provision.dsl"
  local load0, summary0 = dsl.load, Report.summary
  local loaded, ended
  dsl.load = function(...)
    local a, b = load0(...)
    collectgarbage(); collectgarbage()
    loaded = collectgarbage("count")
    return a, b
  end
  Report.summary = function(self, ...)
    collectgarbage(); collectgarbage()
    ended = collectgarbage("count")   -- (and no summary line)
  end
  local o = assert(require("provision.cli").parse({ "plan", dir .. "/r.lua" }))
  o.quiet = true
  local ok, rc = pcall(require("provision.run").main, o)
  dsl.load, Report.summary = load0, summary0
  os.execute("rm -rf '" .. dir .. "'")
  assert(ok, rc)
  return (ended - loaded) * 1024 / n, rc
end

T.test("plan keeps little a step: the writes a later reader may ask about, not their digests and change lines", function()
  local bytes, rc = plan_keeps(20000)
  T.eq(rc, 3, "plan's exit code: changes to make")
  -- (a key the resource holds already and the resource: two slots of a
  -- list, one of a map, ~118 bytes; it was 530 bytes. And Lua's string
  -- table, 8 bytes a slot, which the plan's new strings double once:
  -- ~26 bytes a step since a step's where is no string, so the load leaves
  -- that table half the size)
  -- (the bound leaves that room: keeping a step's change lines again is
  -- ~400 bytes more)
  assert(bytes < 200, ("%.0f bytes a step"):format(bytes))
end)

-- dsl.load of a recipe written to a new folder -> the recipe, and the
-- collector's mode once it is loaded (collectgarbage answers with the mode
-- it leaves; Lua's own defaults are put back)
local function mode_after_load(src)
  local dir = os.tmpname(); os.remove(dir)
  assert(fs.mkdir(dir))
  local f = assert(io.open(dir .. "/r.lua", "w"))
  f:write(src)
  f:close()
  collectgarbage(); collectgarbage("incremental", 200, 100, 13)
  local recipe, err = require("provision.dsl").load(dir .. "/r.lua", {})
  local mode = collectgarbage("incremental", 200, 100, 13)
  os.execute("rm -rf '" .. dir .. "'")
  return assert(recipe, err), mode
end

T.test("a recipe whose tables pass 64 MiB as it loads turns the collector generational; a small one leaves it", function()
  local big, mode = mode_after_load([[
recipe { name = "big" }
step "d" { fs.directory { path = "s" } }
local pad = ("x"):rep(100)
for i = 1, 120000 do step("f" .. i) { fs.file { path = "s/f" .. i, content = pad .. i .. "\n" } } end
]])
  T.eq(#big.steps, 120001, "every step loaded")
  T.eq(mode, "generational", "the big recipe: generational")
  T.eq(big.steps[120001].resources[1].content, ("x"):rep(100) .. "120000\n", "the last step's content")
  big = nil
  local small
  small, mode = mode_after_load('recipe { name = "small" }\nstep "f" { fs.file { path = "f", content = "x" } }\n')
  T.eq(#small.steps, 1, "the small recipe loaded")
  T.eq(mode, "incremental", "a small recipe: Lua's incremental collector")
end)

os.exit(T.done())
