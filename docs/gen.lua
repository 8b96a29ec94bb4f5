-- docs/gen.lua: the generated parts of docs/modules/*.md, and the check of
-- the docs' links. Run by the binary (make docs, tests/cli/docs.sh):
--
--   provision --script docs/gen.lua modules OUT PAGE...
--       each module page PAGE (docs/modules/NAME.md) with its generated
--       blocks made anew from the resource definitions, written to
--       OUT/NAME.md (OUT may be docs/modules itself)
--   provision --script docs/gen.lua links FILE...
--       every relative link of these Markdown files leads to a file that
--       exists, and its #anchor (if any) to a heading of that file
--
-- A generated block is what lies between
--   <!-- generated: KEY (make docs) -->  and  <!-- end generated -->
-- KEY: a resource kind of the page's module (its synopsis and its table of
-- options: option | type | default | meaning, the meaning from the option's
-- doc = "..." in R.define), "types" (what each type used takes) or
-- "functions" (the module's functions). Everything else is prose, kept.
-- Exit 1, naming each, when: a page is not a module's, a module has no page,
-- a block names what the module does not have, a kind (or its types or
-- functions) has no block, an option has no doc, a link is broken.
local help = require "provision.cli.help"
local env = require "provision.env"

local problems = {}
local function problem(fmt, ...) problems[#problems + 1] = fmt:format(...) end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function write(path, text)
  local f = assert(io.open(path .. ".tmp", "wb"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

local OPEN = "<!%-%- generated: ([%w_.]+) %(make docs%) %-%->\n"
local CLOSE = "<!-- end generated -->"

-- page(path, text) -> text with each block made anew
local function page(path, text)
  local name = path:match("([^/]+)%.md$")
  local known = false
  for _, m in ipairs(env.modules) do known = known or m == name end
  if not known then
    problem("%s: not a module's page (modules: %s)", path, table.concat(env.modules, ", "))
    return text
  end
  local parts, order, kinds = help.module_markdown(name)
  for _, def in ipairs(kinds) do
    for opt, sp in pairs(def.options) do
      if type(sp) ~= "table" or type(sp.doc) ~= "string" or not sp.doc:find("%S") then
        problem("%s: option '%s' has no doc text (doc = \"...\" in its R.define)", def.kind, opt)
      end
    end
  end
  local seen, out, pos = {}, {}, 1
  while true do
    local s, e, key = text:find(OPEN, pos)
    if not s then break end
    local cs, ce = text:find(CLOSE, e + 1, true)
    if not cs then
      problem("%s: block %s has no %s", path, key, CLOSE)
      break
    end
    out[#out + 1] = text:sub(pos, e)
    if parts[key] then
      out[#out + 1] = parts[key] .. "\n"
      if seen[key] then problem("%s: block %s twice", path, key) end
      seen[key] = true
    else
      problem("%s: block %s: module %s has no such resource (nor types or functions)", path, key, name)
      out[#out + 1] = text:sub(e + 1, cs - 1)
    end
    out[#out + 1] = CLOSE
    pos = ce + 1
  end
  out[#out + 1] = text:sub(pos)
  for _, key in ipairs(order) do
    if not seen[key] then problem("%s: no generated block for %s", path, key) end
  end
  for _, key in ipairs { "types", "functions" } do
    if parts[key] and not seen[key] then problem("%s: no generated block for %s", path, key) end
  end
  return table.concat(out)
end

local function modules(outdir, pages)
  local have = {}
  for _, path in ipairs(pages) do
    have[path:match("([^/]+)%.md$") or path] = true
    local text, err = read(path)
    if not text then problem("%s", err)
    else write(outdir .. "/" .. path:match("([^/]+)$"), page(path, text)) end
  end
  for _, m in ipairs(env.modules) do
    if not have[m] then problem("module %s has no page docs/modules/%s.md", m, m) end
  end
end

-- a heading's anchor as GitHub makes it: lower case, punctuation dropped,
-- spaces as hyphens (a repeated heading's -1, -2 too)
local function anchors(text)
  local t, count, fence = {}, {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^%s*```") then fence = not fence
    elseif not fence and line:match("^#+%s") then
      local a = line:gsub("^#+%s+", ""):gsub("%s+#*%s*$", ""):lower()
      a = a:gsub("[^%w%s_-]", ""):gsub(" ", "-")
      local n = count[a]
      t[n and (a .. "-" .. n) or a] = true
      count[a] = (n or 0) + 1
    end
  end
  return t
end

-- one relative link (not http:, mailto:, ...) of path's line n
local function check_link(path, n, target)
  if target:match("^%a[%w+.-]*:") then return end
  local dir = path:match("^(.*)/[^/]*$") or "."
  local file, anchor = target:match("^([^#]*)#?(.*)$")
  local full = file == "" and path or dir .. "/" .. file
  local body = read(full)
  if not body and not exists(full .. "/.") then
    problem("%s:%d: link %s: no file %s", path, n, target, full)
  elseif anchor ~= "" and body and not anchors(body)[anchor] then
    problem("%s:%d: link %s: no heading #%s in %s", path, n, target, anchor, full)
  end
end

-- every link of these files outside code (fenced blocks, `spans`)
local function links(files)
  for _, path in ipairs(files) do
    local text, err = read(path)
    if not text then problem("%s", err) end
    local fence, n = false, 0
    for line in ((text or "") .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      if line:match("^%s*```") then fence = not fence
      elseif not fence then
        for target in line:gsub("`[^`]*`", ""):gmatch("%]%(([^)%s]+)%)") do check_link(path, n, target) end
      end
    end
  end
end

local mode = arg[1]
if mode == "modules" and arg[2] then
  modules(arg[2], { table.unpack(arg, 3) })
elseif mode == "links" then
  links { table.unpack(arg, 2) }
else
  io.stderr:write("usage: provision --script docs/gen.lua modules OUT PAGE... | links FILE...\n")
  return 2
end
for _, p in ipairs(problems) do io.stderr:write("docs: ", p, "\n") end
return #problems > 0 and 1 or 0
