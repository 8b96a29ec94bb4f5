/* Fuzz target: the command line, and -e KEY=VALUE in particular.
 *
 * Properties, for any bytes:
 *   - cli.parse(argv), argv = the input split at NUL bytes (at most 16
 *     arguments), returns a table or nil and a message: it never raises;
 *   - cli.parse{"-e", input} accepts exactly the inputs that are
 *     NAME=VALUE with NAME an identifier, and then gives vars[NAME] == VALUE
 *     byte for byte (the value may hold "=", newlines, NULs, anything),
 *     except that @@text gives @text and @FILE gives FILE's content or a
 *     message that it cannot be read;
 *   - the value, given to each typed variable of a recipe (dsl.load with
 *     vars = { [name] = value }), is either coerced to the default's type
 *     (string: as is when it is UTF-8 text, else rejected; integer: math.tointeger of v read as a decimal
 *     number (no spaces, no hex); float: v read so, refused when it overflows to inf; boolean: the
 *     documented words (not an empty value); secret: a secret
 *     revealing v, unless v is too short to mask: 1-3 bytes or only spaces) or rejected with a message naming the variable, never a
 *     raise; an undeclared name is rejected as unknown;
 *   - loading a recipe leaves package.path and package.cpath as they were. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char property[] =
"local cli = require 'provision.cli'\n"
"local dsl = require 'provision.dsl'\n"
"local secret = require 'provision.secret'\n"
"local dir = os.getenv('FUZZ_TMP') or '/tmp'\n"
"local path = dir .. '/fuzz-cli-vars-' .. require('provision._core').getpid() .. '.lua'\n"
"local f = assert(io.open(path, 'w'))\n"
"f:write([[vars { s = 'text', i = 8080, n = 1.5, b = false, p = secret 'password' }\n"
"step 'noop' { check = function() return true end, apply = function() end }\n]])\n"
"f:close()\n"
"local TRUE = { ['true'] = true, yes = true, ['1'] = true, on = true }\n"
"local FALSE = { ['false'] = true, no = true, ['0'] = true, off = true }\n"
"local function load_with(name, value)\n"
"  local pp, pc = package.path, package.cpath\n"
"  local r, err = dsl.load(path, { vars = { [name] = value } })\n"
"  assert(package.path == pp and package.cpath == pc, 'dsl.load changed package.path')\n"
"  if r == nil then\n"
"    assert(type(err) == 'string', 'dsl.load failed without a message')\n"
"    assert(err:find(\"'\" .. name .. \"'\", 1, true), 'message does not name the variable: ' .. err)\n"
"    return nil\n"
"  end\n"
"  return r.vars[name].value\n"
"end\n"
"local function check_coercion(v)\n"
"  -- a string variable takes UTF-8 text as is, nothing else (the state and\n"
"  -- --json are JSON); a secret takes any bytes\n"
"  if utf8.len(v) then assert(load_with('s', v) == v, 'string var changed the value')\n"
"  else assert(load_with('s', v) == nil, ('string var accepted %q, not UTF-8'):format(v)) end\n"
"  -- numbers are decimal: no spaces, no hex (Lua's tonumber takes both)\n"
"  local n = (v:find('^[+-]?%.?%d') and not v:find('[%sxX]')) and tonumber(v) or nil\n""  -- one too big for a double (1e400) is refused, as inf is\n"
"  if n == math.huge or n == -math.huge then n = nil end\n"
"  local i = load_with('i', v)\n"
"  local want_i = n and math.tointeger(n)\n"
"  assert(i == want_i and math.type(i) == math.type(want_i), ('integer var: %q -> %s'):format(v, tostring(i)))\n"
"  local x = load_with('n', v)\n"
"  if n == nil then assert(x == nil, ('number var accepted %q'):format(v))\n"
"  -- a float variable holds the float nearest the number written (an integer\n"
"  -- beyond 2^53 rounds, as 33333333333333330 does)\n"
"  else assert(math.type(x) == 'float' and (x == n + 0.0 or (x ~= x and n ~= n)), ('number var: %q -> %s'):format(v, tostring(x))) end\n"
"  local b = load_with('b', v)\n"
"  local l = v:lower()\n"
"  if TRUE[l] then assert(b == true, ('boolean var: %q -> %s'):format(v, tostring(b)))\n"
"  elseif FALSE[l] then assert(b == false, ('boolean var: %q -> %s'):format(v, tostring(b)))\n"
"  else assert(b == nil, ('boolean var accepted %q'):format(v)) end\n"
"  local p = load_with('p', v)\n"
"  -- a secret too short to mask (1-3 bytes, or only spaces) is refused\n"
"  if secret.too_short(v) then assert(p == nil, ('secret var accepted %q, too short to mask'):format(v))\n"
"  else assert(secret.is(p) and secret.reveal(p) == v, 'secret var did not keep the value') end\n"
"end\n"
"return function(data)\n"
"  local argv = {}\n"
"  for a in (data .. '\\0'):gmatch('([^%z]*)%z') do\n"
"    if #argv == 16 then break end\n"
"    argv[#argv + 1] = a\n"
"  end\n"
"  local o, err = cli.parse(argv)\n"
"  assert((type(o) == 'table' and err == nil) or (o == nil and type(err) == 'string'), 'parse(argv): bad result')\n"
"  o, err = cli.parse({ '-e', data })\n"
"  local k, v = data:match('^([%a_][%w_]*)=(.*)$')\n"
"  if not k then\n"
"    assert(o == nil and type(err) == 'string', ('-e %q accepted'):format(data))\n"
"    return\n"
"  end\n"
"  if v:find('^@[^@]') or v == '@' then\n"
"    -- KEY=@FILE reads FILE: the value is its content, or a message saying why not\n"
"    assert((o and type(o.vars[k]) == 'string') or (o == nil and err:find('cannot read it', 1, true)), '-e KEY=@FILE: bad result')\n"
"    return\n"
"  end\n"
"  if v:sub(1, 2) == '@@' then v = v:sub(2) end   -- KEY=@@text is the literal @text\n"
"  assert(o, ('-e %q rejected: %s'):format(data, tostring(err)))\n"
"  assert(o.vars[k] == v and #o.var_order == 1 and o.var_order[1] == k, '-e: wrong vars')\n"
"  if #v > 256 then return end\n"
"  check_coercion(v)\n"
"  if k ~= 's' and k ~= 'i' and k ~= 'n' and k ~= 'b' and k ~= 'p' then\n"
"    local r, msg = dsl.load(path, { vars = o.vars })\n"
"    assert(r == nil and msg:find('unknown variable', 1, true), 'undeclared -e name not rejected')\n"
"  end\n"
"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    fuzz_lua_init("=cli_vars", property);
    return fuzz_lua_one(data, size);
}
