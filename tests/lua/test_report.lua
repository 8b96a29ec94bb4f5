-- tests/lua/test_report.lua: the step line. Without colour or a secret to
-- mask, Report:step writes it in C (core.step_line); with either, in Lua.
-- Both must give the same bytes, for every shape of line: indexes of many
-- digits, names longer than their column, times wider than theirs, an
-- empty detail, change lines shown or not.
local T = dofile "tests/lua/harness.lua"
local Report = require "provision.report"
local secret = require "provision.secret"
local core = require "provision._core"

local long = ("n"):rep(50)
local steps = {}
for i = 1, 120 do steps[i] = { name = "s" .. i } end
steps[3].name = long
local recipe = { name = "r", steps = steps }

-- each: i, status, ms, detail, changes; in a plan and in an apply, -v or not
local cases = {
  { 1, "would-change", 0, "+ a (1 bytes)", { "+ a (1 bytes)", "--- /dev/null", "+++ a", "@@ -0,0 +1 @@", "+x" } },
  { 2, "ok", 3, "file a", nil },
  { 3, "changed", 999, "", { "one" } },
  { 99, "would-change", 61234, "same", { "same" } },
  { 100, "failed", 12000, "no room", { "- b", 42 } },
  { 120, "skipped", 0, "runs when x changes; none did", {} },
  { 7, "would-change", 5, nil, {} },
}

local function run(verb, verbose)
  local path = os.tmpname()
  local f = assert(io.open(path, "w+"))
  local r = Report.new { verb = verb, verbose = verbose }
  r.color, r.hold, r.live, r.out = false, false, false, f
  r:start(recipe, verb, #steps)
  for _, c in ipairs(cases) do
    r:step(c[1], steps[c[1]], c[2], c[3], c[4], c[5])
  end
  f:seek("set")
  local text = f:read("a")
  f:close()
  os.remove(path)
  return text
end

-- the C path first (no secret is known yet), then the Lua path
T.ok(not secret.any(), "no secret known before the test")
local in_c = {}
for _, verb in ipairs { "plan", "apply" } do
  for _, v in ipairs { false, true } do in_c[#in_c + 1] = run(verb, v) end
end
secret.new("zz-in-no-line-zz")   -- known from here on: every line through secret.mask, in Lua
local k = 0
for _, verb in ipairs { "plan", "apply" } do
  for _, v in ipairs { false, true } do
    k = k + 1
    T.test(("%s%s: the line in C is the line in Lua"):format(verb, v and " -v" or ""), function()
      T.eq(in_c[k], run(verb, v))
    end)
  end
end

T.test("the plan's lines, word for word", function()
  local lines = {}
  for l in in_c[1]:gmatch("[^\n]*\n") do lines[#lines + 1] = l end
  T.eq(lines[2], "[1/120]   s1" .. (" "):rep(34) .. " would-change    0ms  + a (1 bytes)\n")
  T.eq(lines[3], "      + a (1 bytes)\n")
  T.match(in_c[1], "\n%[3/120%]   " .. long .. " changed       999ms\n      one\n", "a long name, an empty detail")
  T.match(in_c[1], "\n%[99/120%]  s99" .. (" "):rep(33) .. " would%-change  1m01s  same\n%[100/120%]", "a change said once already")
  T.match(in_c[1], "\n%[100/120%] s100" .. (" "):rep(32) .. " FAILED        12%.0s  no room\n      %- b\n      42\n", "a number among the changes")
end)

T.test("step_line refuses a change line that is not text", function()
  local f = io.tmpfile()
  local ok, err = pcall(core.step_line, f, 1, "/1]", "a", 10, "ok", "0ms", nil, { "x", {} })
  f:close()
  T.ok(not ok); T.match(err, "change line 2 is a table")
end)

T.test("--json events: DESIGN.md's keys in its order, any others after them sorted; text made UTF-8", function()
  local f = io.tmpfile()
  local r = Report.new { verb = "apply" }
  r.json, r.color, r.hold, r.live, r.out = true, false, false, false, f
  r:event({ zeta = 1, detail = "d", event = "step", alpha = { "caf\xe9", ok = true }, ms = 5, index = 2,
            status = "ok", name = "n\"q", bytes = 10, ["would-change"] = 0 })
  r:event({ event = "end", ok = 1, changed = 0 })
  f:seek("set")
  local text = f:read("a")
  f:close()
  T.eq(text, '{"event":"step","index":2,"name":"n\\"q","status":"ok","would-change":0,"ms":5,"detail":"d",'
    .. '"alpha":{"1":"caf\u{fffd}","ok":true},"bytes":10,"zeta":1}\n{"event":"end","ok":1,"changed":0}\n')
end)

-- what a check's change lines become (provision.run.calls: run_check):
-- a list of strings is itself, not a copy; anything else is made one
T.test("run_check: a check's changes, as the report gets them", function()
  local calls = require "provision.run.calls"
  local function check_giving(a, b)
    return { kind = "t.kind", describe = function() return "the thing" end, check = function() return a, b end }
  end
  local lines = { "a", "b" }
  local ok, got = calls.run_check(check_giving(false, lines), {})
  T.eq(ok, false)
  T.eq(rawequal(got, lines), true, "a list of strings: itself")
  local shapes = {
    { { "a", 2, "c" }, { "a", "2", "c" } },
    { { "a", nil, "c" }, { "a" } },
    { { 1.5 }, { "1.5" } },
    { { "a", "b", true }, { "a", "b", "true" } },
    { "x\ny\n", { "x", "y" } },
    { {}, { "the thing" } },
    { nil, { "the thing" } },
  }
  for _, c in ipairs(shapes) do
    ok, got = calls.run_check(check_giving(false, c[1]), {})
    T.eq(ok, false)
    T.eq(got, c[2])
  end
  T.eq(calls.run_check(check_giving(true), {}), true)
  ok, got = calls.run_check(check_giving(nil, "broken"), {})
  T.eq(ok, nil)
  T.eq(got, "broken")
end)

T.done()
