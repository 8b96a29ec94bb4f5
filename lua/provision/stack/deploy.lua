-- provision.stack.deploy: the engine side of stack.deployed (a compose
-- project as a Docker Swarm stack, provision/stack/init.lua): what a stack
-- has on a manager, how each service is doing, the waits and the failure
-- reports. Engine API calls only (E = provision.docker.api.on(url)), no
-- process.
--
-- Ownership marks (what teardown and prune may remove):
--   services: label org.provision.spec-digest = the digest of the spec sent
--     (stack/spec.lua's), so the check needs no local state
--   networks, configs, secrets and named volumes: label org.provision.stack
--     = the stack's name
-- A stack object without its mark was made by someone else (`docker stack
-- deploy`, by hand): never updated, pruned nor removed.
--
-- What Swarm 20.10 does (seen on the two-node fixture):
--   a task whose service has a healthcheck stays "starting" until its
--   container's first healthcheck passes, then is "running": running means
--   healthy (once). A container that turns unhealthy is killed and its task
--   "failed" ("task: non-zero exit (137): dockerexec: unhealthy container"),
--   and a new task replaces it. One unhealthy before its first healthy (a
--   slow start without start_period: retries used up) fails the task too,
--   on the manager as "network sandbox does not exist for container ..."
--   (the executor tore it down on "unhealthy", then saw "healthy")
--   a job's tasks (ReplicatedJob) end "complete" (exit 0) or "failed" with
--   Err "task: non-zero exit (N)"; each carries JobIteration.Index, which
--   an update of the service moves on (the job runs again)
--   GET /services/ID/logs on the manager gives the log lines of the tasks
--   on every node
local core = require "provision._core"
local json = require "provision.json"
local secret = require "provision.secret"
local spec_mod = require "provision.stack.spec"

local D = {}
D.DIGEST_LABEL = "org.provision.spec-digest"
D.OWNER_LABEL = "org.provision.stack"
local NS = spec_mod.NAMESPACE_LABEL

local function arr(v) return type(v) == "table" and v or {} end
local function filters(E, t) return "?filters=" .. E.urlencode(json.encode(t)) end
local function stack_filter(E, stack) return filters(E, { label = { NS .. "=" .. stack } }) end

-- the stack's services, networks, configs, secrets on the manager
-- (kind: "services", "networks", "configs", "secrets")
function D.objects(E, kind, stack) return E.call("GET", "/" .. kind .. stack_filter(E, stack)) end
function D.services(E, stack) return D.objects(E, "services", stack) end
function D.tasks(E, ids) return E.call("GET", "/tasks" .. filters(E, { service = ids })) end
function D.labels(x)
  local spec = type(x.Spec) == "table" and x.Spec or x
  return type(spec.Labels) == "table" and spec.Labels or {}
end
function D.name(x) return type(x.Spec) == "table" and x.Spec.Name or x.Name end
function D.id(x) return x.ID or x.Id end

-- ids(seen) -> { networks = { name = id }, configs = ..., secrets = ... }
-- of what the engine has (seen: kind -> { name -> object })
function D.ids(seen)
  local out = {}
  for _, kind in ipairs { "networks", "configs", "secrets" } do
    out[kind] = {}
    for name, x in pairs(seen[kind] or {}) do out[kind][name] = D.id(x) end
  end
  return out
end

-- ---- the spec as sent, and how a service on the engine differs from it

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- sent(entry, ids) -> the ServiceSpec POSTed for a plan's service: the
-- digest label, the owner label on its named volumes, and the IDs of its
-- secrets, configs and networks (ids = { secrets = { name = id },
-- configs = ..., networks = ... }, from the engine)
function D.sent(entry, stack, ids)
  local s = copy(entry.spec)
  s.Labels[D.DIGEST_LABEL] = entry.digest
  local cs = s.TaskTemplate.ContainerSpec
  for _, m in ipairs(cs.Mounts or {}) do
    local vo = m.VolumeOptions
    if m.Type == "volume" and vo and vo.Labels and vo.Labels[NS] then vo.Labels[D.OWNER_LABEL] = stack end
  end
  for kind, key in pairs { Secrets = "Secret", Configs = "Config" } do
    for _, r in ipairs(cs[kind] or {}) do
      r[key .. "ID"] = ids and ids[kind:lower()][r[key .. "Name"]] or nil
    end
  end
  -- the engine keeps a network's ID as the Target, whichever was sent
  for _, n in ipairs(s.TaskTemplate.Networks or {}) do
    n.Target = ids and ids.networks[n.Target] or n.Target
  end
  return s
end

local function blank(v) return v == nil or v == json.null or v == false or v == 0 or v == "" or (type(v) == "table" and next(v) == nil) end

-- differs(want, got) -> nil | the path of the first difference. What the
-- spec sets must be on the engine as sent (a list: the same length, item by
-- item); what it leaves unset is not compared (the engine fills defaults
-- there: Isolation, Runtime, Resources, ...), so a key added by hand that
-- the file does not set (a label, a limit) is not seen. false, 0, "" and {}
-- equal an absent key (the engine omits them).
local function differs(want, got, path)
  if type(want) ~= "table" then
    if blank(want) and blank(got) then return nil end
    if type(want) == "number" and tonumber(got) == want then return nil end
    return want ~= got and path or nil
  end
  if next(want) == nil then return blank(got) and nil or path end
  if type(got) ~= "table" then return path end
  if want[1] ~= nil then
    if #want ~= #got then return path end
    for i, w in ipairs(want) do
      local d = differs(w, got[i], path .. "[" .. i .. "]")
      if d then return d end
    end
    return nil
  end
  local keys = {}
  for k in pairs(want) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local d = differs(want[k], got[k], path == "" and k or (path .. "." .. k))
    if d then return d end
  end
  return nil
end
D.differs = differs

-- ---- how a service is doing

local BAD = { failed = true, rejected = true }
local function state(t) return type(t.Status) == "table" and t.Status.State or "?" end
local function newest_first(list)
  table.sort(list, function(a, b) return tostring(a.Status.Timestamp) > tostring(b.Status.Timestamp) end)
  return list
end

local function job_progress(s, tasks)
  local mode = s.Spec.Mode
  -- JobIteration.Index 0 is left out of the JSON
  local function index(x) return type(x) == "table" and type(x.JobIteration) == "table" and x.JobIteration.Index or 0 end
  local it = index(s.JobStatus)
  local done, bad, live = 0, {}, 0
  for _, t in ipairs(tasks) do
    if index(t) == it then
      local st = state(t)
      if st == "complete" then done = done + 1
      elseif BAD[st] then bad[#bad + 1] = t
      else live = live + 1 end
    end
  end
  local want = mode.ReplicatedJob and mode.ReplicatedJob.TotalCompletions or nil
  if (want and done >= want) or (not want and done > 0 and live == 0 and #bad == 0) then return "ready" end
  local policy = s.Spec.TaskTemplate.RestartPolicy or {}
  if #bad > 0 and (policy.Condition == "none" or #bad >= 3) then return "failed", "job failed", newest_first(bad)[1] end
  return "pending", ("%d/%s completed"):format(done, want and tostring(want) or "?"), tasks[1]
end

-- status(s, tasks, before) -> "ready" | "pending" | "failed", why, task
-- (the one to report): the service s (as GET /services gives it) by its
-- tasks. before: the ids of the service's tasks before this apply changed
-- it (their failures are not this run's).
function D.status(s, tasks, before)
  local mode, us = s.Spec.Mode, type(s.UpdateStatus) == "table" and s.UpdateStatus or {}
  if mode.ReplicatedJob or mode.GlobalJob then return job_progress(s, tasks) end
  -- a task is of the current spec when its ContainerSpec and ForceUpdate are
  -- the service's (the task's Spec lacks the template's Runtime)
  local tt = s.Spec.TaskTemplate
  local template = spec_mod.canonical { tt.ContainerSpec, tt.ForceUpdate or 0 }
  local running, desired, bad = 0, 0, {}
  for _, t in ipairs(tasks) do
    if t.DesiredState == "running" then
      desired = desired + 1
      if state(t) == "running" and type(t.Spec) == "table"
        and spec_mod.canonical { t.Spec.ContainerSpec, t.Spec.ForceUpdate or 0 } == template then running = running + 1 end
    end
    if BAD[state(t)] and before and not before[t.ID] then bad[#bad + 1] = t end
  end
  newest_first(bad)
  local want = mode.Replicated and mode.Replicated.Replicas or math.max(desired, 1)
  if us.State == "paused" or us.State == "rollback_paused" or us.State == "rollback_completed" then
    return "failed", ("update %s: %s"):format(us.State, tostring(us.Message or "")), bad[1] or tasks[1]
  end
  if #bad >= 3 then return "failed", ("%d tasks failed"):format(#bad), bad[1] end
  local updating = us.State == "updating" or us.State == "rollback_started"
  if running >= want and not updating then return "ready" end
  local why = ("%d/%d running%s"):format(running, want, updating and ", updating" or "")
  local latest = bad[1] or newest_first(tasks)[1]
  return "pending", why, latest
end

-- progress(E, id, before) -> D.status of the service id, as the manager
-- has it now | nil, message
function D.progress(E, id, before)
  local s, err = E.call("GET", "/services/" .. E.urlencode(id))
  if not s then return nil, err end
  local tasks, terr = D.tasks(E, { s.ID })
  if not tasks then return nil, terr end
  return D.status(s, tasks, before)
end

-- tasks_by_service(E, services) -> { service id = { task, ... } } for the
-- services listed, in one request | nil, message
function D.tasks_by_service(E, services)
  local ids, out = {}, {}
  for _, s in ipairs(services) do ids[#ids + 1] = s.ID; out[s.ID] = {} end
  if #ids == 0 then return out end
  local tasks, err = D.tasks(E, ids)
  if not tasks then return nil, err end
  for _, t in ipairs(tasks) do
    if out[t.ServiceID] then table.insert(out[t.ServiceID], t) end
  end
  return out
end

-- ---- failure reports

local hostnames = {}
local function hostname(E, node)
  if not node or node == "" then return "no node yet" end
  local key = (E.url or "") .. "\0" .. node
  if hostnames[key] then return hostnames[key] end
  local n = E.call("GET", "/nodes/" .. E.urlencode(node))
  local h = type(n) == "table" and type(n.Description) == "table" and n.Description.Hostname or node
  hostnames[key] = h
  return h
end

-- the last n lines the service's tasks logged (on any node), masked
function D.log_tail(E, id, n)
  local body = E.call("GET", ("/services/%s/logs?stdout=1&stderr=1&tail=%d"):format(E.urlencode(id), n or 30),
    { raw = true, timeout = 10 })
  if type(body) ~= "string" or body == "" then return "" end
  local text = secret.mask(E.demux(body)):gsub("%s+$", "")
  return text
end

-- report(E, name, id, why, task) -> "service NAME: why; task on node H: state: err (message)" + log tail
function D.report(E, name, id, why, task)
  local out = ("service %s: %s"):format(name, why)
  if type(task) == "table" and type(task.Status) == "table" then
    local st = task.Status
    local err = (st.Err and st.Err ~= "") and (": " .. st.Err) or ""
    out = out .. ("; task %s on node %s: %s%s (%s)"):format(tostring(task.ID):sub(1, 12),
      hostname(E, task.NodeID), tostring(st.State), err, tostring(st.Message or ""))
  end
  local tail = D.log_tail(E, id, 30)
  if tail ~= "" then out = out .. "\n--- last log lines of " .. name .. " ---\n" .. tail end
  return out
end

-- wait(E, items, deadline, ctx) -> true | nil, message. items: { { name,
-- id, before } }: until each is ready, one fails, or the deadline passes
function D.wait(E, items, deadline, timeout, ctx)
  while true do
    local pending
    for _, it in ipairs(items) do
      local st, why, task = D.progress(E, it.id, it.before)
      if not st then return nil, why end
      if st == "failed" then return nil, D.report(E, it.name, it.id, why, task) end
      if st == "pending" and not pending then pending = { it = it, why = why, task = task } end
    end
    if not pending then return true end
    if core.now() > deadline then
      return nil, D.report(E, pending.it.name, pending.it.id,
        ("not ready after %ds (%s)"):format(math.floor(timeout), pending.why), pending.task)
    end
    if (ctx and ctx.interrupted and ctx.interrupted()) or core.interrupted() then return nil, "interrupted" end
    if ctx and ctx.spin then ctx:spin(("waiting for %s: %s"):format(pending.it.name, pending.why)) end
    core.sleep(0.25)
  end
end

-- base64 of s (a config's or secret's Data)
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function D.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local quad = {}
    for k = 1, 4 do
      local v = (n >> (6 * (4 - k))) & 63
      quad[k] = B64:sub(v + 1, v + 1)
    end
    if not b then quad[3] = "=" end
    if not c then quad[4] = "=" end
    out[#out + 1] = table.concat(quad)
  end
  return table.concat(out)
end

-- the ids of a service's tasks now (a set)
function D.task_ids(E, id)
  local set = {}
  for _, t in ipairs(arr(D.tasks(E, { id }))) do set[t.ID] = true end
  return set
end

return D
