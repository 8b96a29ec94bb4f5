-- provision.cli.help: `provision help [TOPIC]`. The options and many-hosts
-- topics are sections of the CLI's USAGE, and a module's topic is made from
-- its resource definitions (the options tables given to R.define), so
-- neither can drift from what the code accepts.
local core = require "provision._core"
local env = require "provision.env"
local R = require "provision.resource"
local EXIT = core.EXIT

local M = {}

local VERBS = [[
verbs (the first word; apply when none is given):
  apply RECIPE      run the recipe's preflight checks, then each step whose
                    check says it would change; record what it created in
                    the state (./.provision/) so teardown can undo it
  plan RECIPE       run the checks only and show what apply would change;
                    changes nothing (exit 3 when something would change)
  teardown RECIPE   undo what the recipe's steps created, newest first (the
                    recipe's teardown {} block when it has one); with --only
                    or --from, just those steps
  plan --teardown RECIPE   what teardown would remove and what it would
                    leave, and why; changes nothing (exit 3 when teardown
                    would change something; also: teardown --plan RECIPE)
  list RECIPE       the preflight checks and the steps, numbered, with their
                    kinds (--json: one step event per step)
  facts             what the checks know of this machine: os, kernel, arch,
                    host, user, CPUs, memory, disk, PID 1, the Docker engine
                    and Compose (--json: one "facts" event); changes nothing
  help [TOPIC]      the usage; with a TOPIC, that topic

A recipe file named like a verb is given by its path (provision ./help) or
after the verb (provision apply help). `--` ends the options: every word
after it is a verb, recipe or topic (provision apply -- -odd-name.lua).
]]

local EXIT_CODES = [[
exit codes:
  0    success (plan: nothing would change)
  1    a step or a preflight check failed, or a step timed out (--timeout);
       with --host or -i: also a host that was unreachable (the other hosts
       still run to the end)
  2    usage or recipe error: a bad option or variable, a recipe that does
       not load; also a state file that is damaged or another recipe's, a
       state folder that cannot be used, and another run holding the
       project's lock (--wait-lock waits for it): all found before anything
       changed (before any host is touched), no step having run
  3    plan found changes (with --host: on some host); plan --teardown:
       teardown would change something
  130  interrupted (SIGINT or SIGTERM): the current step stops, what was
       done is recorded, the summary printed
]]

local JSON = [[
--json: one JSON object a line, alone on stdout (whatever a custom step or
a command it runs prints goes to stderr):

  {"event":"start","recipe":"demo","steps":9,"verb":"apply"}
  {"event":"check","name":"memory","status":"ok","ms":0,"detail":"..."}
  {"event":"step","index":1,"name":"project directory","kind":"fs.directory","status":"changed","ms":2}
  {"event":"summary","ok":8,"changed":1,"failed":0,"skipped":0,"ms":40,"verb":"apply"}

status: ok, changed, would-change, failed, skipped. A step event may carry
detail, changes (the lines plan shows) and bytes (downloads); a plan summary
also counts would-change, and after a failure the summary has not-run.
provision list --json prints only step events, with "status":"listed".
With --host or -i every event gains "host", and a last
{"event":"recap","verb":...,"hosts":[...]} gives each host's status (ok,
changed, pending, failed, unreachable, interrupted, not-run).
]]

local VARIABLES = [[
variables: a recipe declares them with vars { name = default, ... }; the
command line sets them:

  -e KEY=VALUE, --var KEY=VALUE
                 set one (each KEY once); VALUE is coerced to the type of the
                 default; an unknown KEY or a VALUE that does not fit is
                 exit 2, and the message lists the recipe's variables
  -e KEY=@FILE   the value is FILE's content, its last newline dropped: give
                 secrets so, as argv is public (/proc/PID/cmdline)
  -e KEY=@@text  the literal value @text
  PROVISION_VAR_KEY=VALUE
                 in the environment: the same as -e KEY=VALUE (readable only
                 by the same user and root); -e wins over it

secrets: a variable whose default is secret "..." (or a value given for it)
is a secret: shown as ******** everywhere (step lines, diffs, --json, logs,
the state file); it must be at least 4 bytes and not only spaces.
]]

-- a section of USAGE: from the line starting with `head` to the blank line
local function section(usage, head)
  local out, on = {}, false
  for line in (usage .. "\n"):gmatch("([^\n]*)\n") do
    if line:sub(1, #head) == head then on = true end
    if on and line == "" then break end
    if on then out[#out + 1] = line end
  end
  return table.concat(out, "\n") .. "\n"
end

-- what each option type means, for the legend under a module's resources
local TYPES = {
  string = "text", strings = "a string or a list of strings", number = "a number",
  integer = "a whole number", boolean = "true or false", table = "a Lua table",
  ["function"] = "a Lua function", any = "any value", secret = "a string or secret \"...\"",
  duration = "a duration: 30s, 5m, 1h30m", size = "a size: 512MiB, 4GiB, 10GB",
  mode = "a file mode as a string: \"0644\"",
}

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then return next(v) == nil and "{}" or "a table" end
  return tostring(v)
end

-- one resource's options, sorted by name: { name, type, default (shown) or
-- need ("optional", "required"), positional, doc } each
local function option_rows(def, used)
  local names = {}
  for name in pairs(def.options) do names[#names + 1] = name end
  table.sort(names)
  local rows = {}
  for _, n in ipairs(names) do
    local sp = def.options[n]
    local t = type(sp) == "table" and sp[1] or sp
    local optional = t:sub(-1) == "?" or type(sp) == "table" and sp.optional
    t = t:gsub("%?$", "")
    used[t] = true
    local default = nil   -- (a default may be false)
    if type(sp) == "table" then default = sp.default end
    rows[#rows + 1] = { name = n, type = t, default = default ~= nil and show(default) or nil,
                        need = default == nil and (optional and "optional" or "required") or nil,
                        positional = n == def.positional, doc = type(sp) == "table" and sp.doc or nil }
  end
  return rows
end

local function synopsis(def)
  return def.kind .. (def.positional and (" " .. def.positional:upper() .. " | { options }") or " { options }")
end

-- one resource: its kind, its positional option, a row per option
local function resource_text(def, used)
  local rows = option_rows(def, used)
  local width = 8
  for _, r in ipairs(rows) do width = math.max(width, #r.name) end
  local lines = { synopsis(def) }
  for _, r in ipairs(rows) do
    local what = r.default and ("default " .. r.default) or r.need
    if r.positional then what = what .. "; also the first value: " .. def.kind .. " " .. show(r.name:upper()) end
    lines[#lines + 1] = ("  %-" .. width .. "s  %-9s %s"):format(r.name, r.type, what)
  end
  if #rows == 0 then lines[2] = "  (no options: " .. def.kind .. " {})" end
  return table.concat(lines, "\n")
end

-- the kinds a module defines, sorted, and its other functions (name.f)
local function module_parts(name)
  local mod = require("provision." .. name)
  local kinds, funcs = {}, {}
  for kind, def in pairs(R.kinds) do
    if kind:sub(1, #name + 1) == name .. "." then kinds[#kinds + 1] = def end
  end
  table.sort(kinds, function(a, b) return a.kind < b.kind end)
  for k, v in pairs(mod) do
    if type(k) == "string" and type(v) == "function" and not R.kinds[name .. "." .. k] then
      funcs[#funcs + 1] = name .. "." .. k
    end
  end
  table.sort(funcs)
  return kinds, funcs
end

local function legend(used, fmt)
  local out = {}
  for t in pairs(used) do out[#out + 1] = fmt:format(t, TYPES[t] or t) end
  table.sort(out)
  return out
end

-- module_text(name) -> the text of a module's topic
function M.module_text(name)
  local kinds, funcs = module_parts(name)
  local out, used = {}, {}
  if #kinds == 0 then
    out[1] = name .. ": no resources; functions for recipes and custom steps."
  else
    out[1] = name .. ": resources, each a step's body or a preflight check; the options each takes:"
    for _, def in ipairs(kinds) do out[#out + 1] = "\n" .. resource_text(def, used) end
    out[#out + 1] = "\ntypes:\n" .. table.concat(legend(used, "  %-9s %s"), "\n")
  end
  if #funcs > 0 then
    out[#out + 1] = "\nfunctions: " .. table.concat(funcs, ", ")
  end
  return table.concat(out, "\n") .. "\n"
end

-- ---- the same, as Markdown: the generated parts of docs/modules/NAME.md

local function cell(s) return (s:gsub("|", "\\|"):gsub("\n", " ")) end

-- markdown(name) -> { [kind] = a resource's synopsis and table, types =
-- the legend, functions = the list }, and the kinds in order; an option
-- without doc text has "" for its meaning (docs/gen.lua refuses it)
function M.module_markdown(name)
  local kinds, funcs = module_parts(name)
  local parts, order, used = {}, {}, {}
  for _, def in ipairs(kinds) do
    local rows = option_rows(def, used)
    local lines = { "`" .. synopsis(def) .. "`", "" }
    if #rows == 0 then
      lines[#lines + 1] = "No options: `" .. def.kind .. " {}`."
    else
      lines[#lines + 1] = "| option | type | default | meaning |"
      lines[#lines + 1] = "| --- | --- | --- | --- |"
      for _, r in ipairs(rows) do
        local what = r.default and ("`" .. r.default .. "`") or r.need
        if r.positional then what = what .. ", or the first value" end
        lines[#lines + 1] = ("| `%s` | %s | %s | %s |"):format(r.name, r.type, cell(what), cell(r.doc or ""))
      end
    end
    parts[def.kind] = table.concat(lines, "\n")
    order[#order + 1] = def.kind
  end
  if next(used) then
    parts.types = "| type | what it takes |\n| --- | --- |\n" .. table.concat(legend(used, "| %s | %s |"), "\n")
  end
  if #funcs > 0 then
    local l = {}
    for _, f in ipairs(funcs) do l[#l + 1] = "`" .. f .. "`" end
    parts.functions = "Functions: " .. table.concat(l, ", ") .. "."
  end
  return parts, order, kinds
end

local FIXED = { "verbs", "options", "hosts", "exit-codes", "json", "variables" }

-- topics() -> the names `provision help` knows, in the order shown
function M.topics()
  local t = {}
  for _, n in ipairs(FIXED) do t[#t + 1] = n end
  for _, n in ipairs(env.modules) do
    if n ~= "json" then t[#t + 1] = n end   -- json: one topic, the events and the module
  end
  return t
end

local function text(topic, usage)
  if topic == "verbs" then return VERBS
  elseif topic == "options" then return section(usage, "options:")
  elseif topic == "hosts" then return section(usage, "many hosts")
  elseif topic == "exit-codes" then return EXIT_CODES
  elseif topic == "json" then return JSON .. "\nThe json module (recipes and custom steps):\n" .. M.module_text("json")
  elseif topic == "variables" then return VARIABLES end
  for _, n in ipairs(env.modules) do
    if n == topic then return M.module_text(n) end
  end
  return nil
end

-- main(topic, usage) -> exit code: the usage without a topic, else the topic
function M.main(topic, usage)
  if topic == nil then
    io.stdout:write(usage)
    return EXIT.ok
  end
  local t = text(topic, usage)
  if not t then
    io.stderr:write(("provision: no help topic '%s'; topics: %s\n"):format(topic, table.concat(M.topics(), ", ")))
    return EXIT.usage
  end
  io.stdout:write(t)
  return EXIT.ok
end

return M
