-- tests/lua/test_exec_many.lua: provision._exec.many, many programs at once
-- (a fleet's ssh sessions): forks, lines as they come, big input against big
-- output, hold_stdin, an interrupt (here --timeout's deadline; signals in
-- tests/cli/exec_many.sh), an error in on_line, and nothing left behind.
local T = dofile "tests/lua/harness.lua"
local C = require "provision._exec"
local core = require "provision._core"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a"); f:close()
  return s
end

-- provision's open descriptors (listdir's own counts once, each time; no
-- process is started: one would race with the descriptors it is given)
local function fd_count()
  return #assert(require("provision._fs").listdir("/proc/" .. core.getpid() .. "/fd"))
end

-- provision's children as "STAT COMM" lines: io.popen's sh, and what was left
local function children()
  local p = io.popen("ps --ppid " .. core.getpid() .. " -o stat=,comm=")
  local s = p:read("a"); p:close()
  return s
end

local function has_zombie(list)
  for stat in list:gmatch("%s*(%S+)[^\n]*") do if stat:sub(1, 1) == "Z" then return true end end
  return false
end

local function collector()
  local got = {}
  local function on_line(i, stream, line)
    got[i] = got[i] or { out = {}, err = {} }
    table.insert(got[i][stream], line)
  end
  return got, on_line
end

local FDS0 = fd_count()

T.test("many: 8 jobs, forks = 3: never more than 3 at once; statuses; each stream's lines in order", function()
  local d = T.tmpdir()
  local script = 'date +%s%N > "$0.start"; echo "out $1 a"; echo "err $1 a" >&2; sleep 0.3; '
    .. 'echo "out $1 b"; echo "err $1 b" >&2; printf "out $1 c"; date +%s%N > "$0.end"; exit $(($1 % 4))'
  local jobs = {}
  for i = 1, 8 do jobs[i] = { argv = { "sh", "-c", script, d .. "/" .. i, i } } end
  local got, on_line = collector()
  local r = C.many(jobs, { forks = 3, on_line = on_line })
  local events = {}
  for i = 1, 8 do
    T.eq(r[i].status, i % 4, "job " .. i .. "'s status")
    T.eq(r[i].signal, nil); T.eq(r[i].error, nil); T.eq(r[i].interrupted, nil)
    T.ok(r[i].seconds >= 0.3 and r[i].seconds < 5, "job " .. i .. " took " .. r[i].seconds)
    T.eq(got[i].out, { "out " .. i .. " a", "out " .. i .. " b", "out " .. i .. " c" }, "job " .. i .. "'s stdout")
    T.eq(got[i].err, { "err " .. i .. " a", "err " .. i .. " b" }, "job " .. i .. "'s stderr")
    events[#events + 1] = { t = math.tointeger(tonumber(read(d .. "/" .. i .. ".start"))), d = 1 }
    events[#events + 1] = { t = math.tointeger(tonumber(read(d .. "/" .. i .. ".end"))), d = -1 }
  end
  table.sort(events, function(a, b) if a.t ~= b.t then return a.t < b.t end return a.d < b.d end)
  local now, most = 0, 0
  for _, e in ipairs(events) do now = now + e.d; most = math.max(most, now) end
  T.ok(most <= 3, most .. " jobs ran at once")
  T.ok(most >= 2, "only " .. most .. " at once: forks = 3 should run them side by side")
end)

T.test("many: a program that is not there: its error, and the others run", function()
  local got, on_line = collector()
  local r = C.many({ { argv = { "sh", "-c", "echo first" } }, { argv = { "surely-no-such-program-x", "a" } },
                     { argv = { "sh", "-c", "echo $X; exit 3" }, env = { X = "from env" } } }, { on_line = on_line })
  T.eq(r[1].status, 0); T.eq(got[1].out, { "first" })
  T.eq(r[2].error, "surely-no-such-program-x: No such file or directory")
  T.eq(r[2].status, nil); T.eq(got[2], nil)
  T.eq(r[3].status, 3); T.eq(got[3].out, { "from env" })
end)

-- 65,536 lines of 64 bytes: 4 MiB and a bit
local function big_input()
  local lines = {}
  for k = 1, 65536 do lines[k] = ("%08d"):format(k) .. ("abcdefgh"):rep(7) end
  return table.concat(lines, "\n") .. "\n"
end

T.test("many: 4 MiB in, 4 MiB out on stdout and stderr at once: no deadlock, every byte", function()
  local input = big_input()
  local got, on_line = collector()
  local t0 = core.now()
  local r = C.many({ { argv = { "cat" }, input = input },
                     { argv = { "tee", "/dev/stderr" }, input = input } }, { on_line = on_line })
  T.ok(core.now() - t0 < 20, "took " .. (core.now() - t0))
  T.eq(r[1].status, 0); T.eq(r[2].status, 0)
  T.ok(table.concat(got[1].out, "\n") .. "\n" == input, "cat gave back the input (" .. #got[1].out .. " lines)")
  T.ok(table.concat(got[2].out, "\n") .. "\n" == input, "tee's stdout is the input")
  T.ok(table.concat(got[2].err, "\n") .. "\n" == input, "tee's stderr is the input")
end)

T.test("many: 64 jobs fed 2 MiB each while they write it back", function()
  local line = ("0123456789abcdef"):rep(512)   -- 8 KiB
  local input = (line .. "\n"):rep(256)         -- 2 MiB
  local jobs = {}
  for i = 1, 64 do jobs[i] = { argv = { "cat" }, input = input } end
  local bytes, bad = {}, 0
  local r = C.many(jobs, { on_line = function(i, stream, l)
    if stream ~= "out" or l ~= line then bad = bad + 1 end
    bytes[i] = (bytes[i] or 0) + #l + 1
  end })
  T.eq(bad, 0, "lines not as written")
  for i = 1, 64 do T.eq(r[i].status, 0); T.eq(bytes[i], #input, "job " .. i .. "'s bytes") end
end)

T.test("many: a job that closes its stdin early (EPIPE) is not fatal; the rest of its input is dropped", function()
  local got, on_line = collector()
  local r = C.many({ { argv = { "sh", "-c", "head -c 10 >/dev/null; echo done" }, input = big_input() } },
    { on_line = on_line })
  T.eq(r[1].status, 0); T.eq(got[1].out, { "done" })
end)

T.test("many: a line over 1 MiB comes in 1 MiB pieces; one of exactly 1 MiB whole; a last line without newline", function()
  local got, on_line = collector()
  local r = C.many({ { argv = { "sh", "-c",
    "head -c 1572864 /dev/zero | tr '\\0' x; echo; head -c 1048576 /dev/zero | tr '\\0' y; echo; printf tail" } } },
    { on_line = on_line })
  T.eq(r[1].status, 0)
  local sizes = {}
  for k, l in ipairs(got[1].out) do sizes[k] = #l end
  T.eq(sizes, { 1048576, 524288, 1048576, 4 })
  T.ok(got[1].out[1] == ("x"):rep(1048576) and got[1].out[3] == ("y"):rep(1048576), "the bytes")
  T.eq(got[1].out[4], "tail")
end)

-- does the job's stdin stay open once its input is read? ("open": cat
-- still waits after 0.5 s; "eof": it ended)
local PROBE0 = 'if timeout 0.5 cat >/dev/null; then echo eof; else echo open; fi'
local PROBE = 'head -c 5 >/dev/null; ' .. PROBE0

T.test("many: hold_stdin keeps stdin open after the input until the job ends; without it stdin is closed", function()
  local got, on_line = collector()
  local r = C.many({
    { argv = { "sh", "-c", PROBE }, input = "hello", hold_stdin = true },
    { argv = { "sh", "-c", PROBE }, input = "hello" },
    { argv = { "sh", "-c", PROBE0 }, hold_stdin = true },
    { argv = { "sh", "-c", PROBE0 } },                    -- no input: /dev/null
    { argv = { "sh", "-c", PROBE0 }, input = "" },
  }, { on_line = on_line })
  for i = 1, 5 do T.eq(r[i].status, 0, "job " .. i) end
  T.eq({ got[1].out[1], got[2].out[1], got[3].out[1], got[4].out[1], got[5].out[1] },
       { "open", "eof", "open", "eof", "eof" })
end)

-- many() while --timeout's deadline passes: the interrupt every caller sees
local function with_deadline(seconds, fn)
  local was = core.shield(true)   -- as the controller's bookkeeping: the hook does not raise here
  core.deadline(seconds, "test", "exec.many")
  local ok, a, b = pcall(fn)
  core.deadline(nil)
  core.shield(was)
  if not ok then error(a, 0) end
  return a, b
end

T.test("many: interrupted (the deadline): stdin closed at once, output read in the grace, then SIGTERM; later jobs not started", function()
  local got, on_line = collector()
  local t0 = core.now()
  local r = with_deadline(0.5, function()
    return C.many({
      { argv = { "sh", "-c", "echo ready; cat >/dev/null; sleep 0.2; echo got eof" }, hold_stdin = true },
      { argv = { "sleep", "30" } },
      { argv = { "sh", "-c", "echo never" } },
    }, { forks = 2, grace = 1, on_line = on_line })
  end)
  local took = core.now() - t0
  T.eq(got[1].out, { "ready", "got eof" })
  T.eq(r[1].status, 0); T.eq(r[1].interrupted, true)
  T.ok(r[1].seconds < 1.3, "the EOF job ended at once: " .. r[1].seconds)
  T.eq(r[2].signal, 15, "SIGTERM after the grace"); T.eq(r[2].status, nil); T.eq(r[2].interrupted, true)
  T.ok(r[2].seconds >= 1.4, "not before the grace: " .. r[2].seconds)
  T.eq(r[3].not_started, true); T.eq(r[3].status, nil); T.eq(got[3], nil)
  T.ok(took >= 1.4 and took < 3.5, "took " .. took)
end)

T.test("many: a job that ignores SIGTERM gets SIGKILL 2 s later (grace 0)", function()
  local t0 = core.now()
  local r = with_deadline(0.2, function()
    return C.many({ { argv = { "sh", "-c", "trap '' TERM; sleep 30" } } }, { grace = 0 })
  end)
  local took = core.now() - t0
  T.eq(r[1].signal, 9); T.eq(r[1].interrupted, true)
  T.ok(took >= 2.1 and took < 4.5, "took " .. took)
end)

T.test("many: already interrupted: nothing starts", function()
  local r = with_deadline(0.01, function()
    core.sleep(0.05)
    return C.many({ { argv = { "true" } }, { argv = { "true" } } })
  end)
  T.eq(r, { { not_started = true, seconds = 0 }, { not_started = true, seconds = 0 } })
end)

T.test("many: an error in on_line stops and reaps every job, then goes on up", function()
  local fds = fd_count()
  local t0 = core.now()
  local calls = 0
  T.raises(function()
    C.many({ { argv = { "sh", "-c", "echo hi; exec sleep 30" } },
             { argv = { "sleep", "30" }, hold_stdin = true, input = "x" },
             { argv = { "sh", "-c", "exec sleep 30" } } },
      { forks = 2, on_line = function() calls = calls + 1; error("boom in on_line") end })
  end, "test_exec_many%.lua:%d+: boom in on_line")
  T.eq(calls, 1)
  T.ok(core.now() - t0 < 3, "took " .. (core.now() - t0))
  local left = children()
  T.ok(not left:find("sleep") and not has_zombie(left), "left: " .. left)
  T.eq(fd_count(), fds, "descriptors open")
end)

T.test("many: misuse raises", function()
  T.raises(function() C.many("ls -la") end, "bad argument #1")
  T.raises(function() C.many({ { argv = "ls -la" } }) end, "exec%.many: jobs%[1%]: argv must be a non%-empty list")
  T.raises(function() C.many({ { "ls" } }) end, "exec%.many: jobs%[1%]: unknown option '1' %(options: argv, env, hold_stdin, input%)")
  T.raises(function() C.many({ { argv = { "ls" }, inpt = "x" } }) end, "unknown option 'inpt'")
  T.raises(function() C.many({ { argv = { "ls", {} } } }) end, "exec%.many: jobs%[1%]%.argv%[2%] is a table, not a string")
  T.raises(function() C.many({ { argv = { "ls" } }, "x" }) end, "exec%.many: jobs%[2%] is a string, not a table")
  T.raises(function() C.many({ { argv = { "ls" }, env = { "x" } } }) end, "env keys must be strings")
  T.raises(function() C.many({}, { forks = 0 }) end, "forks must be a whole number from 1")
  T.raises(function() C.many({}, { grace = -1 }) end, "grace must be seconds")
  T.raises(function() C.many({}, { on_line = "print" }) end, "exec%.many: on_line must be a function")
  T.raises(function() C.many({}, { fork = 2 }) end, "unknown option 'fork' %(options: forks, grace, on_line%)")
  T.eq(C.many({}), {})
end)

T.test("many: no descriptor left open, no zombie, after all of the above", function()
  T.eq(fd_count(), FDS0)
  local left = children()
  T.ok(not has_zombie(left), "children: " .. left)
end)

os.exit(T.done())
