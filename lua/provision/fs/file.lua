-- provision.fs.file: the file family. What fs.file, fs.template and
-- fs.env_file share (their check's change lines and diff, their apply's
-- atomic write, what a write replaces), and fs.file itself.
local C = require "provision._fs"
local R = require "provision.resource"
local core = require "provision._core"
local B = require "provision.fs.base"
-- provision.diff and provision.fs.backup load when first used: a no-op
-- shows no diff and writes no file, and every module loaded costs each
-- run its start (issue 19)
local diff_m, backup_m
local function diff() diff_m = diff_m or require "provision.diff"; return diff_m end
local function backup() backup_m = backup_m or require "provision.fs.backup"; return backup_m end

local F = {}

local octal, log = B.octal, B.log
local FILE_MODE = B.FILE_MODE
local EUID = C.euid()
local DIFF_MAX_BYTES = 1024 * 1024   -- above this, no line diff: sizes and digests
local DIFF_MAX_LINES = 200

local function is_binary(s)
  return s:find("\0", 1, true) ~= nil or utf8.len(s) == nil
end

-- content summary for change lines
local function summary(data, hash)
  return ("%d bytes, sha256 %s"):format(#data, (hash or C.sha256_string(data)):sub(1, 12) .. "…")
end

local HIDDEN_LINE = B.MASK .. " (a line that held a secret)"
-- what the state keeps of a line that held a secret
local function line_key(l) return C.sha256_string(l):sub(1, 16) end
F.line_key = line_key

-- the old content as a diff may show it. A line the new content has too
-- is no old secret: the mask knows it; a line mask_old masks (a
-- template's secret line) is shown masked
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

-- the change lines for a file whose content is to become `content`.
-- display: what may be shown of the new content (nil: nothing, it is secret)
-- saved: the state of the last apply: when the file held a secret then
-- (saved.secret: all of it; saved.secret_lines: the digests of the lines
-- that did), those old lines are not shown: the old secret may no longer
-- be known to the mask (the recipe has a new one)
local function content_changes(path, content, display, out, mask_old, saved)
  local old, err = core.read_file(path)
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
  local lines = diff().unified(shown_old, display, { from = path, to = path, max_lines = DIFF_MAX_LINES })
  if #lines == 0 then
    out[#out + 1] = "~ content changed (secret value)"
  else
    for _, l in ipairs(lines) do out[#out + 1] = l end
  end
  return out
end

-- the change lines of a new file: its head line, then its content as diff
-- lines when it may be shown (diff.added)
local function new_file_changes(self, content, display)
  local mode = self.mode or FILE_MODE
  if display == nil then
    return { ("+ %s (%d bytes, mode %s, secret content)"):format(self.path, #content, octal(mode)) }
  elseif is_binary(content) then
    return { ("+ %s (binary, %s, mode %s)"):format(self.path, summary(content), octal(mode)) }
  end
  local head = "+ " .. self.path .. " (" .. #content .. " bytes, mode " .. octal(mode) .. ")"
  if #content > DIFF_MAX_BYTES then return { head } end
  return diff().added(head, display, self.path, DIFF_MAX_LINES)
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
  local uid = B.wanted_uid(self)
  if uid and lst.uid ~= uid then
    return { ("~ %s: owned by %s, replaced with a file of %s"):format(self.path, B.user_label(lst.uid),
      B.user_label(uid)) }
  end
  if lst.nlink > 1 then
    return { ("~ %s: has %d hard links, replaced with a file of its own"):format(self.path, lst.nlink) }
  end
end
F.replace_changes = replace_changes

F.BACKUP_NOTE = "  (backup = true: the old content is kept beside it)"

-- check for a file that is to hold content. display and mask_old: see
-- content_changes; display may also be a function of the content giving
-- it, called only when there is a change to show (a no-op words nothing)
-- the check's answer when it has changes: a failure when apply could not
-- make them (B.blockers), else the changes with any note
function F.would(self, ctx, changes, new, no_folder)
  local hard, soft = B.blockers(self, ctx, self.path, new, no_folder)
  if hard then return nil, hard end
  if soft then changes[#changes + 1] = soft end
  return false, changes
end

local holds = C.holds
function F.check(self, ctx, content, display, mask_old)
  -- the usual re-run: our file, its content and mode as they are to be
  -- (no owner or group named): nothing to word, no table made
  local st, err, no_folder = true, nil, nil
  if not (self.owner or self.group) then
    local same, absent
    same, absent, no_folder = holds(self.path, content, self.mode or -1, EUID)
    if same then return true end
    if absent then st = false end   -- (plan's new file: no second walk to find nothing)
  end
  if st then st, err = B.probe(self.path, false, content) end
  if st == nil then return nil, err end
  if type(display) == "function" then display = (st == false or not st.same) and display(content) or nil end
  if not st then
    -- nothing there: apply, which follows at once, need not look again
    -- (what it would find, were something put there since, is replaced
    -- by the rename as it would be a moment later)
    if ctx and not ctx.plan then ctx.nothing_at = self.path end   -- (a plan applies nothing)
    return F.would(self, ctx, new_file_changes(self, content, display), true, no_folder)
  end
  local changes = {}
  local replace = replace_changes(self, st)
  if replace then return false, replace end
  if st.type ~= "file" then
    return false, { ("! %s exists and is a %s, not a file"):format(self.path, st.type) }
  end
  if not st.same then
    content_changes(self.path, content, display, changes, mask_old, ctx and ctx.state)
    if self.backup then changes[#changes + 1] = F.BACKUP_NOTE end
  end
  B.attr_changes(self, st, "", changes)
  if #changes == 0 then return true end
  return F.would(self, ctx, changes, false)
end

-- content written over st (nil: a new file, or one that is replaced),
-- atomically, with its owner and mode; recorded as a file of the step's
-- when new or replaced
local function write_file(self, ctx, content, hash, st, was_link, replace)
  -- a rename makes a new inode: the recipe's owner and mode, else ours,
  -- and the old file's mode when it was ours
  local mode = self.mode or (st and st.mode) or FILE_MODE
  local ok, ouid, ogid = B.owner_ids(self, self.path)
  if not ok then return nil, ouid end
  local uid, gid = ouid or (st and st.uid), ogid or (st and st.gid)
  local temp = R.write_intent(ctx, self.path, hash, not st or replace, uid)
  -- in a step of the runner's batch (ctx.sync_later): a new file with no
  -- fsync, one that replaces content with its content fsync'd before the
  -- rename (after a power failure: the old content or the new, whole);
  -- the rest at the batch's sync, before the step's record is journaled
  local sync = ctx.sync_later and ((st or replace) and "data" or "later") or nil
  local wok, werr, code = core.write_atomic(self.path, content, mode, uid, gid, temp, sync)
  local dir = wok and werr or nil   -- write gives the folder's id
  R.written(ctx)
  if not wok then
    local parent = B.parent_of(self.path)
    local pst = C.stat(parent)
    if code == B.ENOENT and (not pst or pst.type ~= "directory") then
      return nil, self.path .. ": its folder " .. parent .. " does not exist (add an fs.directory step)"
    end
    return nil, werr
  end
  if was_link then   -- not ours to remove at teardown: the link was there before
    log(ctx, ("replaced the link %s with a file (%d bytes)"):format(self.path, #content))
  elseif replace then   -- another user's file, or one with other names: ours now
    R.record_written(ctx, self.path, hash, false, nil, uid or EUID)
    log(ctx, ("replaced %s with a file of ours (%d bytes)"):format(self.path, #content))
  elseif not st then
    R.record(ctx, { type = "file", path = self.path, sha256 = hash, dir = dir, uid = uid or EUID })
    log(ctx, ("wrote %s (%d bytes)"):format(self.path, #content))
  else
    R.record_written(ctx, self.path, hash, true, nil, uid or EUID)
    log(ctx, ("rewrote %s (%d bytes)"):format(self.path, #content))
  end
  return true
end

-- apply for a file that is to hold content. secret: the content holds a
-- secret: true (all of it), or the list of line_key()s of the lines that
-- do; the state keeps it for the next diff
function F.apply(self, ctx, content, secret)
  R.settle_pending(ctx, false)   -- what a killed run of this step left
  local lst, err = false, nil
  if ctx.nothing_at ~= self.path then lst, err = B.probe(self.path, false, true) end
  ctx.nothing_at = nil
  if lst == nil then return nil, err end
  local was_link = lst and lst.type == "link"
  local replace = lst and replace_changes(self, lst) ~= nil
  local st = lst and not replace and lst or nil   -- what is replaced counts as no file
  if st and st.type ~= "file" then
    return nil, self.path .. ": exists and is a " .. st.type .. ", not a file"
  end
  local hash = C.sha256_string(content)
  if st and st.sha256 == hash then return B.set_attrs(self, self.path, st) end
  if self.backup and st then
    local bok, berr = backup().keep(self.path, st, ctx)
    if not bok then return nil, berr end
  end
  local ok, werr = write_file(self, ctx, content, hash, st, was_link, replace)
  if not ok then return nil, werr end
  backup().wrote(ctx, hash)
  ctx.state.secret = secret == true or nil
  ctx.state.secret_lines = type(secret) == "table" and #secret > 0 and secret or nil
  if ctx.detail then ctx:detail(("%d bytes"):format(#content)) end
  return true   -- written with its owner and mode already
end

-- revert: a backup put back (backup = true), then the files it created removed
function F.revert(self, ctx)
  local put, err = backup().restore(ctx)
  if put == nil then return nil, err end
  local removed, rerr = R.revert_created_files(self, ctx)
  if removed == nil then return nil, rerr end
  return put or removed
end

-- writes for plan: the file, and the digest of the content apply would
-- leave there (a reader that last saw that content sees no change); the
-- path alone when that is all that is asked (paths_only: the plan's note)
function F.content_writes(content_of)
  return function(self, paths_only)
    if paths_only then return { self.path } end
    return { { path = self.path, sha256 = C.sha256_string(content_of(self)) } }
  end
end

-- the validate the file kinds share
function F.validate(self)
  if self.path:sub(-1) == "/" then return nil, "path must name a file, not a folder: " .. self.path end
  if self.owner and B.resolve(self.owner) == nil and not self.owner:match("^[%w_.][%w_.-]*%$?$") then
    return nil, "owner: not a user name: " .. self.owner
  end
  return true
end

F.file = R.define {
  kind = "fs.file",
  owns = "path",
  writes = F.content_writes(function(self) return R.reveal(self.content) end),
  options = {
    path = { "string", path = true, doc = "the file" },
    content = { "secret", doc = "its whole content (may be a secret)" },
    mode = { "mode?", doc = "its mode; a new file: 0644 (0600 when its content holds a secret); else kept" },
    owner = { "string?", doc = "the user who owns it (a name)" },
    group = { "string?", doc = "its group (a name)" },
    backup = { "boolean?", doc = "true: keep the content it replaces beside it; teardown puts the oldest back" },
  },
  validate = function(self)
    local ok, err = F.validate(self)
    if not ok then return nil, err end
    -- content that holds a secret is written 0600 unless the recipe says
    if self.mode == nil and R.is_secret(self.content) then self.mode = B.SECRET_MODE end
    return true
  end,
  describe = function(self) return "file " .. self.path end,
  check = function(self, ctx)
    local content = self.content   -- a string, or a secret (R.is_secret)
    if type(content) ~= "string" then return F.check(self, ctx, R.reveal(content), nil) end
    return F.check(self, ctx, content, R.mask)   -- shown with any secret value in it blanked
  end,
  apply = function(self, ctx) return F.apply(self, ctx, R.reveal(self.content), R.is_secret(self.content)) end,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = F.revert,
  state_revert = true,
  sync_later = true,    -- its write may wait for the batch's sync (run.lua)
}

return F
