-- provision.fleet.cache: ~/.cache/provision, where a fleet run keeps what
-- no one else may touch: ssh's master sockets (ssh/, on the controller), a
-- host's run folders (run.*) and the binaries sent to it (<sha256>/, made
-- by the upload command in fleet/init.lua). ssh and the shell name these
-- by path, so a path is trusted only as sshd's StrictModes trusts one:
-- HOME (links resolved) and every folder above it, and .cache, provision
-- and the subfolder below it, belong to root or to us and no one else can
-- write to them (a sticky folder such as /tmp aside: others cannot move
-- what is ours there). Below HOME a link or another user's folder is
-- refused, not followed or used: HOME may be another user's (sudo -E), who
-- could have planted one first. What is missing is made 0700;
-- ~/.cache/provision and the subfolder must be ours and private.
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
  return nil, why .. ": refusing to keep provision's private files under it (~/.cache/provision)"
end

-- dir([sub]) -> path | nil, why: ~/.cache/provision[/sub], made if need be
function M.dir(sub)
  local home = os.getenv("HOME")
  if not home or home:sub(1, 1) ~= "/" then return nil, "HOME is not set to an absolute path" end
  local real, rerr = FS.realpath(home)
  if not real then return nil, "HOME: " .. tostring(rerr) end
  local path = ""
  for part in real:gmatch("[^/]+") do   -- from / down to HOME: nothing there may be another user's
    path = path .. "/" .. part
    local st, serr = FS.lstat(path)
    if not st then return nil, serr end
    local why = untrusted(path, st)
    if why then return refuse(why) end
  end
  for i, part in ipairs { ".cache", "provision", sub } do
    path = path .. "/" .. part
    local st = FS.lstat(path)
    if not st then
      local ok, err = FS.mkdir(path, PRIVATE)
      st = FS.lstat(path)   -- made, or made by another run meanwhile
      if not st then return nil, err end
      if not ok and st.type ~= "directory" then return nil, err end
    end
    local why = untrusted(path, st)
    if why then return refuse(why) end
    if i > 1 and (st.uid ~= FS.euid() or st.mode & OTHERS ~= 0) then
      return refuse(("%s is not a private folder of ours (owner uid %d, mode %o; want uid %d, 0700)")
        :format(path, st.uid, st.mode & tonumber("7777", 8), FS.euid()))
    end
  end
  return path
end

return M
