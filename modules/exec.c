/* exec.c: "provision._exec": run a process from an argv, never a shell
 * string. The resource (exec.command with creates/unless guards) is
 * lua/provision/exec.lua.
 *
 *   exec.run { "prog", "arg", ..., cwd=, env={K=V}, input=, timeout=, passthrough= }
 *     -> { status=, output=, timed_out=, interrupted=, seconds= }
 *     |  nil, "prog: why"            (could not be started)
 *
 *   exec.many(jobs, opts?) -> results         (many at once: core/procs.c)
 *     jobs[i] = { argv = { "prog", "arg", ... }, input = "bytes"?,
 *                 hold_stdin = false?, env = { K = V }? }
 *     opts = { forks = N? (default all), on_line = function(i, stream, line)?,
 *              grace = seconds? (10) }
 *     results[i] = { status = exit code | nil, signal = number | nil,
 *                    seconds = wall time, error = "prog: why" | nil (could
 *                    not be started; status nil), interrupted = true | nil,
 *                    not_started = true | nil }
 *   Every job gets its own stdin, stdout and stderr pipes and its own
 *   process group; at most forks run at once, started in order. stdin gets
 *   input, then is closed (neither input nor hold_stdin: /dev/null);
 *   hold_stdin keeps it open after the input until the job's program exits
 *   or the run is interrupted. on_line
 *   gets each complete line of job i's stdout ("out") or stderr ("err")
 *   without its newline, each stream in order, a last line without newline
 *   at the end, a line over 1 MiB in 1 MiB pieces; it runs with the shield
 *   up (lcore.c: an interrupt does not raise in it). An interrupt (signal,
 *   --timeout, stdin's EOF) starts no more jobs (not_started), closes every
 *   stdin, keeps reading for grace seconds, then SIGTERMs the groups still
 *   running (interrupted = true on those that were running), SIGKILL 2 s
 *   later; many returns normally: the caller checks _core.interrupted().
 *   An error in on_line stops and reaps every job (SIGTERM, SIGKILL 2 s
 *   later), then goes on up. Misuse raises (an unknown key too).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core.h"

#define CAPTURE_MAX_LIMIT (256 << 20)   /* 256 MiB */

/* The strings of the list at index t as a NULL-ended array (a child's
 * argv). The array and the strings (a number is made a string here) are
 * kept in the table at index anchor: valid as long as it is. what names
 * the list in an error ("exec.run: argv"). */
static const char **string_list(lua_State *L, int t, int anchor, const char *what)
{
    STACK_ENTER(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    lua_Integer k = (lua_Integer)lua_rawlen(L, anchor);
    const char **v = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);   /* v */
    lua_rawseti(L, anchor, ++k);                 /* a userdata never moves: v stays valid */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);                    /* s */
        if (!lua_isstring(L, -1))
            luaL_error(L, "%s[%d] is a %s, not a string", what, (int)i, luaL_typename(L, -1));
        v[i - 1] = lua_tostring(L, -1);
        lua_rawseti(L, anchor, ++k);             /* pops s; the anchor keeps it */
    }
    v[n] = NULL;
    STACK_LEAVE(L, 0);
    return v;
}

/* The table at index envt as NULL-ended "KEY=VALUE" strings (a child's
 * extra environment), kept in the table at index anchor. */
static const char **env_list(lua_State *L, int envt, int anchor, const char *what)
{
    STACK_ENTER(L);
    size_t cnt = 0;
    lua_pushnil(L);
    while (lua_next(L, envt)) { cnt++; lua_pop(L, 1); }
    lua_Integer k = (lua_Integer)lua_rawlen(L, anchor);
    const char **env = lua_newuserdatauv(L, sizeof(char *) * (cnt + 1), 0);   /* env */
    lua_rawseti(L, anchor, ++k);
    size_t e = 0;
    lua_pushnil(L);
    while (lua_next(L, envt)) {                  /* key val */
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: env keys must be strings", what);
        /* two statements: the order of a call's arguments is unspecified,
         * and luaL_tolstring pushes (moving what -2 means) */
        const char *key = lua_tostring(L, -2);
        const char *val = luaL_tolstring(L, -1, NULL);   /* key val sval */
        lua_pushfstring(L, "%s=%s", key, val);           /* key val sval kv */
        env[e++] = lua_tostring(L, -1);
        lua_rawseti(L, anchor, ++k);                     /* key val sval */
        lua_pop(L, 2);                                   /* key */
    }
    env[e] = NULL;
    STACK_LEAVE(L, 0);
    return env;
}

static int exec_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n < 1) return luaL_argerror(L, 1, "argv is empty");
    provision_proc_opts o;
    memset(&o, 0, sizeof o);
    /* argv and env arrays live in userdata so an error frees them (via GC).
     * A number in argv is converted to a new string on the stack copy; that
     * string must stay referenced until the child has been spawned, or the
     * GC may free it: this table anchors every array and string. */
    lua_createtable(L, (int)(n < 1000000 ? n : 0) + 2, 0);
    int anchor = lua_gettop(L);
    o.argv = string_list(L, 1, anchor, "exec.run: argv");
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
    if (lua_istable(L, -1)) o.env = env_list(L, lua_gettop(L), anchor, "exec.run");
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

/* ---- exec.many ---- */

/* raises unless every key of the table at t is one of names (NULL-ended) */
static void check_keys(lua_State *L, int t, const char *const *names, const char *what)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {                     /* key val */
        lua_pop(L, 1);                           /* key */
        int ok = 0;
        for (const char *const *k = names; *k && !ok; k++)
            ok = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), *k) == 0;
        if (ok) continue;
        const char *bad = luaL_tolstring(L, -1, NULL);   /* key bad */
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (const char *const *k = names; *k; k++) {
            if (k != names) luaL_addstring(&b, ", ");
            luaL_addstring(&b, *k);
        }
        luaL_pushresult(&b);                     /* key bad list */
        luaL_error(L, "%s: unknown option '%s' (options: %s)", what, bad, lua_tostring(L, -1));
    }
}

static const char *const JOB_KEYS[] = { "argv", "env", "hold_stdin", "input", NULL };
static const char *const MANY_OPTS[] = { "forks", "grace", "on_line", NULL };

/* jobs[i] into job; every string it points to kept in anchor */
static void read_job(lua_State *L, lua_Integer i, provision_procs_job *job, int anchor)
{
    STACK_ENTER(L);
    lua_rawgeti(L, 1, i);                        /* t */
    int t = lua_gettop(L);
    const char *what = lua_pushfstring(L, "exec.many: jobs[%d]", (int)i);   /* t what */
    if (!lua_istable(L, t)) luaL_error(L, "%s is a %s, not a table", what, luaL_typename(L, t));
    check_keys(L, t, JOB_KEYS, what);
    lua_getfield(L, t, "argv");                  /* t what argv */
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) == 0)
        luaL_error(L, "%s: argv must be a non-empty list { \"prog\", \"arg\", ... } (never a shell string)", what);
    lua_pushfstring(L, "%s.argv", what);         /* t what argv wargv */
    job->argv = string_list(L, t + 2, anchor, lua_tostring(L, -1));
    lua_pop(L, 2);                               /* t what */
    lua_getfield(L, t, "input");                 /* t what input */
    if (!lua_isnil(L, -1)) {
        if (!lua_isstring(L, -1)) luaL_error(L, "%s: input is a %s, not a string", what, luaL_typename(L, -1));
        job->input = lua_tolstring(L, -1, &job->input_len);
        lua_pushvalue(L, -1);
        lua_rawseti(L, anchor, (lua_Integer)lua_rawlen(L, anchor) + 1);
    }
    lua_getfield(L, t, "hold_stdin");            /* t what input hold */
    job->hold_stdin = lua_toboolean(L, -1);
    lua_getfield(L, t, "env");                   /* t what input hold env */
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1)) luaL_error(L, "%s: env must be a table of NAME = value", what);
        job->env = env_list(L, lua_gettop(L), anchor, what);
    }
    lua_pop(L, 5);
    STACK_LEAVE(L, 0);
}

/* opts (index 2) into o; on_line left at index 3 (nil when none) */
static void read_many_opts(lua_State *L, provision_procs_opts *o)
{
    o->grace = 10;
    if (lua_isnil(L, 2)) { lua_pushnil(L); return; }
    luaL_checktype(L, 2, LUA_TTABLE);
    check_keys(L, 2, MANY_OPTS, "exec.many: opts");
    lua_getfield(L, 2, "forks");
    if (!lua_isnil(L, -1)) {
        lua_Integer f = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
        if (f < 1) luaL_error(L, "exec.many: forks must be a whole number from 1, got %s", luaL_tolstring(L, -1, NULL));
        o->forks = (size_t)f;
    }
    lua_getfield(L, 2, "grace");
    if (!lua_isnil(L, -1)) {
        double g = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : -1;
        if (!(g >= 0 && g < 1e9)) luaL_error(L, "exec.many: grace must be seconds (0 or more), got %s", luaL_tolstring(L, -1, NULL));
        o->grace = g;
    }
    lua_pop(L, 2);
    lua_getfield(L, 2, "on_line");               /* at 3 */
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1)) luaL_error(L, "exec.many: on_line must be a function");
}

typedef struct { size_t i; int stream; const char *line; size_t len; } line_args;

/* on_line's call, under the pcall of many_line: on_line args */
static int call_on_line(lua_State *L)
{
    const line_args *a = lua_touserdata(L, 2);
    lua_settop(L, 1);                            /* on_line */
    lua_pushinteger(L, (lua_Integer)a->i + 1);
    lua_pushstring(L, a->stream == 1 ? "out" : "err");
    lua_pushlstring(L, a->line, a->len);
    lua_call(L, 3, 0);
    return 0;
}

/* procs.c's callback. Nothing here raises (the pushes cannot: the stack
 * was grown before the run); on_line's error stays on the stack, raised
 * once every job is stopped and reaped. */
static int many_line(void *ud, size_t i, int stream, const char *line, size_t len)
{
    lua_State *L = ud;
    line_args a = { i, stream, line, len };
    lua_pushcfunction(L, call_on_line);          /* ... f */
    lua_pushvalue(L, 3);                         /* ... f on_line */
    lua_pushlightuserdata(L, &a);                /* ... f on_line a */
    int was = provision_shield(L, 1);
    int status = lua_pcall(L, 2, 0, 0);          /* ... | ... err */
    provision_shield(L, was);
    return status != LUA_OK;
}

static void push_job_result(lua_State *L, const provision_procs_job *j)
{
    lua_createtable(L, 0, 4);
    if (j->status >= 0) { lua_pushinteger(L, j->status); lua_setfield(L, -2, "status"); }
    if (j->signal) { lua_pushinteger(L, j->signal); lua_setfield(L, -2, "signal"); }
    lua_pushnumber(L, j->seconds);
    lua_setfield(L, -2, "seconds");
    if (j->error[0]) { lua_pushstring(L, j->error); lua_setfield(L, -2, "error"); }
    if (j->interrupted) { lua_pushboolean(L, 1); lua_setfield(L, -2, "interrupted"); }
    if (j->not_started) { lua_pushboolean(L, 1); lua_setfield(L, -2, "not_started"); }
}

static int exec_many(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    provision_procs_opts o;
    memset(&o, 0, sizeof o);
    read_many_opts(L, &o);                       /* jobs opts on_line */
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    lua_newtable(L);                             /* jobs opts on_line anchor */
    int anchor = lua_gettop(L);
    /* in a userdata: a raise frees it */
    provision_procs_job *jobs = lua_newuserdatauv(L, sizeof *jobs * (size_t)(n > 0 ? n : 1), 0);
    memset(jobs, 0, sizeof *jobs * (size_t)(n > 0 ? n : 1));
    for (lua_Integer i = 1; i <= n; i++) read_job(L, i, &jobs[i - 1], anchor);
    luaL_checkstack(L, 8, "exec.many");         /* many_line pushes without a check */
    if (!lua_isnil(L, 3)) { o.on_line = many_line; o.ud = L; }
    int r = provision_procs_run(jobs, (size_t)n, &o);
    if (r < 0) return luaL_error(L, "exec.many: %s", strerror(errno));
    if (r > 0) return lua_error(L);              /* on_line's error, on top */
    STACK_ENTER(L);
    lua_createtable(L, (int)(n < 1000000 ? n : 0), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        push_job_result(L, &jobs[i - 1]);
        lua_rawseti(L, -2, i);
    }
    STACK_LEAVE(L, 1);
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
    { "many", exec_many },
    { "run", exec_run },
    { "which", exec_which },
    { NULL, NULL }
};

int luaopen_provision_exec(lua_State *L)
{
    luaL_newlib(L, exec_funcs);
    return 1;
}
