-- provision.state: what each apply created and what resources keep between
-- runs (hashes, ETags), saved as JSON in the state folder: by default
-- ./.provision/<recipe>.json (or --state-dir, PROVISION_STATE_DIR). Written
-- atomically. Resources never put a revealed secret in their state
-- (tests/cli/secrets.sh checks); the file is 0600 in a 0700 folder.
local core = require "provision._core"
local json = require "provision.json"

local State = {}
State.__index = State

local function file_name(recipe_name)
  return (recipe_name:gsub("[^%w%.%-_]", "_")) .. ".json"
end

function State.default_dir(o)
  local env = os.getenv("PROVISION_STATE_DIR")   -- set but empty: as unset
  return o.state_dir or (env ~= "" and env) or "./.provision"
end

-- State.exists(dir, recipe_name): has a run of this recipe saved a state?
function State.exists(dir, recipe_name)
  local f = io.open(dir .. "/" .. file_name(recipe_name), "r")
  if f then f:close() end
  return f ~= nil
end

-- State.open(dir, recipe_name) -> state | nil, message
function State.open(dir, recipe_name)
  local self = setmetatable({ dir = dir, path = dir .. "/" .. file_name(recipe_name) }, State)
  local text = core.read_file(self.path)
  if text then
    local data, err = json.decode(text)
    if type(data) ~= "table" then
      return nil, ("state file %s is damaged (%s); move it away to start afresh"):format(self.path, err or "not an object")
    end
    self.data = data
  else
    self.data = {}
  end
  self.data.version = 1
  self.data.recipe = recipe_name
  self.data.steps = self.data.steps or {}
  return self
end

-- the saved table of resource i of a step (a fresh {} if none or another kind)
function State:resource(step_name, i, kind)
  local s = self.data.steps[step_name]
  local r = s and s.resources and s.resources[i] or s and s.resources and s.resources[tostring(i)]
  if r and r.kind == kind and type(r.state) == "table" then return r.state end
  return {}
end

-- what an earlier resource of the step recorded, where the step now has
-- another kind or none (resources: the step's, by their kind), moves to
-- data.replaced for teardown to undo. Apply calls it through set_step;
-- teardown before it reverts, as the recipe may have changed since.
function State:retire(step_name, resources)
  local old = self.data.steps[step_name]
  local gone = {}
  for i, r in ipairs(old and type(old.resources) == "table" and old.resources or {}) do
    if type(r) == "table" and type(r.state) == "table" and next(r.state) ~= nil
       and (resources[i] == nil or resources[i].kind ~= r.kind) then
      gone[#gone + 1] = r
      old.resources[i] = { kind = r.kind, state = {} }
    end
  end
  if #gone > 0 then
    self.data.replaced = self.data.replaced or json.array {}
    table.insert(self.data.replaced, { step = step_name, applied = old.applied, resources = json.array(gone) })
    self.dirty = true
  end
end

function State:set_step(step_name, resources)
  self:retire(step_name, resources)
  self.data.steps[step_name] = { resources = json.array(resources), applied = core.time() }
  self.dirty = true
end

-- the resources data.replaced keeps: { step, applied, resources } entries
function State:replaced() return self.data.replaced or {} end

function State:forget_replaced(entry)
  for i, e in ipairs(self.data.replaced or {}) do
    if e == entry then
      table.remove(self.data.replaced, i)
      if #self.data.replaced == 0 then self.data.replaced = nil end
      self.dirty = true
      return
    end
  end
end

function State:forget(step_name)
  if self.data.steps[step_name] then
    self.data.steps[step_name] = nil
    self.dirty = true
  end
end

function State:has(step_name) return self.data.steps[step_name] ~= nil end

function State:empty() return next(self.data.steps) == nil and self.data.replaced == nil end

function State:save()
  if not self.dirty then return true end
  local ok, err = core.mkdirs(self.dir, 448)  -- 0700: state can name private paths
  if not ok then return nil, err end
  if self:empty() then
    os.remove(self.path)
    self.dirty = false
    return true
  end
  -- secrets: json.encode writes a secret object as its mask
  local text = json.encode(self.data, { pretty = true }) .. "\n"
  ok, err = core.write_atomic(self.path, text, 384)  -- 0600
  if not ok then return nil, "saving state: " .. err end
  self.dirty = false
  return true
end

return State
