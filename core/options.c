/* options.c: the usual case of a resource's options check, in C.
 *
 * A recipe calls a resource constructor once per step (fs.file { ... }
 * ten thousand times from one loop), and every call checks its options
 * (lua/provision/resource.lua, R.validate). The Lua check is the one
 * definition of the rules and of every message; this is its fast path for
 * options that are right: it takes what it can vouch for (a string that is
 * UTF-8 text without NUL, a non-empty path, a mode such as "0644", a
 * boolean; any other type through its Lua checker) and answers nil for
 * anything else (an unknown option, a missing one, a number given for a
 * string, a value a checker refuses, a table with a metatable), and the
 * Lua check then runs and says what is wrong, or converts what it may.
 *
 *   options_plan(c) -> plan: c is R.validate's compiled spec ({ name,
 *       type, checker, optional, default, path } each, and c.known)
 *   check_options(plan, args) -> the checked options (a new table) | nil
 */
#include <stdlib.h>
#include <string.h>
#include "core.h"

enum { T_STRING, T_SECRET, T_MODE, T_BOOLEAN, T_OTHER };

struct option { unsigned char type, optional, path, has_default; };
struct plan { int n; struct option o[]; };

#define PLAN_MT "provision.options_plan"
/* the plan's user values: the names, c itself (defaults, checkers), c.known */
enum { UV_NAMES = 1, UV_SPEC, UV_KNOWN, UV_COUNT = 3 };

static int type_code(const char *t)
{
    if (strcmp(t, "string") == 0) return T_STRING;
    if (strcmp(t, "secret") == 0) return T_SECRET;
    if (strcmp(t, "mode") == 0) return T_MODE;
    if (strcmp(t, "boolean") == 0) return T_BOOLEAN;
    return T_OTHER;
}

static int options_plan(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)luaL_len(L, 1);
    struct plan *p = lua_newuserdatauv(L, sizeof *p + (size_t)n * sizeof p->o[0], UV_COUNT);
    p->n = n;
    lua_createtable(L, n, 0);   /* names */
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_getfield(L, -1, "name");
        lua_rawseti(L, -3, i);
        lua_getfield(L, -1, "type");
        p->o[i - 1].type = (unsigned char)type_code(luaL_optstring(L, -1, ""));
        lua_getfield(L, -2, "optional");
        p->o[i - 1].optional = (unsigned char)lua_toboolean(L, -1);
        lua_getfield(L, -3, "path");
        p->o[i - 1].path = (unsigned char)lua_toboolean(L, -1);
        lua_getfield(L, -4, "default");
        p->o[i - 1].has_default = (unsigned char)!lua_isnil(L, -1);
        lua_pop(L, 5);
    }
    lua_setiuservalue(L, -2, UV_NAMES);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, UV_SPEC);
    lua_getfield(L, 1, "known");
    lua_setiuservalue(L, -2, UV_KNOWN);
    luaL_setmetatable(L, PLAN_MT);
    return 1;
}

/* "0644", "755", "1777": ^0?[0-7]{3,4}$ (checkers.mode) -> the mode, or -1 */
static lua_Integer parse_mode(const char *s, size_t n)
{
    if (n == 4 && s[0] == '0') { s++; n--; }
    if (n != 3 && n != 4) return -1;
    lua_Integer m = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7') return -1;
        m = m * 8 + (s[i] - '0');
    }
    return m;
}

/* a path option's value given by a checker of another type: a list of
 * paths must hold no empty one (checkers.strings' lists) */
static int no_empty_path(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) return lua_rawlen(L, idx) > 0;
    if (lua_type(L, idx) != LUA_TTABLE) return 1;
    for (lua_Integer i = 1;; i++) {
        int t = lua_rawgeti(L, idx, i);
        int ok = t != LUA_TSTRING || lua_rawlen(L, -1) > 0;
        lua_pop(L, 1);
        if (t == LUA_TNIL) return 1;
        if (!ok) return 0;
    }
}

/* the value at the top (option i's) checked and replaced by what is kept:
 * 1, or 0 (the Lua check is to say) */
static int check_one(lua_State *L, const struct option *o, int spec, int i)
{
    int t = lua_type(L, -1);
    size_t len;
    switch (o->type) {
    case T_STRING: {
        if (t != LUA_TSTRING) return 0;
        const char *s = lua_tolstring(L, -1, &len);
        if ((o->path && len == 0) || memchr(s, '\0', len) || !provision_utf8_valid(s, len)) return 0;
        return 1;
    }
    case T_SECRET:
        if (t == LUA_TSTRING) return !o->path || lua_rawlen(L, -1) > 0;
        break;
    case T_MODE: {
        if (t != LUA_TSTRING) return 0;
        const char *s = lua_tolstring(L, -1, &len);
        lua_Integer m = parse_mode(s, len);
        if (m < 0) return 0;
        lua_pop(L, 1);
        lua_pushinteger(L, m);
        return 1;
    }
    case T_BOOLEAN:
        return t == LUA_TBOOLEAN;
    }
    /* another type: its checker, as the Lua check calls it */
    lua_rawgeti(L, spec, i);
    lua_getfield(L, -1, "checker");   /* v c[i] checker */
    lua_rotate(L, -3, 2);             /* c[i] checker v */
    lua_call(L, 1, 1);                /* c[i] nv */
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) return 0;
    return !o->path || no_empty_path(L, lua_gettop(L));
}

static int check_options(lua_State *L)
{
    struct plan *p = luaL_checkudata(L, 1, PLAN_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_getmetatable(L, 2)) return 0;   /* its fields may not be what pairs gives */
    lua_getiuservalue(L, 1, UV_NAMES);      /* 3 */
    lua_getiuservalue(L, 1, UV_SPEC);       /* 4 */
    lua_getiuservalue(L, 1, UV_KNOWN);      /* 5 */
    int given = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) return 0;
        lua_pushvalue(L, -1);
        int known = lua_rawget(L, 5) != LUA_TNIL;
        lua_pop(L, 1);
        if (!known) return 0;
        given++;
    }
    int defaults = 0;
    for (int i = 0; i < p->n; i++) defaults += p->o[i].has_default;
    lua_createtable(L, 0, given + defaults);   /* 6: out */
    for (int i = 1; i <= p->n; i++) {
        const struct option *o = &p->o[i - 1];
        lua_rawgeti(L, 3, i);                   /* name */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, 2) == LUA_TNIL && o->has_default) {   /* name v */
            lua_pop(L, 1);
            lua_rawgeti(L, 4, i);
            lua_getfield(L, -1, "default");
            lua_remove(L, -2);
        }
        if (lua_isnil(L, -1)) {
            lua_pop(L, 2);
            if (!o->optional) return 0;
            continue;
        }
        if (!check_one(L, o, 4, i)) return 0;
        lua_rawset(L, 6);                       /* out[name] = v */
    }
    return 1;
}

static const luaL_Reg options_funcs[] = {
    { "options_plan", options_plan },
    { "check_options", check_options },
    { NULL, NULL }
};

/* adds options_plan and check_options to the table at the top (_core) */
void provision_open_options(lua_State *L)
{
    luaL_newmetatable(L, PLAN_MT);
    lua_pop(L, 1);
    luaL_setfuncs(L, options_funcs, 0);
}
