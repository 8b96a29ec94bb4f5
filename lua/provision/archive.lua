-- provision.archive: extract archives safely, create them reproducibly.
-- The C half (provision._archive, modules/archive/) does the work; here
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
--     max_size (default 1GiB) and max_entries (default 100000) bound what
--     it may expand to (0: no limit); past either, nothing is extracted.
--     check: `creates` exists (when given); else the archive's SHA-256 is
--     the one last extracted (read only when its stamp changed), with the
--     same strip_components and owner, and every entry it placed is there
--     as placed (a file edited or removed since is drift: extract again).
--     revert: what it placed and still is as placed (an edited file is
--     left), folders only when empty (files a user added keep theirs),
--     dest only when it made it; never through a link below dest.
--   archive.create { src, dest, format?, owner?, mtime? }
--     src's contents into dest (tar, tar.gz, tar.xz or zip; default: from
--     dest's name, else tar). Sorted entries, no atime/ctime, no gzip
--     timestamp; owner = "root" makes every entry 0:0 root/root (an image
--     root filesystem); mtime = N sets every entry's mtime. check: dest is
--     the file we made and src has not changed since (names, types, modes,
--     sizes, mtimes, owners, link targets). A dest inside src is not
--     archived (nor its temp file), nor part of what "src changed" means.
--   archive.list(path), archive.tree_digest(path)
local R = require "provision.resource"
local FS = require "provision._fs"
-- libarchive is loaded at first use: a no-op check of a download recipe
-- need not load it, only a check that must look into what was extracted
local C_mod
local function load_c()
  C_mod = C_mod or require "provision._archive"
  return C_mod
end

local M = {}
M.list = function(...) return load_c().list(...) end
M.tree_digest = function(...) return load_c().tree_digest(...) end

local folder_of = R.folder_of
local function base_of(p) return (p:gsub("/+$", ""):match("([^/]*)$")) end

-- the staging folder a killed extraction left (its name is in the state
-- before it is made): removed, when it is still ours
local function remove_staging(st)
  local sg = st.staging
  if type(sg) == "table" and type(sg.name) == "string" and type(sg.dest) == "string"
     and not sg.name:find("/", 1, true) then
    -- without its identity (killed before it was recorded) only when empty
    FS.remove_own(folder_of(sg.dest) .. "/" .. sg.name, type(sg.id) == "string" and sg.id or nil)
  end
  st.staging = nil
end

-- a state from before manifests: what it recorded of dest
local function legacy_created_dest(st)
  for _, e in ipairs(type(st.created) == "table" and st.created or {}) do
    if type(e) == "table" and e.type == "directory" and e.path == st.dest then return true end
  end
  return false
end

local DEFAULT_MAX_SIZE, DEFAULT_MAX_ENTRIES = 1024 * 1024 * 1024, 100000

M.extract = R.define {
  kind = "archive.extract",
  reads = R.paths_of("src"),
  writes = R.paths_of("dest"),
  options = {
    src = { "string", doc = "the archive: tar, tar.gz, tar.bz2, tar.xz, tar.zst or zip" },
    dest = { "string", path = true, doc = "the folder to extract into (made when missing; folders merge, files replace files)" },
    strip_components = { "integer?", doc = "how many leading folders to drop from each entry's path" },
    creates = { "string?", doc = "a path: when it exists, the archive counts as extracted (no drift check)" },
    owner = { "boolean?", doc = "true: keep the owners the archive names (else the running user owns every entry)" },
    max_size = { "size?", doc = "the most the archive may expand to (default 1GiB; 0: no limit)" },
    max_entries = { "integer?", doc = "the most entries it may have (default 100000; 0: no limit)" },
  },
  validate = function(self)
    if self.strip_components and self.strip_components < 0 then
      return nil, "strip_components must be >= 0"
    end
    if self.max_entries and self.max_entries < 0 then return nil, "max_entries must be >= 0 (0: no limit)" end
    return true
  end,
  describe = function(self) return ("extract %s into %s"):format(self.src, self.dest) end,
  check = function(self, ctx)
    if self.creates then
      if FS.exists(self.creates) then return true end   -- a dangling link counts
      return false, ("extract %s into %s (%s is missing)"):format(self.src, self.dest, self.creates)
    end
    local st = ctx.state or {}
    if not FS.stat(self.dest) or not st.sha256 or st.dest ~= self.dest then
      return false, ("extract %s into %s"):format(self.src, self.dest)
    end
    -- the archive read again only when it is not the very file extracted
    -- last (its stamp: device, inode, size, mtime, ctime): a no-op re-run
    -- of a 1 GiB archive costs a stat, not ~1 s of SHA-256
    local sum, err = R.known_digest(self.src, st.src_stamp, st.sha256, FS.sha256)
    if not sum then return nil, err end
    if sum ~= st.sha256 then
      return false, ("%s changed since it was extracted: extract again"):format(self.src)
    end
    -- how it was extracted and what it placed: a state saved before these
    -- were kept does not say, so extract once more (else a new
    -- strip_components or owner would never be applied, and teardown would
    -- not know what it may remove)
    if st.strip_components == nil or st.owner == nil or type(st.files) ~= "table" then
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
    -- drift: every entry it placed is still there, as placed
    local ok, why = load_c().verify { dest = self.dest, files = st.files }
    if not ok then return false, why .. ": extract again" end
    return true
  end,
  apply = function(self, ctx)
    local C = load_c()
    local st = ctx.state
    remove_staging(st)   -- a killed run's
    local stamp = FS.stamp(self.src)
    local sum, err = FS.sha256(self.src)
    if not sum then return nil, err end
    -- the staging folder's name in the state before it exists, its
    -- identity once it does: only that very folder is ever removed
    st.staging = { name = FS.temp_name("." .. base_of(self.dest) .. ".provision-extract"), dest = self.dest }
    if ctx.checkpoint then ctx:checkpoint() end
    local sid, serr = C.stage { dest = self.dest, name = st.staging.name }
    if not sid then st.staging = nil; return nil, serr end
    st.staging.id = sid
    if ctx.checkpoint then ctx:checkpoint() end
    local res, xerr = C.extract { src = self.src, dest = self.dest, staging = st.staging.name, staging_id = sid,
      strip_components = self.strip_components, owner = self.owner,
      max_size = self.max_size or DEFAULT_MAX_SIZE, max_entries = self.max_entries or DEFAULT_MAX_ENTRIES }
    remove_staging(st)   -- gone already when it worked, or when extract got to clean it up
    if not res then return nil, xerr end
    -- what reached dest, for teardown and the drift check; what an earlier
    -- extraction into this dest placed stays its own when extracted over
    local same = st.dest == self.dest
    local before = same and type(st.files) == "table" and st.files or {}
    local ours_before = same and (st.created_dest or legacy_created_dest(st))
    if not same and type(st.files) == "table" then
      -- what it placed in an earlier dest stays its own, for teardown
      st.earlier = st.earlier or {}
      table.insert(st.earlier, { dest = st.dest, dest_id = st.dest_id, files = st.files, created_dest = st.created_dest })
    end
    for rel, code in pairs(res.files) do
      if code:sub(1, 1) == "=" and (ours_before or (before[rel] and before[rel]:sub(1, 1) ~= "=")) then
        res.files[rel] = code:sub(2)
      end
    end
    st.created_dest = res.created_dest or ours_before or nil
    st.files, st.dest_id, st.created = res.files, res.dest_id, nil
    st.sha256, st.src_stamp, st.dest, st.top = sum, stamp, self.dest, nil
    st.strip_components, st.owner = self.strip_components or 0, self.owner == true
    ctx:detail(("%d entr%s, %s"):format(res.entries, res.entries == 1 and "y" or "ies", R.human_bytes(res.bytes)))
    return res
  end,
  -- what it placed (into this dest or an earlier one), each while it is
  -- the very thing placed; folders only when empty; dest only when it made
  -- it; never through a link below dest
  state_revert = true,
  revert = function(self, ctx)
    local st = ctx.state or {}
    remove_staging(st)
    if type(st.files) ~= "table" then
      if legacy_created_dest(st) or type(st.created) == "table" and #st.created > 0 then
        ctx:detail(("left %s: recorded by an older provision without the list of what it extracted; "
          .. "remove it by hand"):format(tostring(st.dest or self.dest)))
      end
      return false
    end
    local removed, nleft, first, last_dest = 0, 0, nil, st.dest
    local records = {}
    for _, e in ipairs(type(st.earlier) == "table" and st.earlier or {}) do records[#records + 1] = e end
    records[#records + 1] = { dest = st.dest, dest_id = st.dest_id, files = st.files, created_dest = st.created_dest }
    for i = #records, 1, -1 do
      local e = records[i]
      if type(e) == "table" and type(e.dest) == "string" and type(e.files) == "table" then
        local res, err = load_c().unextract { dest = e.dest, dest_id = e.dest_id, files = e.files,
          created_dest = e.created_dest }
        if not res then return nil, err end
        for _, why in ipairs(res.left) do if ctx.log then ctx:log("left " .. why) end end
        removed, nleft = removed + res.removed, nleft + res.nleft
        first = first or res.left[1]
      end
    end
    if nleft > 0 then
      ctx:detail(("removed %d entr%s, left %d: %s%s"):format(removed, removed == 1 and "y" or "ies",
        nleft, first, nleft > 1 and (" (+%d more)"):format(nleft - 1) or ""))
    elseif removed > 0 then
      ctx:detail(("removed %s (%d entr%s)"):format(last_dest, removed, removed == 1 and "y" or "ies"))
    end
    return removed > 0
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
  owns = "dest",
  reads = R.paths_of("src"),
  writes = R.paths_of("dest"),
  options = {
    src = { "string", doc = "the folder whose contents are packed" },
    dest = { "string", path = true, doc = "the archive file to write" },
    format = { "string?", doc = "tar, tar.gz, tar.xz or zip (default: from dest's name, else tar)" },
    owner = { "string?", doc = "\"root\": every entry owned by root:root (else the numeric owners on disk)" },
    mtime = { "integer?", doc = "seconds since 1970: every entry's mtime (with owner: the same tree, the same bytes)" },
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
    if not FS.stat(self.dest) then return false, ("create %s from %s"):format(self.dest, self.src) end
    if not st.sha256 then return false, ("create %s from %s (the existing file is not ours)"):format(self.dest, self.src) end
    local tree, err = load_c().tree_digest(self.src, self.dest)
    if not tree then return nil, err end
    if tree ~= st.tree or st.format ~= self.format or st.owner ~= self.owner or st.mtime ~= self.mtime then
      return false, ("%s changed: create %s again"):format(self.src, self.dest)
    end
    if FS.sha256(self.dest) ~= st.sha256 then
      return false, ("%s changed since it was made: create it again"):format(self.dest)
    end
    return true
  end,
  apply = function(self, ctx)
    local existed = FS.stat(self.dest) ~= nil
    local tree, terr = load_c().tree_digest(self.src, self.dest)
    if not tree then return nil, terr end
    local res, err = load_c().create { src = self.src, dest = self.dest, format = self.format,
      owner = self.owner, mtime = self.mtime }
    if not res then return nil, err end
    local st = ctx.state
    st.tree, st.format, st.owner, st.mtime = tree, self.format, self.owner, self.mtime
    st.sha256 = FS.sha256(self.dest)
    R.record_written(ctx, self.dest, st.sha256, existed, nil, FS.euid())   -- (ours: another user's in its place stays)
    ctx:detail(("%d entr%s, %s"):format(res.entries, res.entries == 1 and "y" or "ies", R.human_bytes(res.bytes)))
    return res
  end,
  -- the file it created, while it is still what was written (as fs.file)
  state_revert = true,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = function(self, ctx) return R.revert_created_files(self, ctx) end,
}

return M
