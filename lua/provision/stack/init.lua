-- provision.stack: a compose project deployed as a Docker Swarm stack
-- through the Engine API of a manager (no `docker stack deploy`, no
-- process), as the CLI labels it (com.docker.stack.namespace), so `docker
-- stack ls / ps / rm` see it.
--
--   stack.deployed { name, dir?, files?, env_file?, engine?, env?, timeout?,
--                    endpoint_mode?, published_mode?, profiles?, purge?, nodes? }
--     dir (default "."): the compose project's folder; files: its compose
--       files, merged in order as Compose merges -f a -f b (default:
--       Compose's lookup in dir, COMPOSE_FILE too);
--       env_file (default dir/.env): interpolated as the compose reader does
--     engine: the manager's URL (default: the local engine)
--     env = { K = V }: wins over the environment and .env
--     timeout (default 5m): how long the whole apply may wait for services
--     endpoint_mode "vip"|"dnsrr", published_mode "ingress"|"host":
--       defaults for the services that do not say
--     nodes = { URL, ... }: the other nodes' engines, for teardown: the
--       containers a job's tasks leave on their node (Swarm keeps them after
--       the service is removed) and, with purge, the volumes, are removed
--       there too; a node not listed keeps those (the manager cannot reach them)
--     purge = true: teardown removes the stack's named volumes too, on the
--       manager and on each engine of nodes (volumes are per node)
--
-- Check (plan runs the same): the stack's services on the manager against
-- the specs built from the files (provision/stack/spec.lua): a service
-- missing, one whose spec digest (kept in its own label
-- org.provision.spec-digest) differs, one changed by hand (what the file
-- sets differs on the engine: provision/stack/deploy.lua's differs), one
-- with fewer replicas running than it wants (or a job that failed), an
-- extra service of this stack not in the files; networks, configs, secrets
-- missing. Apply: networks, then configs and secrets, then the services
-- level by level (depends_on): each level's services created (or updated,
-- only those that changed; an unchanged job does not run again), then
-- waited for, running (healthy, with a healthcheck: swarm marks a task
-- running once healthy) or, for a job, complete, before the next level is
-- touched; extra services removed first (as --prune). A failure names the
-- service, its task's node, error and log tail.
--
-- Ownership: a service, network, config or secret of the stack's namespace
-- without provision's mark (deploy.lua) was not made by this resource (a
-- `docker stack deploy` of the same name, say): the check fails naming it
-- and nothing of it is updated or removed.
-- Configs and secrets are immutable in Swarm: one whose content changed is
-- an error naming it (remove the stack first, or give it another name:).
-- Bind mounts: their source paths are checked on this machine when the
-- engine is local (a task scheduled on another node may still miss it: its
-- task error says so); with a remote engine they are not checked.
local FS = require "provision._fs"
local core = require "provision._core"
local api = require "provision.docker.api"
local json = require "provision.json"
local R = require "provision.resource"
local model = require "provision.compose.project"
local spec_mod = require "provision.stack.spec"
local D = require "provision.stack.deploy"

local M = {}
local NS = spec_mod.NAMESPACE_LABEL

-- the project and its plan -> project, plan | nil, message, missing
local function build(self)
  local dir = self.dir or "."
  local project, err, missing = model.load_project { project_dir = dir, file = self.files,
    env_file = self.env_file }
  if not project then return nil, err, missing end
  local plan, perr = spec_mod.build(project, { stack = self.name, env = self.env, profiles = self.profiles,
    endpoint_mode = self.endpoint_mode, published_mode = self.published_mode })
  if not plan then return nil, perr end
  return project, plan
end

local function is_local(url) return url == nil or url == "" or url:match("^unix://") ~= nil end

-- what Swarm cannot do that the plan can tell: a bind's source missing
local function binds_ok(self, plan, ctx)
  if not is_local(self.engine) then
    if #plan.binds > 0 and ctx.log then ctx:log("bind mount sources not checked: the engine is not local") end
    return true
  end
  for _, b in ipairs(plan.binds) do
    if not FS.stat(b.path) then
      return nil, ("service %s: bind mount source %s does not exist on this machine (swarm does not create it)")
        :format(b.service, b.path)
    end
  end
  return true
end

local function by_name(list)
  local out = {}
  for _, x in ipairs(list or {}) do out[D.name(x)] = x end
  return out
end

-- the content of a config or secret (never shown) and its digest
local function content(o)
  if o.file then
    local data, err = core.read_file(o.file)
    if not data then return nil, err end
    return data, FS.sha256_string(data)
  end
  local data = R.reveal(o.content) or ""
  return data, FS.sha256_string(data)
end

-- the engine's view of the stack -> seen | nil, message; refuses what is
-- in the stack's namespace without provision's mark
local function survey(E, stack)
  local seen = {}
  local svcs, err = D.services(E, stack)
  if not svcs then return nil, err end
  for _, s in ipairs(svcs) do
    if not D.labels(s)[D.DIGEST_LABEL] then
      return nil, ("service %s of stack %s was not deployed by provision (no %s label): "
        .. "not touching it (docker service rm it, or name the stack otherwise)"):format(D.name(s), stack, D.DIGEST_LABEL)
    end
  end
  seen.services = by_name(svcs)
  for _, kind in ipairs { "networks", "configs", "secrets" } do
    local list, lerr = D.objects(E, kind, stack)
    if not list then return nil, lerr end
    for _, x in ipairs(list) do
      if D.labels(x)[D.OWNER_LABEL] ~= stack then
        return nil, ("%s %s of stack %s was not made by provision: not touching it"):format(kind:sub(1, -2), D.name(x), stack)
      end
    end
    seen[kind] = by_name(list)
  end
  return seen
end

-- what is to do for a plan's service: nil (nothing) or "why"
-- (tasks: the service's tasks)
local function service_change(entry, svc, stack, ids, tasks)
  if not svc then return "to create" end
  if D.labels(svc)[D.DIGEST_LABEL] ~= entry.digest then return "spec changed (compose file or .env)" end
  local where = D.differs(D.sent(entry, stack, ids), svc.Spec, "")
  if where then return "changed on the engine since it was deployed (" .. where .. ")" end
  local st, why = D.status(svc, tasks or {})
  if st == "failed" then return (entry.one_shot and "job failed: runs again" or why) end
  if st == "pending" then return (entry.one_shot and "job not complete: " or "not ready: ") .. why end
  return nil
end

-- changes(self, E, plan) -> list of lines | nil, message
local function changes(self, E, plan)
  local seen, err = survey(E, self.name)
  if not seen then return nil, err end
  local out = {}
  local ids = D.ids(seen)
  for _, n in ipairs(plan.networks) do
    if n.external then
      local x = E.call("GET", "/networks/" .. E.urlencode(n.name))
      if type(x) ~= "table" then return nil, ("network %s is external, but not there"):format(n.name) end
      ids.networks[n.name] = D.id(x)
    elseif not seen.networks[n.name] then out[#out + 1] = "network " .. n.name .. ": to create" end
  end
  for _, kind in ipairs { "configs", "secrets" } do
    for _, o in ipairs(plan[kind]) do
      local have = seen[kind][o.name]
      if not o.external then
        local _, digest = content(o)
        if not digest then return nil, ("%s %s: cannot read %s"):format(kind:sub(1, -2), o.name, tostring(o.file)) end
        if not have then out[#out + 1] = ("%s %s: to create"):format(kind:sub(1, -2), o.name)
        elseif D.labels(have)[D.DIGEST_LABEL] ~= digest then
          return nil, ("%s %s changed, and swarm's %s cannot change: remove the stack first, or give it another name"):format(
            kind:sub(1, -2), o.name, kind)
        end
      end
    end
  end
  local listed = {}
  for _, svc in pairs(seen.services) do listed[#listed + 1] = svc end
  local tasks, terr = D.tasks_by_service(E, listed)
  if not tasks then return nil, terr end
  local wanted = {}
  for _, entry in ipairs(plan.services) do
    wanted[entry.name] = true
    local svc = seen.services[entry.name]
    local why = service_change(entry, svc, self.name, ids, svc and tasks[svc.ID])
    if why then out[#out + 1] = ("service %s: %s"):format(entry.compose_name, why) end
  end
  for name in pairs(seen.services) do
    if not wanted[name] then out[#out + 1] = ("service %s: not in the compose file: to remove"):format(name) end
  end
  table.sort(out)
  return out, nil, seen
end

-- ---- apply's parts

-- the networks -> { name = id } | nil, message
local function create_networks(E, plan, seen, stack)
  local ids = D.ids(seen).networks
  for _, n in ipairs(plan.networks) do
    if n.external then
      local x, err = E.call("GET", "/networks/" .. E.urlencode(n.name))
      if type(x) ~= "table" then return nil, err or ("network %s is external, but not there"):format(n.name) end
      ids[n.name] = D.id(x)
    elseif not ids[n.name] then
      local spec = json.decode(json.encode(n.spec))
      spec.Labels[D.OWNER_LABEL] = stack
      spec.CheckDuplicate = true
      local r, err = E.call("POST", "/networks/create", { body = json.encode(spec), content_type = "application/json" })
      if not r then return nil, err end
      ids[n.name] = D.id(r)
    end
  end
  return ids
end

-- configs and secrets -> { configs = { name = id }, secrets = ... } | nil, message
local function create_objects(E, plan, seen, stack)
  local ids = { configs = {}, secrets = {} }
  for _, kind in ipairs { "configs", "secrets" } do
    for _, o in ipairs(plan[kind]) do
      local have = seen[kind][o.name]
      if o.external then
        local x, err = E.call("GET", "/" .. kind .. "/" .. E.urlencode(o.name))
        if not x then return nil, err end
        ids[kind][o.name] = x.ID
      elseif have then
        ids[kind][o.name] = have.ID
      else
        local data, digest = content(o)
        if not data then return nil, digest end
        local labels = json.decode(json.encode(o.labels))
        labels[D.OWNER_LABEL], labels[D.DIGEST_LABEL] = stack, digest
        local body = json.encode { Name = o.name, Labels = labels, Data = D.base64(data) }
        local r, err = E.call("POST", "/" .. kind .. "/create", { body = body, content_type = "application/json" })
        if not r then return nil, err end
        ids[kind][o.name] = r.ID
      end
    end
  end
  return ids
end

-- create or update one service -> item to wait for | nil, message
local function deploy_service(E, entry, svc, why, ids, stack, ctx)
  local spec = D.sent(entry, stack, ids)
  local item = { name = entry.compose_name, one_shot = entry.one_shot }
  if not svc then
    local r, err = E.call("POST", "/services/create", { body = json.encode(spec), content_type = "application/json" })
    if not r then return nil, err end
    item.id, item.before = r.ID, {}
  else
    item.id, item.before = svc.ID, D.task_ids(E, svc.ID)
    if entry.one_shot and D.labels(svc)[D.DIGEST_LABEL] == entry.digest then
      -- the same job again (it failed, or was changed by hand): a new iteration
      spec.TaskTemplate.ForceUpdate = (svc.Spec.TaskTemplate.ForceUpdate or 0) + 1
    end
    local _, err = E.call("POST", ("/services/%s/update?version=%d"):format(svc.ID, svc.Version.Index),
      { body = json.encode(spec), content_type = "application/json" })
    if err then return nil, err end
  end
  if ctx.log then ctx:log(("service %s: %s"):format(entry.compose_name, svc and ("updated (" .. why .. ")") or "created")) end
  return item
end

local function prune(E, plan, seen, ctx)
  local wanted = {}
  for _, e in ipairs(plan.services) do wanted[e.name] = true end
  for name, s in pairs(seen.services) do
    if not wanted[name] then
      local _, err, status = E.call("DELETE", "/services/" .. s.ID)
      if err and status ~= 404 then return nil, err end
      if ctx.log then ctx:log("service " .. name .. ": removed (not in the compose file)") end
    end
  end
  return true
end

local function apply(self, ctx)
  local E = api.on(self.engine)
  local _, plan = build(self)
  if not _ then return nil, plan end
  local ok, berr = binds_ok(self, plan, ctx)
  if not ok then return nil, berr end
  ctx.state.stack, ctx.state.engine, ctx.state.nodes = self.name, self.engine, self.nodes
  ctx.state.purge = self.purge
  local seen, serr = survey(E, self.name)
  if not seen then return nil, serr end
  local pok, perr = prune(E, plan, seen, ctx)
  if not pok then return nil, perr end
  local nets, nerr = create_networks(E, plan, seen, self.name)
  if not nets then return nil, nerr end
  local ids, oerr = create_objects(E, plan, seen, self.name)
  if not ids then return nil, oerr end
  ids.networks = nets
  local timeout = self.timeout or ctx.timeout or 300
  local deadline, by_compose, changed = core.now() + timeout, {}, 0
  for _, e in ipairs(plan.services) do by_compose[e.compose_name] = e end
  for _, level in ipairs(plan.levels) do
    local items = {}
    for _, n in ipairs(level) do
      local entry = by_compose[n]
      local svc = seen.services[entry.name]
      local tasks
      if svc then
        local terr
        tasks, terr = D.tasks(E, { svc.ID })
        if not tasks then return nil, terr end
      end
      local why = service_change(entry, svc, self.name, ids, tasks)
      local item
      local waiting = svc and why and (why:match("^not ready") or why:match("^job not complete"))
      if why and not waiting then
        local derr
        item, derr = deploy_service(E, entry, svc, why, ids, self.name, ctx)
        if not item then return nil, derr end
        changed = changed + 1
      else
        item = { name = n, id = svc.ID }
      end
      items[#items + 1] = item
    end
    local wok, werr = D.wait(E, items, deadline, timeout, ctx)
    if not wok then return nil, werr end
  end
  if ctx.detail then ctx:detail(("%d services, %d created or updated"):format(#plan.services, changed)) end
  for _, w in ipairs(plan.warnings) do if ctx.log then ctx:log("warning: " .. w) end end
  return true
end

-- ---- teardown

-- delete each of list (ids) at /kind/ID; 404 is gone already
local function delete_all(E, kind, list, deadline)
  for _, x in ipairs(list) do
    while true do
      local _, err, status = E.call("DELETE", "/" .. kind .. "/" .. E.urlencode(x.ID or x.Id or x.Name))
      if not err or status == 404 then break end
      -- a network still in use by the tasks being removed: retry until the deadline
      if core.now() > deadline then return nil, err end
      core.sleep(0.25)
    end
  end
  return true
end

local function mine(list, stack, label)
  local out = {}
  for _, x in ipairs(list or {}) do
    local l = D.labels(x)
    if (label == D.DIGEST_LABEL and l[label]) or l[label] == stack then out[#out + 1] = x end
  end
  return out
end

-- until the manager lists no live task of the removed services (a filter
-- by a removed service's id is a 404: all tasks, then by ServiceID). A
-- job's finished tasks stay listed for good (Swarm 20.10 never reaps them):
-- not waited for.
local ENDED = { complete = true, failed = true, shutdown = true, rejected = true, orphaned = true }
local function wait_tasks_gone(E, ids, deadline)
  local gone = {}
  for _, id in ipairs(ids) do gone[id] = true end
  while next(gone) do
    local tasks, err = E.call("GET", "/tasks")
    if not tasks then return nil, err end
    local left = 0
    for _, t in ipairs(tasks) do
      if gone[t.ServiceID] and not ENDED[type(t.Status) == "table" and t.Status.State] then left = left + 1 end
    end
    if left == 0 then return true end
    if core.now() > deadline then return nil, ("%d tasks of the stack still there"):format(left) end
    core.sleep(0.25)
  end
  return true
end

-- the containers of the removed services left on each engine: a job's
-- finished tasks keep theirs on their node after `service rm` (Swarm
-- 20.10), the others' go as their node stops them. Removed on the manager
-- and on nodes (the only engines reachable), then waited for.
local function remove_containers(engines, stack, ids, deadline)
  local gone = {}
  for _, id in ipairs(ids) do gone[id] = true end
  for _, e in ipairs(engines) do
    while true do
      local list, err = e.containers { labels = { NS .. "=" .. stack } }
      if not list then return nil, err end
      local left = 0
      for _, c in ipairs(list) do
        if gone[(c.Labels or {})["com.docker.swarm.service.id"]] then
          left = left + 1
          local ok, rerr, status = e.container_remove(c.Id, { force = true })
          if not ok and status ~= 409 then return nil, rerr end
        end
      end
      if left == 0 then break end
      if core.now() > deadline then return nil, ("%d containers of stack %s left on %s"):format(left, stack, e.host()) end
      core.sleep(0.25)
    end
  end
  return true
end

-- a plan of teardown: what revert would remove (the stack's services,
-- networks, configs and secrets this resource made; with purge, its named
-- volumes on each engine), nothing done
local function preview(self, ctx, E, stack, engines)
  local n = 0
  local function gone(what) ctx:log("- " .. what); n = n + 1 end
  local svcs, err = D.services(E, stack)
  if not svcs then return nil, err end
  for _, s in ipairs(mine(svcs, stack, D.DIGEST_LABEL)) do gone("service " .. D.name(s)) end
  for _, kind in ipairs { "networks", "configs", "secrets" } do
    local list, lerr = D.objects(E, kind, stack)
    if not list then return nil, lerr end
    for _, x in ipairs(mine(list, stack, D.OWNER_LABEL)) do gone(kind:sub(1, -2) .. " " .. D.name(x)) end
  end
  local purge = ctx.state.purge or self.purge
  for _, e in ipairs(engines) do
    local vols, verr = e.volumes { labels = { D.OWNER_LABEL .. "=" .. stack } }
    if not vols then return nil, verr end
    for _, v in ipairs(vols) do
      if purge then gone(("volume %s on %s"):format(v.Name, e.host()))
      else ctx:log(("= volume %s on %s: left, the stack's data (purge = true removes it)"):format(v.Name, e.host())) end
    end
  end
  ctx:detail(n > 0 and ("would remove %d objects of stack %s"):format(n, stack)
    or ("nothing to remove: stack %s has nothing of provision's"):format(stack))
  return n > 0
end

local function revert(self, ctx)
  local stack = ctx.state.stack or self.name
  local E = api.on(ctx.state.engine or self.engine)
  if ctx.plan then
    local engines = { E }
    for _, u in ipairs(ctx.state.nodes or self.nodes or {}) do engines[#engines + 1] = api.on(u) end
    return preview(self, ctx, E, stack, engines)
  end
  local deadline = core.now() + (self.timeout or 120)
  local svcs, err = D.services(E, stack)
  if not svcs then return nil, err end
  svcs = mine(svcs, stack, D.DIGEST_LABEL)
  local ok, derr = delete_all(E, "services", svcs, deadline)
  if not ok then return nil, derr end
  local ids = {}
  for _, s in ipairs(svcs) do ids[#ids + 1] = s.ID end
  ok, derr = wait_tasks_gone(E, ids, deadline)
  if not ok then return nil, derr end
  local engines = { E }
  for _, u in ipairs(ctx.state.nodes or self.nodes or {}) do engines[#engines + 1] = api.on(u) end
  ok, derr = remove_containers(engines, stack, ids, deadline)
  if not ok then return nil, derr end
  local n = #svcs
  for _, kind in ipairs { "networks", "configs", "secrets" } do
    local list, lerr = D.objects(E, kind, stack)
    if not list then return nil, lerr end
    list = mine(list, stack, D.OWNER_LABEL)
    ok, derr = delete_all(E, kind, list, deadline)
    if not ok then return nil, derr end
    n = n + #list
  end
  if ctx.state.purge or self.purge then
    for _, e in ipairs(engines) do
      local vols, verr = e.volumes { labels = { D.OWNER_LABEL .. "=" .. stack } }
      if not vols then return nil, verr end
      for _, v in ipairs(vols) do
        local rok, rerr = e.volume_remove(v.Name)
        if not rok then return nil, rerr end
        n = n + 1
      end
    end
  end
  if ctx.detail then ctx:detail(("%d objects of stack %s removed"):format(n, stack)) end
  return n > 0
end

M.deployed = R.define {
  kind = "stack.deployed",
  positional = "name",
  options = {
    name = { "string", doc = "the stack's name (docker stack ls shows it)" },
    dir = { "string?", doc = "the compose project's folder (default \".\")" },
    files = { "strings?", doc = "its compose files, merged in order as Compose merges -f a -f b (default: Compose's lookup in dir)" },
    env_file = { "string?", doc = "the .env the files are interpolated with (default dir/.env)" },
    engine = { "string?", doc = "the manager's engine URL (docs/engines.md; default: the local engine)" },
    env = { "table?", doc = "variables for interpolation, { K = V }: win over the environment and .env" },
    timeout = { "duration?", doc = "how long the whole apply may wait for the services (default 5m)" },
    endpoint_mode = { "string?", doc = "\"vip\" or \"dnsrr\": for services that do not say (vip needs the kernel's IPVS)" },
    published_mode = { "string?", doc = "\"ingress\" or \"host\": how ports are published, for services that do not say" },
    profiles = { "strings?", doc = "the Compose profiles to turn on (as COMPOSE_PROFILES does)" },
    purge = { "boolean?", doc = "true: teardown also removes the stack's named volumes, on the manager and each of nodes" },
    nodes = { "strings?", doc = "the other nodes' engine URLs, where teardown also cleans up (job containers, volumes)" },
  },
  describe = function(self) return "swarm stack " .. self.name .. " deployed" end,
  check = function(self, ctx)
    local E = api.on(self.engine)
    local _, plan, missing = build(self)
    if not _ then
      if missing then return false, plan .. " yet" end
      return nil, plan
    end
    local ok, berr = binds_ok(self, plan, ctx)
    if not ok then return nil, berr end
    local list, err = changes(self, E, plan)
    if not list then return nil, err end
    if #list == 0 then return true end
    return false, list
  end,
  apply = apply,
  state_revert = true,
  plan_revert = true,   -- revert with ctx.plan: what it would remove, nothing done
  revert = revert,
}

return M
