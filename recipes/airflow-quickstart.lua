-- recipes/airflow-quickstart.lua: the official "Running Airflow in Docker"
-- quick start, step by step, as a recipe.
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
--   mkdir -p ./dags ./logs ./plugins                    -> "mounted folders"
--   echo -e "AIRFLOW_UID=$(id -u)\nAIRFLOW_GID=0" > .env -> "environment"
--   docker compose up airflow-init                      -> "initialize the database"
--   docker compose up -d                                -> "start"
--   open http://localhost:8080 (airflow/airflow), the REST API, Flower on 5555
--                                                       -> "web server health", "REST API", "Flower"
--   curl -LfO .../airflow.sh; chmod +x airflow.sh       -> "airflow.sh" (-e helper_script=true)
recipe {
  name = "airflow-quickstart",
  description = "Apache Airflow with Docker Compose, as the official quick start does it",
}

local v = vars {
  version = "2.1.3",                  -- the Airflow release whose compose file is used
  dir = "./airflow",                  -- the project folder
  docs_base = "https://airflow.apache.org/docs/apache-airflow",  -- <docs_base>/<version>/docker-compose.yaml
  image = "",                         -- AIRFLOW_IMAGE_NAME in .env; "" keeps the compose file's apache/airflow:<version>
  uid = sys.uid(),                    -- AIRFLOW_UID: the invoking user's uid
  host = "localhost",                 -- where the published ports answer
  web_port = 8080,                    -- published by the compose file (airflow-webserver)
  flower_port = 5555,                 -- published by the compose file (flower)
  user = "airflow",                   -- the web UI / REST API admin account
  password = secret "airflow",        -- its password (the compose file's default)
  min_memory = "4GiB", min_cpus = 2, min_disk = "10GB",
  wait = "10m",                       -- how long to wait for the stack to be healthy
  helper_script = false,              -- also fetch airflow.sh (mode 0755)
  purge = false,                      -- teardown: also remove the images (--rmi all)
}

local DOCKER_HOST_HINT = "run provision recipes/docker-host.lua"
local compose_file = v.dir .. "/docker-compose.yaml"

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

-- Is `port` published by a container of this project? Then the port being
-- taken is no reason to stop: it is this stack, already up.
local function ours(port)
  return function()
    local name = compose.project_name(v.dir)
    local list = docker.containers { project = name }
    for _, c in ipairs(list or {}) do
      for _, p in ipairs(c.Ports or {}) do
        if p.PublicPort == port then return true end
      end
    end
    return false
  end
end

check "docker engine" (needs(docker.engine {}, "Docker engine"))
check "docker compose" (needs(compose.available { min_version = "1.29.1" }, "Docker Compose"))
check "memory" { sys.memory { min = v.min_memory } }
check "cpus" { sys.cpus { min = v.min_cpus } }
check "disk space" { sys.disk { path = v.dir, min = v.min_disk } }
check "web port free" { sys.port_free { port = v.web_port, unless = ours(v.web_port) } }
check "flower port free" { sys.port_free { port = v.flower_port, unless = ours(v.flower_port) } }

step "project folder" { fs.directory(v.dir) }

step "compose file" {
  http.file { url = v.docs_base .. "/" .. v.version .. "/docker-compose.yaml", dest = compose_file },
}

step "mounted folders" { fs.directory { v.dir .. "/dags", v.dir .. "/logs", v.dir .. "/plugins" } }

-- .env: what the quick start writes, and the admin account and image when
-- they differ from the compose file's defaults (${_AIRFLOW_WWW_USER_USERNAME:-airflow}, ...)
local env = { AIRFLOW_UID = v.uid, AIRFLOW_GID = 0 }
if v.user ~= "airflow" then env._AIRFLOW_WWW_USER_USERNAME = v.user end
if require("provision.secret").reveal(v.password) ~= "airflow" then
  env._AIRFLOW_WWW_USER_PASSWORD = v.password
end
if v.image ~= "" then env.AIRFLOW_IMAGE_NAME = v.image end
step "environment" { fs.env_file { path = v.dir .. "/.env", values = env } }

step "initialize the database" {
  compose.run_once { project_dir = v.dir, service = "airflow-init", timeout = v.wait },
}

step "start" { compose.up { project_dir = v.dir, wait = "healthy", timeout = v.wait } }

local web = ("http://%s:%d"):format(v.host, v.web_port)

-- /health answers 200 even when the scheduler is down: the JSON says.
step "web server health" {
  http.expect {
    url = web .. "/health", within = "3m",
    json = { metadatabase = { status = "healthy" }, scheduler = { status = "healthy" } },
  },
}

step "REST API" {
  http.expect {
    url = web .. "/api/v1/pools", user = v.user, password = v.password, within = "2m",
    json = { pools = { { name = "default_pool" } } },
  },
}

step "Flower" {
  http.expect { url = ("http://%s:%d/"):format(v.host, v.flower_port), within = "2m" },
}

if v.helper_script then
  step "airflow.sh" {
    http.file { url = v.docs_base .. "/" .. v.version .. "/airflow.sh", dest = v.dir .. "/airflow.sh", mode = "0755" },
  }
end

teardown {
  compose.down { project_dir = v.dir, volumes = true, remove_orphans = true, rmi = v.purge and "all" or false },
  fs.absent(v.dir),
}
