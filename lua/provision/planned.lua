-- provision.planned: what the steps of a plan so far would write. Plan runs
-- no apply, so a check reading what an earlier step would write answers
-- about the old content (compose.up and the .env a step before it
-- rewrites; archive.create and a file in its src). The runner notes the
-- writes of each resource that would change (note); a later resource whose
-- reads overlap one would change too (input_changes); ctx:planned(path)
-- says what content an earlier step would leave at path (lookup).
--
-- Kept small, as a plan of 142,000 new files keeps one note each (issue
-- 19): a path's key (key: the path as written when it is relative and
-- clean, the same string the resource holds; else normalized, and made
-- relative to the working folder when under it) and the resource, two
-- slots of run.plan_writes, and key -> resource in run.plan_written. The
-- rest (the path as shown, the digest, the step) is asked of the resource's
-- writes() again when a reader needs it, which is seldom.
local R = require "provision.resource"
local core = require "provision._core"

local M = {}

local norm_path, clean_path = R.norm_path, R.clean_path

local function cwd_of(run)
  run.cwd = run.cwd or core.cwd() or "/"
  return run.cwd
end

-- key(run, p): p's key (see above); "." is the working folder itself
local function key(run, p)
  if p:byte(1) ~= 47 and clean_path(p) then return p end
  local cwd = cwd_of(run)
  local np = norm_path(p, cwd)
  if np == cwd then return "." end
  if cwd == "/" then return np:sub(2) end
  if np:sub(1, #cwd + 1) == cwd .. "/" then return np:sub(#cwd + 2) end
  return np
end
M.key = key

local function under_abs(a, b) return a == b or b == "/" or a:sub(1, #b + 1) == b .. "/" end

-- is the path of key a the path of key b or under it? A relative key is
-- under the working folder, an absolute one is not
local function under(run, a, b)
  local ra, rb = a:byte(1) ~= 47, b:byte(1) ~= 47
  if ra == rb then return (ra and b == ".") or under_abs(a, b) end
  return ra and under_abs(cwd_of(run), b)
end
M.under = under

-- res's write at key k (a table: path, entry, sha256) | its write of name n
local function write_of(run, res, k, n)
  for _, p in ipairs(res:writes()) do
    if type(p) ~= "table" then p = { path = p } end
    if n and p.name == n or not n and not p.name and key(run, p.path) == k then return p end
  end
end

-- the step res belongs to (for a message: a walk of the steps)
local function step_of(run, res)
  for _, s in ipairs(run.recipe.steps) do
    for _, r in ipairs(s.resources) do if r == res then return s.name end end
  end
  return "?"
end

-- note(run, res): res (of a step that would change) writes what its
-- writes() says
function M.note(run, res)
  if not res.writes then return end
  local pw, pn = run.plan_writes, run.plan_written
  for _, p in ipairs(res:writes(true)) do
    local n = #pw
    if type(p) == "table" and p.name then   -- not a path: an image
      pw[n + 1], pw[n + 2] = false, res
    else
      local entry = type(p) == "table" and p.entry == true
      if type(p) == "table" then p = p.path end
      local k = key(run, p)
      pw[n + 1], pw[n + 2] = k, res
      pn[k] = res   -- the last writer (lookup): one lookup, not a walk
      if entry then   -- (a folder's mode or owner, not what is under it)
        run.plan_entry = run.plan_entry or {}
        run.plan_entry[n + 1] = true
      end
    end
  end
end

-- lookup(run, path) -> the SHA-256 of the content the last earlier step to
-- write path would leave there | false (a change not known) | nil (none).
-- The last answer is kept: the files of one folder all ask of the folder
function M.lookup(run, path)
  local k = key(run, path)
  local res = run.plan_written[k]
  if res == nil then return nil end
  local last = run.plan_last
  if last and last[1] == k and last[2] == res then return last[3] end
  local w = write_of(run, res, k)
  local sum = w and w.sha256 or false
  run.plan_last = { k, res, sum }
  return sum
end

-- input_changes(run, res, ctx) -> change lines | nil: does a read of res
-- overlap what an earlier step would write (the first such write)?
function M.input_changes(run, res, ctx)
  local pw = run.plan_writes
  if not res.reads or #pw == 0 then return nil end
  local entry = run.plan_entry or {}
  for _, r in ipairs(res:reads(ctx)) do
    local name = type(r) == "table" and r.name
    local seen = type(r) == "table" and r.sha256   -- the content the check last saw there
    if type(r) == "table" then r = r.path end
    local rk = not name and key(run, r)
    for j = 1, #pw, 2 do
      local wk, w = pw[j], nil
      if name then
        if wk == false then w = write_of(run, pw[j + 1], nil, name) end
      elseif wk and (under(run, wk, rk) or (not entry[j] and under(run, rk, wk))) then
        w = write_of(run, pw[j + 1], wk) or { path = wk }
        if seen and wk == rk and w and w.sha256 == seen then w = nil end   -- the content it saw
      end
      if w then
        return { ("%s would change first (step '%s')"):format(w.name or w.path, step_of(run, pw[j + 1])) }
      end
    end
  end
end

return M
