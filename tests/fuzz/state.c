/* Fuzz target: the state-file reader (lua/provision/state.lua: json.decode,
 * State.validate and the journal replay, as State.open runs them through
 * State._read).
 *
 * The input is a state file and a journal: split at the first NUL byte
 * (state, journal), else the whole input tried as a state file alone and
 * as a journal alone.
 *
 * Properties, for any bytes:
 *   - State._read never raises: it gives a state, or a "state file ... is
 *     damaged (why); move it away ..." message naming the file at fault;
 *   - a state it gives validates, survives json.encode (the next save)
 *     and json.decode, validates again, and encode/decode is a fixpoint;
 *     the indented form of it reads back to the same state too;
 *   - the journal State writes for it (one {set, value} line per step,
 *     one {replaced} line) replayed over no state gives the same steps
 *     and replaced records;
 *   - a journal whose last line has no newline (a run killed while it
 *     wrote it) reads as the journal without that line;
 *   - the text save writes for a state, read lazily (json.decode_lazy,
 *     decode_at: what open does when its digest matches), gives the same
 *     record for every step, and no other step. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char property[] =
"local State = require 'provision.state'\n"
"local json = require 'provision.json'\n"
"\n"
"local function read(text, jtext)\n"
"  local ok, data, msg = pcall(State._read, text, jtext, 'S.json', 'S.journal')\n"
"  assert(ok, 'State._read raised: ' .. tostring(data))\n"
"  if data == nil then\n"
"    assert(type(msg) == 'string', 'no state and no message')\n"
"    assert(msg:find('^state file S%.json is damaged %(.+%); move it away') or\n"
"           msg:find('^state file S%.journal is damaged %(.+%); move it away'), 'not a damaged message: ' .. msg)\n"
"    return nil, msg\n"
"  end\n"
"  local v, why = State.validate(data)\n"
"  assert(v, 'read gave a state that does not validate: ' .. tostring(why))\n"
"  local eok, text2 = pcall(json.encode, data)\n"
"  assert(eok, 'a state that was read cannot be encoded (saved): ' .. tostring(text2))\n"
"  local d2 = assert(json.decode(text2))\n"
"  local v2, why2 = State.validate(d2)\n"
"  assert(v2, 'encoded and decoded, the state no longer validates: ' .. tostring(why2))\n"
"  assert(json.encode(d2) == text2, 'encode/decode is not a fixpoint')\n"
"  local d3, err3 = State._read(json.encode(data, { pretty = true }), false, 'S.json', 'S.journal')\n"
"  assert(d3 and json.encode(d3) == text2, 'what save writes does not read back the same: ' .. tostring(err3))\n"
"  -- the journal State writes for it, over no state\n"
"  local lines = {}\n"
"  for name, st in pairs(data.steps) do lines[#lines + 1] = json.encode { set = name, value = st } end\n"
"  if data.replaced ~= nil then lines[#lines + 1] = json.encode { replaced = data.replaced } end\n"
"  if #lines > 0 then\n"
"    local d4, err4 = State._read(false, table.concat(lines, '\\n') .. '\\n', 'S.json', 'S.journal')\n"
"    assert(d4, 'the journal written for a state does not replay: ' .. tostring(err4))\n"
"    assert(json.encode(d4.steps) == json.encode(data.steps), 'replayed steps differ')\n"
"    assert(json.encode(d4.replaced) == json.encode(data.replaced), 'replayed replaced records differ')\n"
"  end\n"
"  -- the text save writes, read lazily as open reads it when its digest\n"
"  -- matches: every step's record the same, and no other\n"
"  local saved = json.encode(data) .. '\\n'\n"
"  local lz = assert(json.decode_lazy(saved, 'steps', 200), 'what save writes is not read lazily')\n"
"  local n = 0\n"
"  for name, at in pairs(lz.steps or {}) do\n"
"    n = n + 1\n"
"    assert(json.encode(json.decode_at(saved, at, 200)) == json.encode(data.steps[name]), 'a record read lazily differs')\n"
"  end\n"
"  for _ in pairs(data.steps) do n = n - 1 end\n"
"  assert(n == 0, 'read lazily, another set of steps')\n"
"  return data, text2\n"
"end\n"
"\n"
"local function same(a, ma, b, mb)\n"
"  if a == nil or b == nil then return a == b and ma == mb end\n"
"  return json.encode(a) == json.encode(b)\n"
"end\n"
"\n"
"local function try(text, jtext)\n"
"  local a, ma = read(text, jtext)\n"
"  if jtext and jtext ~= '' and jtext:sub(-1) ~= '\\n' then\n"
"    local whole = jtext:match('^(.*\\n)') or ''\n"
"    local b, mb = read(text, whole)\n"
"    assert(same(a, ma, b, mb), ('a torn last line changed the result: %s / %s'):format(tostring(ma), tostring(mb)))\n"
"  end\n"
"end\n"
"\n"
"return function(input)\n"
"  local nul = input:find('\\0', 1, true)\n"
"  if nul then\n"
"    try(input:sub(1, nul - 1), input:sub(nul + 1))\n"
"    try(false, input:sub(nul + 1))\n"
"  else\n"
"    try(input, false)\n"
"    try(false, input)\n"
"  end\n"
"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_init("=state", property);
    return fuzz_lua_one(data, size);
}
