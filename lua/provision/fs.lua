-- provision.fs: files and folders. Resources:
--
--   fs.directory { path(s), mode?, owner?, group? }    (parents created too)
--   fs.file { path, content, mode?, owner?, group? }   (content may be a secret)
--   fs.template { path, template = "Hello ${name}", vars = {...}, mode?, owner?, group? }
--   fs.env_file { path, values = { K = V }, mode = "0600", owner?, group? }
--   fs.absent { path(s) }                              (recursive, never follows links)
--   fs.symlink { path, target }
--
-- and the primitives of provision._fs for recipes: fs.exists(p), fs.read(p),
-- fs.sha256(p), fs.xxh128(p), fs.stat(p), fs.lstat(p), fs.write(p, data, mode),
-- fs.symlink(target, path) (called with a table it is the resource), ...
--
-- Every write is atomic (temp file, fsync, rename). apply records what it
-- created (ctx:created) so revert removes exactly that: a folder only when
-- empty, a file only when its content is still what was written.
--
-- As root among other users (core/tree.h says how): no path is walked
-- through a link another user owns, no chmod or chown goes through a link
-- or a file with several names, and a file someone else put where a file
-- is wanted is replaced, never written into: the new one gets the recipe's
-- owner (else the user running provision) and mode (else 0600 for content
-- that holds a secret, 0644 otherwise; an existing file of ours keeps its
-- mode).
local C = require "provision._fs"
local R = require "provision.resource"
local core = require "provision._core"
local diff = require "provision.diff"
local envfmt = require "provision.envfile"

local M = {}
for k, v in pairs(C) do M[k] = v end

-- a mode given to a function: "0644" or nil (see R.checkers.mode)
local function mode_arg(fname, mode)
  if mode == nil then return nil end
  local m, why = R.checkers.mode(mode)
  if not m then error(fname .. ": mode must be " .. why, 3) end
  return m
end
-- whole-file read and atomic write: the core's (core/atomicio.c), which the
-- state file uses too. write(path, data [, mode [, uid, gid]]) -> true |
-- nil, msg, errno; the new file has its mode and owner before it appears.
-- Inside this module modes are already checked numbers; fs.write,
-- fs.mkdir, fs.mkdirs and fs.chmod take them as recipes write them ("0644").
local write = core.write_atomic
M.write = function(path, data, mode, uid, gid)
  return write(path, data, mode_arg("fs.write", mode), uid, gid)
end
M.mkdir = function(path, mode) return C.mkdir(path, mode_arg("fs.mkdir", mode)) end
M.chmod = function(path, mode) return C.chmod(path, mode_arg("fs.chmod", mode) or error("fs.chmod: a mode is required", 2)) end
local read = core.read_file
M.read = read
M.envfile = envfmt

local MASK = "********"
local DIR_MODE, FILE_MODE, SECRET_MODE = tonumber("755", 8), tonumber("644", 8), tonumber("600", 8)
local DIFF_MAX_BYTES = 1024 * 1024   -- above this, no line diff: sizes and digests
local DIFF_MAX_LINES = 200

local function octal(m) return ("%04o"):format(m) end
M.octal = octal

local function parent_of(p)
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

local function is_binary(s)
  return s:find("\0", 1, true) ~= nil or utf8.len(s) == nil
end

local function short_digest(h) return h:sub(1, 12) .. "…" end

-- owner/group as given (a name or a number) -> id | nil, msg
local function resolve(v, is_group)
  if v == nil then return nil end
  local n = math.tointeger(tonumber(v))
  if n then return n end
  if is_group then return C.gid_of(v) end
  return C.uid_of(v)
end

local function user_label(uid) return C.user_name(uid) or tostring(uid) end
local function group_label(gid) return C.group_name(gid) or tostring(gid) end

-- lstat for a check: st | false (nothing there) | nil, why (it cannot be
-- looked at safely: a link of another user's on the way, ...). with_hash:
-- a regular file's st.sha256 too, in the same walk
local ENOENT, ENOTDIR = 2, 20
local function probe(path, follow, with_hash)
  local st, err, code = (with_hash and C.probe or follow and C.stat or C.lstat)(path)
  if st then return st end
  if code == ENOENT or code == ENOTDIR then return false end
  return nil, err
end

-- the uid a file the recipe writes is to have
local EUID = C.euid()
local function wanted_uid(self)
  if self.owner then return resolve(self.owner) end
  return EUID
end

-- the mode/owner/group differences between st and self: change lines
local function attr_changes(self, st, label, out)
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

-- make path's mode and owner what self says; st: its stat (or nil: look).
-- The owner first: a chown clears the setuid and setgid bits of a file
-- (for root too), so the mode is set after it.
-- Only the very file or folder st describes (its id): a chown to root
-- and a setuid mode must never land on one someone swapped in since.
local function set_attrs(self, path, st)
  st = st or C.stat(path)
  if not st then return nil, path .. ": vanished" end
  local id = st.id
  if self.owner or self.group then
    local uid, gid
    if self.owner then
      local e; uid, e = resolve(self.owner)
      if not uid then return nil, path .. ": " .. e end
    end
    if self.group then
      local e; gid, e = resolve(self.group, true)
      if not gid then return nil, path .. ": " .. e end
    end
    if (uid and uid ~= st.uid) or (gid and gid ~= st.gid) then
      local ok, err = C.chown(path, uid, gid, id)
      if not ok then return nil, err end
      st = C.stat(path)
      if not st then return nil, path .. ": vanished" end
    end
  end
  if self.mode and st.mode ~= self.mode then
    local ok, err = C.chmod(path, self.mode, id)
    if not ok then return nil, err end
  end
  return true
end

local function describe_paths(kind, paths)
  if #paths == 1 then return kind .. " " .. paths[1] end
  return ("%s %s (+%d more)"):format(kind, paths[1], #paths - 1)
end

local find_created, record = R.find_created, R.record

local function log(ctx, line)
  if ctx.log then ctx:log(line) end
end

-- mkdir -p, recording every folder it made (outermost first)
local function mkdirs(path, mode, ctx)
  -- up from path while the folder holding it is missing (one mkdir when
  -- only the last is), then down again making each
  local todo, cur = {}, path:gsub("/+$", "")
  if cur == "" then cur = "/" end
  while true do
    local ok, err, code = C.mkdir(cur, #todo == 0 and mode or DIR_MODE)
    if ok then
      todo[#todo + 1] = { cur, err }   -- err: the new folder's id
      break
    elseif code == 2 and cur:find("/", 1, true) and cur ~= "/" then   -- ENOENT: its folder first
      todo[#todo + 1] = { cur }
      cur = parent_of(cur)
    elseif code == 17 then   -- EEXIST: a folder (else say what it is)
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
      local ok, err, code = C.mkdir(p, i == 1 and mode or DIR_MODE)
      if not ok and code ~= 17 then return nil, err end   -- EEXIST: raced
      id = ok and err or nil
    end
    if id then
      made[#made + 1] = p
      if ctx then record(ctx, { type = "directory", path = p, id = id }) end
    end
  end
  return made
end
M.mkdirs = function(path, mode) return mkdirs(path, mode_arg("fs.mkdirs", mode) or DIR_MODE) end

--------------------------------------------------------------------- directory
M.directory = R.define {
  kind = "fs.directory",
  -- a folder there already only gets its mode or owner: what is in it stays
  writes = function(self)
    local out = {}
    for _, p in ipairs(self.path) do
      local st = C.stat(p)
      out[#out + 1] = st and st.type == "directory" and { path = p, entry = true } or p
    end
    return out
  end,
  positional = "path",
  options = {
    path = "strings",
    mode = "mode?",
    owner = "string?",
    group = "string?",
  },
  describe = function(self) return describe_paths("directory", self.path) end,
  check = function(self, ctx)
    local changes = {}
    for _, p in ipairs(self.path) do
      local st, err = probe(p, true)
      if st == nil then return nil, err end
      if not st then
        changes[#changes + 1] = ("+ %s/ (mode %s)"):format(p, octal(self.mode or DIR_MODE))
        if self.owner or self.group then
          changes[#changes + 1] = ("  owner %s:%s"):format(self.owner or "-", self.group or "-")
        end
      elseif st.type ~= "directory" then
        changes[#changes + 1] = ("! %s exists and is a %s, not a folder"):format(p, st.type)
      else
        attr_changes(self, st, p .. ": ", changes)
      end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local made = 0
    for _, p in ipairs(self.path) do
      local st, err = probe(p, true)
      if st == nil then return nil, err end
      if st and st.type ~= "directory" then
        return nil, p .. ": exists and is a " .. st.type .. ", not a folder"
      end
      if not st then
        local list, merr = mkdirs(p, self.mode or DIR_MODE, ctx)
        if not list then return nil, merr end
        made = made + #list
        for _, d in ipairs(list) do log(ctx, "created " .. d .. "/") end
      end
      -- a folder just made has its mode already; an owner it needs still
      if st or self.owner or self.group then
        local ok, aerr = set_attrs(self, p, st or nil)
        if not ok then return nil, aerr end
      end
    end
    if made > 0 and ctx.detail then ctx:detail(("%d folder%s created"):format(made, made == 1 and "" or "s")) end
    return true
  end,
  state_revert = true,
  -- the folders it made, newest first, each only while it is empty and the
  -- very folder made (not one put in its place since)
  revert = function(self, ctx)
    local created = (ctx.state and ctx.state.created) or {}
    local left = {}
    for i = #created, 1, -1 do
      local e = created[i]
      if e.type == "directory" and type(e.path) == "string" then
        -- checked and removed through one descriptor of its folder
        local ok, why, code = C.remove_if(e.path, { type = "directory", id = e.id })
        if ok then
          log(ctx, "removed " .. e.path .. "/")
        elseif ok == nil and code ~= 40 then   -- ELOOP: a link of another user's on the way: left
          return nil, why
        elseif why ~= "gone already" and why ~= "not a folder now" then
          left[#left + 1] = e.path
          if why == "not empty" then
            why = ("not empty (%d entries)"):format(#(C.listdir(e.path) or {}))
          elseif why == "not the one made (replaced since)" then
            why = "not the folder it made (replaced since)"
          end
          log(ctx, ("left %s/: %s"):format(e.path, why))
        end
      end
    end
    if #left > 0 and ctx.detail then
      ctx:detail(("left %d folder%s: %s"):format(#left, #left == 1 and "" or "s",
        #left == 1 and left[1] or "not empty or not the ones made"))
    end
    return true
  end,
}

--------------------------------------------------------------------- files
-- content summary for change lines
local function summary(data, hash)
  return ("%d bytes, sha256 %s"):format(#data, short_digest(hash or C.sha256_string(data)))
end

-- the change lines for a file whose content is to become `content`.
-- display: what may be shown of the new content (nil: nothing, it is secret)
-- saved: the state of the last apply: when the file held a secret then
-- (saved.secret: all of it; saved.secret_lines: the digests of the lines
-- that did), those old lines are not shown: the old secret may no longer
-- be known to the mask (the recipe has a new one)
local HIDDEN_LINE = MASK .. " (a line that held a secret)"
local function line_key(l) return C.sha256_string(l):sub(1, 16) end
-- (a line the new content has too is no old secret: the mask knows it; a
-- line mask_old masks, a template's secret line, is shown masked)
local function shown_old_text(old, new, saved, mask_old)
  local hide = saved and (saved.secret == true or type(saved.secret_lines) == "table")
  if not hide then
    local shown = R.mask(old)
    return mask_old and mask_old(shown) or shown
  end
  local keep = {}
  for l in new:gmatch("[^\n]+") do keep[l] = true end
  local set = {}
  for _, k in ipairs(type(saved.secret_lines) == "table" and saved.secret_lines or {}) do set[k] = true end
  return (old:gsub("[^\n]+", function(l)
    local shown = R.mask(l)
    if mask_old then
      local masked, took = mask_old(shown, true)
      if took then return masked end
    end
    if not keep[l] and (saved.secret == true or set[line_key(l)]) then return HIDDEN_LINE end
    return shown
  end))
end

local function content_changes(path, st, content, display, out, mask_old, saved)
  local old, err = read(path)
  if not old then out[#out + 1] = "~ content (cannot read the old one: " .. err .. ")"; return out end
  if display == nil then
    out[#out + 1] = "~ content changed (secret)"
    return out
  end
  if is_binary(old) or is_binary(content) then
    out[#out + 1] = ("~ content: %s%s -> %s%s"):format(is_binary(old) and "binary, " or "", summary(old),
      is_binary(content) and "binary, " or "", summary(content))
    return out
  end
  if #old > DIFF_MAX_BYTES or #content > DIFF_MAX_BYTES then
    out[#out + 1] = ("~ content: %s -> %s"):format(summary(old), summary(content))
    return out
  end
  local shown_old = shown_old_text(old, content, saved, mask_old)
  local lines = diff.unified(shown_old, display, { from = path, to = path, max_lines = DIFF_MAX_LINES })
  if #lines == 0 then
    out[#out + 1] = "~ content changed (secret value)"
  else
    for _, l in ipairs(lines) do out[#out + 1] = l end
  end
  return out
end

local function new_file_changes(self, content, display, out)
  local mode = self.mode or FILE_MODE
  if display == nil then
    out[#out + 1] = ("+ %s (%d bytes, mode %s, secret content)"):format(self.path, #content, octal(mode))
  elseif is_binary(content) then
    out[#out + 1] = ("+ %s (binary, %s, mode %s)"):format(self.path, summary(content), octal(mode))
  else
    out[#out + 1] = ("+ %s (%d bytes, mode %s)"):format(self.path, #content, octal(mode))
    if #content <= DIFF_MAX_BYTES then
      local lines = diff.unified("", display, { from = "/dev/null", to = self.path, max_lines = DIFF_MAX_LINES })
      for _, l in ipairs(lines) do out[#out + 1] = l end
    end
  end
  return out
end

-- Where a file is wanted, what is there and is not a file of the recipe's
-- owner with one name is replaced by a new file (the check says so, before
-- any content is read): a symbolic link (as Ansible's copy does by
-- default; its target is never read or written), a file another user owns
-- (they could change it after this check, or read what is written into
-- it), a file with several hard links (another name of it may be any
-- file). nil when the file is there to compare; else the change lines.
local function replace_changes(self, lst)
  if lst.type == "link" then
    return { ("~ %s: a link (-> %s), replaced with a file"):format(self.path, tostring(C.readlink(self.path))) }
  end
  if lst.type ~= "file" then return nil end
  local uid = wanted_uid(self)
  if uid and lst.uid ~= uid then
    return { ("~ %s: owned by %s, replaced with a file of %s"):format(self.path, user_label(lst.uid), user_label(uid)) }
  end
  if lst.nlink > 1 then
    return { ("~ %s: has %d hard links, replaced with a file of its own"):format(self.path, lst.nlink) }
  end
end

local function file_check(self, ctx, content, display, mask_old)
  local st, err = probe(self.path, false, true)
  if st == nil then return nil, err end
  local changes = {}
  if not st then return false, new_file_changes(self, content, display, changes) end
  local replace = replace_changes(self, st)
  if replace then return false, replace end
  if st.type ~= "file" then
    return false, { ("! %s exists and is a %s, not a file"):format(self.path, st.type) }
  end
  if st.sha256 ~= C.sha256_string(content) then
    content_changes(self.path, st, content, display, changes, mask_old, ctx and ctx.state)
  end
  attr_changes(self, st, "", changes)
  if #changes == 0 then return true end
  return false, changes
end

-- secret: the content holds a secret: true (all of it), or the list of
-- line_key()s of the lines that do; the state keeps it for the next diff
local function file_apply(self, ctx, content, secret)
  R.settle_pending(ctx, false)   -- what a killed run of this step left
  local lst, err = probe(self.path, false, true)
  if lst == nil then return nil, err end
  local was_link = lst and lst.type == "link"
  local replace = lst and replace_changes(self, lst) ~= nil
  local st = lst and not replace and lst or nil   -- what is replaced counts as no file
  if st and st.type ~= "file" then
    return nil, self.path .. ": exists and is a " .. st.type .. ", not a file"
  end
  local hash = C.sha256_string(content)
  if not st or st.sha256 ~= hash then
    -- a new file (a rename makes a new inode): the recipe's owner and mode,
    -- else ours, and the old file's mode when it was ours
    local mode = self.mode or (st and st.mode) or FILE_MODE
    local uid, gid = st and st.uid, st and st.gid
    if self.owner then
      local e; uid, e = resolve(self.owner)
      if not uid then return nil, self.path .. ": " .. e end
    end
    if self.group then
      local e; gid, e = resolve(self.group, true)
      if not gid then return nil, self.path .. ": " .. e end
    end
    local temp = R.write_intent(ctx, self.path, hash, not st or replace)
    local ok, werr, code = write(self.path, content, mode, uid, gid, temp)
    local dir = ok and werr or nil   -- write gives the folder's id
    R.written(ctx)
    if not ok then
      local pst = C.stat(parent_of(self.path))
      if code == ENOENT and (not pst or pst.type ~= "directory") then
        return nil, self.path .. ": its folder " .. parent_of(self.path) .. " does not exist (add an fs.directory step)"
      end
      return nil, werr
    end
    ctx.state.secret = secret == true or nil
    ctx.state.secret_lines = type(secret) == "table" and #secret > 0 and secret or nil
    if was_link then   -- not ours to remove at teardown: the link was there before
      log(ctx, ("replaced the link %s with a file (%d bytes)"):format(self.path, #content))
    elseif replace then   -- another user's file, or one with other names: ours now
      R.record_written(ctx, self.path, hash, false)
      log(ctx, ("replaced %s with a file of ours (%d bytes)"):format(self.path, #content))
    elseif not st then
      record(ctx, { type = "file", path = self.path, sha256 = hash, dir = dir })
      log(ctx, ("wrote %s (%d bytes)"):format(self.path, #content))
    else
      R.record_written(ctx, self.path, hash, true)
      log(ctx, ("rewrote %s (%d bytes)"):format(self.path, #content))
    end
    if ctx.detail then ctx:detail(("%d bytes"):format(#content)) end
    return true   -- written with its owner and mode already
  end
  return set_attrs(self, self.path, st)
end

local file_revert = R.revert_created_files

-- writes for plan: the file, and the digest of the content apply would
-- leave there (a reader that last saw that content sees no change)
local function content_writes(content_of)
  return function(self)
    return { { path = self.path, sha256 = C.sha256_string(content_of(self)) } }
  end
end

local function validate_file(self)
  if self.path == "" then return nil, "path is empty" end
  if self.path:sub(-1) == "/" then return nil, "path must name a file, not a folder: " .. self.path end
  if self.owner and resolve(self.owner) == nil and not self.owner:match("^[%w_.][%w_.-]*%$?$") then
    return nil, "owner: not a user name: " .. self.owner
  end
  return true
end

M.file = R.define {
  kind = "fs.file",
  writes = content_writes(function(self) return R.reveal(self.content) end),
  options = {
    path = "string",
    content = "secret",
    mode = "mode?",
    owner = "string?",
    group = "string?",
  },
  validate = function(self)
    local ok, err = validate_file(self)
    if not ok then return nil, err end
    -- content that holds a secret is written 0600 unless the recipe says
    if self.mode == nil and R.is_secret(self.content) then self.mode = SECRET_MODE end
    return true
  end,
  describe = function(self) return "file " .. self.path end,
  check = function(self, ctx)
    local content = R.reveal(self.content)
    return file_check(self, ctx, content, (not R.is_secret(self.content)) and R.mask(content) or nil)
  end,
  apply = function(self, ctx) return file_apply(self, ctx, R.reveal(self.content), R.is_secret(self.content)) end,
  revert = file_revert,
  state_revert = true,
}

--------------------------------------------------------------------- template
-- "${name}" is replaced by vars.name; "$${" is a literal "${".
local function template_names(t)
  local names = {}
  for esc, name in t:gmatch("(%$?)%${([^}]*)}") do
    if esc == "" then names[#names + 1] = name end
  end
  return names
end

local function render(t, vars, reveal)
  return (t:gsub("(%$?)%${([^}]*)}", function(esc, name)
    if esc ~= "" then return "${" .. name .. "}" end
    local v = vars[name]
    if R.is_secret(v) then return reveal and R.reveal(v) or MASK end
    if type(v) == "boolean" then return tostring(v) end
    return tostring(v)
  end))
end
M.render = function(t, vars) return render(t, vars or {}, true) end

-- A template line that holds a secret, as a pattern: the old file's line that
-- matches it is shown masked, so an old secret no longer known (the recipe
-- changed it) cannot show in a diff.
local function secret_line_masker(t, vars)
  local rules = {}
  for line in (t .. "\n"):gmatch("(.-)\n") do
    local has_secret = false
    for esc, name in line:gmatch("(%$?)%${([^}]*)}") do
      if esc == "" and R.is_secret(vars[name]) then has_secret = true end
    end
    if has_secret then
      local pat, pos = {}, 1
      while true do
        local a, b, esc, name = line:find("(%$?)%${([^}]*)}", pos)
        local lit = line:sub(pos, a and a - 1 or -1)
        pat[#pat + 1] = lit:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
        if not a then break end
        if esc ~= "" then pat[#pat + 1] = ("${" .. name .. "}"):gsub("[%^%$%(%)%%%.%[%]%*%+%-%?{}]", "%%%0")
        elseif R.is_secret(vars[name]) then pat[#pat + 1] = ".-"
        else   -- a plain value is known: the line must hold it as it is now
          pat[#pat + 1] = render("${" .. name .. "}", vars, true):gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
        end
        pos = b + 1
      end
      rules[#rules + 1] = { "^" .. table.concat(pat) .. "$", render(line, vars, false) }
    end
  end
  if #rules == 0 then return nil end
  -- mask(old) -> old masked; mask(line, true) -> line masked, whether a rule took it
  return function(old, one_line)
    if one_line then
      for _, r in ipairs(rules) do if old:match(r[1]) then return r[2], true end end
      return old, false
    end
    return (old:gsub("[^\n]+", function(l)
      for _, r in ipairs(rules) do if l:match(r[1]) then return r[2] end end
    end))
  end
end

-- the line_key()s of the rendered lines of t that hold a secret value
local function secret_line_keys(t, vars)
  local out = {}
  for line in (t .. "\n"):gmatch("(.-)\n") do
    for esc, name in line:gmatch("(%$?)%${([^}]*)}") do
      if esc == "" and R.is_secret(vars[name]) then
        out[#out + 1] = line_key(render(line, vars, true))
        break
      end
    end
  end
  return out
end

M.template = R.define {
  kind = "fs.template",
  writes = content_writes(function(self) return render(self.template, self.vars, true) end),
  options = {
    path = "string",
    template = "string",
    vars = { "table", default = {} },
    mode = "mode?",
    owner = "string?",
    group = "string?",
  },
  validate = function(self)
    local ok, err = validate_file(self)
    if not ok then return nil, err end
    for _, name in ipairs(template_names(self.template)) do
      if not name:match("^[%a_][%w_]*$") then
        return nil, ("template: bad placeholder ${%s} (names are letters, digits and _; write $${ for a literal ${)"):format(name)
      end
      if self.vars[name] == nil then
        return nil, ("template uses ${%s}, which is not in vars"):format(name)
      end
    end
    for k, v in pairs(self.vars) do
      local t = type(v)
      if type(k) ~= "string" or not (t == "string" or t == "number" or t == "boolean" or R.is_secret(v)) then
        return nil, ("vars.%s must be a string, number, boolean or secret, not a %s"):format(tostring(k), t)
      end
    end
    -- a template that writes a secret is written 0600 unless the recipe says
    for _, name in ipairs(template_names(self.template)) do
      if R.is_secret(self.vars[name]) then
        self.holds_secret = true
        if self.mode == nil then self.mode = SECRET_MODE end
      end
    end
    return true
  end,
  describe = function(self) return "file " .. self.path .. " (template)" end,
  check = function(self, ctx)
    return file_check(self, ctx, render(self.template, self.vars, true), render(self.template, self.vars, false),
      secret_line_masker(self.template, self.vars))
  end,
  apply = function(self, ctx)
    return file_apply(self, ctx, render(self.template, self.vars, true),
      self.holds_secret and secret_line_keys(self.template, self.vars) or nil)
  end,
  revert = file_revert,
  state_revert = true,
}

--------------------------------------------------------------------- env_file
local function show_value(v)
  if v:find("[%c ]") or v == "" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  return v
end

M.env_file = R.define {
  kind = "fs.env_file",
  writes = content_writes(function(self) return envfmt.encode(self.values, R.reveal) end),
  options = {
    path = "string",
    values = "table",
    mode = { "mode", default = "0600" },
    owner = "string?",
    group = "string?",
  },
  validate = function(self)
    local ok, err = validate_file(self)
    if not ok then return nil, err end
    for k, v in pairs(self.values) do
      if type(k) ~= "string" then return nil, "values: keys must be names, not " .. tostring(k) end
      local okk, kerr = envfmt.check_key(k)
      if not okk then return nil, "values: " .. kerr end
      local t = type(v)
      if not (t == "string" or t == "number" or t == "boolean" or R.is_secret(v)) then
        return nil, ("values.%s must be a string, number, boolean or secret, not a %s"):format(k, t)
      end
      local _, verr = envfmt.encode_value(envfmt.to_string(R.reveal(v)))
      if verr then
        return nil, ("values.%s%s %s"):format(k, R.is_secret(v) and " (secret)" or "", verr)
      end
    end
    return true
  end,
  describe = function(self) return "env file " .. self.path end,
  check = function(self, ctx)
    local content = envfmt.encode(self.values, R.reveal)
    local st, perr = probe(self.path)
    if st == nil then return nil, perr end
    local replace = st and replace_changes(self, st)
    if replace then return false, replace end
    if not st then
      local changes = { ("+ %s (mode %s)"):format(self.path, octal(self.mode)) }
      for _, k in ipairs(envfmt.sorted_keys(self.values)) do changes[#changes + 1] = "+ " .. k end
      return false, changes
    end
    if st.type ~= "file" then
      return false, { ("! %s exists and is a %s, not a file"):format(self.path, st.type) }
    end
    local changes = {}
    if C.sha256(self.path) ~= C.sha256_string(content) then
      local old_text = read(self.path) or ""
      local old, unreadable = envfmt.decode(old_text, self.path)
      if not old then
        changes[1] = ("~ %s (not a .env Compose reads: rewritten whole)"):format(unreadable)
        old = {}
      end
      local was_secret = {}
      for _, k in ipairs((ctx and ctx.state and ctx.state.secret_keys) or {}) do was_secret[k] = true end
      for _, k in ipairs(envfmt.sorted_keys(self.values)) do
        local v = self.values[k]
        local new = envfmt.to_string(R.reveal(v))
        if old[k] == nil then
          changes[#changes + 1] = "+ " .. k
        elseif old[k] ~= new then
          if R.is_secret(v) or was_secret[k] or R.mask(old[k]) ~= old[k] then
            changes[#changes + 1] = "~ " .. k .. " (secret)"
          else
            changes[#changes + 1] = ("~ %s: %s -> %s"):format(k, show_value(old[k]), show_value(new))
          end
        end
      end
      local gone = {}
      for k in pairs(old) do if self.values[k] == nil then gone[#gone + 1] = k end end
      table.sort(gone)
      for _, k in ipairs(gone) do changes[#changes + 1] = "- " .. k end
      if #changes == 0 then changes[1] = "~ layout (comments, quoting or order)" end
    end
    attr_changes(self, st, "", changes)
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local content, err = envfmt.encode(self.values, R.reveal)
    if not content then return nil, self.path .. ": " .. err end
    local secret_keys = {}
    for _, k in ipairs(envfmt.sorted_keys(self.values)) do
      if R.is_secret(self.values[k]) then secret_keys[#secret_keys + 1] = k end
    end
    ctx.state.secret_keys = secret_keys
    return file_apply(self, ctx, content, #secret_keys > 0)
  end,
  revert = file_revert,
  state_revert = true,
}

--------------------------------------------------------------------- absent
local function what_is(p, st)
  if st.type == "directory" then
    local names = C.listdir(p) or {}
    return ("folder, %d entr%s"):format(#names, #names == 1 and "y" or "ies")
  elseif st.type == "file" then
    return ("%d bytes"):format(st.size)
  end
  return st.type
end

M.absent = R.define {
  kind = "fs.absent",
  writes = R.paths_of("path"),
  positional = "path",
  options = { path = "strings" },
  validate = function(self)
    for _, p in ipairs(self.path) do
      -- not the root however spelled ("/", "//", "/.", "/tmp/.."), nor any
      -- path ending in . or .. (the C side refuses them too)
      local norm = p:gsub("/+$", "")
      local last = norm:match("[^/]*$")
      if p == "" or norm == "" or last == "." or last == ".." then
        return nil, ("refusing to remove %q"):format(p)
      end
    end
    return true
  end,
  describe = function(self) return describe_paths("absent", self.path) end,
  check = function(self, ctx)
    local changes = {}
    for _, p in ipairs(self.path) do
      local st, err = probe(p)
      if st == nil then return nil, err end
      if st then changes[#changes + 1] = ("- %s (%s)"):format(p, what_is(p, st)) end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  -- recursive, never through a link: not one on the way to p that another
  -- user owns, not one below p
  apply = function(self, ctx)
    local n = 0
    for _, p in ipairs(self.path) do
      local st, err = probe(p)
      if st == nil then return nil, err end
      if st then
        local ok, err = C.remove_tree(p)
        if not ok then return nil, err end
        n = n + 1
        log(ctx, "removed " .. p)
      end
    end
    if ctx.detail and n > 0 then ctx:detail(("%d removed"):format(n)) end
    return true
  end,
}

--------------------------------------------------------------------- symlink
local symlink_res = R.define {
  kind = "fs.symlink",
  writes = R.paths_of("path"),
  options = { path = "string", target = "string", force = { "boolean", default = false } },
  describe = function(self) return ("link %s -> %s"):format(self.path, self.target) end,
  check = function(self, ctx)
    local st, err = probe(self.path)
    if st == nil then return nil, err end
    if not st then return false, { ("+ %s -> %s"):format(self.path, self.target) } end
    if st.type ~= "link" then
      if st.type == "directory" then   -- never replaced, force or not: plan says what apply will
        return nil, ("%s exists and is a folder, not a link (a folder is never replaced, not even with force = true)"):format(self.path)
      end
      if self.force then
        return false, { ("~ %s: replace the %s with a link to %s"):format(self.path, st.type, self.target) }
      end
      return false, { ("! %s exists and is a %s, not a link (force = true replaces it)"):format(self.path, st.type) }
    end
    local have = C.readlink(self.path)
    if have == self.target then return true end
    return false, { ("~ %s -> %s (was -> %s)"):format(self.path, self.target, tostring(have)) }
  end,
  apply = function(self, ctx)
    local st, perr = probe(self.path)
    if st == nil then return nil, perr end
    if st and st.type ~= "link" then
      if not self.force or st.type == "directory" then
        return nil, self.path .. ": exists and is a " .. st.type .. ", not a link"
      end
    end
    if st and st.type == "link" and C.readlink(self.path) == self.target then return true end
    -- made beside it under a random name, then renamed over it: atomic
    local ok, err = C.symlink(self.target, self.path, true)
    if not ok then return nil, err end
    if not st then record(ctx, { type = "link", path = self.path, target = self.target, dir = C.dir_id(self.path) })
    else
      local e = find_created(ctx, self.path)
      if e then e.target = self.target end
    end
    log(ctx, ("linked %s -> %s"):format(self.path, self.target))
    return true
  end,
  state_revert = true,
  revert = function(self, ctx)
    for _, e in ipairs((ctx.state and ctx.state.created) or {}) do
      if e.type == "link" and type(e.path) == "string" then
        local ok, why, code = C.remove_if(e.path, { type = "link", dir = e.dir, target = e.target })
        if ok then
          log(ctx, "removed " .. e.path)
        elseif ok == nil and code ~= 40 then
          return nil, why
        elseif why ~= "gone already" then
          log(ctx, "left " .. e.path .. ": " .. why)
        end
      end
    end
    return true
  end,
}
-- fs.symlink { path =, target = } is the resource; fs.symlink(target, path)
-- the primitive
M.symlink = function(a, ...)
  if type(a) == "table" then return symlink_res(a) end
  return C.symlink(a, ...)
end

return M
