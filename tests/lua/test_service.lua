-- tests/lua/test_service.lua: service.running / service.stopped.
-- Where systemd is PID 1: a unit of our own (a `sleep`), started, enabled,
-- stopped and removed. Elsewhere (this is usually a container): the SysV path
-- with a tiny init script of our own installed under /etc/init.d and removed
-- after, and the clear errors for systemd and for no service manager at all.
-- Never touches docker: only reads its state.
local T = dofile "tests/lua/harness.lua"
local service = require "provision.service"
local C = require "provision._service"
local exec = require "provision._exec"

local NAME = "provision-test-" .. require("provision._core").getpid()

local function mkctx()
  local ctx = { state = {}, verbose = false, logs = {}, details = {} }
  function ctx:created(e) self.state.created = self.state.created or {}; table.insert(self.state.created, e) end
  function ctx:log(l) self.logs[#self.logs + 1] = l end
  function ctx:detail(d) self.details[#self.details + 1] = d end
  function ctx.progress() end
  function ctx.spin() end
  function ctx.interrupted() return false end
  return ctx
end

local spawns, sh = T.count_spawns, T.sh

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a"); f:close()
  return s
end

local systemd = sh("test -d /run/systemd/system")

T.test("options are checked at load time", function()
  T.raises(function() service.running { name = "a b" } end, 'bad service name "a b"')
  T.raises(function() service.running { name = "cron", manager = "upstart" } end, "manager must be auto, systemd or sysv")
  T.raises(function() service.stopped { name = "cron", bogus = true } end, "unknown option 'bogus'")
  T.eq(service.running { name = "cron", enabled = true }:describe(), "service cron running, enabled")
  T.eq(service.stopped "cron":describe(), "service cron stopped")
end)

T.test("alive: this process, PID 1, and a pid that is gone", function()
  T.eq(C.alive(require("provision._core").getpid()), true)
  T.eq(C.alive(1), true)
  T.eq(C.alive(0), false)
  T.eq(C.alive(2147483646), false)
end)

T.test("socket_request: a missing socket is nil, message", function()
  local r, err = C.socket_request("/nonexistent/x.sock", "hi", 1)
  T.eq(r, nil)
  T.match(err, "^/nonexistent/x.sock: No such file")
end)

T.test("socket_request: request and reply over a unix socket we serve", function()
  local d = T.tmpdir()
  local sock = d .. "/s.sock"
  -- a one-shot echo server: python3 (a test dependency already)
  local script = d .. "/srv.py"
  local f = io.open(script, "w")
  f:write(([[
import os, socket
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.bind(%q); s.listen(1)
open(%q, "w").write(str(os.getpid()))
c, _ = s.accept(); data = c.recv(100); c.sendall(b"got:" + data); c.close()
]]):format(sock, d .. "/pid"))
  f:close()
  T.ok(sh("python3 " .. script .. " > /dev/null 2>&1 & echo started"))
  for _ = 1, 100 do if read(d .. "/pid") then break end; require("provision._core").sleep(0.05) end
  T.ok(read(d .. "/pid"), "server up")
  local reply, err = C.socket_request(sock, "ping", 5)
  T.eq(reply, "got:ping", err)
end)

-- ---------------------------------------------------------------- no manager

T.test("the manager: systemd when it is PID 1, else the service command", function()
  local mgr, err = service.manager()
  if systemd then T.eq(mgr, "systemd", err)
  else T.eq(mgr, "sysv", err) end
end)

T.test("no service manager at all (a container): a clear error", function()
  local saved_dir = service.systemd_dir
  service.systemd_dir = "/nonexistent/systemd/system"
  -- as if no `service` or `systemctl` were on PATH
  local which = exec.which
  exec.which = function() return nil end
  local ok, err = pcall(function()
    local ok2, msg = service.running { name = "cron" }:check(mkctx())
    T.eq(ok2, nil)
    T.match(msg, "^no service manager here: systemd is not PID 1 %(PID 1 is '[^']+'%) and there is no `service` command")
    T.match(msg, "in a container")
    local ok3, msg3 = service.stopped { name = "cron" }:apply(mkctx())
    T.eq(ok3, nil)
    T.match(msg3, "^no service manager here")
  end)
  exec.which = which
  service.systemd_dir = saved_dir
  if not ok then error(err, 0) end
end)

if not systemd then
  T.test("systemd asked for where it is not running: a clear error", function()
    local ok, err = service.running { name = "cron", manager = "systemd" }:check(mkctx())
    T.eq(ok, nil)
    T.match(err, "^systemd is not running here %(PID 1 is '[^']+', no /run/systemd/system%)")
  end)
  T.test("D-Bus: asking systemd where it is not running fails cleanly", function()
    local u, err = C.unit("cron.service")
    T.eq(u, nil)
    T.match(err, "D%-Bus")
  end)
end

-- ---------------------------------------------------------------- docker, read only

T.test("docker's state is read without spawning (never changed)", function()
  local pid = read("/run/docker.pid") or read("/var/run/docker.pid")
  if not pid and not systemd then
    error("no /run/docker.pid: is dockerd running (tests/run starts one)?")
  end
  local ctx = mkctx()
  local n, calls, ok = spawns(function()
    return service.running { name = "docker", socket = "/var/run/docker.sock" }:check(ctx)
  end)
  T.eq(ok, true, table.concat(ctx.logs, "\n"))
  T.eq(n, 0, "spawned: " .. table.concat(calls, "; "))
end)

-- ---------------------------------------------------------------- a service of our own

if systemd then
  local unit = "/etc/systemd/system/" .. NAME .. ".service"
  local function cleanup()
    sh("systemctl disable --now " .. NAME .. ".service; rm -f " .. unit .. "; systemctl daemon-reload")
  end
  T.test("systemd: a unit of our own, started, enabled, checked over D-Bus", function()
    local f = assert(io.open(unit, "w"))
    f:write("[Unit]\nDescription=provision test\n[Service]\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=multi-user.target\n")
    f:close()
    T.ok(sh("systemctl daemon-reload"))
    local ok, err = pcall(function()
      local r = service.running { name = NAME, enabled = true }
      local ok1, ch = r:check(mkctx())
      T.eq(ok1, false)
      T.eq(ch[1], "start " .. NAME .. " (inactive (dead))")
      T.eq(r:apply(mkctx()), true)
      local n, calls, ok2 = spawns(function() return r:check(mkctx()) end)
      T.eq(ok2, true)
      T.eq(n, 0, "spawned: " .. table.concat(calls, "; "))
      local u = assert(C.unit(NAME .. ".service"))
      T.eq({ u.active, u.file_state }, { "active", "enabled" })
      local s = service.stopped { name = NAME, enabled = false }
      T.eq(s:apply(mkctx()), true)
      T.eq(s:check(mkctx()), true)
      local ok3, msg = service.running { name = "nosuch-provision" }:check(mkctx())
      T.eq(ok3, nil)
      T.match(msg, "no systemd unit nosuch%-provision%.service")
    end)
    cleanup()
    if not ok then error(err, 0) end
  end)
else
  local script = "/etc/init.d/" .. NAME
  local pidfile = "/run/" .. NAME .. ".pid"
  local function cleanup()
    local pid = read(pidfile)
    if pid and tonumber(pid) then sh("kill " .. math.tointeger(tonumber(pid))) end
    sh("update-rc.d -f " .. NAME .. " remove; rm -f " .. script .. " " .. pidfile)
  end
  T.test("sysv: an init script of our own, started, enabled, stopped, disabled", function()
    local src = assert(read("tests/fixtures/service/initd-sleeper"))
    local f = assert(io.open(script, "w"))
    f:write((src:gsub("@NAME@", NAME)))
    f:close()
    T.ok(sh("chmod 755 " .. script))
    local ok, err = pcall(function()
      local r = service.running { name = NAME, enabled = true }
      local ctx = mkctx()
      local ok1, ch = r:check(ctx)
      T.eq(ok1, false)
      -- no pidfile yet: the check says it asks `service NAME status`
      T.eq(ctx.logs[1], ("no pidfile for %s (/run/%s.pid): asking `service %s status`"):format(NAME, NAME, NAME))
      T.eq(ch, { "start " .. NAME .. " (not running (status exit 3))", "enable " .. NAME })
      ctx = mkctx()
      T.eq(r:apply(ctx), true)
      T.eq(ctx.details, { "started, enabled" })
      T.eq(ctx.state.started, true)
      local pid = math.tointeger(tonumber(read(pidfile)))
      T.ok(pid and C.alive(pid), "the daemon runs")
      T.eq(#C.rc_links(NAME), 4, "S links in rc2..rc5")
      -- the no-op: pidfile and rc links, no process
      local n, calls, ok2 = spawns(function() return r:check(mkctx()) end)
      T.eq(ok2, true)
      T.eq(n, 0, "spawned: " .. table.concat(calls, "; "))
      -- a pidfile option pointing elsewhere: not running by that file
      local okp, chp = service.running { name = NAME, pidfile = "/nonexistent.pid" }:check(mkctx())
      T.eq(okp, false)
      T.eq(chp, { "start " .. NAME .. " (not running (no /nonexistent.pid))" })
      -- running, but not answering on a socket: not what was asked
      local oks, chs = service.running { name = NAME, socket = "/nonexistent/x.sock" }:check(mkctx())
      T.eq(oks, false)
      T.match(chs[1], "No such file")
      -- stop and disable
      local s = service.stopped { name = NAME, enabled = false }
      ctx = mkctx()
      T.eq(s:apply(ctx), true)
      T.eq(ctx.details, { "stopped, disabled" })
      T.eq(C.alive(pid), false)
      T.eq(#C.rc_links(NAME), 0)
      T.eq(s:check(mkctx()), true)
      -- revert of running stops only what it started, disables only what it enabled
      ctx = mkctx()
      T.eq(r:apply(ctx), true)
      T.eq(ctx.state, { started = true, enabled = true })
      T.eq(service.running { name = NAME }:revert(mkctx()), true)
      T.eq(service.running { name = NAME, enabled = true }:check(mkctx()), true, "kept: not started by that state")
      T.eq(r:revert(ctx), true)
      T.eq(service.stopped { name = NAME, enabled = false }:check(mkctx()), true,
        "stopped and disabled: started and enabled by that state")
      -- enabled by hand, started by the recipe: teardown stops it and leaves it enabled
      T.ok(sh("update-rc.d " .. NAME .. " enable"))
      ctx = mkctx()
      T.eq(r:apply(ctx), true)
      T.eq(ctx.state, { started = true })
      T.eq(r:revert(ctx), true)
      T.eq(service.stopped { name = NAME, enabled = true }:check(mkctx()), true, "kept enabled: not enabled by that state")
    end)
    cleanup()
    if not ok then error(err, 0) end
  end)
  T.test("sysv: a stale pidfile means not running", function()
    local src = assert(read("tests/fixtures/service/initd-sleeper"))
    local f = assert(io.open(script, "w"))
    f:write((src:gsub("@NAME@", NAME))); f:close()
    f = assert(io.open(pidfile, "w")); f:write("2147483646\n"); f:close()
    local ok, err = pcall(function()
      local okc, ch = service.running { name = NAME }:check(mkctx())
      T.eq(okc, false)
      T.eq(ch, { "start " .. NAME .. " (not running (stale " .. pidfile .. "))" })
    end)
    cleanup()
    if not ok then error(err, 0) end
  end)
  T.test("sysv: a service without an init script: a clear error", function()
    local ok, err = service.running { name = "nosuch-provision" }:check(mkctx())
    T.eq(ok, nil)
    T.eq(err, "there is no init script /etc/init.d/nosuch-provision (is the package that provides the nosuch-provision service installed?)")
  end)
end

return T.done()
