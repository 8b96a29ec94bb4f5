-- provision.yaml: YAML to Lua tables and back.
--
--   yaml.load(text [, name]) -> value | nil, "NAME: line L column C: problem"
--   yaml.load_file(path)     -> value | nil, "PATH: line L column C: problem"
--   yaml.dump(value)         -> YAML text (block style, keys sorted, strings
--                               quoted where a plain scalar would load as
--                               something else), so load(dump(v)) equals v
--   yaml.null                the null sentinel (the same value as json.null)
--   yaml.is_array(t)         true for a table that loaded from a sequence
--   yaml.array(t)            mark t as a sequence (an empty one dumps as [])
--
-- Loading follows Compose (see modules/yaml.c): anchors, aliases, "<<"
-- merge keys, YAML 1.1 typing of plain scalars, keys as strings.
local C = require "provision._yaml"
local core = require "provision._core"

local M = {}
M.null = C.null
M.resolve = C.resolve

local ARRAY_MT = debug.getregistry()["provision.json.array"]

function M.is_array(t)
  return type(t) == "table" and getmetatable(t) == ARRAY_MT
end

function M.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

function M.load(text, name)
  if type(text) ~= "string" then error("yaml.load: expected a string, got " .. type(text), 2) end
  local v, err = C.load(text)
  if v == nil then return nil, (name and (name .. ": ") or "") .. err end
  return v
end

function M.load_file(path)
  if type(path) ~= "string" then error("yaml.load_file: expected a path, got " .. type(path), 2) end
  local text, err = core.read_file(path)
  if not text then
    err = tostring(err)   -- read_file's message names the path already
    if err:sub(1, #path + 2) ~= path .. ": " then err = path .. ": " .. err end
    return nil, err
  end
  return M.load(text, path)
end

-- ---- dump ----

local function is_sequence(t)
  if M.is_array(t) then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local escapes = {
  ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r",
  ["\0"] = "\\0", ["\a"] = "\\a", ["\b"] = "\\b", ["\v"] = "\\v", ["\f"] = "\\f", ["\27"] = "\\e",
}
-- besides \n and \r, YAML reads NEL, LS and PS as line breaks (a raw one in
-- a quoted scalar folds into a space) and refuses the C1 controls, a BOM
-- inside the text and U+FFFE/U+FFFF: all are written as escapes
local unicode_escapes = {
  ["\u{85}"] = "\\N", ["\u{2028}"] = "\\L", ["\u{2029}"] = "\\P",
  ["\u{FEFF}"] = "\\uFEFF", ["\u{FFFE}"] = "\\uFFFE", ["\u{FFFF}"] = "\\uFFFF",
}
local function quote(s)
  s = s:gsub('[%c\\"]', function(c)
    return escapes[c] or ("\\x%02X"):format(c:byte())
  end)
  s = s:gsub("\194[\128-\159]", function(c)   -- U+0080..U+009F
    return unicode_escapes[c] or ("\\x%02X"):format(c:byte(2))
  end)
  s = s:gsub("\226\128[\168\169]", unicode_escapes):gsub("\239[\187\191][\190\191]", unicode_escapes)
  return '"' .. s .. '"'
end

-- a string is written plain only when it reads back as the same string
local function scalar_string(s)
  if s == "" then return "''" end
  if not utf8.len(s) then
    error(("yaml.dump: a string that is not UTF-8 text (YAML holds only text): %q"):format(s:sub(1, 40)), 0)
  end
  if s:find("^[%w_./][%w_./%-+@=,$()%%]*$") or s:find("^[%w_./][%w_./%-+@=,$()%% ]*[%w_./%-+@=,$()%%]$") then
    -- "..." at the start of a line ends a YAML document: quote it too
    if not s:find("^[-?:,%[%]{}#&*!|>'\"%%@`]") and type(C.resolve(s)) == "string" and s ~= "<<" and s:sub(1, 3) ~= "..." then
      return s
    end
  end
  return quote(s)
end

local function scalar(v)
  local t = type(v)
  if v == M.null or v == nil then return "null" end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v then return ".nan" end
    if v == math.huge then return ".inf" end
    if v == -math.huge then return "-.inf" end
    local s = ("%.17g"):format(v)
    if tonumber(("%.15g"):format(v)) == v then s = ("%.15g"):format(v) end
    if not s:find("[.]") then
      local m, e = s:match("^(-?%d+)e([-+]%d+)$")
      if m then s = m .. ".0e" .. e else s = s .. ".0" end
    end
    return s
  end
  if t == "string" then return scalar_string(v) end
  error("yaml.dump: cannot dump a " .. t, 0)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" and type(k) ~= "number" then
      error("yaml.dump: cannot dump a " .. type(k) .. " key", 0)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  return keys
end

local function is_empty(v) return type(v) == "table" and next(v) == nil end

local function emit(out, v, indent, seen)
  -- emits a block node whose first line continues the current line
  if type(v) ~= "table" or v == M.null then
    out[#out + 1] = " " .. scalar(v) .. "\n"
    return
  end
  if seen[v] then error("yaml.dump: a table contains itself", 0) end
  seen[v] = true
  local pad = ("  "):rep(indent)
  if is_empty(v) then
    out[#out + 1] = (M.is_array(v) and " []" or " {}") .. "\n"
  elseif is_sequence(v) then
    out[#out + 1] = "\n"
    for _, item in ipairs(v) do
      out[#out + 1] = pad .. "-"
      emit(out, item, indent + 1, seen)
    end
  else
    out[#out + 1] = "\n"
    for _, k in ipairs(sorted_keys(v)) do
      local key = scalar_string(tostring(k))
      if #key > 1000 then
        -- YAML allows a simple key 1024 characters at most: a longer one
        -- is written as an explicit key ("? key" then ": value")
        out[#out + 1] = pad .. "? " .. key .. "\n" .. pad .. ":"
      else
        out[#out + 1] = pad .. key .. ":"
      end
      emit(out, v[k], indent + 1, seen)
    end
  end
  seen[v] = nil
end

function M.dump(v)
  local out = {}
  emit(out, v, 0, {})
  local s = table.concat(out)
  return (s:gsub("^[ \n]", ""))
end

return M
