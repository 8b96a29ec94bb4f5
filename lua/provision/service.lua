-- provision.service: system services.
--
--   service.running { name = "docker", enabled = true, socket = "/var/run/docker.sock",
--                     pidfile = nil, wait = "30s", manager = "auto" }
--   service.stopped { name = "cron", enabled = false }
--
-- The manager: systemd when it is running as PID 1 (/run/systemd/system, as
-- sd_booted() decides), through `systemctl`; else the `service` command (SysV
-- init scripts in /etc/init.d). With neither (a container), a clear error.
--
-- Checks spawn nothing where that can be avoided:
--   systemd: the unit's ActiveState/UnitFileState asked over D-Bus (libsystemd
--     opened at run time); only when D-Bus cannot be reached, `systemctl
--     is-active`/`is-enabled` (and a log line says so).
--   SysV: the pidfile (option pidfile, else /run/NAME.pid or /var/run/NAME.pid)
--     and whether that process is alive; enabled = start links in
--     /etc/rc[2-5].d. Only without any pidfile, `service NAME status` (said in
--     a log line).
-- `socket`: running also means something accepts connections there; apply
-- waits (up to `wait`) for it after starting.
--
-- Primitives: service.manager() -> "systemd" | "sysv" | nil, why;
-- service.status(name, opts, ctx) -> { running=, enabled=, how= } | nil, why;
-- service.socket_request(path, data, timeout) (from provision._service).
local R = require "provision.resource"
local C = require "provision._service"
local FS = require "provision._fs"
local exec = require "provision._exec"
local core = require "provision._core"

local M = {}
M.socket_request = C.socket_request
M.unit = C.unit
M.alive = C.alive

-- where things live (tests point them elsewhere)
M.systemd_dir = "/run/systemd/system"
M.initd_dir = "/etc/init.d"
M.etc_dir = "/etc"

-- pid1() -> the command name of PID 1 ("systemd", "init", "tini", ...)
function M.pid1()
  local f = io.open("/proc/1/comm", "r")
  if not f then return "?" end
  local s = f:read("l") or "?"
  f:close()
  return s
end

-- manager([want]) -> "systemd" | "sysv" | nil, message
-- want: "auto" (default), "systemd" or "sysv" (to insist on one)
function M.manager(want)
  want = want or "auto"
  local systemd = (FS.stat(M.systemd_dir) or {}).type == "directory"
  if want == "systemd" or (want == "auto" and systemd) then
    if not systemd then
      return nil, ("systemd is not running here (PID 1 is '%s', no %s)"):format(M.pid1(), M.systemd_dir)
    end
    if not exec.which("systemctl") then return nil, "systemd is running but systemctl is not on PATH" end
    return "systemd"
  end
  if exec.which("service") then return "sysv" end
  if want == "sysv" then
    return nil, "the `service` command is not on PATH (Debian: package init-system-helpers / sysvinit-utils)"
  end
  return nil, ("no service manager here: systemd is not PID 1 (PID 1 is '%s') and there is no " ..
    "`service` command; in a container, run the program in the foreground instead of as a service"):format(M.pid1())
end

local function unit_name(name)
  if name:match("%.[a-z]+$") then return name end
  return name .. ".service"
end

local function run(ctx, argv, what)
  if ctx and ctx.log then ctx:log("$ " .. table.concat(argv, " ")) end
  argv.timeout = argv.timeout or (ctx and ctx.timeout) or 120
  argv.passthrough = ctx and ctx.verbose and true or false
  local r, err = exec.run(argv)
  if not r then return nil, (what or argv[1]) .. ": " .. err end
  return r
end

local function failure(what, r)
  local out = R.mask((r.output or ""):gsub("%s+$", ""))
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  local tail = table.concat(lines, "\n", math.max(1, #lines - 9))
  local why = r.timed_out and "timed out" or r.interrupted and "interrupted" or ("exit " .. r.status)
  return what .. ": " .. why .. (tail ~= "" and ("\n" .. tail) or "")
end

-- ---------------------------------------------------------------- status

local ENABLED = { enabled = true, ["enabled-runtime"] = true, static = true, alias = true,
                  indirect = true, generated = true }

local function systemd_status(name, ctx)
  local unit = unit_name(name)
  local u, err = C.unit(unit)
  if u then
    if u.load == "not-found" then
      return nil, ("there is no systemd unit %s"):format(unit)
    end
    return { running = u.active == "active", state = u.active .. " (" .. u.sub .. ")",
             enabled = ENABLED[u.file_state] or false, file_state = u.file_state, how = u.via }
  end
  if ctx and ctx.log then ctx:log(err .. ": asking systemctl is-active/is-enabled " .. unit) end
  local a = exec.run { "systemctl", "is-active", unit }
  local e = exec.run { "systemctl", "is-enabled", unit }
  if not a or not e then return nil, "systemctl could not be run" end
  local active = a.output:match("^%s*(%S+)") or "unknown"
  local fstate = e.output:match("^%s*(%S+)") or "unknown"
  if e.status ~= 0 and (e.output:find("No such file", 1, true) or e.output:find("not found", 1, true)) then
    return nil, ("there is no systemd unit %s"):format(unit)
  end
  return { running = active == "active", state = active, enabled = ENABLED[fstate] or false,
           file_state = fstate, how = "systemctl" }
end

local function read_pid(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a") or ""
  f:close()
  return math.tointeger(tonumber(s:match("^%s*(%d+)"))) or false
end

local function sysv_status(name, opts, ctx)
  local script = M.initd_dir .. "/" .. name
  if not FS.stat(script) then
    return nil, ("there is no init script %s (is the package that provides the %s service installed?)"):format(script, name)
  end
  local enabled = #C.rc_links(name, M.etc_dir) > 0
  local pidfiles = opts.pidfile and { opts.pidfile } or { "/run/" .. name .. ".pid", "/var/run/" .. name .. ".pid" }
  for _, pf in ipairs(pidfiles) do
    local pid = read_pid(pf)
    if pid ~= nil then
      local alive = pid and C.alive(pid) or false
      return { running = alive, enabled = enabled, pid = pid or nil,
               state = alive and ("running (pid " .. pid .. ")") or ("not running (stale " .. pf .. ")"),
               how = "pidfile " .. pf }
    end
  end
  if opts.pidfile then
    return { running = false, enabled = enabled, state = "not running (no " .. opts.pidfile .. ")",
             how = "pidfile " .. opts.pidfile }
  end
  if ctx and ctx.log then
    ctx:log(("no pidfile for %s (/run/%s.pid): asking `service %s status`"):format(name, name, name))
  end
  local r = exec.run { "service", name, "status", timeout = 30 }
  if not r then return nil, "service " .. name .. " status could not be run" end
  return { running = r.status == 0, enabled = enabled,
           state = r.status == 0 and "running" or ("not running (status exit " .. r.status .. ")"),
           how = "service " .. name .. " status" }
end

-- status(name, opts, ctx) -> { running=, enabled=, state=, how= }, manager | nil, message
function M.status(name, opts, ctx)
  opts = opts or {}
  local mgr, err = M.manager(opts.manager)
  if not mgr then return nil, err end
  local st, serr
  if mgr == "systemd" then st, serr = systemd_status(name, ctx)
  else st, serr = sysv_status(name, opts, ctx) end
  if not st then return nil, serr end
  if st.running and opts.socket then
    local ok, cerr = C.socket_request(opts.socket, "", 2)
    if not ok then
      st.running = false
      st.state = st.state .. "; " .. cerr
    end
  end
  return st, mgr
end

-- ---------------------------------------------------------------- resources

local function valid(self)
  if not self.name:match("^[%w@_.:%-]+$") then return nil, ("bad service name %q"):format(self.name) end
  return true
end

-- evaluate(self, want_running, ctx) -> in_state?, changes, status, manager | nil, message
local function evaluate(self, want_running, ctx)
  local st, mgr = M.status(self.name, self, ctx)
  if not st then return nil, mgr end
  if ctx and ctx.log then ctx:log(("%s: %s (%s)"):format(self.name, st.state or "?", st.how)) end
  local changes = {}
  if st.running ~= want_running then
    changes[#changes + 1] = (want_running and "start " or "stop ") .. self.name ..
      " (" .. (st.state or "?") .. ")"
  end
  if self.enabled ~= nil and st.enabled ~= self.enabled then
    changes[#changes + 1] = (self.enabled and "enable " or "disable ") .. self.name ..
      (st.file_state and (" (" .. st.file_state .. ")") or "")
  end
  return #changes == 0, changes, st, mgr
end

local function do_enable(ctx, mgr, name, on)
  local argv
  if mgr == "systemd" then
    argv = { "systemctl", on and "enable" or "disable", unit_name(name) }
  elseif on then
    local r, err = run(ctx, { "update-rc.d", name, "defaults" })
    if not r then return nil, err end
    if r.status ~= 0 then return nil, failure("update-rc.d " .. name .. " defaults", r) end
    argv = { "update-rc.d", name, "enable" }
  else
    argv = { "update-rc.d", name, "disable" }
  end
  local r, err = run(ctx, argv)
  if not r then return nil, err end
  if r.status ~= 0 then return nil, failure(table.concat(argv, " "), r) end
  return true
end

local function do_startstop(ctx, mgr, name, start)
  local verb = start and "start" or "stop"
  local argv = mgr == "systemd" and { "systemctl", verb, unit_name(name) } or { "service", name, verb }
  local r, err = run(ctx, argv)
  if not r then return nil, err end
  if r.status ~= 0 then return nil, failure(table.concat(argv, " "), r) end
  return true
end

local function make(kind, want_running)
  return R.define {
    kind = kind,
    positional = "name",
    options = {
      name = { "string", doc = "the service (docker, ssh, ...)" },
      enabled = { "boolean?",                     -- nil: leave as it is
                  doc = "true or false: started at boot or not (left as it is when not given)" },
      pidfile = { "string?",                      -- SysV: where the pid is
                  doc = "SysV: where the service keeps its pid (default /run/NAME.pid, then /var/run/NAME.pid)" },
      socket = { "string?",                       -- running: also accepts connections here
                 doc = "running: a Unix socket that must also answer (/var/run/docker.sock)" },
      wait = { "duration", default = "30s",       -- for the state to show after start/stop
               doc = "how long a start or stop may take to show (the process, the socket)" },
      manager = { "string", default = "auto",     -- auto | systemd | sysv
                  doc = "\"auto\" (systemd when it is PID 1, else SysV), \"systemd\" or \"sysv\"" },
    },
    validate = function(self)
      if self.manager ~= "auto" and self.manager ~= "systemd" and self.manager ~= "sysv" then
        return nil, "manager must be auto, systemd or sysv"
      end
      return valid(self)
    end,
    describe = function(self)
      local s = "service " .. self.name .. (want_running and " running" or " stopped")
      if self.enabled ~= nil then s = s .. (self.enabled and ", enabled" or ", disabled") end
      return s
    end,
    check = function(self, ctx)
      local ok, changes = evaluate(self, want_running, ctx)
      if ok == nil then return nil, changes end
      if ok then return true end
      return false, changes
    end,
    apply = function(self, ctx)
      local ok, changes, st, mgr = evaluate(self, want_running, ctx)
      if ok == nil then return nil, changes end
      if ok then return true end
      local done = {}
      if self.enabled ~= nil and st.enabled ~= self.enabled then
        local eok, err = do_enable(ctx, mgr, self.name, self.enabled)
        if not eok then return nil, err end
        if want_running and self.enabled then ctx.state.enabled = true end
        done[#done + 1] = self.enabled and "enabled" or "disabled"
      end
      if st.running ~= want_running then
        local sok, err = do_startstop(ctx, mgr, self.name, want_running)
        if not sok then return nil, err end
        if want_running then ctx.state.started = true end
        table.insert(done, 1, want_running and "started" or "stopped")
        -- an init script may return before its daemon wrote its pidfile or
        -- opened its socket: wait for the state to show
        local deadline = core.now() + self.wait
        local last
        while true do
          local now_st, why = M.status(self.name, self, nil)
          if now_st and now_st.running == want_running then break end
          last = now_st and now_st.state or why
          if core.now() >= deadline then
            return nil, ("%s %s: still %s after %ds"):format(want_running and "started" or "stopped",
              self.name, tostring(last), math.floor(self.wait))
          end
          if (ctx.interrupted and ctx.interrupted()) or not core.sleep(0.2) then
            return nil, "interrupted"
          end
        end
      end
      if ctx.detail then ctx:detail(table.concat(done, ", ")) end
      return true
    end,
    plan_revert = want_running or nil,   -- revert with ctx.plan: what it would do
    revert = want_running and function(self, ctx)
      -- stop it only if this recipe started it, disable it only if this
      -- recipe enabled it (else it came back at the next boot)
      if not ctx.state.started and not ctx.state.enabled then return true end
      local st, mgr = M.status(self.name, self, ctx)
      if not st then return nil, mgr end
      if ctx.plan then   -- a plan of teardown: what it would do, nothing done
        local would = {}
        if ctx.state.enabled and st.enabled then would[#would + 1] = "disable " .. self.name end
        if ctx.state.started and st.running then would[#would + 1] = "stop " .. self.name end
        if ctx.detail then
          ctx:detail(#would > 0 and ("would " .. table.concat(would, " and "))
            or ("nothing to undo: %s is stopped and disabled already"):format(self.name))
        end
        return #would > 0
      end
      if ctx.state.enabled and st.enabled then
        local ok, err = do_enable(ctx, mgr, self.name, false)
        if not ok then return nil, err end
      end
      if not (ctx.state.started and st.running) then return true end
      return do_startstop(ctx, mgr, self.name, false)
    end or nil,
  }
end

M.running = make("service.running", true)
M.stopped = make("service.stopped", false)

return M
