-- tests/lua/harness.lua: a tiny test harness for module tests, which run
-- under the binary itself:  provision --script tests/lua/test_fs.lua
--   local T = dofile "tests/lua/harness.lua"
--   T.test("name", function() T.eq(got, want) end)
--   T.done()
local T = { passed = 0, failed = 0 }

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then
    local ok, s = pcall(require("provision.json").encode, v)
    if ok then return s end
  end
  return tostring(v)
end
T.show = show

local function deep_eq(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
T.deep_eq = deep_eq

function T.eq(got, want, what)
  if not deep_eq(got, want) then
    error(("%sexpected %s, got %s"):format(what and (what .. ": ") or "", show(want), show(got)), 2)
  end
end

function T.ok(v, what)
  if not v then error("expected a true value" .. (what and (": " .. what) or ""), 2) end
  return v
end

function T.match(s, pattern, what)
  if type(s) ~= "string" or not s:find(pattern) then
    error(("%sexpected %s to match %q"):format(what and (what .. ": ") or "", show(s), pattern), 2)
  end
end

-- T.raises(fn, pattern): fn must raise an error matching pattern
function T.raises(fn, pattern)
  local ok, err = pcall(fn)
  if ok then error("expected an error matching " .. show(pattern), 2) end
  if pattern and not tostring(err):find(pattern) then
    error(("expected an error matching %q, got %s"):format(pattern, show(tostring(err))), 2)
  end
  return err
end

-- a fresh temporary folder, removed by T.done()
local tmpdirs = {}
function T.tmpdir()
  local p = io.popen("mktemp -d /tmp/provision-test.XXXXXX")
  local d = p:read("l"); p:close()
  tmpdirs[#tmpdirs + 1] = d
  return d
end

function T.test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    T.passed = T.passed + 1
    print("PASS " .. name)
  else
    T.failed = T.failed + 1
    print("FAIL " .. name .. ": " .. tostring(err):gsub("\n", "\n    "))
  end
end

-- count every way Lua code could start a process while fn runs (the C
-- exec.run, io.popen, os.execute): n, the commands, then fn's results
-- it stands in for io.popen and os.execute, so it sets them
-- luacheck: push ignore 122
function T.count_spawns(fn)
  local exec = require "provision._exec"
  local n, calls = 0, {}
  local run, popen, execute = exec.run, io.popen, os.execute
  exec.run = function(argv, ...) n = n + 1; calls[#calls + 1] = table.concat(argv, " "); return run(argv, ...) end
  io.popen = function(...) n = n + 1; calls[#calls + 1] = "popen"; return popen(...) end
  os.execute = function(...) n = n + 1; calls[#calls + 1] = "execute"; return execute(...) end
  local ok, a, b = pcall(fn)
  exec.run, io.popen, os.execute = run, popen, execute
  if not ok then error(a, 0) end
  return n, calls, a, b
end
-- luacheck: pop

-- run a shell command: ok, its output (stdout and stderr)
function T.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

-- T.httpd(extra) -> pid, port: tests/servers/httpd.py started on loopback
-- (extra: its arguments, e.g. "--tls CRT KEY"), once it listens; its log
-- in a T.tmpdir(). Stop it by its pid: os.execute("kill " .. pid)
function T.httpd(extra)
  local core = require "provision._core"
  local dir = T.tmpdir()
  os.execute(("python3 tests/servers/httpd.py %s > %s/port 2> %s/log & echo $! > %s/pid")
    :format(extra or "", dir, dir, dir))
  local pid = tonumber(core.read_file(dir .. "/pid"))
  for _ = 1, 100 do
    local p = core.read_file(dir .. "/port")
    local port = p and tonumber(p:match("^(%d+)\n"))
    if port then return pid, port end
    core.sleep(0.05)
  end
  error("the test server did not start: " .. tostring(core.read_file(dir .. "/log")))
end

function T.skip(name, why) print("SKIP " .. name .. ": " .. why) end

function T.done()
  for _, d in ipairs(tmpdirs) do os.execute("rm -rf '" .. d .. "'") end
  io.stdout:flush()
  return T.failed == 0 and 0 or 1
end

return T
