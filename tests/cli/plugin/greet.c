/* A tiny C plugin for the plugin tests: require "greet" loads greet.so. */
#include <lua.h>
#include <lauxlib.h>

static int greet_hello(lua_State *L)
{
    lua_pushfstring(L, "hello, %s", luaL_checkstring(L, 1));
    return 1;
}

int luaopen_greet(lua_State *L);
int luaopen_greet(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, greet_hello);
    lua_setfield(L, -2, "hello");
    return 1;
}
