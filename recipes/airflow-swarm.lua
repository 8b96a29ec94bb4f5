-- recipes/airflow-swarm.lua: the official Airflow compose file (the quick
-- start's, same releases: 2.1.3 by default, 2.9.3 and 3.2.0 too) deployed on
-- a Docker Swarm as a stack, through the managers' Engine API (swarm.*,
-- stack.deployed: no `docker stack deploy`, no Compose).
--
--   provision recipes/airflow-swarm.lua                      # one node: this engine
--   provision recipes/airflow-swarm.lua -e nodes=ssh://b,ssh://c -e advertise=10.0.0.1
--   provision recipes/airflow-swarm.lua -e endpoint_mode=dnsrr -e published_mode=host   # no IPVS
--   provision plan recipes/airflow-swarm.lua
--   provision teardown recipes/airflow-swarm.lua [-e purge=true]   # stack gone, nodes out, folder gone
--
-- The quick start's knowledge is not copied: recipes/airflow-quickstart.lua
-- is imported (below: `import`, loaded on its own with this recipe's
-- values) and its steps and checks are taken by name: the releases it knows (an unknown
-- version is exit 2 here too), the preflight checks and the compose file
-- shape, the project folder, the download, the mounted folders of the
-- release, .env (AIRFLOW_UID, AIRFLOW_GID for 2.1, the account, the flower
-- profile), and the endpoint checks (health JSON with every component of
-- the release healthy, the REST API with its auth: basic for 2.x, a token
-- from POST /auth/token for 3.x, never shown; Flower when it runs).
--
-- What differs from the quick start:
--   * Swarm: "swarm manager" makes `manager` (default: this engine) a
--     manager (init when in no swarm; `advertise` picks its address when the
--     machine has several); "swarm worker <url>" joins each of `nodes`.
--     Node labels airflow=manager / airflow=worker.
--   * docker-compose.swarm.yaml, written from the downloaded file (yaml.load
--     / yaml.dump: anchors and "<<" merges come out expanded, x-airflow-common
--     dropped): every service but airflow-worker placed on the manager
--     (node.role == manager: the web server's published port, postgres's
--     volume and the scheduler's heartbeat in ./logs stay on one node);
--     airflow-worker with deploy.replicas = workers (1 + number of nodes by
--     default), spread over the nodes (preference node.id and
--     max_replicas_per_node); airflow-init a one-shot job: 2.1's file has
--     no `restart: "no"` and nothing waits for it to complete (Compose's
--     `up airflow-init` did that by hand), so it gets restart: "no" and
--     every other airflow service and flower depend on it with
--     service_completed_successfully (later files have that already).
--     Nothing in the 2.1.3, 2.9.3 or 3.2.0 files is refused by
--     provision/stack/spec.lua, so nothing is dropped: container_name /
--     expose would only warn; profiles work as in Compose (flower, and
--     3.x's airflow-cli behind "debug", stay out unless asked for).
--   * No `docker compose up airflow-init` / `up -d`: one "stack" step
--     (stack.deployed) creates the services level by level (postgres and
--     redis, then airflow-init, run to completion, then the rest), waits
--     for each to be healthy, and re-runs the job only when its spec
--     changes.
--   * Kernels without IPVS (containers, some CI machines): -e
--     endpoint_mode=dnsrr (services found by DNS round robin, not a virtual
--     IP) and -e published_mode=host (ports published on the node running
--     the task, here the manager: `host` must be that node).
--   * No "port free" checks: once deployed, the ports are the stack's own
--     (swarm publishes them); a port taken by something else fails the
--     "stack" step with the task's error. No Compose check either.
--   * Bind mounts (./dags ./logs ./plugins [./config], and . for
--     airflow-init) must exist at the SAME path on every node that runs a
--     task mounting them: the manager's are made here; the workers' nodes
--     need shared storage there (NFS, ...) or the folders made at that path
--     (tests/fixtures/swarm/node.sh's node 2 shares this machine's
--     filesystem). Swarm does not create a missing bind source: the task
--     fails naming it.
--   * Images: each node pulls its own from the registry; offline, load
--     them on each node that runs a task (docker save | docker load).
--   * Teardown: the stack (its services, networks; volumes with -e
--     purge=true, on every node), the project folder, then each node
--     leaves the swarm, only if this recipe made it join or init.
recipe {
  name = "airflow-swarm",
  description = "Apache Airflow's official compose file as a Docker Swarm stack",
}

local v = vars {
  version = "2.1.3",                  -- the Airflow release whose compose file is used (2.x or 3.x)
  dir = "./airflow",                  -- the project folder (the same path on every node that mounts it)
  docs_base = "https://airflow.apache.org/docs/apache-airflow",  -- <docs_base>/<version>/docker-compose.yaml
  stack = "airflow",                  -- the stack's name (docker stack ls)
  manager = "",                       -- the manager's engine URL ("" = this machine's engine)
  nodes = "",                         -- engine URLs of the nodes that join as workers, comma-separated
  advertise = "",                     -- the manager's advertise address ("" = Docker's choice)
  workers = 0,                        -- Celery worker replicas (0 = 1 + number of nodes)
  endpoint_mode = "vip",              -- "dnsrr" where the kernel has no IPVS
  published_mode = "ingress",         -- "host": published on the node running the task
  host = "localhost",                 -- where the published ports answer
  flower = false,                     -- 2.2 and later: deploy Flower (profile "flower") and check it
  user = "airflow",                   -- the web UI / REST API admin account
  password = secret "airflow",        -- its password
  wait = "10m",                       -- how long the stack may take to be healthy
  purge = false,                      -- teardown: also the stack's named volumes, on every node
}

local nodes = {}
for url in tostring(v.nodes):gmatch("[^,%s]+") do nodes[#nodes + 1] = url end
local workers = v.workers > 0 and math.tointeger(v.workers) or 1 + #nodes
local manager = v.manager ~= "" and v.manager or nil
local compose_file = v.dir .. "/docker-compose.yaml"
local swarm_file = v.dir .. "/docker-compose.swarm.yaml"

-- The quick start's steps and checks, by name (import: the recipe loaded
-- with these values, declaring nothing here; its other variables keep their
-- defaults)
local qs = import("airflow-quickstart.lua", { version = v.version, dir = v.dir, docs_base = v.docs_base,
  host = v.host, flower = v.flower, user = v.user, password = v.password, wait = v.wait, purge = v.purge })
local function qs_step(name)
  return qs.steps[name] or error("recipes/airflow-quickstart.lua has no step " .. name, 0)
end

check "docker engine" { docker.engine { engine = manager } }
for _, name in ipairs { "memory", "cpus", "disk space", "compose file shape" } do
  check(name)(qs.checks[name] or error("recipes/airflow-quickstart.lua has no check " .. name, 0))
end

step "swarm manager" {
  swarm.manager { engine = manager, advertise = v.advertise ~= "" and v.advertise or nil, labels = { airflow = "manager" } },
}
for _, url in ipairs(nodes) do
  step("swarm worker " .. url) { swarm.worker { engine = url, manager = manager, labels = { airflow = "worker" } } }
end

for _, name in ipairs { "project folder", "compose file", "mounted folders", "environment" } do
  step(name)(qs_step(name))
end

-- docker-compose.swarm.yaml: the downloaded file, for Swarm
-- (a copy: yaml.load gives the services merged from x-airflow-common one
-- shared depends_on table, airflow-init's too)
local function depends_on_init(svc)
  local deps, have = {}, type(svc.depends_on) == "table" and svc.depends_on or {}
  if have[1] ~= nil then   -- the short form: a list of names (service_started)
    for _, d in ipairs(have) do deps[d] = { condition = "service_started" } end
  else
    for k, d in pairs(have) do deps[k] = d end
  end
  if deps["airflow-init"] == nil then deps["airflow-init"] = { condition = "service_completed_successfully" } end
  svc.depends_on = deps
end

local function swarm_compose()
  local text, err = fs.read(compose_file)
  if not text then return nil, err end
  local doc, yerr = yaml.load(text, compose_file)
  if type(doc) ~= "table" or type(doc.services) ~= "table" then
    return nil, ("%s: not a compose file with services (%s)"):format(compose_file, yerr or "no services:")
  end
  local init = doc.services["airflow-init"]
  if type(init) ~= "table" then return nil, compose_file .. ": no service airflow-init" end
  if init.restart == nil then init.restart = "no" end   -- 2.1: a one-shot job
  local names = {}
  for name in pairs(doc.services) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local svc = doc.services[name]
    local deploy = type(svc.deploy) == "table" and svc.deploy or {}
    local placement = type(deploy.placement) == "table" and deploy.placement or {}
    if name == "airflow-worker" then
      deploy.replicas = workers
      placement.preferences = { { spread = "node.id" } }
      placement.max_replicas_per_node = math.ceil(workers / (1 + #nodes))
    else
      placement.constraints = { "node.role == manager" }
    end
    deploy.placement = placement
    svc.deploy = deploy
    if (name:match("^airflow%-") and name ~= "airflow-init") or name == "flower" then depends_on_init(svc) end
  end
  doc["x-airflow-common"] = nil   -- merged into the services already
  return ("# written by recipes/airflow-swarm.lua from docker-compose.yaml (Airflow %s) for Docker Swarm:\n"
    .. "# placement on the manager but airflow-worker (%d replicas, spread), airflow-init a one-shot job\n")
    :format(v.version, workers) .. yaml.dump(doc)
end

step "swarm compose file" {
  describe = swarm_file .. ": the compose file for Swarm",
  writes = swarm_file,
  check = function()
    local want, err = swarm_compose()
    if not want then
      if not fs.read(compose_file) then return false, "write it from " .. compose_file end   -- plan: not downloaded yet
      return nil, err
    end
    if fs.read(swarm_file) == want then return true end
    return false, "write " .. swarm_file .. " from " .. compose_file
  end,
  apply = function()
    local want, err = swarm_compose()
    if not want then return nil, err end
    return fs.write(swarm_file, want, "0644")
  end,
}

step "stack" {
  stack.deployed { name = v.stack, dir = v.dir, files = { "docker-compose.swarm.yaml" }, engine = manager,
    endpoint_mode = v.endpoint_mode, published_mode = v.published_mode, timeout = v.wait,
    nodes = #nodes > 0 and nodes or nil,
    purge = v.purge },
}

step "web server health" (qs_step("web server health"))
step "REST API" (qs_step("REST API"))
-- Flower: checked when it runs (2.1, or -e flower=true); when off, the
-- stack has no flower service (stack.deployed removes one left from before)
local fl = qs_step("Flower")
if not tostring(fl.describe or ""):match("^Flower off") then step "Flower" (fl) end

-- teardown: the stack first, the folder (with what the services wrote in
-- it), then the nodes leave, each only if its step made it join or init
local down = { undo "stack", fs.absent(v.dir) }
for _, url in ipairs(nodes) do down[#down + 1] = undo("swarm worker " .. url) end
down[#down + 1] = undo "swarm manager"
teardown(down)
