-- tests/lua/test_exec.lua: exec.command (guards, failure output, env, cwd,
-- timeout, secrets) on top of provision._exec.
local T = dofile "tests/lua/harness.lua"
local exec = require "provision.exec"
local fs = require "provision.fs"
local secret = require "provision.secret"
local core_now = require("provision._core").now

local function new_ctx(verbose)
  local ctx = { state = {}, logs = {}, details = {}, verbose = verbose }
  function ctx:created(e) self.state.created = self.state.created or {}; table.insert(self.state.created, e) end
  function ctx:log(l) self.logs[#self.logs + 1] = l end
  function ctx:detail(d) self.details[#self.details + 1] = d end
  return ctx
end

T.test("re-exports run and which", function()
  local r = exec.run { "sh", "-c", "echo hi" }
  T.eq(r.status, 0); T.eq(r.output, "hi\n")
  T.ok(exec.which("sh"))
end)

T.test("no guard: always runs, and describe says so", function()
  local d = T.tmpdir()
  local c = exec.command { "sh", "-c", "echo x >> count", cwd = d }
  T.match(c:describe(), "always runs")
  local ok, change = c:check(new_ctx())
  T.eq(ok, false); T.match(change, "no guard")
  T.ok(c:apply(new_ctx())); T.ok(c:apply(new_ctx()))
  T.eq(fs.read(d .. "/count"), "x\nx\n")
end)

T.test("creates: done once the file exists (relative to cwd)", function()
  local d = T.tmpdir()
  local c = exec.command { argv = { "touch", "marker" }, cwd = d, creates = "marker" }
  local ok, change = c:check(new_ctx())
  T.eq(ok, false); T.match(change, "marker does not exist")
  T.ok(c:apply(new_ctx()))
  T.eq(c:check(new_ctx()), true)
  T.match(c:describe(), "unless marker exists")
end)

T.test("unless: an argv whose exit 0 means done", function()
  local d = T.tmpdir()
  local c = exec.command { argv = { "touch", d .. "/m" }, ["unless"] = { "test", "-e", d .. "/m" } }
  local ok, change = c:check(new_ctx())
  T.eq(ok, false); T.match(change, "exited 1")
  T.ok(c:apply(new_ctx()))
  T.eq(c:check(new_ctx()), true)
end)

T.test("failure: exit code and the masked tail of the output", function()
  local pw = secret.new("hunter2-pass")
  local c = exec.command { "sh", "-c", "for i in $(seq 1 40); do echo line $i; done; echo pw=$PW; exit 7",
    env = { PW = pw } }
  local ok, err = c:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "exited 7:")
  T.match(err, "line 40")
  T.ok(not err:find("line 20\n", 1, true), "only the tail")
  T.ok(not err:find("hunter2"), "the secret is masked")
  T.match(err, "pw=%*%*%*%*%*%*%*%*")
end)

T.test("verbose: the command and its output are logged, masked", function()
  local pw = secret.new("s3cret-arg")
  local ctx = new_ctx(true)
  T.ok(exec.command { "echo", "hello", pw }:apply(ctx))
  T.eq(ctx.logs[1], "$ echo hello ********")
  T.eq(ctx.logs[2], "hello ********")
end)

T.test("input and timeout", function()
  local d = T.tmpdir()
  T.ok(exec.command { argv = { "sh", "-c", "cat > got" }, cwd = d, input = "fed in" }:apply(new_ctx()))
  T.eq(fs.read(d .. "/got"), "fed in")
  local ok, err = exec.command { argv = { "sleep", "5" }, timeout = "200ms" }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "timed out")
end)

T.test("a program that is not there fails clearly", function()
  local ok, err = exec.command { "surely-no-such-program-x" }:apply(new_ctx())
  T.eq(ok, nil); T.match(err, "surely%-no%-such%-program%-x")
end)

T.test("misuse raises: a shell string, an unknown option, bad argv", function()
  T.raises(function() exec.command "ls -la /" end, 'never a shell string: write { "ls", "%-la", "/" }')
  T.raises(function() exec.command { "ls", shell = true } end, "unknown option 'shell'")
  T.raises(function() exec.command { argv = { "ls", {} } } end, "argv%[2%] must be a string")
  T.raises(function() exec.command { "ls", ["unless"] = "test -e x" } end, "option 'unless'")
  T.raises(function() exec.command { "ls", timeout = "soon" } end, "option 'timeout'")
  local one = exec.command "true"
  T.eq(one.argv, { "true" })
end)

T.test("run: an unknown option raises, naming it and the valid ones", function()
  local d = T.tmpdir()
  T.raises(function() exec.run { "pwd", cwdd = d } end,
    "exec%.run: unknown option 'cwdd' %(options: argv, capture_max, cwd, env, input, passthrough, timeout%)")
  T.raises(function() exec.run { "env", envv = { X = "1" } } end, "exec%.run: unknown option 'envv'")
  local n = T.count_spawns(function() pcall(exec.run, { "true", cwdd = d }) end)
  T.eq(n, 0, "nothing ran")
  T.eq(exec.run { "pwd", cwd = d }.output, d .. "\n", "known options still work")
end)

T.test("run: argv = { ... } as exec.command takes it; not both", function()
  local d = T.tmpdir()
  local r = exec.run { argv = { "sh", "-c", "pwd; echo $X" }, cwd = d, env = { X = "x1" } }
  T.eq(r.status, 0); T.eq(r.output, d .. "\nx1\n")
  T.raises(function() exec.run { "true", argv = { "false" } } end,
    "exec%.run: give 'argv' once, either by position or by name")
  T.raises(function() exec.run { argv = {} } end, "exec%.run: argv must be a non%-empty list")
  T.raises(function() exec.run { argv = "ls -la" } end, "exec%.run: argv must be a non%-empty list")
  T.raises(function() exec.run { cwd = d } end, "exec%.run: no command")
  T.raises(function() exec.run { argv = { "echo", {} } } end, "test_exec%.lua:%d+: exec%.run: argv%[2%] is a table, not a string")
end)

T.test("run: secrets in argv, env and input reach the program as their values", function()
  local pw = secret.new("run-s3cret")
  local r = exec.run { "sh", "-c", 'printf "%s|%s|" "$1" "$PW"; cat', "x", pw, env = { PW = "pre-" .. pw }, input = pw }
  T.eq(r.status, 0)
  T.eq(r.output, "run-s3cret|pre-run-s3cret|run-s3cret")   -- the raw output; whoever shows it masks it
  T.eq(secret.mask(r.output), "********|********|********")   -- "pre-" .. pw is a secret too
end)

T.test("run: timeout takes a duration as exec.command does", function()
  local t0 = os.time()
  local r = exec.run { "sleep", "5", timeout = "300ms" }
  T.ok(r == nil or r.status ~= 0 or r.timed_out, "stopped")
  T.ok(os.time() - t0 < 3, "promptly")
  T.raises(function() exec.run { "true", timeout = "soon" } end, "exec%.run: bad timeout \"soon\"")
end)

T.test("run: numbers in argv and a numeric cwd stay valid until the spawn (GC under pressure)", function()
  local C = require "provision._exec"
  collectgarbage("incremental", 0, 1000, 0)   -- collect as eagerly as possible
  local bad, first = 0, nil
  for t = 1, 150 do
    local argv = { "printf", "%s\\n" }
    for i = 1, 200 do argv[#argv + 1] = 1000000 + i + t * 1000 end
    local env = {}
    for i = 1, 200 do env["K" .. i] = 5000000 + i + t * 1000 end
    argv.env = env
    local r = C.run(argv)
    local exp = {}   -- made after the run: equal short strings are shared
    for i = 1, 200 do exp[i] = tostring(1000000 + i + t * 1000) end
    if not r or r.output ~= table.concat(exp, "\n") .. "\n" then bad = bad + 1; first = first or (r and r.output) end
    local _, err = C.run { "true", cwd = 424242000 + t, env = env }
    if err ~= ("chdir %d: No such file or directory"):format(424242000 + t) then bad = bad + 1; first = first or err end
  end
  collectgarbage("incremental", 200, 100, 13)
  T.eq(bad, 0, "corrupted runs (first: " .. tostring(first and first:sub(1, 80)) .. ")")
end)

T.test("run: no stray /dev/null descriptor reaches the program", function()
  -- the descriptors above 2 that are /dev/null, as the shell sees them; a
  -- shell started by io.popen shows what provision itself passes on
  local script = 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && [ "$(readlink $f)" = /dev/null ] && echo $n; done; true'
  local p = io.popen(script); local base = p:read("a"); p:close()
  local r = exec.run { "sh", "-c", script }
  T.eq(r.status, 0); T.eq(r.output, base, "without input")
  r = exec.run { "sh", "-c", script, input = "x" }
  T.eq(r.status, 0); T.eq(r.output, base, "with input")
end)

T.test("run: capture_max must be a sane positive size", function()
  for _, bad in ipairs { math.mininteger, -1, 0, 1.5, math.maxinteger, "10" } do
    T.raises(function() exec.run { "true", capture_max = bad } end,
      "exec%.run: capture_max must be a whole number of bytes from 1 to 268435456, got ")
  end
  local r = exec.run { "sh", "-c", "echo 0123456789", capture_max = 4 }
  T.eq(r.status, 0); T.eq(r.output, "789\n")
  r = exec.run { "sh", "-c", "echo 0123456789", capture_max = 268435456 }
  T.eq(r.output, "0123456789\n")
end)

-- a process that is still there and not a zombie
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("a"); f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

T.test("run: the timeout holds after the program closes its output", function()
  local t0 = core_now()
  local r = exec.run { "sh", "-c", "exec >/dev/null 2>&1; sleep 4", timeout = 0.5 }
  T.eq(r.timed_out, true); T.eq(r.status, 124)
  T.ok(core_now() - t0 < 2.5, "stopped after " .. (core_now() - t0) .. " s")
end)

T.test("run: done when the program exits, though a background process holds its output", function()
  local d = T.tmpdir()
  local t0 = core_now()
  local r = exec.run { "sh", "-c", "sleep 3 & echo $! > " .. d .. "/bg; echo started; exit 3" }
  local took = core_now() - t0
  T.eq(r.status, 3); T.eq(r.output, "started\n"); T.eq(r.timed_out, false)
  T.ok(took < 1.5, "returned after " .. took .. " s")
  local bg = fs.read(d .. "/bg"):match("%d+")
  T.ok(alive(bg), "the background process is left running")   -- a daemon it started
  os.execute("kill " .. bg)
  -- output written at exit still arrives, and a quick command stays quick
  t0 = core_now()
  for _ = 1, 20 do T.eq(exec.run { "sh", "-c", "echo a; echo b >&2" }.output, "a\nb\n") end
  T.ok(core_now() - t0 < 1.5, "20 quick runs took " .. (core_now() - t0) .. " s")
end)

T.test("run: a timeout stops every member of the process group, also one that ignores SIGTERM", function()
  local d = T.tmpdir()
  local r = exec.run { "sh", "-c", "(trap '' TERM; exec sleep 30) & echo $! > " .. d .. "/m; wait", timeout = 0.5 }
  T.eq(r.timed_out, true)
  local m = fs.read(d .. "/m"):match("%d+")
  local gone = false   -- SIGKILL is sent; dying takes a moment
  for _ = 1, 50 do gone = not alive(m); if gone then break end; os.execute("sleep 0.02") end
  if not gone then os.execute("kill -9 " .. m) end
  T.ok(gone, "the member that ignores SIGTERM was killed")
end)

T.test("run: a timeout stops a stopped program at once (one that read the terminal gets SIGTTIN)", function()
  local t0 = core_now()
  local r = exec.run { "sh", "-c", "kill -STOP $$; sleep 20", timeout = 0.5 }
  T.eq(r.timed_out, true)
  T.ok(core_now() - t0 < 1.8, "stopped after " .. (core_now() - t0) .. " s")
end)

os.exit(T.done())
