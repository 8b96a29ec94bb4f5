-- tests/lua/test_docker.lua: provision.docker against the real engine.
-- engine-matrix: run again on the newer engine (tests/run)
local T = dofile "tests/lua/harness.lua"
local docker = require "provision.docker"
local C = require "provision._docker"
local exec = require "provision._exec"
local json = require "provision.json"
local core = require "provision._core"

-- pure parts first: they need no engine
T.test("demux: frame headers stripped; a tty stream passes as it is", function()
  local function frame(stream, s)
    return string.char(stream, 0, 0, 0) .. string.pack(">I4", #s) .. s
  end
  T.eq(C.demux(frame(1, "out\n") .. frame(2, "err\n") .. frame(1, "more")), "out\nerr\nmore")
  T.eq(C.demux("plain tty text\n"), "plain tty text\n")
  T.eq(C.demux(""), "")
  T.eq(C.demux(frame(1, "cut") .. "\1\0\0\0\0\0\0\99x"), frame(1, "cut") .. "\1\0\0\0\0\0\0\99x", "a bad frame: raw")
end)

T.test("version_compare and split_ref", function()
  T.eq(docker.version_compare("20.10.24+dfsg1", "20.10"), 1)
  T.eq(docker.version_compare("1.29.2", "1.29.2"), 0)
  T.eq(docker.version_compare("v2.14.0", "2.2"), 1)
  T.eq(docker.version_compare("19.03", "20.10"), -1)
  T.eq({ docker.split_ref("a/b:1") }, { "a/b", "1" })
  T.eq({ docker.split_ref("localhost:5000/x") }, { "localhost:5000/x", "latest" })
end)

T.test("image_key: one name for plan however Docker Hub's image is spelled", function()
  local k = docker.image_key("busybox").name
  T.eq(k, "image busybox:latest")
  for _, ref in ipairs { "busybox:latest", "library/busybox", "docker.io/library/busybox",
                         "index.docker.io/library/busybox:latest", "docker.io/busybox" } do
    T.eq(docker.image_key(ref).name, k, ref)
  end
  T.eq(docker.image_key("apache/airflow:2.1.3").name, "image apache/airflow:2.1.3")
  T.eq(docker.image_key("docker.io/apache/airflow:2.1.3").name, "image apache/airflow:2.1.3")
  T.eq(docker.image_key("localhost:5000/x").name, "image localhost:5000/x:latest")
  T.eq(docker.image_key("quay.io/library/x").name, "image quay.io/library/x:latest", "another registry: as it is")
end)

T.test("no engine at a socket path: a clear error", function()
  local c = assert(C.open("unix:///nonexistent/docker.sock"))
  local st, err = c:request("GET", "/_ping")
  T.eq(st, nil)
  T.eq(err, "no Docker engine answers at /nonexistent/docker.sock: connect: No such file or directory")
  local _, e2 = C.open("ssh://host")
  T.match(e2, "only unix:// and tcp://")
  local c3 = assert(C.open("tcp://127.0.0.1:1"))
  local _, e3 = c3:request("GET", "/_ping", { timeout = 5 })
  T.match(e3, "^no Docker engine answers at tcp://127%.0%.0%.1:1")
  T.raises(function() c:request("GET", "no-slash") end, "must start with /")
  c:close()
  T.raises(function() c:request("GET", "/_ping") end, "closed")
end)

-- a unix socket that answers as scripted (python3): what docker.c says of
-- each reply through core/uhttp.c, and that one connection serves them all
local FAKE = [[
import os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
open(path + ".ready", "w").close()
s.settimeout(30)
conns = 0
R = {
  "/ok": b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nServer: Docker/99.0 (linux)\r\nContent-Length: 2\r\n\r\nok",
  "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\n[1,2\r\n2\r\n,3\r\n1\r\n]\r\n0\r\n\r\n",
  "/garbage": b"\x00\x01SSH-2.0-OpenSSH_9.6\r\n",
  "/cut": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
  "/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  "/big": b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000,
  "/close": b"",
}
while True:
    try:
        c, _ = s.accept()
    except OSError:
        break
    conns += 1
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                break
            buf += d
        if b"\r\n\r\n" not in buf:
            break
        head, buf = buf.split(b"\r\n\r\n", 1)
        target = head.split(b" ")[1].decode()
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(buf) < n:
            buf += c.recv(65536)
        body, buf = buf[:n], buf[n:]
        if target == "/conns":
            t = str(conns).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(t), t))
        elif target == "/echo":
            c.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        elif target == "/slow":
            time.sleep(2)
            break
        elif target == "/quit":
            sys.exit(0)
        elif head.startswith(b"HEAD "):
            c.sendall(R[target].split(b"\r\n\r\n")[0] + b"\r\n\r\n")
        else:
            c.sendall(R[target])
            if target in ("/garbage", "/cut", "/badchunk", "/close"):
                break
    c.close()
]]

T.test("a socket that is not quite an engine: each reply said as it is, one connection kept", function()
  local dir = T.tmpdir()
  local sock = dir .. "/fake.sock"
  assert(core.write_atomic(dir .. "/fake.py", FAKE, 420))
  os.execute(("python3 %s %s > %s/fake.log 2>&1 &"):format(dir .. "/fake.py", sock, dir))
  for _ = 1, 100 do
    if io.open(sock .. ".ready") then break end
    core.sleep(0.05)
  end
  local c = assert(C.open("unix://" .. sock))
  T.eq({ c:request("GET", "/ok") }, { 200, "ok" })
  local st, body, h = c:request("GET", "/ok", { headers = true })
  T.eq({ st, body, h.server, h["api-version"] }, { 200, "ok", "Docker/99.0 (linux)", "1.41" })
  T.eq({ c:request("GET", "/chunked") }, { 200, "[1,2,3]" }, "chunked, with an extension")
  T.eq({ c:request("POST", "/echo", { body = '{"a":1}' }) }, { 201, '{"a":1}' })
  T.eq({ c:request("HEAD", "/ok") }, { 200, "" }, "HEAD: no body")
  T.eq({ c:request("GET", "/conns") }, { 200, "1" }, "all of them on one connection")
  local file = dir .. "/body.tar"
  assert(core.write_atomic(file, ("t"):rep(300000), 420))
  T.eq({ c:request("POST", "/echo", { file = file }) }, { 201, ("t"):rep(300000) }, "a file streamed as the body")
  T.eq({ c:request("GET", "/garbage") },
    { nil, 'docker GET /garbage: the reply is not HTTP: it starts "\\x00\\x01SSH-2.0-OpenSSH_9.6\\r\\n"' })
  T.eq({ c:request("GET", "/cut") },
    { nil, "docker GET /cut: the connection was closed after 9 of the 100 bytes of the reply's body" })
  T.eq({ c:request("GET", "/badchunk") }, { nil, 'docker GET /badchunk: the reply has a bad chunk size line: "zz"' })
  T.eq({ c:request("GET", "/big", { max_body = 4096 }) },
    { nil, "docker GET /big: the reply's body is 5000 bytes (Content-Length), over the 4096 allowed" })
  -- (a connection that fails, or an engine that does not answer: the message names the engine)
  T.eq({ c:request("GET", "/close") },
    { nil, "docker GET /close: the connection was closed before any reply came (the engine at " .. sock .. ")" })
  local t0 = core.now()
  T.eq({ c:request("GET", "/slow", { timeout = 0.3 }) },
    { nil, "docker GET /slow: no answer within 0.3s (the engine at " .. sock .. ")" })
  T.ok(core.now() - t0 < 1.5, "the timeout kept")
  T.eq({ c:request("GET", "/ok") }, { 200, "ok" }, "a new connection after each failure")
  local _, ferr, fcode = c:request("POST", "/echo", { file = dir .. "/none.tar" })
  T.match(ferr, "none%.tar"); T.eq(fcode, 2)
  T.raises(function() c:request("GET", "/a b") end, "no blanks")
  T.raises(function() c:request("G T", "/ok") end, "a method is letters")
  pcall(c.request, c, "GET", "/quit", { timeout = 2 })
  c:close()
end)

T.test("engine URLs: what each form means (transport.parse)", function()
  local tr = require "provision.docker.transport"
  T.eq(tr.parse("unix:///run/docker.sock"), { scheme = "unix", path = "/run/docker.sock" })
  T.eq(tr.parse("tcp://10.0.0.2:2376"), { scheme = "tcp", host = "10.0.0.2", port = 2376, hostport = "10.0.0.2:2376" })
  T.eq(tr.parse("tcp://[::1]:2375/"), { scheme = "tcp", host = "::1", port = 2375, hostport = "[::1]:2375" })
  T.eq(tr.parse("ssh://deploy@h.example:2222"),
    { scheme = "ssh", host = "h.example", port = 2222, user = "deploy", dest = "deploy@h.example:2222" })
  T.eq(tr.parse("ssh://h"), { scheme = "ssh", host = "h", dest = "h" })
  T.eq(select(2, tr.parse("tcp://h")), 'engine "tcp://h": no port (tcp://host:port)')
  T.eq(select(2, tr.parse("ssh://u@")), 'engine "ssh://u@": no host (ssh://[user@]host[:port])')
  T.match(select(2, tr.parse("http://h:1")), "unknown scheme http://")
  T.eq(tr.check(""), true, "empty: the default engine")
  T.eq(docker.engine_env(nil), {}, "no engine: the CLI inherits the default")
  T.eq(docker.engine_env("unix:///x.sock"), { DOCKER_HOST = "unix:///x.sock", DOCKER_TLS_VERIFY = "", DOCKER_TLS = "" })
end)

T.test("the ssh command line of a tunnel: fleets' base, forward-only, the host after --", function()
  local tr = require "provision.docker.transport"
  local argv = tr.ssh_argv(tr.parse("ssh://deploy@h.example:2222"), "/priv/docker.sock")
  local line = table.concat(argv, " ")
  T.match(line, "%-o BatchMode=yes ")
  T.match(line, "%-o ExitOnForwardFailure=yes %-o ControlMaster=no %-o ControlPath=none %-o LogLevel=INFO "
    .. "%-N %-L /priv/docker%.sock:/var/run/docker%.sock %-p 2222 %-l deploy %-%- h%.example$")
end)

T.test("tunnel: its reason when it exits first, a program that is not there, one that listens; stopped by its pid", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(require("provision._fs").mkdir(dir, tonumber("700", 8)))
  local sock = dir .. "/t.sock"
  local t, err = C.tunnel({ "sh", "-c", "echo 'debug line' >&2; echo 'Permission denied (publickey).' >&2; exit 255" }, sock, 5)
  T.eq(t, nil)
  T.eq(err, "Permission denied (publickey).")
  t, err = C.tunnel({ "no-such-program-here" }, sock, 5)
  T.eq(t, nil)
  T.eq(err, "exec no-such-program-here: No such file or directory")
  t, err = C.tunnel({ "python3", "-c", "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); "
    .. "s.listen(1); sys.stderr.write('listening\\n'); sys.stderr.flush(); time.sleep(60)", sock }, sock, 10)
  T.ok(t, err)
  local pid = t.pid
  T.ok(pid > 0 and t:alive())
  T.match(t:stderr(500), "listening")
  t:close()
  T.eq(t.pid, 0)
  T.eq(t:alive(), false)
  T.eq(os.execute("kill -0 " .. pid .. " 2>/dev/null"), nil, "the process is gone")
  os.remove(sock)
  os.remove(dir)
end)

T.test("TLS: a certificate file that cannot be read is named", function()
  local _, err = C.open("tcp://127.0.0.1:1", { ca = "/nonexistent/ca.pem", cert = "/nonexistent/cert.pem",
    key = "/nonexistent/key.pem" })
  T.eq(err, "DOCKER_CERT_PATH: /nonexistent/ca.pem: No such file or directory")
end)

local engine = docker.ping()
if not engine then
  if os.getenv("PROVISION_REQUIRE_DOCKER") == "1" then
    T.test("a Docker engine answers (PROVISION_REQUIRE_DOCKER=1)", function() error(select(2, docker.ping())) end)
  else
    T.skip("Docker engine tests", "no Docker engine answers: " .. tostring(select(2, docker.ping())))
  end
  os.exit(T.done())
end

T.test("permission denied on the socket names the docker group", function()
  local setpriv = exec.which("setpriv")
  if not setpriv then error("setpriv (util-linux) is needed for this test") end
  local sock = (docker.host():match("^unix://(.*)$"))
  if not sock then return end
  local sdir = T.tmpdir()
  assert(core.write_atomic(sdir .. "/ping.lua", 'local d = require "provision.docker"; print(select(2, d.ping()))', 420))
  assert(exec.run { "chmod", "755", sdir })
  local r = assert(exec.run { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
    os.getenv("PROVISION") or "./provision", "--script", sdir .. "/ping.lua" })
  T.eq(r.output, ("permission denied on %s (add the user to the docker group)\n"):format(sock))
end)

T.test("ping, version, info", function()
  T.eq(docker.ping(), true)
  local v = assert(docker.version())
  T.match(v.Version, "^%d+%.%d+")
  T.match(v.ApiVersion, "^1%.%d+$")
  T.eq(docker.engine_version(), v.Version, "the version from /_ping's Server header")
  local st, _, h = docker.request("GET", "/_ping", { headers = true })
  T.eq(st, 200); T.eq(h["api-version"], v.ApiVersion)
  local i = assert(docker.info())
  T.ok(type(i.Containers) == "number")
end)

T.test("api.on(url): the calls bound to one engine, one per url; on(nil) is the default", function()
  local api = require "provision.docker.api"
  T.eq(api.on(nil), api); T.eq(api.on(""), api)
  local url = docker.host()
  local e = api.on(url)
  T.ok(e ~= api, "a table of its own")
  T.eq(api.on(url), e, "made once per url")
  T.eq(e.url, url); T.eq(e.host(), url)
  T.eq(e.ping(), true)
  T.eq(assert(e.info()).ID, assert(api.info()).ID, "the same engine as the default")
  local bad = api.on("unix:///nonexistent/docker.sock")
  local ok, err = bad.ping()
  T.eq(ok, nil); T.match(err, "no Docker engine answers at /nonexistent/docker.sock")
  local none, cerr = bad.containers {}
  T.eq(none, nil); T.match(cerr, "no Docker engine answers at /nonexistent")
  T.eq(select(2, bad.volume_remove("x")), "no Docker engine answers at /nonexistent/docker.sock: connect: No such file or directory")
  T.eq(bad.split_ref("a:1"), "a", "the pure helpers are there too")
  T.eq(docker.ping(), true, "the default engine is not affected")
  T.eq(docker.on, api.on, "docker.on too")
end)

T.test("docker.engine: min_version checked", function()
  local ctx = { state = {}, detail = function() end }
  T.eq(docker.engine { min_version = "1.0" }:check(ctx), true)
  local ok, msg = docker.engine { min_version = "999.0" }:check(ctx)
  T.eq(ok, false)
  T.match(msg, "is older than 999%.0")
  T.raises(function() docker.engine { min_versoin = "1" } end, "unknown option 'min_versoin'")
end)

-- a busybox image from busybox-static, imported through the module
local TAG = ("provision-test/busybox:lua%d"):format(core.getpid())
local dir = T.tmpdir()
local tar = dir .. "/rootfs.tar"
local built = exec.run { "sh", "tests/fixtures/stack/busybox-rootfs.sh", tar }

T.test("docker.image: check, import from a rootfs tar, revert", function()
  T.eq(built.status, 0, built.output)
  local res = docker.image { name = TAG, from_rootfs = tar }
  local ctx = { state = {}, created = function(self, e)
    self.state.created = self.state.created or {}; table.insert(self.state.created, e) end,
    detail = function() end }
  local ok, why = res:check(ctx)
  T.eq(ok, false); T.match(why, "is not there")
  T.ok(res:apply(ctx))
  T.eq(res:check(ctx), true)
  T.eq(docker.image_exists(TAG), true)
  T.eq(ctx.state.created[1], { type = "docker.image", name = TAG })
  local _, e = docker.image_import(dir .. "/missing.tar", { ref = TAG .. "x" })
  T.match(e, "missing%.tar: No such file")
end)

T.test("containers by project label, inspect, logs tail, exit code", function()
  local project = ("ptlua%d"):format(core.getpid())
  local spec = json.encode {
    Image = TAG, Cmd = { "sh", "-c", "echo oops >&2; sleep 0.1; for i in 1 2 3 4 5; do echo line$i; done; exit 3" },
    Labels = { [docker.PROJECT_LABEL] = project, [docker.SERVICE_LABEL] = "job" },
  }
  local created = assert(docker.call("POST", "/containers/create", { body = spec }))
  local id = created.Id
  local ok, err = pcall(function()
    assert(docker.call("POST", "/containers/" .. id .. "/start"))
    local t0 = core.now()
    local ins
    repeat
      ins = assert(docker.inspect(id))
      core.sleep(0.05)
    until ins.State.Status == "exited" or core.now() - t0 > 20
    T.eq(ins.State.Status, "exited")
    T.eq(ins.State.ExitCode, 3)
    local list = assert(docker.containers { project = project })
    T.eq(#list, 1); T.eq(list[1].Id, id)
    T.eq(#assert(docker.containers { project = project .. "-other" }), 0)
    T.eq(#assert(docker.containers { project = project, service = "job" }), 1)
    T.eq(assert(docker.logs(id, { tail = 2 })), "line4\nline5\n")
    T.eq(assert(docker.logs(id, { tail = 100 })), "oops\nline1\nline2\nline3\nline4\nline5\n", "stderr and stdout")
  end)
  docker.call("DELETE", "/containers/" .. id .. "?force=1")
  if not ok then error(err, 0) end
  local _, e, st = docker.inspect(id)
  T.eq(st, 404); T.match(e, "No such container")
end)

T.test("docker.image revert removes the image", function()
  local res = docker.image { name = TAG, from_rootfs = tar }
  T.ok(res:revert { state = { created = { { type = "docker.image", name = TAG } } } })
  T.eq(docker.image_exists(TAG), false)
end)

T.test("docker.image: a new root filesystem, or the name tagged anew, imports again; the superseded import goes; one that was there before is kept", function()
  local function ctx_of(state)
    return { state = state or {}, created = function(self, e)
      self.state.created = self.state.created or {}; table.insert(self.state.created, e) end,
      detail = function() end, log = function() end }
  end
  local res = docker.image { name = TAG, from_rootfs = tar }
  local ctx = ctx_of()
  T.ok(res:apply(ctx))
  local first = assert(docker.image_inspect(TAG)).Id
  -- the root filesystem changes (a file added): plan and apply see it
  local tar2 = dir .. "/rootfs2.tar"
  assert(exec.run { "cp", tar, tar2 }.status == 0)
  assert(core.write_atomic(dir .. "/extra", "more\n", 420))
  assert(exec.run { "tar", "-rf", tar2, "-C", dir, "extra" }.status == 0)
  local res2 = docker.image { name = TAG, from_rootfs = tar2 }
  local ok, changes = res2:check(ctx)
  T.eq(ok, false)
  T.eq(changes, { tar2 .. " is not what image " .. TAG .. " was imported from: import it again" })
  T.ok(res2:apply(ctx))
  local second = assert(docker.image_inspect(TAG)).Id
  T.ok(second ~= first, "imported again")
  T.eq(res2:check(ctx), true)
  -- a no-op check reads the root filesystem only when its stamp changed
  local FS = require "provision._fs"
  local real, reads = FS.sha256, 0
  FS.sha256 = function(p) reads = reads + 1; return real(p) end
  local pok, perr = pcall(function()
    T.eq(res2:check(ctx), true)
    T.eq(reads, 0, "the file imported: not read again")
    assert(exec.run { "sh", "-c", 'cp "$1" "$1.new" && mv "$1.new" "$1"', "sh", tar2 }.status == 0)
    T.eq(res2:check(ctx), true)
    T.eq(reads, 1, "the same bytes in a new file: read once")
  end)
  FS.sha256 = real
  if not pok then error(perr, 0) end
  local _, _, st = docker.call("GET", "/images/" .. first .. "/json")
  T.eq(st, 404, "the superseded import is removed, not left dangling")
  T.eq(ctx.state.created, { { type = "docker.image", name = TAG } }, "one record for the name")
  -- the name tagged anew by hand onto another image: imported again, the other kept
  local other = TAG .. "-other"
  assert(docker.image_import(tar, { ref = other }))
  local other_id = assert(docker.image_inspect(other)).Id
  assert(docker.call("POST", "/images/" .. other .. "/tag?repo=" .. docker.urlencode((docker.split_ref(TAG))) ..
    "&tag=" .. select(2, docker.split_ref(TAG))))
  ok, changes = res2:check(ctx)
  T.eq(ok, false)
  T.eq(changes, { "image " .. TAG .. " is no longer the one imported here (tagged anew since): import again" })
  T.ok(res2:apply(ctx))
  T.eq(res2:check(ctx), true)
  T.eq(assert(docker.image_inspect(other)).Id, other_id, "the other image is kept")
  local _, _, st2 = docker.call("GET", "/images/" .. second .. "/json")
  T.eq(st2, 404, "the import it replaced is removed")
  -- an image this resource did not import: taken as it is, whatever from_rootfs holds
  T.eq(docker.image { name = other, from_rootfs = tar2 }:check(ctx_of()), true)
  docker.image_remove(other, { force = true })
  T.ok(res2:revert(ctx))
  T.eq(docker.image_exists(TAG), false)
end)

T.test("a reused handle: 200 API calls well under a second", function()
  local t0 = core.now()
  for _ = 1, 200 do assert(docker.ping()) end
  local dt = core.now() - t0
  T.ok(dt < 1, ("200 pings took %.3fs"):format(dt))
end)

docker.image_remove(TAG, { force = true })
os.exit(T.done())
