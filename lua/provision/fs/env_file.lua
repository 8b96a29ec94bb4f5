-- provision.fs.env_file: fs.env_file, a .env file (provision.envfile's
-- format, what Compose reads). Its plan names the keys that change, never
-- a secret's value.
local C = require "provision._fs"
local R = require "provision.resource"
local core = require "provision._core"
local envfmt = require "provision.envfile"
local B = require "provision.fs.base"
local F = require "provision.fs.file"

local E = {}
local EUID = C.euid()

local function show_value(v)
  if v:find("[%c ]") or v == "" then return (("%q"):format(v):gsub("\\\n", "\\n")) end
  return v
end

-- the change lines, key by key, from the .env at self.path to self.values.
-- A value that is a secret now, was one at the last apply, or is masked
-- is not shown
local function key_changes(self, ctx, changes)
  local old, unreadable = envfmt.decode(core.read_file(self.path) or "", self.path)
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
  return changes
end

E.env_file = R.define {
  kind = "fs.env_file",
  owns = "path",
  writes = F.content_writes(function(self) return envfmt.encode(self.values, R.reveal) end),
  options = {
    path = { "string", path = true, doc = "the file (a .env)" },
    values = { "table", doc = "the variables, { KEY = value }: Compose reads each back as written (may be secrets)" },
    mode = { "mode", default = "0600", doc = "its mode" },
    owner = { "string?", doc = "the user who owns it (a name)" },
    group = { "string?", doc = "its group (a name)" },
    backup = { "boolean?", doc = "true: keep the content it replaces beside it; teardown puts the oldest back" },
  },
  validate = function(self)
    local ok, err = F.validate(self)
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
    -- the usual re-run: our file, its content and mode as they are to be:
    -- one call, nothing hashed (as fs.file's check)
    if not (self.owner or self.group) and C.holds(self.path, content, self.mode, EUID) then return true end
    local st, perr = B.probe(self.path, false, content)   -- (compared: st.same)
    if st == nil then return nil, perr end
    local replace = st and F.replace_changes(self, st)
    if replace then return false, replace end
    if not st then
      local changes = { ("+ %s (mode %s)"):format(self.path, B.octal(self.mode)) }
      for _, k in ipairs(envfmt.sorted_keys(self.values)) do changes[#changes + 1] = "+ " .. k end
      return F.would(self, ctx, changes, true)
    end
    if st.type ~= "file" then
      return false, { ("! %s exists and is a %s, not a file"):format(self.path, st.type) }
    end
    local changes = {}
    if not st.same then
      key_changes(self, ctx, changes)
      if self.backup then changes[#changes + 1] = F.BACKUP_NOTE end
    end
    B.attr_changes(self, st, "", changes)
    if #changes == 0 then return true end
    return F.would(self, ctx, changes, false)
  end,
  apply = function(self, ctx)
    local content, err = envfmt.encode(self.values, R.reveal)
    if not content then return nil, self.path .. ": " .. err end
    -- which keys held a secret: the next plan does not show their old value
    local secret_keys = {}
    for _, k in ipairs(envfmt.sorted_keys(self.values)) do
      if R.is_secret(self.values[k]) then secret_keys[#secret_keys + 1] = k end
    end
    ctx.state.secret_keys = secret_keys
    return F.apply(self, ctx, content, #secret_keys > 0)
  end,
  plan_revert = true,   -- revert with ctx.plan: what it would do, nothing done
  revert = F.revert,
  state_revert = true,
  sync_later = true,    -- its write may wait for the batch's sync (run.lua)
}

return E
