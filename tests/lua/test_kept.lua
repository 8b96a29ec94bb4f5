-- tests/lua/test_kept.lua: provision.kept, through the Docker engine client
-- (docker/api.lua keeps a check's GET answers for a later check) and the
-- runner's calls (run/calls.lua: run_check, changing). The "engine" is
-- tests/servers/httpd.py on loopback (tcp://), which counts what it is asked.
local T = dofile "tests/lua/harness.lua"
local core = require "provision._core"
local api = require "provision.docker.api"
local calls = require "provision.run.calls"
local kept = require "provision.kept"

-- start_server() -> pid, the engine's calls on it
local function start_server()
  local pid, port = T.httpd()
  return pid, api.on("tcp://127.0.0.1:" .. port)
end
local pid, E = start_server()

local function count(path)
  local _, body = E.request("GET", "/count", { timeout = 5 })
  return (tonumber(body:match('"' .. path:gsub("%p", "%%%0") .. '": (%d+)')) or 0)
end
-- check(fn): fn run as the runner runs a check
local function check(fn)
  local ok, why = calls.run_check({ kind = "test", check = function() fn(); return true end }, {})
  assert(ok == true, why)
end
local function get(path) return (E.request("GET", path)) end

T.test("a check's GET answer is a later check's, once", function()
  check(function() T.eq(get("/json/a"), 200) end)
  check(function() T.eq(get("/json/a"), 200) end)
  T.eq(count("/json/a"), 1, "the second check took the first one's answer")
  check(function() T.eq(get("/json/a"), 200) end)
  T.eq(count("/json/a"), 2, "taken once: the third asks")
  -- what the body says is the same answer, not a copy of another
  local b1, b2
  check(function() b1 = select(2, E.request("GET", "/json/body")) end)
  check(function() b2 = select(2, E.request("GET", "/json/body")) end)
  T.eq(b1, b2); T.eq(count("/json/body"), 1)
end)

T.test("a check never takes its own answer (a check that polls sees each anew)", function()
  check(function() get("/json/b"); get("/json/b"); get("/json/b") end)
  T.eq(count("/json/b"), 3)
end)

T.test("an apply (or a revert) in between: every kept answer is forgotten", function()
  check(function() get("/json/c") end)
  local ok = calls.changing(function() return true end)
  T.ok(ok)
  check(function() get("/json/c") end)
  T.eq(count("/json/c"), 2)
end)

T.test("outside a check nothing is kept or taken (an apply's waits poll the engine)", function()
  get("/json/d"); get("/json/d")
  T.eq(count("/json/d"), 2)
  check(function() get("/json/d") end)
  T.eq(count("/json/d"), 3, "nothing kept from outside a check")
  T.eq(kept.checking(), false)
end)

T.test("only a plain GET's 200: not an error, not a request with options, not another method", function()
  check(function() T.eq(get("/status/503"), 503) end)
  check(function() T.eq(get("/status/503"), 503) end)
  T.eq(count("/status/503"), 2, "an error is asked again")
  check(function() E.request("GET", "/json/e", { timeout = 5 }) end)
  check(function() E.request("GET", "/json/e", { timeout = 5 }) end)
  T.eq(count("/json/e"), 2, "options: asked again")
  check(function() E.request("POST", "/echo", { body = "x" }) end)
  check(function() E.request("POST", "/echo", { body = "x" }) end)
  T.eq(count("/echo"), 2, "POST: asked again")
end)

T.test("anything but a GET sent to an engine (a DELETE answers 200 too) forgets them all", function()
  local echo = count("/echo")
  check(function() get("/json/g") end)
  check(function() E.request("DELETE", "/echo") end)
  check(function() get("/json/g") end)
  T.eq(count("/json/g"), 2, "asked again after the DELETE")
  check(function() E.request("DELETE", "/echo") end)
  check(function() E.request("DELETE", "/echo") end)
  T.eq(count("/echo"), echo + 3, "a DELETE is never kept")
end)

T.test("two engines: the same path is two answers", function()
  local pid2, E2 = start_server()
  check(function() get("/json/h") end)
  check(function() E2.request("GET", "/json/h") end)
  local _, body = E2.request("GET", "/count", { timeout = 5 })
  T.match(body, '"/json/h": 1', "the second engine was asked")
  T.eq(count("/json/h"), 1)
  os.execute("kill " .. pid2)
end)

T.test("an answer older than max_age is asked again; at most 64 are kept", function()
  local age = kept.max_age
  kept.max_age = 0.1
  check(function() get("/json/i") end)
  core.sleep(0.2)
  check(function() get("/json/i") end)
  kept.max_age = age
  T.eq(count("/json/i"), 2, "too old: asked again")
  check(function() for k = 1, 65 do get("/json/j" .. k) end end)
  check(function() get("/json/j1"); get("/json/j65") end)
  T.eq(count("/json/j1"), 2, "the 65th forgot the first 64")
  T.eq(count("/json/j65"), 1, "and was kept")
end)

T.test("a check that fails or raises still ends its turn", function()
  calls.run_check({ kind = "test", check = function() get("/json/f"); error("boom") end }, {})
  T.eq(kept.checking(), false, "not left checking after a raise")
  check(function() get("/json/f") end)
  T.eq(count("/json/f"), 1, "what it read before it raised is a later check's")
end)

os.execute("kill " .. pid)
return T.done()
