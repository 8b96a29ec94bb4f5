-- tests/lua/test_pkg.lua: the dpkg status parser, pkg.distro, and
-- pkg.installed / pkg.absent against the real system with the small Debian
-- package `hello` (installed and removed again; apt-get needs the mirror).
local T = dofile "tests/lua/harness.lua"
local pkg = require "provision.pkg"
local C = require "provision._pkg"

local FIX = "tests/fixtures/dpkg"

local function mkctx(opts)
  opts = opts or {}
  local ctx = { state = opts.state or {}, verbose = false, logs = {}, details = {} }
  function ctx:created(e) self.state.created = self.state.created or {}; table.insert(self.state.created, e) end
  function ctx:log(l) self.logs[#self.logs + 1] = l end
  function ctx:detail(d) self.details[#self.details + 1] = d end
  function ctx.progress() end
  function ctx.spin() end
  function ctx.interrupted() return false end
  return ctx
end

local spawns, sh = T.count_spawns, T.sh

-- ------------------------------------------------------------ the parser

T.test("parser: every package of the fixture, the right fields", function()
  local t = assert(C.read_status(FIX .. "/status"))
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  T.eq(names, { "broken", "docker-compose", "held", "hello", "libc6", "multi", "oldconf" })
  T.eq(t.hello, { status = "install ok installed", version = "2.10-3", arch = "amd64", installed = true })
  T.eq(t.oldconf.installed, false)
  T.eq(t.oldconf.status, "deinstall ok config-files")
  T.eq(t.broken.installed, false, "half-installed is not installed")
  T.eq(t.held.installed, true, "hold ok installed is installed")
  T.eq(t["docker-compose"].version, "1.29.2-3", "last paragraph without a newline")
  T.eq(t.multi.version, "1:2.0~rc1-1", "the installed instance wins")
  T.eq(t.multi.arch, "arm64")
end)

T.test("parser: a continuation line that looks like a field is not one", function()
  local t = assert(C.read_status(FIX .. "/status"))
  T.eq(t["not-a-package"], nil)
end)

T.test("parser: only the names asked for; name:arch picks the instance", function()
  local t = assert(C.read_status(FIX .. "/status", { hello = true, ["libc6:i386"] = true, nosuch = true }))
  T.eq(t.hello.version, "2.10-3")
  T.eq(t["libc6:i386"].version, "2.36-9+deb12u3")
  T.eq(t.libc6, nil)
  T.eq(t.nosuch, nil)
end)

T.test("parser: a missing file is nil, message", function()
  local t, err = C.read_status("/nonexistent/status")
  T.eq(t, nil)
  T.match(err, "^/nonexistent/status: No such file")
end)

T.test("parser: empty file, and paragraphs with CRLF and extra blank lines", function()
  local d = T.tmpdir()
  local f = io.open(d .. "/empty", "w"); f:close()
  T.eq(assert(C.read_status(d .. "/empty")), {})
  f = io.open(d .. "/crlf", "w")
  f:write("\n\nPackage: a\r\nStatus: install ok installed\r\nVersion: 1\r\n\r\n\r\nPackage: b\nStatus: install ok installed\nVersion: 2\n\n\n")
  f:close()
  local t = assert(C.read_status(d .. "/crlf"))
  T.eq(t.a.version, "1")
  T.eq(t.a.installed, true)
  T.eq(t.b.version, "2")
end)

T.test("parser agrees with dpkg-query on this machine's database", function()
  local ok, out = sh("dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Status}\\n'")
  T.ok(ok, "dpkg-query ran: " .. out)
  local want = {}
  for name, ver, st in out:gmatch("([^\t\n]+)\t([^\t\n]*)\t([^\t\n]*)\n") do
    if st == "installed" then want[name] = ver end
  end
  local t = assert(C.read_status("/var/lib/dpkg/status"))
  local got, n = {}, 0
  for name, info in pairs(t) do
    if info.installed then got[name] = info.version; n = n + 1 end
  end
  T.ok(n > 50, "many packages installed (" .. n .. ")")
  T.eq(got, want)
end)

-- ------------------------------------------------------------ distro, names

T.test("distro: Debian 12, Ubuntu 24.04, Fedora", function()
  local d = assert(pkg.distro(FIX .. "/os-release-debian12"))
  T.eq({ d.id, d.version_id, d.codename, d.pretty }, { "debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)" })
  d = assert(pkg.distro(FIX .. "/os-release-ubuntu2404"))
  T.eq({ d.id, d.id_like, d.version_id, d.codename }, { "ubuntu", "debian", "24.04", "noble" })
  d = assert(pkg.distro(FIX .. "/os-release-fedora"))
  T.eq({ d.id, d.version_id }, { "fedora", "40" })
  T.eq(pkg.distro("/nonexistent"), nil)
  T.ok(pkg.distro().id ~= "", "this machine's os-release")
end)

T.test("parse_spec: name=version, name:arch", function()
  T.eq({ pkg.parse_spec("hello=2.10-3") }, { "hello", "2.10-3" })
  T.eq({ pkg.parse_spec("libc6:amd64") }, { "libc6:amd64" })
  T.eq({ pkg.parse_spec("x=1:2.0-1") }, { "x", "1:2.0-1" })
end)

T.test("options: bad names and misuse raise at load time", function()
  T.raises(function() pkg.installed { "Hello World" } end, 'bad package name "Hello World"')
  T.raises(function() pkg.installed { "hello; rm -rf /" } end, "bad package name")
  T.raises(function() pkg.absent { "hello=2.10-3" } end, "a version makes no sense")
  T.raises(function() pkg.installed { "hello", bogus = 1 } end, "unknown option 'bogus'")
  T.raises(function() pkg.installed { "hello", max_age = "soon" } end, "max_age")
  T.raises(function() pkg.installed {} end, "names")
end)

-- ------------------------------------------------------------ checks on fixtures

local function with_status(path, fn)
  local saved = pkg.status_file
  pkg.status_file = path
  local ok, err = pcall(fn)
  pkg.status_file = saved
  if not ok then error(err, 0) end
end

T.test("check on the fixture: installed, pinned, missing, half-installed", function()
  with_status(FIX .. "/status", function()
    local ctx = mkctx()
    T.eq(pkg.installed { "hello", "held", "libc6:i386" }:check(ctx), true)
    T.eq(pkg.installed { "hello=2.10-3" }:check(ctx), true)
    local ok, ch = pkg.installed { "hello=2.10-2", "nosuch", "broken", "oldconf", update = false }:check(ctx)
    T.eq(ok, false)
    T.eq(ch, { "install hello 2.10-2 (installed: 2.10-3)", "install nosuch",
               "install broken (now: install reinstreq half-installed)", "install oldconf" })
  end)
end)

T.test("check of pkg.absent on the fixture, with and without purge", function()
  with_status(FIX .. "/status", function()
    local ctx = mkctx()
    T.eq(pkg.absent { "nosuch", "oldconf", "broken" }:check(ctx), true)
    local ok, ch = pkg.absent { "hello", "oldconf", purge = true }:check(ctx)
    T.eq(ok, false)
    T.eq(ch, { "purge hello 2.10-3", "purge oldconf (configuration files left)" })
  end)
end)

T.test("a check spawns no process", function()
  with_status(FIX .. "/status", function()
    local n = spawns(function()
      pkg.installed { "hello", "nosuch" }:check(mkctx())
      pkg.absent { "hello" }:check(mkctx())
    end)
    T.eq(n, 0)
  end)
end)

T.test("no dpkg: a clear error naming what is supported", function()
  with_status("/nonexistent/dpkg/status", function()
    local ok, err = pkg.installed { "hello" }:check(mkctx())
    T.eq(ok, nil)
    T.match(err, "supported on Debian and Ubuntu %(dpkg and apt%-get%) only")
    T.match(err, "no dpkg database %(/nonexistent/dpkg/status%)")
    ok, err = pkg.supported {}:check(mkctx())
    T.eq(ok, false)
    T.match(err, "Debian and Ubuntu")
    ok, err = pkg.absent { "hello" }:check(mkctx())
    T.eq(ok, nil)
    T.match(err, "Debian and Ubuntu")
  end)
end)

T.test("lists: missing, fresh and stale package lists", function()
  local d = T.tmpdir()
  local saved = pkg.lists_dir
  pkg.lists_dir = d
  local ok, err = pcall(function()
    T.eq(pkg.lists_stale(86400), "no package lists yet")
    local f = io.open(d .. "/deb.example_dists_x_main_binary-amd64_Packages.lz4", "w"); f:write("x"); f:close()
    T.eq(pkg.lists_stale(86400), nil)
    T.ok(sh("touch -d '3 days ago' " .. d .. "/deb.example_dists_x_main_binary-amd64_Packages.lz4"))
    T.eq(pkg.lists_stale(86400), "package lists are 3d old")
    T.eq(pkg.lists_stale(7 * 86400), nil)
    local age, count = C.lists_age(d)
    T.ok(age > 3 * 86400 - 60 and age < 3 * 86400 + 60, "age " .. tostring(age))
    T.eq(count, 1)
    -- the check says an update comes first, only when something is to install
    with_status(FIX .. "/status", function()
      local cok, ch = pkg.installed { "nosuch" }:check(mkctx())
      T.eq(cok, false)
      T.eq(ch[1], "apt-get update (package lists are 3d old)")
      T.eq(pkg.installed { "hello" }:check(mkctx()), true)
      local _, ch2 = pkg.installed { "nosuch", update = false }:check(mkctx())
      T.eq(ch2, { "install nosuch" })
    end)
  end)
  pkg.lists_dir = saved
  if not ok then error(err, 0) end
end)

T.test("a package it installed, pinned to another version since, is still its own at teardown", function()
  -- apt-get stood in for (exec.run): install writes the pinned version into
  -- a copy of the fixture's database, remove marks the package removed
  local d = T.tmpdir()
  local db = d .. "/status"
  local function set_hello(status, version)
    local f = assert(io.open(FIX .. "/status")); local text = f:read("a"); f:close()
    text = text:gsub("Package: hello\nStatus: [^\n]*", "Package: hello\nStatus: " .. status, 1)
      :gsub("(Package: hello\n.-)Version: [^\n]*", "%1Version: " .. version, 1)
    f = assert(io.open(db, "w")); f:write(text); f:close()
  end
  set_hello("deinstall ok config-files", "2.10-1")
  local exec = require "provision._exec"
  local real, calls = exec.run, {}
  exec.run = function(argv)
    calls[#calls + 1] = table.concat(argv, " ")
    if argv[2] == "install" then set_hello("install ok installed", (argv[#argv]:match("=(.+)$")))
    elseif argv[2] == "remove" then set_hello("deinstall ok config-files", "2.10-3") end
    return { status = 0, output = "" }
  end
  local ok, err = pcall(with_status, db, function()
    local ctx = mkctx()
    T.eq(pkg.installed { "hello=2.10-2", update = false }:apply(ctx), true)
    T.eq(ctx.state.created, { { type = "package", name = "hello", version = "2.10-2" } })
    local pinned = pkg.installed { "hello=2.10-3", update = false }
    T.eq(pinned:apply(ctx), true)
    T.eq(pinned:check(ctx), true)
    T.eq(ctx.state.created, { { type = "package", name = "hello", version = "2.10-3" } }, "the record follows the new pin")
    T.eq(pinned:revert(ctx), true)
    T.match(calls[#calls], "^apt%-get remove %-y .* hello$")
    T.eq(pkg.installed { "hello" }:check(mkctx()), false, "removed at teardown")
  end)
  exec.run = real
  if not ok then error(err, 0) end
end)

-- ------------------------------------------------------------ the real thing

local function hello_installed()
  local t = assert(C.read_status("/var/lib/dpkg/status", { hello = true }))
  return t.hello and t.hello.installed and t.hello.version or nil
end

-- start from a machine without hello
if hello_installed() then sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y hello") end

T.test("install hello, then a no-op check that spawns nothing", function()
  T.eq(hello_installed(), nil, "hello absent before")
  local r = pkg.installed { "hello" }
  local ctx = mkctx()
  local ok, ch = r:check(ctx)
  T.eq(ok, false)
  T.eq(ch[#ch], "install hello")
  T.eq(r:apply(ctx), true)
  T.ok(hello_installed(), "hello installed")
  T.eq(ctx.state.created, { { type = "package", name = "hello", version = hello_installed() } })
  T.eq(ctx.details, { "installed hello" })
  T.match(ctx.logs[#ctx.logs], "^%$ apt%-get install %-y .* hello$")
  local n, calls, cok = spawns(function() return r:check(mkctx()) end)
  T.eq(cok, true)
  T.eq(n, 0, "processes spawned by the no-op check: " .. table.concat(calls, ","))
  -- apply again is a no-op too
  n = spawns(function() return r:apply(mkctx()) end)
  T.eq(n, 0)
end)

T.test("version pinning: the exact version matches, another does not", function()
  local v = assert(hello_installed())
  T.eq(pkg.installed { "hello=" .. v }:check(mkctx()), true)
  local ok, ch = pkg.installed { "hello=0.1-1", update = false }:check(mkctx())
  T.eq(ok, false)
  T.eq(ch, { "install hello 0.1-1 (installed: " .. v .. ")" })
  -- apply of a version apt does not have fails with apt's reason
  local aok, err = pkg.installed { "hello=0.1-1", update = false }:apply(mkctx())
  T.eq(aok, nil)
  T.match(err, "^apt%-get install hello=0%.1%-1: exit 100: E: Version '0%.1%-1' for 'hello' was not found")
  T.eq(hello_installed(), v, "still the same version")
  -- apply of the installed version: nothing to do, nothing spawned
  local n = spawns(function() return pkg.installed { "hello=" .. v }:apply(mkctx()) end)
  T.eq(n, 0)
end)

T.test("a package apt does not know: apply fails with apt's reason", function()
  local ok, err = pkg.installed { "nosuchpkg-provision", update = false }:apply(mkctx())
  T.eq(ok, nil)
  T.match(err, "^apt%-get install nosuchpkg%-provision: exit 100: E: Unable to locate package nosuchpkg%-provision")
  T.match(err, "\nReading package lists")   -- the tail of apt's output follows
end)

T.test("pkg.absent removes hello; then it is a no-op", function()
  local r = pkg.absent { "hello" }
  local ctx = mkctx()
  local ok, ch = r:check(ctx)
  T.eq(ok, false)
  T.match(ch[1], "^remove hello ")
  T.eq(r:apply(ctx), true)
  T.eq(hello_installed(), nil)
  T.eq(ctx.details, { "removed hello" })
  local n, _, cok = spawns(function() return r:check(mkctx()) end)
  T.eq({ n, cok }, { 0, true })
end)

T.test("revert removes only what apply installed", function()
  local r = pkg.installed { "hello" }
  local ctx = mkctx()
  T.eq(r:apply(ctx), true)
  T.ok(hello_installed())
  -- a revert with a state that did not install it leaves it
  T.eq(r:revert(mkctx()), true)
  T.ok(hello_installed(), "kept: not ours")
  -- a state that says another version was installed: that is not ours either
  local other = mkctx { state = { created = { { type = "package", name = "hello", version = "0.1-1" } } } }
  T.eq(r:revert(other), true)
  T.ok(hello_installed(), "kept: another version than the one we installed")
  T.match(other.logs[1], "^kept, changed since: hello %(now ")
  T.eq(r:revert(mkctx { state = ctx.state }), true)
  T.eq(hello_installed(), nil, "removed: ours")
end)

-- (a successful apt-get whose package does not show in the database records
-- nothing either: tests/cli/pkg_docker_host.sh, with a fake apt-get)
T.test("install{record}: a failed install records nothing", function()
  local ctx = mkctx()
  T.eq(pkg.install(ctx, { "nosuchpkg-provision" }, { update = false, record = true }), nil)
  T.eq(ctx.state.created, nil)
end)

T.test("stale lists: apply runs apt-get update first and records it", function()
  local d = T.tmpdir()   -- no package lists there: counts as never updated
  local saved = pkg.lists_dir
  pkg.lists_dir = d
  local ctx = mkctx()
  local ok, err = pcall(function()
    local before = os.time()
    T.eq(pkg.installed { "hello" }:apply(ctx), true)
    T.ok(ctx.state.lists_updated and ctx.state.lists_updated >= before, "lists_updated recorded")
    T.eq(ctx.logs[1], "no package lists yet: apt-get update")
    T.eq(ctx.logs[2], "$ apt-get update")
  end)
  pkg.lists_dir = saved
  sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y hello")
  if not ok then error(err, 0) end
  T.eq(hello_installed(), nil)
end)

return T.done()
