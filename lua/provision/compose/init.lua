-- provision.compose: Docker Compose stacks as resources. Changes go through
-- the real Compose CLI (compose/cli.lua); every check and every wait goes
-- through the Engine API (compose/engine.lua), so a converged stack is
-- confirmed without spawning a process; compose/project.lua reads the
-- compose files as Compose does. compose.* also re-exports those parts'
-- functions (compose.load_project, compose.detect, ...) for recipes and tests.
--
-- Resources:
--   compose.available { min_version?, command? }       check-only preflight
--   compose.up { project_dir, services?, wait = "running"|"healthy", timeout?, project?, file?, remove_orphans? }
--        timeout (default 5m): how long the services may take to be running
--        or healthy once Compose has started them
--   compose.run_once { project_dir, service, timeout?, project?, file? }
--   compose.down { project_dir, volumes?, remove_orphans?, rmi?, project?, file? }
--        volumes: removes only the volumes Compose created for the project
--        (labelled com.docker.compose.project=<name>) and the anonymous ones
--        of its containers, never a same-name volume that was there before
local core = require "provision._core"
local api = require "provision.docker.api"
local R = require "provision.resource"
local model = require "provision.compose.project"
local engine = require "provision.compose.engine"
local cli = require "provision.compose.cli"

local M = {}
for _, k in ipairs { "realpath", "normalize_name", "project_name", "read_env_file",
    "interpolate", "find_file", "find_files", "merge", "load_project", "expected_services" } do
  M[k] = model[k]
end
for _, k in ipairs { "utc_seconds", "container_state", "service_states", "judge", "wait_for",
    "foreign_guard", "orphans", "leftovers" } do
  M[k] = engine[k]
end
for _, k in ipairs { "use", "signature", "detect", "run" } do M[k] = cli[k] end

-- the stack this resource brought up before under another name (the
-- project option, COMPOSE_PROJECT_NAME or the folder changed since): taken
-- down as its teardown would have. Without this it kept running, holding
-- its ports, and nothing recorded it any more.
-- -> the number of containers removed | nil, message
local function retire_previous(E, ctx, project)
  local old = ctx.state.project
  if not old or old == project.name then return 0 end
  return E.remove_by_api(old, ctx.state.dir or project.workdir)
end

-- the engine functions (compose.engine) and the API calls for self's
-- engine (the default one when it has none)
local function on(self) return engine.on(self.engine), api.on(self.engine) end

-- the Compose CLI's options for self: its engine in the environment
-- (DOCKER_HOST and the TLS variables; ssh: the forwarded socket), never argv
local function cli_opts(self, o)
  local env, err = api.engine_env(self.engine)
  if not env then return nil, err end
  if next(env) then o.env = env end
  return o
end

local function engine_ok(self)
  if self.engine == nil then return true end   -- "" too: the default (check_engine)
  return api.check_engine(self.engine)
end

-- what up and run_once start from: the project and the hashes of its files
-- (what the state records at apply); nil, message, missing on failure
local function project_and_hashes(self)
  local project, err, missing = model.load_project(self)
  if not project then return nil, err, missing end
  local hashes, herr = model.hashes(project)
  if not hashes then return nil, herr end
  return project, hashes
end

-- in plan: a file a step before would put back as the last apply saw it
-- (ctx:planned gives the digest it would leave), a .env edited by hand, say,
-- is no change for the stack. Any other content a step before would leave
-- is reported by the runner, naming that step (reads, inputs_seen).
local function planned_hashes(ctx, project, hashes, rec)
  if not (ctx and ctx.planned and type(rec) == "table") then return hashes end
  if ctx:planned(project.env_file) == rec.env then hashes.env = rec.env end
  if #project.files == 1 and ctx:planned(project.file) == rec.compose then hashes.compose = rec.compose end
  return hashes
end

-- a check's answer when project_and_hashes failed: on a fresh machine (plan
-- before the folder or compose file exists) a change to come, not a failure
local function check_failed(err, missing)
  if missing then return false, err .. " yet" end
  return nil, err
end

-- what differs from the digests the last apply recorded (saved): lines for plan
local function hash_changes(saved, now)
  local changes = {}
  if not saved then
    changes[#changes + 1] = "no record of an earlier apply"
  else
    if saved.compose ~= now.compose then changes[#changes + 1] = "compose file changed since the last apply" end
    if saved.env ~= now.env then changes[#changes + 1] = ".env changed since the last apply" end
  end
  return changes
end

-- the options up, run_once and down all take
local common_opts = {
  project_dir = { "string", doc = "the project's folder: the compose file and .env are there" },
  project = { "string?", doc = "the project's name (default: COMPOSE_PROJECT_NAME, else the folder's name)" },
  file = { "string?", doc = "the compose file, from project_dir (default: the files Compose reads, its override too)" },
  command = { "string?", doc = "\"docker compose\" or \"docker-compose\": which Compose runs (default: found, v2 first)" },
  timeout = { "duration?", doc = "up: for the services to be running or healthy (5m); "
                              .. "run_once: for the one-shot to end (10m); down: for Compose (5m)" },
  engine = { "string?", doc = "the Docker engine's URL (docs/engines.md; default: DOCKER_HOST, else the local socket)" },
}

local function with(extra)
  local t = {}
  for k, v in pairs(common_opts) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

M.available = R.define {
  kind = "compose.available",
  options = {
    min_version = { "string?", doc = "the oldest Compose version that will do (\"1.29.1\")" },
    command = { "string?", doc = "\"docker compose\" or \"docker-compose\": the Compose to check (default: found, v2 first)" },
    engine = { "string?", doc = "the Docker engine's URL (docs/engines.md; default: DOCKER_HOST, else the local socket)" },
  },
  validate = engine_ok,
  describe = function(self)
    return "Docker Compose is there" .. (self.min_version and (" (>= " .. self.min_version .. ")") or "")
  end,
  check = function(self, ctx)
    -- Detection spawns Compose (a second or more for the Python v1); its
    -- result is kept with a stat signature of the binaries in ctx.state and
    -- in the user's cache (${XDG_CACHE_HOME:-~/.cache}/provision/), since
    -- the runner does not save a preflight check's state: a later run, of
    -- this recipe or another, spawns nothing while the binaries are the same.
    local cache = ctx.state.detected
    if not cache then
      cache = cli.read_cache()
      ctx.state.detected = cache
    end
    local info, err = cli.detect { command = self.command, cache = cache }
    if not info then return false, err end
    if info.fresh and not ctx.plan and cli.write_cache(cache) then info.fresh = nil end
    if self.min_version and api.version_compare(info.version, self.min_version) < 0 then
      return false, ("%s %s is older than %s: upgrade it"):format(info.name, info.version, self.min_version)
    end
    if ctx.detail then ctx:detail(info.name .. " " .. info.version) end
    return true
  end,
}

-- the inputs with the digests the last apply saw (rec: ctx.state.applied or
-- .ran): the .env, and the compose file when it is the only one. A step
-- before that would put that same content back changes nothing for us.
local function inputs_seen(self, rec, project)
  local out = model.inputs(self, project)
  if type(rec) ~= "table" then return out end
  local env_path = self.env_file or (self.project_dir .. "/.env")
  for i, p in ipairs(out) do
    if p == env_path and type(rec.env) == "string" and #rec.env == 64 then
      out[i] = { path = p, sha256 = rec.env }
    elseif project and #project.files == 1 and p == project.file and type(rec.compose) == "string" then
      out[i] = { path = p, sha256 = rec.compose }
    end
  end
  return out
end

-- up's inputs: the files, and the images its services run (a docker.image
-- step before it that would import one anew: up would recreate them). The
-- images come from the project as it is now: a compose file an earlier
-- step would rewrite is an input already.
local function up_inputs(self, ctx)
  local project = model.load_project(self)
  local out = inputs_seen(self, ctx and ctx.state and ctx.state.applied, project)
  if project then
    for _, svc in ipairs(model.expected_services(project, self.services)) do
      local spec = project.services[svc]
      if type(spec) == "table" and type(spec.image) == "string" then
        out[#out + 1] = api.image_key(spec.image)
      end
    end
  end
  return out
end

-- a plan of teardown of compose.up: what its revert would take down (the
-- containers and networks of the project, through the Engine API), and the
-- named volumes it keeps; nothing done. -> true (something would go) | false
local function preview_down(E, A, ctx, project, err, missing)
  if not project and not (missing and ctx.state.project) then return nil, err end
  local name = project and project.name or ctx.state.project
  local dir
  if not project then
    dir = ctx.state.dir or "."
    if dir:sub(1, 1) ~= "/" then dir = (core.cwd() or ".") .. "/" .. dir end
  else
    local safe, ferr = E.foreign_guard(project)
    if not safe then return nil, ferr end
  end
  local lines, werr = E.would_remove(name, dir)
  if not lines then return nil, werr end
  for _, l in ipairs(lines) do ctx:log(l) end
  for _, d in ipairs(project and model.declared_volumes(project) or {}) do
    if not d.external and A.volume_inspect(d.name) then
      ctx:log(("= volume %s: left, named volumes stay (compose.down { volumes = true } removes them)"):format(d.name))
    end
  end
  if #lines == 0 then
    ctx:detail(("nothing to take down: project %s has no container or network"):format(name))
    return false
  end
  ctx:detail(("would take project %s down (%d containers and networks)"):format(name, #lines))
  return true
end

M.up = R.define {
  kind = "compose.up",
  reads = up_inputs,
  positional = "project_dir",
  options = with {
    services = { "strings?", doc = "the services to start (default: every one without a profile, and those COMPOSE_PROFILES turns on)" },
    wait = { "string", default = "running", doc = "\"running\" or \"healthy\": what each service must be before the step is done" },
    remove_orphans = { "boolean?", doc = "true: a container of a service the file no longer has is a change (up --remove-orphans)" },
  },
  validate = function(self)
    if self.wait ~= "running" and self.wait ~= "healthy" then
      return nil, "option 'wait' must be \"running\" or \"healthy\", not " .. ("%q"):format(self.wait)
    end
    return engine_ok(self)
  end,
  describe = function(self)
    return ("compose stack in %s up%s%s"):format(self.project_dir,
      self.services and (" (" .. table.concat(self.services, ", ") .. ")") or "",
      self.wait == "healthy" and " and healthy" or "")
  end,
  check = function(self, ctx)
    local E, A = on(self)
    local project, hashes, missing = project_and_hashes(self)   -- hashes: the message on failure
    if not project then return check_failed(hashes, missing) end
    hashes = planned_hashes(ctx, project, hashes, ctx.state.applied)
    local services = model.expected_services(project, self.services)
    local changes = hash_changes(ctx.state.applied, hashes)
    -- one list of the project's containers for the states, the images
    -- and the orphans (the no-op re-run's cost is these calls)
    local list, lerr = A.containers { project = project.name }
    if not list then return nil, lerr end
    local states, serr = E.service_states(project.name, services, nil, list)
    if not states then return nil, serr end
    local _, pending = E.judge(states, services, self.wait)
    for _, p in ipairs(pending) do changes[#changes + 1] = p end
    for _, l in ipairs(E.stale_images(project, services, list)) do changes[#changes + 1] = l end
    local old = ctx.state.project
    if old and old ~= project.name then
      local old_list = A.containers { project = old }
      if old_list and #old_list > 0 then
        changes[#changes + 1] = ("project %s (this stack under its earlier name) is taken down first"):format(old)
      end
    end
    if self.remove_orphans then   -- apply's `up --remove-orphans` takes them down
      for _, o in ipairs(E.orphans(project, list)) do
        changes[#changes + 1] = "orphan container " .. o .. ": not in the compose file"
      end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local E = engine.on(self.engine)
    local project, hashes = project_and_hashes(self)
    if not project then return nil, hashes end
    local args = { "up", "-d" }
    if self.remove_orphans then args[#args + 1] = "--remove-orphans" end
    for _, s in ipairs(self.services or {}) do args[#args + 1] = s end
    ctx.state.detected = ctx.state.detected or {}
    -- timeout: how long the services may take to be running/healthy once
    -- Compose has started them (Compose itself gets ctx.timeout or 10 min)
    local timeout = self.timeout or ctx.timeout or 300
    local gone, gerr = retire_previous(E, ctx, project)
    if not gone then return nil, gerr end
    if gone > 0 and ctx.log then ctx:log(("project %s taken down: %d containers"):format(ctx.state.project, gone)) end
    local opts, oerr = cli_opts(self, { command = self.command, cache = ctx.state.detected,
      file = self.file, timeout = ctx.timeout or 600, passthrough = ctx.verbose })
    if not opts then return nil, oerr end
    local r, rerr = cli.run(project, args, opts)
    if not r then return nil, rerr end
    local services = model.expected_services(project, self.services)
    local ok, werr = E.wait_for(project.name, services, self.wait, timeout, ctx)
    if not ok then return nil, werr end
    ctx.state.applied = hashes
    ctx.state.project, ctx.state.dir = project.name, model.realpath(project.workdir) or project.workdir
    if ctx.detail then ctx:detail(("%d services %s"):format(#services, self.wait)) end
    return true
  end,
  plan_revert = true,   -- revert with ctx.plan: what it would take down, nothing done
  revert = function(self, ctx)
    local E = engine.on(self.engine)
    local project, err, missing = model.load_project(self)
    if ctx.plan then return preview_down(E, api.on(self.engine), ctx, project, err, missing) end
    if not project and missing and ctx.state.project then
      -- the folder or the compose file is gone: Compose cannot take the
      -- stack down, the Engine API can (by the project's label)
      local dir = ctx.state.dir or self.project_dir
      if dir:sub(1, 1) ~= "/" then dir = (core.cwd() or ".") .. "/" .. dir end
      local n, rerr = E.remove_by_api(ctx.state.project, dir)
      if not n then return nil, rerr end
      ctx.state.applied = nil
      if ctx.detail then ctx:detail(("%s; %d containers removed through the engine"):format(err, n)) end
      return n > 0
    end
    if not project then return nil, err end
    -- what the last apply brought up, under the name it had then
    local gone, gerr = retire_previous(E, ctx, project)
    if not gone then return nil, gerr end
    local safe, ferr = E.foreign_guard(project)
    if not safe then return nil, ferr end
    -- the named volumes (the stack's data) stay; the anonymous ones its
    -- containers had go with them, as `docker run --rm` does: with the
    -- containers gone nothing can reach them any more
    local anonymous, aerr = E.anonymous_volumes(project)
    if not anonymous then return nil, aerr end
    local opts, oerr = cli_opts(self, { command = self.command, file = self.file })
    if not opts then return nil, oerr end
    local r, rerr = cli.run(project, { "down", "--remove-orphans" }, opts)
    if not r then return nil, rerr end
    local removed, verr = E.remove_anonymous(anonymous, {})
    if not removed then return nil, verr end
    ctx.state.applied = nil
    if ctx.detail and #removed > 0 then
      ctx:detail(("stack down; %d anonymous volume%s removed, named volumes kept"):format(#removed, #removed == 1 and "" or "s"))
    end
    return true
  end,
}

M.run_once = R.define {
  kind = "compose.run_once",
  reads = function(self, ctx)
    return inputs_seen(self, ctx and ctx.state and ctx.state.ran, (model.load_project(self)))
  end,
  options = with { service = { "string", doc = "the one-shot service to run to completion (airflow-init)" } },
  validate = engine_ok,
  describe = function(self)
    return ("one-shot service %s in %s ran to completion"):format(self.service, self.project_dir)
  end,
  check = function(self, ctx)
    local E = engine.on(self.engine)
    local project, hashes, missing = project_and_hashes(self)   -- hashes: the message on failure
    if not project then return check_failed(hashes, missing) end
    hashes = planned_hashes(ctx, project, hashes, ctx.state.ran)
    if not project.services[self.service] then
      return nil, ("no service %s in %s"):format(self.service, project.file)
    end
    local changes = hash_changes(ctx.state.ran, hashes)
    local states, serr = E.service_states(project.name, { self.service })
    if not states then return nil, serr end
    local st = states[self.service]
    if st.state == "missing" then
      changes[#changes + 1] = ("service %s: has not run"):format(self.service)
    elseif st.state == "exited" then
      changes[#changes + 1] = ("service %s: last run failed (%s)"):format(self.service, st.detail or "")
    elseif st.exit_code ~= 0 or (st.state ~= "completed" and st.state ~= "exited") then
      -- running again (compose up restarts one-shot services): fine when it had succeeded
      if not (ctx.state.ran and (st.state == "running" or st.state == "healthy" or st.state == "starting")) then
        changes[#changes + 1] = ("service %s: %s"):format(self.service, st.state)
      end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local E = engine.on(self.engine)
    local project, hashes = project_and_hashes(self)
    if not project then return nil, hashes end
    local before = E.service_states(project.name, { self.service }, true)
    local prev_start = before and before[self.service].started
    -- what teardown removes, recorded before it may fail half-way
    ctx.state.project, ctx.state.service, ctx.state.engine = project.name, self.service, self.engine
    ctx.state.dir = model.realpath(project.workdir) or project.workdir
    ctx.state.detected = ctx.state.detected or {}
    local timeout = self.timeout or ctx.timeout or 600
    local opts, oerr = cli_opts(self, { command = self.command,
      cache = ctx.state.detected, file = self.file, timeout = ctx.timeout or 600, passthrough = ctx.verbose })
    if not opts then return nil, oerr end
    local r, rerr = cli.run(project, { "up", "-d", self.service }, opts)
    if not r then return nil, rerr end
    local ok, werr = E.wait_one_shot(project.name, self.service, prev_start, timeout, ctx)
    if not ok then return nil, werr end
    ctx.state.ran = hashes
    if ctx.detail then ctx:detail(self.service .. " exited 0") end
    return true
  end,
  -- the one-shot's container goes (and the project's network, when no
  -- other container of it is left: a stack that `up` also started stays)
  state_revert = true,
  plan_revert = true,   -- revert with ctx.plan: what it would remove, nothing done
  revert = function(_, ctx)
    local st = ctx.state
    local E = engine.on(st.engine)   -- the engine apply ran it on
    if not (st.project and st.service and st.dir) then return false end
    if ctx.plan then
      local lines, werr = E.would_remove(st.project, st.dir, st.service)
      if not lines then return nil, werr end
      for _, l in ipairs(lines) do ctx:log(l) end
      if #lines > 0 then ctx:detail(("would remove the container of one-shot service %s"):format(st.service)) end
      return #lines > 0
    end
    local n, err = E.remove_by_api(st.project, st.dir, st.service)
    if not n then return nil, err end
    st.ran = nil
    if n == 0 then return false end
    if ctx.detail then ctx:detail(("removed the container of one-shot service %s"):format(st.service)) end
    return true
  end,
}

M.down = R.define {
  kind = "compose.down",
  positional = "project_dir",
  options = with {
    volumes = { "boolean?", doc = "true: also remove the volumes Compose created for the project (never one it merely used)" },
    remove_orphans = { "boolean?", doc = "true: also remove containers of services the file no longer has" },
    rmi = { "any?", doc = "\"all\" or \"local\": also remove the images (down --rmi)" },
  },
  validate = function(self)
    if self.rmi == true then self.rmi = "all" end
    if self.rmi ~= nil and self.rmi ~= false and self.rmi ~= "all" and self.rmi ~= "local" then
      return nil, 'option \'rmi\' must be "all", "local" or true'
    end
    return engine_ok(self)
  end,
  describe = function(self)
    return ("compose stack in %s down%s"):format(self.project_dir, self.volumes and " (with volumes)" or "")
  end,
  check = function(self, ctx)
    local E = engine.on(self.engine)
    local project = model.load_project(self)
    local name = project and project.name or ctx.state.project or model.project_name(self.project_dir, self.project)
    local left, err = E.leftovers(name, self.volumes)
    if not left then return nil, err end
    if #left == 0 then return true end
    if project then   -- plan says what apply would: refuse another folder's stack
      local safe, ferr = E.foreign_guard(project)
      if not safe then return nil, ferr end
      safe, ferr = E.orphan_guard(project, self.remove_orphans)
      if not safe then return nil, ferr end
      if self.volumes then
        local free, uerr = E.volume_guard(project.name)
        if not free then return nil, uerr end
      end
    end
    return false, left
  end,
  apply = function(self, ctx)
    local E, A = on(self)
    local project, err = model.load_project(self)
    if not project then return nil, err .. " (compose needs it to take the stack down)" end
    local safe, ferr = E.foreign_guard(project)
    if not safe then return nil, ferr end
    safe, ferr = E.orphan_guard(project, self.remove_orphans)
    if not safe then return nil, ferr end
    local anonymous
    if self.volumes then
      local used, uerr = E.volume_guard(project.name)
      if not used then return nil, uerr end
      anonymous, uerr = E.anonymous_volumes(project)
      if not anonymous then return nil, uerr end
    end
    -- never --volumes: Compose v1 removes every volume the file declares by
    -- its name (<project>_<volume>), also one it found there and adopted;
    -- the volumes are removed below, through the Engine API, by label
    local args = { "down" }
    if self.remove_orphans then args[#args + 1] = "--remove-orphans" end
    if self.rmi then args[#args + 1] = "--rmi"; args[#args + 1] = self.rmi end
    ctx.state.detected = ctx.state.detected or {}
    local opts, oerr = cli_opts(self, { command = self.command, cache = ctx.state.detected,
      file = self.file, timeout = self.timeout or ctx.timeout or 300, passthrough = ctx.verbose })
    if not opts then return nil, oerr end
    local r, rerr = cli.run(project, args, opts)
    if not r then return nil, rerr end
    ctx.state.project = project.name
    if self.volumes then
      local removed, verr = E.remove_volumes(project, anonymous)
      if not removed then return nil, verr end
      local kept, kerr = E.kept_volumes(project)
      if not kept then return nil, kerr end
      for _, k in ipairs(kept) do
        if ctx.log then ctx:log(("volume %s kept: Compose did not create it (no %s label)"):format(k, A.PROJECT_LABEL)) end
      end
      if ctx.detail then
        ctx:detail(("%d volume%s removed%s"):format(#removed, #removed == 1 and "" or "s",
          #kept > 0 and ("; kept " .. table.concat(kept, ", ") .. ": not created by Compose") or ""))
      end
    end
    return true
  end,
}

return M
