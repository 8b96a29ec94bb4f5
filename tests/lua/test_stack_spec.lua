-- tests/lua/test_stack_spec.lua: provision.stack.spec, a compose project as
-- Swarm specs: the real Airflow compose files (services, order, jobs,
-- anchors, healthchecks, profiles, env), every deploy key, ports, volumes,
-- networks, configs/secrets, each refusal, cycles and digest stability.
-- Pure Lua: no engine, no process.
local T = dofile "tests/lua/harness.lua"
local spec = require "provision.stack.spec"
local project = require "provision.compose.project"
local core = require "provision._core"
local FS = require "provision._fs"

local NS = "com.docker.stack.namespace"
local SEC = 1000000000

local function write(d, name, text) assert(core.write_atomic(d .. "/" .. name, text, 420)) end

-- build(compose text, opts, files) -> plan, err, dir; files: { name = text } (".env" too)
local function build(text, opts, files)
  local d = T.tmpdir()
  write(d, "compose.yaml", text)
  for name, t in pairs(files or {}) do write(d, name, t) end
  local p = assert(project.load_project { project_dir = d })
  opts = opts or {}
  opts.stack = opts.stack or "st"
  local plan, err = spec.build(p, opts)
  return plan, err, d
end
local function must(text, opts, files)
  local plan, err, d = build(text, opts, files)
  if not plan then error("build failed: " .. tostring(err), 2) end
  return plan, d
end
local function svc(plan, name)
  for _, s in ipairs(plan.services) do if s.compose_name == name then return s end end
  error("no service " .. name .. " in the plan", 2)
end
local function names(plan)
  local out = {}
  for _, s in ipairs(plan.services) do out[#out + 1] = s.compose_name end
  return out
end
local function refused(text, want, opts, files)
  local plan, err = build(text, opts, files)
  T.eq(plan, nil, "plan")
  T.eq(err, want)
end

-- an Airflow quick-start folder: the real compose file and an .env
local function airflow(version, env, opts)
  local d = T.tmpdir()
  local src = assert(core.read_file("tests/fixtures/airflow/docker-compose-" .. version .. ".yaml"))
  write(d, "docker-compose.yaml", src)
  write(d, ".env", env or "AIRFLOW_UID=4242\n_AIRFLOW_WWW_USER_USERNAME=admin\n")
  local p = assert(project.load_project { project_dir = d })
  opts = opts or {}
  opts.stack = "af"
  return assert(spec.build(p, opts)), d
end

T.test("Airflow 3.2.0: the services, their levels, airflow-init a job", function()
  local plan = airflow("3.2.0")
  T.eq(plan.levels, {
    { "postgres", "redis" },
    { "airflow-init" },
    { "airflow-apiserver", "airflow-dag-processor", "airflow-scheduler", "airflow-triggerer" },
    { "airflow-worker" },
  })
  T.eq(names(plan), { "postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-dag-processor",
    "airflow-scheduler", "airflow-triggerer", "airflow-worker" }, "in dependency order (flower, airflow-cli: profiles)")
  local init = svc(plan, "airflow-init")
  T.eq(init.name, "af_airflow-init")
  T.eq(init.one_shot, true)
  T.eq(init.level, 2)
  T.eq(init.spec.Mode, { ReplicatedJob = { MaxConcurrent = 1, TotalCompletions = 1 } })
  T.eq(init.spec.TaskTemplate.RestartPolicy, { Condition = "none" })
  T.eq(init.depends_on, { { name = "postgres", condition = "service_healthy" },
    { name = "redis", condition = "service_healthy" } })
  local api = svc(plan, "airflow-apiserver")
  T.eq(api.one_shot, false)
  T.eq(api.spec.Mode, { Replicated = { Replicas = 1 } })
  T.eq(api.spec.TaskTemplate.RestartPolicy, { Condition = "any" })
  T.eq(api.depends_on[1], { name = "airflow-init", condition = "service_completed_successfully" })
  T.eq(svc(plan, "airflow-worker").depends_on[1], { name = "airflow-apiserver", condition = "service_healthy" })
  T.eq(plan.warnings, { "service redis: expose ignored: services on one network reach each other on any port" })
end)

T.test("Airflow 3.2.0: x-airflow-common merged, env sorted and interpolated, .env as env_file", function()
  local plan, d = airflow("3.2.0")
  for _, n in ipairs { "airflow-apiserver", "airflow-scheduler", "airflow-worker", "airflow-init" } do
    local cs = svc(plan, n).spec.TaskTemplate.ContainerSpec
    T.eq(cs.Image, "apache/airflow:3.2.0", n)
    T.eq(cs.Labels, { [NS] = "af" }, n)
    local sorted = table.move(cs.Env, 1, #cs.Env, 1, {})
    table.sort(sorted)
    T.eq(cs.Env, sorted, n .. ": Env sorted")
    local env = {}
    for _, kv in ipairs(cs.Env) do env[kv:match("^[^=]*")] = kv:match("=(.*)$") end
    T.eq(env.AIRFLOW__CORE__EXECUTOR, "CeleryExecutor", n)
    T.eq(env.AIRFLOW__CORE__FERNET_KEY, "", n)
    T.eq(env.AIRFLOW_UID, "4242", n .. ": from env_file .env")
    T.eq(env._PIP_ADDITIONAL_REQUIREMENTS, "", n)
    T.eq(cs.Mounts[1], { Type = "bind", Source = d .. "/dags", Target = "/opt/airflow/dags" }, n)
    T.eq(#cs.Mounts, 4, n)
  end
  local worker = svc(plan, "airflow-worker").spec.TaskTemplate.ContainerSpec
  T.ok(table.concat(worker.Env, "\n"):find("DUMB_INIT_SETSID=0", 1, true), "the worker's own key merged in")
  T.eq(svc(plan, "airflow-scheduler").spec.TaskTemplate.ContainerSpec.User, "4242:0")
  local init = svc(plan, "airflow-init").spec.TaskTemplate.ContainerSpec
  T.eq(init.User, "0:0")
  T.eq(init.Command, { "/bin/bash" })
  T.eq(init.Args[1], "-c")
  T.ok(init.Args[2]:find('chown -R "4242:0" /opt/airflow/', 1, true), "${AIRFLOW_UID} interpolated")
  T.ok(init.Args[2]:find("export AIRFLOW_UID=$(id -u)", 1, true), "$$ is a $")
  T.ok(table.concat(init.Env, "\n"):find("_AIRFLOW_WWW_USER_USERNAME=admin", 1, true), ".env interpolated")
  T.ok(table.concat(init.Env, "\n"):find("_AIRFLOW_WWW_USER_PASSWORD=airflow", 1, true), "the default")
  local binds = 0
  for _, b in ipairs(plan.binds) do
    if b.service == "airflow-init" then binds = binds + 1 end
  end
  T.eq(binds, 4)
  T.eq(plan.binds[1].path:sub(1, #d), d)
end)

T.test("Airflow 3.2.0: healthchecks in nanoseconds, volume, port, network", function()
  local plan = airflow("3.2.0")
  T.eq(svc(plan, "postgres").spec.TaskTemplate.ContainerSpec.Healthcheck,
    { Test = { "CMD", "pg_isready", "-U", "airflow" }, Interval = 10 * SEC, Retries = 5, StartPeriod = 5 * SEC })
  T.eq(svc(plan, "redis").spec.TaskTemplate.ContainerSpec.Healthcheck,
    { Test = { "CMD", "redis-cli", "ping" }, Interval = 10 * SEC, Timeout = 30 * SEC, Retries = 50, StartPeriod = 30 * SEC })
  T.eq(svc(plan, "airflow-dag-processor").spec.TaskTemplate.ContainerSpec.Healthcheck.Test,
    { "CMD-SHELL", 'airflow jobs check --job-type DagProcessorJob --hostname "${HOSTNAME}"' })
  T.eq(svc(plan, "postgres").spec.TaskTemplate.ContainerSpec.Mounts, { {
    Type = "volume", Source = "af_postgres-db-volume", Target = "/var/lib/postgresql/data",
    VolumeOptions = { Labels = { [NS] = "af" } } } })
  T.eq(plan.volumes, { { name = "af_postgres-db-volume", compose_name = "postgres-db-volume", external = false,
    spec = { Name = "af_postgres-db-volume", Labels = { [NS] = "af" } } } })
  T.eq(svc(plan, "airflow-apiserver").spec.EndpointSpec, { Mode = "vip",
    Ports = { { Protocol = "tcp", TargetPort = 8080, PublishedPort = 8080, PublishMode = "ingress" } } })
  T.eq(svc(plan, "airflow-apiserver").spec.TaskTemplate.Networks, { { Target = "af_default", Aliases = { "airflow-apiserver" } } })
  T.eq(svc(plan, "airflow-apiserver").spec.Labels, { [NS] = "af", ["com.docker.stack.image"] = "apache/airflow:3.2.0" })
  T.eq(#plan.networks, 1)
  T.eq(plan.networks[1].spec, { Name = "af_default", Driver = "overlay", Attachable = false, Labels = { [NS] = "af" } })
end)

T.test("Airflow 3.2.0: flower only with its profile (opts.profiles or COMPOSE_PROFILES)", function()
  local plan = airflow("3.2.0", nil, { profiles = { "flower" } })
  T.eq(plan.levels[3], { "airflow-apiserver", "airflow-dag-processor", "airflow-scheduler", "airflow-triggerer", "flower" })
  T.eq(svc(plan, "flower").spec.EndpointSpec.Ports[1].PublishedPort, 5555)
  plan = airflow("3.2.0", "AIRFLOW_UID=1\nCOMPOSE_PROFILES=flower,debug\n")
  T.ok(svc(plan, "flower") and svc(plan, "airflow-cli"))
  T.eq(svc(plan, "airflow-cli").spec.TaskTemplate.ContainerSpec.Args, { "bash", "-c", "airflow" })
  T.eq(#plan.services, 10)
end)

T.test("Airflow 2.9.3 and 2.1.3: levels; 2.1.3's init has no restart: a service, with a warning", function()
  local plan = airflow("2.9.3")
  T.eq(plan.levels, { { "postgres", "redis" }, { "airflow-init" },
    { "airflow-scheduler", "airflow-triggerer", "airflow-webserver", "airflow-worker" } })
  T.eq(svc(plan, "airflow-init").one_shot, true)
  T.eq(svc(plan, "airflow-scheduler").spec.TaskTemplate.ContainerSpec.Healthcheck.Test,
    { "CMD", "curl", "--fail", "http://localhost:8974/health" })
  plan = airflow("2.1.3")
  T.eq(plan.levels, { { "postgres", "redis" },
    { "airflow-init", "airflow-scheduler", "airflow-webserver", "airflow-worker", "flower" } })
  T.eq(svc(plan, "airflow-init").one_shot, false)
  T.eq(svc(plan, "airflow-init").spec.Mode, { Replicated = { Replicas = 1 } })
  T.eq(svc(plan, "airflow-scheduler").spec.TaskTemplate.ContainerSpec.User, "4242:0", "${AIRFLOW_GID:-0}")
  T.eq(plan.warnings, { 'service airflow-init: no restart policy: swarm restarts it whenever it exits ' ..
    '(Compose runs it once); restart: "no" runs it as a job' })
end)

T.test("deploy: replicas, labels, placement, resources, restart_policy, update/rollback config", function()
  local plan = must([[
services:
  web:
    image: nginx
    labels: { c: "1" }
    deploy:
      replicas: 3
      labels: [ "a=b" ]
      placement:
        constraints: [ "node.role == worker" ]
        preferences: [ { spread: node.labels.zone } ]
        max_replicas_per_node: 2
      resources:
        limits: { cpus: "0.5", memory: 512M, pids: 100 }
        reservations: { cpus: 0.25, memory: 1.5g }
      restart_policy: { condition: on-failure, delay: 5s, max_attempts: 3, window: 2m }
      update_config: { parallelism: 2, delay: 10s, failure_action: rollback, monitor: 1m30s, max_failure_ratio: 0.5, order: start-first }
      rollback_config: { delay: 500ms }
]])
  local s = svc(plan, "web").spec
  T.eq(s.Mode, { Replicated = { Replicas = 3 } })
  T.eq(s.Labels, { a = "b", [NS] = "st", ["com.docker.stack.image"] = "nginx" })
  T.eq(s.TaskTemplate.ContainerSpec.Labels, { c = "1", [NS] = "st" })
  T.eq(s.TaskTemplate.Placement, { Constraints = { "node.role == worker" },
    Preferences = { { Spread = { SpreadDescriptor = "node.labels.zone" } } }, MaxReplicas = 2 })
  T.eq(s.TaskTemplate.Resources, {
    Limits = { NanoCPUs = 500000000, MemoryBytes = 512 * 1024 * 1024, Pids = 100 },
    Reservations = { NanoCPUs = 250000000, MemoryBytes = 1610612736 } })
  T.eq(math.type(s.TaskTemplate.Resources.Reservations.MemoryBytes), "integer")
  T.eq(s.TaskTemplate.RestartPolicy, { Condition = "on-failure", Delay = 5 * SEC, MaxAttempts = 3, Window = 120 * SEC })
  T.eq(s.UpdateConfig, { Parallelism = 2, Delay = 10 * SEC, FailureAction = "rollback", Monitor = 90 * SEC,
    MaxFailureRatio = 0.5, Order = "start-first" })
  T.eq(s.RollbackConfig, { Parallelism = 1, Delay = 500000000 })
  T.eq(svc(plan, "web").one_shot, false)
end)

T.test("deploy.mode: global, replicated-job, global-job; replicas with global refused", function()
  local plan = must([[
services:
  g: { image: x, deploy: { mode: global } }
  rj: { image: x, deploy: { mode: replicated-job, replicas: 4 } }
  gj: { image: x, deploy: { mode: global-job } }
]])
  T.eq(svc(plan, "g").spec.Mode, { Global = {} })
  T.eq(svc(plan, "g").one_shot, false)
  T.eq(svc(plan, "rj").spec.Mode, { ReplicatedJob = { MaxConcurrent = 4, TotalCompletions = 4 } })
  T.eq(svc(plan, "rj").one_shot, true)
  T.eq(svc(plan, "gj").spec.Mode, { GlobalJob = {} })
  T.eq(svc(plan, "gj").one_shot, true)
  T.ok(spec.canonical(svc(plan, "g").spec):find('"Mode":{"Global":{}}', 1, true), "an empty mode encodes as {}")
  refused("services:\n  g: { image: x, deploy: { mode: global, replicas: 2 } }\n",
    "service g: replicas can only be used with replicated or replicated-job mode")
  refused("services:\n  g: { image: x, deploy: { mode: sometimes } }\n", "service g: unknown deploy.mode sometimes")
  refused("services:\n  g: { image: x, deploy: { replicas: 2, resources: {}, spread: 1 } }\n",
    "service g: deploy.spread is not supported")
end)

T.test("one-shot: restart no (quoted or YAML false), restart_policy none, service_completed_successfully", function()
  local plan = must([[
services:
  a: { image: x, restart: "no" }
  b: { image: x, restart: no }
  c: { image: x, deploy: { restart_policy: { condition: none } } }
  d: { image: x }
  e: { image: x, restart: always, depends_on: { d: { condition: service_completed_successfully } } }
  f: { image: x, restart: "on-failure:3" }
]])
  for _, n in ipairs { "a", "b", "c", "d" } do
    T.eq(svc(plan, n).one_shot, true, n)
    T.eq(svc(plan, n).spec.Mode, { ReplicatedJob = { MaxConcurrent = 1, TotalCompletions = 1 } }, n)
    T.eq(svc(plan, n).spec.TaskTemplate.RestartPolicy, { Condition = "none" }, n)
  end
  T.eq(svc(plan, "e").one_shot, false)
  T.eq(svc(plan, "f").spec.TaskTemplate.RestartPolicy, { Condition = "on-failure", MaxAttempts = 3 })
  T.eq(plan.levels, { { "a", "b", "c", "d", "f" }, { "e" } })
  refused([[
services:
  d: { image: x, restart: always }
  e: { image: x, depends_on: { d: { condition: service_completed_successfully } } }
]], "service d: restart always, but a service waits for it to complete (service_completed_successfully)")
  refused("services:\n  d: { image: x, restart: \"no\", deploy: { update_config: { parallelism: 1 } } }\n",
    "service d: a one-shot service runs as a job, which takes no update_config or rollback_config")
  refused("services:\n  d: { image: x, restart: sometimes }\n",
    'service d: restart "sometimes" (no, always, on-failure[:N] or unless-stopped)')
end)

T.test("ports: short and long syntax, ranges, sorted; endpoint_mode and published_mode overrides", function()
  local text = [[
services:
  web:
    image: x
    restart: always
    ports:
      - "9090:90"
      - "8080:8080"
      - 3000
      - "6000-6001:7000-7001/udp"
      - { target: 443, published: "8443", mode: host }
      - { target: 53, published: 53, protocol: udp }
  dns:
    image: x
    restart: always
    deploy: { endpoint_mode: vip }
]]
  local plan = must(text)
  T.eq(svc(plan, "web").spec.EndpointSpec, { Mode = "vip", Ports = {
    { Protocol = "tcp", TargetPort = 3000, PublishMode = "ingress" },
    { Protocol = "udp", TargetPort = 53, PublishedPort = 53, PublishMode = "ingress" },
    { Protocol = "udp", TargetPort = 7000, PublishedPort = 6000, PublishMode = "ingress" },
    { Protocol = "udp", TargetPort = 7001, PublishedPort = 6001, PublishMode = "ingress" },
    { Protocol = "tcp", TargetPort = 8080, PublishedPort = 8080, PublishMode = "ingress" },
    { Protocol = "tcp", TargetPort = 443, PublishedPort = 8443, PublishMode = "host" },
    { Protocol = "tcp", TargetPort = 90, PublishedPort = 9090, PublishMode = "ingress" },
  } })
  plan = must(text, { endpoint_mode = "dnsrr", published_mode = "host" })
  local ports = svc(plan, "web").spec.EndpointSpec.Ports
  T.eq(svc(plan, "web").spec.EndpointSpec.Mode, "dnsrr")
  for _, p in ipairs(ports) do T.eq(p.PublishMode, "host") end
  T.eq(svc(plan, "dns").spec.EndpointSpec, { Mode = "vip" }, "its own endpoint_mode wins")
  refused(text, "service web: endpoint_mode dnsrr cannot publish port 3000 in ingress mode (use mode: host)",
    { endpoint_mode = "dnsrr" })
  refused("services:\n  w: { image: x, ports: [ \"127.0.0.1:80:80\" ] }\n",
    'service w: ports: "127.0.0.1:80:80" binds the host address 127.0.0.1: swarm publishes on every address')
  refused("services:\n  w: { image: x, ports: [ { target: 80, host_ip: 10.0.0.1 } ] }\n",
    "service w: ports: host_ip 10.0.0.1: swarm publishes on every address")
  refused("services:\n  w: { image: x }\n", 'endpoint_mode "rr": not one of dnsrr, vip', { endpoint_mode = "rr" })
  refused("services:\n  w: { image: x }\n", 'published_mode "x": not one of host, ingress', { published_mode = "x" })
end)

T.test("volumes: named, named with name:, external, anonymous, binds relative and absolute, tmpfs", function()
  local plan, d = must([[
services:
  a:
    image: x
    restart: always
    volumes:
      - data:/data
      - ext:/ext:ro
      - other:/other:nocopy
      - /anon
      - ./conf:/conf:ro
      - ../up/../sib:/sib
      - /srv/abs:/abs:rslave
      - { type: bind, source: rel, target: /rel, read_only: true }
      - { type: tmpfs, target: /cache, tmpfs: { size: 64m } }
    tmpfs: [ "/run:size=1k" ]
volumes:
  data: { labels: { keep: "yes" }, driver: local, driver_opts: { type: none } }
  ext: { external: true, name: shared-data }
  other: { name: "my-${VOLNAME:-other}" }
  unused: {}
]])
  local m = svc(plan, "a").spec.TaskTemplate.ContainerSpec.Mounts
  T.eq(m[1], { Type = "volume", Source = "st_data", Target = "/data", VolumeOptions = {
    Labels = { keep = "yes", [NS] = "st" }, DriverConfig = { Name = "local", Options = { type = "none" } } } })
  T.eq(m[2], { Type = "volume", Source = "shared-data", Target = "/ext", ReadOnly = true, VolumeOptions = {} })
  T.eq(m[3], { Type = "volume", Source = "my-other", Target = "/other",
    VolumeOptions = { NoCopy = true, Labels = { [NS] = "st" } } })
  T.eq(m[4], { Type = "volume", Target = "/anon" })
  T.eq(m[5], { Type = "bind", Source = d .. "/conf", Target = "/conf", ReadOnly = true })
  T.eq(m[6], { Type = "bind", Source = d:match("^(.*)/[^/]*$") .. "/sib", Target = "/sib" })
  T.eq(m[7], { Type = "bind", Source = "/srv/abs", Target = "/abs", BindOptions = { Propagation = "rslave" } })
  T.eq(m[8], { Type = "bind", Source = d .. "/rel", Target = "/rel", ReadOnly = true })
  T.eq(m[9], { Type = "tmpfs", Target = "/cache", TmpfsOptions = { SizeBytes = 64 * 1024 * 1024 } })
  T.eq(m[10], { Type = "tmpfs", Target = "/run", TmpfsOptions = { SizeBytes = 1024 } })
  T.eq(plan.binds, { { service = "a", path = d .. "/conf" }, { service = "a", path = d:match("^(.*)/[^/]*$") .. "/sib" },
    { service = "a", path = "/srv/abs" }, { service = "a", path = d .. "/rel" } })
  T.eq(plan.volumes, {
    { name = "my-other", compose_name = "other", external = false, spec = { Name = "my-other", Labels = { [NS] = "st" } } },
    { name = "shared-data", compose_name = "ext", external = true },
    { name = "st_data", compose_name = "data", external = false, spec = { Name = "st_data", Driver = "local",
      DriverOpts = { type = "none" }, Labels = { keep = "yes", [NS] = "st" } } },
  }, "the used ones, sorted by name")
  refused("services:\n  a: { image: x, volumes: [ \"nope:/x\" ] }\n", 'service a: undefined volume "nope"')
  refused("services:\n  a: { image: x, volumes: [ \"/h:/x:z\" ] }\n",
    'service a: volume "/h:/x:z": option z is not supported by swarm')
  refused("services:\n  a: { image: x, volumes: [ { type: npipe, source: a, target: /b } ] }\n",
    "service a: volume type npipe is not supported by swarm")
end)

T.test("networks: default, declared, named, external, aliases; default_network = false", function()
  local text = [[
services:
  a: { image: x, restart: always, networks: { front: { aliases: [ web ] }, outside: null } }
  b: { image: x, restart: always, networks: [ back ] }
  c: { image: x, restart: always }
networks:
  front: { attachable: true, labels: [ "tier=front" ], driver_opts: { encrypted: "" } }
  back: { name: "custom-back", internal: true, ipam: { config: [ { subnet: 10.9.0.0/24 } ] } }
  outside: { external: true, name: host-net }
  unused: {}
]]
  local plan = must(text)
  T.eq(svc(plan, "a").spec.TaskTemplate.Networks, {
    { Target = "host-net", Aliases = { "a" } },
    { Target = "st_front", Aliases = { "web", "a" } } })
  T.eq(svc(plan, "b").spec.TaskTemplate.Networks, { { Target = "custom-back", Aliases = { "b" } } })
  T.eq(svc(plan, "c").spec.TaskTemplate.Networks, { { Target = "st_default", Aliases = { "c" } } })
  local nets = {}
  for _, n in ipairs(plan.networks) do nets[n.name] = n; T.eq(n.digest, n.spec and spec.digest(n.spec)) end
  T.eq(#plan.networks, 4)
  T.eq(nets["host-net"], { name = "host-net", compose_name = "outside", external = true })
  T.eq(nets["st_front"].spec, { Name = "st_front", Driver = "overlay", Attachable = true,
    Labels = { tier = "front", [NS] = "st" }, Options = { encrypted = "" } })
  T.eq(nets["custom-back"].spec, { Name = "custom-back", Driver = "overlay", Attachable = false, Internal = true,
    Labels = { [NS] = "st" }, IPAM = { Config = { { Subnet = "10.9.0.0/24" } } } })
  T.eq(nets["st_default"].spec.Name, "st_default")
  plan = must(text, { default_network = false })
  T.eq(svc(plan, "c").spec.TaskTemplate.Networks, nil)
  T.eq(#plan.networks, 3)
  refused("services:\n  a: { image: x, networks: [ nope ] }\n", 'service a: undefined network "nope"')
  refused("services:\n  a: { image: x, networks: { n: { ipv4_address: 10.0.0.2 } } }\nnetworks: { n: {} }\n",
    "service a: networks.n.ipv4_address is not supported by swarm")
end)

T.test("configs and secrets: files (absolute), external, references with SecretName / ConfigName", function()
  local plan, d = must([[
services:
  a:
    image: x
    restart: always
    secrets: [ pw, { source: ext, target: token, uid: "100", mode: 0400 } ]
    configs: [ { source: conf, target: /etc/app.conf } ]
secrets:
  pw: { file: ./pw.txt }
  ext: { external: true, name: shared-token }
configs:
  conf: { file: /etc/hostname, labels: { v: "1" } }
]])
  T.eq(plan.secrets, {
    { name = "shared-token", compose_name = "ext", external = true },
    { name = "st_pw", compose_name = "pw", external = false, file = d .. "/pw.txt", labels = { [NS] = "st" } } })
  T.eq(plan.configs, { { name = "st_conf", compose_name = "conf", external = false, file = "/etc/hostname",
    labels = { v = "1", [NS] = "st" } } })
  local cs = svc(plan, "a").spec.TaskTemplate.ContainerSpec
  T.eq(cs.Secrets, {
    { SecretName = "shared-token", File = { Name = "token", UID = "100", GID = "0", Mode = 256 } },
    { SecretName = "st_pw", File = { Name = "pw", UID = "0", GID = "0", Mode = 292 } } })
  T.eq(cs.Configs, { { ConfigName = "st_conf", File = { Name = "/etc/app.conf", UID = "0", GID = "0", Mode = 292 } } })
  refused("services:\n  a: { image: x, secrets: [ nope ] }\n", 'service a: undefined secret "nope"')
  refused("services:\n  a: { image: x, configs: [ c ] }\nconfigs: { c: { driver: x } }\n",
    "configs.c: swarm needs file, content, environment or external")
end)

T.test("refused: what swarm would silently change; warned: what is harmless", function()
  refused("services:\n  w: { build: . }\n", "swarm cannot build: service w has build and no image")
  refused("services:\n  w: { image: x, network_mode: host }\n",
    'service w: network_mode "host" is not supported by swarm (services join networks: use networks:)')
  refused("services:\n  w: { image: x, network_mode: \"container:db\" }\n",
    'service w: network_mode "container:db" is not supported by swarm (services join networks: use networks:)')
  refused("services:\n  w: { image: x, privileged: true }\n",
    "service w: privileged is not supported by swarm: swarm services cannot run privileged")
  refused("services:\n  w: { image: x, devices: [ /dev/fuse ] }\n",
    "service w: devices is not supported by swarm: swarm services cannot map devices")
  refused("services:\n  w: { image: x, mem_limit: 1g }\n",
    "service w: mem_limit is not supported by swarm: use deploy.resources.limits.memory")
  refused("services:\n  w: { image: x, imagee: y }\n",
    "service w: imagee is not supported by swarm: no swarm equivalent, or not a compose key")
  refused("services:\n  w: { image: x, links: [ \"db:database\" ] }\n  db: { image: y }\n",
    'service w: links: "db:database" names db as database; swarm services are reached by their own name')
  refused("services:\n  w: { }\n", "service w has no image")
  refused("services:\n  w: { image: x }\n", 'stack name "-x": letters, digits, _ . - (not first)', { stack = "-x" })
  local plan = must([[
services:
  w: { image: x, build: ., container_name: web, expose: [ 80 ], links: [ db ], restart: always, x-note: 1 }
  db: { image: y, restart: always }
]])
  T.eq(plan.warnings, {
    "service w: build ignored: swarm runs the image x",
    "service w: container_name ignored: swarm names a service's containers itself",
    "service w: expose ignored: services on one network reach each other on any port",
    "service w: links ignored: services on one network reach each other by name",
  })
end)

T.test("include: the top-level refusal names the file", function()
  local plan, err, d = build("services:\n  w: { image: x }\ninclude: [ other.yaml ]\n")
  T.eq(plan, nil)
  T.eq(err, d .. "/compose.yaml: top-level include is not supported")
end)

T.test("depends_on: order, a cycle named, an undefined service, required: false", function()
  local plan = must([[
services:
  app: { image: x, restart: always, depends_on: [ db, cache ] }
  db: { image: x, restart: always }
  cache: { image: x, restart: always, depends_on: { db: { condition: service_healthy } } }
  opt: { image: x, restart: always, depends_on: { gone: { condition: service_started, required: false } } }
]])
  T.eq(plan.levels, { { "db", "opt" }, { "cache" }, { "app" } })
  T.eq(svc(plan, "app").depends_on, { { name = "cache", condition = "service_started" },
    { name = "db", condition = "service_started" } })
  T.eq(svc(plan, "opt").depends_on, {})
  refused([[
services:
  a: { image: x, depends_on: [ b ] }
  b: { image: x, depends_on: [ c ] }
  c: { image: x, depends_on: [ a ] }
]], "depends_on cycle: a -> b -> c -> a")
  refused([[
services:
  a: { image: x, depends_on: [ b ] }
  b: { image: x, depends_on: [ b ] }
]], "depends_on cycle: b -> b")
  refused("services:\n  a: { image: x, depends_on: [ nope ] }\n", "service a depends on undefined service nope")
end)

T.test("the container: command split as a shell would, healthcheck forms, durations, options", function()
  local plan = must([[
services:
  a:
    image: x
    restart: always
    entrypoint: [ "/bin/sh", "-c" ]
    command: sh -c 'echo "a b"' "x \"y\"" z\ w
    working_dir: /w
    hostname: h
    init: true
    tty: true
    stdin_open: true
    read_only: true
    stop_grace_period: 1m30s
    stop_signal: SIGINT
    extra_hosts: [ "db:10.0.0.5", "v6=[::1]" ]
    dns: [ 1.1.1.1 ]
    cap_add: [ NET_ADMIN ]
    sysctls: { net.core.somaxconn: 1024 }
    ulimits: { nofile: { soft: 1024, hard: 2048 }, nproc: 512 }
    logging: { driver: json-file, options: { max-size: 10m } }
    healthcheck: { test: "curl -f http://x", interval: 1m30s, timeout: 500ms, start_period: 0, start_interval: 2s }
  b: { image: x, restart: always, healthcheck: { disable: true } }
  c: { image: x, restart: always, healthcheck: { test: [ NONE ] } }
  d: { image: x, restart: always, healthcheck: { test: [ CMD, x ], interval: 10 } }
]])
  local cs = svc(plan, "a").spec.TaskTemplate.ContainerSpec
  T.eq(cs.Command, { "/bin/sh", "-c" })
  T.eq(cs.Args, { "sh", "-c", 'echo "a b"', 'x "y"', "z w" })
  T.eq({ cs.Dir, cs.Hostname, cs.Init, cs.TTY, cs.OpenStdin, cs.ReadOnly, cs.StopGracePeriod, cs.StopSignal },
    { "/w", "h", true, true, true, true, 90 * SEC, "SIGINT" })
  T.eq(cs.Hosts, { "10.0.0.5 db", "::1 v6" })
  local mapped = must("services:\n  m: { image: x, restart: always, extra_hosts: { b: 10.0.0.2, a: 10.0.0.1 } }\n")
  T.eq(svc(mapped, "m").spec.TaskTemplate.ContainerSpec.Hosts, { "10.0.0.1 a", "10.0.0.2 b" })
  T.eq(cs.DNSConfig, { Nameservers = { "1.1.1.1" } })
  T.eq(cs.CapabilityAdd, { "NET_ADMIN" })
  T.eq(cs.Sysctls, { ["net.core.somaxconn"] = "1024" })
  T.eq(cs.Ulimits, { { Name = "nofile", Soft = 1024, Hard = 2048 }, { Name = "nproc", Soft = 512, Hard = 512 } })
  T.eq(svc(plan, "a").spec.TaskTemplate.LogDriver, { Name = "json-file", Options = { ["max-size"] = "10m" } })
  T.eq(cs.Healthcheck, { Test = { "CMD-SHELL", "curl -f http://x" }, Interval = 90 * SEC, Timeout = 500000000,
    StartPeriod = 0, StartInterval = 2 * SEC })
  T.eq(svc(plan, "b").spec.TaskTemplate.ContainerSpec.Healthcheck, { Test = { "NONE" } })
  T.eq(svc(plan, "c").spec.TaskTemplate.ContainerSpec.Healthcheck, { Test = { "NONE" } })
  T.eq(svc(plan, "d").spec.TaskTemplate.ContainerSpec.Healthcheck, { Test = { "CMD", "x" }, Interval = 10 * SEC })
  refused("services:\n  a: { image: x, healthcheck: { test: [ CMD, x ], interval: 10 sec } }\n",
    'service a: healthcheck.interval: bad duration "10 sec" (use e.g. 30s, 1m30s, 500ms)')
  refused("services:\n  a: { image: x, healthcheck: { test: [ CMD, x ], disable: true } }\n",
    "service a: healthcheck: test and disable cannot both be set")
  refused("services:\n  a: { image: x, command: \"echo 'open\" }\n", [[service a: command: unclosed ' in "echo 'open"]])
end)

T.test("environment: env_file then environment, a bare key from opts.env / .env, sorted", function()
  local plan = must([[
services:
  a:
    image: x
    restart: always
    env_file: [ common.env, { path: missing.env, required: false } ]
    environment: [ "B=from-env", "FROM_DOTENV", "FROM_OPTS", "UNSET_ANYWHERE_XYZ", "I=${IVAR}" ]
  b:
    image: x
    restart: always
    env_file: common.env
    environment: { N: 1, T: true, E: "", Z: null }
]], { env = { FROM_OPTS = "o", IVAR = "opts-wins" } }, {
    ["common.env"] = "B=from-file\nC=file\n",
    [".env"] = "FROM_DOTENV=d\nIVAR=dotenv\nZ=zed\n",
  })
  T.eq(svc(plan, "a").spec.TaskTemplate.ContainerSpec.Env,
    { "B=from-env", "C=file", "FROM_DOTENV=d", "FROM_OPTS=o", "I=opts-wins" })
  T.eq(svc(plan, "b").spec.TaskTemplate.ContainerSpec.Env, { "B=from-file", "C=file", "E=", "N=1", "T=true", "Z=zed" })
  local _, err, d = build("services:\n  a: { image: x, env_file: nope.env }\n")
  T.eq(err, "service a: env_file " .. d .. "/nope.env: no such file")
end)

T.test("digests: stable, independent of table order, one changed variable changes one service", function()
  T.eq(spec.digest({ b = 1, a = { "x", { d = 2, c = 3 } } }), FS.sha256_string('{"a":["x",{"c":3,"d":2}],"b":1}'))
  local t1, t2 = {}, {}
  for i = 1, 50 do t1["k" .. i] = i end
  for i = 50, 1, -1 do t2["k" .. i] = i end
  T.eq(spec.digest(t1), spec.digest(t2))
  local text = [[
services:
  a: { image: "x:${A_TAG}", restart: always, environment: { K: "${SHARED}" } }
  b: { image: "y:${B_TAG}", restart: always, environment: { K: "${SHARED}" } }
  c: { image: z, restart: always, depends_on: [ a, b ] }
]]
  local files = { [".env"] = "A_TAG=1\nB_TAG=1\nSHARED=s\n" }
  local function digests(opts)
    local plan = must(text, opts, files)
    local out = {}
    for _, s in ipairs(plan.services) do
      T.eq(s.digest, spec.digest(s.spec))
      out[s.compose_name] = s.digest
    end
    return out
  end
  local one, two = digests(), digests()
  T.eq(one, two, "the same input twice")
  local changed = digests { env = { A_TAG = "2" } }
  T.ok(changed.a ~= one.a, "a's image changed")
  T.eq({ changed.b, changed.c }, { one.b, one.c }, "b and c unchanged")
  local shared = digests { env = { SHARED = "t" } }
  T.ok(shared.a ~= one.a and shared.b ~= one.b, "both use SHARED")
  T.eq(shared.c, one.c)
  local _, d = airflow("3.2.0")
  local p1 = assert(project.load_project { project_dir = d })
  local p2 = assert(project.load_project { project_dir = d })
  local a1, a2 = assert(spec.build(p1, { stack = "af" })), assert(spec.build(p2, { stack = "af" }))
  for i, s in ipairs(a1.services) do T.eq(a2.services[i].digest, s.digest, s.compose_name) end
end)

T.test("several compose files (stack.deployed files = { a, b }): merged in order, as -f a -f b", function()
  local d = T.tmpdir()
  write(d, "base.yaml", "services:\n  web:\n    image: busybox\n    environment:\n      A: '1'\n  worker:\n    image: busybox\n")
  write(d, "swarm.yaml", "services:\n  web:\n    environment:\n      B: '2'\n  worker:\n    deploy:\n      replicas: 3\n")
  local p = assert(project.load_project { project_dir = d, file = { "base.yaml", "swarm.yaml" } })
  T.eq(#p.files, 2)
  local plan = assert(spec.build(p, { stack = "st" }))
  T.eq(svc(plan, "worker").spec.Mode.Replicated.Replicas, 3, "the second file's deploy key")
  T.eq(svc(plan, "web").spec.TaskTemplate.ContainerSpec.Env, { "A=1", "B=2" }, "environment merged")
  local one = assert(spec.build(assert(project.load_project { project_dir = d, file = { "base.yaml" } }), { stack = "st" }))
  T.eq(svc(one, "worker").spec.Mode.Replicated.Replicas, 1, "the first alone: one replica")
end)

T.done()
