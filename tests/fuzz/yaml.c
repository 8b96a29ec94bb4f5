/* Fuzz target: the YAML loader (modules/yaml.c through provision.yaml),
 * which reads Compose files and other outside YAML.
 *
 * Properties, for any bytes:
 *   - yaml.load(text) returns a value, or nil and a message: it never
 *     raises, crashes or trips a sanitizer; the value is made of tables
 *     with string keys, strings, numbers, booleans and yaml.null;
 *   - dump -> load round trip: yaml.dump(v) either refuses a value that
 *     contains itself (an alias inside its own anchor) with that message,
 *     or gives text that loads back to a value equal to v (deep equality;
 *     sequences stay sequences, NaN equals NaN). Values that would take
 *     more than 20000 nodes to write out (aliases repeat their anchor) are
 *     only loaded: writing a "billion laughs" out is not the property. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char property[] =
"local yaml = require 'provision.yaml'\n"
"local BUDGET = 20000\n"
"-- nodes a dump would write (shared tables counted each time), capped\n"
"local function count(v, n, stack)\n"
"  n = n + 1\n"
"  if n > BUDGET or type(v) ~= 'table' or v == yaml.null then return n end\n"
"  if stack[v] then return BUDGET + 1 end\n"
"  stack[v] = true\n"
"  for k, x in pairs(v) do\n"
"    if type(k) ~= 'string' and math.type(k) ~= 'integer' then error('key of type ' .. type(k)) end\n"
"    n = count(x, n, stack)\n"
"    if n > BUDGET then break end\n"
"  end\n"
"  stack[v] = nil\n"
"  return n\n"
"end\n"
"local function check_types(v, seen)\n"
"  local t = type(v)\n"
"  if v == yaml.null or t == 'string' or t == 'number' or t == 'boolean' then return end\n"
"  assert(t == 'table', 'loaded a ' .. t)\n"
"  if seen[v] then return end\n"
"  seen[v] = true\n"
"  local arr = yaml.is_array(v)\n"
"  for k, x in pairs(v) do\n"
"    if arr then assert(math.type(k) == 'integer' and k >= 1 and k <= #v, 'sequence with key ' .. tostring(k))\n"
"    else assert(type(k) == 'string', 'mapping key of type ' .. type(k)) end\n"
"    check_types(x, seen)\n"
"  end\n"
"end\n"
"local function equal(a, b, path)\n"
"  if a == b then return true end\n"
"  if type(a) == 'number' and type(b) == 'number' then\n"
"    if a ~= a and b ~= b then return true end\n"
"    error(('%s: %s ~= %s'):format(path, tostring(a), tostring(b)))\n"
"  end\n"
"  if type(a) ~= 'table' or type(b) ~= 'table' or a == yaml.null or b == yaml.null then\n"
"    error(('%s: %s (%s) ~= %s (%s)'):format(path, tostring(a), type(a), tostring(b), type(b)))\n"
"  end\n"
"  if yaml.is_array(a) ~= yaml.is_array(b) then error(path .. ': sequence vs mapping') end\n"
"  for k, x in pairs(a) do equal(x, b[k], path .. '.' .. tostring(k)) end\n"
"  for k in pairs(b) do if a[k] == nil then error(path .. ': extra key ' .. tostring(k)) end end\n"
"  return true\n"
"end\n"
"return function(data)\n"
"  local v, err = yaml.load(data)\n"
"  if v == nil then\n"
"    assert(type(err) == 'string' and err ~= '', 'load failed without a message')\n"
"    return\n"
"  end\n"
"  check_types(v, {})\n"
"  if not yaml.dump or count(v, 0, {}) > BUDGET then return end\n"
"  local ok, text = pcall(yaml.dump, v)\n"
"  if not ok then\n"
"    assert(tostring(text):find('contains itself', 1, true), 'dump raised: ' .. tostring(text))\n"
"    return\n"
"  end\n"
"  local w, werr = yaml.load(text)\n"
"  if w == nil then error('dump wrote text that does not load: ' .. werr .. '\\n--- text:\\n' .. text) end\n"
"  local okq, qerr = pcall(equal, v, w, '$')\n"
"  if not okq then error('round trip changed the value: ' .. tostring(qerr) .. '\\n--- dump:\\n' .. text) end\n"
"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    fuzz_lua_init("=yaml", property);
    return fuzz_lua_one(data, size);
}
