-- provision.state: what each apply created and what resources keep between
-- runs (hashes, ETags), in the state folder: by default ./.provision (or
-- --state-dir, PROVISION_STATE_DIR), <recipe>.json and its journal.
--
-- The folder and its files must be the running user's and private
-- (core/lstate.c refuses others): what the state lists is what teardown
-- removes. The state file says which recipe file wrote it; another recipe
-- file with the same recipe { name } is refused (--adopt-state takes a
-- state over on purpose). Its shape is checked when it is read: a damaged
-- state is an error, never read as empty.
--
-- Durability: every change (a step's records, a step forgotten) is
-- appended to <recipe>.journal as one JSON line (flush), so a run killed
-- outright (SIGKILL) loses nothing but the step it was in; the state file is
-- rewritten whole, atomically and fsync'd, at the end of the run (save),
-- which then drops the journal. Opening replays a journal left behind.
-- flush and save first put on disk the files written with their sync left
-- for later (core.sync_written: the runner's batch of file steps, issue
-- 19): a record never reaches the disk before what it records. The runner
-- may hold a file step's line back until then (it holds the write's intent,
-- flush_step, in the journal already).
--
-- Reading: a no-op never looks at most steps' records (a record matters
-- when its step changes, and to teardown), and a 10,000-step state is
-- 60,000 tables. save ends the text with the XXH3-128 of all before it
-- ("digest", the last member); a state file whose digest holds is the very
-- text this program wrote from a checked state, so open reads it lazily:
-- each step's record is decoded the first time it is asked for
-- (json.decode_lazy, decode_at). Any other state file (edited, damaged, no
-- digest, a journal to replay) is read whole and checked first, as ever.
--
-- Resources never put a revealed secret in their
-- state (tests/cli/secrets.sh checks); a secret object encodes as its mask.
local core = require "provision._core"
local json = require "provision.json"
local FS = require "provision._fs"

local State = {}
State.__index = State

local VERSION = 1
local JOURNAL_COMPACT = 4 * 1024 * 1024   -- bytes of journal after which save() runs early

local function file_name(recipe_name)
  return (recipe_name:gsub("[^%w%.%-_]", "_")) .. ".json"
end

function State.default_dir(o)
  local env = os.getenv("PROVISION_STATE_DIR")   -- set but empty: as unset
  return o.state_dir or (env ~= "" and env) or "./.provision"
end

-- ---- the shape of a state file

local ARRAY_MT = getmetatable(json.array {})
local function is_array(t) return type(t) == "table" and (getmetatable(t) == ARRAY_MT or (next(t) == nil)) end
local function is_object(t) return type(t) == "table" and getmetatable(t) ~= ARRAY_MT end

-- The checks below return nil, or where (a path suffix, built only when
-- something is wrong: a state has thousands of entries) and why.

-- (getmetatable and type inline: these run for every record of a state)
local function check_created(list)
  if type(list) ~= "table" or (getmetatable(list) ~= ARRAY_MT and next(list) ~= nil) then return "", "is not a list" end
  for i = 1, #list do
    local e = list[i]
    if type(e) ~= "table" or getmetatable(e) == ARRAY_MT then return ("[%d]"):format(i), "is not an object" end
    local t, p, n = e.type, e.path, e.name
    if t ~= nil and type(t) ~= "string" then return ("[%d].type"):format(i), "is not a string" end
    if p ~= nil and type(p) ~= "string" then return ("[%d].path"):format(i), "is not a string" end
    if n ~= nil and type(n) ~= "string" then return ("[%d].name"):format(i), "is not a string" end
  end
end

local function check_resources(list)
  if type(list) ~= "table" or (getmetatable(list) ~= ARRAY_MT and next(list) ~= nil) then return "", "is not a list" end
  for i = 1, #list do
    local r = list[i]
    if type(r) ~= "table" or getmetatable(r) == ARRAY_MT then return ("[%d]"):format(i), "is not an object" end
    if type(r.kind) ~= "string" then return ("[%d].kind"):format(i), "is not a string" end
    local st = r.state
    if st ~= nil then
      if type(st) ~= "table" or getmetatable(st) == ARRAY_MT then return ("[%d].state"):format(i), "is not an object" end
      local c = st.created
      if c ~= nil then
        local w, why = check_created(c)
        if w then return ("[%d].state.created"):format(i) .. w, why end
      end
    end
  end
end

local function check_step(st)
  if not is_object(st) then return "", "is not an object" end
  if st.applied ~= nil and type(st.applied) ~= "number" then return ".applied", "is not a number" end
  if st.notified ~= nil and type(st.notified) ~= "boolean" then return ".notified", "is not a boolean" end
  if st.resources ~= nil then
    local w, why = check_resources(st.resources)
    if w then return ".resources" .. w, why end
  end
end

local function check_replaced(list)
  if not is_array(list) then return "replaced is not a list" end
  for i, e in ipairs(list) do
    if not is_object(e) then return ("replaced[%d] is not an object"):format(i) end
    if type(e.step) ~= "string" then return ("replaced[%d].step is not a string"):format(i) end
    local w, why = check_resources(e.resources)
    if w then return ("replaced[%d].resources%s %s"):format(i, w, why) end
  end
end

-- json.encode writes values this deep at most (deeper, it takes for a
-- cycle), while json.decode reads 2048 levels: a state deeper than this
-- could be read but never saved again (json.decode's max_depth says so)
local MAX_DEPTH = 200

-- State.validate(data) -> true | nil, why: is data what a state file holds?
function State.validate(data)
  if not is_object(data) then return nil, "not a JSON object" end
  if data.version ~= nil and data.version ~= VERSION then
    if type(data.version) == "number" and data.version > VERSION then
      return nil, ("written by a newer provision (state version %s; this one reads %d)"):format(
        tostring(data.version), VERSION)
    end
    local shown = json.encode(data.version)
    return nil, "version is " .. shown .. ", not " .. VERSION
  end
  if data.recipe ~= nil and type(data.recipe) ~= "string" then return nil, "recipe is not a string" end
  if data.recipe_file ~= nil and type(data.recipe_file) ~= "string" then return nil, "recipe_file is not a string" end
  if data.steps ~= nil then
    if not is_object(data.steps) then return nil, "steps is not an object" end
    for name, st in pairs(data.steps) do
      if type(name) ~= "string" then return nil, "steps has a key that is not a name" end
      local w, why = check_step(st)
      if w then return nil, ("steps[%s]%s %s"):format(json.encode(name), w, why) end
    end
  end
  if data.replaced ~= nil then
    local why = check_replaced(data.replaced)
    if why then return nil, why end
  end
  return true
end

-- ---- opening

local function damaged(path, why)
  return ("state file %s is damaged (%s); move it away to start afresh (what it recorded is then not undone)")
    :format(path, why)
end

-- replay the journal's lines over data; a last line without its newline was
-- cut by a kill and is dropped. nil, why when a whole line is not one.
local function replay(data, text)
  local n = 0
  for line, nl in text:gmatch("([^\n]*)(\n?)") do
    if line ~= "" then
      if nl == "" then break end   -- torn: the run was killed writing it
      n = n + 1
      local e, err = json.decode(line, MAX_DEPTH)
      if not is_object(e) then return nil, ("journal line %d: %s"):format(n, err or "not an object") end
      if e.set ~= nil then
        if type(e.set) ~= "string" then return nil, ("journal line %d: a step name that is not a string"):format(n) end
        if e.value == json.null or e.value == nil then
          data.steps[e.set] = nil
        else
          local w, why = check_step(e.value)
          if w then return nil, ("journal line %d: value%s %s"):format(n, w, why) end
          data.steps[e.set] = e.value
        end
      elseif e.replaced ~= nil then
        if e.replaced == json.null then data.replaced = nil
        else
          local why = check_replaced(e.replaced)
          if why then return nil, ("journal line %d: %s"):format(n, why) end
          data.replaced = e.replaced
        end
      else
        return nil, ("journal line %d: neither set nor replaced"):format(n)
      end
    end
  end
  return true
end

-- State._read(text, jtext, path, jpath) -> data | nil, message: what open
-- makes of a state file's text (false: no file) and its journal's (false
-- or "": none), a damaged one named by path or jpath in the message. Any
-- bytes give one or the other, never a raise (tests/fuzz/state.c). Internal.
function State._read(text, jtext, path, jpath)
  local data = { version = VERSION, steps = {} }
  if text then
    local d, jerr = json.decode(text, MAX_DEPTH)
    if d == nil then return nil, damaged(path, jerr) end
    local ok, bad = State.validate(d)
    if not ok then return nil, damaged(path, bad) end
    data = d
    data.steps = data.steps or {}
    data.digest = nil   -- what save ends the text with (read_saved)
  end
  if jtext and jtext ~= "" then
    local ok, bad = replay(data, jtext)
    if not ok then return nil, damaged(jpath, bad) end
    -- each line was checked as it came; the whole, once more
    ok, bad = State.validate(data)
    if not ok then return nil, damaged(jpath, bad) end
  end
  return data
end
-- replay(data, jtext) -> true | nil, why: the journal's lines over data.
-- Internal, for tests/fuzz/state.c.
State._replay = replay

-- the steps of a state file read lazily: a table whose records are
-- decoded from text at their offsets (index) when first read; a record
-- assigned before it is read is the assigned one
local function lazy_steps(text, index)
  return setmetatable({}, {
    __index = function(t, name)
      local at = index[name]
      if not at then return nil end
      index[name] = nil
      local v, err = json.decode_at(text, at, MAX_DEPTH)
      if v == nil then error(("state: step %s: %s"):format(json.encode(name), tostring(err))) end
      rawset(t, name, v)
      return v
    end,
    __newindex = function(t, name, v) index[name] = nil; rawset(t, name, v) end,
    index = index,
  })
end

-- every step's record decoded (what iterates over them needs it all)
local function all_steps(data)
  local mt = getmetatable(data.steps)
  if mt then
    setmetatable(data.steps, nil)
    for name in pairs(mt.index) do
      if rawget(data.steps, name) == nil then mt.__index(data.steps, name) end
    end
  end
  return data.steps
end

-- has data any step's record (read or not)?
local function any_step(data)
  local mt = getmetatable(data.steps)
  return next(data.steps) ~= nil or mt ~= nil and next(mt.index) ~= nil
end

-- save ends the state's text with its own digest: ,"digest":"xxh128:HEX"}
-- where HEX is the XXH3-128 of every byte before the comma
local DIGEST_TAIL = '(),"digest":"xxh128:(%x+)"}\n$'
local function with_digest(body)   -- body: the state encoded, "{...}"
  local before = body:sub(1, -2)
  return before .. ',"digest":"xxh128:' .. FS.xxh128_string(before) .. '"}\n'
end

-- text (bytes) as this program saved it (the digest at its end holds):
-- data with lazy steps, or nil (anything else: read it whole)
local function read_saved(text)
  if not text or #text < 64 then return nil end
  local at, hex = text:sub(#text - 63):match(DIGEST_TAIL)
  if not at or FS.xxh128_string(text, 1, #text - 64 + at - 1) ~= hex then return nil end
  local data = json.decode_lazy(text, "steps", MAX_DEPTH)
  if type(data) ~= "table" or data.version ~= VERSION then return nil end
  data.digest = nil
  data.steps = lazy_steps(text, data.steps or {})
  return data
end

-- State.open(dir, recipe_name, o) -> state | nil, message, why
--   o.create: make the folder when missing (apply, teardown); without it a
--     missing folder is an empty state that cannot be saved (plan)
--   o.lock: take the run lock first (o.wait: wait for it); why "locked",
--     with the holder's pid as a 4th value, when another run holds it
--   o.recipe_file: the recipe's absolute path, the state's owner
--   o.adopt: take over a state another recipe file wrote
--   why: "locked", "foreign" (another recipe file's), or "bad" (a folder or
--   file not safe to use, a damaged state, a recipe path it cannot record)
function State.open(dir, recipe_name, o)
  o = o or {}
  -- the state records the recipe's path, and JSON holds only UTF-8 text:
  -- refused before anything is made, not when the run is over
  if o.recipe_file and not json.is_text(o.recipe_file) then
    return nil, ("recipe %s: its path is not UTF-8 text, which the state (JSON) cannot record; "
      .. "rename the file or the folder it is in"):format(json.text(o.recipe_file, "hex")), "bad"
  end
  local self = setmetatable({ dir = dir, name = file_name(recipe_name),
                              journal_name = (file_name(recipe_name):gsub("%.json$", ".journal")),
                              pending = {}, journal_bytes = 0, others = 0 }, State)
  self.path = dir .. "/" .. self.name
  local h, err, why = core.state_dir(dir, o.create)
  if not h and why ~= "missing" then return nil, err, "bad" end
  self.h = h or nil
  if o.lock then
    if not h then return nil, "state folder " .. dir .. " is not there", "bad" end
    local lock, lerr, pid = h:lock("lock", o.wait)
    if not lock then
      if pid then return nil, lerr, "locked", pid end
      return nil, "state folder: cannot lock " .. lerr, "bad"
    end
    self.lock_handle = lock
  end
  local data = { version = VERSION, steps = {} }
  if h then
    local jtext, jerr = h:read(self.journal_name)
    if jtext == nil then return nil, jerr, "bad" end
    -- (as bytes: read lazily, the text is kept for the whole run)
    local text, rerr = h:read(self.name, "bytes")
    if text == nil then return nil, rerr, "bad" end
    local bad
    data = (not jtext or jtext == "") and read_saved(text)
    if not data then
      text = text and tostring(text)
      data, bad = State._read(text, jtext, self.path, dir .. "/" .. self.journal_name)
    end
    if not data then return nil, bad, "bad" end
    if jtext and jtext ~= "" then
      self.dirty = true        -- saved whole at the end of this run
      self.journal_bytes = #jtext
    end
  end
  -- which recipe file this is the state of
  if o.recipe_file and data.recipe_file and data.recipe_file ~= o.recipe_file and not o.adopt
     and any_step(data) then
    return nil, ("state file %s belongs to the recipe %s, not to %s (both are named '%s'). Each recipe "
      .. "needs its own: give one of them another recipe { name = ... }, or --state-dir; to take the "
      .. "state over on purpose (the recipe file moved), run with --adopt-state"):format(
      self.path, data.recipe_file, o.recipe_file, recipe_name), "foreign"
  end
  if o.recipe_file and data.recipe_file ~= o.recipe_file then
    data.recipe_file = o.recipe_file
    self.dirty = true
  end
  data.version = VERSION
  data.recipe = recipe_name
  self.data = data
  return self
end

-- State.exists(dir, recipe_name): has a run of this recipe saved a state?
function State.exists(dir, recipe_name)
  local h = core.state_dir(dir, false)
  if not h then return false end
  local name = file_name(recipe_name)
  local text = h:read(name)
  local j = h:read((name:gsub("%.json$", ".journal")))
  h:close()
  return text ~= false or (j ~= false and j ~= "")
end

function State:unlock()
  if self.lock_handle then self.lock_handle:unlock(); self.lock_handle = nil end
end


-- what the state cannot hold: a resource that recorded something JSON has
-- no form for (a name from outside that is not UTF-8 text: a header, a
-- file in an archive, a custom step's own value). Its step fails saying
-- where, rather than the run with a traceback.
local function unencodable(err, who, prefix)
  err = tostring(err):gsub("^json%.encode: ", ""):gsub(" at value%.", " at "):gsub(" at %[", " at " .. (prefix or "") .. "[")
  return ("saving state: %s recorded %s, which the state (JSON) cannot hold: not recorded, "
    .. "so teardown will not undo what it made"):format(who, err)
end

-- ---- changes: each is kept for the journal (flush) and for save
-- (others: how many were not a step's own line from set_step: the runner
-- holds a file step's line back only when the step noted nothing else)

local function note(self, line, own)
  self.pending[#self.pending + 1] = line
  self.dirty = true
  if not own then self.others = self.others + 1 end
end

-- the saved table of resource i of a step (a fresh {} if none or another kind)
function State:resource(step_name, i, kind)
  local s = self.data.steps[step_name]
  local r = s and s.resources and s.resources[i] or s and s.resources and s.resources[tostring(i)]
  if r and r.kind == kind and type(r.state) == "table" then return r.state end
  return {}
end

local function note_step(self, step_name, own)
  note(self, { set = step_name, value = self.data.steps[step_name] or json.null }, own)
end

local function note_replaced(self)
  note(self, { replaced = self.data.replaced or json.null })
end

-- touched(step_name): a step's records were changed in place (ctx:adopt)
function State:touched(step_name)
  if self.data.steps[step_name] then note_step(self, step_name) end
end
function State:touched_replaced() note_replaced(self) end

-- what an earlier resource of the step recorded, where the step now has
-- another kind or none (resources: the step's, by their kind), moves to
-- data.replaced for teardown to undo. Apply calls it through set_step;
-- teardown before it reverts, as the recipe may have changed since.
function State:retire(step_name, resources)
  local old = self.data.steps[step_name]
  local gone = {}
  for i, r in ipairs(old and type(old.resources) == "table" and old.resources or {}) do
    if type(r) == "table" and type(r.state) == "table" and next(r.state) ~= nil
       and (resources[i] == nil or resources[i].kind ~= r.kind) then
      gone[#gone + 1] = r
      old.resources[i] = { kind = r.kind, state = {} }
    end
  end
  if #gone > 0 then
    self.data.replaced = self.data.replaced or json.array {}
    table.insert(self.data.replaced, { step = step_name, applied = old.applied, resources = json.array(gone) })
    note_step(self, step_name)
    note_replaced(self)
  end
end

function State:set_step(step_name, resources)
  -- records the state cannot hold are refused whole (flush says why): the
  -- step's earlier ones stay, and the state can still be saved
  local ok, err = pcall(json.encode, resources)
  if not ok then
    self.refused = self.refused or unencodable(err, ("step '%s'"):format(json.text(step_name)), "resources")
    return
  end
  self:retire(step_name, resources)
  self.data.steps[step_name] = { resources = json.array(resources), applied = core.time() }
  note_step(self, step_name, true)
end

-- the resources data.replaced keeps: { step, applied, resources } entries
function State:replaced() return self.data.replaced or {} end

function State:forget_replaced(entry)
  for i, e in ipairs(self.data.replaced or {}) do
    if e == entry then
      table.remove(self.data.replaced, i)
      if #self.data.replaced == 0 then self.data.replaced = nil end
      note_replaced(self)
      return
    end
  end
end

function State:forget(step_name)
  if self.data.steps[step_name] then
    self.data.steps[step_name] = nil
    note_step(self, step_name)
  end
end

function State:has(step_name) return self.data.steps[step_name] ~= nil end

-- notify(step_name): a step it watches (on_change) changed and it has not
-- run since: the next run runs it even when nothing changes then (a run
-- that stopped before it loses no change). Cleared by its next success.
function State:notify(step_name)
  local st = self.data.steps[step_name]
  if st and st.notified == true then return end
  if not st then st = { resources = json.array {} }; self.data.steps[step_name] = st end
  st.notified = true
  note_step(self, step_name)
end
function State:notified(step_name)
  local st = self.data.steps[step_name]
  return st ~= nil and st.notified == true
end
function State:clear_notified(step_name)
  local st = self.data.steps[step_name]
  if st and st.notified then st.notified = nil; note_step(self, step_name) end
end

-- every step's record, by name (all decoded: for what goes through them all)
function State:steps() return all_steps(self.data) end

function State:empty() return not any_step(self.data) and self.data.replaced == nil end

local function append(self, text)
  local ok, err = self.h:append(self.journal_name, text)
  if not ok then return nil, "saving state: " .. err end
  self.journal_bytes = self.journal_bytes + #text
  return true
end

-- what was written with its sync left for later, on disk (before any
-- record of it is written)
local function sync_files()
  local ok, err = core.sync_written()
  if not ok then return nil, "saving state: writing the files to disk: " .. err end
  return true
end

-- flush_step(step_name): the line set_step(step_name) just noted, appended
-- to the journal now and alone: the lines held before it stay held, and
-- nothing is synced first. For the intent of a write (R.write_intent,
-- ctx:checkpoint), which must be in the journal before the file is: the
-- caller knows the step's records hold nothing written and not yet synced.
function State:flush_step(step_name)
  local e = self.pending[#self.pending]
  if not (e and e.set == step_name) or not self.h then return self:flush() end
  self.pending[#self.pending] = nil
  local ok, line = pcall(json.encode, e)
  if not ok then return nil, unencodable(line, "step '" .. json.text(step_name) .. "'") end
  return append(self, line .. "\n")
end

-- flush(): the files written with their sync left for later on disk, then
-- the changes made since the last flush appended to the journal (a write,
-- not an fsync: what a killed process wrote stays)
function State:flush()
  local sok, serr = sync_files()
  if not sok then return nil, serr end
  local bad = self.refused
  self.refused = nil
  if #self.pending == 0 then
    if bad then return nil, bad end
    return true
  end
  if not self.h then return nil, "state folder " .. self.dir .. " is not there" end
  local lines = {}
  for _, e in ipairs(self.pending) do
    local ok, line = pcall(json.encode, e)
    if ok then lines[#lines + 1] = line
    else bad = bad or unencodable(line, e.set and ("step '" .. json.text(e.set) .. "'") or "a replaced resource") end
  end
  if #lines > 0 then
    local ok, err = append(self, table.concat(lines, "\n") .. "\n")
    if not ok then return nil, err end
  end
  self.pending = {}
  if bad then return nil, bad end
  if self.journal_bytes > JOURNAL_COMPACT then return self:save() end
  return true
end

-- save(): the whole state, atomically (fsync'd), and the journal dropped
function State:save()
  if not self.dirty then return true end
  if not self.h then return nil, "state folder " .. self.dir .. " is not there" end
  local sok, serr = sync_files()
  if not sok then return nil, serr end
  local ok, err
  if self:empty() then
    ok, err = self.h:remove(self.name)
    if not ok then return nil, "saving state: " .. err end
  else
    all_steps(self.data)   -- (encode goes through the table itself)
    -- compact: half the bytes of the indented form to write, hash and
    -- keep while the run reads it lazily (`jq . <recipe>.json` shows it)
    local eok, text = pcall(json.encode, self.data)
    if not eok then return nil, unencodable(text, "a step") end
    ok, err = self.h:write(self.name, with_digest(text))
    if not ok then return nil, "saving state: " .. err end
  end
  ok, err = self.h:remove(self.journal_name)
  if not ok then return nil, "saving state: " .. err end
  self.pending, self.journal_bytes, self.dirty = {}, 0, false
  return true
end

-- nothing is ever written (plan)
function State:read_only()
  self.flush = function() self.pending = {}; return true end
  self.flush_step = self.flush
  self.save = function() return true end
end

function State:close()
  self:unlock()
  if self.h then self.h:close() end
end

return State
