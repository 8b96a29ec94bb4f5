-- provision.secret: values that never show. A secret is an opaque object:
-- tostring and JSON encoding give "********"; concatenation gives another
-- secret ("Bearer " .. token is a secret whose value is the whole text, so
-- a file or an argv built that way gets the real value, and shows masked);
-- the plain value is had only with secret.reveal(v), by the resource that
-- uses it. As a
-- second line of defence, secret.mask(text) blanks every known secret value
-- in text that came from outside (command output, HTTP bodies, errors).
local S = {}
local MASK = "********"
S.MASK = MASK

local Secret = { __name = "provision.secret" }
Secret.__tostring = function() return MASK end
local values = setmetatable({}, { __mode = "k" })
local function piece(v)
  local t = type(v)
  if t == "string" or t == "number" then return tostring(v) end
  if getmetatable(v) == "provision.secret" then return values[v] end
  error("attempt to concatenate a " .. t .. " value with a secret", 3)
end
Secret.__concat = function(a, b) return S.new(piece(a) .. piece(b)) end
Secret.__index = function(_, k) error("a secret has no field '" .. tostring(k) .. "'", 2) end
Secret.__newindex = function() error("a secret cannot be changed", 2) end
Secret.__metatable = "provision.secret"

local known, known_sorted = {}, nil
local plain = {}   -- text the recipe shows openly (see S.exempt)

function S.new(v)
  if getmetatable(v) == "provision.secret" then return v end
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then error("secret(): expected a string, got " .. type(v), 2) end
  local s = setmetatable({}, Secret)
  values[s] = v
  if #v > 0 and not known[v] then known[v] = true; known_sorted = nil end
  return s
end

function S.is(v) return type(v) == "table" and getmetatable(v) == "provision.secret" end

-- S.too_short(v) -> why | nil: a secret a recipe or a user declares must be
-- one the output can be searched for without blanking provision's own text:
-- "1" would blank every counter, " " every space. Empty is fine (nothing
-- to hide).
S.MIN_LENGTH = 4
function S.too_short(v)
  if v == "" then return nil end
  if #v < S.MIN_LENGTH then
    return ("a secret of %d byte%s is too short to be kept out of the output (it would blank every %q); "
      .. "use one of %d bytes or more"):format(#v, #v == 1 and "" or "s", v:sub(1, 1), S.MIN_LENGTH)
  end
  if not v:find("%S") then
    return "a secret made only of spaces cannot be kept out of the output (it would blank them all)"
  end
end

function S.reveal(v)
  if S.is(v) then return values[v] end
  return v
end

-- S.exempt(text): text the recipe itself shows in the open (its name, the
-- values of its plain variables). A secret value found inside such text
-- (a password "airflow" beside a user "airflow" and a folder "./airflow")
-- cannot be hidden by blanking it out of every line, and trying would blank
-- out the folder and the user too: such a secret is still never printed as
-- itself (tostring, .., JSON give the mask), but text is not searched for it.
function S.exempt(text)
  if type(text) == "string" and #text > 0 then plain[#plain + 1] = text; known_sorted = nil end
end

local function is_plain(v)
  for _, p in ipairs(plain) do
    if p:find(v, 1, true) then return true end
  end
  return false
end

-- A secret shorter than SHORT bytes ("7", "ab") is blanked only where it
-- stands alone: not where it is part of a longer word ("7" in "2017", "ab"
-- in "table"). Blanking every such letter or digit would make the output
-- unreadable, and the longer word says nothing of the secret.
local SHORT = 4
local function inside_word(text, at, edge)
  if at < 1 or at > #text or not edge:match("%w") then return false end
  return text:sub(at, at):match("%w") ~= nil
end

-- is any secret value known (so that output must go through S.mask)?
function S.any() return next(known) ~= nil end

function S.mask(text)
  if type(text) ~= "string" or next(known) == nil then return text end
  if not known_sorted then
    known_sorted = {}
    for v in pairs(known) do
      if not is_plain(v) then known_sorted[#known_sorted + 1] = v end
    end
    table.sort(known_sorted, function(a, b) return #a > #b end)
  end
  for _, v in ipairs(known_sorted) do
    local short = #v < SHORT
    local i = 1
    while true do
      local a, b = text:find(v, i, true)
      if not a then break end
      if short and (inside_word(text, a - 1, v:sub(1, 1)) or inside_word(text, b + 1, v:sub(-1))) then
        i = a + 1   -- part of a longer word: not this secret
      else
        text = text:sub(1, a - 1) .. MASK .. text:sub(b + 1)
        i = a + #MASK
      end
    end
  end
  return text
end

return S
