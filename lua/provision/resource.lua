-- provision.resource: the one contract every step's resource follows, and
-- the helpers modules use to define resources.
--
-- A resource module (lua/provision/<module>.lua) defines constructors:
--
--   local R = require "provision.resource"
--   M.directory = R.define {
--     kind = "fs.directory",
--     positional = "path",          -- fs.directory "x" means { path = "x" }
--     options = {                   -- every option the resource takes
--       path = { "strings", path = true, doc = "the folders" },
--                                   -- type; a trailing "?" makes it optional;
--                                   -- path = true: a path (or list of them), never
--                                   -- "" (refused at load time); doc: what it
--                                   -- means, for docs/modules/ (make docs)
--       mode = { "mode", default = "0755", doc = "their mode" },
--     },
--     describe = function(self) return "directory " .. self.path end,
--     check  = function(self, ctx) ... end,
--     apply  = function(self, ctx) ... end,
--     revert = function(self, ctx) ... end,   -- optional: undo what apply created
--     validate = function(self) ... end,      -- optional: more load-time checks,
--                                             -- return nil, msg to reject
--     owns = "path",                -- optional: the option holding the path(s)
--                                   -- apply writes (or removes: absent = true)
--     agrees = function(a, b) ... end,  -- optional: true when two of this kind
--                                   -- may own one path (else a second one is refused)
--   }
--
-- owns: loading refuses a recipe in which two steps own one path in ways
-- that do not agree (each apply would undo the other's work), or an
-- absence (absent = true) of a folder another step writes in. A plugin's
-- kinds get this by declaring owns as the built-in ones do.
--
-- Calling the constructor in a recipe validates its options at load time: an
-- unknown option, a missing required one or a wrong type raises an error
-- that names the recipe's file:line (the CLI turns it into exit 2).
--
-- check(self, ctx) -> true                 the desired state is there
--                   -> false, changes      apply would change something;
--                                          changes: a string or a list of lines
--                                          (plan prints them: diffs, keys, ...)
--                   -> nil, message        the check itself failed
--   Checks have no side effects, never spawn a process where a syscall or a
--   library call can answer, and run during plan as they do during apply.
-- apply(self, ctx) -> anything | nil, message (or raise) to fail.
--   Record what you create with ctx:created{ type = "file", path = p, sha256 = h }
--   (and uid = the owner it was given: another user's file in its place is
--   then left) so teardown removes exactly that; keep anything else for the next run in
--   ctx.state (a plain table saved as JSON: strings, numbers, booleans, tables).
-- revert(self, ctx) -> anything | nil, message. ctx.state is what the last
--   apply left; undo only what ctx.state.created lists. false: there was
--   nothing to undo (teardown reports the step ok, with ctx:detail's why).
-- state_revert = true: revert reads ctx.state alone, never self's options.
--   Teardown then also undoes such a resource of a step the recipe no longer
--   has (removed or renamed since it was applied), or one its step has
--   dropped or replaced by another kind, with self the definition; without
--   it, what such a resource created is left, and teardown says so.
-- sync_later = true: apply only writes whole files, each after
--   R.write_intent, with core.write_atomic's sync "later" (or "data") when
--   ctx.sync_later, and nothing outside the process acts on them: a step of
--   such resources joins the runner's batch (one syncfs for many files;
--   provision.batch says when it is flushed), and its step line may wait in
--   stdout's buffer (report.lua). fs.file, fs.template, fs.env_file;
--   fs.symlink and fs.directory too (a link, folders: an intent in
--   ctx.state.pending journaled first, made with C.symlink's/C.mkdir's later).
-- writes(self) -> { path, ... }: what apply writes; reads(self) -> { path,
--   ... }: the files or folders (a folder: all under it) check compares
--   against. Plan runs no apply, so a check that reads what an earlier step
--   would write answers about the old content: when one of its reads is (or
--   is under, or holds) a path an earlier resource that would change writes,
--   the runner reports it would change too. R.paths_of("path", ...) makes one
--   from options holding a path or a list of paths. A write { path = p,
--   entry = true } changes p itself (a folder's mode, owner), not what is
--   under it: reads under p are not affected. A write or read { name = n }
--   is not a file: something else two resources share (docker.image_key:
--   "image repo:tag"), matched by its name alone. A write { path = p,
--   sha256 = h } says what content apply would leave at p, and a read
--   { path = p, sha256 = h } what content the check last saw there
--   (reads(self, ctx): from ctx.state): the same content put back (a file
--   edited by hand, restored by its step) is no change for that reader.
--   writes(self, true): only the paths are wanted (the plan's note of every
--   step that would change); a sha256 may be left out, as fs.file's is (no
--   digest of 142,000 contents that no reader asks for).
-- After apply the runner checks again, and a check that still says false
-- fails the step ("still not in the desired state after apply"). A resource
-- whose check cannot turn true by applying it (a command with no guard:
-- it always runs) says so with unverifiable(self) -> true: its apply's
-- own result decides.
--
-- ctx (given by the runner):
--   ctx.state            this resource's saved table from the last apply ({} if none)
--   ctx:created(entry)   append to ctx.state.created
--   ctx.plan             true during `plan` (check only)
--   ctx:planned(path)    in plan: the SHA-256 of the content an earlier step
--                        would leave at path (a resource that declares it in
--                        writes), false when it would change it in a way not
--                        known, nil when no earlier step would touch it. A
--                        check reading path may answer about that content
--                        rather than the file as it is now (compose: a .env
--                        edited by hand that the step before puts back)
--   ctx.verbose          -v given
--   ctx:log(line)        a detail line under the step (shown with -v; masked)
--   ctx:detail(text)     the short detail shown on the step's line ("12 MiB in 0.4s")
--   ctx:progress(done, total, label)   a progress bar on a tty (nothing on a pipe)
--   ctx:spin(label)      a spinner with elapsed time on a tty
--   ctx.timeout          seconds from --timeout, or nil
--   ctx.interrupted()    true once SIGINT/SIGTERM arrived: stop and fail
--   ctx.json             --json given
--   ctx.sync_later       the step is in the runner's batch (sync_later above):
--                        a write may leave its sync to the batch
--   ctx:adopt(path)      a file another record of the state created (a step
--                        renamed or removed, a resource replaced) that this
--                        one rewrites: that record lets go of it (true); record it
--   ctx:recorded(step) / ctx:undo(step)   has step `step` of the recipe something
--                        recorded; revert it as teardown does (what `undo "step"` runs)
--
-- Interruption: SIGINT/SIGTERM and --timeout raise "interrupted" in a
-- resource's Lua code at any instruction. Cleanup that must finish (a temp
-- file to remove) goes in a to-be-closed value from core.guard(fn)
-- (provision._core): fn then runs shielded, whole.
--
-- Files: use provision._fs (core/tree.h's rules: no link of another user's
-- followed, changes through descriptors), never io.open/os.remove on a
-- path you write or remove; R.write_intent before writing a whole file, so
-- a run killed during the write leaves nothing unrecorded.
--
-- Secrets: R.reveal(v) gives the plain string of a secret (or v itself);
-- never put a revealed value in a message, a change line or ctx.state.

local core = require "provision._core"
local FS = require "provision._fs"
local json = require "provision.json"
local secret = require "provision.secret"
local lazy = require "provision.lazy"

local R = {}
R.reveal = secret.reveal
R.is_secret = secret.is
R.mask = secret.mask
R.any_secret = secret.any

-- R.quote(s): s as %q gives it, with the bytes that are not UTF-8 as \xNN,
-- so that a message about such a string is itself text
function R.quote(s) return json.text(("%q"):format(s), "hex") end

-- Names, paths, URLs, argv items: what the state records and --json shows
-- of them is JSON, which holds UTF-8 text only (a path "caf\xe9" would be
-- made, then could not be recorded, so teardown would never remove it)
local NOT_TEXT = " (names, paths and commands are recorded and reported as JSON, which holds UTF-8 text only)"
R.NOT_TEXT = NOT_TEXT

-- Option types. Each checker returns the normalized value, or nil, what it
-- must be [, how to show the value given].
local checkers = {}
-- "string" options are names, paths, URLs, argv items: none can hold a NUL
-- byte (C would cut "a\0b" to "a"), nor bytes that are not UTF-8 text;
-- content that may is typed "secret"
function checkers.string(v)
  if type(v) == "string" then
    if v:find("\0", 1, true) then return nil, "a string without NUL bytes" end
    if not json.is_text(v) then return nil, "UTF-8 text", R.quote(v) .. NOT_TEXT end
    return v
  end
  if type(v) == "number" then return tostring(v) end
  return nil, "a string"
end
function checkers.number(v)
  local n = tonumber(v)
  if n then return n end
  return nil, "a number"
end
function checkers.integer(v)
  local n = math.tointeger(tonumber(v))
  if n then return n end
  return nil, "an integer"
end
function checkers.boolean(v)
  if type(v) == "boolean" then return v end
  return nil, "true or false"
end
function checkers.table(v)
  if type(v) == "table" and not secret.is(v) then return v end
  return nil, "a table"
end
checkers["function"] = function(v)
  if type(v) == "function" then return v end
  return nil, "a function"
end
function checkers.any(v) return v end
-- a string or a secret: kept as given (reveal it only where it is used)
function checkers.secret(v)
  if type(v) == "string" or secret.is(v) then return v end
  if type(v) == "number" then return tostring(v) end
  return nil, "a string or secret"
end
function checkers.strings(v)   -- one string or a list of them -> list
  if type(v) == "string" then
    local one, want, shown = checkers.string(v)
    if not one then return nil, want, shown end
    return { v }
  end
  if type(v) == "table" and #v > 0 then
    for i, s in ipairs(v) do
      if type(s) ~= "string" then return nil, "a string or a list of strings (item " .. i .. " is a " .. type(s) .. ")" end
      if s:find("\0", 1, true) then return nil, "a string or a list of strings without NUL bytes (item " .. i .. " has one)" end
      if not json.is_text(s) then return nil, "UTF-8 text", ("item %d, %s%s"):format(i, R.quote(s), NOT_TEXT) end
    end
    return v
  end
  return nil, "a string or a list of strings"
end
function checkers.duration(v)
  local d, err = core.duration(v)
  if d then return d end
  return nil, "a duration such as 30s or 5m (" .. tostring(err) .. ")"
end
function checkers.size(v)
  local n = core.size(v)
  if n then return n end
  return nil, "a size such as 512MiB or 4GiB"
end
-- "0755", "755" -> 493. A number is refused: Lua has no octal literals,
-- so mode = 644 would be decimal 644 (octal 1204: sticky, owner cannot read)
local modes = {}   -- the modes seen: "0644" -> 420 (a recipe repeats a few thousands of times)
function checkers.mode(v)
  local m = modes[v]
  if m then return m end
  if type(v) == "string" and v:match("^0?[0-7][0-7][0-7]$") or type(v) == "string" and v:match("^0?[0-7][0-7][0-7][0-7]$") then
    m = tonumber(v, 8)
    modes[v] = m
    return m
  end
  if type(v) == "number" then
    return nil, ('a file mode as a string such as "0644" (Lua has no octal numbers: %s would be read as decimal)'):format(tostring(v))
  end
  return nil, 'a file mode such as "0755"'
end
R.checkers = checkers

-- an options spec read once: { name, checker, optional, default, path } each,
-- and known: the option names, as a set (a recipe calls a constructor
-- thousands of times)
local compiled = setmetatable({}, { __mode = "k" })
local function compile(spec)
  local c = compiled[spec]
  if c then return c end
  c = { known = {} }
  for name, sp in pairs(spec) do
    local t = type(sp) == "table" and sp[1] or sp
    local optional = t:sub(-1) == "?"
    if optional then t = t:sub(1, -2) end
    local default = nil   -- (not `and ... or nil`: a default may be false)
    if type(sp) == "table" then default = sp.default end
    c[#c + 1] = { name = name, type = t, checker = assert(checkers[t], "unknown option type " .. t),
                  optional = optional or (type(sp) == "table" and sp.optional) or false,
                  default = default, path = type(sp) == "table" and sp.path or false }
    if type(name) == "string" then c.known[name] = true end
    if default ~= nil then c.defaults = (c.defaults or 0) + 1 end
  end
  compiled[spec] = c
  return c
end

-- the message for option o's value v, refused by its checker (want, shown)
local function refused(kind, o, v, want, shown)
  return ("%s: option '%s' must be %s, not %s"):format(kind, o.name, want,
    shown or secret.is(v) and "a secret" or type(v) == "string" and ("%q"):format(v) or type(v))
end

-- a path option: "" would be the current folder to some calls and an
-- error to others (plan showed fs.directory "" as "+ /")
local function empty_path(kind, o, v, nv)
  if v == "" then return ("%s: option '%s' is an empty path"):format(kind, o.name) end
  if type(v) == "table" then
    for i, p in ipairs(nv) do
      if p == "" then return ("%s: option '%s': item %d is an empty path"):format(kind, o.name, i) end
    end
  end
end

-- new_table(n): a new table with room for n fields (up to 16), so that
-- filling it grows it no more (a table made {} grows at the 1st, 2nd, 3rd,
-- 5th field): a constructor's fields size it, nil ones too
local sized = {
  function() return { _1 = nil } end,
  function() return { _1 = nil, _2 = nil } end,
  function() return { _1 = nil, _2 = nil, _3 = nil, _4 = nil } end,
  function() return { _1 = nil, _2 = nil, _3 = nil, _4 = nil, _5 = nil, _6 = nil, _7 = nil, _8 = nil } end,
  function()
    return { _1 = nil, _2 = nil, _3 = nil, _4 = nil, _5 = nil, _6 = nil, _7 = nil, _8 = nil, _9 = nil, _10 = nil,
             _11 = nil, _12 = nil, _13 = nil, _14 = nil, _15 = nil, _16 = nil }
  end,
}
local function new_table(n)
  if n <= 1 then return sized[1]() end
  if n <= 2 then return sized[2]() end
  if n <= 4 then return sized[3]() end
  if n <= 8 then return sized[4]() end
  if n <= 16 then return sized[5]() end
  return {}
end

local function missing(kind, o) return ("%s: missing required option '%s'"):format(kind, o.name) end

-- each option of c in turn (as compile listed them: the first refused is
-- the one reported): its value checked into out
local function check_options(c, kind, args, out)
  for i = 1, #c do
    local o = c[i]
    local v = args[o.name]
    if v == nil then v = o.default end
    if v ~= nil then
      local nv, want, shown = o.checker(v)
      if nv == nil then return nil, refused(kind, o, v, want, shown) end
      if o.path then
        local err = empty_path(kind, o, v, nv)
        if err then return nil, err end
      end
      out[o.name] = nv
    elseif not o.optional then
      return nil, missing(kind, o)
    end
  end
  return out
end

-- check_options written out for one spec (a Lua function made once per
-- kind, once it has been called SPECIALIZE_AFTER times: compiling it costs
-- as much as ~50 calls; each option's name, checker and default are then
-- constants in it, not looked up per call); the same checks in the same
-- order
local SPECIALIZE_AFTER = 64
local function specialize(c)
  if #c > 60 then return nil end   -- (upvalues: 3 per option)
  local head, body = { "local C, refused, empty_path, missing = ...\n" }, {}
  for i, o in ipairs(c) do
    local tn = type(o.name)
    if tn ~= "string" and math.type(o.name) ~= "integer" then return nil end
    head[#head + 1] = ("local o%d, ck%d, d%d = C[%d], C[%d].checker, C[%d].default\n"):format(i, i, i, i, i, i)
    local key = ("%q"):format(o.name)
    body[#body + 1] = ("v = args[%s]\n"):format(key)
    if o.default ~= nil then body[#body + 1] = ("if v == nil then v = d%d end\n"):format(i) end
    body[#body + 1] = ("if v ~= nil then\n  nv, want, shown = ck%d(v)\n"
      .. "  if nv == nil then return nil, refused(kind, o%d, v, want, shown) end\n"):format(i, i)
    if o.path then
      body[#body + 1] = ("  local err = empty_path(kind, o%d, v, nv)\n  if err then return nil, err end\n"):format(i)
    end
    body[#body + 1] = ("  out[%s] = nv\n"):format(key)
    if not o.optional then body[#body + 1] = ("else return nil, missing(kind, o%d)\n"):format(i) end
    body[#body + 1] = "end\n"
  end
  local src = table.concat(head) .. "return function(kind, args, out)\nlocal v, nv, want, shown\n"
    .. table.concat(body) .. "return out\nend\n"
  return assert(load(src, "=(options check)", "t"))(c, refused, empty_path, missing)
end

-- R.validate(kind, options_spec, args) -> normalized table | nil, message.
-- Options that are right are checked in C (core/options.c); anything it
-- cannot vouch for is checked here, where every message is
local options_plan, check_fast = core.options_plan, core.check_options
function R.validate(kind, spec, args)
  local c = compiled[spec] or compile(spec)
  local plan = c.plan
  if not plan then plan = options_plan(c); c.plan = plan end
  local fast = check_fast(plan, args)
  if fast then return fast end
  local known = c.known
  local given = 0
  for k in next, args do
    given = given + 1
    if not known[k] then
      if type(k) ~= "string" then
        return nil, ("%s: unexpected positional value %s"):format(kind, tostring(args[k]))
      end
      local names = {}
      for n in pairs(spec) do names[#names + 1] = n end
      table.sort(names)
      return nil, ("%s: unknown option '%s' (options: %s)"):format(kind, k, table.concat(names, ", "))
    end
  end
  local out = new_table(given + (c.defaults or 0))
  local check = c.check
  if check then return check(kind, args, out) end
  if check == nil then
    local calls = (c.calls or 0) + 1
    c.calls = calls
    if calls >= SPECIALIZE_AFTER then c.check = specialize(c) or false end
  end
  return check_options(c, kind, args, out)
end

-- the level of the first frame outside this module's machinery: the recipe line
local function caller_level()
  local level = 3
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 3 end
    if not info.source:match("[/@]lua/provision/[%w_/]+%.lua$") then
      return level - 1
    end
    level = level + 1
  end
end

local Resource = {}
Resource.__index = Resource
R.Resource = Resource

-- every definition by its kind (teardown looks up the revert of a step the
-- recipe no longer has). A kind its module defines in a part loaded on
-- first use (R.later) is there too: looking it up loads the part, as
-- listing R.kinds with pairs loads them all.
local later = {}
R.kinds = lazy.fields({}, later)

-- R.later(kind, module): kind is defined by module, required when the kind
-- is first looked up
function R.later(kind, module)
  later[kind] = function() require(module); return rawget(R.kinds, kind) end
end

-- R.define(def) -> constructor(args) -> resource
function R.define(def)
  assert(def.kind and def.check and def.options, "resource definition needs kind, options, check")
  assert(def.owns == nil or def.options[def.owns], "owns: the name of the option holding the path")
  assert(def.agrees == nil or type(def.agrees) == "function", "agrees: a function(a, b)")
  for name, sp in pairs(def.options) do
    assert(type(sp) ~= "table" or sp.doc == nil or type(sp.doc) == "string", "doc: a string, option " .. name)
  end
  def.__index = def
  def.__name = "provision.resource"
  setmetatable(def, Resource)
  R.kinds[def.kind] = def
  -- the options as given -> checked (the positional put in place), or an
  -- error at the recipe's line (looked up only then)
  local function options_of(args)
    if type(args) ~= "table" or secret.is(args) then
      if def.positional then args = { [def.positional] = args }
      else error(("%s: expected a table of options, got %s"):format(def.kind, type(args)), caller_level()) end
    elseif def.positional and args[1] ~= nil then
      -- fs.directory { "a", "b", mode = "0700" }: the array part is the positional
      local copy, list = {}, {}
      for k, v in pairs(args) do
        if math.type(k) == "integer" then list[k] = v else copy[k] = v end
      end
      if copy[def.positional] ~= nil then
        error(("%s: give '%s' once, either by position or by name"):format(def.kind, def.positional),
          caller_level())
      end
      copy[def.positional] = #list == 1 and list[1] or list
      args = copy
    end
    local self, err = R.validate(def.kind, def.options, args)
    if not self then error(err, caller_level()) end
    return self
  end
  local plan = compile(def.options)
  plan = plan.plan or options_plan(plan)   -- (R.validate's check in C)
  compiled[def.options].plan = plan
  local positional, validate = def.positional, def.validate
  local prefetches = def.prefetch ~= nil
  return function(args)
    -- the usual call, a plain table of options that are right, in C
    local self = type(args) == "table" and not (positional and args[1] ~= nil) and check_fast(plan, args)
      or options_of(args)
    setmetatable(self, def)
    if prefetches then R.prefetching = true end   -- (run.lua looks for prefetch hooks only then)
    if validate then
      local ok, verr = validate(self)
      if not ok and verr then error(def.kind .. ": " .. verr, caller_level()) end
    end
    return self
  end
end

-- R.paths_of(field, ...) -> function(self) -> the paths in those options
function R.paths_of(...)
  local fields = { ... }
  return function(self)
    local out = {}
    for _, f in ipairs(fields) do
      local v = self[f]
      if type(v) == "string" then out[#out + 1] = v
      elseif type(v) == "table" and not secret.is(v) then
        for _, p in ipairs(v) do out[#out + 1] = p end
      end
    end
    return out
  end
end

-- R.known_digest(path, stamp, digest, hash) -> the digest of the file at
-- path: `digest` as recorded when the file's stamp (fs.stamp: device,
-- inode, size, mtime, ctime; the stamp git's index trusts too) is still
-- the recorded `stamp`, so the very file is not read again; else hash(path).
-- nil, message when there is no file.
function R.known_digest(path, stamp, digest, hash)
  local now, err = FS.stamp(path)
  if not now then return nil, err end
  if stamp and digest and now == stamp then return digest end
  return hash(path)
end

-- "12.5 MiB" (provision.report's)
R.human_bytes = require("provision.report").human_bytes

-- ---- what resources created: the records teardown undoes (ctx:created)
--
-- A file: { type = "file", path, sha256 = h | xxh128 = h, dir = "dev:ino" }
-- (dir: the folder it was written in, so that a folder swapped in under
-- the same name since, or a link put in its place, is never reached).
-- A folder: { type = "directory", path, id = "dev:ino" }.

local function find_created(ctx, path)
  for _, e in ipairs(ctx.state.created or {}) do
    if e.path == path then return e end
  end
end
R.find_created = find_created

-- R.record(ctx, entry): record entry, or update the one for its path
function R.record(ctx, entry)
  local e = find_created(ctx, entry.path)
  if e then
    for k, v in pairs(entry) do e[k] = v end
  else
    ctx:created(entry)
  end
end

-- R.record_written(ctx, path, digest, existed, kind, uid): a whole file written
-- at path (fs.file and its kin, http.file, archive.create), with this
-- digest (kind: "sha256", the default, or "xxh128"). A new one is the
-- step's own; one it created on an earlier run stays its own, with the new
-- digest (which revert compares); one that was there before stays
-- unrecorded, unless the recipe created it under another record (a step
-- renamed or removed since, a resource replaced): this one takes it over
-- (ctx:adopt), so that teardown removes it rather than find it "changed
-- since it was written".
function R.record_written(ctx, path, digest, existed, kind, uid)
  kind = kind or "sha256"
  local e = find_created(ctx, path)
  if e then
    e.sha256, e.xxh128 = nil, nil
    e[kind] = digest
    e.dir = FS.dir_id(path) or e.dir
    e.uid = uid
  elseif not existed or ctx.adopt and ctx:adopt(path) then
    ctx:created { type = "file", path = path, [kind] = digest, dir = FS.dir_id(path), uid = uid }
  end
end

local function log(ctx, line)
  if ctx.log then ctx:log(line) end
end


-- R.write_intent(ctx, path, digest, new [, uid]) -> temp: before a whole
-- file is written at path, its temp file's name and the digest it will have
-- go into the state (ctx:checkpoint, the journal) so that a run killed during
-- the write leaves nothing unrecorded: R.settle_pending removes the temp
-- file, and takes the file as the step's own (new: nothing was there) when
-- the write landed (uid: the owner it is given, when not the running user).
-- R.written(ctx) after the write.
function R.write_intent(ctx, path, digest, new, uid)
  local temp = FS.temp_name((path:match("([^/]*)$")) .. ".provision")
  ctx.state.pending = { path = path, temp = temp, sha256 = digest, new = new or nil,
                        uid = uid ~= FS.euid() and uid or nil }
  if ctx.checkpoint then ctx:checkpoint() end
  return temp
end
function R.written(ctx) ctx.state.pending = nil end

-- R.folder_of(p): the folder holding p ("." for a bare name; a trailing
-- slash does not count)
local function folder_of(p) return (p:gsub("/+$", "")):match("^(.*)/[^/]*$") or "." end
R.folder_of = folder_of

-- R.would_remove(ctx, path, expect) -> true | false, why | nil, msg, errno:
-- what C.remove_if(path, expect) would answer, removing nothing (a plan of
-- teardown). What a revert before this one in the same plan would remove
-- (ctx:plan_removed) counts as gone: a folder whose files would all go
-- first would be empty by then.
local function gone_in_plan(ctx, p) return ctx.plan_removed ~= nil and ctx:plan_removed(p) end
function R.would_remove(ctx, path, expect)
  local st, err, code = FS.lstat(path)
  if not st then
    if code == 2 or code == 20 then return false, "gone already" end   -- ENOENT, ENOTDIR
    return nil, err, code
  end
  if gone_in_plan(ctx, path) then return false, "gone already" end
  if expect.dir and FS.dir_id(path) ~= expect.dir then
    return false, "its folder is not the one it was written in (moved or replaced since)"
  end
  if expect.id and st.id ~= expect.id then return false, "not the one made (replaced since)" end
  local t = expect.type or "file"
  if t == "directory" then
    if st.type ~= "directory" then return false, "not a folder now" end
    local n = 0
    for _, name in ipairs(FS.listdir(path) or {}) do
      if not gone_in_plan(ctx, path .. "/" .. name) then n = n + 1 end
    end
    if n > 0 then return false, ("not empty (%d entr%s)"):format(n, n == 1 and "y" or "ies") end
  elseif t == "link" then
    if st.type ~= "link" or (expect.target and FS.readlink(path) ~= expect.target) then
      return false, "changed since it was made"
    end
  else
    if st.type ~= "file" then return false, "not a file now" end
    if expect.uid and st.uid ~= expect.uid then return false, "another user's file now" end
    local want = expect.xxh128 or expect.sha256
    if want then
      local h, herr, hcode = (expect.xxh128 and FS.xxh128 or FS.sha256)(path)
      if not h then return nil, herr, hcode end
      if h ~= want then return false, "changed since it was written" end
    end
  end
  if ctx.plan_remove then ctx:plan_remove(path) end
  return true
end

-- R.remove_if(ctx, path, expect): C.remove_if, or in a plan what it would do
function R.remove_if(ctx, path, expect)
  if ctx.plan then return R.would_remove(ctx, path, expect) end
  return FS.remove_if(path, expect)
end

-- what a write that a run killed midway left (R.write_intent): its temp
-- file goes; the file itself, when the write landed (its digest is the
-- one intended, in the folder intended), is recorded (apply) or removed
-- (teardown: reverting); a file the step created before and was
-- rewriting keeps its record, with the new digest when the write landed
-- (a run killed in the middle of the runner's batch: the write is done,
-- its record not journaled yet). The number of files removed.
-- A plan of teardown (ctx.plan, reverting) changes nothing: the number it
-- would remove, and { [record] = digest } for a record whose digest the
-- landed write would have replaced.
function R.settle_pending(ctx, reverting)
  local pd = ctx.state and ctx.state.pending
  local plan = ctx.plan and reverting
  if type(pd) ~= "table" then return 0 end
  if not plan then ctx.state.pending = nil end
  if type(pd.path) ~= "string" then return 0 end
  if not plan and type(pd.temp) == "string" and pd.temp ~= "" and not pd.temp:find("/", 1, true) then
    FS.remove_own(folder_of(pd.path) .. "/" .. pd.temp)
  end
  if type(pd.sha256) ~= "string" then return 0 end
  local mine = not pd.new and find_created(ctx, pd.path)
  if not pd.new and not mine then return 0 end
  local st = FS.lstat(pd.path)
  local uid = math.type(pd.uid) == "integer" and pd.uid or FS.euid()   -- the owner it was given
  if not (st and st.type == "file" and st.uid == uid and (not pd.dir or FS.dir_id(pd.path) == pd.dir)
          and FS.sha256(pd.path) == pd.sha256) then
    return 0
  end
  if mine then   -- (revert_created_files removes it, by this record)
    if plan then return 0, { [mine] = pd.sha256 } end
    mine.sha256, mine.xxh128 = pd.sha256, nil
    return 0
  end
  local expect = { type = "file", sha256 = pd.sha256, dir = pd.dir, uid = uid }
  if plan then
    if R.would_remove(ctx, pd.path, expect) ~= true then return 0 end
    if ctx.log then ctx:log("- " .. pd.path) end
    return 1
  end
  if reverting then   -- (checked again and removed through one descriptor of its folder)
    return FS.remove_if(pd.path, expect) == true and 1 or 0
  end
  R.record(ctx, { type = "file", path = pd.path, sha256 = pd.sha256, dir = pd.dir, uid = uid })
  return 0
end

-- R.revert_created_files(self, ctx): the revert of every resource that
-- writes whole files: the files ctx.state.created says it created, each
-- only while it is still what was written, in the folder it was written
-- in, reached without another user's link. false when nothing was removed
-- (all left, or gone already): teardown then reports the step ok, with the
-- detail saying why.
function R.revert_created_files(self, ctx)
  -- ctx.plan (a plan of teardown): what it would do, nothing removed
  local plan = ctx.plan
  local removed, landed = R.settle_pending(ctx, true)
  landed = landed or {}
  for _, e in ipairs((ctx.state and ctx.state.created) or {}) do
    if e.type == "file" and type(e.path) == "string" then
      -- checked and removed through one descriptor of its folder
      -- (uid: a record made before owners were recorded has none: not checked)
      local expect = { type = "file", dir = e.dir, sha256 = landed[e] or not e.xxh128 and e.sha256 or nil,
                       xxh128 = not landed[e] and e.xxh128 or nil, uid = math.type(e.uid) == "integer" and e.uid or nil }
      local ok, why, code = R.remove_if(ctx, e.path, expect)
      if ok then
        removed = removed + 1
        log(ctx, (plan and "- " or "removed ") .. e.path)
      elseif ok == nil and code ~= 40 then   -- ELOOP: a link of another user's on the way: left
        return nil, why
      elseif why == "gone already" then
        if ctx.detail then ctx:detail(e.path .. " is gone already") end
      else
        log(ctx, plan and ("= %s: left, %s"):format(e.path, why) or ("left " .. e.path .. ": " .. why))
        if ctx.detail then ctx:detail((plan and "would leave " or "left ") .. e.path .. ": " .. why) end
      end
    end
  end
  return removed > 0
end

-- R.norm_path(p, cwd) -> p absolute (a relative p is under cwd) and
-- normalized: no ".", "..", doubled or trailing slash. No symlink is
-- resolved (recipes name their paths one way): "./a/", "a//" and cwd.."/a"
-- are one path.
-- R.clean_path(p) -> true when p is spelled as norm_path would (a/b/c,
-- /a/b: no "//", no "/." nor "." at the start, no "/" at the end), but
-- for being relative: the usual spelling, which needs no work
R.clean_path = core.clean_path   -- (C: the loader asks for every path claimed)
local clean_path = R.clean_path

function R.norm_path(p, cwd)
  if clean_path(p) then
    if p:byte(1) == 47 then return p end
    return (cwd == "/" and "" or cwd) .. "/" .. p
  end
  -- (".//a" is cwd/a: the "./" is not cut first, which made it /a)
  if p:sub(1, 1) ~= "/" then p = cwd .. "/" .. p end
  local parts = {}
  for seg in p:gmatch("[^/]+") do
    if seg == ".." then parts[#parts] = nil
    elseif seg ~= "." then parts[#parts + 1] = seg end
  end
  return "/" .. table.concat(parts, "/")
end

-- R.each_owned(steps, visit): visit(s, res, def, p) for every path p a
-- resource res of step s (of the list steps) owns (def: its kind's
-- definition, whose `owns` names the option holding one path or a list),
-- in order, until visit returns something: that
function R.each_owned(steps, visit)
  local kinds = R.kinds
  for i = 1, #steps do
    local s = steps[i]
    local resources = s.resources
    for r = 1, #resources do
      local res = resources[r]
      local def = kinds[res.kind]
      local field = def and def.owns
      local v = field and res[field]
      if type(v) == "table" then
        for _, p in ipairs(v) do
          local out = visit(s, res, def, p)
          if out ~= nil then return out end
        end
      elseif v ~= nil then
        local out = visit(s, res, def, v)
        if out ~= nil then return out end
      end
    end
  end
end

-- R.check_keys(fname, t, allowed [, skip [, level]]): raise, at the line
-- that called fname, when t holds a key not in allowed (skip(k) true: a
-- key allowed anyway, such as an argv index), naming it and the valid
-- ones. level: that line's, when fname's caller is not the one next to
-- check_keys' own caller (3)
function R.check_keys(fname, t, allowed, skip, level)
  for k in pairs(t) do
    if not allowed[k] and not (skip and skip(k)) then
      local names = {}
      for name in pairs(allowed) do names[#names + 1] = name end
      table.sort(names)
      error(("%s: unknown option %s (options: %s)"):format(fname,
        type(k) == "string" and ("'" .. k .. "'") or tostring(k), table.concat(names, ", ")), level or 3)
    end
  end
end

function Resource:describe() return self.kind end

-- A resource is recognized by this
function R.is(v)
  local mt = getmetatable(v)
  return type(v) == "table" and mt ~= nil and getmetatable(mt) == Resource
end

return R
