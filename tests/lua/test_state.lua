-- Lua tests of the state file's lazy reading (lua/provision/state.lua,
-- json.decode_lazy / decode_at in modules/json/read.c): a state file that is
-- the very text save wrote (the digest it ends with holds) is read a step
-- at a time; any other is read whole and checked, as before.
local T = dofile "tests/lua/harness.lua"
local json = require "provision.json"
local State = require "provision.state"
local FS = require "provision._fs"

local function write(path, text)
  local f = assert(io.open(path, "wb")); f:write(text); f:close()
end
local function read(path)
  local f = assert(io.open(path, "rb")); local t = f:read("a"); f:close(); return t
end

-- a saved state of n steps, each recording a file, in a new folder
local function saved_state(n)
  local dir = T.tmpdir() .. "/st"
  local s = assert(State.open(dir, "r", { create = true, lock = true }))
  for i = 1, n do
    s:set_step("s" .. i, { { kind = "fs.file", state = { created = json.array { { type = "file", path = "d/" .. i } } } } })
  end
  assert(s:flush()); assert(s:save()); s:close()
  return dir
end

T.test("json.decode_lazy: the member's values left where they are, read by decode_at as decode reads them", function()
  local text = json.encode({ version = 1, recipe = "r", steps = {
    ["a"] = { applied = 1.5, resources = json.array { { kind = "k", state = { x = "caf\u{e9} \"q\" \\ \n" } } } },
    ["n\u{e9}e \"x\""] = { notified = true, resources = json.array {} },
    ["deep"] = { v = { { { { "x" } } } }, big = 9007199254740993, neg = -0.25e-3 },
  } }, { pretty = true })
  local full = json.decode(text)
  local lazy = assert(json.decode_lazy(text, "steps", 200))
  T.eq(lazy.version, 1); T.eq(lazy.recipe, "r")
  local n = 0
  for name, at in pairs(lazy.steps) do
    n = n + 1
    T.eq(math.type(at), "integer", "an offset")
    T.eq(json.decode_at(text, at, 200), full.steps[name], name)
  end
  T.eq(n, 3, "every step indexed")
  T.eq(json.decode_lazy('{"steps":{}}', "steps").steps, {}, "no steps")
  T.eq(json.decode_lazy('{"version":1}', "steps").steps, nil, "no member")
  for _, bad in ipairs { '{"steps":[1]}', '{"steps":{"a":1}} x', '{"steps":{"a":{"b":[1}}}', '{"steps":{"a":"x}}',
                         '[1]', '', '{"steps":{"a":{}}', '{"x":01}' } do
    T.eq(json.decode_lazy(bad, "steps"), nil, "not sure of: " .. bad)
  end
  -- what the direct reader is not sure of, decode_at hands to decode whole
  local t2 = '{"steps":{"a":{"n":1e400},"b":{"s":"\\u0000"}}}'
  local idx = assert(json.decode_lazy(t2, "steps")).steps
  T.eq(select(2, json.decode_at(t2, idx.a)), select(2, json.decode('{"n":1e400}')), "the same error as decode")
  T.eq(json.decode_at(t2, idx.b), json.decode('{"s":"\\u0000"}'))
  T.raises(function() json.decode_at(t2, #t2 + 1) end, "not an offset")
end)

T.test("state: a saved state is read lazily, a step's record when it is asked for", function()
  local dir = saved_state(50)
  local text = read(dir .. "/r.json")
  local at, hex = text:match('(),"digest":"xxh128:(%x+)"}\n$')
  T.ok(at, "save ends the text with its digest")
  T.eq(FS.xxh128_string(text:sub(1, at - 1)), hex, "the digest of all before it")
  local s = assert(State.open(dir, "r", {}))
  T.ok(getmetatable(s.data.steps) ~= nil, "lazy")
  T.eq(rawget(s.data.steps, "s7"), nil, "nothing decoded yet")
  T.eq(s:resource("s7", 1, "fs.file").created[1].path, "d/7")
  T.ok(rawget(s.data.steps, "s7") ~= nil, "s7 decoded when asked")
  T.eq(rawget(s.data.steps, "s8"), nil, "s8 still not")
  T.ok(s:has("s50") and not s:has("s51"))
  local all, n = s:steps(), 0
  for _ in pairs(all) do n = n + 1 end
  T.eq(n, 50, "steps() gives them all")
  s:close()
end)

T.test("state: a lazily read state saves back the same, with changes to steps never read", function()
  local dir = saved_state(20)
  local before = read(dir .. "/r.json")
  local s = assert(State.open(dir, "r", { create = true, lock = true }))
  s:forget("s3")                    -- never read before
  s:notify("s4")
  s:set_step("s5", { { kind = "fs.file", state = { created = json.array { { type = "file", path = "new" } } } } })
  assert(s:flush()); assert(s:save()); s:close()
  local want = json.decode(before)
  want.steps.s3 = nil
  want.steps.s4.notified = true
  local got = json.decode(read(dir .. "/r.json"))
  T.eq(got.steps.s5.resources[1].state.created[1].path, "new")
  got.steps.s5, want.steps.s5 = nil, nil
  T.eq(got.steps, want.steps, "every other record as it was")
end)

T.test("state: a state file changed since it was saved is read whole and checked (a damaged record: refused)", function()
  local dir = saved_state(10)
  local text = read(dir .. "/r.json")
  -- the digest it ends with is the old text's: the edit must be seen
  local edited, n = text:gsub('"applied": ?[%d%.e+]+', '"applied":"soon"', 1)
  T.eq(n, 1, "the edit is made")
  write(dir .. "/r.json", edited)
  local s, err, why = State.open(dir, "r", {})
  T.eq(s, nil, "refused")
  T.match(err, "is damaged %(steps%[\"s%d+\"%]%.applied is not a number%)")
  T.eq(why, "bad")
  -- a good edit: read whole (not lazily), and fine
  local edited2, n2 = text:gsub('"d/3"', '"d/33"')
  T.eq(n2, 1, "the edit is made")
  write(dir .. "/r.json", edited2)
  s = assert(State.open(dir, "r", {}))
  T.eq(getmetatable(s.data.steps), nil, "read whole")
  T.eq(s:resource("s3", 1, "fs.file").created[1].path, "d/33")
  s:close()
  -- no digest, or another one: read whole (and the digest is not a step's nor kept)
  write(dir .. "/r.json", (text:gsub(',"digest":"xxh128:%x+"}\n$', "}\n")))
  s = assert(State.open(dir, "r", {})); T.eq(getmetatable(s.data.steps), nil, "no digest"); s:close()
  write(dir .. "/r.json", (text:gsub('xxh128:%x+"}\n$', 'xxh128:00000000000000000000000000000000"}\n')))
  s = assert(State.open(dir, "r", {}))
  T.eq(getmetatable(s.data.steps), nil, "another digest")
  T.eq(s.data.digest, nil, "the digest is not kept as data")
  s:close()
  write(dir .. "/r.json", text)
  s = assert(State.open(dir, "r", {})); T.ok(getmetatable(s.data.steps) ~= nil, "as saved: lazy again"); s:close()
end)

T.test("state: a journal left behind is replayed over the whole state, as before", function()
  local dir = saved_state(5)
  local s = assert(State.open(dir, "r", { create = true, lock = true }))
  s:forget("s2")
  assert(s:flush())
  s:close()   -- killed before save: the journal stays
  s = assert(State.open(dir, "r", {}))
  T.eq(getmetatable(s.data.steps), nil, "read whole")
  T.ok(not s:has("s2") and s:has("s3"), "the journal replayed")
  s:close()
end)

T.test("state: emptied, the state file goes", function()
  local dir = saved_state(2)
  local s = assert(State.open(dir, "r", { create = true, lock = true }))
  s:forget("s1"); s:forget("s2")
  assert(s:flush()); assert(s:save()); s:close()
  T.eq(io.open(dir .. "/r.json"), nil, "no state file")
end)

T.done()
