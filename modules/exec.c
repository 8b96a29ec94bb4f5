/* exec.c: "provision._exec": run a process from an argv, never a shell
 * string. The resource (exec.command with creates/unless guards) is
 * lua/provision/exec.lua.
 *
 *   exec.run { "prog", "arg", ..., cwd=, env={K=V}, input=, timeout=, passthrough= }
 *     -> { status=, output=, timed_out=, interrupted=, seconds= }
 *     |  nil, "prog: why"            (could not be started)
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core.h"

#define CAPTURE_MAX_LIMIT (256 << 20)   /* 256 MiB */

static int exec_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n < 1) return luaL_argerror(L, 1, "argv is empty");
    provision_proc_opts o;
    memset(&o, 0, sizeof o);
    /* argv and env arrays live in userdata so an error frees them (via GC) */
    const char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    /* A number in argv is converted to a new string on the stack copy; that
     * string must stay referenced until the child has been spawned, or the
     * GC may free it: this table anchors every argv string. */
    lua_createtable(L, (int)(n < 1000000 ? n : 0), 0);
    int anchor = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (!lua_isstring(L, -1))
            return luaL_error(L, "exec.run: argv[%d] is a %s, not a string", (int)i, luaL_typename(L, -1));
        argv[i - 1] = lua_tostring(L, -1);
        lua_rawseti(L, anchor, i);           /* pops it; the anchor keeps it */
    }
    argv[n] = NULL;
    o.argv = argv;
    lua_getfield(L, 1, "cwd");
    o.cwd = luaL_optstring(L, -1, NULL);     /* a number becomes a string here: */
    int cwd_idx = lua_gettop(L);             /* kept on the stack until the spawn */
    (void)cwd_idx;
    lua_getfield(L, 1, "timeout");
    o.timeout = luaL_optnumber(L, -1, 0);
    lua_pop(L, 1);
    lua_getfield(L, 1, "passthrough");
    o.passthrough = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "capture_max");
    if (!lua_isnil(L, -1)) {
        /* the output kept is at most this many bytes (its tail); the buffer
         * can grow to twice that before it is trimmed */
        lua_Integer cm = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
        if (cm < 1 || cm > CAPTURE_MAX_LIMIT)
            return luaL_error(L, "exec.run: capture_max must be a whole number of bytes from 1 to %d, got %s",
                              (int)CAPTURE_MAX_LIMIT, luaL_tolstring(L, -1, NULL));
        o.capture_max = (size_t)cm;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "input");
    if (!lua_isnil(L, -1)) o.input = luaL_checklstring(L, -1, &o.input_len);
    int input_idx = lua_gettop(L);   /* keep it on the stack */
    (void)input_idx;
    lua_getfield(L, 1, "env");
    if (lua_istable(L, -1)) {
        int envt = lua_gettop(L);
        size_t cnt = 0;
        lua_pushnil(L);
        while (lua_next(L, envt)) { cnt++; lua_pop(L, 1); }
        const char **env = lua_newuserdatauv(L, sizeof(char *) * (cnt + 1), 0);
        lua_newtable(L);                 /* keeps the KEY=VALUE strings alive */
        int keep = lua_gettop(L);
        size_t k = 0;
        lua_pushnil(L);
        while (lua_next(L, envt)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "exec.run: env keys must be strings");
            /* two statements: the order of a call's arguments is unspecified,
             * and luaL_tolstring pushes (moving what -2 means) */
            const char *key = lua_tostring(L, -2);
            const char *val = luaL_tolstring(L, -1, NULL);
            lua_pushfstring(L, "%s=%s", key, val);
            env[k] = lua_tostring(L, -1);
            lua_rawseti(L, keep, (lua_Integer)++k);
            lua_pop(L, 2);               /* tolstring copy, value */
        }
        env[k] = NULL;
        o.env = env;
    }
    provision_proc_result r;
    double t0 = provision_now();
    if (provision_proc_run(&o, &r) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, r.error);
        return 2;
    }
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, r.status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, r.output, r.output_len);
    free(r.output);
    lua_setfield(L, -2, "output");
    lua_pushboolean(L, r.timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushboolean(L, r.interrupted);
    lua_setfield(L, -2, "interrupted");
    lua_pushnumber(L, provision_now() - t0);
    lua_setfield(L, -2, "seconds");
    return 1;
}

/* which(name) -> full path | nil: is a command on PATH? (no process spawned) */
static int exec_which(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (strchr(name, '/')) {
        if (access(name, X_OK) == 0) { lua_pushstring(L, name); return 1; }
        lua_pushnil(L);
        return 1;
    }
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    luaL_Buffer b;
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        luaL_buffinit(L, &b);
        if (len == 0) luaL_addchar(&b, '.'); else luaL_addlstring(&b, path, len);
        luaL_addchar(&b, '/');
        luaL_addstring(&b, name);
        luaL_pushresult(&b);
        if (access(lua_tostring(L, -1), X_OK) == 0) return 1;
        lua_pop(L, 1);
        path += len + (end ? 1 : 0);
    }
    lua_pushnil(L);
    return 1;
}

static const luaL_Reg exec_funcs[] = {
    { "run", exec_run },
    { "which", exec_which },
    { NULL, NULL }
};

int luaopen_provision_exec(lua_State *L)
{
    luaL_newlib(L, exec_funcs);
    return 1;
}
