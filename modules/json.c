/* json.c: "provision._json": JSON through jansson, for --json events, the
 * state file, HTTP replies and the Docker Engine API.
 *
 *   json.encode(value [, {pretty=true}]) -> string    (raises on a value JSON cannot hold)
 *   json.decode(string) -> value | nil, "line L column C: why"
 *   json.null        a sentinel for JSON null (decode gives it; encode takes it)
 *   json.array(t)    marks t as an array, so an empty table encodes as []
 *
 * Lua tables: a table whose keys are exactly 1..n is an array; any other
 * table is an object with string keys (numbers as keys are written as text). */
#include <math.h>
#include <string.h>
#include <jansson.h>
#include "core.h"

#define ARRAY_MT "provision.json.array"

static json_t *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen);

static int is_array(lua_State *L, int idx, size_t *n)
{
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, ARRAY_MT);
        int marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked) { *n = lua_rawlen(L, idx); return 1; }
    }
    size_t count = 0, len = lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) { lua_pop(L, 1); return 0; }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1 || (size_t)k > len) { lua_pop(L, 1); return 0; }
        count++;
    }
    *n = count;
    return count > 0 && count == len;
}

static json_t *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (depth > 200) { snprintf(err, errlen, "nesting too deep (a cycle?)"); return NULL; }
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer(lua_tointeger(L, idx));
        {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) { snprintf(err, errlen, "cannot encode %g", d); return NULL; }
            return json_real(d);
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn_nocheck(s, len);
        return j;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return json_null();
        break;
    case LUA_TTABLE: {
        luaL_checkstack(L, 4, "json.encode");
        if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
            /* an object that prints itself (a secret prints its mask) */
            lua_pop(L, 1);
            luaL_tolstring(L, idx, NULL);
            json_t *j = json_string_nocheck(lua_tostring(L, -1));
            lua_pop(L, 1);
            return j;
        }
        size_t n;
        if (is_array(L, idx, &n)) {
            json_t *a = json_array();
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, (lua_Integer)i);
                json_t *v = to_json(L, -1, depth + 1, err, errlen);
                lua_pop(L, 1);
                if (!v) { json_decref(a); return NULL; }
                json_array_append_new(a, v);
            }
            return a;
        }
        json_t *o = json_object();
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pushvalue(L, -2);
            const char *k = lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TSTRING
                ? lua_tostring(L, -1) : NULL;
            if (!k) {
                snprintf(err, errlen, "cannot encode a %s key", luaL_typename(L, -1));
                lua_pop(L, 3); json_decref(o); return NULL;
            }
            json_t *v = to_json(L, -2, depth + 1, err, errlen);
            if (!v) { lua_pop(L, 3); json_decref(o); return NULL; }
            json_object_set_new_nocheck(o, k, v);
            lua_pop(L, 2);
        }
        return o;
    }
    default: break;
    }
    /* userdata that prints itself */
    if (luaL_callmeta(L, idx, "__tostring")) {
        json_t *j = json_string_nocheck(lua_tostring(L, -1));
        lua_pop(L, 1);
        return j;
    }
    snprintf(err, errlen, "cannot encode a %s", luaL_typename(L, idx));
    return NULL;
}

static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int pretty = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "pretty");
        pretty = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    char err[256];
    json_t *j = to_json(L, 1, 0, err, sizeof err);
    if (!j) return luaL_error(L, "json.encode: %s", err);
    size_t flags = JSON_ENCODE_ANY | JSON_SORT_KEYS | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    char *s = json_dumps(j, flags);
    json_decref(j);
    if (!s) return luaL_error(L, "json.encode: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static void push_json(lua_State *L, json_t *j, int depth)
{
    luaL_checkstack(L, 4, "json.decode");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k; json_t *v;
        json_object_foreach(j, k, v) {
            push_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i; json_t *v;
        lua_createtable(L, (int)json_array_size(j), 0);
        json_array_foreach(j, i, v) {
            push_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        luaL_setmetatable(L, ARRAY_MT);
        break;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: lua_pushinteger(L, json_integer_value(j)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
    }
}

static int json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    json_error_t e;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %d column %d: %s", e.line, e.column, e.text);
        return 2;
    }
    /* push_json only raises when the Lua stack cannot grow; jansson caps
     * nesting at 2048 levels, far below Lua's stack limit. */
    push_json(L, j, 0);
    json_decref(j);
    return 1;
}

static int json_array_mark(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, ARRAY_MT);
    return 1;
}

static const luaL_Reg json_funcs[] = {
    { "array", json_array_mark },
    { "decode", json_decode },
    { "encode", json_encode },
    { NULL, NULL }
};

int luaopen_provision_json(lua_State *L)
{
    luaL_newmetatable(L, ARRAY_MT);
    lua_pop(L, 1);
    luaL_newlib(L, json_funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
