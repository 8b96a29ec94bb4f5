-- tests/lua/test_sys.lua: machine facts and the preflight resources.
local T = dofile "tests/lua/harness.lua"
local sys = require "provision.sys"
local exec = require "provision._exec"

local function sh(cmd)
  local p = io.popen(cmd); local s = p:read("a"); p:close(); return (s:gsub("%s+$", ""))
end

T.test("uid, gid, user match id(1)", function()
  T.eq(sys.uid(), tonumber(sh("id -u")))
  T.eq(sys.gid(), tonumber(sh("id -g")))
  T.eq(sys.user(), sh("id -un"))
end)

T.test("memory matches /proc/meminfo MemTotal", function()
  local kb = tonumber(sh("awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
  T.eq(sys.memory(), kb * 1024)
  local avail = sys.memory_available()
  T.ok(avail > 0 and avail <= sys.memory())
end)

T.test("cpus matches nproc (the affinity mask)", function()
  T.eq(sys.cpus(), tonumber(sh("nproc")))
end)

T.test("disk_free is close to df's figure", function()
  local kb = tonumber(sh("df -Pk / | awk 'NR==2 {print $4}'"))
  local have = sys.disk_free("/")
  T.ok(math.abs(have - kb * 1024) < 256 * 1024 * 1024, ("statvfs %d vs df %d"):format(have, kb * 1024))
  local ok, err = sys.disk_free("/no/such/place")
  T.eq(ok, nil); T.match(err, "No such file")
end)

T.test("hostname, getenv, os_release, command", function()
  T.eq(sys.hostname(), sh("uname -n"))
  T.eq(sys.getenv("HOME"), os.getenv("HOME"))
  T.eq(sys.getenv("PROVISION_SURELY_UNSET_X"), nil)
  local r = assert(sys.os_release())
  T.ok(r.ID and r.ID ~= "")
  local d = T.tmpdir()
  local f = io.open(d .. "/os", "w")
  f:write('NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n# comment\nPRETTY_NAME=\'x y\'\n'); f:close()
  T.eq(sys.os_release(d .. "/os"), { NAME = "Debian GNU/Linux", VERSION_ID = "12", ID = "debian", PRETTY_NAME = "x y" })
  T.eq(sys.command("sh"), exec.which("sh"))
  T.eq(sys.command("surely-no-such-command-x"), nil)
  T.raises(function() sys.command("") end, "command name")
end)

T.test("human_size", function()
  T.eq(sys.human_size(512), "512 B")
  T.eq(sys.human_size(1536), "1.5 KiB")
  T.eq(sys.human_size(4 * 1024 ^ 3), "4.0 GiB")
end)

T.test("port_free: a listening port is in use, a closed one is free", function()
  -- a listener on an ephemeral port, started and stopped by this test
  local d = T.tmpdir()
  local script = d .. "/listen.py"
  local f = io.open(script, "w")
  f:write("import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n",
    "open(sys.argv[1],'w').write(str(s.getsockname()[1]))\ntime.sleep(30)\n")
  f:close()
  local pid = sh("python3 " .. script .. " " .. d .. "/port >/dev/null 2>&1 & echo $!")
  local port
  for _ = 1, 100 do
    local pf = io.open(d .. "/port"); if pf then port = tonumber(pf:read("a")); pf:close() end
    if port then break end
    require("provision._core").sleep(0.05)
  end
  local ok, why = sys.port_free(port, "127.0.0.1")
  local r = sys.port_free { port = port, host = "127.0.0.1" }
  local cok, cwhy = r:check()
  local unless = sys.port_free { port = port, host = "127.0.0.1", unless = function() return true end }
  local uok = unless:check()
  os.execute("kill " .. pid)
  T.ok(port, "the listener started")
  T.eq(ok, false); T.match(why, "port " .. port .. " on 127.0.0.1 is in use")
  T.eq(cok, false); T.match(cwhy, "in use %(stop what listens there")
  T.eq(uok, true, "unless() says the port is ours")
  require("provision._core").sleep(0.2)
  T.eq(sys.port_free(port, "127.0.0.1"), true)
  T.raises(function() sys.port_free(70000) end, "port must be")
  T.raises(function() sys.port_free { port = 0 } end, "port must be 1 to 65535")
end)

-- a listener on (family, address, port 0), started by the test: its port, its pid
local function listen(d, family, addr)
  local script = d .. "/listen-" .. family .. ".py"
  local f = io.open(script, "w")
  f:write("import socket,sys,time\ns=socket.socket(socket." .. family .. ")\n",
    "s.bind(('" .. addr .. "',0))\ns.listen()\n",
    "open(sys.argv[1],'w').write(str(s.getsockname()[1]))\ntime.sleep(30)\n")
  f:close()
  local portf = d .. "/port-" .. family
  local pid = sh("python3 " .. script .. " " .. portf .. " >/dev/null 2>&1 & echo $!")
  for _ = 1, 100 do
    local pf = io.open(portf); local port = pf and tonumber(pf:read("a")); if pf then pf:close() end
    if port then return port, pid end
    require("provision._core").sleep(0.05)
  end
  os.execute("kill " .. pid)
end

T.test("port_free: names the address actually in use; unless says what it accepted", function()
  local d = T.tmpdir()
  local port, pid = listen(d, "AF_INET", "127.0.0.1")
  local ok, why = sys.port_free(port)                       -- asked about 0.0.0.0
  local cok, cwhy = sys.port_free { port = port }:check()
  local detail
  local uok = sys.port_free { port = port, unless = function() return true end }
    :check { detail = function(_, t) detail = t end }
  local l = sys.listeners and sys.listeners(port)
  os.execute("kill " .. pid)
  T.ok(port, "the listener started")
  T.eq(ok, false)
  T.eq(why, ("port %d is in use on 127.0.0.1, so not free on 0.0.0.0"):format(port))
  T.eq(cok, false); T.match(cwhy, "in use on 127%.0%.0%.1, so not free on 0%.0%.0%.0 %(stop what listens")
  T.eq(uok, true)
  T.eq(detail, ("port %d in use (accepted by unless)"):format(port))
  T.eq(l, { "127.0.0.1" })
  -- an IPv6 listener, where the machine has ::1
  local p6, pid6 = listen(d, "AF_INET6", "::1")
  if not p6 then return T.skip("port_free on ::1", "no IPv6 loopback") end
  local l6 = sys.listeners(p6)
  local ok6, why6 = sys.port_free(p6, "::")
  os.execute("kill " .. pid6)
  T.eq(ok6, false); T.eq(why6, ("port %d is in use on ::1, so not free on ::"):format(p6))
  T.eq(l6, { "::1" })
end)

T.test("port_free: a port out of range is a clear error, in either form", function()
  local err = T.raises(function() sys.port_free(99999) end, "sys%.port_free: port must be an integer from 1 to 65535, not 99999")
  T.ok(not err:find("bad argument", 1, true) and not err:find("prim", 1, true), err)
  T.match(err, "test_sys%.lua:%d+:", "the error names the caller's line")
  T.raises(function() sys.port_free { port = 99999 } end, "test_sys%.lua:%d+: sys%.port_free: port must be 1 to 65535, not 99999")
  T.raises(function() sys.port_free(8080.5) end, "not 8080%.5")
  T.raises(function() sys.port_free("http") end, 'not "http"')
end)

T.test("preflight resources: ok when met, a clear reason when not", function()
  T.eq(sys.memory { min = "1MiB" }:check(), true)
  local ok, why = sys.memory { min = "1000TiB" }:check()
  T.eq(ok, false); T.match(why, "^[%d.]+ [KMGT]iB of memory, need at least 1000%.0 TiB")
  T.eq(sys.cpus { min = 1 }:check(), true)
  ok, why = sys.cpus { min = 4096 }:check()
  T.eq(ok, false); T.match(why, "^%d+ CPUs?, need at least 4096$")
  T.eq(sys.disk { path = "/", min = "1KiB" }:check(), true)
  T.eq(sys.disk { path = "/tmp/not/yet/made", min = "1KiB" }:check(), true, "an unmade folder: its nearest parent")
  ok, why = sys.disk { path = "/", min = "900TB" }:check()
  T.eq(ok, false); T.match(why, "^[%d.]+ [KMGT]iB free at /, need at least 818%.5 TiB")
  T.eq(sys.command { name = "sh" }:check(), true)
  ok, why = sys.command { name = "no-such-cmd-x", hint = "apt-get install x" }:check()
  T.eq(ok, false); T.eq(why, "command not found: no-such-cmd-x (apt-get install x)")
  T.eq(sys.memory { min = "4GiB" }:describe(), "at least 4.0 GiB of memory")
  T.eq(sys.memory { min = "4GiB" }.apply, nil, "check-only")
end)

T.test("misuse raises, naming the option", function()
  T.raises(function() sys.memory { minimum = "4GiB" } end, "unknown option 'minimum'")
  T.raises(function() sys.memory { min = "lots" } end, "option 'min' must be a size")
  T.raises(function() sys.cpus {} end, "missing required option 'min'")
  T.raises(function() sys.disk { min = "1GB", path = {} } end, "option 'path'")
end)

os.exit(T.done())
