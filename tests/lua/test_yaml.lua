-- tests/lua/test_yaml.lua: provision.yaml (libyaml loader, dump) and the
-- Airflow compose files checked against PyYAML and `docker-compose config`.
local T = dofile "tests/lua/harness.lua"
local yaml = require "provision.yaml"
local json = require "provision.json"
local exec = require "provision._exec"
local compose = require "provision.compose"
local core = require "provision._core"

local function load(s) return assert(yaml.load(s)) end

T.test("scalars typed as YAML 1.1 (PyYAML, Compose v1)", function()
  local v = load([[
i: 42
neg: -7
hex: 0x1F
oct: 017
bin: 0b101
sexa: 1:30
port: 22:22
notsexa: 0:0
str_port: 8080:8080
f: 1.5
f2: .5
f3: 1.0e+3
notf: 1e3
inf: -.inf
t: yes
t2: True
f4: off
n1: ~
n2: null
n3:
q1: 'true'
q2: "42"
under: 1_000
lead0: 09
ver: 2.9.3
]])
  T.eq(v.i, 42); T.eq(math.type(v.i), "integer")
  T.eq(v.neg, -7); T.eq(v.hex, 31); T.eq(v.oct, 15); T.eq(v.bin, 5)
  T.eq(v.sexa, 90); T.eq(v.port, 1342); T.eq(v.notsexa, "0:0"); T.eq(v.str_port, "8080:8080")
  T.eq(v.f, 1.5); T.eq(math.type(v.f), "float"); T.eq(v.f2, 0.5); T.eq(v.f3, 1000.0)
  T.eq(v.notf, "1e3"); T.eq(v.inf, -math.huge)
  T.eq(v.t, true); T.eq(v.t2, true); T.eq(v.f4, false)
  T.eq(v.n1, yaml.null); T.eq(v.n2, yaml.null); T.eq(v.n3, yaml.null)
  T.eq(v.q1, "true"); T.eq(v.q2, "42"); T.eq(v.under, 1000); T.eq(v.lead0, "09"); T.eq(v.ver, "2.9.3")
  T.ok(yaml.null == json.null, "yaml.null is json.null")
end)

T.test("a named volume with no options is kept as yaml.null", function()
  local v = load("volumes:\n  pgdata:\n  other: {}\n")
  T.eq(v.volumes.pgdata, yaml.null)
  T.eq(next(v.volumes.other), nil)
end)

T.test("anchors, aliases and << merges (explicit keys win; earlier maps win)", function()
  local v = load([[
base: &b { image: x, env: &e { A: "1", B: "2" }, user: "0" }
svc:
  <<: *b
  user: "1"
  env:
    <<: *e
    B: "3"
multi:
  <<: [ { a: 1, b: 1 }, { b: 2, c: 2 } ]
  c: 3
after:
  x: 1
  <<: { x: 2, y: 2 }
]])
  T.eq(v.svc.image, "x"); T.eq(v.svc.user, "1")
  T.eq(v.svc.env, { A = "1", B = "3" })
  T.eq(v.base.env, { A = "1", B = "2" }, "the anchor is not changed by the merge")
  T.eq(v.multi, { a = 1, b = 1, c = 3 })
  T.eq(v.after, { x = 1, y = 2 })
  local a = load("a: &x [1, 2]\nb: *x\n")
  T.ok(a.a == a.b, "an alias is the anchored table")
end)

T.test("sequences are marked, so empty ones stay lists", function()
  local v = load("a: []\nb: {}\nc: [1]\n")
  T.ok(yaml.is_array(v.a)); T.ok(not yaml.is_array(v.b)); T.ok(yaml.is_array(v.c))
  T.eq(json.encode(v), '{"a":[],"b":{},"c":[1]}')
end)

T.test("explicit tags and block scalars", function()
  local v = load("a: !!str 12\nb: !!float 1\nc: |\n  line 1\n  line 2\nd: >-\n  folded\n  text\n")
  T.eq(v.a, "12"); T.eq(v.b, 1.0); T.eq(math.type(v.b), "float")
  T.eq(v.c, "line 1\nline 2\n"); T.eq(v.d, "folded text")
end)

T.test("errors give line and column", function()
  local v, err = yaml.load("a: 1\nb: [1, 2\nc: 3\n", "x.yaml")
  T.eq(v, nil)
  T.match(err, "^x%.yaml: line %d+ column %d+: ")
  local _, err2 = yaml.load("a: 1\nb: *nothere\n")
  T.eq(err2, "line 2 column 4: unknown anchor 'nothere'")
  local _, err3 = yaml.load("a: b: c\n")
  T.match(err3, "^line 1 column 5: mapping values are not allowed")
  local _, err4 = yaml.load("a:\n  <<: [1]\n")
  T.match(err4, "^line 2 column 7: a merge key")
  local _, err5 = yaml.load_file("/nonexistent/x.yaml")
  T.eq(err5, "/nonexistent/x.yaml: No such file or directory", "the path once")
  local _, err6 = yaml.load_file("/")
  T.eq(err6, "/: Is a directory", "the path once")
  T.raises(function() yaml.load(nil) end, "expected a string")
end)

T.test("empty documents load as null; the first document is taken", function()
  T.eq(load(""), yaml.null)
  T.eq(load("--- 1\n--- 2\n"), 1)
end)

T.test("dump: deterministic, and loads back the same", function()
  local v = {
    plain = "word", yes = "yes", num = "1.5", lead = " x", nl = "a\nb", empty = "",
    list = yaml.array { 1, 2.5, "x: y", true, yaml.null, { k = "v" } }, emptylist = yaml.array {},
    emptymap = {}, port = "22:22", hash = "#x", ref = "${A:-b}", big = 1e300, neg = -3,
    tab = "a\tb", quote = 'say "hi"', utf8 = "ünï", key_ok = { ["with space"] = 1, ["8080"] = "x" },
  }
  local s = yaml.dump(v)
  T.eq(yaml.dump(v), s, "the same text twice")
  local back = load(s)
  T.eq(back, v)
  T.ok(yaml.is_array(back.emptylist), "[] stays a list")
  T.match(s, "\n\"yes\": \"yes\"\n", "a key that would load as a boolean is quoted")
  T.match(s, "^big: ")
  T.raises(function() local t = {}; t.t = t; yaml.dump(t) end, "contains itself")
  T.raises(function() yaml.dump { f = print } end, "cannot dump a function")
end)

-- ---- the Airflow compose files ----

local FIX = "tests/fixtures/airflow/"
local VERSIONS = { "2.1.3", "2.9.3", "3.2.0" }

local function python_yaml(path, code)
  local r = exec.run { "python3", "-c", code, path }
  if not r or r.status ~= 0 then return nil, r and r.output or "python3 failed" end
  return assert(json.decode(r.output))
end

local have_pyyaml = exec.which("python3") and
  (exec.run { "python3", "-c", "import yaml" } or {}).status == 0

for _, v in ipairs(VERSIONS) do
  local file = FIX .. "docker-compose-" .. v .. ".yaml"
  if have_pyyaml then
    T.test("airflow " .. v .. ": loads exactly as PyYAML (Compose v1's parser) loads it", function()
      local want = assert(python_yaml(file,
        "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"))
      local got = assert(yaml.load_file(file))
      T.eq(got, want)
    end)
  else
    T.skip("airflow " .. v .. ": PyYAML", "python3 with yaml is not installed")
  end
end

-- what `docker-compose config` prints, normalized as it normalizes
local function realdir(d) return compose.realpath and compose.realpath(d) or d end

local function norm_path(dir, p)
  if p == "." then return dir end
  if p:sub(1, 2) == "./" then p = dir .. "/" .. p:sub(3) end
  if p:sub(1, 1) ~= "/" and not p:find("^[%w][%w_.-]*$") then p = dir .. "/" .. p end
  return (p:gsub("/%./", "/"):gsub("/%.$", ""):gsub("/$", ""))
end

local function norm_volume(dir, v)
  if type(v) ~= "string" then return v end
  local src, dst, mode = v:match("^([^:]+):([^:]+):?(.*)$")
  if not src then return v end
  if mode == "" then mode = "rw" end
  return norm_path(dir, src) .. ":" .. dst .. ":" .. mode
end

local function env_map(e)
  local out = {}
  if type(e) ~= "table" then return out end
  if yaml.is_array(e) then
    for _, kv in ipairs(e) do
      local k, val = kv:match("^([^=]+)=(.*)$")
      if k then out[k] = val end
    end
  else
    for k, val in pairs(e) do
      if val ~= yaml.null then out[k] = tostring(val) end
    end
  end
  return out
end

-- what the service's environment is, with env_file merged (as config does)
local function service_env(project, svc)
  local env = {}
  local files = svc.env_file
  if type(files) == "string" then files = { files } end
  for _, f in ipairs(files or {}) do
    local path = type(f) == "table" and f.path or f
    local vals = assert(compose.read_env_file(norm_path(project.dir, path)))
    for k, val in pairs(vals) do env[k] = val end
  end
  for k, val in pairs(env_map(svc.environment)) do env[k] = val end
  return env
end

local function unescape(v)   -- config prints values before `$$` becomes `$`
  if type(v) == "string" then return (v:gsub("%$%$", "$")) end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = unescape(x) end
  return out
end

local have_v1 = exec.which("docker-compose") ~= nil
for _, v in ipairs(VERSIONS) do
  local name = "airflow " .. v .. ": services, images, environment, volumes, healthchecks match `docker-compose config`"
  if not (have_v1 and have_pyyaml) then
    T.skip(name, "docker-compose or PyYAML is not installed")
  else
    T.test(name, function()
      local dir = realdir(T.tmpdir())
      local text = assert(core.read_file(FIX .. "docker-compose-" .. v .. ".yaml"))
      assert(core.write_atomic(dir .. "/docker-compose.yaml", text, 420))
      assert(core.write_atomic(dir .. "/.env", "AIRFLOW_UID=50000\nAIRFLOW_GID=0\n", 384))
      local r = assert(exec.run { "docker-compose", "config", cwd = dir })
      T.eq(r.status, 0, "docker-compose config: " .. r.output)
      assert(core.write_atomic(dir .. "/config.yaml", (r.output:gsub("^[^\n]*WARNING[^\n]*\n", "")), 420))
      local want = assert(python_yaml(dir .. "/config.yaml",
        "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"))
      want = unescape(want)
      local project = assert(compose.load_project { project_dir = dir })
      local names, wnames = {}, {}
      for n in pairs(project.services) do names[#names + 1] = n end
      for n in pairs(want.services) do wnames[#wnames + 1] = n end
      table.sort(names); table.sort(wnames)
      T.eq(names, wnames, "service names")
      T.ok(#names >= 6, "all the services are there")
      for _, n in ipairs(names) do
        local got, exp = project.services[n], want.services[n]
        T.eq(got.image, exp.image, n .. " image")
        T.eq(service_env(project, got), env_map(exp.environment), n .. " environment")
        local vols = {}
        for i, vol in ipairs(got.volumes or {}) do vols[i] = norm_volume(dir, vol) end
        T.eq(vols, exp.volumes or {}, n .. " volumes")
        T.eq(got.healthcheck, exp.healthcheck, n .. " healthcheck")
        T.eq(got.user, exp.user, n .. " user")
        T.eq(got.command, exp.command, n .. " command")
      end
      local top, wtop = {}, {}
      for k in pairs(project.doc.volumes or {}) do top[#top + 1] = k end
      for k in pairs(want.volumes or {}) do wtop[#wtop + 1] = k end
      table.sort(top); table.sort(wtop)
      T.eq(top, wtop, "named volumes")
    end)
  end
end

T.test("dump: a key longer than YAML's 1024-character simple key loads back", function()
  local k = ("x - .inf "):rep(200)
  local v = { [k] = yaml.null, short = { 1, 2 }, [k .. "2"] = { a = 1 } }
  local back, err = yaml.load(yaml.dump(v))
  T.ok(back, err)
  T.eq(back[k], yaml.null); T.eq(back.short[2], 2); T.eq(back[k .. "2"].a, 1)
end)

T.test("dump: NEL, LS, PS, C1 controls, BOM and U+FFFE/FFFF are escaped, so they load back (found by fuzzing)", function()
  -- "\N" in a double-quoted scalar is U+0085; dumped raw, it read back as a line break
  local v = assert(yaml.load('name: "caf\\u00e9 \\NO001F600"\n'))
  T.eq(v.name, "caf\u{E9} \u{85}O001F600")
  local all = "a\u{85}b\u{2028}c\u{2029}d\u{80}e\u{9F}f\u{FEFF}g\u{FFFE}h\u{FFFF}i\u{FEFE}j\u{A0}k"
  for _, x in ipairs { v.name, all, "\u{85}", "x\u{2028}" } do
    local text = yaml.dump { s = x, [x] = 1 }
    T.ok(not text:find("\u{85}", 1, true) and not text:find("\u{2028}", 1, true), "escaped in " .. text)
    local back, err = yaml.load(text)
    T.ok(back, err)
    T.eq(back.s, x); T.eq(back[x], 1)
  end
  T.match(yaml.dump { s = all }, [[\N]])
end)

T.test("dump: a string that is not UTF-8 is refused with a clear error", function()
  T.raises(function() yaml.dump { s = "caf\xE9" } end, "not UTF%-8 text")
  T.raises(function() yaml.dump { ["\xFF"] = 1 } end, "not UTF%-8 text")
end)

os.exit(T.done())
