-- recipes/demo-stack.lua: the shape of the Airflow quick start, fully
-- offline, on any machine with Docker: no registry, no internet.
--
--   provision recipes/demo-stack.lua            # build the image, bring the stack up
--   provision recipes/demo-stack.lua            # again: every step ok, nothing changed
--   provision teardown recipes/demo-stack.lua   # stack down with its volumes, the image if
--                                               # this recipe imported it, folder gone
--
-- The steps mirror airflow-quickstart.lua: preflight checks, a project
-- folder, a compose file, a .env, a one-shot init service run to completion,
-- the stack up and healthy, then HTTP checks of a JSON health endpoint and
-- an API behind basic auth. The image is made here: a root filesystem of
-- busybox-static plus the scripts in recipes/demo-stack/, packed with the
-- archive module and imported with the docker module.
recipe {
  name = "demo-stack",
  description = "An offline stand-in for the Airflow quick start: init, web, worker, all busybox",
}

local v = vars {
  dir = "./demo-stack",
  busybox = "/bin/busybox",             -- a statically linked busybox (Debian: busybox-static)
  image = "provision-demo/busybox:1",   -- imported again when the root filesystem changes
  host = "localhost",
  web_port = 8081,
  user = "demo",
  password = secret "demo-stack-password",
  greeting = "hello from the provision demo stack",
}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local src = here .. "/demo-stack"
local rootfs = v.dir .. "/image/rootfs"
local rootfs_tar = v.dir .. "/image/rootfs.tar"
local APP = { "init.sh", "web.sh", "worker.sh" }

-- ---------------------------------------------------------------- helpers
local function read(path)
  local text, err = fs.read(path)
  if not text then error(("demo-stack: cannot read %s: %s"):format(path, tostring(err)), 0) end
  return text
end

-- is the ELF file at path statically linked (no PT_INTERP program header)?
local function is_static(path)
  local f = io.open(path, "rb")
  if not f then return nil, path .. ": cannot open" end
  local head = f:read(64) or ""
  if #head < 64 or head:sub(1, 4) ~= "\127ELF" or head:byte(5) ~= 2 then
    f:close(); return nil, path .. ": not a 64-bit ELF executable"
  end
  local phoff = string.unpack("<I8", head, 0x21)
  local phentsize, phnum = string.unpack("<I2I2", head, 0x37)
  f:seek("set", phoff)
  local ph = f:read(phentsize * phnum) or ""
  f:close()
  for i = 0, phnum - 1 do
    if string.unpack("<I4", ph, i * phentsize + 1) == 3 then return false end   -- PT_INTERP
  end
  return true
end

-- the manifest of what the root filesystem must hold: busybox's and the
-- scripts' digests (a cheap check: two hashes and a small file)
local function want_manifest()
  local lines = { "busybox " .. assert(fs.sha256(v.busybox)) }
  for _, n in ipairs(APP) do lines[#lines + 1] = n .. " " .. assert(fs.sha256(src .. "/" .. n)) end
  return table.concat(lines, "\n") .. "\n"
end

local function ours(port)
  return function()
    for _, c in ipairs(docker.containers { project = compose.project_name(v.dir) } or {}) do
      for _, p in ipairs(c.Ports or {}) do
        if p.PublicPort == port then return true end
      end
    end
    return false
  end
end

-- ---------------------------------------------------------------- checks
check "docker engine" {
  describe = "a Docker engine answers",
  check = function()
    local ok, err = docker.ping()
    if ok then return true end
    return false, ("no Docker engine: run provision recipes/docker-host.lua (%s)"):format(err)
  end,
}
local compose_ok = compose.available { min_version = "1.29.1" }   -- service_completed_successfully
check "docker compose" {
  describe = compose_ok:describe(),
  check = function(ctx)
    local ok, why = compose_ok:check(ctx)
    if ok == false and not tostring(why):find("older than", 1, true) then
      return false, ("no Docker Compose: run provision recipes/docker-host.lua (%s)"):format(tostring(why))
    end
    return ok, why
  end,
}
check "static busybox" {
  describe = "a static busybox at " .. v.busybox,
  check = function()
    local ok, err = is_static(v.busybox)
    if ok then return true end
    if ok == false then
      return false, v.busybox .. " is dynamically linked: install busybox-static (apt-get install busybox-static)"
    end
    return false, err .. " (install busybox-static: apt-get install busybox-static)"
  end,
}
check "web port free" { sys.port_free { port = v.web_port, unless = ours(v.web_port) } }

-- ---------------------------------------------------------------- steps
step "project folder" { fs.directory(v.dir) }

step "image root filesystem" {
  describe = "busybox and the demo scripts in " .. rootfs,
  writes = rootfs,   -- for plan: the archive of it, and so the image and start, would change too
  check = function()
    local have = fs.read(rootfs .. "/.provision-manifest")
    if have == want_manifest() then return true end
    return false, have and "busybox or the demo scripts changed: rebuild " .. rootfs or "build " .. rootfs
  end,
  apply = function(ctx)
    local xr = require "provision._exec"
    local list, err = xr.run { v.busybox, "--list" }
    if not list or list.status ~= 0 then return nil, "busybox --list: " .. tostring(err or list.output) end
    if fs.exists(rootfs) then
      local ok, rerr = fs.remove_tree(rootfs)
      if not ok then return nil, rerr end
    end
    for _, d in ipairs { "bin", "etc", "tmp", "app", "data", "proc", "sys", "dev", "root" } do
      local ok, merr = fs.mkdirs(rootfs .. "/" .. d, d == "tmp" and "1777" or "0755")
      if not ok then return nil, merr end
    end
    fs.chmod(rootfs .. "/tmp", "1777")
    local ok, werr = fs.write(rootfs .. "/bin/busybox", read(v.busybox), "0755")
    if not ok then return nil, werr end
    local n = 0
    for applet in list.output:gmatch("[^\n]+") do
      if applet ~= "busybox" then
        local sok, serr = fs.symlink("busybox", rootfs .. "/bin/" .. applet)
        if not sok then return nil, serr end
        n = n + 1
      end
    end
    fs.symlink("bin", rootfs .. "/sbin")
    fs.mkdirs(rootfs .. "/usr", "0755")
    fs.symlink("../bin", rootfs .. "/usr/bin")
    fs.write(rootfs .. "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", "0644")
    fs.write(rootfs .. "/etc/group", "root:x:0:\nnogroup:x:65534:\n", "0644")
    for _, name in ipairs(APP) do
      local aok, aerr = fs.write(rootfs .. "/app/" .. name, read(src .. "/" .. name), "0755")
      if not aok then return nil, aerr end
    end
    fs.write(rootfs .. "/.provision-manifest", want_manifest(), "0644")
    ctx:detail(("busybox with %d applets, %d scripts"):format(n, #APP))
    return true
  end,
}

step "image archive" { archive.create { src = rootfs, dest = rootfs_tar, owner = "root" } }

step "image" { docker.image { name = v.image, from_rootfs = rootfs_tar } }

step "compose file" {
  fs.file { path = v.dir .. "/docker-compose.yaml", content = read(src .. "/docker-compose.yaml"), mode = "0644" },
}

step "environment" {
  fs.env_file {
    path = v.dir .. "/.env",
    values = {
      DEMO_IMAGE = v.image, WEB_PORT = v.web_port, WEB_USER = v.user,
      WEB_PASSWORD = v.password, GREETING = v.greeting,
    },
  },
}

step "initialize" { compose.run_once { project_dir = v.dir, service = "init", timeout = "2m" } }

step "start" { compose.up { project_dir = v.dir, wait = "healthy", timeout = "3m" } }

local web = ("http://%s:%d"):format(v.host, v.web_port)

step "health" {
  http.expect {
    url = web .. "/health", within = "1m",
    json = { init = { status = "healthy" }, worker = { status = "healthy" } },
  },
}

step "API" {
  http.expect {
    url = web .. "/api/hello", user = v.user, password = v.password, within = "1m",
    json = { greeting = v.greeting },
  },
}

-- The image goes only when step "image" imported it (its state records
-- that): `-e image=` may name an image that was there before, which
-- `down --rmi all` would remove as well.
teardown {
  compose.down { project_dir = v.dir, volumes = true, remove_orphans = true },
  undo "image",
  fs.absent(v.dir),
}
