/* embed.c: the built-in modules, all without any file on disk.
 *
 * C modules (modules/<name>.c exporting luaopen_provision_<name>) go into
 * package.preload as "provision._<name>", the pattern linit.c describes.
 * The Lua half (lua/ files, compiled to bytecode by core/gen/embedgen.c) is found by a
 * searcher placed right after preload: "provision.fs" is lua/provision/fs.lua,
 * and a module that is a folder is its init.lua ("provision.compose" is
 * lua/provision/compose/init.lua, "provision.compose.cli" its cli.lua).
 * A "provision.<name>" with no Lua file is the C module itself.
 *
 * Development: PROVISION_LUA_DIR=lua makes the searcher read the files from
 * that folder instead, so a change to lua/ needs no rebuild.
 *
 * package.path and package.cpath keep only their absolute entries: Lua's
 * defaults end with ./?.lua and ./?.so, so a json.lua in the folder
 * provision runs in would win over a recipe's own modules (a recipe's
 * require looks in its modules/ folder and PROVISION_PATH first:
 * lua/provision/dsl/loader.lua). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

struct embedded_lua { const char *name, *chunkname, *src; size_t len; };
#include "lua_embed.inc"

static const luaL_Reg builtin_c[] = {
#define MODULE(n) { "provision._" #n, luaopen_provision_##n },
#include "modules.inc"
#undef MODULE
    { "provision._core", luaopen_provision_core },
    { NULL, NULL }
};

static const struct embedded_lua *find_embedded(const char *name)
{
    for (const struct embedded_lua *e = embedded_lua; e->name; e++)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

/* searcher(name) -> loader, extra | message */
static int search_embedded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *dir = getenv("PROVISION_LUA_DIR");
    /* dir/a/b.lua, else the folder's dir/a/b/init.lua (Lua's ?/init.lua) */
    static const char *const suffixes[] = { ".lua", "/init.lua" };
    for (size_t i = 0; dir && *dir && i < sizeof suffixes / sizeof *suffixes; i++) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, dir);
        luaL_addchar(&b, '/');
        for (const char *p = name; *p; p++) luaL_addchar(&b, *p == '.' ? '/' : *p);
        luaL_addstring(&b, suffixes[i]);
        luaL_pushresult(&b);
        const char *path = lua_tostring(L, -1);
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            if (luaL_loadfilex(L, path, "t") != LUA_OK)
                return luaL_error(L, "error loading module '%s': %s", name, lua_tostring(L, -1));
            lua_pushstring(L, path);
            return 2;
        }
        lua_pop(L, 1);
    }
    const struct embedded_lua *e = find_embedded(name);
    if (e) {
        if (luaL_loadbufferx(L, e->src, e->len, e->chunkname, "b") != LUA_OK)
            return luaL_error(L, "error loading module '%s': %s", name, lua_tostring(L, -1));
        lua_pushstring(L, e->chunkname + 1);
        return 2;
    }
    if (strncmp(name, "provision.", 10) == 0) {
        /* provision.<name> with no Lua half: the C module itself */
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
        lua_pushfstring(L, "provision._%s", name + 10);
        lua_gettable(L, -2);
        if (lua_isfunction(L, -1)) {
            lua_pushstring(L, ":preload:");
            return 2;
        }
        lua_pop(L, 2);
    }
    lua_pushfstring(L, "no built-in module '%s'", name);
    return 1;
}

/* package[field]: its entries that start with "/", in order */
static void keep_absolute(lua_State *L, const char *field)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);                 /* package path */
    const char *p = lua_tostring(L, -1);
    if (!p) { lua_pop(L, 2); return; }
    luaL_Buffer b;
    luaL_buffinit(L, &b);                       /* package path <buffer> */
    int first = 1;
    while (*p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 0 && p[0] == '/') {
            if (!first) luaL_addchar(&b, ';');
            luaL_addlstring(&b, p, n);
            first = 0;
        }
        p += n;
        if (*p == ';') p++;
    }
    luaL_pushresult(&b);                        /* package path newpath */
    lua_setfield(L, -3, field);                 /* package path */
    lua_pop(L, 2);
}

void provision_open_builtins(lua_State *L)
{
    keep_absolute(L, "path");
    keep_absolute(L, "cpath");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const luaL_Reg *m = builtin_c; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);
    /* package.searchers: insert ours at 2, right after preload */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");          /* package searchers */
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = n; i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, search_embedded);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);
}
