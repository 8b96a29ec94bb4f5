-- docker-host: a fresh Debian or Ubuntu server made ready for the quick start:
-- Docker Engine and Compose from the distribution's own packages, the engine
-- running (and enabled at boot) and answering on its socket, and optionally a
-- user in the `docker` group. Re-running it changes nothing and spawns no
-- process: every check reads the dpkg database, files and the socket.
--
--   provision recipes/docker-host.lua                  # as root
--   provision recipes/docker-host.lua -e user=alice    # alice may use docker
--   provision recipes/docker-host.lua -e compose=v1    # docker-compose (1.29)
--
-- compose: auto (default) installs the Compose v2 plugin where the
-- distribution packages one (Ubuntu: docker-compose-v2; Debian 13 and later:
-- docker-compose), else the standalone docker-compose (Debian 12: 1.29.2);
-- an installed Compose of either kind is kept. v2 insists on the plugin; v1
-- on the standalone docker-compose.
recipe {
  name = "docker-host",
  description = "Docker Engine and Compose from the distribution's packages, running and answering",
}

local v = vars {
  user = "",                          -- add this user to the docker group ("" : nobody)
  compose = "auto",                   -- auto | v2 | v1
  socket = "/var/run/docker.sock",    -- where the engine answers
  wait = "60s",                       -- how long to wait for the engine after starting it
}

if v.compose ~= "auto" and v.compose ~= "v1" and v.compose ~= "v2" then
  error(("compose must be auto, v1 or v2, not %q"):format(v.compose))
end
local wait = assert(require("provision._core").duration(v.wait), "wait must be a duration such as 60s")

local ENGINE_PACKAGES = { "docker.io", "docker-ce", "moby-engine" }
local PLUGIN_DIRS = {
  "/usr/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins",
  "/usr/local/libexec/docker/cli-plugins", "/usr/local/lib/docker/cli-plugins",
}

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close(); return true end
  return false
end

-- the Compose that is there: "v2" (the docker CLI plugin), "v1" (docker-compose) or nil
local function compose_present(want)
  if want ~= "v1" then
    for _, d in ipairs(PLUGIN_DIRS) do
      if exists(d .. "/docker-compose") then return "v2" end
    end
  end
  if want ~= "v2" and exec.which("docker-compose") then return "v1" end
  return nil
end

-- apt-get install, recording what this recipe installed: teardown removes
-- only that (and only while it is still the version installed here)
local function install(ctx, names)
  return pkg.install(ctx, names, { max_age = 86400, record = true })
end
local remove_installed = pkg.remove_created

-- Which Compose package to install. Asks apt (apply only: this spawns apt-cache).
local function compose_package(ctx)
  local d = pkg.distro() or { id = "?", version_id = "", pretty = "this system" }
  local major = tonumber((d.version_id or ""):match("^(%d+)")) or 0
  local v2_candidates = { "docker-compose-v2", "docker-compose-plugin" }
  if d.id == "debian" and major >= 13 then
    v2_candidates[#v2_candidates + 1] = "docker-compose"   -- Debian 13+: it is the v2 plugin
  end
  if v.compose == "v1" then return "docker-compose" end
  for _, name in ipairs(v2_candidates) do
    if pkg.candidate(name) then return name end
  end
  if v.compose == "v2" then
    return nil, ("%s packages no Compose v2 plugin (none of %s); use -e compose=v1 " ..
      "(docker-compose) or -e compose=auto"):format(d.pretty, table.concat(v2_candidates, ", "))
  end
  return "docker-compose"
end

check "Debian or Ubuntu" { pkg.supported {} }

step "docker engine" {
  describe = "Docker Engine (docker.io)",
  check = function(ctx)
    local t, err = pkg.query(ENGINE_PACKAGES)
    if not t then return nil, err end
    for _, n in ipairs(ENGINE_PACKAGES) do
      if t[n] and t[n].installed then return true end
    end
    if exec.which("dockerd") then return true end   -- installed by other means
    return false, "install docker.io (no Docker Engine: none of " .. table.concat(ENGINE_PACKAGES, ", ") .. ")"
  end,
  apply = function(ctx) return install(ctx, { "docker.io" }) end,
  revert = remove_installed,
}

step "docker compose" {
  describe = "Docker Compose (" .. v.compose .. ")",
  check = function(ctx)
    local have = compose_present(v.compose)
    if have then
      ctx:log("compose " .. have .. " is there")
      return true
    end
    local want = v.compose == "auto" and "Compose (the v2 plugin where packaged, else docker-compose)"
      or v.compose == "v2" and "the Compose v2 plugin" or "docker-compose (v1)"
    return false, "install " .. want
  end,
  apply = function(ctx)
    local ok, err = pkg.update_lists(ctx, 86400)   -- candidates need current lists
    if not ok then return nil, err end
    local name, why = compose_package(ctx)
    if not name then return nil, why end
    return install(ctx, { name })
  end,
  revert = remove_installed,
}

step "docker service" {
  service.running { name = "docker", enabled = true, socket = v.socket, wait = v.wait },
}

local PING = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
local VERSION = "GET /version HTTP/1.0\r\nHost: docker\r\n\r\n"

-- ping() -> true | nil, why
local function ping()
  local reply, err = service.socket_request(v.socket, PING, 5)
  if not reply then return nil, err end
  local code = reply:match("^HTTP/%d%.%d (%d+)")
  if code == "200" and reply:match("\r\n\r\nOK$") then return true end
  return nil, ("%s: /_ping answered %s"):format(v.socket, (reply:match("^([^\r\n]*)") or "nothing"))
end

step "docker answers" {
  describe = "the engine answers /_ping on " .. v.socket,
  check = function(ctx)
    local ok, err = ping()
    if not ok then return false, "wait for the engine: " .. err end
    local reply = service.socket_request(v.socket, VERSION, 5)
    local body = reply and reply:match("\r\n\r\n(.*)$")
    local info = body and json.decode(body)
    if type(info) == "table" and info.Version then
      ctx:detail("Docker " .. info.Version .. " (API " .. tostring(info.ApiVersion) .. ")")
    end
    return true
  end,
  apply = function(ctx)
    local deadline = require("provision._core").now() + wait
    local err
    repeat
      local ok
      ok, err = ping()
      if ok then return true end
      ctx:spin("waiting for the engine")
      if ctx.interrupted() then return nil, "interrupted" end
      require("provision._core").sleep(0.5)
    until require("provision._core").now() >= deadline
    return nil, ("the engine does not answer on %s after %s: %s (see `journalctl -u docker` " ..
      "or /var/log/docker.log)"):format(v.socket, v.wait, err)
  end,
}

-- /etc/passwd and /etc/group, read in-process
local function user_exists(name)
  for line in io.lines("/etc/passwd") do
    if line:match("^([^:]*)") == name then return true end
  end
  return false
end

local function group_members(group)
  for line in io.lines("/etc/group") do
    local g, members = line:match("^([^:]*):[^:]*:[^:]*:(.*)$")
    if g == group then
      local set = {}
      for m in members:gmatch("[^,%s]+") do set[m] = true end
      return set
    end
  end
  return nil
end

if v.user ~= "" then
  step "docker group" {
    describe = "user " .. v.user .. " in the docker group",
    check = function(ctx)
      if not user_exists(v.user) then
        return nil, ("there is no user %q (create it first, or leave -e user= empty)"):format(v.user)
      end
      local members = group_members("docker")
      if not members then return nil, "there is no docker group (the docker.io package makes it)" end
      if members[v.user] then return true end
      return false, "add " .. v.user .. " to the docker group"
    end,
    apply = function(ctx)
      local r, err = exec.run { "usermod", "-aG", "docker", v.user }
      if not r then return nil, "usermod: " .. err end
      if r.status ~= 0 then return nil, "usermod -aG docker " .. v.user .. ": " .. r.output end
      ctx.state.added = v.user
      ctx:detail(v.user .. " must log in again for the group to apply")
      return true
    end,
    revert = function(ctx)
      local who = ctx.state.added
      if not who then return true end
      local members = group_members("docker")
      if not members or not members[who] then return true end
      local r, err = exec.run { "gpasswd", "-d", who, "docker" }
      if not r then return nil, "gpasswd: " .. err end
      if r.status ~= 0 then return nil, "gpasswd -d " .. who .. " docker: " .. r.output end
      return true
    end,
  }
end
