-- tests/leaks/recipe.lua: a small recipe for the valgrind leak check
-- (tests/leaks/run.sh): custom steps that run a process and use JSON and
-- YAML (including a parse error), and,
-- with -e with_fs=true (when the fs module is built in), fs resources: a
-- folder, a file, an .env file, and a teardown block that removes them.
recipe { name = "leak-check", description = "touches the C paths of apply, plan and teardown" }
local v = vars { dir = "./leaks-out", with_fs = false, password = secret "leak-check-pw" }
local exec = require "provision._exec"
local json = require "provision.json"
local yaml = require "provision.yaml"

check "a shell to run" { check = function() return exec.which("sh") ~= nil, "no sh on PATH" end }

step "project folder" {
  describe = "folder " .. v.dir,
  check = function() return io.open(v.dir .. "/.keep") ~= nil end,
  apply = function(ctx)
    local r = assert(exec.run { "mkdir", "-p", v.dir })
    if r.status ~= 0 then return nil, "mkdir: " .. r.output end
    local f = assert(io.open(v.dir .. "/.keep", "w")); f:close()
    ctx:created { type = "file", path = v.dir .. "/.keep" }
  end,
  revert = function(ctx) os.remove(v.dir .. "/.keep") end,
}

step "settings" {
  describe = "settings.json",
  check = function()
    local f = io.open(v.dir .. "/settings.json")
    if not f then return false end
    local t = json.decode(f:read("a")); f:close()
    return t ~= nil and t.port == 8080
  end,
  apply = function(ctx)
    local text = json.encode({ port = 8080, names = json.array { "a", "b" }, nested = { ok = true } }, { pretty = true })
    local f = assert(io.open(v.dir .. "/settings.json", "w")); f:write(text); f:close()
    ctx:created { type = "file", path = v.dir .. "/settings.json" }
  end,
  revert = function(ctx) os.remove(v.dir .. "/settings.json") end,
}

step "process output" {
  describe = "a file a process writes",
  check = function() return io.open(v.dir .. "/ran") ~= nil end,
  apply = function(ctx)
    local r = assert(exec.run { "sh", "-c", "echo ran > ran; cat", cwd = v.dir, input = "input\n", timeout = 30,
                                env = { LEAK_CHECK = "1" } })
    if r.status ~= 0 or r.output ~= "input\n" then return nil, "sh: status " .. r.status .. ": " .. r.output end
    ctx:log("sh said " .. r.output:gsub("\n", ""))
    ctx:created { type = "file", path = v.dir .. "/ran" }
  end,
  revert = function(ctx) os.remove(v.dir .. "/ran") end,
}

step "compose file" {
  describe = "a YAML file, loaded back",
  check = function()
    local t = yaml.load_file(v.dir .. "/compose.yaml")
    return t ~= nil and t.services ~= nil and t.services.web.ports[1] == "8080:80"
  end,
  apply = function(ctx)
    local doc = assert(yaml.load([[
x-common: &common
  image: nginx:1.27
  environment: { A: "1", B: yes }
services:
  web:
    <<: *common
    ports: ["8080:80"]
  worker:
    <<: *common
    command: [sh, -c, "echo hi"]
]]))
    local bad, err = yaml.load("a: [unclosed\n")
    if bad ~= nil or not err then return nil, "a broken YAML text loaded" end
    local f = assert(io.open(v.dir .. "/compose.yaml", "w")); f:write(yaml.dump(doc)); f:close()
    ctx:created { type = "file", path = v.dir .. "/compose.yaml" }
  end,
  revert = function(ctx) os.remove(v.dir .. "/compose.yaml") end,
}

if v.with_fs then
  step "fs resources" {
    fs.directory(v.dir .. "/conf"),
    fs.file { path = v.dir .. "/conf/app.conf", content = "port = 8080\n", mode = "0640" },
    fs.env_file { path = v.dir .. "/.env", values = { AIRFLOW_UID = 50000, NOTE = "it's here", PASSWORD = v.password } },
  }
  teardown { fs.absent(v.dir) }
end
