-- provision.cache: the user's cache folder, ${XDG_CACHE_HOME:-~/.cache}/
-- provision, for what no one else may touch or plant: Compose's detection
-- (compose-detected.json: the command provision will run), ssh's master
-- sockets of a fleet run (ssh/), a host's run folders (run.*) and the
-- binaries sent to it (<sha256>/, made by the upload command in
-- fleet/init.lua, always under ~/.cache). ssh and the shell name these by
-- path, so a path is trusted only as sshd's StrictModes trusts one: the
-- anchor (XDG_CACHE_HOME if it is a folder, else HOME; links resolved) and
-- every folder above it, and each folder below it, belong to root or to us
-- and no one else can write to them (a sticky folder such as /tmp aside:
-- others cannot move what is ours there). Below the anchor a link or
-- another user's folder is refused, not followed or used: HOME may be
-- another user's (sudo -E), who could have planted one first. What is
-- missing is made 0700; provision/ and the subfolder must be ours and
-- private.
local FS = require "provision._fs"

local M = {}

local PRIVATE, OTHERS, GROUP_OTHERS_W, STICKY = tonumber("700", 8), tonumber("077", 8), tonumber("022", 8),
  tonumber("1000", 8)

-- why path (lstat's st) cannot be trusted as a folder on the way, or nil
local function untrusted(path, st)
  if st.type == "link" then return path .. " is a symbolic link" end
  if st.type ~= "directory" then return path .. " is not a folder" end
  local me = FS.euid()
  if st.uid ~= 0 and st.uid ~= me then
    return ("%s belongs to uid %d, not to us (uid %d) or root"):format(path, st.uid, me)
  end
  if st.mode & GROUP_OTHERS_W ~= 0 and st.mode & STICKY == 0 then
    return ("%s can be changed by other users (mode %o)"):format(path, st.mode & tonumber("7777", 8))
  end
end

local function refuse(why)
  return nil, why .. ": refusing to keep provision's private files under it (its cache folder)"
end

-- the anchor and the folders below it: XDG_CACHE_HOME's real path and
-- {"provision"}, else HOME's and {".cache", "provision"}
local function anchor()
  local x = os.getenv("XDG_CACHE_HOME")
  if x and x:sub(1, 1) == "/" then
    local st = FS.stat(x)
    if st and st.type == "directory" then return FS.realpath(x), { "provision" } end
  end
  local home = os.getenv("HOME")
  if not home or home:sub(1, 1) ~= "/" then return nil, "HOME is not set to an absolute path" end
  local real, rerr = FS.realpath(home)
  if not real then return nil, "HOME: " .. tostring(rerr) end
  return real, { ".cache", "provision" }
end

-- dir([sub[, only_look]]) -> path | nil, why: ${XDG_CACHE_HOME:-~/.cache}/
-- provision[/sub], made if need be (only_look: nil, "missing" if it is not
-- there: a plan makes nothing)
function M.dir(sub, only_look)
  local real, below = anchor()
  if not real then return nil, below end
  local path = ""
  for part in real:gmatch("[^/]+") do   -- from / down to the anchor: nothing there may be another user's
    path = path .. "/" .. part
    local st, serr = FS.lstat(path)
    if not st then return nil, serr end
    local why = untrusted(path, st)
    if why then return refuse(why) end
  end
  below[#below + 1] = sub
  for i, part in ipairs(below) do
    path = path .. "/" .. part
    local st = FS.lstat(path)
    if not st and only_look then return nil, "missing" end
    if not st then
      local ok, err = FS.mkdir(path, PRIVATE)
      st = FS.lstat(path)   -- made, or made by another run meanwhile
      if not st then return nil, err end
      if not ok and st.type ~= "directory" then return nil, err end
    end
    local why = untrusted(path, st)
    if why then return refuse(why) end
    if i > #below - (sub and 2 or 1) and (st.uid ~= FS.euid() or st.mode & OTHERS ~= 0) then
      return refuse(("%s is not a private folder of ours (owner uid %d, mode %o; want uid %d, 0700)")
        :format(path, st.uid, st.mode & tonumber("7777", 8), FS.euid()))
    end
  end
  return path
end

return M
