-- provision.report: what a person (or with --json, a program) sees.
-- Human output goes to stdout; with --json stdout carries only JSON events,
-- one a line, and people get failures on stderr. Colour only on a tty and
-- never with --no-color or NO_COLOR. Progress bars and spinners only on a tty.
-- Everything that came from outside passes through secret.mask first.
local core = require "provision._core"
local json = require "provision.json"
local secret = require "provision.secret"

local Report = {}
Report.__index = Report

local COLORS = { ok = "32", changed = "33", ["would-change"] = "33", failed = "1;31", skipped = "2", dim = "2", bold = "1" }

local json_out   -- what was stdout, once --json has claimed it (a file)

-- Step lines (and --json's step events) wait in stdout's buffer when stdout
-- is not a terminal (a pipe, a file, a fleet's ssh), so that a plan of
-- 142,000 files is not 142,000 write(2)s (issue 19: through a pipe 6.15 ->
-- 4.90 s, bench/README.md). They go out:
--   - with any other line or event (start, a check, a log line, the
--     summary) and before anything on stderr (2>&1 keeps its order);
--   - at a step line written HOLD seconds or more after the first one held;
--   - before a step runs that is not a step of whole files (Report:before):
--     a command, a download, a container may take long or write to stdout
--     itself, and what ran before it shows first.
-- On a terminal every line goes out as it is written.
local HOLD = 0.1

function Report.new(o)
  local self = setmetatable({}, Report)
  self.json = o.json
  self.quiet = o.quiet
  self.verbose = o.verbose
  self.plan = o.verb == "plan" or o.plan == true   -- o.plan: a plan of teardown
  self.tty = core.isatty(1)
  local no_color = os.getenv("NO_COLOR")
  self.color = self.tty and o.color ~= false and not (no_color and no_color ~= "") and not o.json
  self.live = self.tty and not o.json and not o.quiet   -- bars and spinners
  self.out = io.stdout
  self.hold = not self.tty   -- step lines may wait (HOLD)
  if self.hold and not o.json then core.buffer_stdout() end   -- (lreport.c says why)
  self.since = nil           -- when the first line held was written
  if o.json then
    -- the events get stdout to themselves: anything else written there
    -- (print in a custom step, a child process) goes to stderr
    json_out = json_out or core.claim_stdout()   -- once per process
    if json_out then self.out = json_out end
  end
  self.last_draw = 0
  self.drawn = false
  return self
end

function Report:paint(what, text)
  if not self.color or not COLORS[what] then return text end
  return "\27[" .. COLORS[what] .. "m" .. text .. "\27[0m"
end

function Report:write(s)
  self:clear_live()
  self.out:write(secret.mask(s))
  self:flush()
end

-- what is held goes out now
function Report:flush()
  self.out:flush()
  self.since = nil
end

-- after a step's line or event was written: it may wait (HOLD above)
local function written(self)
  if not self.hold then return self.out:flush() end
  local now, since = core.now(), self.since
  if not since then self.since = now
  elseif now - since >= HOLD then self:flush() end
end

local function held(self, ...)
  self.out:write(...)
  return written(self)
end

-- a step's lines (Report:write's, held)
function Report:step_lines(s)
  self:clear_live()
  held(self, secret.mask(s))
end

-- before step s runs: what is held goes out, unless every resource of s
-- writes whole files and no more (sync_later: batch.lua), which takes
-- little time and writes nothing to stdout
function Report:before(s)
  if not self.since then return end
  local rs = s.resources
  for i = 1, #rs do
    if not rs[i].sync_later then return self:flush() end
  end
end

-- Keys in the order DESIGN.md shows them; any others follow, sorted.
local ORDER = { "event", "recipe", "steps", "index", "name", "kind", "status",
                "ok", "changed", "would-change", "failed", "skipped", "not-run", "ms", "detail" }
local RANK = {}
for i, k in ipairs(ORDER) do RANK[k] = i end

-- text from outside (a command's output, an HTTP body) may be any bytes;
-- JSON holds only UTF-8, so what is not becomes U+FFFD rather than stop
-- the run (the human output shows the bytes as they came)
local function as_text(v)
  if type(v) == "string" then return json.text(v) end
  if type(v) ~= "table" or secret.is(v) then return v end
  local out = setmetatable({}, getmetatable(v))   -- keeps json.array's mark
  for k, x in pairs(v) do out[as_text(k)] = as_text(x) end
  return out
end

-- v's JSON: the usual value, all text already, is encoded as it is (no
-- walk of it first: a step's event is ~10 values); one encode refuses (text
-- that is not UTF-8, rare) is made text first, and encoded again, which
-- raises what it raised before if that was not why
local encode = json.encode
local function encode_text(v)
  local ok, out = pcall(encode, v)
  if ok then return out end
  return encode(as_text(v))
end

-- (each known key, encoded once: '"name":')
local KEY = {}
for i, k in ipairs(ORDER) do KEY[i] = json.encode(k) .. ":" end

function Report:event(t, step)
  -- the keys of ORDER in its order, then any others sorted; joined as
  -- they come (an event a step with --json: no list of parts, no sort
  -- with a comparator)
  local text = "{"
  for i = 1, #ORDER do
    local v = t[ORDER[i]]
    if v ~= nil then text = (#text > 1 and text .. "," or text) .. KEY[i] .. encode_text(v) end
  end
  local others
  for k in next, t do
    if not RANK[k] then others = others or {}; others[#others + 1] = k end
  end
  if others then
    table.sort(others)
    for _, k in ipairs(others) do
      text = (#text > 1 and text .. "," or text) .. encode_text(k) .. ":" .. encode_text(t[k])
    end
  end
  if step then return held(self, text, "}\n") end
  self.out:write(text, "}\n")
  self:flush()
end

function Report:err(s)
  self:clear_live()
  if self.since then self:flush() end
  io.stderr:write(secret.mask(s))
  io.stderr:flush()
end

local MS = {}   -- "0ms" .. "999ms", each made once (a line a step)
local function fmt_ms(ms)
  if ms < 1000 then
    local t = MS[ms]
    if not t then t = ("%dms"):format(ms); MS[ms] = t end
    return t
  end
  if ms < 60000 then return ("%.1fs"):format(ms / 1000) end
  return ("%dm%02ds"):format(ms // 60000, (ms % 60000) // 1000)
end
Report.fmt_ms = fmt_ms

-- "512 B", "12.5 MiB": bytes whole (n may be a fraction: a rate), larger
-- units with one decimal. The one human_bytes (R.human_bytes is this).
local UNITS = { "B", "KiB", "MiB", "GiB", "TiB" }
local function human_bytes(n)
  local i = 1
  while n >= 1024 and i < #UNITS do n = n / 1024; i = i + 1 end
  if i == 1 then return ("%d B"):format(math.floor(n)) end
  return ("%.1f %s"):format(n, UNITS[i])
end
Report.human_bytes = human_bytes

function Report:start(recipe, verb, nsteps)
  self.nsteps, self.of_n = nsteps, nil
  self.t0 = core.now()
  local width = 10   -- the longest name's, up to 36
  for _, s in ipairs(recipe.steps) do
    local n = #s.name
    if n > width then width = n < 36 and n or 36 end
  end
  self.name_width = width
  if self.json then
    self:event { event = "start", recipe = recipe.name, verb = verb, steps = nsteps,
                 plan = verb ~= "plan" and self.plan or nil }
  elseif not self.quiet then
    local what = ({ apply = "", plan = " (plan: checks only, nothing is changed)", teardown = " (teardown)" })[verb]
    if verb == "teardown" and self.plan then what = " (plan of teardown: nothing is changed)" end
    self:write(self:paint("bold", recipe.name) .. ": " .. nsteps .. " step" .. (nsteps == 1 and "" or "s") .. what .. "\n")
  end
end

-- a preflight check's result
function Report:check(c, status, ms, detail)
  if self.json then
    self:event { event = "check", name = c.name, status = status, ms = ms, detail = detail and secret.mask(detail) or nil }
  elseif not self.quiet or status == "failed" then
    local mark = status == "ok" and self:paint("ok", "ok") or self:paint("failed", "FAILED")
    self:write(("  check %-" .. self.name_width .. "s %s  %s%s\n"):format(c.name, mark, fmt_ms(ms),
      detail and ("  " .. detail) or ""))
  end
end

-- s, with spaces after it up to width bytes (string.format's %-Ns)
local SPACES = (" "):rep(64)
local function pad(s, width)
  local n = width - #s
  if n <= 0 then return s end
  return s .. (n <= 64 and SPACES:sub(1, n) or (" "):rep(n))
end

-- does a step that ends with status get a line (or an event)?
function Report:shows_step(status) return self.json or not self.quiet or status == "failed" end

-- a step's result line (and, for plan or -v, its change lines)
function Report:step(i, s, status, ms, detail, changes, extra)
  if self.json then
    local ev = { event = "step", index = i, name = s.name, kind = s.kind, status = status, ms = ms,
                 detail = detail and secret.mask(detail) or nil }
    if changes and #changes > 0 then
      if secret.any() then
        local masked = {}
        for k, l in ipairs(changes) do masked[k] = secret.mask(l) end
        changes = masked
      end
      ev.changes = changes   -- (a list of one or more: an array in JSON, not copied to be marked one)
    end
    if extra then for k, v in pairs(extra) do ev[k] = v end end
    self:event(ev, true)
    return
  end
  if not self:shows_step(status) then return end
  -- a step the command line left out is not shown (-v shows it); one that
  -- waits for a change (on_change) is, saying for what
  if status == "skipped" and not self.verbose and not detail then return end
  -- (the line's parts that do not change and its painted labels made once
  -- a run, the rest joined without string.format: a plan of 142,000 steps
  -- writes 142,000 lines)
  local of_n = self.of_n
  if not of_n then
    of_n = "/" .. self.nsteps .. "]"
    self.of_n, self.labels = of_n, {}
  end
  local label = self.labels[status]
  if not label then
    label = self:paint(status, ("%-12s"):format(status == "failed" and "FAILED" or status))
    self.labels[status] = label
  end
  local took = fmt_ms(ms)
  -- (a plan of teardown: also what an ok step would leave, and why)
  local show = changes and (status == "would-change" or self.verbose and status ~= "ok" or self.plan and #changes > 0)
     and not (#changes == 1 and changes[1] == detail)   -- said once already
  if not self.color and not secret.any() then   -- (nothing to paint or mask: written in C)
    self:clear_live()
    core.step_line(self.out, i, of_n, s.name, self.name_width, label, took, detail or nil, show and changes or nil)
    return written(self)
  end
  local line = pad("[" .. i .. of_n, #of_n * 2 - 1) .. " " .. pad(s.name, self.name_width) .. " " .. label .. " "
    .. (#took < 6 and SPACES:sub(1, 6 - #took) .. took or took)
    .. (detail and detail ~= "" and ("  " .. detail) or "") .. "\n"
  if show then
    self:changes(changes, line)
  else
    self:step_lines(line)
  end
end

-- the change lines, indented (and painted), after `first` (the step's
-- line): held together (step_lines)
function Report:changes(lines, first)
  if not self.color and #lines > 0 then   -- (one concat: no line is painted)
    self:step_lines(first .. "      " .. table.concat(lines, "\n      ") .. "\n")
    return
  end
  local buf = { first }
  for _, l in ipairs(lines) do
    local c = l:sub(1, 1)
    local painted = l
    if self.color then
      if c == "+" and l:sub(1, 3) ~= "+++" then painted = self:paint("ok", l)
      elseif c == "-" and l:sub(1, 3) ~= "---" then painted = self:paint("failed", l)
      elseif c == "@" then painted = self:paint("dim", l) end
    end
    buf[#buf + 1] = "      " .. painted .. "\n"
  end
  self:step_lines(table.concat(buf))
end

function Report:log(line)
  if self.json or not self.verbose then return end
  self:write("      " .. self:paint("dim", "| " .. line) .. "\n")
end

function Report:failure(kind, name, where, resource, reason)
  local text = ("\n%s %s '%s' failed (%s)\n  resource: %s\n  reason:   %s\n"):format(
    self:paint("failed", "error:"), kind, name, where, resource, (reason or "?"):gsub("\n", "\n            "))
  self:err(text)   -- stderr, in text mode too: stdout keeps the step lines and the summary
end

function Report:summary(counts, verb)
  local ms = math.floor((core.now() - self.t0) * 1000 + 0.5)
  if self.json then
    self:event { event = "summary", verb = verb, ok = counts.ok, changed = counts.changed,
                 ["would-change"] = self.plan and counts["would-change"] or nil, plan = verb ~= "plan" and self.plan or nil,
                 failed = counts.failed, skipped = counts.skipped, ms = ms,
                 ["not-run"] = (counts.not_run or 0) > 0 and counts.not_run or nil }
    return
  end
  local parts = { "ok=" .. counts.ok }
  if self.plan then
    parts[#parts + 1] = self:paint(counts["would-change"] > 0 and "changed" or "ok", "would-change=" .. counts["would-change"])
  else parts[#parts + 1] = self:paint(counts.changed > 0 and "changed" or "ok", "changed=" .. counts.changed) end
  parts[#parts + 1] = self:paint(counts.failed > 0 and "failed" or "ok", "failed=" .. counts.failed)
  if counts.skipped > 0 then parts[#parts + 1] = "skipped=" .. counts.skipped end
  -- the steps after a failure (or all of them, after a failed check)
  if (counts.not_run or 0) > 0 then parts[#parts + 1] = "not-run=" .. counts.not_run end
  self:write(table.concat(parts, " ") .. "  in " .. fmt_ms(ms) .. "\n")
end

-- Live output: one line redrawn in place, on a tty only.
function Report:clear_live()
  if self.drawn then
    io.stdout:write("\r\27[K")
    self.drawn = false
  end
end

-- the columns a line may take: COLUMNS when set to a number (as ls and
-- other tools honour it), else the terminal's (TIOCGWINSZ on stdout), else
-- 80; one less, so that the cursor never wraps
local function columns()
  local c = math.tointeger(tonumber(os.getenv("COLUMNS") or ""))
  if not c or c < 1 then c = core.term_width(1) end
  return math.max(c - 1, 1)
end

-- text's width in columns (one a character: UTF-8 text counts by code
-- point, other bytes one each) and text cut to n columns (cut: "…" ends it)
local function width(text) return utf8.len(text) or #text end
local function cut(text, n)
  if width(text) <= n then return text end
  if n <= 0 then return "" end
  local keep = n - 1
  local stop = utf8.len(text) and (utf8.offset(text, keep + 1) or #text + 1) - 1 or keep
  return text:sub(1, stop) .. "…"
end

function Report:draw(text)
  if not self.live then return end
  local now = core.now()
  if now - self.last_draw < 0.1 then return end
  self.last_draw = now
  text = cut(text, columns())   -- what progress and spin could not fit
  io.stdout:write("\r\27[K", secret.mask(text))
  io.stdout:flush()
  self.drawn = true
end

-- the bar's width and the label, fitted to room columns: the label whole
-- and the bar 24 wide when they fit; else the bar narrower (down to 8),
-- then the label cut, then no bar, so that the numbers after it (size,
-- rate, ETA) always show whole
local BAR, MIN_BAR = 24, 8
local function fit(label, room, with_bar)
  local lw = width(label)
  if not with_bar then return nil, cut(label, room) end
  if room >= lw + BAR + 3 then return BAR, label end
  if room - lw - 3 >= MIN_BAR then return room - lw - 3, label end
  if room - MIN_BAR - 3 >= 8 then return MIN_BAR, cut(label, room - MIN_BAR - 3) end
  return nil, cut(label, room)
end

function Report:progress(label, done, total, started)
  if not self.live then return end
  local elapsed = math.max(core.now() - started, 1e-6)
  local rate = done / elapsed
  local tail
  local known = total and total > 0
  if known then
    local eta = rate > 0 and (total - done) / rate or 0
    tail = ("%s / %s  %s/s  ETA %s"):format(human_bytes(done), human_bytes(total), human_bytes(rate),
      fmt_ms(math.floor(eta * 1000)))
  else
    tail = ("%s  %s/s"):format(human_bytes(done), human_bytes(rate))
  end
  -- "  LABEL [####....] TAIL": two spaces, the label and a space before the rest
  local bw, shown = fit(label, columns() - 3 - width(tail), known)
  local bar = ""
  if bw then
    local filled = math.floor(bw * math.min(done / total, 1))
    bar = "[" .. ("#"):rep(filled) .. ("."):rep(bw - filled) .. "] "
  end
  self:draw(("  %s %s%s"):format(shown, bar, tail))
end

local SPIN = { "|", "/", "-", "\\" }
function Report:spin(label, started)
  if not self.live then return end
  local elapsed = core.now() - started
  local c = SPIN[math.floor(elapsed * 8) % 4 + 1]
  local time = fmt_ms(math.floor(elapsed * 1000))
  -- "  C LABEL  TIME": the time always shows, the label is cut to fit
  self:draw(("  %s %s  %s"):format(c, cut(label, columns() - 6 - width(time)), time))
end

-- -vv: from now on every program run through provision._exec.run
-- (exec.command and its unless, exec.run, Compose, apt-get, systemctl, ...)
-- is shown under the step that runs it: "$ argv" before it runs, then its
-- output (unless passthrough shows it as it comes already) and how it
-- ended. argv holds secrets revealed: the report's log masks them
-- (secret.mask), as show_argv (exec.show_argv, given) does. C.traced: exec.command's apply then
-- does not show its command a second time.
local TRACE_LINES = 200
function Report:trace_commands(show_argv)
  local C = require "provision._exec"
  local run = C.run
  local function log(line) self:log(secret.mask(line)) end
  C.traced = true
  C.run = function(t)
    log("$ " .. show_argv({ table.unpack(t) }) .. (t.cwd and ("   (in " .. t.cwd .. ")") or ""))
    local r, err = run(t)
    if not r then log("  could not be started: " .. tostring(err)); return r, err end
    if not t.passthrough and r.output and r.output ~= "" then
      local n = 0
      for line in r.output:gsub("\n$", ""):gmatch("[^\n]*") do
        n = n + 1
        if n <= TRACE_LINES then log("  " .. line) end
      end
      if n > TRACE_LINES then log(("  (... %d more lines)"):format(n - TRACE_LINES)) end
    end
    local how = r.timed_out and "timed out" or r.interrupted and "interrupted"
      or r.status and ("exit " .. r.status) or ("signal " .. tostring(r.signal))
    log(("  %s in %.2fs"):format(how, r.seconds or 0))
    return r, err
  end
end

return Report
