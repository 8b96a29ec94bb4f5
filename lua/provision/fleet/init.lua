-- provision.fleet: one recipe on many hosts over ssh (--host). The recipe
-- runs ON each host, not primitive by primitive over the wire: every check
-- is local there, so a no-op costs one round trip, and plan is as honest
-- as it is locally.
--
--   1. the recipe is loaded here first: a recipe or usage error is exit 2
--      before any host is touched;
--   2. per host, one ssh session (the system's OpenSSH, so ssh_config,
--      agents, ProxyJump and known_hosts work; BatchMode: a host that would
--      prompt fails at once; one master connection per host, kept 60 s in
--      a private folder) runs ~/.cache/provision/<sha256 of this binary>/
--      provision --remote, the bundle on its stdin (fleet/bundle.lua); a
--      host without that binary says so and gets it (a temp file renamed
--      into place), then runs;
--   3. each host's --json events come back; they gain "host" (--json) or
--      become lines prefixed with the host, and a recap ends the run.
-- State stays on each host, in .provision/ of the folder the run starts in
-- (--chdir, default the remote user's home).
local FS = require "provision._fs"
local core = require "provision._core"
local exec = require "provision._exec"
local json = require "provision.json"
local dsl = require "provision.dsl"
local secret = require "provision.secret"
local bundle = require "provision.fleet.bundle"
local cache = require "provision.cache"
local inventory = require "provision.fleet.inventory"
local ssh_command = require "provision.ssh_command"
local validate = require "provision.dsl.validate"
local EXIT = core.EXIT

local M = {}

local NO_SUDO, NEED_BINARY, BAD_ARCH = 95, 97, 98
local ARCH = "x86_64"

-- sh's single quotes around s
local function sq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- hosts(o) -> { "h1", ... } | nil, why: --host values, comma lists split
function M.hosts(list)
  local out, seen = {}, {}
  for _, v in ipairs(list) do
    for h in (v .. ","):gmatch("([^,]*),") do
      h = h:match("^%s*(.-)%s*$")
      if h == "" then return nil, "--host: an empty host name" end
      if h:sub(1, 1) == "-" then return nil, ("--host %s: a host cannot start with '-'"):format(h) end
      if h:find("[%s%c]") then return nil, ("--host %q: no blanks or control characters in a host"):format(h) end
      if not seen[h] then seen[h] = true; out[#out + 1] = h end
    end
  end
  return out
end

-- the ssh command line: PROVISION_SSH (words split at blanks), else ssh,
-- with BatchMode (provision.ssh_command), and one master per host
local function ssh_base(cm_dir)
  local argv = ssh_command.base()
  for _, opt in ipairs { "ControlMaster=auto", "ControlPath=" .. cm_dir .. "/%C", "ControlPersist=60" } do
    argv[#argv + 1] = "-o"; argv[#argv + 1] = opt
  end
  return argv
end

-- the end of a host's command: run the binary (the shell word b) as the
-- login user in the folder ssh started in (or --chdir); with --become as
-- root through `sudo -n -H` (HOME root's; the folder --chdir, else root's
-- home), unless the login user is root already
local function launch(b, o)
  if not o.become then
    return (o.chdir and ("cd -- " .. sq(o.chdir) .. " || exit 96; ") or "") .. "exec " .. b .. " --remote"
  end
  return ('if [ "$(id -u)" = 0 ]; then s=; else command -v sudo >/dev/null 2>&1 '
    .. '|| { echo provision-remote:no-sudo; exit %d; }; s="sudo -n -H --"; fi; exec $s /bin/sh -c %s %s %s')
    :format(NO_SUDO, sq('cd -- "${1:-$HOME}" || exit 96; exec "$0" --remote'), b, sq(o.chdir or ""))
end

-- the argv of one host's job: ssh, or for "local" this binary itself
local function ssh_argv(base, host, command, o)
  if host == "local" then
    return { "/bin/sh", "-c", launch('"$0"', o), assert(FS.realpath("/proc/self/exe")) }
  end
  local argv = { table.unpack(base) }
  argv[#argv + 1] = "--"
  argv[#argv + 1] = host
  argv[#argv + 1] = command
  return argv
end

-- what a host runs: the binary of this digest if it has it, else a word
-- that it needs it (or that it is another machine)
local function run_command(digest, o)
  return ('a=$(uname -m); [ "$a" = %s ] || { echo "provision-remote:arch $a"; exit %d; }; '
    .. 'b="$HOME/.cache/provision/%s/provision"; [ -x "$b" ] || { echo provision-remote:need-binary; exit %d; }; ')
    :format(ARCH, BAD_ARCH, digest, NEED_BINARY) .. launch('"$b"', o)
end

local function upload_command(digest)
  return ('umask 077 && d="$HOME/.cache/provision/%s" && mkdir -p "$d" && t="$d/.upload.$$" '
    .. '&& cat > "$t" && chmod 700 "$t" && mv -f "$t" "$d/provision"'):format(digest)
end

-- the binary hosts run: PROVISION_SHIP, else provision-static beside this
-- one (make static: only libc and libm needed, so it runs on any glibc
-- host), else this very binary (then a host needs its shared libraries):
-- its path and its bytes | nil, message
local function shipped_binary(exe)
  local path = exe
  local env = os.getenv("PROVISION_SHIP")
  if env == "" then env = nil end   -- (set to nothing: as unset)
  if env then
    local p, err = FS.realpath(env)
    if not p then return nil, "PROVISION_SHIP: " .. tostring(err) end
    path = p
  else
    local static = (exe:match("^(.*)/[^/]*$") or ".") .. "/provision-static"
    local st = FS.stat(static)
    if st and st.type == "file" then path = static end
  end
  -- read once: what is checked, hashed and sent to a host is the same bytes
  -- (a build between two reads would land under another build's digest)
  local data, err = core.read_file(path)
  if not data then return nil, tostring(err) end   -- (it names the path)
  -- provision-static: of this very build, or a host might run a binary that
  -- reads the run's flags otherwise (an older one would take plan
  -- --teardown for a teardown)
  if path ~= exe and not env and not data:find(core.version .. "\0", 1, true) then
    return nil, ("%s is from another build than this provision (%s): make static, or set PROVISION_SHIP")
      :format(path, core.version)
  end
  return path, data
end

-- ---- output

local Out = {}
Out.__index = Out

function Out.new(o, hosts)
  local self = setmetatable({ o = o, hosts = {}, width = 4 }, Out)
  for _, h in ipairs(hosts) do
    self.hosts[h] = { name = h, err = {}, steps = 0 }
    self.width = math.max(self.width, #h)
  end
  return self
end

function Out:emit(ev)
  io.stdout:write(json.encode(ev), "\n")
  io.stdout:flush()
end

function Out:say(host, text)
  if self.o.json then return end
  io.stdout:write(("%-" .. self.width .. "s  %s\n"):format(host, text))
  io.stdout:flush()
end

-- one line of a host's stdout: its --json events
function Out:line(host, line)
  local h = self.hosts[host]
  if line == "provision-remote:need-binary" then h.need_binary = true; return end
  if line == "provision-remote:no-sudo" then h.no_sudo = true; return end
  local arch = line:match("^provision%-remote:arch (.*)$")
  if arch then h.arch = arch; return end
  local ok, ev = pcall(json.decode, line)
  if not ok or type(ev) ~= "table" or type(ev.event) ~= "string" then
    h.err[#h.err + 1] = line   -- not an event: kept as a reason
    return
  end
  ev.host = host
  if ev.event == "summary" then h.summary = ev end
  if ev.event == "start" then h.steps, h.started = ev.steps or 0, true end
  if self.o.json then return self:emit(ev) end
  if ev.event == "step" and not (self.o.quiet and ev.status ~= "failed") then
    if ev.status == "skipped" and not self.o.verbose then return end
    self:say(host, ("[%d/%d] %-24s %-12s %5dms%s"):format(ev.index or 0, h.steps, ev.name or "?",
      ev.status == "failed" and "FAILED" or ev.status or "?", ev.ms or 0,
      ev.detail and ev.detail ~= "" and ("  " .. ev.detail) or ""))
    if type(ev.changes) == "table" and (ev.status == "would-change" or self.o.verbose) then
      for _, c in ipairs(ev.changes) do self:say(host, "      " .. c) end
    end
  elseif ev.event == "check" and ev.status == "failed" then
    self:say(host, ("check %s FAILED%s"):format(ev.name or "?", ev.detail and ("  " .. ev.detail) or ""))
  end
end

-- one line of a host's stderr: what its steps printed, its errors
function Out:err_line(host, line)
  local h = self.hosts[host]
  h.err[#h.err + 1] = line
  if #h.err > 40 then table.remove(h.err, 1) end
  if not self.o.json or self.o.verbose then
    io.stderr:write(("%-" .. self.width .. "s  %s\n"):format(host, line))
  end
end

-- ---- the run

-- the reason a host gave: its last stderr line that is not a traceback's
local function reason(h)
  for i = #h.err, 1, -1 do
    local l = h.err[i]
    if not l:find("^%s") and l ~= "stack traceback:" then return l end
  end
end

-- what the run is, for the outcomes and the exit code: "plan" for a plan
-- of teardown too (nothing changed; exit 3 when something would)
local function mode_of(o) return o.plan and "plan" or o.verb end

-- each host's outcome from its exit status: ok | changed | pending | failed | unreachable
local function outcome(h, r, verb, become)
  if r.not_started then return "not-run", r.why or "not started" end
  if r.error then return "failed", r.error end
  local s = r.status
  if s == 255 and not h.summary then
    if not h.started then return "unreachable", (reason(h) or "ssh failed") end
    return "failed", "the connection was lost during the run: " .. (reason(h) or "ssh failed")
  end
  if s == BAD_ARCH then return "failed", ("it is %s; this binary is for %s"):format(h.arch or "?", ARCH) end
  if become and not h.started then
    if s == NO_SUDO and h.no_sudo then return "failed", "--become: there is no sudo there (and the user is not root)" end
    local why = reason(h) or ""
    if why:find("^sudo:") then return "failed", "--become: sudo -n refused: " .. why:gsub("^sudo:%s*", "") end
  end
  if s == 0 then
    local sm = h.summary or {}
    return (sm.changed or 0) > 0 and "changed" or "ok"
  end
  if s == EXIT.pending and verb == "plan" then return "pending" end
  if s == EXIT.interrupted or r.interrupted then return "interrupted", "interrupted" end
  local why = reason(h) or ("exit " .. tostring(s or r.signal and ("signal " .. r.signal)))
  if s == 126 or s == 127 then why = "the provision binary does not run there: " .. why end
  return "failed", why
end

local function recap(out, hosts, results, verb, o)
  local rows, counts = {}, {}
  for i, host in ipairs(hosts) do
    local h = out.hosts[host]
    local what, why = outcome(h, results[i], verb, o.become)
    counts[what] = (counts[what] or 0) + 1
    local sm = h.summary or {}
    rows[i] = { host = host, status = what, why = why and secret.mask(why) or nil, ok = sm.ok, changed = sm.changed,
                ["would-change"] = sm["would-change"], failed = sm.failed }
  end
  if o.json then
    out:emit { event = "recap", verb = o.verb, plan = o.plan or nil, hosts = json.array(rows) }
  else
    io.stdout:write("\nRECAP\n")
    for _, r in ipairs(rows) do
      local n = r.ok and ("ok=%d %s=%d failed=%d"):format(r.ok or 0, verb == "plan" and "would-change" or "changed",
        (verb == "plan" and r["would-change"] or r.changed) or 0, r.failed or 0) or ""
      io.stdout:write(("%-" .. out.width .. "s  %-12s %s%s\n"):format(r.host, r.status, n,
        r.why and ("  " .. r.why) or ""))
    end
  end
  return counts
end

local function exit_code(counts, verb)
  if core.interrupted() or (counts.interrupted or 0) > 0 then return EXIT.interrupted end
  if (counts.failed or 0) + (counts.unreachable or 0) + (counts["not-run"] or 0) > 0 then return EXIT.failed end
  if verb == "plan" and (counts.pending or 0) > 0 then return EXIT.pending end
  return EXIT.ok
end

-- run jobs for the given host indexes; results land in results[i]
local function run_jobs(idx, hosts, argv_of, input_of, hold, out, forks, results)
  local jobs = {}
  for k, i in ipairs(idx) do
    jobs[k] = { argv = argv_of(hosts[i]), input = input_of(i), hold_stdin = hold }
  end
  local rs = exec.many(jobs, {
    forks = forks,
    on_line = function(k, stream, line)
      local host = hosts[idx[k]]
      if stream == "out" then out:line(host, line) else out:err_line(host, line) end
    end,
  })
  for k, i in ipairs(idx) do results[i] = rs[k] end
end

-- targets(o, recipe) -> { names }, { [i] = vars } | nil, why: --host, or
-- -i FILE with --limit (else the recipe's own `hosts`); each host's
-- variables: the inventory's (only those the recipe declares, each checked
-- against its default's type here, before any host is touched), then -e
function M.targets(o, recipe)
  local names, err = M.hosts(o.hosts)
  if not names then return nil, err end
  local inv
  if o.inventory then
    inv, err = inventory.load(o.inventory)
    if not inv then return nil, "-i " .. err end
    local pattern = o.limit or (#names == 0 and recipe.hosts) or nil
    if pattern then
      local picked, perr = inventory.select(inv, pattern)
      if not picked then return nil, perr end
      if #names > 0 then   -- --host and --limit: the hosts named that the limit also picks
        local keep = {}
        for _, h in ipairs(picked) do keep[h] = true end
        local both = {}
        for _, h in ipairs(names) do if keep[h] then both[#both + 1] = h end end
        names = both
      else
        names = picked
      end
    elseif #names == 0 then
      return nil, ("-i %s: which hosts? give --limit PATTERN (a group, a host, a glob; all), --host, "
        .. "or recipe { hosts = ... }"):format(o.inventory)
    end
  elseif o.limit then
    return nil, "--limit picks hosts of an inventory: give -i FILE"
  end
  if #names == 0 then return nil, "no host left to run on (--host and --limit pick none in common)" end
  local vars = {}
  for i, h in ipairs(names) do
    local v = {}
    for k, x in pairs(inv and inventory.vars_of(inv, h) or {}) do
      local decl = recipe.vars[k]
      if decl and o.vars[k] == nil then
        local ok, verr = validate.coerce(k, decl.default, x)
        if ok == nil then return nil, ("-i %s: host %s: %s"):format(o.inventory, h, verr) end
        v[k] = x
      end
    end
    for k, x in pairs(o.vars or {}) do v[k] = x end
    vars[i] = v
  end
  return names, vars
end

-- the batches hosts run in: --serial N at a time, else all at once (with
-- --max-fail-percent, --forks at a time, so there is a point to stop at)
local function batches(n, o, forks)
  local size = o.serial or (o.max_fail and forks) or n
  local out = {}
  for first = 1, n, size do
    local b = {}
    for i = first, math.min(first + size - 1, n) do b[#b + 1] = i end
    out[#out + 1] = b
  end
  return out
end

-- run one batch: the recipe; the binary to the hosts that lack it; again there
local function run_batch(idx, ctx)
  local hosts, out, results = ctx.hosts, ctx.out, ctx.results
  local function argv_run(h) return ssh_argv(ctx.base, h, ctx.run_cmd, ctx.o) end
  local function stream(i) return bundle.text(ctx.bundle, ctx.vars[i]) end
  run_jobs(idx, hosts, argv_run, stream, true, out, ctx.forks, results)
  local need = {}
  for _, i in ipairs(idx) do
    if results[i].status == NEED_BINARY and out.hosts[hosts[i]].need_binary then need[#need + 1] = i end
  end
  if #need == 0 or core.interrupted() then return end
  local sent = {}
  run_jobs(need, hosts, function(h) return ssh_argv(ctx.base, h, upload_command(ctx.digest), ctx.o) end,
    function() return ctx.binary end, false, out, ctx.forks, sent)
  local again = {}
  for _, i in ipairs(need) do
    if sent[i].status == 0 then again[#again + 1] = i else results[i] = sent[i] end
  end
  if #again > 0 and not core.interrupted() then run_jobs(again, hosts, argv_run, stream, true, out, ctx.forks, results) end
end

-- stop before the next batch? (--serial: a batch with a failure; --max-fail-percent)
local function should_stop(ctx, done)
  local failed = 0
  for _, i in ipairs(done) do
    local what = outcome(ctx.out.hosts[ctx.hosts[i]], ctx.results[i], mode_of(ctx.o), ctx.o.become)
    if what == "failed" or what == "unreachable" or what == "interrupted" then failed = failed + 1 end
  end
  if ctx.o.max_fail then return failed * 100 > ctx.o.max_fail * #done end
  return ctx.o.serial ~= nil and failed > 0
end

function M.main(o)
  core.shield(true)   -- our own code: an interrupt is seen by exec.many and the recap, not raised here
  local ok, recipe, err = core.exposed(dsl.load, o.recipe, { vars = o.vars })   -- recipe code runs here
  if not ok then recipe, err = nil, recipe end
  if not recipe then
    if core.interrupted() then io.stderr:write("provision: interrupted\n"); return EXIT.interrupted end
    io.stderr:write("provision: ", tostring(err), "\n")
    return EXIT.usage
  end
  local hosts, vars = M.targets(o, recipe)
  if not hosts then io.stderr:write("provision: ", vars, "\n"); return EXIT.usage end
  if o.verb == "list" then return require("provision.run").main(o) end
  local b, berr = bundle.build(recipe, o)
  if not b then io.stderr:write("provision: ", berr, "\n"); return EXIT.usage end
  local exe, binary = shipped_binary(assert(FS.realpath("/proc/self/exe")))
  if not exe then io.stderr:write("provision: ", binary, "\n"); return EXIT.usage end
  local digest = FS.sha256_string(binary)
  local cm, cerr = cache.dir("ssh")
  if not cm then io.stderr:write("provision: ", cerr, "\n"); return EXIT.usage end
  local ctx = { o = o, hosts = hosts, vars = vars, bundle = b, binary = binary, digest = digest, base = ssh_base(cm),
                run_cmd = run_command(digest, o), forks = math.min(o.forks or 64, #hosts),
                out = Out.new(o, hosts), results = {} }
  if not o.json and not o.quiet then
    io.stdout:write(("%s: %s on %d host%s\n"):format(recipe.name, o.plan and o.verb == "teardown" and "plan of teardown" or o.verb,
      #hosts, #hosts == 1 and "" or "s"))
  end
  local done = {}
  for _, idx in ipairs(batches(#hosts, o, ctx.forks)) do
    if core.interrupted() or (#done > 0 and should_stop(ctx, done)) then
      local why = core.interrupted() and "not started: interrupted"
        or "not started: an earlier batch failed (--serial, --max-fail-percent)"
      for _, i in ipairs(idx) do ctx.results[i] = { not_started = true, why = why } end
    else
      run_batch(idx, ctx)
      for _, i in ipairs(idx) do done[#done + 1] = i end
    end
  end
  return exit_code(recap(ctx.out, hosts, ctx.results, mode_of(o), o), mode_of(o))
end

return M
