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
-- Every write is atomic (temp file, rename; fsync'd, or in the runner's
-- batch one syncfs for many files: provision.batch). apply records what it
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
--
-- The parts: fs.base (what they share), fs.file (the file family and
-- fs.file), fs.template, fs.env_file, fs.folders (fs.directory, fs.absent),
-- fs.link (fs.symlink).
local C = require "provision._fs"
local R = require "provision.resource"
local core = require "provision._core"
local lazy = require "provision.lazy"
local B = require "provision.fs.base"

local M = {}
for k, v in pairs(C) do M[k] = v end

-- A mode as recipes write it ("0644", see R.checkers.mode), or nil. The
-- parts take modes as numbers already checked; these primitives take
-- them as recipes write them. An error names the recipe's line.
local function mode_arg(fname, mode)
  if mode == nil then return nil end
  local m, why = R.checkers.mode(mode)
  if not m then error(fname .. ": mode must be " .. why, 3) end
  return m
end

-- the core's whole-file read and atomic write (core/atomicio.c), which the
-- state file uses too. write(path, data [, mode [, uid, gid]]) -> true |
-- nil, msg, errno; the new file has its mode and owner before it appears.
M.write = function(path, data, mode, uid, gid)
  return core.write_atomic(path, data, mode_arg("fs.write", mode), uid, gid)
end
M.read = core.read_file
M.mkdir = function(path, mode) return C.mkdir(path, mode_arg("fs.mkdir", mode)) end
M.chmod = function(path, mode)
  return C.chmod(path, mode_arg("fs.chmod", mode) or error("fs.chmod: a mode is required", 2))
end
M.mkdirs = function(path, mode) return B.mkdirs(path, mode_arg("fs.mkdirs", mode) or B.DIR_MODE) end
M.octal = B.octal
M.file = require("provision.fs.file").file

-- fs.symlink { path =, target = } is the resource; fs.symlink(target, path)
-- the primitive
M.symlink = function(a, ...)
  if type(a) == "table" then return require("provision.fs.link").symlink(a) end
  return C.symlink(a, ...)
end

-- The other parts load when a recipe first uses them (provision.lazy): a
-- no-op of fs.file steps loads none of them, 24 KB of bytecode fewer.
lazy.fields(M, {
  directory = lazy.part("provision.fs.folders", "directory"),
  absent = lazy.part("provision.fs.folders", "absent"),
  template = lazy.part("provision.fs.template", "template"),
  render = lazy.part("provision.fs.template", "render"),
  env_file = lazy.part("provision.fs.env_file", "env_file"),
  envfile = function() return require "provision.envfile" end,
})
R.later("fs.directory", "provision.fs.folders")
R.later("fs.absent", "provision.fs.folders")
R.later("fs.template", "provision.fs.template")
R.later("fs.env_file", "provision.fs.env_file")
R.later("fs.symlink", "provision.fs.link")

return M
