-- tests/lua/test_compose.lua: provision.compose: names, .env, interpolation,
-- detection, the service judgement, and up/run_once/down on real stacks.
-- compose-matrix: run again with v1 (tests/run)
-- (not in the engine matrix: parts of it run docker-compose v1 by name,
-- which cannot recreate containers on Engine 25+)
local T = dofile "tests/lua/harness.lua"
local compose = require "provision.compose"
local docker = require "provision.docker"
local yaml = require "provision.yaml"
local exec = require "provision._exec"
local core = require "provision._core"

-- a service's first container as the Compose in use names it: v1
-- PROJECT_SVC_1, v2 PROJECT-SVC-1
local function cname(project, svc)
  local info = assert(compose.detect {})
  local sep = tonumber(info.version:match("^(%d+)")) >= 2 and "-" or "_"
  return project .. sep .. svc .. sep .. "1"
end
local function pat(s) return (s:gsub("[%-%.%+%*%?%[%]%(%)%^%$%%]", "%%%0")) end

T.test("project names as Compose derives them", function()
  T.eq(compose.normalize_name("My Project.v2"), "myprojectv2")
  T.eq(compose.normalize_name("_x-y_z"), "x-y_z")
  T.eq(compose.project_name("/tmp/Airflow-Quick_Start"), "airflow-quick_start")
  T.eq(compose.project_name("/tmp/whatever", "Explicit"), "explicit")
  T.eq(compose.project_name("/tmp/whatever", nil, { COMPOSE_PROJECT_NAME = "fromenv" }), "fromenv")
end)

T.test(".env read as Compose reads it", function()
  local d = T.tmpdir()
  assert(core.write_atomic(d .. "/.env", "# comment\nA=1\nexport B = two words\nC='quoted # not comment'\nD=\"x\\ny\"\nE=val # comment\n\nF=\n", 420))
  T.eq(assert(compose.read_env_file(d .. "/.env")),
    { A = "1", B = "two words", C = "quoted # not comment", D = "x\ny", E = "val", F = "" })
  assert(core.write_atomic(d .. "/bad", "A=1\nnot a pair\n", 420))
  local _, err = compose.read_env_file(d .. "/bad")
  T.eq(err, d .. "/bad:2: not KEY=VALUE")
end)

T.test("the compose file: found in v1's order; a missing one is named", function()
  local d = T.tmpdir()
  local _, err = compose.load_project { project_dir = d }
  T.eq(err, "no compose file in " .. d .. " (looked for docker-compose.yml, docker-compose.yaml, compose.yaml, compose.yml)")
  _, err = compose.load_project { project_dir = d, file = "other.yaml" }
  T.eq(err, "no compose file " .. d .. "/other.yaml")
  assert(core.write_atomic(d .. "/compose.yaml", "services: {a: {image: x}}\n", 420))
  assert(core.write_atomic(d .. "/docker-compose.yml", "services: {b: {image: x}}\n", 420))
  T.eq(compose.find_file(d), d .. "/docker-compose.yml")
end)

T.test("the files Compose reads: the default and its override, COMPOSE_FILE, or the one named", function()
  local d = T.tmpdir()
  assert(core.write_atomic(d .. "/docker-compose.yml", "services: {a: {image: x}}\n", 420))
  T.eq(compose.find_files(d), { d .. "/docker-compose.yml" })
  assert(core.write_atomic(d .. "/docker-compose.override.yml", "services: {b: {image: y}}\n", 420))
  T.eq(compose.find_files(d), { d .. "/docker-compose.yml", d .. "/docker-compose.override.yml" })
  T.eq(compose.find_files(d, "docker-compose.yml"), { d .. "/docker-compose.yml" }, "-f: no override")
  T.eq(compose.find_files(d, nil, { COMPOSE_FILE = "one.yaml:sub/two.yaml:/abs/three.yaml" }),
    { d .. "/one.yaml", d .. "/sub/two.yaml", "/abs/three.yaml" })
  T.eq(compose.find_files(d, nil, { COMPOSE_FILE = "one.yaml,two.yaml", COMPOSE_PATH_SEPARATOR = "," }),
    { d .. "/one.yaml", d .. "/two.yaml" })
  local e = T.tmpdir()
  assert(core.write_atomic(e .. "/compose.yaml", "services: {a: {image: x}}\n", 420))
  assert(core.write_atomic(e .. "/compose.override.yaml", "services: {a: {image: z}}\n", 420))
  T.eq(compose.find_files(e), { e .. "/compose.yaml", e .. "/compose.override.yaml" })
  T.eq(assert(compose.load_project { project_dir = e }).services.a.image, "z")
end)

T.test("an override merges into the compose file as Compose merges it", function()
  local d = T.tmpdir()
  assert(core.write_atomic(d .. "/docker-compose.yml", [[
services:
  web:
    image: base:1
    ports: ["8080:80"]
    environment: { A: "1", B: "2" }
    depends_on: [db]
    command: ["old"]
  db:
    image: db:1
volumes:
  data: {}
]], 420))
  assert(core.write_atomic(d .. "/docker-compose.override.yml", [[
services:
  web:
    image: ${WEB_IMAGE}
    ports: ["9090:90"]
    environment: { B: "3" }
    depends_on: { cache: { condition: service_healthy } }
    command: ["new"]
  cache:
    image: cache:1
    profiles: []
  debug:
    image: dbg:1
    profiles: [debug]
volumes:
  more: {}
]], 420))
  assert(core.write_atomic(d .. "/.env", "WEB_IMAGE=web:2\n", 384))
  local p = assert(compose.load_project { project_dir = d })
  T.eq(p.files, { d .. "/docker-compose.yml", d .. "/docker-compose.override.yml" })
  T.eq(p.file, d .. "/docker-compose.yml")
  local web = p.services.web
  T.eq(web.image, "web:2", "the override's image, interpolated")
  T.eq(web.ports, { "8080:80", "9090:90" }, "ports: concatenated")
  T.eq(web.environment, { A = "1", B = "3" }, "a mapping: merged by key")
  T.eq(web.command, { "new" }, "anything else: replaced")
  T.ok(web.depends_on.db and web.depends_on.cache, "depends_on: the union of a list and a mapping")
  T.eq(compose.expected_services(p), { "cache", "db", "web" }, "the override's service is expected, its profiled one not")
  T.ok(p.doc.volumes.data and p.doc.volumes.more, "top-level volumes merged")
  -- a COMPOSE_FILE in .env naming a file that is not there: named, and a change to come
  assert(core.write_atomic(d .. "/.env", "COMPOSE_FILE=docker-compose.yml:missing.yml\n", 384))
  local _, err, missing = compose.load_project { project_dir = d }
  T.eq(err, "no compose file " .. d .. "/missing.yml (from COMPOSE_FILE)"); T.eq(missing, "missing")
  -- one file that is a list, not a mapping
  assert(core.write_atomic(d .. "/.env", "", 384))
  assert(core.write_atomic(d .. "/docker-compose.override.yml", "- a\n- b\n", 420))
  _, err = compose.load_project { project_dir = d }
  T.eq(err, d .. "/docker-compose.override.yml: not a compose file (no mapping at the top)")
end)

T.test("an override naming a service with nothing under it changes nothing (it crashed expected_services)", function()
  local d = T.tmpdir()
  assert(core.write_atomic(d .. "/docker-compose.yml", "services:\n  web:\n    image: web:1\n", 420))
  assert(core.write_atomic(d .. "/docker-compose.override.yml", "services:\n  web:\n", 420))
  local p = assert(compose.load_project { project_dir = d })
  T.eq(p.services.web, { image = "web:1" })
  T.eq(compose.expected_services(p), { "web" })
end)

T.test("an override as Compose v1 merges it: profiles joined, v1 image/build, top-level entries replaced", function()
  local d = T.tmpdir()
  assert(core.write_atomic(d .. "/docker-compose.yml", [[
services:
  web:
    image: web:1
  dbg:
    image: dbg:1
    profiles: [debug]
volumes:
  data:
    name: shared_data
]], 420))
  -- `profiles: []` does not take a profile away (v1 joins the lists:
  -- `docker-compose up` does not start dbg); a top-level volume the
  -- override names is the override's entry (v1 replaces it: no name)
  assert(core.write_atomic(d .. "/docker-compose.override.yml", [[
services:
  dbg:
    profiles: []
volumes:
  data:
    labels: { a: b }
]], 420))
  local p = assert(compose.load_project { project_dir = d })
  T.eq(p.services.dbg.profiles, { "debug" }, "profiles: joined")
  T.eq(compose.expected_services(p), { "web" })
  T.eq(p.doc.volumes.data, { labels = { a = "b" } }, "a top-level volume: the override's entry")
  -- version 1 files (no services:): an override's image drops the build, its build the image
  local v = T.tmpdir()
  assert(core.write_atomic(v .. "/docker-compose.yml", "web:\n  image: busybox:a\nother:\n  build: .\n", 420))
  assert(core.write_atomic(v .. "/docker-compose.override.yml", "web:\n  build: .\nother:\n  image: foo:1\n", 420))
  p = assert(compose.load_project { project_dir = v })
  T.eq(p.services.web, { build = "." }); T.eq(p.services.other, { image = "foo:1" })
end)

T.test("up's inputs: the files COMPOSE_FILE in .env lists", function()
  local d = T.tmpdir()
  assert(core.write_atomic(d .. "/docker-compose.yml", "services: {a: {image: x}}\n", 420))
  assert(core.write_atomic(d .. "/extra.yml", "services: {b: {image: y}}\n", 420))
  assert(core.write_atomic(d .. "/.env", "COMPOSE_FILE=docker-compose.yml:extra.yml\n", 420))
  local function has(list, want)
    for _, r in ipairs(list) do if r == want then return true end end
    return false
  end
  T.ok(has(compose.up { project_dir = d }:reads(), d .. "/extra.yml"), "up reads extra.yml")
  T.ok(has(compose.run_once { project_dir = d, service = "b" }:reads(), d .. "/extra.yml"), "run_once reads extra.yml")
end)

T.test("interpolation: ${VAR}, defaults, required, $$", function()
  local env = { A = "a", EMPTY = "" }
  local function i(s) return assert(compose.interpolate(s, env)) end
  T.eq(i("${A}/$A/${B:-dflt}/${EMPTY:-e}/${EMPTY-e}/${B-x}"), "a/a/dflt/e//x")
  T.eq(i("$$HOME and $${A}"), "$HOME and ${A}")
  T.eq(i("${B:-${A}}x"), "${A}x", "nested defaults are not Compose v1 syntax")
  T.eq(i("plain"), "plain")
  -- one pass: what a substitution gives is not read again
  T.eq(compose.interpolate("${A}", { A = "ab$HOME" }), "ab$HOME")
  T.eq(compose.interpolate("$A-$$", { A = "x$y" }), "x$y-$")
  T.eq(i("${B:-x$$y}"), "x$$y", "a default as is, as v1 gives it")
  T.eq(i("cost $ 5"), "cost $ 5")
  local _, err = compose.interpolate("${B:?B is needed}", env)
  T.match(err, "required variable B is missing a value: B is needed")
  local _, err2 = compose.interpolate({ x = { "${A}", "${-bad}" } }, env)
  T.match(err2, "^x%.2: invalid interpolation format")
  local t = assert(compose.interpolate({ yaml.array { "${A}" }, n = 5, z = yaml.null }, env))
  T.eq(t[1][1], "a"); T.ok(yaml.is_array(t[1])); T.eq(t.n, 5); T.eq(t.z, yaml.null)
end)

T.test("expected services: no profiles, listed ones with their dependencies", function()
  local p = { services = {
    web = { depends_on = { init = { condition = "service_completed_successfully" } } },
    init = {}, worker = { depends_on = yaml.array { "db" } }, db = {},
    debug = { profiles = yaml.array { "debug" } },
  } }
  T.eq(compose.expected_services(p), { "db", "init", "web", "worker" })
  T.eq(compose.expected_services(p, { "web" }), { "init", "web" })
  T.eq(compose.expected_services(p, { "debug" }), { "debug" })
  -- COMPOSE_PROFILES (from .env here: the environment wins, as in Compose)
  p.lookup = { COMPOSE_PROFILES = "other, debug" }
  T.eq(compose.expected_services(p), { "db", "debug", "init", "web", "worker" })
  local d = T.tmpdir()
  assert(core.write_atomic(d .. "/docker-compose.yml", "services: {a: {image: x}, b: {image: x, profiles: [extra]}}\n", 420))
  assert(core.write_atomic(d .. "/.env", "COMPOSE_PROFILES=extra\n", 384))
  T.eq(compose.expected_services(assert(compose.load_project { project_dir = d })), { "a", "b" })
end)

T.test("container states and the judgement", function()
  local cs = compose.container_state
  T.eq(cs { State = { Status = "running" } }, "running")
  T.eq(cs { State = { Status = "running", Health = { Status = "healthy" } } }, "healthy")
  T.eq(cs { State = { Status = "running", Health = { Status = "starting" } } }, "starting")
  T.eq({ cs { State = { Status = "running", Health = { Status = "unhealthy", Log = { { Output = "no\n" } } } } } },
    { "unhealthy", "no" })
  T.eq(cs { State = { Status = "exited", ExitCode = 0 }, HostConfig = { RestartPolicy = { Name = "no" } } }, "completed")
  T.eq({ cs { State = { Status = "exited", ExitCode = 0 }, HostConfig = { RestartPolicy = { Name = "always" } } } },
    { "exited", "exit code 0" })
  T.eq({ cs { State = { Status = "exited", ExitCode = 2 }, HostConfig = { RestartPolicy = { Name = "" } } } },
    { "exited", "exit code 2" })
  local states = { a = { state = "healthy" }, b = { state = "starting" }, c = { state = "completed" } }
  T.eq({ compose.judge(states, { "a", "c" }, "healthy") }, { true, {} })
  local ready, pending = compose.judge(states, { "a", "b" }, "healthy")
  T.eq(ready, false); T.eq(pending, { "service b: health starting" })
  T.eq((compose.judge(states, { "a", "b" }, "running")), true)
  local _, p2, failed = compose.judge({ x = { state = "exited", detail = "exit code 1" }, y = { state = "missing" } }, { "x", "y" }, "running")
  T.eq(p2, { "service x: exited", "service y: no container" })
  T.eq(failed, "service x: exited (exit code 1)")
  -- restarting: it exited and comes back; a crash loop fails, a first restart waits
  T.eq({ cs { State = { Status = "restarting", ExitCode = 2 }, RestartCount = 4 } }, { "restarting", "exit code 2, restarted 4 times" })
  T.eq(compose.utc_seconds("1970-01-02T00:00:01.25Z"), 86401.25)
  T.eq(compose.utc_seconds("2000-03-01T00:00:00Z"), 951868800)
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  T.eq(cs { State = { Status = "running", StartedAt = now }, RestartCount = 2 }, "restarted", "just restarted: not up yet")
  T.eq(cs { State = { Status = "running", StartedAt = "2000-01-01T00:00:00Z" }, RestartCount = 2 }, "running", "restarted long ago: up")
  T.eq(cs { State = { Status = "running", StartedAt = now }, RestartCount = 0 }, "running", "a first start is up")
  local _, p3, f3 = compose.judge({ r = { state = "restarting", restarts = 1, detail = "exit code 1, restarted 1 times" } }, { "r" }, "running")
  T.eq(p3, { "service r: not running (restarting)" }); T.eq(f3, nil)
  local _, _, f4 = compose.judge({ r = { state = "restarting", restarts = 3, detail = "exit code 1, restarted 3 times" } }, { "r" }, "running")
  T.eq(f4, "service r: restarting (exit code 1, restarted 3 times)")
end)

T.test("resource options validated at load time", function()
  T.raises(function() compose.up { project_dir = "x", wait = "ready" } end, "option 'wait' must be")
  T.raises(function() compose.down { project_dir = "x", rmi = "some" } end, "rmi")
  T.raises(function() compose.run_once { project_dir = "x" } end, "missing required option 'service'")
  T.eq(compose.down { project_dir = "x", rmi = true }.rmi, "all")
end)

local have_v1 = exec.which("docker-compose")
T.test("detection: docker-compose v1 found, version parsed, cached by signature", function()
  if not have_v1 then error("docker-compose is not installed") end
  local cache = {}
  local info = assert(compose.detect { command = "docker-compose", cache = cache })
  T.eq(info.argv, { "docker-compose" })
  T.match(info.version, "^%d+%.%d+%.%d+$")
  T.eq(cache.version, info.version)
  -- a cache whose signature matches is believed (no process spawned)...
  local fake = { key = "docker-compose-x", argv = { "docker-compose" }, version = "9.9.9",
                 signature = compose.signature { "docker-compose" } }
  local _, err = compose.detect { command = "no-such-compose", cache = fake }
  T.match(err, "compose command no%-such%-compose does not work")
  fake.key = "docker compose"
  local info2 = assert(compose.detect { command = "docker compose", cache = fake })
  T.eq(info2.version, "9.9.9", "cached result used")
  -- ...and one whose binaries changed is not
  local stale = { key = "docker-compose", argv = { "docker-compose" }, version = "0.0.1", signature = "other" }
  compose.use(nil)
  local info3 = assert(compose.detect { command = "docker-compose", cache = stale })
  T.eq(info3.version, info.version)
end)

T.test("file with a project_dir relative to the working directory: Compose (run in project_dir) finds it", function()
  if not have_v1 then error("docker-compose is not installed") end
  -- deeper than the working directory: its ../ do not end at / (where
  -- a path taken from project_dir would still resolve)
  local depth = select(2, (core.cwd()):gsub("/[^/]+", ""))
  local d = T.tmpdir() .. ("/s"):rep(depth)
  assert(core.mkdirs(d, 493))
  assert(core.write_atomic(d .. "/other.yml", "services:\n  web:\n    image: x:1\n", 420))
  local rel = ("../"):rep(depth) .. d:sub(2)
  local p = assert(compose.load_project { project_dir = rel, file = "other.yml" })
  local r, err = compose.run(p, { "config", "--services" }, { command = "docker-compose", file = "other.yml" })
  T.ok(r, err)
  T.eq(r.output, "web\n")
end)

T.test("compose.available: min_version", function()
  local ctx = { state = {}, plan = true, detail = function() end }
  T.eq(compose.available { min_version = "1.0" }:check(ctx), true)
  local ok, msg = compose.available { min_version = "99.0" }:check(ctx)
  T.eq(ok, false); T.match(msg, "is older than 99%.0")
  local ok2, msg2 = compose.available { command = "no-such-compose" }:check(ctx)
  T.eq(ok2, false); T.match(msg2, "no%-such%-compose: not found")
end)

-- ---- real stacks ----
if not docker.ping() then
  if os.getenv("PROVISION_REQUIRE_DOCKER") == "1" then
    T.test("a Docker engine answers (PROVISION_REQUIRE_DOCKER=1)", function() error(select(2, docker.ping())) end)
  else
    T.skip("compose stacks", "no Docker engine answers")
  end
  os.exit(T.done())
end

local pid = core.getpid()
local TAG = ("provision-test/busybox:cmp%d"):format(pid)
local work = T.tmpdir()
local built = exec.run { "sh", "tests/fixtures/stack/busybox-rootfs.sh", work .. "/rootfs.tar" }
assert(built.status == 0, built.output)
assert(docker.image_import(work .. "/rootfs.tar", { ref = TAG }))

local function new_ctx(state)
  return { state = state or {}, created = function() end, log = function() end, detail = function() end,
    progress = function() end, spin = function(self) self.spins = (self.spins or 0) + 1 end,
    interrupted = function() return false end }
end

local projects = {}
local function stack(name, text, env)
  local dir = work .. "/" .. name
  assert(core.mkdirs(dir, 493))
  assert(core.write_atomic(dir .. "/docker-compose.yaml", (text:gsub("IMAGE", TAG)), 420))
  assert(core.write_atomic(dir .. "/.env", env or "X=1\n", 384))
  projects[#projects + 1] = dir
  return dir
end

local ok_stack = [[
services:
  init:
    image: IMAGE
    command: ["sh", "-c", "echo init ran; echo $$X > /data/x"]
    volumes: [ "data:/data" ]
  svc:
    image: IMAGE
    stop_signal: SIGKILL
    restart: unless-stopped
    depends_on: { init: { condition: service_completed_successfully } }
    volumes: [ "data:/data" ]
    command: ["sh", "-c", "touch /tmp/ready; while true; do sleep 1; done"]
    healthcheck: { test: ["CMD", "test", "-f", "/tmp/ready"], interval: 1s, retries: 20 }
  profiled:
    image: IMAGE
    profiles: [ "extra" ]
volumes:
  data:
]]

T.test("up (healthy), no-op check without spawning, .env change, run_once, down", function()
  local dir = stack(("ptc%dok"):format(pid), ok_stack)
  local name = compose.project_name(dir)
  local up = compose.up { project_dir = dir, wait = "healthy", timeout = "60s" }
  local ctx = new_ctx()
  local ok, changes = up:check(ctx)
  T.eq(ok, false); T.ok(#changes >= 1)
  T.ok(up:apply(ctx))
  T.eq(up:check(ctx), true)
  T.eq(ctx.state.project, name)
  -- the check spawns nothing: exec.run is not called
  local real_run = exec.run
  local spawned = 0
  exec.run = function(...) spawned = spawned + 1; return real_run(...) end
  local t0 = core.now()
  T.eq(up:check(ctx), true)
  local dt = core.now() - t0
  exec.run = real_run
  T.eq(spawned, 0, "processes spawned by check")
  T.ok(dt < 0.05, ("check took %.1f ms"):format(dt * 1000))
  local states = assert(compose.service_states(name, { "svc", "init" }))
  T.eq(states.svc.state, "healthy"); T.eq(states.init.state, "completed")
  T.eq(#assert(docker.containers { project = name, service = "profiled" }), 0, "profiled service not started")

  -- .env changed: the check says so; apply re-runs up
  assert(core.write_atomic(dir .. "/.env", "X=2\n", 384))
  local ok2, ch2 = up:check(ctx)
  T.eq(ok2, false); T.eq(ch2, { ".env changed since the last apply" })
  T.ok(up:apply(ctx))
  T.eq(up:check(ctx), true)

  -- run_once on the init service
  local ro = compose.run_once { project_dir = dir, service = "init" }
  local rctx = new_ctx()
  local rok, rch = ro:check(rctx)
  T.eq(rok, false); T.eq(rch, { "no record of an earlier apply" })
  T.ok(ro:apply(rctx))
  T.eq(ro:check(rctx), true)

  -- a stopped service is seen
  local svc_id = states.svc.id
  assert(docker.call("POST", "/containers/" .. svc_id .. "/stop?t=1"))
  local ok3, ch3 = up:check(ctx)
  T.eq(ok3, false); T.match(table.concat(ch3, "\n"), "service svc: ")

  local down = compose.down { project_dir = dir, volumes = true, remove_orphans = true }
  local dctx = new_ctx()
  local dok, left = down:check(dctx)
  T.eq(dok, false); T.match(table.concat(left, "\n"), "volume " .. name .. "_data")
  T.ok(down:apply(dctx))
  T.eq(down:check(dctx), true)
  T.eq(#assert(compose.leftovers(name, true)), 0)
end)

T.test("up with an override file: its services are expected and run; a change to it is seen and converged", function()
  local dir = stack(("ptc%dovr"):format(pid), [[
services:
  svc:
    image: IMAGE
    stop_signal: SIGKILL
    command: ["sh", "-c", "while true; do sleep 1; done"]
]])
  local name = compose.project_name(dir)
  assert(core.write_atomic(dir .. "/docker-compose.override.yml", ([[
services:
  extra:
    image: IMAGE
    stop_signal: SIGKILL
    command: ["sh", "-c", "while true; do sleep 1; done"]
]]):gsub("IMAGE", TAG), 420))
  local up = compose.up { project_dir = dir, timeout = "60s" }
  local ctx = new_ctx()
  T.ok(up:apply(ctx))
  T.eq(up:check(ctx), true)
  local states = assert(compose.service_states(name, { "svc", "extra" }))
  T.eq(states.extra.state, "running", "the override's service runs (Compose read the override)")
  -- the override's service stopped: the check sees it (it is expected)
  assert(docker.call("POST", "/containers/" .. states.extra.id .. "/stop?t=1"))
  local ok, ch = up:check(ctx)
  T.eq(ok, false); T.match(table.concat(ch, "\n"), "service extra: ")
  T.ok(up:apply(ctx))
  T.eq(up:check(ctx), true)
  -- the override changed: the check says so (before, only the main file counted)
  assert(core.write_atomic(dir .. "/docker-compose.override.yml", ([[
services:
  extra:
    image: IMAGE
    stop_signal: SIGKILL
    command: ["sh", "-c", "echo two; while true; do sleep 1; done"]
]]):gsub("IMAGE", TAG), 420))
  ok, ch = up:check(ctx)
  T.eq(ok, false); T.eq(ch, { "compose file changed since the last apply" })
  T.ok(up:apply(ctx))
  T.eq(up:check(ctx), true)
  local down = compose.down { project_dir = dir, volumes = true, remove_orphans = true }
  T.ok(down:apply(new_ctx()))
  T.eq(#assert(compose.leftovers(name, true)), 0)
end)

T.test("run_once fails with the exit code and the tail of the logs", function()
  local dir = stack(("ptc%dfail"):format(pid), [[
services:
  init:
    image: IMAGE
    command: ["sh", "-c", "echo step one; echo something broke >&2; exit 3"]
]])
  local ro = compose.run_once { project_dir = dir, service = "init", timeout = "60s" }
  local ctx = new_ctx()
  local ok, err = ro:apply(ctx)
  T.eq(ok, nil)
  T.match(err, "^service init exited with code 3")
  T.match(err, "something broke")
  T.eq(ctx.state.ran, nil)
  local ok2, ch = ro:check(ctx)
  T.eq(ok2, false); T.match(table.concat(ch, "\n"), "last run failed %(exit code 3%)")
  T.ok(compose.down { project_dir = dir, volumes = true }:apply(new_ctx()))
end)

T.test("run_once of a one-shot that restarts on failure fails at once, with its exit code", function()
  local dir = stack(("ptc%drestart"):format(pid), [[
services:
  init:
    image: IMAGE
    restart: on-failure
    command: ["sh", "-c", "echo init failed >&2; exit 2"]
]])
  local ro = compose.run_once { project_dir = dir, service = "init", timeout = "60s" }
  local t0 = core.now()
  local ok, err = ro:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "^service init exited with code 2 %(exit code 2, restarted %d+ times%)")
  T.ok(core.now() - t0 < 30, ("failed in %.1fs, not after the 60s timeout"):format(core.now() - t0))
  T.ok(compose.down { project_dir = dir, volumes = true }:apply(new_ctx()))
end)

T.test("up fails on a service in a crash loop, naming it", function()
  local dir = stack(("ptc%dloop"):format(pid), [[
services:
  loop:
    image: IMAGE
    stop_signal: SIGKILL
    restart: always
    command: ["sh", "-c", "echo crashing; exit 1"]
]])
  local t0 = core.now()
  local ok, err = compose.up { project_dir = dir, wait = "running", timeout = "90s" }:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "service loop: restarting %(exit code 1, restarted %d+ times%)")
  T.ok(core.now() - t0 < 80, ("failed in %.1fs, before the timeout"):format(core.now() - t0))
  T.ok(compose.down { project_dir = dir, volumes = true }:apply(new_ctx()))
end)

T.test("down and teardown refuse a project of the same name started from another folder", function()
  local name = ("ptc%dsame"):format(pid)
  local body = [[
services:
  SVC:
    image: IMAGE
    stop_signal: SIGKILL
    command: ["sh", "-c", "while true; do sleep 1; done"]
]]
  local other = stack("other/" .. name, (body:gsub("SVC", "other")))
  local mine = stack("mine/" .. name, (body:gsub("SVC", "mine")))
  -- the other folder's stack, started by hand (plain Compose)
  local r = exec.run { "docker-compose", "up", "-d", cwd = other }
  assert(r.status == 0, r.output)
  local up = compose.up { project_dir = mine, wait = "running", timeout = "60s" }
  local uctx = new_ctx()
  assert(up:apply(uctx))
  local ok, err = up:revert(uctx)
  T.eq(ok, nil)
  T.match(err, "container " .. name .. "_other_1 was started from .*other/" .. name .. ", not .*mine/" .. name)
  local down = compose.down { project_dir = mine, remove_orphans = true }
  local cok, cerr = down:check(new_ctx())
  T.eq(cok, nil); T.match(cerr, "not taking it down")
  T.eq((down:apply(new_ctx())), nil)
  local list = docker.containers { project = name }
  T.eq(#list, 2, "both stacks still there")
  r = exec.run { "docker", "rm", "-f", name .. "_other_1", cname(name, "mine") }   -- other's: docker-compose v1
  T.ok(compose.down { project_dir = other }:apply(new_ctx()))
end)

T.test("up fails on an unhealthy service, naming it, with its logs", function()
  local dir = stack(("ptc%dsick"):format(pid), [[
services:
  sick:
    image: IMAGE
    stop_signal: SIGKILL
    restart: unless-stopped
    command: ["sh", "-c", "echo starting sick service; while true; do sleep 1; done"]
    healthcheck: { test: ["CMD", "false"], interval: 1s, retries: 2 }
]])
  local up = compose.up { project_dir = dir, wait = "healthy", timeout = "60s" }
  local ctx = new_ctx()
  local ok, err = up:apply(ctx)
  T.eq(ok, nil)
  T.match(err, "^service sick: unhealthy")
  T.match(err, "starting sick service")
  T.ok((ctx.spins or 0) > 0, "the wait showed a spinner")
  T.ok(compose.down { project_dir = dir, volumes = true }:apply(new_ctx()))
end)

T.test("up times out naming what it waited for", function()
  local dir = stack(("ptc%dslow"):format(pid), [[
services:
  slow:
    image: IMAGE
    stop_signal: SIGKILL
    command: ["sh", "-c", "while true; do sleep 1; done"]
    healthcheck: { test: ["CMD", "true"], interval: 30s, start_period: 60s }
]])
  local up = compose.up { project_dir = dir, wait = "healthy", timeout = "2s" }
  local ok, err = up:apply(new_ctx())
  T.eq(ok, nil)
  T.match(err, "^timed out after 2s waiting for healthy: service slow: health starting")
  T.eq(up:check(new_ctx()), false)
  T.ok(compose.down { project_dir = dir, volumes = true }:apply(new_ctx()))
end)

local json = require "provision.json"
local function volume_there(name)
  local _, _, status = docker.call("GET", "/volumes/" .. name)
  return status == 200
end
-- a service that sleeps until stopped, with more lines of YAML for it
local function sleeper(svc, more)
  return ("services:\n  %s:\n    image: IMAGE\n    stop_signal: SIGKILL\n" ..
    "    command: [\"sh\", \"-c\", \"while true; do sleep 1; done\"]\n%s"):format(svc, more)
end
local function volume_create(name)
  assert(docker.call("POST", "/volumes/create", { body = json.encode { Name = name }, content_type = "application/json" }))
end

T.test("COMPOSE_FILE naming a file in a subfolder: up's teardown, run_once's and down take the stack down (Compose labels it with that folder)", function()
  local dir = stack(("ptc%dsub"):format(pid), "services: {}\n", "COMPOSE_FILE=sub/app.yml\n")
  local name = compose.project_name(dir)
  assert(core.mkdirs(dir .. "/sub", 493))
  assert(core.write_atomic(dir .. "/sub/app.yml", (sleeper("svc", "  once:\n    image: IMAGE\n    command: [\"true\"]\n"):gsub("IMAGE", TAG)), 420))
  local up = compose.up { project_dir = dir, services = { "svc" }, timeout = "60s" }
  local ctx = new_ctx()
  T.ok(up:apply(ctx))
  T.eq(up:check(ctx), true)
  local ro = compose.run_once { project_dir = dir, service = "once", timeout = "60s" }
  local rctx = new_ctx()
  T.ok(ro:apply(rctx))
  T.eq(ro:check(rctx), true)
  T.eq(ro:revert(rctx), true, "run_once's teardown removes its container")
  T.eq(up:revert(ctx), true, "up's teardown takes the stack down")
  T.eq(#assert(compose.leftovers(name, false)), 0)
  T.ok(up:apply(new_ctx()))
  local down = compose.down { project_dir = dir, remove_orphans = true }
  T.eq((down:check(new_ctx())), false, "down's check: the stack is there to take down")
  T.ok(down:apply(new_ctx()))
  T.eq(#assert(compose.leftovers(name, false)), 0)
end)

T.test("down with volumes: a same-name volume Compose did not create is kept, its own and anonymous ones go", function()
  local dir = stack(("ptc%dkeep"):format(pid), sleeper("svc", [[
    volumes: [ "data:/data", "logs:/logs", "/anon" ]
volumes:
  data:
  logs:
]]))
  local name = compose.project_name(dir)
  -- there before the stack: Compose v1 adopts it (no label), `down --volumes` deleted it
  volume_create(name .. "_data")
  local ok, err = pcall(function()
    T.ok(compose.up { project_dir = dir, wait = "running", timeout = "60s" }:apply(new_ctx()))
    local anon
    for _, m in ipairs(docker.containers { project = name }[1].Mounts) do
      if m.Destination == "/anon" then anon = m.Name end
    end
    T.ok(anon and volume_there(anon), "an anonymous volume for /anon")
    T.ok(volume_there(name .. "_logs"))
    local down = compose.down { project_dir = dir, volumes = true, remove_orphans = true }
    local dctx = new_ctx()
    local details, logs = {}, {}
    dctx.detail = function(_, d) details[#details + 1] = d end
    dctx.log = function(_, l) logs[#logs + 1] = l end
    local dok, left = down:check(dctx)
    T.eq(dok, false)
    left = table.concat(left, "\n")
    T.match(left, "volume " .. name .. "_logs"); T.ok(not left:find(name .. "_data", 1, true), "the adopted volume is no leftover")
    T.ok(down:apply(dctx))
    T.ok(volume_there(name .. "_data"), "the volume that was there before is kept")
    T.ok(not volume_there(name .. "_logs"), "the volume Compose created is removed")
    T.ok(not volume_there(anon), "the anonymous volume is removed")
    T.match(details[#details], "kept " .. name .. "_data: not created by Compose")
    T.match(table.concat(logs, "\n"), "volume " .. name .. "_data kept: Compose did not create it")
    T.eq(down:check(dctx), true)
    T.eq(#assert(compose.leftovers(name, true)), 0)
  end)
  docker.call("DELETE", "/volumes/" .. name .. "_data")
  if not ok then error(err, 0) end
end)

T.test("teardown of up: containers go with their anonymous volumes; the named volumes (data) stay", function()
  local dir = stack(("ptc%dupre"):format(pid), sleeper("svc", [[
    volumes: [ "data:/data", "/anon" ]
volumes:
  data:
]]))
  local name = compose.project_name(dir)
  local ok, err = pcall(function()
    local up = compose.up { project_dir = dir, wait = "running", timeout = "60s" }
    local uctx = new_ctx()
    T.ok(up:apply(uctx))
    local anon
    for _, m in ipairs(docker.containers { project = name }[1].Mounts) do
      if m.Destination == "/anon" then anon = m.Name end
    end
    T.ok(anon and volume_there(anon), "an anonymous volume for /anon")
    local details = {}
    uctx.detail = function(_, d) details[#details + 1] = d end
    T.ok(up:revert(uctx))
    T.eq(#docker.containers { project = name, all = true }, 0)
    T.ok(not volume_there(anon), "the anonymous volume went with its container (it was left dangling)")
    T.ok(volume_there(name .. "_data"), "the named volume stays")
    T.eq(details[#details], "stack down; 1 anonymous volume removed, named volumes kept")
  end)
  docker.call("DELETE", "/volumes/" .. name .. "_data")
  if not ok then error(err, 0) end
end)

T.test("down with volumes: a volume another project's container uses is named, and nothing is taken down", function()
  local dir = stack(("ptc%dmine"):format(pid), sleeper("svc", [[
    volumes: [ "shared:/shared" ]
volumes:
  shared:
]]))
  local name = compose.project_name(dir)
  local other = stack(("ptc%dtheirs"):format(pid), sleeper("user", [[
    volumes: [ "vol:/v" ]
volumes:
  vol:
    external: true
    name: ]] .. name .. "_shared\n"))
  T.ok(compose.up { project_dir = dir, wait = "running", timeout = "60s" }:apply(new_ctx()))
  T.ok(compose.up { project_dir = other, wait = "running", timeout = "60s" }:apply(new_ctx()))
  local down = compose.down { project_dir = dir, volumes = true }
  local want = "volume " .. name .. "_shared is in use by container " .. pat(cname(compose.project_name(other), "user"))
    .. " %(project " .. compose.project_name(other) .. "%)"
  local cok, cerr = down:check(new_ctx())
  T.eq(cok, nil); T.match(cerr, want)
  local aok, aerr = down:apply(new_ctx())
  T.eq(aok, nil); T.match(aerr, want)
  T.eq(#assert(docker.containers { project = name }), 1, "the stack was not taken down")
  T.ok(volume_there(name .. "_shared"))
  -- once the other project is gone, down goes through
  T.ok(compose.down { project_dir = other }:apply(new_ctx()))
  T.ok(down:apply(new_ctx()))
  T.ok(not volume_there(name .. "_shared"))
  T.eq(#assert(compose.leftovers(name, true)), 0)
end)

T.test("up with remove_orphans: a service removed from the compose file after an up without it is taken down", function()
  local two = sleeper("a", "") .. "  b:\n    image: IMAGE\n    stop_signal: SIGKILL\n    command: [\"sh\", \"-c\", \"while true; do sleep 1; done\"]\n"
  local dir = stack(("ptc%dorph"):format(pid), two)
  local name = compose.project_name(dir)
  local ctx = new_ctx()
  T.ok(compose.up { project_dir = dir, wait = "running", timeout = "60s" }:apply(ctx))
  assert(core.write_atomic(dir .. "/docker-compose.yaml", (sleeper("a", ""):gsub("IMAGE", TAG)), 420))
  T.ok(compose.up { project_dir = dir, wait = "running", timeout = "60s" }:apply(ctx))
  T.eq(#assert(docker.containers { project = name, service = "b" }), 1, "b left running: an orphan")
  -- without the option the orphan is not up's business
  T.eq(compose.up { project_dir = dir, wait = "running" }:check(ctx), true)
  local up = compose.up { project_dir = dir, wait = "running", remove_orphans = true, timeout = "60s" }
  local ok, changes = up:check(ctx)
  T.eq(ok, false)
  T.eq(changes, { "orphan container " .. cname(name, "b") .. " (service b): not in the compose file" })
  T.ok(up:apply(ctx))
  T.eq(#assert(docker.containers { project = name, service = "b" }), 0, "the orphan is gone")
  T.eq(up:check(ctx), true)
  T.ok(compose.down { project_dir = dir, remove_orphans = true }:apply(new_ctx()))
end)

T.test("down without remove_orphans and an orphan container: refused, naming it, before anything is taken down", function()
  local two = sleeper("a", "") .. "  b:\n    image: IMAGE\n    stop_signal: SIGKILL\n    command: [\"sh\", \"-c\", \"while true; do sleep 1; done\"]\n"
  local dir = stack(("ptc%dodown"):format(pid), two)
  local name = compose.project_name(dir)
  T.ok(compose.up { project_dir = dir, wait = "running", timeout = "60s" }:apply(new_ctx()))
  assert(core.write_atomic(dir .. "/docker-compose.yaml", (sleeper("a", ""):gsub("IMAGE", TAG)), 420))
  local down = compose.down { project_dir = dir }
  local want = "project " .. name .. ": " .. pat(cname(name, "b")) .. " %(service b%) is not in the compose file: `down` without remove_orphans leaves it"
  local cok, cerr = down:check(new_ctx())
  T.eq(cok, nil); T.match(cerr, want)
  local aok, aerr = down:apply(new_ctx())
  T.eq(aok, nil); T.match(aerr, want)
  T.eq(#assert(docker.containers { project = name }), 2, "nothing was taken down")
  local down2 = compose.down { project_dir = dir, remove_orphans = true }
  T.ok(down2:apply(new_ctx()))
  T.eq(down2:check(new_ctx()), true)
  T.eq(#assert(compose.leftovers(name, true)), 0)
end)

T.test("up under a new project name takes the stack it brought up under the old one down; teardown removes the one it last brought up", function()
  local body = sleeper("svc", '    ports: [ "127.0.0.1:' .. (20000 + pid % 20000) .. ':80" ]\n')
  local dir = stack(("ptc%dren"):format(pid), body)
  local a, b = ("ptc%dnamea"):format(pid), ("ptc%dnameb"):format(pid)
  projects[#projects + 1] = dir   -- cleaned under its folder's name; the two names below by hand
  local ok, err = pcall(function()
    local ctx = new_ctx()
    T.ok(compose.up { project_dir = dir, project = a, wait = "running", timeout = "60s" }:apply(ctx))
    local up_b = compose.up { project_dir = dir, project = b, wait = "running", timeout = "60s" }
    local cok, changes = up_b:check(ctx)
    T.eq(cok, false)
    T.eq(changes[#changes], "project " .. a .. " (this stack under its earlier name) is taken down first")
    -- the old stack holds the published port: b comes up only once a is down
    T.ok(up_b:apply(ctx))
    T.eq(#assert(docker.containers { project = a }), 0, "the stack under the old name is gone")
    T.eq(#assert(docker.networks { project = a }), 0, "its network too")
    T.eq(up_b:check(ctx), true)
    T.eq(ctx.state.project, b)
    -- the option changed back, and teardown comes before any apply: what
    -- the state says was brought up (b) goes
    T.ok(compose.up { project_dir = dir, project = a, wait = "running" }:revert(ctx))
    T.eq(#assert(compose.leftovers(b, false)), 0, "the stack the last apply brought up is gone")
  end)
  for _, n in ipairs { a, b } do exec.run { "docker-compose", "-p", n, "down", "-v", "--remove-orphans", cwd = dir } end
  if not ok then error(err, 0) end
end)

T.test("up: a service whose image was imported anew under its tag is recreated (the stack ran the old image, up said ok)", function()
  local ref = TAG .. "-img"
  assert(docker.image_import(work .. "/rootfs.tar", { ref = ref }))
  local dir = stack(("ptc%dimg"):format(pid), (sleeper("svc", ""):gsub("IMAGE", ref)))
  local name = compose.project_name(dir)
  local ids = { assert(docker.image_inspect(ref)).Id }
  local ok, err = pcall(function()
    local up = compose.up { project_dir = dir, wait = "running", timeout = "60s" }
    local ctx = new_ctx()
    T.ok(up:apply(ctx))
    T.eq(up:check(ctx), true)
    assert(docker.image_import(work .. "/rootfs.tar", { ref = ref }))   -- the tag moves to a new image
    local new_id = assert(docker.image_inspect(ref)).Id
    ids[2] = new_id
    local cok, changes = up:check(ctx)
    T.eq(cok, false)
    T.eq(changes, { "service svc: " .. cname(name, "svc") .. " runs an earlier image of " .. ref .. " (recreated by up)" })
    T.ok(up:apply(ctx))
    T.eq(up:check(ctx), true)
    T.eq(assert(docker.containers { project = name })[1].ImageID, new_id, "recreated from the new image")
    -- an image that is not there any more is no change: up could only try to pull it
    T.ok(docker.image_remove(ref, { force = true }))
    T.eq(up:check(ctx), true)
    T.ok(compose.down { project_dir = dir }:apply(new_ctx()))
  end)
  if not ok then compose.down { project_dir = dir }:apply(new_ctx()) end
  docker.image_remove(ref, { force = true })
  for _, id in ipairs(ids) do docker.image_remove(id, { force = true }) end   -- untagged: by id
  if not ok then error(err, 0) end
end)

T.test("teardown of run_once removes the one-shot's container; its network too when nothing else of the project runs", function()
  local dir = stack(("ptc%donce"):format(pid), sleeper("svc", "") ..
    "  init:\n    image: IMAGE\n    command: [\"sh\", \"-c\", \"echo init done\"]\n")
  local name = compose.project_name(dir)
  local ro = compose.run_once { project_dir = dir, service = "init", timeout = "60s" }
  local ctx = new_ctx()
  T.ok(ro:apply(ctx))
  T.eq(#assert(docker.containers { project = name, service = "init" }), 1)
  T.eq(ro:revert(ctx), true)
  T.eq(#assert(compose.leftovers(name, false)), 0, "container and network gone")
  T.eq(ro:revert(ctx), false, "nothing left to undo")
  -- with the rest of the stack up (another resource's), only the one-shot goes
  T.ok(ro:apply(ctx))
  T.ok(compose.up { project_dir = dir, services = { "svc" }, wait = "running", timeout = "60s" }:apply(new_ctx()))
  T.eq(ro:revert(ctx), true)
  T.eq(#assert(docker.containers { project = name, service = "init" }), 0)
  T.eq(#assert(docker.containers { project = name, service = "svc" }), 1, "the other service stays")
  T.eq(#assert(docker.networks { project = name }), 1, "its network stays")
  T.ok(compose.down { project_dir = dir }:apply(new_ctx()))
end)

T.test("teardown of up with the project folder gone: the stack it brought up is removed through the engine", function()
  local dir = stack(("ptc%dgone"):format(pid), sleeper("svc", "    volumes: [ \"/anon\" ]\n"))
  local name = compose.project_name(dir)
  local up = compose.up { project_dir = dir, wait = "running", timeout = "60s" }
  local ctx = new_ctx()
  T.ok(up:apply(ctx))
  local anon = docker.containers { project = name }[1].Mounts[1].Name
  assert(os.rename(dir, dir .. ".moved"))
  local ok, err = pcall(function()
    local details = {}
    ctx.detail = function(_, d) details[#details + 1] = d end
    T.eq(up:revert(ctx), true)
    T.eq(#assert(compose.leftovers(name, false)), 0, "containers and network gone")
    T.ok(not volume_there(anon), "its anonymous volume too")
    T.eq(details[#details], "project folder " .. dir .. " does not exist; 1 containers removed through the engine")
    T.eq(up:revert(ctx), false, "nothing left")
  end)
  assert(os.rename(dir .. ".moved", dir))   -- for the clean-up below when this failed
  if not ok then error(err, 0) end
end)

-- clean up whatever a failed test left (newest first: a later stack may use an earlier one's volume)
for i = #projects, 1, -1 do
  local dir = projects[i]
  local name = compose.project_name(dir)
  local left = compose.leftovers(name, true)
  if left and #left > 0 then exec.run { "docker-compose", "-p", name, "down", "-v", "--remove-orphans", cwd = dir } end
end
docker.image_remove(TAG, { force = true })
os.exit(T.done())
