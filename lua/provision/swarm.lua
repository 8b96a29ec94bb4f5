-- provision.swarm: Docker Swarm membership, through each node's Engine API
-- (provision.docker.api; engine = URL as the docker.* resources take it, the
-- default engine when left out). No process is spawned.
--
--   swarm.manager { engine?, advertise?, listen = "0.0.0.0:2377", labels? }
--       the node at engine manages a swarm: init one when it is in none; ok
--       when it manages one already; an error when it is a worker, or in a
--       swarm other than the one this step made
--   swarm.worker { engine, manager?, advertise?, listen = "0.0.0.0:2377", labels? }
--       the node at engine is a member of the swarm manager (an engine URL)
--       manages: joins with the worker token read from the manager's API;
--       ok when a member already; an error when it is in another swarm
--   labels = { airflow = "worker" }: node labels, set through the manager
--
-- Teardown makes a node leave only when this step made it init or join (a
-- manager leaves only when no node this recipe did not join is left in its
-- swarm), and puts back the labels it changed as they were.
local api = require "provision.docker.api"
local R = require "provision.resource"
local json = require "provision.json"

local M = {}

local function where(url) return (url and url ~= "") and url or api.host() end

-- the engine's swarm facts: Swarm of GET /info
local function swarm_of(E)
  local info, err = E.info()
  if not info then return nil, err end
  return type(info.Swarm) == "table" and info.Swarm or {}
end

-- the swarm's id: /info has it once the swarm has settled; GET /swarm always
local function cluster_id(sw, E)
  local id = type(sw.Cluster) == "table" and sw.Cluster.ID or nil
  if (id == nil or id == "") and E then
    local s = E.call("GET", "/swarm")
    id = type(s) == "table" and s.ID or nil
  end
  return id
end

-- the worker check's quick answer, from what the last apply recorded
-- (ctx.state.node): the engine says it is a worker in a swarm (GET /swarm
-- refuses, naming it a worker: 1 ms, where GET /info costs 7-10) and the
-- manager lists that node as a ready worker -> node; anything else (an
-- engine that words it otherwise included) -> nil, and the check asks GET
-- /info for the whole picture
local function known_worker(E, ME, ctx)
  local id = ctx.state.node
  if not id then return nil end
  local _, err, status = E.call("GET", "/swarm")
  if status ~= 503 or not tostring(err):find("Worker nodes can't be used", 1, true) then return nil end
  local node = ME.call("GET", "/nodes/" .. api.urlencode(id))
  if type(node) ~= "table" or type(node.Status) ~= "table" or node.Status.State ~= "ready"
    or type(node.Spec) ~= "table" or node.Spec.Role ~= "worker" then return nil end
  return node
end

-- states other than active/inactive: why nothing can be done now
local function unusable(sw, url)
  local st = sw.LocalNodeState
  if st == "pending" then return ("%s is joining a swarm (state pending): wait, or `docker swarm leave` there"):format(url) end
  if st == "locked" then return ("%s: its swarm is locked (autolock): `docker swarm unlock` there first"):format(url) end
  if st == "error" then return ("%s: swarm error: %s"):format(url, tostring(sw.Error or "unknown")) end
  if st ~= "active" and st ~= "inactive" then return ("%s: swarm state %s"):format(url, tostring(st)) end
end

local function manager_addrs(sw)
  local out = {}
  for _, m in ipairs(type(sw.RemoteManagers) == "table" and sw.RemoteManagers or {}) do out[#out + 1] = m.Addr end
  return #out > 0 and table.concat(out, ", ") or "unknown"
end

-- ---- node labels (through a manager's API)

local function validate_labels(self)
  if self.labels == nil then return true end
  for k, v in pairs(self.labels) do
    if type(k) ~= "string" or k == "" then return nil, "labels: keys must be non-empty strings" end
    if type(v) == "number" or type(v) == "boolean" then v = tostring(v); self.labels[k] = v end
    if type(v) ~= "string" then return nil, ("labels: %s must be a string, not a %s"):format(k, type(v)) end
  end
  return true
end

local function node_of(E, id)
  return E.call("GET", "/nodes/" .. api.urlencode(id))
end

local function node_name(node)
  return type(node.Description) == "table" and node.Description.Hostname or node.ID
end

local function label_changes(node, want)
  local have = type(node.Spec) == "table" and type(node.Spec.Labels) == "table" and node.Spec.Labels or {}
  local out, keys = {}, {}
  for k in pairs(want or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if have[k] ~= want[k] then
      out[#out + 1] = ("label %s=%s on node %s%s"):format(k, want[k], node_name(node),
        have[k] and (" (now " .. have[k] .. ")") or "")
    end
  end
  return out
end

-- set(E, id, labels): each key to its value, or away when the value is json.null
local function update_labels(E, id, set)
  local node, err = node_of(E, id)
  if not node then return nil, err end
  local spec = node.Spec or {}
  spec.Labels = type(spec.Labels) == "table" and spec.Labels or {}
  for k, v in pairs(set) do spec.Labels[k] = (v ~= json.null) and v or nil end
  local _, uerr = E.call("POST", ("/nodes/%s/update?version=%d"):format(api.urlencode(id), node.Version.Index),
    { body = json.encode(spec), content_type = "application/json" })
  if uerr then return nil, uerr end
  return true
end

-- apply the labels; ctx.state.labels_before keeps what each key was before
-- this step first set it (json.null: not there)
local function apply_labels(self, E, id, ctx)
  if not self.labels or next(self.labels) == nil then return true end
  local node, err = node_of(E, id)
  if not node then return nil, err end
  local have = type(node.Spec) == "table" and type(node.Spec.Labels) == "table" and node.Spec.Labels or {}
  local before = ctx.state.labels_before or {}
  for k in pairs(self.labels) do
    if before[k] == nil then before[k] = have[k] ~= nil and have[k] or json.null end
  end
  ctx.state.labels_before = before
  ctx.state.labels_node = id
  return update_labels(E, id, self.labels)
end

-- put back the labels this step changed (a node that is gone has none to put back)
local function revert_labels(E, ctx)
  local before, id = ctx.state.labels_before, ctx.state.labels_node
  if not before or not id or next(before) == nil then return true end
  local node, _, status = node_of(E, id)
  if not node then
    if status == 404 then return true end
    return true   -- the manager is gone or left: no labels to put back
  end
  return update_labels(E, id, before)
end

-- node: the node's record when the caller has it already (else fetched)
local function check_labels(self, E, id, node)
  if not self.labels or next(self.labels) == nil then return true end
  local err
  if not node then node, err = node_of(E, id) end
  if not node then return nil, err end
  local ch = label_changes(node, self.labels)
  if #ch == 0 then return true end
  return false, ch
end

-- the entry of this kind apply recorded (what this step made), or nil
local function created(ctx, kind)
  local made
  for _, e in ipairs(ctx.state.created or {}) do if e.type == kind then made = e end end
  return made
end

-- is_manager(E) -> the swarm (GET /swarm) when the engine manages one, else
-- nil. GET /swarm answers in about a millisecond; GET /info, which says
-- what the node is in every case, runs `runc --version` and friends on
-- each call (7-10 ms on engine 20.10), so checks try this first.
local function is_manager(E)
  local s = E.call("GET", "/swarm")
  if type(s) == "table" and s.ID then return s end
end

-- the manager check's quick answer, from what the last apply recorded
-- (ctx.state.cluster and .node): the engine manages that swarm and that
-- node of it is a ready manager -> node; anything else -> nil, and the
-- check asks GET /info for the whole picture
local function known_manager(E, ctx)
  local cluster, id = ctx.state.cluster, ctx.state.node
  if not cluster or not id then return nil end
  local s = is_manager(E)
  if not s or s.ID ~= cluster then return nil end
  local node = node_of(E, id)
  if type(node) ~= "table" or type(node.ManagerStatus) ~= "table" or type(node.Status) ~= "table"
    or node.Status.State ~= "ready" then return nil end
  return node
end

-- ---- a plan of teardown: what the reverts below would do, nothing done

-- the labels revert_labels would put back -> lines
local function preview_labels(E, ctx)
  local before, id = ctx.state.labels_before, ctx.state.labels_node
  if not before or not id or next(before) == nil then return {} end
  local node = node_of(E, id)
  if type(node) ~= "table" then return {} end
  local have = type(node.Spec) == "table" and type(node.Spec.Labels) == "table" and node.Spec.Labels or {}
  local out, keys = {}, {}
  for k in pairs(before) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local was = before[k] ~= json.null and before[k] or nil
    if have[k] ~= was then
      out[#out + 1] = was and ("~ label %s=%s on node %s (put back)"):format(k, was, node_name(node))
        or ("- label %s on node %s"):format(k, node_name(node))
    end
  end
  return out
end

local function said(ctx, lines, detail)
  for _, l in ipairs(lines) do ctx:log(l) end
  if detail then ctx:detail(detail) end
  return #lines > 0
end

local function preview_manager(E, ctx)
  local lines = preview_labels(E, ctx)
  local made = created(ctx, "swarm")
  if not made then
    return said(ctx, lines, #lines == 0 and "the swarm was there before: it stays" or nil)
  end
  local sw, err = swarm_of(E)
  if not sw then return nil, err end
  if sw.LocalNodeState ~= "active" or not sw.ControlAvailable or cluster_id(sw, E) ~= made.cluster then
    return said(ctx, lines, ("%s is no longer in the swarm this step made: nothing to leave"):format(made.engine))
  end
  lines[#lines + 1] = ("- swarm %s: %s leaves it (this step made it)"):format(tostring(made.cluster), made.engine)
  local nodes, nerr = E.call("GET", "/nodes")
  if not nodes then return nil, nerr end
  local others = {}
  for _, n in ipairs(nodes) do if n.ID ~= sw.NodeID then others[#others + 1] = node_name(n) end end
  if #others > 0 then
    lines[#lines + 1] = ("= other nodes in it now: %s (teardown leaves only once the worker steps made theirs leave; "
      .. "a node the recipe did not join keeps the swarm)"):format(table.concat(others, ", "))
  end
  return said(ctx, lines, ("would make %s leave the swarm it made"):format(made.engine))
end

local function preview_worker(self, ME, ctx)
  local lines = preview_labels(ME, ctx)
  local made = created(ctx, "swarm-join")
  if not made then
    return said(ctx, lines, #lines == 0 and "the node was a member before: it stays" or nil)
  end
  local sw, err = swarm_of(api.on(self.engine))
  if not sw then return nil, err end
  if sw.LocalNodeState == "active" and sw.NodeID == made.node then
    lines[#lines + 1] = ("- %s: leaves the swarm of %s (this step joined it)"):format(made.engine, made.manager)
  elseif node_of(ME, made.node) then
    lines[#lines + 1] = ("- node %s: off the manager's list (it left already)"):format(made.node)
  end
  return said(ctx, lines, #lines > 0 and ("would make %s leave the swarm of %s"):format(made.engine, made.manager)
    or "nothing to undo: the node left already")
end

-- ---- swarm.manager

local LISTEN = { "string", default = "0.0.0.0:2377", doc = "the address:port the node listens on for the swarm" }

M.manager = R.define {
  kind = "swarm.manager",
  options = {
    engine = { "string?", doc = "the node's engine URL (docs/engines.md; default: the local engine)" },
    advertise = { "string?", doc = "the address other nodes reach this one at (default: the engine's choice)" },
    listen = LISTEN,
    labels = { "table?", doc = "node labels, { key = value }, set through the manager" },
  },
  validate = validate_labels,
  writes = function(self) return { { name = "swarm " .. where(self.engine) } } end,
  describe = function(self)
    return ("swarm manager %s%s"):format(where(self.engine), self.advertise and (" advertising " .. self.advertise) or "")
  end,
  check = function(self, ctx)
    local url = where(self.engine)
    local E = api.on(self.engine)
    local known = known_manager(E, ctx)
    if known then return check_labels(self, E, known.ID, known) end
    local sw, err = swarm_of(E)
    if not sw then return nil, err end
    local bad = unusable(sw, url)
    if bad then return nil, bad end
    if sw.LocalNodeState == "inactive" then
      return false, { ("init a swarm on %s%s"):format(url, self.advertise and (", advertising " .. self.advertise) or "") }
    end
    if not sw.ControlAvailable then
      return nil, ("%s is a worker in a swarm (managers: %s), not a manager: `docker swarm leave` there, or promote it from its manager")
        :format(url, manager_addrs(sw))
    end
    local made = ctx.state.cluster
    local now = made and cluster_id(sw, E)
    if made and now ~= made then
      return nil, ("%s manages swarm %s, not swarm %s this step made: it left and joined another since")
        :format(url, tostring(now), made)
    end
    return check_labels(self, E, sw.NodeID)
  end,
  apply = function(self, ctx)
    local url = where(self.engine)
    local E = api.on(self.engine)
    local sw, err = swarm_of(E)
    if not sw then return nil, err end
    if sw.LocalNodeState == "inactive" then
      local _, ierr = E.call("POST", "/swarm/init", { content_type = "application/json", timeout = 120,
        body = json.encode { ListenAddr = self.listen, AdvertiseAddr = self.advertise or "" } })
      if ierr then
        if ierr:find("advertise", 1, true) and not self.advertise then
          ierr = ierr .. " (set advertise = the address or interface the other nodes reach)"
        end
        return nil, ierr
      end
      sw, err = swarm_of(E)
      if not sw then return nil, err end
      ctx:created { type = "swarm", engine = url, node = sw.NodeID, cluster = cluster_id(sw, E) }
      ctx:detail(("swarm made on %s (%s)"):format(url, tostring(sw.NodeAddr)))
    end
    ctx.state.cluster = ctx.state.cluster or cluster_id(sw, E)
    ctx.state.node = sw.NodeID
    return apply_labels(self, E, sw.NodeID, ctx)
  end,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = function(self, ctx)
    local E = api.on(self.engine)
    if ctx.plan then return preview_manager(E, ctx) end
    revert_labels(E, ctx)
    local made = created(ctx, "swarm")
    if not made then
      ctx:detail("the swarm was there before: left as it is")
      return false
    end
    local sw, err = swarm_of(E)
    if not sw then return nil, err end
    if sw.LocalNodeState ~= "active" or not sw.ControlAvailable or cluster_id(sw, E) ~= made.cluster then
      ctx:detail(("%s is no longer in the swarm this step made: nothing to leave"):format(made.engine))
      return true
    end
    -- nodes this recipe did not join would be cut off: leave them a swarm
    local nodes, nerr = E.call("GET", "/nodes")
    if not nodes then return nil, nerr end
    local others = {}
    for _, n in ipairs(nodes) do
      if n.ID ~= sw.NodeID then others[#others + 1] = node_name(n) end
    end
    if #others > 0 then
      return nil, ("%s still manages nodes this recipe did not join (%s): make them leave first, then tear down again")
        :format(made.engine, table.concat(others, ", "))
    end
    local _, lerr = E.call("POST", "/swarm/leave?force=1", { timeout = 120 })
    if lerr then return nil, lerr end
    ctx:detail(("%s left the swarm"):format(made.engine))
    return true
  end,
}

-- ---- swarm.worker

-- the address the workers join: the manager's own entry in RemoteManagers
local function join_addr(sw)
  for _, m in ipairs(type(sw.RemoteManagers) == "table" and sw.RemoteManagers or {}) do
    if m.NodeID == sw.NodeID then return m.Addr end
  end
  return sw.NodeAddr and (sw.NodeAddr .. ":2377") or nil
end

-- the manager's swarm (info = true: its GET /info's Swarm, which apply
-- needs for the join address; else GET /swarm's, cheaper), or why the
-- worker cannot join it
local function manager_swarm(self, info)
  local murl = where(self.manager)
  local ME = api.on(self.manager)
  local msw, err
  if info then
    msw, err = swarm_of(ME)
    if not msw then return nil, err end
    if msw.LocalNodeState ~= "active" or not msw.ControlAvailable then msw = nil end
  else
    msw = is_manager(ME)
    if not msw then
      local _, perr = ME.ping()
      if perr then return nil, perr end
    end
  end
  if not msw then return nil, ("%s is not a swarm manager (make it one first: swarm.manager)"):format(murl) end
  return msw, ME, murl
end

M.worker = R.define {
  kind = "swarm.worker",
  options = {
    engine = { "string", doc = "the node's engine URL (docs/engines.md)" },
    manager = { "string?", doc = "the manager's engine URL (default: the local engine)" },
    advertise = { "string?", doc = "the address other nodes reach this one at (default: the engine's choice)" },
    listen = LISTEN,
    labels = { "table?", doc = "node labels, { key = value }, set through the manager" },
  },
  validate = function(self)
    if where(self.engine) == where(self.manager) then
      return nil, ("engine and manager are one engine (%s): a node is either the manager or a worker"):format(where(self.engine))
    end
    return validate_labels(self)
  end,
  reads = function(self) return { { name = "swarm " .. where(self.manager) } } end,
  writes = function(self) return { { name = "swarm node " .. where(self.engine) } } end,
  describe = function(self)
    return ("swarm worker %s in the swarm of %s"):format(where(self.engine), where(self.manager))
  end,
  check = function(self, ctx)
    local url = where(self.engine)
    local msw, ME, murl = manager_swarm(self)
    if not msw then return nil, ME end
    local known = known_worker(api.on(self.engine), ME, ctx)
    if known then return check_labels(self, ME, known.ID, known) end
    local sw, err = swarm_of(api.on(self.engine))
    if not sw then return nil, err end
    local bad = unusable(sw, url)
    if bad then return nil, bad end
    if sw.LocalNodeState == "inactive" then
      return false, { ("%s joins the swarm of %s as a worker"):format(url, murl) }
    end
    local node, nerr, status = node_of(ME, sw.NodeID)
    if not node then
      if status == 404 then
        return nil, ("%s is in another swarm (managers: %s), not the one %s manages: `docker swarm leave` there first")
          :format(url, manager_addrs(sw), murl)
      end
      return nil, nerr
    end
    return check_labels(self, ME, sw.NodeID, node)
  end,
  apply = function(self, ctx)
    local url = where(self.engine)
    local msw, ME, murl = manager_swarm(self, true)
    if not msw then return nil, ME end
    local E = api.on(self.engine)
    local sw, err = swarm_of(E)
    if not sw then return nil, err end
    if sw.LocalNodeState == "inactive" then
      local s, serr = ME.call("GET", "/swarm")
      if not s then return nil, serr end
      local token = type(s.JoinTokens) == "table" and s.JoinTokens.Worker
      local addr = join_addr(msw)
      if not token or not addr then return nil, murl .. ": no worker join token or address in its swarm" end
      local _, jerr = E.call("POST", "/swarm/join", { content_type = "application/json", timeout = 120,
        body = json.encode { ListenAddr = self.listen, AdvertiseAddr = self.advertise or "",
                             RemoteAddrs = { addr }, JoinToken = token } })
      if jerr then return nil, (jerr:gsub(token:gsub("%p", "%%%0"), "***")) end
      sw, err = swarm_of(E)
      if not sw then return nil, err end
      -- it joined before and left since (by hand): the manager still lists
      -- that node (down, or soon). The engine is another node now, and
      -- that one was this step's: it goes from the list
      local before = created(ctx, "swarm-join")
      if before and before.node ~= sw.NodeID and before.manager == murl then
        local _, derr, status = ME.call("DELETE", "/nodes/" .. api.urlencode(before.node) .. "?force=1")
        if derr and status ~= 404 then return nil, derr end
      end
      ctx:created { type = "swarm-join", engine = url, node = sw.NodeID, manager = murl }
      ctx:detail(("%s joined the swarm of %s"):format(url, murl))
    end
    ctx.state.node = sw.NodeID
    return apply_labels(self, ME, sw.NodeID, ctx)
  end,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = function(self, ctx)
    local ME = api.on(self.manager)
    if ctx.plan then return preview_worker(self, ME, ctx) end
    revert_labels(ME, ctx)
    local made = created(ctx, "swarm-join")
    if not made then
      ctx:detail("the node was a member before: left as it is")
      return false
    end
    local E = api.on(self.engine)
    local sw, err = swarm_of(E)
    if not sw then return nil, err end
    if sw.LocalNodeState == "active" and sw.NodeID == made.node then
      local _, lerr = E.call("POST", "/swarm/leave?force=1", { timeout = 120 })
      if lerr then return nil, lerr end
    end
    -- the manager keeps a node that left as "down": remove it from its list
    local node = node_of(ME, made.node)
    if node then
      local _, derr, status = ME.call("DELETE", "/nodes/" .. api.urlencode(made.node) .. "?force=1")
      if derr and status ~= 404 then return nil, derr end
    end
    ctx:detail(("%s left the swarm of %s"):format(made.engine, made.manager))
    return true
  end,
}

return M
