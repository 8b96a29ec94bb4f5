/* Fuzz target: the .env write/read round trip of fs.env_file
 * (lua/provision/envfile.lua, lua/provision/fs/env_file.lua).
 *
 * The input is read as a map: fields split at NUL bytes, taken in pairs
 * (key, value); a key that is not an identifier becomes K<n> so the values
 * still get exercised. A second map is { V = the whole input } (so values
 * with NUL bytes and any other byte are tried too).
 *
 * Properties:
 *   - envfile.check_key(k) accepts exactly [A-Za-z_][A-Za-z0-9_]* not
 *     starting with "export" (any case);
 *   - the fs.env_file constructor accepts a map exactly when
 *     envfile.encode does; a rejected one is rejected with a message
 *     naming the value ("values..."), and nothing is written;
 *   - an accepted map, applied to a file, gives a file whose bytes are
 *     envfile.encode's, that reads back to the same map with provision's
 *     own reader (envfile.decode, python-dotenv's rules, what
 *     docker-compose v1 reads) AND with an independent reader written here
 *     after compose-go's dotenv parser (what Compose v2 reads); and a
 *     second check() finds nothing to change. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char property[] =
"local envfile = require 'provision.envfile'\n"
"local fs = require 'provision.fs'\n"
"local core = require 'provision._core'\n"
"local dir = (os.getenv('FUZZ_TMP') or '/tmp') .. '/fuzz-envfile-' .. core.getpid()\n"
"assert(core.mkdirs(dir, tonumber('700', 8)))\n"
"local path = dir .. '/.env'\n"
"\n"
"-- compose-go (Compose v2) dotenv parser, for what provision writes\n"
"local GO_ESC = { a = '\\a', b = '\\b', f = '\\f', n = '\\n', r = '\\r', t = '\\t', v = '\\v',\n"
"  ['\\\\'] = '\\\\', ['\"'] = '\"' }\n"
"local function compose_v2_read(text)\n"
"  local out, pos, len = {}, 1, #text\n"
"  while pos <= len do\n"
"    local c = text:sub(pos, pos)\n"
"    if c:find('^[ \\t\\r\\n\\v\\f]') then pos = pos + 1\n"
"    elseif c == '#' then\n"
"      local nl = text:find('\\n', pos, true); pos = nl and nl + 1 or len + 1\n"
"    else\n"
"      local eq = assert(text:find('=', pos, true), 'v2: a statement without =')\n"
"      local key = text:sub(pos, eq - 1):gsub('^export[ \\t]+', ''):gsub('[ \\t]+$', '')\n"
"      assert(key:find('^[%a_][%w_]*$'), 'v2: bad key ' .. key)\n"
"      pos = eq + 1\n"
"      while text:sub(pos, pos):find('^[ \\t\\v\\f\\r]') do pos = pos + 1 end\n"
"      local q = text:sub(pos, pos)\n"
"      if q == \"'\" or q == '\"' then\n"
"        local i, esc, close = pos + 1, false, nil\n"
"        while i <= len do\n"
"          local ch = text:sub(i, i)\n"
"          if ch ~= q then\n"
"            if not esc and ch == '\\\\' then esc = true elseif esc then esc = false end\n"
"          elseif esc then esc = false\n"
"          else close = i; break end\n"
"          i = i + 1\n"
"        end\n"
"        assert(close, 'v2: unterminated quote')\n"
"        local v = text:sub(pos + 1, close - 1)\n"
"        if q == '\"' then\n"
"          v = v:gsub('\\\\(.)', function(e)\n"
"            if e == '\\n' then return nil end\n"
"            return GO_ESC[e] or error('v2: provision wrote the escape \\\\' .. e)\n"
"          end)\n"
"          assert(not v:find('$', 1, true), 'v2: $ in a double-quoted value (v2 expands it)')\n"
"        end\n"
"        out[key] = v\n"
"        local nl = text:find('\\n', close + 1, true)\n"
"        assert(text:sub(close + 1, (nl or len + 1) - 1):find('^[ \\t]*$'), 'v2: text after the closing quote')\n"
"        pos = close + 1\n"
"      else\n"
"        local nl = text:find('\\n', pos, true)\n"
"        local v = text:sub(pos, (nl or len + 1) - 1)\n"
"        local cut = v:find(' #', 1, true)\n"
"        if cut then v = v:sub(1, cut - 1) end\n"
"        v = v:gsub('%s+$', '')\n"
"        assert(not v:find('$', 1, true), 'v2: $ in an unquoted value (v2 expands it)')\n"
"        out[key] = v\n"
"        pos = (nl or len) + 1\n"
"      end\n"
"    end\n"
"  end\n"
"  return out\n"
"end\n"
"\n"
"local function same(a, b, who)\n"
"  for k, v in pairs(a) do\n"
"    if b[k] ~= v then error(('%s read %s as %q, wrote %q'):format(who, k, tostring(b[k]), v)) end\n"
"  end\n"
"  for k in pairs(b) do if a[k] == nil then error(who .. ' read an extra key ' .. k) end end\n"
"end\n"
"\n"
"local function new_ctx()\n"
"  local ctx = { state = {} }\n"
"  function ctx:created(e) self.state.created = self.state.created or {}; table.insert(self.state.created, e) end\n"
"  function ctx:log() end\n"
"  function ctx:detail() end\n"
"  function ctx:progress() end\n"
"  function ctx:spin() end\n"
"  function ctx:interrupted() return false end\n"
"  return ctx\n"
"end\n"
"\n"
"local function try_map(map)\n"
"  local text, eerr = envfile.encode(map)\n"
"  local ok, r = pcall(fs.env_file, { path = path, values = map })\n"
"  if not text then\n"
"    assert(type(eerr) == 'string' and eerr ~= '', 'encode failed without a message')\n"
"    assert(not ok, 'fs.env_file accepted a map encode rejects: ' .. eerr)\n"
"    assert(tostring(r):find('values', 1, true), 'rejection does not name the value: ' .. tostring(r))\n"
"    assert(core.read_file(path) == nil, 'a rejected map left a file')\n"
"    return\n"
"  end\n"
"  assert(ok, 'fs.env_file rejected a map encode accepts: ' .. tostring(r))\n"
"  local ctx = new_ctx()\n"
"  local aok, aerr = r:apply(ctx)\n"
"  assert(aok ~= nil, 'apply failed: ' .. tostring(aerr))\n"
"  local written = assert(core.read_file(path))\n"
"  local done, changes = r:check(new_ctx())\n"
"  os.remove(path)\n"
"  assert(written == text, 'the file is not what encode gives')\n"
"  same(map, envfile.decode(written), 'envfile.decode (compose v1 rules)')\n"
"  same(map, compose_v2_read(written), 'the compose v2 reader')\n"
"  assert(done == true, 'check after apply wants changes: ' .. table.concat(changes or {}, '; '))\n"
"end\n"
"\n"
"return function(data)\n"
"  local fields = {}\n"
"  for f in (data .. '\\0'):gmatch('([^%z]*)%z') do fields[#fields + 1] = f end\n"
"  for _, k in ipairs(fields) do\n"
"    local want = k:find('^[%a_][%w_]*$') ~= nil and k:lower():sub(1, 6) ~= 'export'\n"
"    local got = envfile.check_key(k)\n"
"    assert((got == true) == want, ('check_key(%q) -> %s'):format(k, tostring(got)))\n"
"  end\n"
"  local map = {}\n"
"  for i = 1, #fields - 1, 2 do\n"
"    local k = fields[i]\n"
"    if not envfile.check_key(k) then k = 'K' .. i end\n"
"    map[k] = fields[i + 1]\n"
"  end\n"
"  try_map(map)\n"
"  try_map({ V = data })\n"
"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    fuzz_lua_init("=envfile", property);
    return fuzz_lua_one(data, size);
}
