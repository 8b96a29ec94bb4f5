-- provision.fleet.inventory: -i FILE, the hosts of a fleet in groups, with
-- variables per group and per host. The file is Lua that returns a table:
--
--   return {
--     web = {
--       vars = { port = 8080 },          -- every host of the group
--       hosts = {
--         "web1",                        -- a host, as ssh names it
--         web2 = { port = 9090 },        -- a host with its own variables
--       },
--     },
--     db = { hosts = { "db1" } },
--   }
--
-- A host's variables: its groups' (in group-name order), then its own;
-- `-e` on the command line wins over both. They act as the recipe's `-e`
-- values on that host; one the recipe does not declare is left out.
local M = {}

local function is_value(v) return type(v) == "string" or type(v) == "number" or type(v) == "boolean" end

local function check_vars(where, vars)
  if vars == nil then return {} end
  if type(vars) ~= "table" then return nil, where .. ": vars must be a table of name = value" end
  local out = {}
  for k, v in pairs(vars) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      return nil, ("%s: bad variable name %s"):format(where, tostring(k))
    end
    if not is_value(v) then return nil, ("%s: variable '%s' must be a string, number or boolean"):format(where, k) end
    out[k] = tostring(v)
  end
  return out
end

local function host_name_ok(h) return type(h) == "string" and h ~= "" and h:sub(1, 1) ~= "-" and not h:find("[%s%c,]") end

-- load(path) -> { groups = { name = { hosts = { h, ... }, vars = {} } }, hosts = { h = { vars = {} } },
--                 order = { h, ... } } | nil, "path: why"
function M.load(path)
  local chunk, err = loadfile(path, "t", { os = { getenv = os.getenv }, tostring = tostring, pairs = pairs,
    ipairs = ipairs, string = string, table = table, math = math })
  if not chunk then return nil, err end
  local ok, t = pcall(chunk)
  if not ok then return nil, tostring(t) end
  if type(t) ~= "table" then return nil, path .. ": must return a table of groups" end
  local inv = { groups = {}, hosts = {}, order = {} }
  local names = {}
  for g in pairs(t) do
    if type(g) ~= "string" or not g:match("^[%w_.-]+$") then return nil, ("%s: bad group name %s"):format(path, tostring(g)) end
    names[#names + 1] = g
  end
  table.sort(names)
  for _, g in ipairs(names) do
    local spec = t[g]
    local where = ("%s: group %s"):format(path, g)
    if type(spec) ~= "table" or type(spec.hosts) ~= "table" then return nil, where .. ": expected { hosts = { ... } }" end
    for k in pairs(spec) do
      if k ~= "hosts" and k ~= "vars" then return nil, ("%s: unknown field '%s' (fields: hosts, vars)"):format(where, tostring(k)) end
    end
    local gvars, verr = check_vars(where, spec.vars)
    if not gvars then return nil, verr end
    local group = { hosts = {}, vars = gvars }
    local listed = {}
    for k, v in pairs(spec.hosts) do
      local h, hv = v, nil
      if math.type(k) ~= "integer" then h, hv = k, v end
      if not host_name_ok(h) then return nil, ("%s: bad host %s"):format(where, tostring(h)) end
      local own, herr = check_vars(where .. ", host " .. h, hv)
      if not own then return nil, herr end
      listed[#listed + 1] = h
      if not inv.hosts[h] then inv.hosts[h] = { vars = {} }; inv.order[#inv.order + 1] = h end
      for kk, vv in pairs(own) do inv.hosts[h].vars[kk] = vv end
    end
    table.sort(listed)
    group.hosts = listed
    inv.groups[g] = group
  end
  table.sort(inv.order)
  return inv
end

-- a --limit word as a Lua pattern: * and ? are globs, the rest literal
local function glob(word)
  return "^" .. word:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

-- select(inv, pattern) -> { host, ... } | nil, why: a comma list of group
-- or host names or globs; "all" is every host
function M.select(inv, pattern)
  local out, seen = {}, {}
  local function add(h) if not seen[h] then seen[h] = true; out[#out + 1] = h end end
  for word in (pattern .. ","):gmatch("([^,]*),") do
    word = word:match("^%s*(.-)%s*$")
    local hit = false
    if word == "all" then for _, h in ipairs(inv.order) do add(h) end; hit = true end
    local pat = glob(word)
    local groups = {}
    for g in pairs(inv.groups) do if g:find(pat) then groups[#groups + 1] = g end end
    table.sort(groups)
    for _, g in ipairs(groups) do for _, h in ipairs(inv.groups[g].hosts) do add(h) end; hit = true end
    for _, h in ipairs(inv.order) do if h:find(pat) then add(h); hit = true end end
    if not hit then return nil, ("--limit %s: no group or host matches '%s'"):format(pattern, word) end
  end
  return out
end

-- vars_of(inv, host) -> { K = "V" }: its groups' (by group name), then its own
function M.vars_of(inv, host)
  local out, groups = {}, {}
  for g, spec in pairs(inv.groups) do
    for _, h in ipairs(spec.hosts) do if h == host then groups[#groups + 1] = g end end
  end
  table.sort(groups)
  for _, g in ipairs(groups) do for k, v in pairs(inv.groups[g].vars) do out[k] = v end end
  for k, v in pairs((inv.hosts[host] or { vars = {} }).vars) do out[k] = v end
  return out
end

return M
