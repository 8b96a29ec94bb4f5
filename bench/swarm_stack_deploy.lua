-- bench/swarm_stack_deploy.lua: the swarm compose file recipes/airflow-swarm.lua
-- writes, in the form `docker stack deploy` (the docker CLI's compose
-- schema 3.x) takes, for bench/swarm.sh's by-hand run: depends_on a list
-- (no conditions: the ordering stack deploy does not do), no service
-- behind a profile (left out, as Compose leaves it out by default), a
-- version key, restart: "no" as deploy.restart_policy (stack deploy
-- ignores restart:); and what provision's run gets from -e endpoint_mode=dnsrr
-- -e published_mode=host (no IPVS here): deploy.endpoint_mode dnsrr, ports
-- in host mode. Services, images, placement and replicas as they are.
--   provision --script bench/swarm_stack_deploy.lua FILE [N] > OUT
-- N: only the services of the first N dependency levels (depends_on), for
-- a by-hand run that does the ordering itself: deploy level 1, wait, then
-- levels 1-2, ... ("levels" alone: print how many there are)
local yaml = require "provision.yaml"
local path = assert(arg[1], "usage: provision --script bench/swarm_stack_deploy.lua FILE")
local f = assert(io.open(path))
local doc = assert(yaml.load(f:read("a"), path))
f:close()
doc.version = doc.version or "3.9"
for name, svc in pairs(doc.services) do
  if svc.profiles then doc.services[name] = nil end
end
local function deps_of(svc)
  local out, d = {}, svc.depends_on
  if type(d) ~= "table" then return out end
  if d[1] ~= nil then for _, n in ipairs(d) do out[#out + 1] = n end
  else for n in pairs(d) do out[#out + 1] = n end end
  return out
end
local level = {}
local function level_of(name)
  if level[name] then return level[name] end
  local l = 1
  for _, dep in ipairs(deps_of(doc.services[name] or {})) do
    if doc.services[dep] then l = math.max(l, level_of(dep) + 1) end
  end
  level[name] = l
  return l
end
local top = 0
for name in pairs(doc.services) do top = math.max(top, level_of(name)) end
if arg[2] == "levels" then print(top); return end
local upto = tonumber(arg[2])
if upto then
  for name in pairs(doc.services) do
    if level_of(name) > upto then doc.services[name] = nil end
  end
end
for _, svc in pairs(doc.services) do
  svc.deploy = type(svc.deploy) == "table" and svc.deploy or {}
  svc.deploy.endpoint_mode = "dnsrr"
  -- stack deploy ignores restart: (it says so); its deploy form is read
  if svc.restart == "no" and svc.deploy.restart_policy == nil then svc.deploy.restart_policy = { condition = "none" } end
  svc.restart = nil
  if type(svc.ports) == "table" then
    local ports = {}
    for _, p in ipairs(svc.ports) do
      local published, target = tostring(p):match("^(%d+):(%d+)$")
      if type(p) == "table" then p.mode = "host"; ports[#ports + 1] = p
      elseif published then
        ports[#ports + 1] = { target = math.tointeger(target), published = math.tointeger(published), protocol = "tcp", mode = "host" }
      else error("a port bench/swarm_stack_deploy.lua does not know: " .. tostring(p)) end
    end
    svc.ports = ports
  end
  local deps = svc.depends_on
  if type(deps) == "table" then
    local list = {}
    if deps[1] ~= nil then
      for _, d in ipairs(deps) do if doc.services[d] then list[#list + 1] = d end end
    else
      for d in pairs(deps) do if doc.services[d] then list[#list + 1] = d end end
    end
    table.sort(list)
    svc.depends_on = #list > 0 and list or nil
  end
end
io.write(yaml.dump(doc))
