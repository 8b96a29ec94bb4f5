-- provision.stack.spec: a compose project as Docker Swarm specs, as the docker
-- CLI's cli/compose/convert builds them for `docker stack deploy`, plus what
-- that lacks: depends_on as an order (levels), one-shot services as jobs, a
-- digest of every spec for the no-op check. Plain data: no engine, no process
-- (a service's env_file is the only file it reads).
--   spec.build(project, opts) -> plan | nil, "why (naming the service)"
--     project: provision.compose.project.load_project's (doc, services, lookup, dir)
--     opts: { stack = NAME, env = { K = V } (wins over the environment and .env
--       in ${VAR} and `environment: K`), profiles = { ... } (else COMPOSE_PROFILES),
--       default_network = true (services without networks: join STACK_default),
--       endpoint_mode = "vip"|"dnsrr", published_mode = "ingress"|"host" }
--   plan = { stack, services = { { name = "STACK_svc", compose_name = "svc", level,
--       spec = <ServiceSpec as POST /services/create takes it>, one_shot = bool,
--       depends_on = { { name =, condition = } }, digest = hex } },
--     levels = { { "postgres", "redis" }, { "airflow-init" }, ... } (compose names),
--     networks = { { name, compose_name, external, spec?, digest? } },
--     volumes = { { name, compose_name, external, spec? } },
--     configs / secrets = { { name, compose_name, external, labels?, file? | content? } },
--     binds = { { service =, path = } }, warnings = { "service x: ..." } }
--   spec.digest(v): sha256 hex of spec.canonical(v), JSON with sorted keys
-- Secret / config references carry SecretName / ConfigName: the resource fills
-- SecretID / ConfigID (the engine needs them) after the digest is taken.
local FS = require "provision._fs"
local core = require "provision._core"
local json = require "provision.json"
local yaml = require "provision.yaml"
local envfile = require "provision.envfile"
local project_mod = require "provision.compose.project"

local M = {}
M.NAMESPACE_LABEL = "com.docker.stack.namespace"
M.IMAGE_LABEL = "com.docker.stack.image"
local NS = M.NAMESPACE_LABEL
function M.canonical(v) return json.encode(v) end
function M.digest(v) return FS.sha256_string(json.encode(v)) end
-- every error is raised as { msg = } and returned by build as nil, msg
local function fail(fmt, ...) error({ msg = fmt:format(...) }, 0) end

local function present(v) return v ~= nil and v ~= yaml.null end
local function is_list(t) return type(t) == "table" and (yaml.is_array(t) or t[1] ~= nil) end
local function str(v)
  if v == nil or v == yaml.null then return nil end
  if type(v) == "number" then return envfile.to_string(v) end
  return tostring(v)
end
local function sorted_keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  table.sort(out)
  return out
end
local function empty(t) return t == nil or next(t) == nil end
local function int(v, where)
  local n = v ~= nil and math.tointeger(tonumber(v))
  return n or fail("%s: %q is not a whole number", where, tostring(v))
end
local function opt_int(v, where) return present(v) and int(v, where) or nil end
local function ns(seconds) return math.tointeger(math.floor(seconds * 1e9 + 0.5)) end

-- a list of strings (a scalar: one), as Compose's string lists
local function strings(v)
  if not present(v) then return nil end
  if type(v) ~= "table" then return { str(v) } end
  local out = {}
  for _, x in ipairs(v) do out[#out + 1] = str(x) end
  return out
end

-- labels, sysctls, environment...: a mapping or a list of "k=v" -> { k = v };
-- a key without a value: bare (else "")
local function mapping(v, where, bare)
  if not present(v) then return nil end
  if type(v) ~= "table" then fail("%s: expected a mapping or a list", where) end
  local out, list = {}, is_list(v)
  for k, x in (list and ipairs or pairs)(v) do
    if list then
      local e = tostring(x)
      k, x = e:match("^([^=]+)=(.*)$")
      if not k then k = e end
    end
    out[k] = str(x) or bare or ""
  end
  return out
end
local function labels(stack, v, where)
  local out = mapping(v, where) or {}
  out[NS] = stack
  return out
end

-- Go's time.ParseDuration, as Compose reads durations; a number: seconds
local UNIT_NS = { ns = 1, us = 1000, ["µs"] = 1000, ms = 1000000, s = 1000000000,
  m = 60000000000, h = 3600000000000 }
local function duration(v, where)
  if not present(v) then return nil end
  if type(v) == "number" then return ns(v) end
  local s, total, pos = tostring(v), 0, 1
  if s == "0" then return 0 end
  repeat
    local num, unit, nxt = s:match("^(%d*%.?%d*)([^%d.]+)()", pos)
    if not num or not tonumber(num) or not UNIT_NS[unit] then
      fail("%s: bad duration %q (use e.g. 30s, 1m30s, 500ms)", where, s)
    end
    total, pos = total + tonumber(num) * UNIT_NS[unit], nxt
  until pos > #s
  return math.tointeger(math.floor(total + 0.5))
end

-- go-units RAMInBytes, as Compose reads memory: binary multiples, "512m", "1.5GiB"
local RAM = { [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3, t = 1024 ^ 4, p = 1024 ^ 5 }
local function ram_bytes(v, where)
  if not present(v) then return nil end
  if math.type(v) == "integer" then return v end
  local num, unit = tostring(v):match("^(%d+%.?%d*) ?([kKmMgGtTpP]?)[iI]?[bB]?$")
  if not num then fail("%s: bad size %q (use e.g. 512M, 1.5G)", where, tostring(v)) end
  return math.tointeger(math.floor(tonumber(num) * RAM[unit:lower()]))
end
local function nano_cpus(v, where)
  if not present(v) then return nil end
  local n = tonumber(v)
  return n and n >= 0 and ns(n) or fail("%s: bad cpus %q", where, tostring(v))
end

-- a command string split into words as Compose splits it (shell quoting,
-- no expansion)
local function shell_words(s, where)
  local words, cur, i = {}, nil, 1
  local function add(x) cur = (cur or "") .. x end
  while i <= #s do
    local c = s:sub(i, i)
    if c:match("%s") then
      if cur then words[#words + 1], cur = cur, nil end
    elseif c == "'" then
      local j = s:find("'", i + 1, true) or fail("%s: unclosed ' in %q", where, s)
      add(s:sub(i + 1, j - 1)); i = j
    elseif c == '"' then
      add(""); i = i + 1
      while s:sub(i, i) ~= '"' do
        if i > #s then fail('%s: unclosed " in %q', where, s) end
        if s:sub(i, i) == "\\" and s:sub(i + 1, i + 1):match('["\\$`]') then i = i + 1 end
        add(s:sub(i, i)); i = i + 1
      end
    else
      if c == "\\" then i = i + 1 end
      add(s:sub(i, i))
    end
    i = i + 1
  end
  words[#words + 1] = cur
  return words
end
local function command(v, where)
  if not present(v) then return nil end
  if type(v) == "string" then return shell_words(v, where) end
  return strings(v)
end

-- a path cleaned as Go's filepath.Join does ("a/./b/../c" -> "a/c")
local function clean(p)
  local out = {}
  for part in p:gmatch("[^/]+") do
    if part == ".." then if #out > 0 then out[#out] = nil end
    elseif part ~= "." then out[#out + 1] = part end
  end
  return "/" .. table.concat(out, "/")
end
local function host_path(ctx, p)
  if p:sub(1, 1) == "~" then p = (ctx.lookup.HOME or "~") .. p:sub(2) end
  if p:sub(1, 1) ~= "/" then p = ctx.dir .. "/" .. p end
  return clean(p)
end

-- The service keys: handled ones, harmless ones (a warning) and the ones
-- swarm would silently change or drop (refused). Anything else: refused.
local HANDLED = {}
for k in ([[image command entrypoint environment env_file working_dir user hostname
  healthcheck stop_grace_period stop_signal init tty stdin_open read_only labels volumes
  tmpfs ports networks depends_on restart deploy profiles secrets configs extra_hosts dns
  dns_search dns_opt cap_add cap_drop sysctls ulimits group_add logging oom_score_adj
  isolation]]):gmatch("%S+") do HANDLED[k] = true end
local WARN = {
  container_name = "ignored: swarm names a service's containers itself",
  expose = "ignored: services on one network reach each other on any port",
  pull_policy = "ignored: swarm pulls the image on each node", develop = "ignored (compose watch)",
  platform = "ignored: each node runs the image's variant for its own platform", attach = "ignored (compose logs)",
  annotations = "ignored: swarm services have no container annotations",
}
local REFUSE = {
  privileged = "swarm services cannot run privileged", devices = "swarm services cannot map devices",
  external_links = "swarm services cannot link to containers outside the stack",
  volumes_from = "share a top-level volume instead", volume_driver = "set the driver on a top-level volume",
  extends = "provision's compose reader does not resolve extends", scale = "use deploy.replicas",
  pid = "swarm services share no pid namespace", ipc = "swarm services share no ipc namespace",
  security_opt = "swarm services take no security options", shm_size = "swarm sets no /dev/shm size",
  cpus = "use deploy.resources.limits.cpus", mem_limit = "use deploy.resources.limits.memory",
  mem_reservation = "use deploy.resources.reservations.memory", pids_limit = "use deploy.resources.limits.pids",
  cpu_shares = "use deploy.resources", cpu_quota = "use deploy.resources", cpuset = "use deploy.resources",
  memswap_limit = "use deploy.resources",
}
local DEPLOY_KEYS = {}
for k in ([[mode replicas labels placement endpoint_mode resources restart_policy update_config
  rollback_config]]):gmatch("%S+") do DEPLOY_KEYS[k] = true end

local function check_keys(ctx, name, svc)
  for _, k in ipairs(sorted_keys(svc)) do
    if k:sub(1, 2) == "x-" or HANDLED[k] then -- luacheck: ignore 542
    elseif k == "build" then
      if not present(svc.image) then fail("swarm cannot build: service %s has build and no image", name) end
      ctx.warn("service %s: build ignored: swarm runs the image %s", name, svc.image)
    elseif k == "links" then
      for _, l in ipairs(strings(svc.links) or {}) do
        local target, alias = l:match("^([^:]+):(.+)$")
        if alias and alias ~= target then
          fail("service %s: links: %q names %s as %s; swarm services are reached by their own name", name, l, target, alias)
        end
      end
      ctx.warn("service %s: links ignored: services on one network reach each other by name", name)
    elseif WARN[k] then
      ctx.warn("service %s: %s %s", name, k, WARN[k])
    elseif k == "network_mode" then
      fail("service %s: network_mode %q is not supported by swarm (services join networks: use networks:)",
        name, tostring(svc[k]))
    else
      fail("service %s: %s is not supported by swarm: %s", name, k,
        REFUSE[k] or "no swarm equivalent, or not a compose key")
    end
  end
  for _, k in ipairs(sorted_keys(type(svc.deploy) == "table" and svc.deploy or {})) do
    if not DEPLOY_KEYS[k] and k:sub(1, 2) ~= "x-" then fail("service %s: deploy.%s is not supported", name, k) end
  end
end

-- environment: env_file(s) first, then environment:; a key without a value
-- takes the interpolation lookup's (or is left out), as Compose does
local function environment(ctx, name, svc)
  local env = {}
  local files = svc.env_file
  if present(files) and not is_list(files) then files = { files } end
  for _, f in ipairs(present(files) and files or {}) do
    local path, required = f, true
    if type(f) == "table" then path, required = f.path, f.required ~= false end
    path = host_path(ctx, str(path))
    if FS.stat(path) then
      local vars, err = project_mod.read_env_file(path)
      if not vars then fail("service %s: env_file %s", name, err) end
      for k, v in pairs(vars) do env[k] = v end
    elseif required then
      fail("service %s: env_file %s: no such file", name, path)
    end
  end
  for k, v in pairs(mapping(svc.environment, "service " .. name .. ": environment", yaml.null) or {}) do
    if present(v) then env[k] = v else env[k] = ctx.lookup[k] end
  end
  local out = {}
  for _, k in ipairs(sorted_keys(env)) do out[#out + 1] = k .. "=" .. env[k] end
  return out
end

local function healthcheck(name, hc)
  if type(hc) ~= "table" then return nil end
  local where = "service " .. name .. ": healthcheck"
  if hc.disable == true then
    if present(hc.test) then fail("%s: test and disable cannot both be set", where) end
    return { Test = { "NONE" } }
  end
  return {
    Test = type(hc.test) == "string" and { "CMD-SHELL", hc.test } or strings(hc.test),
    Interval = duration(hc.interval, where .. ".interval"),
    Timeout = duration(hc.timeout, where .. ".timeout"),
    StartPeriod = duration(hc.start_period, where .. ".start_period"),
    StartInterval = duration(hc.start_interval, where .. ".start_interval"),
    Retries = opt_int(hc.retries, where .. ".retries"),
  }
end

-- a named volume's mount, as the CLI: Source STACK_vol (or its name:),
-- VolumeOptions.Labels with the namespace unless external
local function volume_mount(ctx, name, m, src)
  if src == nil then return m end
  if ctx.volumes[src] == nil then fail("service %s: undefined volume %q", name, src) end
  local v = ctx.volume(src, ctx.volumes[src])
  m.Source = v.name
  m.VolumeOptions = m.VolumeOptions or {}
  if not v.external then
    m.VolumeOptions.Labels = v.spec.Labels
    if v.spec.Driver or v.spec.DriverOpts then
      m.VolumeOptions.DriverConfig = { Name = v.spec.Driver, Options = v.spec.DriverOpts }
    end
  end
  return m
end

local PROPAGATION = { shared = 1, rshared = 1, slave = 1, rslave = 1, private = 1, rprivate = 1 }
local function short_mount(name, s)
  local parts = {}
  for p in (s .. ":"):gmatch("(.-):") do parts[#parts + 1] = p end
  local m = {} -- "target", "target:mode" (anonymous), "source:target[:mode]"
  if #parts == 1 or (#parts == 2 and not parts[2]:find("/", 1, true)) then m.target, m.mode = parts[1], parts[2]
  else m.source, m.target, m.mode = parts[1], parts[2], parts[3] end
  local c = (m.source or ""):sub(1, 1)
  m.type = (c == "/" or c == "." or c == "~") and "bind" or "volume"
  for opt in (m.mode or ""):gmatch("[^,]+") do
    if opt == "ro" then m.read_only = true
    elseif opt == "nocopy" then m.volume = { nocopy = true }
    elseif PROPAGATION[opt] then m.bind = { propagation = opt }
    elseif opt ~= "rw" then fail("service %s: volume %q: option %s is not supported by swarm", name, s, opt) end
  end
  return m
end

local function mounts(ctx, name, svc)
  local out = {}
  for _, v in ipairs(is_list(svc.volumes) and svc.volumes or {}) do
    local m = type(v) == "string" and short_mount(name, v) or v
    local kind = m.type or "volume"
    local mt = { Type = kind, Target = str(m.target), ReadOnly = m.read_only == true or nil }
    if not mt.Target then fail("service %s: a volume without a target", name) end
    local src = present(m.source) and str(m.source) or nil
    if kind == "bind" then
      if not src then fail("service %s: bind mount of %s without a source", name, mt.Target) end
      mt.Source = host_path(ctx, src)
      local prop = type(m.bind) == "table" and m.bind.propagation
      if prop then mt.BindOptions = { Propagation = prop } end
      ctx.binds[#ctx.binds + 1] = { service = name, path = mt.Source }
    elseif kind == "volume" then
      if type(m.volume) == "table" and m.volume.nocopy then mt.VolumeOptions = { NoCopy = true } end
      mt = volume_mount(ctx, name, mt, src)
    elseif kind == "tmpfs" then
      local size = type(m.tmpfs) == "table" and ram_bytes(m.tmpfs.size, "service " .. name .. ": tmpfs.size")
      if size then mt.TmpfsOptions = { SizeBytes = size } end
    else
      fail("service %s: volume type %s is not supported by swarm", name, tostring(kind))
    end
    out[#out + 1] = mt
  end
  for _, t in ipairs(strings(svc.tmpfs) or {}) do
    local target, opts = t:match("^([^:]+):?(.*)$")
    local size = opts:match("size=([^,]+)")
    out[#out + 1] = { Type = "tmpfs", Target = target,
      TmpfsOptions = size and { SizeBytes = ram_bytes(size, "service " .. name .. ": tmpfs") } or nil }
  end
  return out[1] and out or nil
end

-- ports: short ("[ip:]published:target[/proto]", ranges) and long syntax,
-- sorted as the CLI sorts them (published, target, protocol, mode)
local function port_range(s, where)
  local a, b = tostring(s):match("^(%d+)%-(%d+)$")
  return int(a or s, where), int(b or s, where)
end
local function add_ports(out, name, spec_text, published, target, proto, mode)
  local where = ("service %s: ports: %q"):format(name, spec_text)
  local t1, t2 = port_range(target, where)
  local p1, p2
  if present(published) and published ~= "" then p1, p2 = port_range(published, where) end
  if p1 and t2 - t1 ~= p2 - p1 and t1 ~= t2 then fail("%s: the ranges differ in length", where) end
  local function add(t, p) out[#out + 1] = { Protocol = proto, TargetPort = t, PublishedPort = p, PublishMode = mode } end
  if t1 == t2 and p1 then
    for p = p1, p2 do add(t1, p) end
  else
    for i = 0, t2 - t1 do add(t1 + i, p1 and p1 + i or nil) end
  end
end
local function unspecified_ip(ip) return ip == "" or ip == "0.0.0.0" or ip == "::" or ip == "[::]" end
local function ports(ctx, name, svc)
  local out = {}
  local default_mode = ctx.opts.published_mode or "ingress"
  for _, p in ipairs(is_list(svc.ports) and svc.ports or {}) do
    if type(p) == "table" then
      if present(p.host_ip) and not unspecified_ip(str(p.host_ip)) then
        fail("service %s: ports: host_ip %s: swarm publishes on every address", name, str(p.host_ip))
      end
      add_ports(out, name, str(p.target) or "?", p.published, p.target, str(p.protocol) or "tcp",
        str(p.mode) or default_mode)
    else
      local s = str(p)
      local body, proto = s:match("^(.-)/(%a+)$")
      if not body then body, proto = s, "tcp" end
      local parts = {}
      for x in (body .. ":"):gmatch("(.-):") do parts[#parts + 1] = x end
      local ip = table.concat(parts, ":", 1, math.max(#parts - 2, 0))
      if not unspecified_ip(ip) then
        fail("service %s: ports: %q binds the host address %s: swarm publishes on every address", name, s, ip)
      end
      add_ports(out, name, s, parts[#parts - 1], parts[#parts], proto, default_mode)
    end
  end
  local function key(x) return ("%05d %05d %s %s"):format(x.PublishedPort or 0, x.TargetPort, x.Protocol, x.PublishMode) end
  table.sort(out, function(a, b) return key(a) < key(b) end)
  return out
end

local function endpoint(ctx, name, svc, deploy)
  local mode = str(deploy.endpoint_mode) or ctx.opts.endpoint_mode or "vip"
  mode = mode:lower()
  if mode ~= "vip" and mode ~= "dnsrr" then fail("service %s: endpoint_mode %s (vip or dnsrr)", name, mode) end
  local ps = ports(ctx, name, svc)
  for _, p in ipairs(ps) do
    if p.PublishMode ~= "ingress" and p.PublishMode ~= "host" then
      fail("service %s: port mode %s (ingress or host)", name, p.PublishMode)
    end
    if mode == "dnsrr" and p.PublishMode == "ingress" then
      fail("service %s: endpoint_mode dnsrr cannot publish port %d in ingress mode (use mode: host)", name, p.TargetPort)
    end
  end
  return { Mode = mode, Ports = ps[1] and ps or nil }
end

-- the service's network attachments, sorted by target as the CLI does
local NOT_USER_DEFINED = { host = true, bridge = true, none = true }
local function service_networks(ctx, name, svc)
  local nets, where = type(svc.networks) == "table" and svc.networks or {}, "service " .. name .. ": networks"
  local keys = is_list(nets) and strings(nets) or sorted_keys(nets)
  if not keys[1] then
    if ctx.opts.default_network == false then return nil end
    keys = { "default" }
  end
  local out = {}
  for _, key in ipairs(keys) do
    local cfg = not is_list(nets) and type(nets[key]) == "table" and nets[key] or {}
    for _, bad in ipairs { "ipv4_address", "ipv6_address", "link_local_ips", "mac_address" } do
      if present(cfg[bad]) then fail("service %s: networks.%s.%s is not supported by swarm", name, key, bad) end
    end
    local net = ctx.network(name, key)
    local att = { Target = net.name, Aliases = strings(cfg.aliases), DriverOpts = mapping(cfg.driver_opts, where) }
    if not NOT_USER_DEFINED[net.name] then att.Aliases = att.Aliases or {}; table.insert(att.Aliases, name) end
    out[#out + 1] = att
  end
  table.sort(out, function(a, b) return a.Target < b.Target end)
  return out
end

-- secret / config references (SecretName / ConfigName; the IDs are the resource's)
local function file_refs(ctx, name, svc, kind)
  local out = {}
  for _, r in ipairs(is_list(svc[kind]) and svc[kind] or {}) do
    if type(r) ~= "table" then r = { source = r } end
    local src = str(r.source)
    local obj = ctx.object(kind, name, src)
    local ref = { File = { Name = str(r.target) or src, UID = str(r.uid) or "0", GID = str(r.gid) or "0",
      Mode = opt_int(r.mode, "service " .. name .. ": " .. kind .. ".mode") or 292 } }
    ref[kind == "secrets" and "SecretName" or "ConfigName"] = obj.name
    out[#out + 1] = ref
  end
  local key = kind == "secrets" and "SecretName" or "ConfigName"
  table.sort(out, function(a, b) return a[key] < b[key] end)
  return out[1] and out or nil
end
local function ulimits(v)
  if type(v) ~= "table" then return nil end
  local out = {}
  for _, k in ipairs(sorted_keys(v)) do
    local u = type(v[k]) == "table" and v[k] or { soft = v[k], hard = v[k] }
    out[#out + 1] = { Name = k, Soft = int(u.soft, "ulimits." .. k), Hard = int(u.hard, "ulimits." .. k) }
  end
  return out[1] and out or nil
end

local function container_spec(ctx, name, svc)
  local where = "service " .. name
  local hosts, eh = nil, type(svc.extra_hosts) == "table" and svc.extra_hosts or {}
  for _, h in ipairs(is_list(eh) and eh or sorted_keys(eh)) do   -- "host:ip", "host=ip" or host: ip
    local host, ip = tostring(h):match("^([^:=]+)[:=](.+)$")
    if not is_list(eh) then host, ip = h, str(eh[h]) end
    if host then hosts = hosts or {}; hosts[#hosts + 1] = ip:gsub("^%[(.*)%]$", "%1") .. " " .. host end
  end
  local dns, search, dopt = strings(svc.dns), strings(svc.dns_search), strings(svc.dns_opt)
  local env = environment(ctx, name, svc)
  local log = type(svc.logging) == "table" and svc.logging or nil
  return {
    Image = str(svc.image),
    Labels = labels(ctx.stack, svc.labels, where .. ": labels"),
    Command = command(svc.entrypoint, where .. ": entrypoint"),
    Args = command(svc.command, where .. ": command"),
    Env = env[1] and env or nil,
    Dir = str(svc.working_dir), User = str(svc.user), Hostname = str(svc.hostname),
    Hosts = hosts,
    DNSConfig = (dns or search or dopt) and { Nameservers = dns, Search = search, Options = dopt } or nil,
    Mounts = mounts(ctx, name, svc),
    Healthcheck = healthcheck(name, svc.healthcheck),
    StopGracePeriod = duration(svc.stop_grace_period, where .. ": stop_grace_period"),
    StopSignal = str(svc.stop_signal),
    Init = present(svc.init) and svc.init == true or nil,
    TTY = svc.tty == true or nil, OpenStdin = svc.stdin_open == true or nil,
    ReadOnly = svc.read_only == true or nil,
    Secrets = file_refs(ctx, name, svc, "secrets"),
    Configs = file_refs(ctx, name, svc, "configs"),
    Sysctls = mapping(svc.sysctls, where .. ": sysctls"),
    CapabilityAdd = strings(svc.cap_add), CapabilityDrop = strings(svc.cap_drop),
    Groups = strings(svc.group_add),
    Ulimits = ulimits(svc.ulimits),
    OomScoreAdj = opt_int(svc.oom_score_adj, where .. ": oom_score_adj"),
    Isolation = str(svc.isolation),
  }, log and { Name = str(log.driver), Options = mapping(log.options) } or nil
end

local function resources(name, r)
  if type(r) ~= "table" then return nil end
  local where = "service " .. name .. ": deploy.resources"
  local out = {}
  if type(r.limits) == "table" then
    out.Limits = { NanoCPUs = nano_cpus(r.limits.cpus, where .. ".limits.cpus"),
      MemoryBytes = ram_bytes(r.limits.memory, where .. ".limits.memory"),
      Pids = opt_int(r.limits.pids, where .. ".limits.pids") }
  end
  local res = r.reservations
  if type(res) == "table" then
    for _, k in ipairs { "devices", "generic_resources" } do
      if present(res[k]) then fail("service %s: deploy.resources.reservations.%s is not supported", name, k) end
    end
    out.Reservations = { NanoCPUs = nano_cpus(res.cpus, where .. ".reservations.cpus"),
      MemoryBytes = ram_bytes(res.memory, where .. ".reservations.memory") }
  end
  return not empty(out) and out or nil
end
local function update_config(name, key, u)
  if type(u) ~= "table" then return nil end
  local where = ("service %s: deploy.%s"):format(name, key)
  local ratio = present(u.max_failure_ratio) and tonumber(u.max_failure_ratio) or nil
  return {
    Parallelism = opt_int(u.parallelism, where .. ".parallelism") or 1,
    Delay = duration(u.delay, where .. ".delay"),
    FailureAction = str(u.failure_action),
    Monitor = duration(u.monitor, where .. ".monitor"),
    MaxFailureRatio = ratio and (math.tointeger(ratio) or ratio),
    Order = str(u.order),
  }
end

-- restart: and deploy.restart_policy as the CLI converts them; a one-shot
-- service without either: condition none (Compose runs it once)
local function restart_policy(name, svc, deploy, one_shot)
  local rp = deploy.restart_policy
  local where = "service " .. name .. ": deploy.restart_policy"
  if type(rp) == "table" then
    return { Condition = str(rp.condition), Delay = duration(rp.delay, where .. ".delay"),
      MaxAttempts = present(rp.max_attempts) and int(rp.max_attempts, where .. ".max_attempts") or nil,
      Window = duration(rp.window, where .. ".window") }
  end
  local r = svc.restart
  if r == false or r == "no" or not present(r) then return one_shot and { Condition = "none" } or nil end
  local policy, n = tostring(r):match("^([%a-]+):?(%d*)$")
  local max = n ~= "" and tonumber(n) > 0 and math.tointeger(tonumber(n)) or nil
  if policy == "always" or policy == "unless-stopped" then return { Condition = "any", MaxAttempts = max } end
  if policy == "on-failure" then return { Condition = "on-failure", MaxAttempts = max } end
  fail("service %s: restart %q (no, always, on-failure[:N] or unless-stopped)", name, tostring(r))
end
local function service_mode(name, deploy, one_shot)
  local mode = str(deploy.mode) or "replicated"
  local replicas = opt_int(deploy.replicas, "service " .. name .. ": deploy.replicas")
  if (mode == "global" or mode == "global-job") and replicas then
    fail("service %s: replicas can only be used with replicated or replicated-job mode", name)
  end
  if mode == "global" then return one_shot and { GlobalJob = {} } or { Global = {} } end
  if mode == "global-job" then return { GlobalJob = {} } end
  if mode == "replicated-job" or (mode == "replicated" and one_shot) then
    return { ReplicatedJob = { MaxConcurrent = replicas or 1, TotalCompletions = replicas or 1 } }
  end
  if mode == "replicated" then return { Replicated = { Replicas = replicas or 1 } } end
  fail("service %s: unknown deploy.mode %s", name, mode)
end
local function is_one_shot(svc, deploy, completed)
  local rp = type(deploy.restart_policy) == "table" and deploy.restart_policy
  return svc.restart == false or svc.restart == "no" or completed
    or (rp and rp.condition == "none") or deploy.mode == "replicated-job" or deploy.mode == "global-job"
end

local function service_spec(ctx, name, svc, one_shot)
  local deploy = type(svc.deploy) == "table" and svc.deploy or {}
  local where = "service " .. name
  if not present(svc.image) then fail("service %s has no image", name) end
  if one_shot and (svc.restart == "always" or svc.restart == "unless-stopped") then
    fail("service %s: restart %s, but a service waits for it to complete (service_completed_successfully)",
      name, svc.restart)
  end
  if one_shot and (present(deploy.update_config) or present(deploy.rollback_config)) then
    fail("service %s: a one-shot service runs as a job, which takes no update_config or rollback_config", name)
  end
  if not one_shot and not present(svc.restart) and not present(deploy.restart_policy) then
    ctx.warn("service %s: no restart policy: swarm restarts it whenever it exits (Compose runs it once); " ..
      "restart: \"no\" runs it as a job", name)
  end
  local cs, log = container_spec(ctx, name, svc)
  local placement = type(deploy.placement) == "table" and deploy.placement or {}
  local prefs = is_list(placement.preferences) and {} or nil
  for _, p in ipairs(prefs and placement.preferences or {}) do prefs[#prefs + 1] = { Spread = { SpreadDescriptor = str(p.spread) } } end
  local max_replicas = opt_int(placement.max_replicas_per_node, where .. ": max_replicas_per_node")
  local constraints = strings(placement.constraints)
  local slabels = labels(ctx.stack, deploy.labels, where .. ": deploy.labels")
  slabels[M.IMAGE_LABEL] = cs.Image
  return {
    Name = ctx.stack .. "_" .. name,
    Labels = slabels,
    TaskTemplate = {
      ContainerSpec = cs,
      LogDriver = log,
      Resources = resources(name, deploy.resources),
      RestartPolicy = restart_policy(name, svc, deploy, one_shot),
      Placement = (constraints or prefs or max_replicas)
        and { Constraints = constraints, Preferences = prefs, MaxReplicas = max_replicas } or nil,
      Networks = service_networks(ctx, name, svc),
    },
    Mode = service_mode(name, deploy, one_shot),
    UpdateConfig = update_config(name, "update_config", deploy.update_config),
    RollbackConfig = update_config(name, "rollback_config", deploy.rollback_config),
    EndpointSpec = endpoint(ctx, name, svc, deploy),
  }
end

-- depends_on as { { name, condition } }, sorted by name
local function dependencies(name, svc, services)
  local deps, out = type(svc.depends_on) == "table" and svc.depends_on or {}, {}
  local list = is_list(deps)
  local keys = list and strings(deps) or sorted_keys(deps)
  table.sort(keys)
  for _, d in ipairs(keys) do
    local c = not list and type(deps[d]) == "table" and deps[d] or {}
    if services[d] == nil then
      if c.required ~= false then fail("service %s depends on undefined service %s", name, d) end
    else
      out[#out + 1] = { name = d, condition = str(c.condition) or "service_started" }
    end
  end
  return out
end

-- levels: each service one more than the deepest of its dependencies; a
-- cycle named as found ("a -> b -> a")
local function levels(names, deps)
  local level, visiting, stack = {}, {}, {}
  local function visit(n)
    if level[n] then return level[n] end
    if visiting[n] then
      local from = 1
      for i, s in ipairs(stack) do if s == n then from = i end end
      local cycle = table.move(stack, from, #stack, 1, {})
      cycle[#cycle + 1] = n
      fail("depends_on cycle: %s", table.concat(cycle, " -> "))
    end
    visiting[n], stack[#stack + 1] = true, n
    local l = 1
    for _, d in ipairs(deps[n]) do l = math.max(l, visit(d.name) + 1) end
    stack[#stack], visiting[n], level[n] = nil, nil, l
    return l
  end
  local out = {}
  for _, n in ipairs(names) do
    local l = visit(n)
    for i = #out + 1, l do out[i] = {} end
    table.insert(out[l], n)
  end
  for _, l in ipairs(out) do table.sort(l) end
  return out, level
end

local TOP_KEYS = { version = true, name = true, services = true, networks = true, volumes = true,
  configs = true, secrets = true }
local function external(e) return e ~= nil and e ~= false and e ~= yaml.null end
local function top_name(ctx, key, e)
  if type(e.name) == "string" then return e.name end
  if type(e.external) == "table" and type(e.external.name) == "string" then return e.external.name end
  return external(e.external) and key or (ctx.stack .. "_" .. key)
end

-- the plan's networks, volumes, configs and secrets, each made and listed
-- once, the first time a service uses it
local function collectors(ctx, plan, top)
  local seen = { networks = {}, volumes = {}, configs = {}, secrets = {} }
  local function once(kind, key, e, make)
    if seen[kind][key] then return seen[kind][key] end
    e = type(e) == "table" and e or {}
    local x = { name = top_name(ctx, key, e), compose_name = key, external = external(e.external) }
    if not x.external then make(x, e) end
    seen[kind][key] = x
    plan[kind][#plan[kind] + 1] = x
    return x
  end
  function ctx.network(svc, key)
    if top.networks[key] == nil and key ~= "default" then fail("service %s: undefined network %q", svc, key) end
    return once("networks", key, top.networks[key], function(n, e)
      local ipam = type(e.ipam) == "table" and e.ipam or nil
      local configs = ipam and is_list(ipam.config) and {} or nil
      for _, c in ipairs(configs and ipam.config or {}) do
        configs[#configs + 1] = { Subnet = str(c.subnet), Gateway = str(c.gateway), IPRange = str(c.ip_range) }
      end
      n.spec = { Name = n.name, Driver = str(e.driver) or "overlay", Attachable = e.attachable == true,
        Internal = e.internal == true or nil, EnableIPv6 = e.enable_ipv6 == true or nil,
        Labels = labels(ctx.stack, e.labels, "networks." .. key .. ".labels"),
        Options = mapping(e.driver_opts, "networks." .. key .. ".driver_opts"),
        IPAM = ipam and { Driver = str(ipam.driver), Config = configs } or nil }
      n.digest = M.digest(n.spec)
    end)
  end
  function ctx.volume(key, e)
    return once("volumes", key, e, function(v, t)
      v.spec = { Name = v.name, Driver = str(t.driver), DriverOpts = mapping(t.driver_opts, "volumes." .. key),
        Labels = labels(ctx.stack, t.labels, "volumes." .. key .. ".labels") }
    end)
  end
  function ctx.object(kind, svc, key)
    if top[kind][key] == nil then fail("service %s: undefined %s %q", svc, kind:sub(1, -2), tostring(key)) end
    return once(kind, key, top[kind][key], function(o, e)
      o.labels = labels(ctx.stack, e.labels, kind .. "." .. key .. ".labels")
      if present(e.file) then o.file = host_path(ctx, str(e.file))
      elseif present(e.content) then o.content = str(e.content)
      elseif present(e.environment) then
        o.content = ctx.lookup[str(e.environment)]
        if o.content == nil then fail("%s.%s: environment variable %s is not set", kind, key, str(e.environment)) end
      else fail("%s.%s: swarm needs file, content, environment or external", kind, key) end
    end)
  end
end

local function interpolated(doc, key, lookup)
  local v = doc[key]
  if type(v) ~= "table" then return {} end
  local out, err = project_mod.interpolate(v, lookup, key)
  if out == nil then fail("%s", err) end
  return out
end

local function build(project, opts)
  local stack = opts.stack
  if type(stack) ~= "string" or not stack:match("^[%w][%w_.-]*$") then
    fail("stack name %q: letters, digits, _ . - (not first)", tostring(stack))
  end
  for _, k in ipairs { "endpoint_mode", "published_mode" } do
    local v, ok = opts[k], k == "endpoint_mode" and { vip = 1, dnsrr = 1 } or { ingress = 1, host = 1 }
    if v ~= nil and not ok[v] then fail("%s %q: not one of %s", k, tostring(v), table.concat(sorted_keys(ok), ", ")) end
  end
  local doc = project.doc or {}
  if type(doc.services) ~= "table" then fail("%s: swarm stacks need a services: mapping", project.file or "compose file") end
  for _, k in ipairs(sorted_keys(doc)) do
    if not TOP_KEYS[k] and k:sub(1, 2) ~= "x-" then fail("%s: top-level %s is not supported", project.file or "compose file", k) end
  end
  local base, services = project.lookup or {}, project.services
  local lookup = base
  if opts.env then
    lookup = setmetatable({}, { __index = function(_, k)
      if opts.env[k] ~= nil then return str(opts.env[k]) end
      return base[k]
    end })
    services = interpolated(doc, "services", lookup)
  end
  local dir = project.dir or "."
  if dir:sub(1, 1) ~= "/" then dir = core.cwd() .. "/" .. dir end
  local plan = { stack = stack, services = {}, networks = {}, volumes = {}, configs = {}, secrets = {},
    binds = {}, warnings = {} }
  local ctx = { stack = stack, lookup = lookup, dir = clean(dir), opts = opts, binds = plan.binds,
    volumes = interpolated(doc, "volumes", lookup) }
  function ctx.warn(fmt, ...) plan.warnings[#plan.warnings + 1] = fmt:format(...) end
  collectors(ctx, plan, { networks = interpolated(doc, "networks", lookup), configs = interpolated(doc, "configs", lookup),
    secrets = interpolated(doc, "secrets", lookup) })
  -- the services up would start: no profile, or an active one, and their dependencies
  local profile_lookup = opts.profiles and { COMPOSE_PROFILES = table.concat(opts.profiles, ",") } or lookup
  local names, deps, completed = {}, {}, {}
  for _, n in ipairs(project_mod.expected_services({ services = services, lookup = profile_lookup })) do
    -- a dependency that is not defined: its dependent's error (or required: false)
    if type(services[n]) == "table" then names[#names + 1] = n end
  end
  for _, n in ipairs(names) do
    deps[n] = dependencies(n, services[n], services)
    for _, d in ipairs(deps[n]) do
      if d.condition == "service_completed_successfully" then completed[d.name] = true end
    end
  end
  local lv, level_of = levels(names, deps)
  plan.levels = lv
  for _, l in ipairs(lv) do
    for _, n in ipairs(l) do
      local svc = services[n]
      check_keys(ctx, n, svc)
      local one_shot = is_one_shot(svc, type(svc.deploy) == "table" and svc.deploy or {}, completed[n]) and true or false
      local s = service_spec(ctx, n, svc, one_shot)
      plan.services[#plan.services + 1] = { name = s.Name, compose_name = n, spec = s, depends_on = deps[n],
        one_shot = one_shot, level = level_of[n], digest = M.digest(s) }
    end
  end
  for _, k in ipairs { "networks", "volumes", "configs", "secrets" } do
    table.sort(plan[k], function(a, b) return a.name < b.name end)
  end
  return plan
end

function M.build(project, opts)
  if type(project) ~= "table" then return nil, "stack.spec.build: expected a project" end
  local ok, res = pcall(build, project, opts or {})
  if ok then return res end
  if type(res) == "table" and res.msg then return nil, res.msg end
  error(res, 0)
end

return M
