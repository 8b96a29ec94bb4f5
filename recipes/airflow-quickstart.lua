-- recipes/airflow-quickstart.lua: the official "Running Airflow in Docker"
-- quick start, step by step, as a recipe, for Airflow 2.1.x (the default,
-- 2.1.3), later 2.x (2.9.3 tested) and 3.x (3.2.0 tested): the steps are the
-- same, the service names and the checks come from the release (RELEASES).
--
--   provision recipes/airflow-quickstart.lua -e version=3.2.0 -e flower=true
--
--   provision recipes/airflow-quickstart.lua              # bring Airflow up
--   provision plan recipes/airflow-quickstart.lua         # what would change
--   provision teardown recipes/airflow-quickstart.lua     # down --volumes, folder gone
--   provision teardown recipes/airflow-quickstart.lua -e purge=true   # ... and --rmi all
--
-- What the quick start does by hand, and the step that does it here:
--   check Docker (engine, Compose >= 1.29.1 or v2), 4 GiB memory, 2 CPUs,
--   10 GB disk, ports 8080 and 5555 free             -> the checks below
--   mkdir airflow && cd airflow                         -> "project folder"
--   curl -LfO .../docs/apache-airflow/2.1.3/docker-compose.yaml -> "compose file"
--   mkdir -p ./dags ./logs ./plugins (./config: 2.2+) -> "mounted folders"
--   echo -e "AIRFLOW_UID=$(id -u)\nAIRFLOW_GID=0" > .env -> "environment" (AIRFLOW_GID: 2.1 only;
--                                                          COMPOSE_PROFILES=flower: -e flower=true)
--   docker compose up airflow-init                      -> "initialize the database"
--   docker compose up -d                                -> "start"
--   open http://localhost:8080 (airflow/airflow), the REST API, Flower on 5555
--                                                       -> "web server health", "REST API", "Flower"
--     2.x: airflow-webserver, /health, /api/v1/pools with basic auth
--     3.x: airflow-apiserver, /api/v2/monitor/health, /api/v2/pools with a
--          token from POST /auth/token (a secret: never shown)
--   curl -LfO .../airflow.sh; chmod +x airflow.sh       -> "airflow.sh" (-e helper_script=true)
recipe {
  name = "airflow-quickstart",
  description = "Apache Airflow with Docker Compose, as the official quick start does it",
}

local v = vars {
  version = "2.1.3",                  -- the Airflow release whose compose file is used (2.x or 3.x)
  dir = "./airflow",                  -- the project folder
  docs_base = "https://airflow.apache.org/docs/apache-airflow",  -- <docs_base>/<version>/docker-compose.yaml
  image = "",                         -- AIRFLOW_IMAGE_NAME in .env; "" keeps the compose file's apache/airflow:<version>
  uid = sys.uid(),                    -- AIRFLOW_UID: the invoking user's uid
  host = "localhost",                 -- where the published ports answer
  web_port = 8080,                    -- published by the compose file (airflow-webserver, 3.x: airflow-apiserver)
  flower_port = 5555,                 -- published by the compose file (flower)
  flower = false,                     -- 2.2 and later: start Flower (compose profile "flower") and check it; 2.1 always runs it
  user = "airflow",                   -- the web UI / REST API admin account
  password = secret "airflow",        -- its password (the compose file's default)
  min_memory = "4GiB", min_cpus = 2, min_disk = "10GB",
  wait = "10m",                       -- how long to wait for the stack to be healthy
  helper_script = false,              -- also fetch airflow.sh (mode 0755)
  purge = false,                      -- teardown: also remove the images (--rmi all)
}

local DOCKER_HOST_HINT = "run provision recipes/docker-host.lua"
local compose_file = v.dir .. "/docker-compose.yaml"
local compose_url = v.docs_base .. "/" .. v.version .. "/docker-compose.yaml"
local reveal = require("provision.secret").reveal
local core = require "provision._core"

-- What each line of releases runs, as its docker-compose.yaml and its
-- "Running Airflow in Docker" page have it. `services`: what the compose
-- file must have (checked before anything changes, see "compose file shape").
local RELEASES = {
  ["2.1"] = {   -- 2.0.x and 2.1.x: Flower always on, basic auth, AIRFLOW_GID in .env
    web = "airflow-webserver", health = "/health", components = { "metadatabase", "scheduler" },
    services = { "postgres", "redis", "airflow-webserver", "airflow-scheduler", "airflow-worker",
      "airflow-init", "flower" },
    folders = { "dags", "logs", "plugins" }, gid = true, pools = "/api/v1/pools", auth = "basic",
  },
  ["2.x"] = {   -- 2.2 to 2.x: a triggerer, ./config, Flower behind the profile "flower"
    web = "airflow-webserver", health = "/health", components = { "metadatabase", "scheduler", "triggerer" },
    services = { "postgres", "redis", "airflow-webserver", "airflow-scheduler", "airflow-worker",
      "airflow-triggerer", "airflow-init", "flower" },
    folders = { "dags", "logs", "plugins", "config" }, flower_profile = "flower", pools = "/api/v1/pools",
    auth = "basic",
  },
  ["3.x"] = {   -- 3.x: the api-server and a dag-processor; the REST API wants a token
    web = "airflow-apiserver", health = "/api/v2/monitor/health",
    components = { "metadatabase", "scheduler", "triggerer", "dag_processor" },
    services = { "postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
      "airflow-worker", "airflow-triggerer", "airflow-init", "flower" },
    folders = { "dags", "logs", "plugins", "config" }, flower_profile = "flower", pools = "/api/v2/pools",
    auth = "token",
  },
}
local function release_of(version)
  local major, minor = tostring(version):match("^(%d+)%.(%d+)%.%d+$")
  major, minor = tonumber(major), tonumber(minor)
  if major == 2 then return minor <= 1 and RELEASES["2.1"] or RELEASES["2.x"] end
  if major == 3 then return RELEASES["3.x"] end
  -- exit 2 before anything is checked or changed
  error(("version %s: this recipe knows the quick start of Airflow 2.x and 3.x (X.Y.Z, e.g. 2.1.3, 2.9.3, 3.2.0)")
    :format(tostring(version)), 0)
end
local rel = release_of(v.version)
-- Flower runs when the release has no profile for it (2.1), or -e flower=true
local flower_on = not rel.flower_profile or v.flower

-- A preflight check whose failure says how to fix it: the resource's own
-- message, with the fix added when the thing is missing altogether.
local function needs(res, what)
  return {
    describe = res:describe(),
    check = function(ctx)
      local ok, why = res:check(ctx)
      if ok == false then
        why = type(why) == "table" and table.concat(why, "; ") or tostring(why or "")
        if not why:find("older than", 1, true) then
          return false, ("no %s: %s (%s)"):format(what, DOCKER_HOST_HINT, why)
        end
      end
      return ok, why
    end,
  }
end

-- The containers of this project (of one service when given: the engine
-- lists only those)
local function project_containers(service)
  return docker.containers { project = compose.project_name(v.dir), service = service } or {}
end

-- Is `port` published by a container of this project? Then the port being
-- taken is no reason to stop: it is this stack, already up.
local function ours(port)
  return function()
    for _, c in ipairs(project_containers()) do
      for _, p in ipairs(c.Ports or {}) do
        if p.PublicPort == port then return true end
      end
    end
    return false
  end
end

-- The shape of the compose file: the services this recipe runs and checks
-- for this release, Flower with or without its profile. Why a preflight
-- check and not a step after the download: a file of another shape (a
-- release that renamed a service) is then refused before anything is made,
-- with the difference named, instead of a stack that comes up without the
-- service the checks wait for, or a wait that times out after 10 minutes.
-- It reads the downloaded file when there is one (a re-run costs no
-- request), else fetches the file once from where the step will.
local function compose_text()
  local text = fs.read(compose_file)
  if text then return text, compose_file end
  local res, err = http.request { url = compose_url, timeout = 60 }
  if not res then return nil, err end
  if res.status ~= 200 then
    return nil, ("GET %s: status %d: Airflow %s has no quick start compose file there"):format(compose_url, res.status, v.version)
  end
  return res.body, compose_url
end

local function compose_shape()
  local text, from = compose_text()
  if not text then return false, from end
  local doc, yerr = yaml.load(text, from)
  if type(doc) ~= "table" or type(doc.services) ~= "table" then
    return false, ("%s: provision cannot read it as a compose file with services (%s)"):format(from, yerr or "no services:")
  end
  local missing, have = {}, {}
  for name in pairs(doc.services) do have[#have + 1] = name end
  table.sort(have)
  for _, name in ipairs(rel.services) do
    if type(doc.services[name]) ~= "table" then missing[#missing + 1] = name end
  end
  local diffs = {}
  if #missing > 0 then diffs[#diffs + 1] = "no service " .. table.concat(missing, ", ") end
  local fl = doc.services.flower
  local profiles = type(fl) == "table" and type(fl.profiles) == "table" and table.concat(fl.profiles, ",") or ""
  if type(fl) == "table" and profiles ~= (rel.flower_profile or "") then
    diffs[#diffs + 1] = rel.flower_profile
      and ("flower is not behind the profile %q (profiles: %s)"):format(rel.flower_profile, profiles ~= "" and profiles or "none")
      or ("flower is behind the profile %q, which 2.1 did not have"):format(profiles)
  end
  if #diffs == 0 then return true end
  return false, ("%s is not the quick start this recipe knows for Airflow %s: %s (services: %s)")
    :format(from, v.version, table.concat(diffs, "; "), table.concat(have, ", "))
end

check "docker engine" (needs(docker.engine {}, "Docker engine"))
check "docker compose" (needs(compose.available { min_version = "1.29.1" }, "Docker Compose"))
check "memory" { sys.memory { min = v.min_memory } }
check "cpus" { sys.cpus { min = v.min_cpus } }
check "disk space" { sys.disk { path = v.dir, min = v.min_disk } }
check "web port free" { sys.port_free { port = v.web_port, unless = ours(v.web_port) } }
if flower_on then
  check "flower port free" { sys.port_free { port = v.flower_port, unless = ours(v.flower_port) } }
end
check "compose file shape" {
  describe = ("the compose file of Airflow %s has %s"):format(v.version, table.concat(rel.services, ", ")),
  check = compose_shape,
}

step "project folder" { fs.directory(v.dir) }

step "compose file" { http.file { url = compose_url, dest = compose_file } }

local folders = {}
for _, f in ipairs(rel.folders) do folders[#folders + 1] = v.dir .. "/" .. f end
step "mounted folders" { fs.directory(folders) }

-- .env: what the quick start writes, and the admin account and image when
-- they differ from the compose file's defaults (${_AIRFLOW_WWW_USER_USERNAME:-airflow}, ...)
local env = { AIRFLOW_UID = v.uid }
if rel.gid then env.AIRFLOW_GID = 0 end
if v.user ~= "airflow" then env._AIRFLOW_WWW_USER_USERNAME = v.user end
if reveal(v.password) ~= "airflow" then env._AIRFLOW_WWW_USER_PASSWORD = v.password end
if v.image ~= "" then env.AIRFLOW_IMAGE_NAME = v.image end
if rel.flower_profile and v.flower then env.COMPOSE_PROFILES = rel.flower_profile end
step "environment" { fs.env_file { path = v.dir .. "/.env", values = env } }

step "initialize the database" {
  compose.run_once { project_dir = v.dir, service = "airflow-init", timeout = v.wait },
}

step "start" { compose.up { project_dir = v.dir, wait = "healthy", timeout = v.wait } }

local web = ("http://%s:%d"):format(v.host, v.web_port)

-- /health answers 200 even when the scheduler is down: the JSON says.
local healthy = {}
for _, c in ipairs(rel.components) do healthy[c] = { status = "healthy" } end
step "web server health" {
  http.expect { url = web .. rel.health, within = "3m", json = healthy },
}

-- The REST API: the pools list, with the release's auth. 2.1 keeps the
-- plain http.expect it always had; later releases go through rest_once,
-- where a refused login fails at once (the account is made by airflow-init
-- before the web server starts: waiting would not change the answer).
local REFUSED = "user %s and the password given were refused (%s): the account is the one airflow-init made "
  .. "when the stack was first initialised (-e user=, -e password=)"

-- the first request of rest_once: 3.x's login, 2.x's pools with basic auth
local function first_request()
  if rel.auth == "token" then
    local login = json.encode { username = v.user, password = reveal(v.password) }
    return { method = "POST", url = web .. "/auth/token", body = login,
      headers = { ["Content-Type"] = "application/json" }, timeout = 10 }
  end
  return { url = web .. rel.pools, user = v.user, password = v.password, timeout = 10 }
end

-- rest_once(early?) -> true | false, why (may pass on a later try) | nil, why (will not)
-- early: first_request() sent at the start of the run (the step's prefetch)
local function rest_once(early)
  local res, err = http.answer(early, first_request())
  if rel.auth == "token" then
    if not res then return false, err end
    if res.status == 401 or res.status == 403 then
      return nil, ("POST %s/auth/token: " .. REFUSED):format(web, v.user, res.status)
    end
    local token = (res.status == 200 or res.status == 201) and type(res.json) == "table" and res.json.access_token
    if type(token) ~= "string" or token == "" then
      return false, ("POST %s/auth/token: status %d, no access_token in the answer"):format(web, res.status)
    end
    -- the token, a secret: masked wherever it could show
    res, err = http.request { url = web .. rel.pools, headers = { Authorization = "Bearer " .. secret(token) },
      timeout = 10 }
  end
  if not res then return false, err end
  if res.status == 401 or res.status == 403 then
    return nil, ("GET %s%s: " .. REFUSED):format(web, rel.pools, v.user, res.status)
  end
  if res.status ~= 200 then return false, ("GET %s%s: status %d"):format(web, rel.pools, res.status) end
  local ok, why = http.contains(res.json, { pools = { { name = "default_pool" } } })
  if not ok then return false, ("GET %s%s: status 200 but %s"):format(web, rel.pools, why) end
  return true
end

if rel.auth == "basic" and not rel.flower_profile then
  step "REST API" {
    http.expect {
      url = web .. rel.pools, user = v.user, password = v.password, within = "2m",
      json = { pools = { { name = "default_pool" } } },
    },
  }
else
  step "REST API" {
    describe = ("%s%s lists default_pool (%s)"):format(web, rel.pools,
      rel.auth == "token" and "a token from POST /auth/token" or "basic auth"),
    -- the first request goes once the preflight checks have passed (port
    -- 8080 free, or this stack's: a password goes to no one else's server),
    -- and the server answers it while the steps before are checked (used
    -- when none of them changed)
    prefetch = function() return http.begin(first_request()) end,
    check = function(ctx)
      local ok, why = rest_once(ctx.early)
      return ok == true, why
    end,
    apply = function(ctx)
      local deadline = core.now() + 120
      while true do
        local ok, why = rest_once()
        if ok then return true end
        if ok == nil or core.now() + 2 > deadline then return nil, why end
        if ctx.spin then ctx:spin("waiting for " .. web .. rel.pools) end
        if not core.sleep(2) then return nil, "interrupted" end
      end
    end,
  }
end

if flower_on then
  step "Flower" {
    http.expect { url = ("http://%s:%d/"):format(v.host, v.flower_port), within = "2m" },
  }
else
  -- Flower off (its profile not asked for): a flower container this project
  -- still has (from an earlier -e flower=true) goes, as the user asked.
  step "Flower" {
    describe = ("Flower off (compose profile %s; -e flower=true turns it on)"):format(rel.flower_profile),
    check = function()
      local left = project_containers("flower")
      if #left == 0 then return true end
      return false, ("flower container %s runs, Flower is off"):format((left[1].Names or { "?" })[1])
    end,
    apply = function()
      for _, c in ipairs(project_containers("flower")) do
        local ok, err = docker.container_remove(c.Id, { force = true, volumes = true })
        if not ok then return nil, err end
      end
      return true
    end,
  }
end

if v.helper_script then
  step "airflow.sh" {
    http.file { url = v.docs_base .. "/" .. v.version .. "/airflow.sh", dest = v.dir .. "/airflow.sh", mode = "0755" },
  }
end

teardown {
  compose.down { project_dir = v.dir, volumes = true, remove_orphans = true, rmi = v.purge and "all" or false },
  fs.absent(v.dir),
}
