/* Fuzz target: json.encode's own writer (modules/json/write.c) against
 * jansson's path (modules/json/json.c), which a number among the keys of a
 * wrapper forces: the writer gives a value with such a key up whole.
 *
 * Properties, for any bytes:
 *   - the bytes as a string: encode gives what jansson's path gives, and
 *     decode reads it back to the bytes; bytes that are not UTF-8 raise
 *     "not valid UTF-8" either way;
 *   - the bytes as JSON text, when decode reads a value from them: encode
 *     of that value gives what jansson's path gives (when both encode it:
 *     the wrapper is one level deeper, so a value 200 deep is refused
 *     there only), and decode then encode gives that text again. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char property[] =
"local json = require 'provision.json'\n"
"\n"
"local function by_jansson(v)\n"
"  local ok, text = pcall(json.encode, { v = v, [7] = 0 })\n"
"  if not ok then return nil, text end\n"
"  local inner = text:match('^{\"7\":0,\"v\":(.*)}$')\n"
"  assert(inner, 'the wrapper is not where it was put: ' .. text)\n"
"  return inner\n"
"end\n"
"\n"
"return function(input)\n"
"  local ok, fast = pcall(json.encode, input)\n"
"  local slow, why = by_jansson(input)\n"
"  if json.is_text(input) then\n"
"    assert(ok, 'text the writer refused: ' .. tostring(fast))\n"
"    assert(fast == slow, 'the writer and jansson differ on a string: ' .. fast .. ' / ' .. tostring(slow))\n"
"    assert(json.decode(fast) == input, 'a string does not read back')\n"
"  else\n"
"    assert(not ok and tostring(fast):find('not valid UTF%-8'), 'bytes that are not UTF-8 were encoded')\n"
"    assert(slow == nil and tostring(why):find('not valid UTF%-8'), 'jansson took bytes that are not UTF-8')\n"
"  end\n"
"  local v = json.decode(input)\n"
"  if v == nil then return end\n"
"  local eok, text = pcall(json.encode, v)\n"
"  local stext = by_jansson(v)\n"
"  if eok and stext then\n"
"    assert(text == stext, 'the writer and jansson differ: ' .. text .. ' / ' .. stext)\n"
"  end\n"
"  if eok then\n"
"    local v2 = json.decode(text)\n"
"    assert(v2 ~= nil, 'what encode wrote does not decode')\n"
"    assert(json.encode(v2) == text, 'encode/decode is not a fixpoint')\n"
"  end\n"
"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_init("=json_encode", property);
    return fuzz_lua_one(data, size);
}
