-- provision.env: the globals a recipe (or a --script) sees: the standard
-- library, plus the built-in modules, each loaded on first use so a recipe
-- pays only for what it touches.
local M = {}

M.modules = {
  "archive", "compose", "docker", "exec", "fs", "http", "json", "pkg",
  "service", "stack", "swarm", "sys", "yaml",
}

-- globals() -> a fresh table whose missing keys fall through to _G and to
-- the built-in modules (lazily required)
function M.globals(extra)
  local known = {}
  for _, n in ipairs(M.modules) do known[n] = true end
  local env = {}
  if extra then for k, v in pairs(extra) do env[k] = v end end
  return setmetatable(env, {
    __index = function(t, k)
      local v = _G[k]
      if v ~= nil then return v end
      if known[k] then
        local ok, mod = pcall(require, "provision." .. k)
        if not ok then error(mod, 2) end
        rawset(t, k, mod)
        return mod
      end
      return nil
    end,
  })
end

return M
