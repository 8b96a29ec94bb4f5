/* ldiff.c: the hot path of provision.diff: a new file's diff, which a
 * plan shows for every file it would create.
 *
 *   _core.diff_added(head, text, to, max_lines) -> list
 *
 * The change lines of a file that is to be created with content text:
 * { head, "--- /dev/null", "+++ " .. to, "@@ -0,0 +R @@", "+" .. line, ... },
 * with "\ No newline at end of file" after a last line without one, and
 * at most max_lines after head: the rest counted on a last line "... (N
 * more diff lines)". Empty text: { head } (nothing to show). R is "1" for
 * one line, else "1,N", as diff.lua's range(1, N).
 *
 * Made in Lua (diff.lua's one_sided, which keeps the general case) each
 * line was a string cut from text and a second one with "+" before it, in
 * a list grown one power of 2 at a time: a plan of 142,000 new files made
 * ~0.5 s of those (bench/README.md). Here each line is one string, and the
 * list is made at its size. */
#include <limits.h>
#include <string.h>
#include "core.h"

static int core_diff_added(lua_State *L)
{
    size_t len;
    luaL_checkstring(L, 1);
    const char *text = luaL_checklstring(L, 2, &len);
    luaL_checkstring(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, LUA_MAXINTEGER);
    if (max < 0) max = 0;
    if (len == 0) {
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, 1);
        lua_rawseti(L, -2, 1);
        return 1;
    }

    /* the lines, counted first: the list is made at its size */
    lua_Integer lines = 0;
    for (const char *p = text, *e = text + len; p < e; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        p = nl ? nl + 1 : e;
    }
    int noeol = text[len - 1] != '\n';
    lua_Integer total = 3 + lines + noeol;   /* ---, +++, @@, the lines */
    lua_Integer shown = total > max ? max : total;
    lua_Integer size = 1 + shown + (total > max);
    lua_createtable(L, size < INT_MAX ? (int)size : 0, 0);   /* (past INT_MAX lines: grown as it goes) */
    int out = lua_gettop(L);
    lua_Integer o = 0, last = 1 + shown;   /* lines in out; the index of the last one shown */
    lua_pushvalue(L, 1);
    lua_rawseti(L, out, ++o);
    if (o < last) {
        lua_pushliteral(L, "--- /dev/null");
        lua_rawseti(L, out, ++o);
    }
    if (o < last) {
        lua_pushliteral(L, "+++ ");
        lua_pushvalue(L, 3);
        lua_concat(L, 2);
        lua_rawseti(L, out, ++o);
    }
    if (o < last) {
        if (lines == 1) lua_pushliteral(L, "@@ -0,0 +1 @@");
        else lua_pushfstring(L, "@@ -0,0 +1,%I @@", (LUAI_UACINT)lines);
        lua_rawseti(L, out, ++o);
    }
    luaL_Buffer b;
    for (const char *p = text, *e = text + len; p < e && o < last;) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *end = nl ? nl : e;
        luaL_buffinit(L, &b);
        luaL_addchar(&b, '+');
        luaL_addlstring(&b, p, (size_t)(end - p));
        luaL_pushresult(&b);
        lua_rawseti(L, out, ++o);
        p = nl ? nl + 1 : e;
    }
    if (noeol && o < last) {
        lua_pushliteral(L, "\\ No newline at end of file");
        lua_rawseti(L, out, ++o);
    }
    if (total > max) {
        lua_pushfstring(L, "... (%I more diff lines)", (LUAI_UACINT)(total - max));
        lua_rawseti(L, out, ++o);
    }
    return 1;
}

void provision_open_diff(lua_State *L)
{
    lua_pushcfunction(L, core_diff_added);
    lua_setfield(L, -2, "diff_added");
}
