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
local function set_attrs(self, path, st)
  st = st or C.stat(path)
  if not st then return nil, path .. ": vanished" end
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
      local ok, err = C.chown(path, uid, gid)
      if not ok then return nil, err end
      st = C.stat(path)
      if not st then return nil, path .. ": vanished" end
    end
  end
  if self.mode and st.mode ~= self.mode then
    local ok, err = C.chmod(path, self.mode)
    if not ok then return nil, err end
  end
  return true
end

local function describe_paths(kind, paths)
  if #paths == 1 then return kind .. " " .. paths[1] end
  return ("%s %s (+%d more)"):format(kind, paths[1], #paths - 1)
end

local function find_created(ctx, path)
  for _, e in ipairs(ctx.state.created or {}) do
    if e.path == path then return e end
  end
end

local function record(ctx, entry)
  local e = find_created(ctx, entry.path)
  if e then
    for k, v in pairs(entry) do e[k] = v end
  else
    ctx:created(entry)
  end
end

local function log(ctx, line)
  if ctx.log then ctx:log(line) end
end

-- mkdir -p, recording every folder it made (outermost first)
local function mkdirs(path, mode, ctx)
  local made = {}
  local prefix = path:sub(1, 1) == "/" and "/" or ""
  local parts = {}
  for part in path:gmatch("[^/]+") do parts[#parts + 1] = part end
  local cur = prefix
  for i, part in ipairs(parts) do
    cur = (cur == "" or cur == "/") and (cur .. part) or (cur .. "/" .. part)
    local st = C.stat(cur)
    if not st then
      local ok, err, code = C.mkdir(cur, i == #parts and mode or 493) -- 0755
      if not ok and code ~= 17 then return nil, err end             -- EEXIST: raced
      if ok then
        made[#made + 1] = cur
        if ctx then record(ctx, { type = "directory", path = cur }) end
      end
    elseif st.type ~= "directory" then
      return nil, cur .. ": exists and is not a folder"
    end
  end
  return made
end
M.mkdirs = function(path, mode) return mkdirs(path, mode_arg("fs.mkdirs", mode) or 493) end

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
      local st = C.stat(p)
      if not st then
        changes[#changes + 1] = ("+ %s/ (mode %s)"):format(p, octal(self.mode or 493))
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
      local st = C.stat(p)
      if st and st.type ~= "directory" then
        return nil, p .. ": exists and is a " .. st.type .. ", not a folder"
      end
      if not st then
        local list, err = mkdirs(p, self.mode or 493, ctx)
        if not list then return nil, err end
        made = made + #list
        for _, d in ipairs(list) do log(ctx, "created " .. d .. "/") end
      end
      local ok, err = set_attrs(self, p)
      if not ok then return nil, err end
    end
    if made > 0 and ctx.detail then ctx:detail(("%d folder%s created"):format(made, made == 1 and "" or "s")) end
    return true
  end,
  state_revert = true,
  revert = function(self, ctx)
    local created = (ctx.state and ctx.state.created) or {}
    local left = {}
    for i = #created, 1, -1 do
      local e = created[i]
      if e.type == "directory" then
        local st = C.lstat(e.path)
        if st and st.type == "directory" then
          local names = C.listdir(e.path) or {}
          if #names == 0 then
            local ok, err = C.remove(e.path)
            if not ok then return nil, err end
            log(ctx, "removed " .. e.path .. "/")
          else
            left[#left + 1] = e.path
            log(ctx, ("left %s/: not empty (%d entries)"):format(e.path, #names))
          end
        end
      end
    end
    if #left > 0 and ctx.detail then
      ctx:detail(("left %d non-empty folder%s"):format(#left, #left == 1 and "" or "s"))
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
local function content_changes(path, st, content, display, out, mask_old)
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
  local shown_old = R.mask(old)
  if mask_old then shown_old = mask_old(shown_old) end
  local lines = diff.unified(shown_old, display, { from = path, to = path, max_lines = DIFF_MAX_LINES })
  if #lines == 0 then
    out[#out + 1] = "~ content changed (secret value)"
  else
    for _, l in ipairs(lines) do out[#out + 1] = l end
  end
  return out
end

local function new_file_changes(self, content, display, out)
  local mode = self.mode or 420
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

-- check for any resource whose desired state is "path holds content"
-- content: the plain bytes; display: the text that may be shown (masked) or nil
-- A symbolic link where a file is wanted is replaced by the file (as
-- Ansible's copy does by default): the check says so, rather than read the
-- link's target and call it fine when that happens to match
local function link_change(path)
  local lst = C.lstat(path)
  if lst and lst.type == "link" then
    return { ("~ %s: a link (-> %s), replaced with a file"):format(path, tostring(C.readlink(path))) }
  end
end

local function file_check(self, content, display, mask_old)
  local link = link_change(self.path)
  if link then return false, link end
  local st = C.stat(self.path)
  local changes = {}
  if not st then return false, new_file_changes(self, content, display, changes) end
  if st.type ~= "file" then
    return false, { ("! %s exists and is a %s, not a file"):format(self.path, st.type) }
  end
  local have = C.sha256(self.path)
  if have ~= C.sha256_string(content) then
    content_changes(self.path, st, content, display, changes, mask_old)
  end
  attr_changes(self, st, "", changes)
  if #changes == 0 then return true end
  return false, changes
end

local function file_apply(self, ctx, content)
  local lst = C.lstat(self.path)
  local was_link = lst and lst.type == "link"
  local st = not was_link and lst or nil   -- a link is replaced, as a new file
  if st and st.type ~= "file" then
    return nil, self.path .. ": exists and is a " .. st.type .. ", not a file"
  end
  local pst = C.stat(parent_of(self.path))
  if not pst or pst.type ~= "directory" then
    return nil, self.path .. ": its folder " .. parent_of(self.path) .. " does not exist (add an fs.directory step)"
  end
  local hash = C.sha256_string(content)
  if not st or C.sha256(self.path) ~= hash then
    local mode = self.mode or (st and st.mode) or 420
    -- a rename makes a new inode: it gets the owner asked for, else the
    -- old file's, before it takes the old one's place
    local uid, gid = st and st.uid, st and st.gid
    if self.owner then
      local e; uid, e = resolve(self.owner)
      if not uid then return nil, self.path .. ": " .. e end
    end
    if self.group then
      local e; gid, e = resolve(self.group, true)
      if not gid then return nil, self.path .. ": " .. e end
    end
    local ok, err = write(self.path, content, mode, uid, gid)
    if not ok then return nil, err end
    if was_link then   -- not ours to remove at teardown: the link was there before
      log(ctx, ("replaced the link %s with a file (%d bytes)"):format(self.path, #content))
    elseif not st then
      record(ctx, { type = "file", path = self.path, sha256 = hash })
      log(ctx, ("wrote %s (%d bytes)"):format(self.path, #content))
    else
      M.record_written(ctx, self.path, hash, true)
      log(ctx, ("rewrote %s (%d bytes)"):format(self.path, #content))
    end
    if ctx.detail then ctx:detail(("%d bytes"):format(#content)) end
  end
  return set_attrs(self, self.path)
end

-- does the file at path still hold what created-entry e recorded: its
-- sha256, or the xxh128 of a download no checksum was pinned for (http.lua)
local function holds_recorded(path, e)
  if e.xxh128 then return C.xxh128(path) == e.xxh128 end
  return C.sha256(path) == e.sha256
end

-- revert of every resource that writes whole files (fs.file, fs.template,
-- fs.env_file, http.file, archive.create): remove the files ctx.state says
-- it created, each only while its content is still what was written.
-- false when nothing was removed (all left, or already gone): teardown
-- then reports the step ok, with the detail saying why
local function file_revert(self, ctx)
  local removed = 0
  for _, e in ipairs((ctx.state and ctx.state.created) or {}) do
    if e.type == "file" then
      local st = C.lstat(e.path)
      if st and st.type == "file" then
        if holds_recorded(e.path, e) then
          local ok, err = C.remove(e.path)
          if not ok then return nil, err end
          removed = removed + 1
          log(ctx, "removed " .. e.path)
        else
          log(ctx, "left " .. e.path .. ": changed since it was written")
          if ctx.detail then ctx:detail("left " .. e.path .. ": changed since it was written") end
        end
      elseif not st then
        if ctx.detail then ctx:detail(e.path .. " is gone already") end
      end
    end
  end
  return removed > 0
end

-- writes for plan: the file, and the digest of the content apply would
-- leave there (a reader that last saw that content sees no change)
local function content_writes(content_of)
  return function(self)
    return { { path = self.path, sha256 = C.sha256_string(content_of(self)) } }
  end
end

local function validate_file(self)
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
  validate = validate_file,
  describe = function(self) return "file " .. self.path end,
  check = function(self, ctx)
    local content = R.reveal(self.content)
    return file_check(self, content, (not R.is_secret(self.content)) and R.mask(content) or nil)
  end,
  apply = function(self, ctx) return file_apply(self, ctx, R.reveal(self.content)) end,
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
        else pat[#pat + 1] = ".-" end
        pos = b + 1
      end
      rules[#rules + 1] = { "^" .. table.concat(pat) .. "$", render(line, vars, false) }
    end
  end
  if #rules == 0 then return nil end
  return function(old)
    return (old:gsub("[^\n]+", function(l)
      for _, r in ipairs(rules) do if l:match(r[1]) then return r[2] end end
    end))
  end
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
    return true
  end,
  describe = function(self) return "file " .. self.path .. " (template)" end,
  check = function(self, ctx)
    return file_check(self, render(self.template, self.vars, true), render(self.template, self.vars, false),
      secret_line_masker(self.template, self.vars))
  end,
  apply = function(self, ctx) return file_apply(self, ctx, render(self.template, self.vars, true)) end,
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
    local link = link_change(self.path)
    if link then return false, link end
    local st = C.stat(self.path)
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
      local old = envfmt.decode(old_text)
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
    return file_apply(self, ctx, content)
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
      local st = C.lstat(p)
      if st then changes[#changes + 1] = ("- %s (%s)"):format(p, what_is(p, st)) end
    end
    if #changes == 0 then return true end
    return false, changes
  end,
  apply = function(self, ctx)
    local n = 0
    for _, p in ipairs(self.path) do
      if C.lstat(p) then
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
    local st = C.lstat(self.path)
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
    local st = C.lstat(self.path)
    if st and st.type ~= "link" then
      if not self.force or st.type == "directory" then
        return nil, self.path .. ": exists and is a " .. st.type .. ", not a link"
      end
    end
    if st and st.type == "link" and C.readlink(self.path) == self.target then return true end
    -- make the link beside it, then rename it over: atomic
    local tmp = ("%s.provision-%d"):format(self.path, math.random(1, 1 << 30))
    local ok, err = C.symlink(self.target, tmp)
    if not ok then return nil, err end
    ok, err = os.rename(tmp, self.path)
    if not ok then C.remove(tmp); return nil, err end
    if not st then record(ctx, { type = "link", path = self.path, target = self.target })
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
      if e.type == "link" then
        local st = C.lstat(e.path)
        if st and st.type == "link" and C.readlink(e.path) == e.target then
          local ok, err = C.remove(e.path)
          if not ok then return nil, err end
          log(ctx, "removed " .. e.path)
        elseif st then
          log(ctx, "left " .. e.path .. ": changed since it was made")
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

M.revert_created_files = file_revert

-- for the other resources that write whole files (http.file, archive.create):
-- a file written at path, with this digest (kind: "sha256", the default, or
-- "xxh128"). A new one is the step's own; one
-- it created on an earlier run stays its own, with the new digest (which
-- file_revert compares); one that was there before stays unrecorded, unless
-- the recipe created it under another record (a step renamed or removed
-- since, a resource replaced): this one takes it over (ctx:adopt), so that
-- teardown removes it rather than find it "changed since it was written".
function M.record_written(ctx, path, digest, existed, kind)
  kind = kind or "sha256"
  local e = find_created(ctx, path)
  if e then e.sha256, e.xxh128 = nil, nil; e[kind] = digest
  elseif not existed or ctx.adopt and ctx:adopt(path) then
    ctx:created { type = "file", path = path, [kind] = digest }
  end
end

return M
