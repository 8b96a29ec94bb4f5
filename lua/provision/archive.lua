-- provision.archive: extract archives safely, create them reproducibly.
-- The C half (provision._archive, modules/archive.c) does the work; here
-- are the resources:
--
--   archive.extract { src, dest, strip_components?, creates?, owner? }
--     tar, tar.gz, tar.xz, tar.bz2, tar.zst, zip. Everything is extracted
--     into a staging folder beside dest and moved into place only once every
--     entry was fine: a hostile archive (an absolute path, a '..', a symlink
--     leading outside dest, a write through a symlink) fails with a message
--     naming the entry, and nothing is written in or outside dest.
--     Absolute symlink targets are refused too (they would point outside).
--     owner = false (default, for untrusted archives): files belong to the
--     user extracting, setuid/setgid bits are dropped, and a device file,
--     FIFO or socket entry fails the extraction (naming it, nothing
--     written). owner = true trusts the archive: owners, setuid/setgid bits
--     and device files as recorded (an image root filesystem).
--     check: `creates` exists (when given); else the archive's SHA-256 is
--     the one last extracted (read only when its stamp changed), with the
--     same strip_components and owner, and every top-level entry it made
--     is there.
--     revert: removes dest when extract created it (an earlier dest too),
--     else the top-level entries it added.
--   archive.create { src, dest, format?, owner?, mtime? }
--     src's contents into dest (tar, tar.gz, tar.xz or zip; default: from
--     dest's name, else tar). Sorted entries, no atime/ctime, no gzip
--     timestamp; owner = "root" makes every entry 0:0 root/root (an image
--     root filesystem); mtime = N sets every entry's mtime. check: dest is
--     the file we made and src has not changed since (names, types, modes,
--     sizes, mtimes, owners, link targets). A dest inside src is not
--     archived (nor its temp file), nor part of what "src changed" means.
--   archive.list(path), archive.tree_digest(path), archive.remove_tree(path)
local C = require "provision._archive"
local R = require "provision.resource"
local FS = require "provision._fs"
-- SHA-256 of a file, stopping at SIGINT (libcurl is never loaded for it)
local function sha256_file(path) return FS.sha256(path) end

local M = {}
M.list = C.list
M.tree_digest = C.tree_digest
M.remove_tree = C.remove_tree
M.version = C.version

local function exists(path)
  return FS.stat(path) ~= nil or (os.rename(path, path)) ~= nil
end

local function lexists(path)
  -- a dangling symlink counts: rename-to-itself works on it
  return (os.rename(path, path)) ~= nil
end

M.extract = R.define {
  kind = "archive.extract",
  reads = R.paths_of("src"),
  writes = R.paths_of("dest"),
  options = {
    src = "string", dest = "string", strip_components = "integer?", creates = "string?",
    owner = "boolean?",
  },
  validate = function(self)
    if self.strip_components and self.strip_components < 0 then
      return nil, "strip_components must be >= 0"
    end
    return true
  end,
  describe = function(self) return ("extract %s into %s"):format(self.src, self.dest) end,
  check = function(self, ctx)
    if self.creates then
      if lexists(self.creates) then return true end
      return false, ("extract %s into %s (%s is missing)"):format(self.src, self.dest, self.creates)
    end
    local st = ctx.state or {}
    if not exists(self.dest) or not st.sha256 or st.dest ~= self.dest then
      return false, ("extract %s into %s"):format(self.src, self.dest)
    end
    -- the archive read again only when it is not the very file extracted
    -- last (its stamp: device, inode, size, mtime, ctime): a no-op re-run
    -- of a 1 GiB archive costs a stat, not ~1 s of SHA-256
    local sum, err = R.known_digest(self.src, st.src_stamp, st.sha256, sha256_file)
    if not sum then return nil, err end
    if sum ~= st.sha256 then
      return false, ("%s changed since it was extracted: extract again"):format(self.src)
    end
    -- how it was extracted: a state saved before these were kept does not
    -- say, so extract once more (else a new strip_components or owner would
    -- never be applied)
    if st.strip_components == nil or st.owner == nil then
      return false, ("extract %s into %s again: how it was extracted is not recorded (a state from an older provision)")
        :format(self.src, self.dest)
    end
    local strip = self.strip_components or 0
    if st.strip_components ~= strip then
      return false, ("extract %s into %s again: strip_components %d -> %d"):format(self.src, self.dest,
        st.strip_components, strip)
    end
    if st.owner ~= (self.owner == true) then
      return false, ("extract %s into %s again: owner %s -> %s"):format(self.src, self.dest,
        tostring(st.owner), tostring(self.owner == true))
    end
    for _, name in ipairs(st.top or {}) do
      if not lexists(self.dest .. "/" .. name) then
        return false, ("%s/%s is missing: extract again"):format(self.dest, name)
      end
    end
    return true
  end,
  apply = function(self, ctx)
    local stamp = FS.stamp(self.src)
    local sum, err = sha256_file(self.src)
    if not sum then return nil, err end
    local had_dest = exists(self.dest)
    local res, xerr = C.extract { src = self.src, dest = self.dest,
      strip_components = self.strip_components, owner = self.owner }
    if not res then return nil, xerr end
    -- record what is new, and only that, for teardown
    local st = ctx.state
    if res.created_dest or not had_dest then
      ctx:created { type = "directory", path = self.dest }
    else
      for _, name in ipairs(res.added) do
        ctx:created { type = "entry", path = self.dest .. "/" .. name }
      end
    end
    st.sha256, st.src_stamp, st.dest, st.top = sum, stamp, self.dest, res.top
    st.strip_components, st.owner = self.strip_components or 0, self.owner == true
    ctx:detail(("%d entr%s, %s"):format(res.entries, res.entries == 1 and "y" or "ies", R.human_bytes(res.bytes)))
    return res
  end,
  -- every dest it created (an earlier dest too, when the option changed:
  -- as fs.file removes a file at an earlier path) and every entry it added
  state_revert = true,
  revert = function(self, ctx)
    for _, e in ipairs((ctx.state or {}).created or {}) do
      if e.type == "directory" or e.type == "entry" then
        local ok, err = C.remove_tree(e.path)
        if not ok then return nil, err end
      end
    end
    return true
  end,
}

local FORMATS = { ["tar"] = true, ["tar.gz"] = true, ["tar.xz"] = true, ["zip"] = true }
local function format_of(dest)
  if dest:match("%.tar%.gz$") or dest:match("%.tgz$") then return "tar.gz" end
  if dest:match("%.tar%.xz$") then return "tar.xz" end
  if dest:match("%.zip$") then return "zip" end
  return "tar"
end

M.create = R.define {
  kind = "archive.create",
  reads = R.paths_of("src"),
  writes = R.paths_of("dest"),
  options = {
    src = "string", dest = "string", format = "string?", owner = "string?", mtime = "integer?",
  },
  validate = function(self)
    self.format = self.format or format_of(self.dest)
    if not FORMATS[self.format] then return nil, "format must be tar, tar.gz, tar.xz or zip" end
    if self.owner and self.owner ~= "root" then return nil, 'owner must be "root"' end
    return true
  end,
  describe = function(self) return ("%s archive of %s at %s"):format(self.format, self.src, self.dest) end,
  check = function(self, ctx)
    local st = ctx.state or {}
    if not exists(self.dest) then return false, ("create %s from %s"):format(self.dest, self.src) end
    if not st.sha256 then return false, ("create %s from %s (the existing file is not ours)"):format(self.dest, self.src) end
    local tree, err = C.tree_digest(self.src, self.dest)
    if not tree then return nil, err end
    if tree ~= st.tree or st.format ~= self.format or st.owner ~= self.owner or st.mtime ~= self.mtime then
      return false, ("%s changed: create %s again"):format(self.src, self.dest)
    end
    if sha256_file(self.dest) ~= st.sha256 then
      return false, ("%s changed since it was made: create it again"):format(self.dest)
    end
    return true
  end,
  apply = function(self, ctx)
    local existed = exists(self.dest)
    local tree, terr = C.tree_digest(self.src, self.dest)
    if not tree then return nil, terr end
    local res, err = C.create { src = self.src, dest = self.dest, format = self.format,
      owner = self.owner, mtime = self.mtime }
    if not res then return nil, err end
    local st = ctx.state
    st.tree, st.format, st.owner, st.mtime = tree, self.format, self.owner, self.mtime
    st.sha256 = sha256_file(self.dest)
    R.record_written(ctx, self.dest, st.sha256, existed)
    ctx:detail(("%d entr%s, %s"):format(res.entries, res.entries == 1 and "y" or "ies", R.human_bytes(res.bytes)))
    return res
  end,
  -- the file it created, while it is still what was written (as fs.file)
  state_revert = true,
  revert = function(self, ctx) return R.revert_created_files(self, ctx) end,
}

return M
