-- provision.fs.base: what the parts of provision.fs share: the default
-- modes, owners by name or number, looking at a path for a check, a
-- file's or folder's mode and owner (their change lines, setting them),
-- and mkdir -p.
local C = require "provision._fs"
local R = require "provision.resource"

local B = {}

B.DIR_MODE = tonumber("755", 8)
B.FILE_MODE = tonumber("644", 8)
B.SECRET_MODE = tonumber("600", 8)   -- content that holds a secret
B.MASK = "********"

-- the errno values the C side gives as the third result
local ENOENT, EEXIST, ENOTDIR = 2, 17, 20
B.ENOENT, B.EEXIST, B.ELOOP = ENOENT, EEXIST, 40

local OCTAL = {}   -- (each mode worded once: a plan of many files words a few modes)
local function octal(m)
  local t = OCTAL[m]
  if not t then t = ("%04o"):format(m); OCTAL[m] = t end
  return t
end
B.octal = octal

-- the folder holding p: "." for a bare name, "/" for a name at the root
local function parent_of(p)
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end
B.parent_of = parent_of

-- owner/group as given (a name or a number) -> id | nil, msg
local function resolve(v, is_group)
  if v == nil then return nil end
  local n = math.tointeger(tonumber(v))
  if n then return n end
  if is_group then return C.gid_of(v) end
  return C.uid_of(v)
end
B.resolve = resolve

local function user_label(uid) return C.user_name(uid) or tostring(uid) end
local function group_label(gid) return C.group_name(gid) or tostring(gid) end
B.user_label = user_label

-- lstat for a check: st | false (nothing there) | nil, why (it cannot be
-- looked at safely: a link of another user's on the way, ...). follow:
-- stat rather than lstat; with_hash: a regular file's st.sha256 too, in
-- the same walk, or, when with_hash is the content it should hold (a
-- string), st.same (true | false) instead: compared, no digest made
local function probe(path, follow, with_hash)
  local st, err, code
  if with_hash then st, err, code = C.probe(path, type(with_hash) == "string" and with_hash or nil)
  else st, err, code = (follow and C.stat or C.lstat)(path) end
  if st then return st end
  if code == ENOENT or code == ENOTDIR then return false end
  return nil, err
end
B.probe = probe

-- the uid a file the recipe writes is to have
local EUID = C.euid()
function B.wanted_uid(self)
  if self.owner then return resolve(self.owner) end
  return EUID
end

-- the mode/owner/group differences between st and self: change lines
function B.attr_changes(self, st, label, out)
  if self.mode and st.mode ~= self.mode then
    out[#out + 1] = ("~ %smode %s -> %s"):format(label, octal(st.mode), octal(self.mode))
  end
  if self.owner then
    local uid = resolve(self.owner)
    if uid == nil then out[#out + 1] = ("~ %sowner -> %s (no such user yet)"):format(label, self.owner)
    elseif uid ~= st.uid then
      out[#out + 1] = ("~ %sowner %s -> %s"):format(label, user_label(st.uid), user_label(uid))
    end
  end
  if self.group then
    local gid = resolve(self.group, true)
    if gid == nil then out[#out + 1] = ("~ %sgroup -> %s (no such group yet)"):format(label, self.group)
    elseif gid ~= st.gid then
      out[#out + 1] = ("~ %sgroup %s -> %s"):format(label, group_label(st.gid), group_label(gid))
    end
  end
  return out
end

-- blockers(self, ctx, path, new [, no_folder]) -> hard, soft: what makes a write of path
-- fail that a check can see, so that plan says so rather than promise a
-- change apply cannot make. hard (a message: the check fails): the folder
-- is on a read-only filesystem; or the owner or group does not exist, or
-- (new: the file is not there yet) its folder does not, and no step before
-- would change anything in plan (in apply the steps before have run).
-- soft (a note for the change lines): those missing, with a step before
-- that would change something and may make them. no_folder: the check
-- walked to the folder already and found none (C.holds says so): it is not
-- walked to again.
function B.blockers(self, ctx, path, new, no_folder)
  local missing   -- (made only when something is: a plan of many new files makes none)
  if self.owner and resolve(self.owner) == nil then missing = { "no such user " .. self.owner } end
  if self.group and resolve(self.group, true) == nil then
    missing = missing or {}
    missing[#missing + 1] = "no such group " .. self.group
  end
  -- the usual case in one walk: the folder is there, on a filesystem that
  -- can be written (readonly() walks to path's folder and asks its
  -- filesystem); else, as it always was, what is at the folder's path
  local ro, rcode, _
  if no_folder then rcode = ENOENT else ro, _, rcode = C.readonly(path) end
  if ro == true then return ("%s: the filesystem of %s is read-only"):format(path, parent_of(path)) end
  local parent = parent_of(path)
  -- (the walk to the folder found no such folder: no second walk to say so)
  local pst = ro == nil and rcode ~= ENOENT and C.stat(parent)
  if ro == nil and not pst and new and not (ctx and ctx.planned and ctx:planned(parent) ~= nil) then
    missing = missing or {}
    missing[#missing + 1] = ("its folder %s does not exist (add an fs.directory step before this one)"):format(parent)
  elseif pst and pst.type == "directory" and C.readonly(path) then
    return ("%s: the filesystem of %s is read-only"):format(path, parent)
  end
  if not missing then return nil end
  local why = ("%s: %s"):format(path, table.concat(missing, "; "))
  if ctx and ctx.plan and ctx.earlier_change and ctx:earlier_change() then
    return nil, "  (" .. why .. ": a step before this one may make it)"
  end
  return why
end

-- the uid and gid self names: each nil when self does not name one;
-- nil, msg when a name is unknown
function B.owner_ids(self, path)
  local uid, gid, err
  if self.owner then
    uid, err = resolve(self.owner)
    if not uid then return nil, path .. ": " .. err end
  end
  if self.group then
    gid, err = resolve(self.group, true)
    if not gid then return nil, path .. ": " .. err end
  end
  return true, uid, gid
end

-- make path's mode and owner what self says; st: its stat (or nil: look).
-- The owner first: a chown clears the setuid and setgid bits of a file
-- (for root too), so the mode is set after it.
-- Only the very file or folder st describes (its id): a chown to root
-- and a setuid mode must never land on one someone swapped in since.
function B.set_attrs(self, path, st)
  st = st or C.stat(path)
  if not st then return nil, path .. ": vanished" end
  local id = st.id
  local ok, uid, gid = B.owner_ids(self, path)
  if not ok then return nil, uid end
  if (uid and uid ~= st.uid) or (gid and gid ~= st.gid) then
    local cok, err = C.chown(path, uid, gid, id)
    if not cok then return nil, err end
    st = C.stat(path)
    if not st then return nil, path .. ": vanished" end
  end
  if self.mode and st.mode ~= self.mode then
    local mok, err = C.chmod(path, self.mode, id)
    if not mok then return nil, err end
  end
  return true
end

-- "directory a" or "directory a (+2 more)"
function B.describe_paths(kind, paths)
  if #paths == 1 then return kind .. " " .. paths[1] end
  return ("%s %s (+%d more)"):format(kind, paths[1], #paths - 1)
end

function B.log(ctx, line)
  if ctx.log then ctx:log(line) end
end

-- what a revert does to one path, in its log lines: "removed p", "left p:
-- why"; in a plan of teardown (ctx.plan) the change lines "- p" and
-- "= p: left, why"
function B.said_removed(ctx, p) B.log(ctx, ctx.plan and ("- " .. p) or ("removed " .. p)) end
function B.said_left(ctx, p, why) B.log(ctx, ctx.plan and ("= %s: left, %s"):format(p, why) or ("left %s: %s"):format(p, why)) end

-- what C.remove_if would do, and doing it: resource.lua's (every kind that
-- reverts what it made shares them)
B.would_remove, B.remove_if = R.would_remove, R.remove_if

-- the detail of what a revert did: "removed ./www/", "removed 3 folders:
-- ./a/, ./b/ (+1 more)"; verbs: { done, planned } ("removed", "would
-- remove"); what: "folder", "file", "link". nil for an empty list.
function B.count_said(ctx, verbs, what, list)
  if #list == 0 then return nil end
  local head = ctx.plan and verbs[2] or verbs[1]
  if #list == 1 then return head .. " " .. list[1] end
  return ("%s %d %ss: %s, %s%s"):format(head, #list, what, list[1], list[2],
    #list > 2 and (" (+%d more)"):format(#list - 2) or "")
end

-- mkdir -p, recording every folder it made (outermost first) when given ctx.
-- Up from path while the folder holding it is missing (one mkdir when only
-- the last is), then down again making each.
function B.mkdirs(path, mode, ctx)
  local todo, cur = {}, path:gsub("/+$", "")
  if cur == "" then cur = "/" end
  while true do
    local later = ctx and ctx.sync_later   -- (in the runner's batch: on disk at its sync)
    local ok, err, code = C.mkdir(cur, #todo == 0 and mode or B.DIR_MODE, later)
    if ok then
      todo[#todo + 1] = { cur, err }   -- err: the new folder's id
      break
    elseif code == ENOENT and cur:find("/", 1, true) and cur ~= "/" then   -- its folder first
      todo[#todo + 1] = { cur }
      cur = parent_of(cur)
    elseif code == EEXIST then   -- a folder (else say what it is)
      local st = probe(cur, true)
      if st and st.type ~= "directory" then return nil, cur .. ": exists and is not a folder" end
      if #todo == 0 then return {} end   -- raced: another run made it
      break
    else
      return nil, err
    end
  end
  local made = {}
  for i = #todo, 1, -1 do
    local p, id = todo[i][1], todo[i][2]
    if not id then
      local ok, err, code = C.mkdir(p, i == 1 and mode or B.DIR_MODE, ctx and ctx.sync_later)
      if not ok and code ~= EEXIST then return nil, err end   -- EEXIST: raced
      id = ok and err or nil
    end
    if id then
      made[#made + 1] = p
      if ctx then R.record(ctx, { type = "directory", path = p, id = id }) end
    end
  end
  return made
end

return B
