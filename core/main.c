/* main.c: the provision binary. Everything runs protected, as in lua.c:
 * pmain under lua_pcall with a traceback handler. The CLI itself (verbs,
 * flags, the runner) is Lua: lua/provision/cli.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "core.h"

static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* At exit the heap goes back to the kernel whole: lua_close still runs
 * every finalizer (ssh tunnels stopped, working folders removed, a
 * recipe's own __gc), but with this allocator its frees do nothing (a
 * 10,000-step run frees some 300,000 objects one by one otherwise), and
 * the walk over every object to free it is skipped too: the first object
 * given a finalizer is exit_last's, and Lua calls finalizers at close in
 * the reverse order they were set, so it runs after all the others and
 * exits from there (a 10-step no-op: 4.29 -> 3.98 M instructions; a big
 * recipe's collector is generational, and Lua's switch back to
 * incremental at close still walks once). Builds and runs that
 * check for leaks free for real: sanitizer builds (PROVISION_FREE_AT_EXIT)
 * and PROVISION_FREE_AT_EXIT=1 in the environment (tests/leaks: valgrind). */
static void *exit_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud; (void)osize;
    if (nsize == 0) return NULL;   /* the kernel takes it back at exit */
    return realloc(ptr, nsize);
}

/* free at exit, for real: sanitizer builds and PROVISION_FREE_AT_EXIT=1 */
static int free_at_exit(void)
{
#ifdef PROVISION_FREE_AT_EXIT
    return 1;
#else
    const char *e = getenv("PROVISION_FREE_AT_EXIT");
    return e && strcmp(e, "1") == 0;
#endif
}

/* the state's allocator: small blocks by size class (core/alloc.c), where
 * leaks are not looked for */
static int small_blocks;

static int exit_code, closing;

/* the last finalizer of lua_close (see above): what main does after it.
 * (Collected before, were the registry's hold dropped: nothing to do.) */
static int exit_last(lua_State *L)
{
    (void)L;
    if (closing) exit(exit_code);
    return 0;
}

/* the first object with a finalizer, kept to the end (the registry holds it) */
static void set_exit_last(lua_State *L)
{
    lua_newuserdatauv(L, 0, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, exit_last);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "provision.exit_last");
}

static void close_state(lua_State *L, int code)
{
    exit_code = code;
    closing = 1;
    if (small_blocks) provision_alloc_exit();   /* its frees do nothing from here on */
    else if (!free_at_exit()) lua_setallocf(L, exit_alloc, NULL);
    lua_close(L);
}

static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    luaL_openlibs(L);
    provision_open_builtins(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "provision.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    return 1;
}

int main(int argc, char **argv)
{
    /* The fast path: no Lua state needed to say who we are. */
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("provision %s (%s)\n", PROVISION_VERSION, LUA_RELEASE);
        return EXIT_OK;
    }
    lua_State *L = luaL_newstate();
    if (!L) { fputs("provision: cannot create Lua state: out of memory\n", stderr); return EXIT_FAILED; }
    if (!free_at_exit()) {
        set_exit_last(L);
        if (provision_alloc_init()) {   /* (blocks made so far stay malloc's: alloc.c tells) */
            small_blocks = 1;
            lua_setallocf(L, provision_alloc, NULL);
        }
    }
    /* While provision's own modules load (a few MB, nearly all of which
     * stays), collecting is wasted work: Lua's pause of 200 % starts a
     * cycle at every doubling from the first kilobytes. 1000 % until the
     * recipe loads (Loader:run, and --script before its chunk, put Lua's
     * 200 back: core.gc_settle): a 10-step no-op 5.86 -> 5.40 M
     * instructions, the same peak. */
    lua_gc(L, LUA_GCINC, 1000, 0, 0);
    provision_signals_install(L);
    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 1);
    int code;
    fflush(stdout);   /* the step lines held (report.lua) before any error on stderr */
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (provision_interrupted()) {
            fputs("provision: interrupted\n", stderr);
            code = EXIT_INTERRUPTED;
        } else {
            fprintf(stderr, "provision: internal error: %s\n", msg ? msg : "?");
            code = EXIT_FAILED;
        }
    } else {
        code = (int)lua_tointeger(L, -1);
    }
    close_state(L, code);
    return code;
}
