-- provision.compose.engine: a Compose project as the Engine sees it,
-- through provision.docker.api (Compose labels every container, volume and
-- network with its project and service): the services' states and the
-- waits for them, the guards checked before a stack is taken down, the
-- project's volumes, and removing a project without Compose (its file gone).
-- These are the default engine's; engine.on(url) -> the same functions for
-- the engine at url (the resources' engine option).
local docker_api = require "provision.docker.api"
local core = require "provision._core"
local FS = require "provision._fs"
local secret = require "provision.secret"
local model = require "provision.compose.project"

local M = {}

local GOOD_STATES = { healthy = true, running = true, completed = true }
local ONE_SHOT = { [""] = true, no = true, ["on-failure"] = true }

-- "2026-11-26T18:10:03.123456789Z" (Docker's StartedAt) -> seconds since the epoch, or nil
local function utc_seconds(ts)
  local y, mo, d, h, mi, sec, frac = tostring(ts):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)(%.?%d*)Z$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- days from 1970-01-01 (Howard Hinnant's days_from_civil)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) + (tonumber("0" .. frac) or 0)
end
M.utc_seconds = utc_seconds

-- a container restarted by its policy is taken for running once it has
-- stayed up this long: caught between two crashes it is not up
local RESTARTED_SETTLE = 3

-- container_state(inspect) -> state word, detail
--   "healthy" | "running" | "starting" | "unhealthy" | "completed" | "exited" | other docker states
local function container_state(ins)
  local st = ins.State or {}
  local status = st.Status
  if status == "running" then
    local h = st.Health
    if type(h) == "table" and h.Status then
      if h.Status == "healthy" then return "healthy" end
      if h.Status == "unhealthy" then
        local last = type(h.Log) == "table" and h.Log[#h.Log]
        return "unhealthy", last and type(last.Output) == "string" and last.Output:gsub("%s+$", "") or nil
      end
      return "starting"
    end
    local started = utc_seconds(st.StartedAt)
    local up = started and core.time() - started
    if (ins.RestartCount or 0) > 0 and up and up < RESTARTED_SETTLE then
      return "restarted", ("restarted %d times, up %.1fs"):format(ins.RestartCount, math.max(0, up))
    end
    return "running"
  end
  if status == "restarting" then   -- it exited and its restart policy brings it back
    return "restarting", ("exit code %s, restarted %d times"):format(tostring(st.ExitCode), ins.RestartCount or 0)
  end
  if status == "exited" or status == "dead" then
    local rp = ins.HostConfig and ins.HostConfig.RestartPolicy
    local policy = rp and rp.Name or ""
    if st.ExitCode == 0 and ONE_SHOT[policy] then return "completed", "exit code 0" end
    return "exited", "exit code " .. tostring(st.ExitCode)
  end
  return status or "unknown"
end
M.container_state = container_state

-- state from the container list alone (no inspect): nil when it needs one
local function listed_state(c)
  if c.State ~= "running" then return nil end
  local st = c.Status or ""
  if st:find("%(healthy%)") then return "healthy" end
  if st:find("%(health: starting%)") then return "starting" end
  if st:find("unhealthy") then return nil end
  -- a service without a health check counts as running once it has stayed
  -- up for a second: one that exits at once is not taken for started
  if st:find("^Up Less than a second") then return "just started" end
  return "running"
end

-- the service a container of a project runs; nil for a one-off (`run`) container
local function service_of(c)
  local l = c.Labels
  local svc = l and l[docker_api.SERVICE_LABEL]
  if svc and (l["com.docker.compose.oneoff"] or "False") == "False" then return svc end
end


-- restarts after which a restarting service has failed (a crash loop)
local RESTARTS_FAILED = 3

-- judge(states, services, wait) -> ready, pending lines, failed line (or nil)
function M.judge(states, services, wait)
  local pending, failed = {}, nil
  for _, s in ipairs(services) do
    local st = states[s]
    local w = st.state
    -- restarting: it exited; a few restarts may be a slow dependency, more
    -- is a crash loop that waiting out the timeout would not cure
    if w == "unhealthy" or w == "exited" or w == "dead" or (w == "restarting" and (st.restarts or 0) >= RESTARTS_FAILED) then
      failed = failed or ("service %s: %s%s"):format(s, w, st.detail and (" (" .. st.detail .. ")") or "")
      pending[#pending + 1] = ("service %s: %s"):format(s, w)
    elseif w == "missing" then
      pending[#pending + 1] = ("service %s: no container"):format(s)
    elseif w == "starting" then
      if wait == "healthy" then pending[#pending + 1] = ("service %s: health starting"):format(s) end
    elseif not GOOD_STATES[w] then
      pending[#pending + 1] = ("service %s: not running (%s)"):format(s, w)
    end
  end
  return #pending == 0, pending, failed
end


-- Compose tells projects apart by name alone, and the name comes from the
-- folder's: ./a/airflow and ./b/airflow are both "airflow". Before taking a
-- project down, make sure its containers are this folder's (Compose labels
-- each with the folder it was started from): nil, message when one is not.
local WORKDIR_LABEL = "com.docker.compose.project.working_dir"
local function container_name(c)
  return (((c.Names and c.Names[1]) or c.Id or "?"):gsub("^/", ""))
end


-- the services' states and their logs, from engine api
local function bind_states(E, api)
  -- service_states(project_name, services [, full [, list]]) ->
  --   { [service] = { state=, detail=, id=, name=, started=, exit_code= } } | nil, msg
  -- One GET /containers/json; a container is inspected only when the list
  -- cannot tell (exited: its restart policy; unhealthy: the probe's output),
  -- or for every container with full = true (started times). list: the
  -- project's containers when the caller has them already. One service
  -- asked (run_once): the engine lists that service's containers only.
  function E.service_states(name, services, full, list)
    local err
    if not list then
      local one = services and #services == 1 and services[1] or nil
      list, err = api.containers { project = name, service = one }
      if not list then return nil, err end
    end
    local by = {}
    for _, c in ipairs(list) do
      local svc = service_of(c)
      if svc then
        local entry = { id = c.Id, name = (c.Names and c.Names[1] or ""):gsub("^/", "") }
        local s = not full and listed_state(c)
        if s then
          entry.state, entry.exit_code = s, 0
        else
          local ins, ierr = api.inspect(c.Id)
          if ins then
            entry.state, entry.detail = container_state(ins)
            entry.started = ins.State and ins.State.StartedAt
            entry.exit_code = ins.State and ins.State.ExitCode
            entry.restarts = ins.RestartCount or 0
          elseif not ierr:find("404") then
            return nil, ierr
          end
        end
        local prev = by[svc]
        -- of several replicas, report the worst
        if entry.state and (not prev or not GOOD_STATES[entry.state]) then by[svc] = entry end
      end
    end
    for _, sname in ipairs(services or {}) do
      if not by[sname] then by[sname] = { state = "missing" } end
    end
    return by
  end


  -- the last n (20) lines a service's container logged, masked, for a
  -- failure's message ("" when there are none)
  local function logs_tail(states, service, n)
    local st = states and states[service]
    if not st or not st.id then return "" end
    local text = api.logs(st.id, { tail = n or 20 })
    if not text or text == "" then return "" end
    text = secret.mask(text):gsub("%s+$", "")
    return "\n--- last log lines of " .. service .. " ---\n" .. text
  end
  E.logs_tail = logs_tail
end

-- waiting for the services (through M.service_states)
local function bind_waits(E, api)

  -- wait_for(project, services, wait, timeout, ctx) -> true | nil, msg
  function E.wait_for(name, services, wait, timeout, ctx)
    local t0 = core.now()
    local delay = 0.1
    while true do
      local states, err = E.service_states(name, services)
      if not states then return nil, err end
      local ready, pending, failed = E.judge(states, services, wait)
      if ready then return true end
      if failed then
        local svc = failed:match("^service (%S+):")
        return nil, failed .. E.logs_tail(states, svc)
      end
      local elapsed = core.now() - t0
      if elapsed > timeout then
        local svc = pending[1]:match("^service (%S+):")
        return nil, ("timed out after %ds waiting for %s: %s%s"):format(math.floor(timeout),
          wait, table.concat(pending, ", "), E.logs_tail(states, svc))
      end
      if (ctx and ctx.interrupted and ctx.interrupted()) or core.interrupted() then return nil, "interrupted" end
      if ctx and ctx.spin then ctx:spin(("waiting for %s: %s"):format(wait, pending[1])) end
      core.sleep(delay)
    end
  end

  -- after `up` of a one-shot service: wait until its container, started anew
  -- (another start than prev_start), has exited. -> true (exit 0) | nil, msg
  function E.wait_one_shot(name, service, prev_start, timeout, ctx)
    local t0 = core.now()
    while true do
      local states, serr = E.service_states(name, { service }, true)
      if not states then return nil, serr end
      local st = states[service]
      local fresh = st.started and st.started ~= prev_start
      -- a one-shot whose restart policy brings it back after a failure
      -- (on-failure) has failed: it is not waited for until the timeout
      if st.state == "restarting" and st.exit_code and st.exit_code ~= 0 then
        return nil, ("service %s exited with code %s (%s)%s"):format(service, tostring(st.exit_code),
          st.detail or "restarting", E.logs_tail(states, service, 30))
      end
      if fresh and (st.state == "completed" or st.state == "exited") then
        if st.exit_code ~= 0 then
          return nil, ("service %s exited with code %s%s"):format(service, tostring(st.exit_code),
            E.logs_tail(states, service, 30))
        end
        return true
      end
      if st.state == "missing" and core.now() - t0 > 5 then
        return nil, ("service %s: no container after `up`"):format(service)
      end
      if core.now() - t0 > timeout then
        return nil, ("service %s: still %s after %ds%s"):format(service, st.state,
          math.floor(timeout), E.logs_tail(states, service))
      end
      if core.interrupted() then return nil, "interrupted" end
      if ctx.spin then ctx:spin(("running %s"):format(service)) end
      core.sleep(0.1)
    end
  end

end

-- what is checked before a stack is taken down; removing one through the API
local function bind_guards(E, api)
  local function foreign_guard(project)
    local list, err = api.containers { project = project.name }
    if not list then return nil, err end
    local wdir = project.workdir or project.dir
    local here = FS.realpath(wdir) or wdir
    for _, c in ipairs(list) do
      local wd = c.Labels and c.Labels[WORKDIR_LABEL]
      if wd and wd ~= "" and (FS.realpath(wd) or wd) ~= here then
        return nil, ("project %s: container %s was started from %s, not %s; not taking it down"
          .. " (give the stacks different project names: project = \"...\")"):format(project.name, container_name(c), wd, here)
      end
    end
    return true
  end
  E.foreign_guard = foreign_guard

  -- the containers of the project whose service the compose file no longer
  -- has (removed or renamed since they were started): "name (service x)".
  -- list: the project's containers when the caller has them already.
  local function orphans(project, list)
    local err
    if not list then
      list, err = api.containers { project = project.name }
      if not list then return nil, err end
    end
    local out = {}
    for _, c in ipairs(list) do
      local svc = service_of(c)
      if svc and not project.services[svc] then
        out[#out + 1] = ("%s (service %s)"):format(container_name(c), svc)
      end
    end
    return out
  end
  E.orphans = orphans

  -- the services whose container runs another image than the one their
  -- `image:` names now (imported or built anew since: the tag moved): `up`
  -- recreates them, as Compose compares image ids. An image that is not
  -- there is no change (`up` could only try to pull it). list: the
  -- project's containers (up's check has them already).
  function E.stale_images(project, services, list)
    local want, ids, out = {}, {}, {}
    for _, s in ipairs(services) do want[s] = true end
    for _, c in ipairs(list) do
      local svc = service_of(c)
      local spec = svc and want[svc] and project.services[svc]
      local ref = type(spec) == "table" and type(spec.image) == "string" and spec.image
      -- the engine lists the name a container was made from only while
      -- that name still leads to the container's image (else its id):
      -- then there is nothing to ask (issue 19: three GET /images/... less
      -- on the quick start's no-op)
      if ref and c.Image ~= ref then
        if ids[ref] == nil then
          local img = api.image_inspect(ref)
          ids[ref] = type(img) == "table" and img.Id or false
        end
        if ids[ref] and c.ImageID ~= ids[ref] then
          out[#out + 1] = ("service %s: %s runs an earlier image of %s (recreated by up)"):format(svc, container_name(c), ref)
        end
      end
    end
    return out
  end

  -- `down` without --remove-orphans leaves an orphan running, and then fails
  -- to remove the network it still holds: say so before anything changes
  function E.orphan_guard(project, remove_orphans)
    if remove_orphans then return true end
    local orph, err = orphans(project)
    if not orph then return nil, err end
    if #orph == 0 then return true end
    local one = #orph == 1
    return nil, ("project %s: %s %s: `down` without remove_orphans leaves %s (and its network), so the stack would not be down;"
      .. " not taking it down (remove_orphans = true takes %s down too)")
      :format(project.name, table.concat(orph, ", "), one and "is not in the compose file" or "are not in the compose file",
        one and "it" or "them", one and "it" or "them")
  end

  -- remove, through the Engine API (the compose file may be gone), the
  -- containers of project `name` started from `dir` (only those of `service`
  -- when given), with their anonymous volumes, then the project's networks
  -- once none of its containers is left; named volumes stay, as in the
  -- teardown of up. -> the number of containers removed | nil, message
  function E.remove_by_api(name, dir, service)
    local safe, ferr = foreign_guard { name = name, dir = dir }
    if not safe then return nil, ferr end
    local list, err = api.containers { project = name, service = service }
    if not list then return nil, err end
    for _, c in ipairs(list) do
      local ok, rerr = api.container_remove(c.Id, { force = true, volumes = true })
      if not ok then return nil, rerr end
    end
    local rest, lerr = api.containers { project = name }
    if not rest then return nil, lerr end
    if #rest > 0 then return #list end
    local nets, nerr = api.networks { project = name }
    if not nets then return nil, nerr end
    for _, n in ipairs(nets) do
      local ok, rerr = api.network_remove(n.Id)
      if not ok then return nil, rerr end
    end
    return #list
  end

end

-- a plan of teardown's view of remove_by_api (bound after the guards)
local function bind_preview(E, api)
  -- a plan of teardown: what remove_by_api(name, dir, service) or `down`
  -- would remove -> lines ("- container x", "- network y") | nil, message
  -- (the guard's: teardown would refuse as well)
  function E.would_remove(name, dir, service)
    if dir then
      local safe, ferr = E.foreign_guard { name = name, dir = dir }
      if not safe then return nil, ferr end
    end
    local list, err = api.containers { project = name, service = service }
    if not list then return nil, err end
    local out = {}
    for _, c in ipairs(list) do out[#out + 1] = "- container " .. container_name(c) end
    local rest, lerr = api.containers { project = name }
    if not rest then return nil, lerr end
    if #rest > #list then return out end   -- others stay: so does the network
    local nets, nerr = api.networks { project = name }
    if not nets then return nil, nerr end
    for _, n in ipairs(nets) do out[#out + 1] = "- network " .. tostring(n.Name or n.Id) end
    return out
  end
end

-- the project's volumes: who uses them, the anonymous ones
local function bind_volume_guards(E, api)
  -- the containers that mount volume `name`, but those of project `own` (nil:
  -- all of them): "x_web_1 (project x)" lines
  local function volume_users(name, own)
    local list, err = api.containers { volume = name }
    if not list then return nil, err end
    local out = {}
    for _, c in ipairs(list) do
      local p = c.Labels and c.Labels[api.PROJECT_LABEL]
      if own == nil or p ~= own then
        out[#out + 1] = ("%s (%s)"):format(container_name(c), p and ("project " .. p) or "not a Compose container")
      end
    end
    return out
  end
  E.volume_users = volume_users

  -- before anything is taken down: a volume of the project that a container
  -- of another project (or none) still mounts cannot be removed; say which,
  -- and change nothing
  function E.volume_guard(name)
    local vols, err = api.volumes { project = name }
    if not vols then return nil, err end
    for _, v in ipairs(vols) do
      local users, uerr = volume_users(v.Name, name)
      if not users then return nil, uerr end
      if #users > 0 then
        return nil, ("project %s: volume %s is in use by container %s; not taking the stack down with its volumes"
          .. " (remove that container first, or leave volumes out)"):format(name, v.Name, table.concat(users, ", "))
      end
    end
    return true
  end

  -- the anonymous volumes of the project's containers (named by the engine:
  -- 64 hex digits), which `down --volumes` removed with the containers
  function E.anonymous_volumes(project)
    local list, err = api.containers { project = project.name }
    if not list then return nil, err end
    local declared = {}
    for _, d in ipairs(model.declared_volumes(project)) do declared[d.name] = true end
    local out, seen = {}, {}
    for _, c in ipairs(list) do
      for _, m in ipairs(type(c.Mounts) == "table" and c.Mounts or {}) do
        local n = m.Type == "volume" and m.Name
        if type(n) == "string" and #n == 64 and n:find("^%x+$") and not declared[n] and not seen[n] then
          seen[n] = true
          out[#out + 1] = n
        end
      end
    end
    return out
  end

  -- after `down`: the anonymous volumes its containers had (names appended
  -- to removed) -> removed | nil, message. As the engine does for `down
  -- --volumes`: one another container still mounts (volumes_from) stays.
  function E.remove_anonymous(anonymous, removed)
    for _, n in ipairs(anonymous) do
      local ok, rerr, status = api.volume_remove(n)
      if ok then removed[#removed + 1] = n
      elseif status ~= 409 then return nil, rerr end
    end
    return removed
  end

end

-- removing the project's volumes; what is left of a project
local function bind_volumes(E, api)
  -- after `down`: remove the volumes Compose created for the project (they
  -- carry its label; external ones never do), then the anonymous ones that
  -- no other container mounts. -> the names removed | nil, message
  function E.remove_volumes(project, anonymous)
    local vols, err = api.volumes { project = project.name }
    if not vols then return nil, err end
    local removed = {}
    for _, v in ipairs(vols) do
      local ok, rerr, status = api.volume_remove(v.Name)
      if not ok then
        local users = status == 409 and E.volume_users(v.Name, nil)
        if users and #users > 0 then
          rerr = ("volume %s is in use by container %s; not removed"):format(v.Name, table.concat(users, ", "))
        end
        return nil, rerr
      end
      removed[#removed + 1] = v.Name
    end
    return E.remove_anonymous(anonymous or {}, removed)
  end

  -- the declared volumes there under the name Compose would give them but
  -- without the project's label: Compose found them and used them; they stay
  function E.kept_volumes(project)
    local out = {}
    for _, d in ipairs(model.declared_volumes(project)) do
      if not d.external then
        local v, err = api.volume_inspect(d.name)
        if v == nil then return nil, err end
        local labels = v and type(v.Labels) == "table" and v.Labels or {}
        if v and labels[api.PROJECT_LABEL] ~= project.name then out[#out + 1] = d.name end
      end
    end
    return out
  end

  -- what is left of project `name`: "container x (state)", "network n" and,
  -- with volumes, "volume v" lines
  function E.leftovers(name, volumes)
    local out = {}
    local list, err = api.containers { project = name }
    if not list then return nil, err end
    for _, c in ipairs(list) do
      out[#out + 1] = ("container %s (%s)"):format(container_name(c), c.State or "?")
    end
    local nets, nerr = api.networks { project = name }
    if not nets then return nil, nerr end
    for _, n in ipairs(nets) do out[#out + 1] = "network " .. n.Name end
    if volumes then
      local vols, verr = api.volumes { project = name }
      if not vols then return nil, verr end
      for _, v in ipairs(vols) do out[#out + 1] = "volume " .. v.Name end
    end
    return out
  end
end

local PURE = { "utc_seconds", "container_state", "judge" }
local BINDERS = { bind_states, bind_waits, bind_guards, bind_preview, bind_volume_guards, bind_volumes }
for _, b in ipairs(BINDERS) do b(M, docker_api) end

-- on(url) -> these functions for the engine at url (nil or "": the
-- default engine's, M itself), made once per url
local engines = {}
function M.on(url)
  if url == nil or url == "" then return M end
  local E = engines[url]
  if E then return E end
  E = { on = M.on }
  for _, k in ipairs(PURE) do E[k] = M[k] end
  local A = docker_api.on(url)
  for _, b in ipairs(BINDERS) do b(E, A) end
  engines[url] = E
  return E
end

return M
