/* Fuzz target: the .env reader and Compose's interpolation, as provision
 * reads them to know what Compose will do (lua/provision/envfile.lua:
 * envfile.decode, the project's one .env reader, behind
 * compose.read_env_file; lua/provision/compose/project.lua:
 * compose.interpolate).
 *
 * The input is split at its first NUL byte into a .env text and a string
 * to interpolate (without a NUL, the whole input is both).
 *
 * Properties:
 *   - reading any text never raises: a { KEY = "value" } table of strings,
 *     or nil and "FILE:LINE: not KEY=VALUE" naming a line that is indeed
 *     neither blank, a comment nor KEY=... (a quoted value may span lines,
 *     so the line named is never one before an earlier binding ends);
 *   - a .env written here in the forms the Compose documentation gives
 *     (and docker-compose v1 and Compose v2 read alike: VAR=VAL, VAR=VAL
 *     # comment, VAR='VAL', VAR="VAL" with \n \r \t \\ \" escapes, a
 *     quoted value then # comment, export, blanks around =, comments,
 *     blank lines, CRLF) from the input's NUL-separated fields reads back
 *     to the values written;
 *   - interpolating any string never raises, and gives what an independent
 *     implementation of the Compose file format's interpolation gives
 *     (below, written from the specification and docker-compose v1's
 *     pattern, which provision follows: one pass, a substitution's result
 *     is not read again, no nesting): $$ is a literal $; $VAR and ${VAR}
 *     the value or ""; ${VAR:-default} the default when VAR is unset or
 *     empty, ${VAR-default} when unset; ${VAR:?msg} an error naming VAR
 *     and msg when unset or empty, ${VAR?msg} when unset; any other ${...}
 *     an "invalid interpolation format" error. A $ before anything else
 *     stays a $ (v1 refuses it, v2 keeps it: provision keeps it, as
 *     tests/lua/test_compose.lua says);
 *   - doubling every $ of a string and interpolating it gives the string. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char property[] =
"local compose = require 'provision.compose'\n"
"local envfile = require 'provision.envfile'\n"
"\n"
"-- ---- the reader\n"
"local function read(text)\n"
"  local ok, env, err = pcall(envfile.decode, text, 'E')\n"
"  assert(ok, 'decode raised: ' .. tostring(env))\n"
"  if env == nil then\n"
"    local n = tonumber(tostring(err):match('^E:(%d+): not KEY=VALUE$'))\n"
"    assert(n, 'not a clear error: ' .. tostring(err))\n"
"    local i = 0\n"
"    for line in (text .. '\\n'):gmatch('([^\\n]*)\\n') do\n"
"      i = i + 1\n"
"      if i == n then\n"
"        line = line:gsub('\\r$', ''):gsub('^[ \\t\\v\\f\\r]+', '')\n"
"        assert(line ~= '' and line:sub(1, 1) ~= '#', ('line %d is blank or a comment: %q'):format(n, line))\n"
"        line = line:gsub('^export[ \\t\\v\\f\\r]+', '')\n"
"        assert(not line:find('^[A-Za-z0-9_.-]+[ \\t\\v\\f\\r]*='), ('line %d is KEY=...: %q'):format(n, line))\n"
"        return nil\n"
"      end\n"
"    end\n"
"    error('the error names line ' .. n .. ', past the end')\n"
"  end\n"
"  assert(type(env) == 'table', 'read gave a ' .. type(env))\n"
"  for k, v in pairs(env) do\n"
"    assert(type(k) == 'string' and k:find('^[A-Za-z0-9_.-]+$'), 'bad key ' .. tostring(k))\n"
"    assert(type(v) == 'string', 'value of ' .. k .. ' is a ' .. type(v))\n"
"  end\n"
"  return env\n"
"end\n"
"\n"
"-- a value may be written VAR=VAL when every Compose reads it back so: no\n"
"-- blank or quote at its ends, no #, no $ (v1 and v2 expand unquoted values)\n"
"local function bare_ok(v)\n"
"  return v:find('^[!-~]') and v:find('[!-~]$') and not v:find('^[\\'\"]')\n"
"    and not v:find('[#$\\r\\n]')\n"
"end\n"
"local DQ = { ['\\\\'] = '\\\\\\\\', ['\"'] = '\\\\\"', ['\\n'] = '\\\\n', ['\\r'] = '\\\\r', ['\\t'] = '\\\\t' }\n"
"local function write_line(i, k, v)\n"
"  local sel = (#v + i) % 7\n"
"  local lead = ({ '', '  ', 'export ', '\\t', '' })[sel % 5 + 1]\n"
"  local eq = ({ '=', ' = ', '=', '\\t=\\t' })[i % 4 + 1]\n"
"  local eol = (i % 3 == 0) and '\\r\\n' or '\\n'\n"
"  local text\n"
"  if sel <= 1 and bare_ok(v) then\n"
"    text = v .. (sel == 1 and ' # a comment' or '')\n"
"  elseif sel <= 3 and not v:find('[\\'\\\\\\r\\n]') and not v:find('${', 1, true) then\n"
"    text = \"'\" .. v .. \"'\" .. (sel == 3 and '  # a comment' or '')\n"
"  elseif not v:find('$', 1, true) then\n"
"    text = '\"' .. v:gsub('[\\\\\"\\n\\r\\t]', DQ) .. '\"' .. (sel >= 5 and ' # a comment' or '')\n"
"  else\n"
"    return nil   -- Compose versions disagree on how to read it\n"
"  end\n"
"  return lead .. k .. eq .. text .. eol\n"
"end\n"
"\n"
"local function round_trip(fields)\n"
"  local map, out = {}, {}\n"
"  for i = 1, #fields - 1, 2 do\n"
"    local k = fields[i]\n"
"    if not k:find('^[A-Za-z_][A-Za-z0-9_]*$') or k:find('^export') then k = 'K' .. i end\n"
"    local line = write_line(i, k, fields[i + 1])\n"
"    if line then\n"
"      map[k] = fields[i + 1]\n"
"      out[#out + 1] = line\n"
"      if i % 5 == 0 then out[#out + 1] = '# a comment line\\n\\n' end\n"
"    end\n"
"  end\n"
"  local text = table.concat(out)\n"
"  local env = read(text)\n"
"  assert(env, 'a .env written in the documented forms is refused: ' .. ('%q'):format(text))\n"
"  for k, v in pairs(map) do\n"
"    assert(env[k] == v, ('%s read as %q, written %q in %q'):format(k, tostring(env[k]), v, text))\n"
"  end\n"
"  for k in pairs(env) do assert(map[k] ~= nil, 'read an extra key ' .. k) end\n"
"end\n"
"\n"
"-- ---- interpolation, written independently from the specification\n"
"local NAME = '^[A-Za-z_][A-Za-z0-9_]*'\n"
"local function reference(s, env)\n"
"  local out, i = {}, 1\n"
"  while i <= #s do\n"
"    local c = s:sub(i, i)\n"
"    if c ~= '$' then out[#out + 1] = c; i = i + 1\n"
"    else\n"
"      local n = s:sub(i + 1, i + 1)\n"
"      if n == '$' then out[#out + 1] = '$'; i = i + 2\n"
"      elseif n == '{' then\n"
"        local close = s:find('}', i + 2, true)\n"
"        if not close then return nil, 'invalid' end\n"
"        local body = s:sub(i + 2, close - 1)\n"
"        local name = body:match(NAME)\n"
"        if not name then return nil, 'invalid' end\n"
"        local rest, v = body:sub(#name + 1), env[name]\n"
"        if rest == '' then out[#out + 1] = v or ''\n"
"        elseif rest:sub(1, 2) == ':-' then out[#out + 1] = (v ~= nil and v ~= '') and v or rest:sub(3)\n"
"        elseif rest:sub(1, 1) == '-' then out[#out + 1] = v ~= nil and v or rest:sub(2)\n"
"        elseif rest:sub(1, 2) == ':?' then\n"
"          if v == nil or v == '' then return nil, 'required', name, rest:sub(3) end\n"
"          out[#out + 1] = v\n"
"        elseif rest:sub(1, 1) == '?' then\n"
"          if v == nil then return nil, 'required', name, rest:sub(2) end\n"
"          out[#out + 1] = v\n"
"        else return nil, 'invalid' end\n"
"        i = close + 1\n"
"      else\n"
"        local name = s:match(NAME, i + 1)\n"
"        if name then out[#out + 1] = env[name] or ''; i = i + 1 + #name\n"
"        else out[#out + 1] = '$'; i = i + 1 end\n"
"      end\n"
"    end\n"
"  end\n"
"  return table.concat(out)\n"
"end\n"
"\n"
"local function check_interp(s, env)\n"
"  local want, kind, name, msg = reference(s, env)\n"
"  local ok, got, err = pcall(compose.interpolate, s, env, 'x')\n"
"  assert(ok, 'interpolate raised: ' .. tostring(got))\n"
"  if want then\n"
"    assert(got == want, ('interpolate(%q) = %q, want %q'):format(s, tostring(got) .. ' ' .. tostring(err), want))\n"
"    return\n"
"  end\n"
"  assert(got == nil and type(err) == 'string', ('interpolate(%q) = %q, want an error (%s)'):format(s, tostring(got), kind))\n"
"  assert(err:sub(1, 3) == 'x: ', 'the error does not say where: ' .. err)\n"
"  if kind == 'invalid' then\n"
"    assert(err:find('invalid interpolation format', 1, true), ('interpolate(%q): %s, want invalid format'):format(s, err))\n"
"  else\n"
"    assert(err:find('required variable ' .. name, 1, true) and err:find(msg, 1, true),\n"
"      ('interpolate(%q): %s, want required %s: %s'):format(s, err, name, msg))\n"
"  end\n"
"end\n"
"\n"
"return function(data)\n"
"  local nul = data:find('\\0', 1, true)\n"
"  local envtext, template = data, data\n"
"  if nul then envtext, template = data:sub(1, nul - 1), data:sub(nul + 1) end\n"
"  local env = read(envtext) or {}\n"
"  env.SET, env.EMPTY = env.SET or 'set', env.EMPTY or ''\n"
"  check_interp(template, env)\n"
"  check_interp(template, {})\n"
"  -- $$ is a $: a string with every $ doubled comes back as itself\n"
"  local doubled = template:gsub('%$', '$$')\n"
"  assert(compose.interpolate(doubled, env) == template, ('$$ not a literal $ in %q'):format(doubled))\n"
"  local fields = {}\n"
"  for f in (data .. '\\0'):gmatch('([^%z]*)%z') do fields[#fields + 1] = f end\n"
"  if #fields < 2 then fields = { 'V', data } end\n"
"  round_trip(fields)\n"
"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    fuzz_lua_init("=compose_env", property);
    return fuzz_lua_one(data, size);
}
