-- provision.fleet.bundle: what travels to a host on ssh's stdin for one
-- run: the recipe, the files beside it and the run's settings, as one
-- stream the remote side reads before it starts:
--
--   provision-bundle 1\n
--   {JSON header}\n            verb, recipe (its path in the bundle), vars
--                              (hex: any bytes, secrets included: never in
--                              argv or the environment), flags, files
--   the files' bytes, one after another, in the header's order
--
-- The files: every file under the folder of each file the recipe loaded
-- (the recipe, what it includes, its plugins), so that what a recipe finds
-- beside itself (debug.getinfo's source: templates, scripts) is there too;
-- paths relative to the folders' common parent. State folders (.provision),
-- .git and anything but regular files and folders are left out.
local FS = require "provision._fs"
local core = require "provision._core"
local json = require "provision.json"

local M = {}

M.MAGIC = "provision-bundle 1"
M.MAX_BYTES = 64 << 20
M.MAX_FILES = 20000
local SKIP = { [".provision"] = true, [".git"] = true }
-- what the host's run needs of the command line (-q and --json shape the
-- controller's output only: the host always answers in --json)
local FLAGS = { "only", "skip", "tags", "skip_tags", "from", "timeout", "verbose", "wait_lock", "adopt_state", "plan" }

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local function unhex(h)
  if #h % 2 ~= 0 or h:find("[^%x]") then return nil end
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function folder_of(p) return p:match("^(.*)/[^/]*$") or "/" end

-- the deepest folder holding every one of dirs (absolute)
local function common_parent(dirs)
  local root = dirs[1]
  for _, d in ipairs(dirs) do
    while not (d == root or d:sub(1, #root + 1) == root .. "/" or root == "/") do
      root = folder_of(root)
      if root == "" then root = "/" end
    end
  end
  return root
end

-- walk(dir, rel, out, acc): every regular file under dir, depth first, sorted
local function walk(dir, rel, out, acc)
  local names, err = FS.listdir(dir)
  if not names then return nil, err end
  for _, n in ipairs(names) do
    if not SKIP[n] then
      local p, r = dir .. "/" .. n, rel == "" and n or (rel .. "/" .. n)
      local st = FS.lstat(p)
      if st and st.type == "directory" then
        local ok, werr = walk(p, r, out, acc)
        if not ok then return nil, werr end
      elseif st and st.type == "file" and not acc.seen[r] then
        acc.seen[r] = true
        acc.bytes = acc.bytes + st.size
        if #out >= M.MAX_FILES or acc.bytes > M.MAX_BYTES then
          return nil, ("the recipe's folder %s holds more than %d files or %d MiB: too much to send to "
            .. "every host (keep the recipe in a folder of its own)"):format(acc.top, M.MAX_FILES, M.MAX_BYTES >> 20)
        end
        out[#out + 1] = { path = r, abs = p, mode = st.mode & tonumber("777", 8) }
      end
    end
  end
  return true
end

-- build(recipe, o) -> a bundle (M.text(b, vars) is its stream for a
-- host with those variables) | nil, why
function M.build(recipe, o)
  local dirs, seen = {}, {}
  for _, f in ipairs(recipe.files) do
    local abs, err = FS.realpath(f)
    if not abs then return nil, err end
    local d = folder_of(abs)
    if not seen[d] then seen[d] = true; dirs[#dirs + 1] = d end
  end
  local root = common_parent(dirs)
  local files, acc = {}, { bytes = 0, seen = {}, top = root }
  table.sort(dirs)
  for _, d in ipairs(dirs) do
    local rel = d == root and "" or d:sub(#root + 2)
    local ok, err = walk(d, rel, files, acc)
    if not ok then return nil, err end
  end
  local main = assert(FS.realpath(o.recipe))
  local header = { verb = o.verb, recipe = main:sub(#root + 2), vars = {}, flags = {}, files = {} }
  for _, f in ipairs(FLAGS) do header.flags[f] = o[f] end
  local parts = {}
  for i, f in ipairs(files) do
    local content, err = core.read_file(f.abs)
    if not content then return nil, ("%s: %s"):format(f.abs, err or "cannot read") end
    header.files[i] = { path = f.path, mode = f.mode, size = #content }
    parts[i] = content
  end
  return { header = header, body = table.concat(parts), files = #files, bytes = acc.bytes, recipe = header.recipe }
end

-- text(b, vars) -> the stream a host reads: b with these { K = "value" }
function M.text(b, vars)
  local hexed = {}
  for k, v in pairs(vars or {}) do hexed[k] = hex(v) end
  b.header.vars = hexed
  return M.MAGIC .. "\n" .. json.encode(b.header) .. "\n" .. b.body
end

-- a path inside the bundle: relative, no "..", no empty part
local function safe_path(p)
  if type(p) ~= "string" or p == "" or p:sub(1, 1) == "/" or p:find("\0", 1, true) then return false end
  for part in (p .. "/"):gmatch("([^/]*)/") do
    if part == "" or part == "." or part == ".." then return false end
  end
  return true
end

-- read(f) -> header, { content... } | nil, why: a bundle from f (stdin),
-- checked: the magic line, the header's shape, every path, the sizes
function M.read(f)
  if f:read("l") ~= M.MAGIC then return nil, "not a provision bundle (or another version of provision sent it)" end
  local line = f:read("l")
  local ok, h = pcall(json.decode, line or "")
  if not ok or type(h) ~= "table" or type(h.files) ~= "table" or type(h.recipe) ~= "string"
     or type(h.vars) ~= "table" or type(h.flags) ~= "table" then
    return nil, "a damaged bundle header"
  end
  if not safe_path(h.recipe) then return nil, "a bundle recipe path outside the bundle" end
  local total, contents = 0, {}
  for i, e in ipairs(h.files) do
    if type(e) ~= "table" or not safe_path(e.path) or math.type(e.size) ~= "integer" or e.size < 0
       or math.type(e.mode) ~= "integer" then
      return nil, ("a damaged bundle entry %d"):format(i)
    end
    total = total + e.size
    if total > M.MAX_BYTES then return nil, "a bundle larger than it may be" end
    local c = e.size > 0 and f:read(e.size) or ""
    if c == nil or #c ~= e.size then return nil, "a bundle cut short" end
    contents[i] = c
  end
  for k, v in pairs(h.vars) do
    local s = type(k) == "string" and type(v) == "string" and unhex(v)
    if not s then return nil, "a damaged bundle variable" end
    h.vars[k] = s
  end
  return h, contents
end

return M
