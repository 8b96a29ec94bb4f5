/* fuzz_lua.h: what the Lua-level fuzz targets share.
 *
 * A target embeds its property as a Lua chunk that returns a function
 * f(data) -> nothing; a property that does not hold raises. fuzz_lua_init
 * builds the Lua state once (as core/main.c does: luaL_openlibs +
 * provision_open_builtins), runs the chunk and keeps f; fuzz_lua_one calls
 * f under lua_pcall with a traceback and abort()s on any error, so
 * libFuzzer saves the input as a crash.
 *
 * Coverage of the Lua code: the Debian Lua library is not instrumented,
 * so libFuzzer would see only the C side. A line hook feeds (previous line,
 * this line) pairs of Lua code into libFuzzer's extra counters, so inputs
 * that take new paths through the Lua parsers are kept in the corpus.
 * FUZZ_NO_LUA_COVERAGE=1 turns the hook off (faster, blind on Lua code). */
#ifndef FUZZ_LUA_H
#define FUZZ_LUA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "core.h"

#define FUZZ_LUA_COUNTERS 65536
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fuzz_lua_counters[FUZZ_LUA_COUNTERS];
static uintptr_t fuzz_lua_prev;

static void fuzz_lua_hook(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar)) return;
    /* The chunk's name and the line number identify the line (not the
     * address of the source string: a chunk loaded again, a recipe, gets
     * a new one, which would look like new coverage every time). */
    uintptr_t here = 2166136261u;
    for (const char *p = ar->short_src; *p; p++) here = (here ^ (unsigned char)*p) * 16777619u;
    here ^= (uintptr_t)ar->currentline * 2654435761u;
    uintptr_t edge = (here ^ (fuzz_lua_prev >> 1)) % FUZZ_LUA_COUNTERS;
    if (fuzz_lua_counters[edge] < 255) fuzz_lua_counters[edge]++;
    fuzz_lua_prev = here;
}

static int fuzz_lua_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static lua_State *fuzz_L;

/* At exit, so that LeakSanitizer's check there sees only what is lost. */
static void fuzz_lua_close(void)
{
    if (fuzz_L) lua_close(fuzz_L);
    fuzz_L = NULL;
}

/* Runs `chunk` (named `name`) and keeps the function it returns. Any error
 * here is a broken target: say so and abort. */
static void fuzz_lua_init(const char *name, const char *chunk)
{
    if (fuzz_L) return;
    lua_State *L = luaL_newstate();
    if (!L) abort();
    luaL_openlibs(L);
    provision_open_builtins(L);
    lua_pushcfunction(L, fuzz_lua_traceback);
    if (luaL_loadbuffer(L, chunk, strlen(chunk), name) != LUA_OK
        || lua_pcall(L, 0, 1, 1) != LUA_OK || !lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz target %s: init failed: %s\n", name,
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "chunk did not return a function");
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.property");
    lua_pop(L, 1);
    if (!getenv("FUZZ_NO_LUA_COVERAGE")) lua_sethook(L, fuzz_lua_hook, LUA_MASKLINE, 0);
    fuzz_L = L;
    atexit(fuzz_lua_close);
}

static int fuzz_lua_one(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, fuzz_lua_traceback);
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.property");
    lua_pushlstring(L, (const char *)data, size);
    fuzz_lua_prev = 0;
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
        fprintf(stderr, "property failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, top);
    return 0;
}

#endif
