-- provision.exec: running programs, argv only (never a shell string).
--
--   exec.run { "prog", "arg", cwd=, env={}, input=, timeout=, passthrough=,
--              capture_max= } -> result | nil, msg
--     (or exec.run { argv = { "prog", "arg" }, ... } as exec.command takes it);
--     an unknown option raises; secrets in argv, env and input are passed
--     as their values; timeout is seconds or a duration ("10s")
--   exec.which(name) -> path | nil
--   exec.command { argv = { "prog", "arg" } (or positional), cwd?, env?,
--                  timeout?, creates?, unless?, input? }          (a resource)
--
-- exec.command's check: `creates` exists -> done; `unless` (an argv) exits 0
-- -> done; with neither guard the command always runs (describe says so).
-- apply fails with the exit code and the (masked) last lines of its output.
local C = require "provision._exec"
local R = require "provision.resource"
local fs = require "provision._fs"
local core = require "provision._core"

local M = {}

-- exec.run: provision._exec.run, with its options checked (a typo such as
-- cwdd = would otherwise run the command somewhere else) and argv = taken
local RUN_OPTIONS = { argv = true, cwd = true, env = true, input = true, timeout = true,
                      passthrough = true, capture_max = true }
function M.run(t)
  if type(t) ~= "table" then error("exec.run: expected { \"prog\", \"arg\", ... }, got " .. type(t), 2) end
  local n = #t
  R.check_keys("exec.run", t, RUN_OPTIONS, function(k) return math.type(k) == "integer" and k >= 1 and k <= n end)
  if t.argv ~= nil then
    if n > 0 then error("exec.run: give 'argv' once, either by position or by name", 2) end
    if type(t.argv) ~= "table" or #t.argv == 0 then error("exec.run: argv must be a non-empty list", 2) end
  elseif n == 0 then
    error('exec.run: no command: give { "prog", "arg", ... } or argv = { ... }', 2)
  end
  -- one copy for the C side, argv = { ... } as the list part; secrets (in
  -- argv, env values, input) go to the program as their values, as
  -- exec.command gives them; the output is masked by whoever shows it.
  -- Left to the C side they would be the text "********".
  local c = {}
  for k, v in pairs(t) do if k ~= "argv" then c[k] = v end end
  for i, a in ipairs(t.argv or {}) do c[i] = a end
  for i, a in ipairs(c) do   -- here, so the error names the caller's line
    if type(a) ~= "string" and type(a) ~= "number" and not R.is_secret(a) then
      error(("exec.run: argv[%d] is a %s, not a string"):format(i, type(a)), 2)
    end
    c[i] = R.reveal(a)
  end
  if c.env ~= nil then
    if type(c.env) ~= "table" then error("exec.run: env must be a table of NAME = value", 2) end
    local env = {}
    for k, v in pairs(c.env) do env[k] = R.reveal(v) end
    c.env = env
  end
  c.input = R.reveal(c.input)
  if c.timeout ~= nil then
    local d = core.duration(c.timeout)
    if not d then error(("exec.run: bad timeout %q (use e.g. 30s, 5m, or seconds)"):format(tostring(c.timeout)), 2) end
    c.timeout = d
  end
  -- passthrough copies the program's output to stderr as it comes, raw:
  -- once any secret is known it is shown masked instead, when it ends
  -- (a secret in a .env file would reach the terminal through -v)
  if c.passthrough and R.any_secret() then
    c.passthrough = false
    local r, err = C.run(c)
    if r and r.output and r.output ~= "" then io.stderr:write(R.mask(r.output)); io.stderr:flush() end
    return r, err
  end
  return C.run(c)
end
M.which = C.which

local TAIL_LINES = 20

-- a readable one-line form of an argv (for messages; never run)
local function show_argv(argv)
  local parts = {}
  for i, a in ipairs(argv) do
    local hidden = R.is_secret(a)
    a = tostring(a)
    if not hidden and (a == "" or a:find("[%s'\"\\$`;&|<>()*?#~]")) then -- a secret stays "********"
      a = "'" .. a:gsub("'", "'\\''") .. "'"
    end
    parts[i] = a
  end
  return R.mask(table.concat(parts, " "))
end
M.show_argv = show_argv

local function tail(text, n)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]*") do lines[#lines + 1] = line end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  local from = math.max(1, #lines - n + 1)
  return table.concat(lines, "\n", from, #lines), #lines - from + 1 < #lines
end
M.tail = tail

-- argv with secrets revealed, plus the options exec.run takes
local function spec(self, argv, ctx)
  local t = {}
  for i, a in ipairs(argv) do t[i] = R.reveal(a) end
  t.cwd = self.cwd
  if self.env then
    t.env = {}
    for k, v in pairs(self.env) do t.env[k] = tostring(R.reveal(v)) end
  end
  t.timeout = self.timeout or (ctx and ctx.timeout)
  return t
end

local function check_argv(argv, what)
  if type(argv) ~= "table" or #argv == 0 then return nil, what .. " must be a non-empty list (argv)" end
  for i, a in ipairs(argv) do
    if type(a) ~= "string" and type(a) ~= "number" and not R.is_secret(a) then
      return nil, ("%s[%d] must be a string, not a %s"):format(what, i, type(a))
    end
  end
  return true
end

M.command = R.define {
  kind = "exec.command",
  positional = "argv",
  options = {
    argv = { "any", doc = "the program and its arguments, a list (never a shell string); items may be secrets" },
    cwd = { "string?", doc = "the folder it runs in" },
    env = { "table?", doc = "environment variables to add, { NAME = value } (values may be secrets)" },
    timeout = { "duration?", doc = "stop its whole process group after this long (SIGTERM, then SIGKILL 2 s later)" },
    creates = { "string?", doc = "a path: when it exists, the command counts as done and does not run" },
    ["unless"] = { "table?", doc = "an argv: when it exits 0, the command counts as done and does not run" },
    input = { "secret?", doc = "what the program reads on stdin (else /dev/null)" },
  },
  validate = function(self)
    if type(self.argv) == "string" then
      if self.argv:find("%s") then
        local words = {}
        for w in self.argv:gmatch("%S+") do words[#words + 1] = ("%q"):format(w) end
        return nil, ("argv must be a list, never a shell string: write { %s }"):format(table.concat(words, ", "))
      end
      self.argv = { self.argv }
    end
    local ok, err = check_argv(self.argv, "argv")
    if not ok then return nil, err end
    if self["unless"] then
      ok, err = check_argv(self["unless"], "unless")
      if not ok then return nil, err end
    end
    for k, v in pairs(self.env or {}) do
      if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then return nil, "env: bad name " .. tostring(k) end
      local t = type(v)
      if not (t == "string" or t == "number" or t == "boolean" or R.is_secret(v)) then
        return nil, ("env.%s must be a string, number, boolean or secret"):format(k)
      end
    end
    return true
  end,
  describe = function(self)
    local guard = self.creates and (" (unless " .. self.creates .. " exists)")
      or self["unless"] and (" (unless " .. show_argv(self["unless"]) .. " succeeds)")
      or " (always runs: no creates/unless guard)"
    return "run " .. show_argv(self.argv) .. guard
  end,
  check = function(self, ctx)
    if self.creates then
      local path = self.creates
      if self.cwd and path:sub(1, 1) ~= "/" then path = self.cwd .. "/" .. path end
      if fs.exists(path) then return true end
      return false, "+ run " .. show_argv(self.argv) .. " (" .. self.creates .. " does not exist)"
    end
    if self["unless"] then
      local r, err = C.run(spec(self, self["unless"], ctx))
      if not r then return nil, "unless: " .. err end
      if r.status == 0 then return true end
      return false, ("+ run %s (%s exited %d)"):format(show_argv(self.argv), show_argv(self["unless"]), r.status)
    end
    return false, "+ run " .. show_argv(self.argv) .. " (no guard: always runs)"
  end,
  -- with no guard, nothing can say afterwards that it worked but its exit status
  unverifiable = function(self) return not self.creates and not self["unless"] end,
  apply = function(self, ctx)
    if ctx.log and not C.traced then ctx:log("$ " .. show_argv(self.argv)) end   -- (-vv: the trace shows it)
    local t = spec(self, self.argv, ctx)
    if self.input then t.input = R.reveal(self.input) end
    t.passthrough = false
    local r, err = C.run(t)
    if not r then return nil, err end
    if ctx.log and ctx.verbose and not C.traced then
      for line in R.mask(r.output):gmatch("[^\n]+") do ctx:log(line) end
    end
    if r.interrupted then return nil, show_argv(self.argv) .. ": interrupted" end
    if r.timed_out then
      return nil, ("%s: timed out after %gs\n%s"):format(show_argv(self.argv), t.timeout, R.mask(tail(r.output, TAIL_LINES)))
    end
    if r.status ~= 0 then
      local out = R.mask(tail(r.output, TAIL_LINES))
      return nil, ("%s exited %d%s"):format(show_argv(self.argv), r.status, out ~= "" and (":\n" .. out) or "")
    end
    if ctx.detail then ctx:detail(("exit 0 in %.1fs"):format(r.seconds or 0)) end
    return true
  end,
}

return M
