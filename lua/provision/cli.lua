-- provision.cli: the command line (the contract of DESIGN.md): verbs, flags,
-- exit codes. Everything below it is in provision.run.
local core = require "provision._core"
local selection = require "provision.selection"
local EXIT = core.EXIT   -- exit codes: core/core.h, the CLI contract

local M = {}

local USAGE = [[
usage: provision [apply] RECIPE [options]    bring the machine to the recipe's state
       provision plan RECIPE [options]       show what would change; change nothing
       provision teardown RECIPE [options]   undo what the recipe created
       provision plan --teardown RECIPE      what teardown would remove and
       provision teardown --plan RECIPE      leave, and why; change nothing
       provision list RECIPE                 the steps, numbered, with their kinds
       provision facts [--json]              what provision knows of this machine
       provision --script FILE [ARG...]      run a Lua file with the modules loaded
       provision help [TOPIC]                this, or a topic: verbs, options,
                                             hosts, exit-codes, json, variables,
                                             or a module (fs, http, exec, ...)
       provision --version | --help

options:
  -e, --var KEY=VALUE   set a recipe variable (each KEY once); KEY=@FILE reads
                        the value from FILE (for secrets: argv is public),
                        as does PROVISION_VAR_KEY from the environment
      --json            one JSON event per line on stdout, nothing else there
  -q, --quiet           only failures and the summary
  -v, --verbose         show each change (its diff) and what steps log
  -vv                   also each command provision runs, and its output
      --no-color        no colour (also NO_COLOR=1); colour is only used on a tty
      --only NAME       run just this step (repeatable; a glob: "web*")
      --skip NAME       run every step but this one (repeatable; a glob)
      --tags T[,T]      run just the steps with one of these tags
      --skip-tags T[,T] run every step but those with one of these tags
      --from NAME       start at this step (resume)
      --timeout DURATION  give up on any one step after this long (e.g. 10m)
      --wait-lock       wait for another run on this project to finish
      --state-dir DIR   where state and the lock live (default ./.provision,
                        or PROVISION_STATE_DIR); yours and private (0700)
      --adopt-state     take over a state another recipe file with the same
                        recipe name wrote (the recipe file moved)
  --                    the options end here: what follows is a verb, a
                        recipe or a topic even when it starts with -

many hosts (the recipe runs on each, over one ssh connection per host):
      --host H          a host: any ssh destination (ssh_config alias,
                        user@host, ssh://user@host:port); repeatable or
                        comma-separated; "local" is this machine
      --chdir DIR       the folder the run starts in on each host (default:
                        the remote user's home); .provision/ is there
      --become          run as root on each host, through `sudo -n` (a host
                        where sudo would ask for a password fails at once);
                        the folder is then root's home unless --chdir
      --forks N         at most N hosts at once (default: all, up to 64)
  -i, --inventory FILE  hosts in groups, with variables per group and host
      --limit PATTERN   the groups or hosts of the inventory to run on (names,
                        globs, comma lists; all); default: recipe { hosts = }
      --serial N        N hosts at a time; the next N only if these succeeded
      --max-fail-percent P  start no more hosts once over P % of them failed
  PROVISION_SSH         the ssh command line to use (e.g. "ssh -F ./ssh_config")

exit codes: 0 success (plan: nothing to change), 1 a step failed,
            2 usage, recipe or state error, or the lock held by another run
            (nothing changed), 3 plan found changes, 130 interrupted
]]

local VERBS = { apply = true, plan = true, teardown = true, list = true, help = true, facts = true }

-- a word that is not an option: the verb, the recipe (help: the topic)
local function positional(o, a)
  if o.verb == nil and o.recipe == nil and VERBS[a] then
    o.verb = a
  elseif o.recipe == nil then
    o.recipe = a
  elseif o.verb == nil and not o.recipe:match("[/.]") then   -- "provision frob r.lua"
    return ("unknown verb '%s' (verbs: apply, plan, teardown, list, facts, help)"):format(o.recipe)
  else
    return ("unexpected argument '%s'"):format(a)
  end
end

-- parse(argv) -> opts | nil, message
function M.parse(argv)
  local o = { verb = nil, vars = {}, var_order = {}, only = {}, skip = {}, tags = {}, skip_tags = {}, color = nil,
              hosts = {} }
  local i = 1
  local function value(flag)
    local v = argv[i + 1]
    if v == nil then return nil, flag .. " needs a value" end
    i = i + 1
    return v
  end
  while i <= #argv do
    local a = argv[i]
    if a == "--" then   -- every word after it is positional
      for j = i + 1, #argv do
        local err = positional(o, argv[j])
        if err then return nil, err end
      end
      break
    end
    local long, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if long then a = long end
    local function val(flag)
      if inline then local v = inline; inline = nil; return v end
      return value(flag)
    end
    local sel, err = selection.flag(o, a, val)
    if sel == nil then return nil, err end
    if sel then -- luacheck: ignore 542 (a selection flag: --only, --skip, --tags, --skip-tags)
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a == "-V" or a == "--version" then o.version = true
    elseif a == "--script" then
      o.script, err = val(a)
      if not o.script then return nil, err end
      o.script_args = { table.unpack(argv, i + 1) }
      return o
    elseif a == "-e" or a == "--var" then
      local kv; kv, err = val(a)
      if not kv then return nil, err end
      local k, v = kv:match("^([%a_][%w_]*)=(.*)$")
      if not k then return nil, ("bad variable '%s': expected KEY=VALUE"):format(kv) end
      -- twice is refused, not last-wins: "-e port=1 ... -e port=2" in a long
      -- command line is a mistake more often than an override
      if o.vars[k] ~= nil then return nil, ("variable '%s' is given twice (-e %s=...): give it once"):format(k, k) end
      -- KEY=@FILE: the value is FILE's content (a secret stays out of argv,
      -- which every user can read in /proc); KEY=@@text: the literal @text
      if v:sub(1, 2) == "@@" then v = v:sub(2)
      elseif v:sub(1, 1) == "@" then
        local file = v:sub(2)
        local text, rerr
        if file:find("\0", 1, true) then rerr = "the path holds a NUL byte"
        else text, rerr = core.read_file(file) end
        if not text then return nil, ("-e %s=%s: cannot read it: %s"):format(k, v, rerr) end
        v = text:gsub("\r?\n$", "")
      end
      o.var_order[#o.var_order + 1] = k
      o.vars[k] = v
    elseif a == "--host" then
      local h; h, err = val(a); if not h then return nil, err end
      o.hosts[#o.hosts + 1] = h
    elseif a == "--chdir" then
      o.chdir, err = val(a); if not o.chdir then return nil, err end
      if o.chdir == "" or o.chdir:find("[%z\n]") then return nil, "--chdir needs a folder" end
    elseif a == "--become" then o.become = true
    elseif a == "--forks" then
      local n; n, err = val(a); if not n then return nil, err end
      o.forks = math.tointeger(tonumber(n))
      if not o.forks or o.forks < 1 or not n:find("^%d+$") then
        return nil, ("bad --forks '%s': a whole number, 1 or more"):format(n)
      end
    elseif a == "-i" or a == "--inventory" then
      o.inventory, err = val(a); if not o.inventory then return nil, err end
    elseif a == "--limit" then
      o.limit, err = val(a); if not o.limit then return nil, err end
      if o.limit:match("^[%s,]*$") then return nil, "--limit needs a group or host pattern" end
    elseif a == "--serial" or a == "--max-fail-percent" then
      local n; n, err = val(a); if not n then return nil, err end
      local v = n:find("^%d+$") and math.tointeger(tonumber(n))
      local max = a == "--serial" and math.maxinteger or 100
      if not v or v < (a == "--serial" and 1 or 0) or v > max then
        return nil, ("bad %s '%s': %s"):format(a, n, a == "--serial" and "a whole number, 1 or more" or "a percentage, 0 to 100")
      end
      if a == "--serial" then o.serial = v else o.max_fail = v end
    elseif a == "--remote" then o.remote = true   -- what a host runs for --host (provision.fleet.remote)
    elseif a == "--teardown" or a == "--plan" then o[a:sub(3)] = true   -- plan --teardown, teardown --plan
    elseif a == "--json" then o.json = true
    elseif a == "-q" or a == "--quiet" then o.quiet = true
    elseif a == "-v" or a == "--verbose" or a == "-vv" then o.trace = o.verbose or a == "-vv" or nil; o.verbose = true
    elseif a == "--no-color" or a == "--no-colour" then o.color = false
    elseif a == "--wait-lock" then o.wait_lock = true
    elseif a == "--adopt-state" then o.adopt_state = true
    elseif a == "--from" then
      o.from, err = val(a); if not o.from then return nil, err end
    elseif a == "--timeout" then
      local d; d, err = val(a); if not d then return nil, err end
      o.timeout = core.duration(d)
      if not o.timeout then return nil, ("bad --timeout '%s' (use e.g. 30s, 10m)"):format(d) end
      -- not "no limit": leave the flag out for that
      if o.timeout <= 0 then return nil, ("--timeout '%s': must be more than 0 (e.g. 30s, 10m)"):format(d) end
    elseif a == "--state-dir" then
      o.state_dir, err = val(a); if not o.state_dir then return nil, err end
      if o.state_dir == "" then return nil, "--state-dir needs a folder, not an empty string" end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, ("unknown option '%s' (see provision --help)"):format(a)
    else
      err = positional(o, a)
      if err then return nil, err end
    end
    if inline then return nil, ("option '%s' takes no value"):format(a) end
    i = i + 1
  end
  o.verb = o.verb or "apply"
  -- the plan of a teardown: verb teardown, o.plan (run.lua: nothing changed)
  if o.teardown then
    if o.verb ~= "plan" then return nil, "--teardown goes with plan: provision plan --teardown RECIPE" end
    o.verb, o.plan, o.teardown = "teardown", true, nil
  elseif o.plan and o.verb ~= "teardown" then
    return nil, "--plan goes with teardown: provision teardown --plan RECIPE (or plan --teardown)"
  end
  if o.quiet and o.verbose then return nil, "-q and -v cannot be used together" end
  if o.from and #o.only > 0 then return nil, "--from and --only cannot be used together" end
  return o
end

local function run_script(o)
  local env = require("provision.env").globals()
  local chunk, err = loadfile(o.script, "t", env)
  if not chunk then
    io.stderr:write("provision: ", err, "\n")
    return EXIT.usage
  end
  env.arg = o.script_args
  core.gc_settle()   -- Lua's pause again (core/main.c: 1000 % while the modules load)
  local ok, res = xpcall(chunk, debug.traceback, table.unpack(o.script_args))
  io.stdout:flush()
  if not ok then
    if core.interrupted() then io.stderr:write("provision: interrupted\n"); return EXIT.interrupted end
    io.stderr:write("provision: ", tostring(res), "\n")
    return EXIT.failed
  end
  return math.tointeger(res) or EXIT.ok
end

function M.main(argv)
  local o, err = M.parse(argv)
  if not o then
    io.stderr:write("provision: ", err, "\n")
    return EXIT.usage
  end
  if o.help then io.stdout:write(USAGE); return EXIT.ok end
  if o.version then io.stdout:write("provision ", core.version, " (", core.lua_release, ")\n"); return EXIT.ok end
  if o.script then return run_script(o) end
  if o.verb == "help" then return require("provision.cli.help").main(o.recipe, USAGE) end
  if o.remote then return require("provision.fleet.remote").main() end
  if o.verb == "facts" then
    if o.recipe or next(o.vars) or #o.hosts > 0 or o.inventory or selection.any(o) then
      io.stderr:write("provision: facts takes no recipe, -e, step choice or hosts: it reports this machine\n")
      return EXIT.usage
    end
    return require("provision.cli.facts").main(o)
  end
  local remote = false
  for _, h in ipairs(o.hosts) do
    for x in (h .. ","):gmatch("([^,]*),") do if x:match("^%s*(.-)%s*$") ~= "local" then remote = true end end
  end
  if not o.recipe then
    io.stderr:write("provision: no recipe given\n", USAGE)
    return EXIT.usage
  end
  if remote or o.inventory then return require("provision.fleet").main(o) end
  if o.chdir or o.become or o.forks or o.limit or o.serial or o.max_fail then
    io.stderr:write("provision: --chdir, --become, --forks, --limit, --serial and --max-fail-percent go with --host or -i\n")
    return EXIT.usage
  end
  return require("provision.run").main(o)
end

return M
