-- provision.lazy: the fields of a table filled on first use, each by a
-- loader (which requires the module that has it). A recipe that writes no
-- template then never loads fs.template: most of a small run's start is
-- loading provision's own bytecode (issue 19: bench/README.md).
--
-- pairs() over such a table fills every field first, so whatever lists it
-- (help, make docs) sees them all.
local M = {}

-- M.fields(t, loaders) -> t: t[k], when absent, is loaders[k](k), kept in
-- t from then on (nil when there is no loader for k). loaders may get new
-- entries later.
function M.fields(t, loaders)
  return setmetatable(t, {
    __index = function(tt, k)
      local load = loaders[k]
      if load == nil then return nil end
      local v = load(k)
      rawset(tt, k, v)
      return v
    end,
    __pairs = function(tt)
      -- (each loader once; the keys first: a part loaded may add loaders)
      local tried = {}
      repeat
        local keys = {}
        for k in pairs(loaders) do if not tried[k] then keys[#keys + 1] = k end end
        for _, k in ipairs(keys) do tried[k] = true; local _ = tt[k] end
      until #keys == 0
      return next, tt, nil
    end,
  })
end

-- M.part(module, field) -> a loader: require(module)[field]
function M.part(module, field)
  return function() return require(module)[field] end
end

return M
