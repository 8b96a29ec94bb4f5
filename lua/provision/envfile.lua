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

-- decode(text [, path]) -> { K = V } | nil, "path:line: not KEY=VALUE"
-- The one .env reader of the project: what Compose (v1 and v2) reads from a
-- .env in the forms its documentation gives, and what encode writes
-- (decode(encode(t)) == t). A line is blank, a # comment, or [export ]KEY=VALUE
-- (KEY of letters, digits, _ . -; blanks around =); anything else is an error
-- naming the line. VALUE is
--   '...'  literal but for \' and \\;
--   "..."  with \n \r \t \\ \" (and python-dotenv's \a \b \f \v \');
-- either ending at its closing quote (the first no backslash escapes, on
-- this line or a later one: a quoted value may hold newlines) followed by
-- blanks or a # comment; else the rest of the line, cut at a " #" comment,
-- trailing blanks cut. No $ expansion: that is interpolation's business.
local ESC = {
  ['"'] = { ["\\"] = "\\", ["'"] = "'", ['"'] = '"', a = "\a", b = "\b", f = "\f",
    n = "\n", r = "\r", t = "\t", v = "\v" },
  ["'"] = { ["\\"] = "\\", ["'"] = "'" },
}

-- the quoted value starting at text[at] (its opening quote q): its value
-- and the position after the line it ends on, or nil when it is not closed
-- or something other than blanks or a comment follows its closing quote
local function quoted(text, at, q)
  local i, len = at + 1, #text
  while i <= len and text:sub(i, i) ~= q do
    i = i + (text:sub(i, i) == "\\" and 2 or 1)
  end
  if i > len then return nil end
  local eol = text:find("\n", i, true) or len + 1
  local tail = text:sub(i + 1, eol - 1)
  if not (tail:find("^%s*$") or tail:find("^%s*#")) then return nil end
  return (text:sub(at + 1, i - 1):gsub("\\(.)", ESC[q])), eol + 1
end

function M.decode(text, path)
  local out, pos, n = {}, 1, 0
  text = text:gsub("\r\n", "\n")
  while pos <= #text do
    local eol = text:find("\n", pos, true) or #text + 1
    local line = text:sub(pos, eol - 1):gsub("^%s+", "")
    n = n + 1
    local next_pos = eol + 1
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local k, v = line:gsub("^export%s+", ""):match("^([%w_.%-]+)%s*=%s*(.*)$")
      if not k then return nil, ("%s:%d: not KEY=VALUE"):format(path or "(text)", n) end
      local q, value, after = v:sub(1, 1), nil, nil
      if q == '"' or q == "'" then value, after = quoted(text, eol - #v, q) end
      if value then
        local _, lines = text:sub(eol, after - 2):gsub("\n", "")
        n, next_pos = n + lines, after
      else
        value = v:gsub("%s+#.*$", ""):gsub("%s+$", "")
      end
      out[k] = value
    end
    pos = next_pos
  end
  return out
end

return M
