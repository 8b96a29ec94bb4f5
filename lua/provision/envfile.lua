-- provision.envfile: the .env format that both Compose implementations read
-- back exactly as written:
--   * docker-compose v1 (1.29): python-dotenv (dotenv_values, interpolate=True);
--   * Compose v2: compose-go's dotenv parser (several generations of it).
--
-- What each does with a value (from their sources):
--   unquoted  v1: to end of line, " #..." cut, trailing blanks cut, ${X} expanded
--             v2: cut at "#" (old) or " #" (new), trailing blanks cut; $X, ${X}, $$ expanded
--   '...'     v1: \\ -> \ and \' -> ', ${X} STILL expanded (python-dotenv < 1.0)
--             v2: raw bytes; ends at the first ' not preceded by \ (old versions
--                 also strip quotes at both ends of the value)
--   "..."     v1: \\ \' \" \n \r \t ... decoded, ${X} expanded
--             v2: ends at the first " not preceded by \; escapes decoded (old:
--                 \n \r, then \X -> X; new: Go escapes), then $X ${X} $$ expanded
--
-- So a value is written:
--   bare      when it is only [A-Za-z0-9_.,:/@%+=-] (the common case: 50000, airflow);
--   '...'     when it has no ', no \\ , no CR and does not end with \ ($ is fine here);
--   "..."     when it has no $ and ends with neither \ nor "  (\ -> \\, " -> \", CR -> \r;
--             a newline is written as is);
--   and rejected otherwise (with why), as is anything with ${...} (python-dotenv
--   expands that whatever the quoting), a NUL, or bytes that are not UTF-8.
-- Keys: [A-Za-z_][A-Za-z0-9_]*, not starting with "export" (old compose-go
-- strips that prefix from a key).
local M = {}

M.HEADER = "# Written by provision: changes here are overwritten on the next run.\n"

function M.check_key(k)
  if not k:match("^[%a_][%w_]*$") then
    return nil, ("bad key %q: use letters, digits and _, not starting with a digit"):format(k)
  end
  if k:lower():sub(1, 6) == "export" then
    return nil, ("bad key %q: a key starting with \"export\" is misread by some Compose versions"):format(k)
  end
  return true
end

function M.to_string(v)
  if type(v) == "number" then
    if math.type(v) == "integer" then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  return tostring(v)
end

-- python-dotenv's _posix_variable: \$\{[^}:]*(:-[^}]*)?\}
local function has_dotenv_variable(v)
  local i = 1
  while true do
    local s = v:find("${", i, true)
    if not s then return false end
    local j = s + 2
    local name_end = v:find("[}:]", j) -- first } or :
    if name_end then
      local c = v:sub(name_end, name_end)
      if c == "}" then return true end
      -- ":" must be followed by "-", then anything but } up to a }
      if v:sub(name_end, name_end + 1) == ":-" and v:find("}", name_end + 2, true) then return true end
    end
    i = s + 2
  end
end

-- encode_value(v) -> text | nil, why
function M.encode_value(v)
  if v:find("\0", 1, true) then return nil, "contains a NUL byte, which no .env file can hold" end
  if utf8.len(v) == nil then return nil, "is not valid UTF-8 text" end
  if has_dotenv_variable(v) then
    return nil, "contains ${...}, which docker-compose v1 expands whatever the quoting; " ..
      "pass it some other way (e.g. a file)"
  end
  if v:match("^[%w_.,:/@%%+=-]*$") then return v end
  local single_ok = not v:find("'", 1, true) and not v:find("\\\\", 1, true)
    and not v:find("\r", 1, true) and v:sub(-1) ~= "\\"
  if single_ok then return "'" .. v .. "'" end
  local double_ok = not v:find("$", 1, true) and v:sub(-1) ~= "\\" and v:sub(-1) ~= '"'
  if double_ok then
    return '"' .. v:gsub('[\\"\r]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\r"] = "\\r" }) .. '"'
  end
  local why
  if v:sub(-1) == "\\" then why = "ends with a backslash"
  elseif v:find("$", 1, true) and v:find("'", 1, true) then why = "has both $ and '"
  elseif v:find("$", 1, true) and v:find("\\\\", 1, true) then why = "has both $ and \\\\"
  elseif v:find("$", 1, true) then why = "has $ and a carriage return"
  else why = "ends with \" and has '" end
  return nil, "cannot be written so that both Compose v1 and v2 read it back the same (it " .. why .. ")"
end

function M.sorted_keys(values)
  local keys = {}
  for k in pairs(values) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- encode(values [, reveal]) -> text | nil, why      (keys sorted)
function M.encode(values, reveal)
  reveal = reveal or function(x) return x end
  local out = { M.HEADER }
  for _, k in ipairs(M.sorted_keys(values)) do
    local ok, kerr = M.check_key(k)
    if not ok then return nil, kerr end
    local text, err = M.encode_value(M.to_string(reveal(values[k])))
    if not text then return nil, k .. " " .. err end
    out[#out + 1] = k .. "=" .. text .. "\n"
  end
  return table.concat(out)
end

-- decode(text) -> { K = V }: python-dotenv's reading (without expansion), to
-- say what changed in a file already there. decode(encode(t)) == t.
local DQ_ESC = { ["\\"] = "\\", ["'"] = "'", ['"'] = '"', a = "\a", b = "\b", f = "\f",
  n = "\n", r = "\r", t = "\t", v = "\v" }
function M.decode(text)
  local out = {}
  text = text:gsub("\r\n", "\n")
  local pos, len = 1, #text
  while pos <= len do
    local s, e = text:find("^[ \t\n]+", pos)
    if s then pos = e + 1 end
    if pos > len then break end
    if text:sub(pos, pos) == "#" then
      local nl = text:find("\n", pos, true)
      pos = nl and nl + 1 or len + 1
    else
      local line_end = text:find("\n", pos, true) or len + 1
      local _, ke, key = text:find("^export[ \t]+([^=#%s]+)[ \t]*=[ \t]*", pos)
      if not key then _, ke, key = text:find("^([^=#%s]+)[ \t]*=[ \t]*", pos) end
      if not key then
        pos = line_end + 1                        -- not a binding: skip the line
      else
        pos = ke + 1
        local q = text:sub(pos, pos)
        local value
        if q == "'" or q == '"' then
          local buf, i = {}, pos + 1
          local closed = false
          while i <= len do
            local c = text:sub(i, i)
            if c == "\\" and i < len then
              local n = text:sub(i + 1, i + 1)
              if q == "'" and (n == "\\" or n == "'") then buf[#buf + 1] = n; i = i + 2
              elseif q == '"' and DQ_ESC[n] then buf[#buf + 1] = DQ_ESC[n]; i = i + 2
              else buf[#buf + 1] = c; i = i + 1 end
            elseif c == q then closed = true; i = i + 1; break
            else buf[#buf + 1] = c; i = i + 1 end
          end
          if closed then
            value = table.concat(buf)
            local nl = text:find("\n", i, true)
            pos = nl and nl + 1 or len + 1
          else
            value = text:sub(pos, line_end - 1)
            pos = line_end + 1
          end
        else
          value = text:sub(pos, line_end - 1):gsub("%s+#.*$", ""):gsub("%s+$", "")
          pos = line_end + 1
        end
        out[key] = value
      end
    end
  end
  return out
end

return M
