/* lcore.c: the "provision._core" module: what the Lua half needs from the
 * core itself: clocks, signals and the shield, tty, the run lock, atomic
 * whole-file I/O. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core.h"
#include "units.h"
#include "tree.h"


static int core_now(lua_State *L) { lua_pushnumber(L, provision_now()); return 1; }

/* gc_settle(): Lua's pause of 200 % again, after the 1000 % that
 * core/main.c sets while provision's own modules load. A new pause counts
 * from the end of the cycle under way, which began at ten times what was
 * live then: a heap past 16 MiB already (--remote reads its bundle first)
 * is collected now, so that the next cycle comes at twice what lives. */
static int core_gc_settle(lua_State *L)
{
    lua_gc(L, LUA_GCINC, 200, 0, 0);
    if (lua_gc(L, LUA_GCCOUNT) > 16 * 1024) lua_gc(L, LUA_GCCOLLECT);
    return 0;
}

static int core_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

static int core_sleep(lua_State *L)
{
    provision_sleep(luaL_checknumber(L, 1));
    lua_pushboolean(L, !provision_interrupted());
    return 1;
}

/* interrupted() -> true, signal, cause | false, 0: a SIGINT, SIGTERM or
 * SIGHUP came, or stdin's EOF (see interrupt_on_stdin_eof); cause: "SIGINT",
 * "SIGTERM", "SIGHUP" or "stdin closed (the controller went away)" */
static int core_interrupted(lua_State *L)
{
    int sig = provision_signal_number();
    lua_pushboolean(L, sig != 0);
    lua_pushinteger(L, sig);
    if (!sig) return 2;
    lua_pushstring(L, provision_interrupt_cause());
    return 3;
}

/* interrupt_on_stdin_eof() -> true | nil, msg, errno: from now on EOF on
 * stdin (or a read error) interrupts the run as SIGTERM does: the remote
 * side stops at a safe point when its controller goes away. A thread reads
 * stdin and drops what comes: call it once stdin has given what it
 * carries. */
static int core_interrupt_on_stdin_eof(lua_State *L)
{
    int e = provision_interrupt_on_stdin_eof();
    if (e) return provision_fail(L, e, "interrupt_on_stdin_eof: %s", strerror(e));
    lua_pushboolean(L, 1);
    return 1;
}

/* deadline(seconds | nil, kind?, name?): the current step must end within
 * seconds; kind and name ("step", "x") name it if the watchdog has to stop
 * a stuck run */
static int core_deadline(lua_State *L)
{
    provision_set_deadline(luaL_optnumber(L, 1, 0), luaL_optstring(L, 2, NULL), luaL_optstring(L, 3, NULL));
    return 0;
}

/* shield(on) -> was: up, the hook raises no interrupt (the runner's own
 * bookkeeping); down, it does (recipe and resource code) */
static int core_shield(lua_State *L)
{
    lua_pushboolean(L, provision_shield(L, lua_toboolean(L, 1)));
    return 1;
}

/* fn(...) with the shield set to on; restored however fn ends. The pcall
 * is ours, in C: no Lua instruction runs between fn's end and the restore,
 * where a hook could raise. Returns lua_pcall's status. */
static int call_shielded(lua_State *L, int first, int on)
{
    int was = provision_shield(L, on);
    int status = lua_pcall(L, lua_gettop(L) - first, LUA_MULTRET, 0);
    provision_shield(L, was);
    return status;
}

/* shielded(fn, ...) -> fn's results: fn runs with the shield up (cleanup
 * that must finish after an interrupt, the runner's ctx methods); its
 * error goes on up */
static int core_shielded(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (call_shielded(L, 1, 1) != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

/* exposed(fn, ...) -> true, fn's results | false, error: fn (recipe or
 * resource code) runs with the shield down, protected as by pcall */
static int core_exposed(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int ok = call_shielded(L, 1, 0) == LUA_OK;   /* results, or the error */
    lua_pushboolean(L, ok);
    lua_insert(L, 1);                            /* ok results */
    return lua_gettop(L);
}

/* guard(fn) -> a value for `local g <close> = core.guard(fn)`: closing it
 * runs fn with the shield up. Its __close is C, so no Lua instruction (and
 * no hook) runs before the shield is up. */
static int guard_close(lua_State *L)
{
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, 1);   /* guard fn */
    if (call_shielded(L, 2, 1) != LUA_OK) return lua_error(L);
    return 0;
}

static int core_guard(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    STACK_ENTER(L);
    lua_newuserdatauv(L, 0, 1);   /* fn guard */
    lua_pushvalue(L, 1);          /* fn guard fn */
    lua_setiuservalue(L, -2, 1);  /* fn guard */
    luaL_setmetatable(L, "provision.guard");
    STACK_LEAVE(L, 1);
    return 1;
}

static int core_timed_out(lua_State *L)
{
    lua_pushboolean(L, provision_timed_out());
    return 1;
}

static int core_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int core_term_width(lua_State *L)
{
    struct winsize ws;
    int fd = (int)luaL_optinteger(L, 1, 2);
    lua_pushinteger(L, ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80);
    return 1;
}

const char *provision_checkpath(lua_State *L, int arg)
{
    size_t len;
    const char *p = luaL_checklstring(L, arg, &len);
    if (strlen(p) != len) luaL_argerror(L, arg, "path holds a NUL byte");
    return p;
}

int provision_fail(lua_State *L, int e, const char *fmt, ...)
{
    va_list ap;
    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_pushinteger(L, e);
    return 3;
}

/* write_atomic(path, data [, mode [, uid, gid [, temp [, sync]]]]) -> true,
 * folder id | nil, msg, errno. sync: "now" (the default: fsync'd, renamed,
 * the folder fsync'd), "data" (the content fsync'd before the rename; the
 * rename on disk at the next sync_written()), "later" (both at the next
 * sync_written()): core.h's WRITE_SYNC_* */
static int core_write_atomic(lua_State *L)
{
    static const char *const syncs[] = { "now", "data", "later", NULL };
    static const int sync_of[] = { WRITE_SYNC_NOW, WRITE_SYNC_DATA, WRITE_SYNC_LATER };
    const char *path = provision_checkpath(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int mode = (int)luaL_optinteger(L, 3, -1);
    int uid = (int)luaL_optinteger(L, 4, -1), gid = (int)luaL_optinteger(L, 5, -1);
    const char *temp = luaL_optstring(L, 6, NULL);
    int sync = sync_of[luaL_checkoption(L, 7, "now", syncs)];
    char err[TREE_ERR];
    char name[NAME_MAX + 1];
    int dfd = tree_walk(path, 0, name, err, sizeof err);
    int r = dfd < 0 ? -1 : provision_write_atomic_sync(dfd, name, path, data, len, mode, uid, gid, temp, sync,
                                                       err, sizeof err);
    struct stat ds;
    char id[64] = "";
    if (r == 0 && fstat(dfd, &ds) == 0) tree_identity(&ds, id, sizeof id);
    if (dfd >= 0) { int e = errno; close(dfd); errno = e; }
    if (r < 0) return provision_fail(L, errno, "%s", err);
    lua_pushboolean(L, 1);
    lua_pushstring(L, id);   /* the folder it is in: its "device:inode" */
    return 2;
}

/* sync_written() -> true | nil, msg, errno: what write_atomic wrote with
 * sync "data" or "later" on disk (one syncfs per filesystem written); a
 * failure is kept: every later call fails the same way (core.h) */
static int core_sync_written(lua_State *L)
{
    char err[TREE_ERR];
    if (provision_sync_written(err, sizeof err) < 0) return provision_fail(L, errno, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

/* unsynced() -> how many writes wait for sync_written() */
static int core_unsynced(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)provision_sync_pending());
    return 1;
}

static int core_read_file(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    size_t len;
    char err[TREE_ERR];
    char *buf = provision_read(path, &len, err, sizeof err);
    if (!buf) return provision_fail(L, errno, "%s", err);
    lua_pushlstring(L, buf, len);
    free(buf);
    return 1;
}

/* mkdirs(path, mode) -> true | nil, msg, errno: like mkdir -p; each folder
 * it makes gets exactly mode (its parents 0755), through a descriptor (tree.h) */
static int core_mkdirs(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    int mode = (int)luaL_optinteger(L, 2, 0755);
    luaL_argcheck(L, path[0] != '\0', 1, "empty path");
    char err[TREE_ERR];
    if (tree_mkdirs(path, mode, err, sizeof err) < 0) return provision_fail(L, errno, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

/* duration(s) -> seconds | nil, msg ; numbers pass through */
static int core_duration(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER) { lua_pushnumber(L, lua_tonumber(L, 1)); return 1; }
    const char *s = luaL_checkstring(L, 1);
    double v;
    if (provision_parse_duration(s, &v) < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "bad duration '%s' (use e.g. 30s, 5m, 1h30m, 250ms)", s);
        return 2;
    }
    lua_pushnumber(L, v);
    return 1;
}

/* size(s) -> bytes | nil, msg ; numbers pass through */
static int core_size(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER) { lua_pushnumber(L, lua_tonumber(L, 1)); return 1; }
    const char *s = luaL_checkstring(L, 1);
    double v;
    if (provision_parse_size(s, &v) < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "bad size '%s' (use e.g. 512MiB, 4GiB, 10GB)", s);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

/* frame(level) -> the function running at that level of the stack (as
 * debug.getinfo numbers them) and its current line | nothing: what
 * debug.getinfo(level, "fl") says, without a table (the loader asks at
 * every step's declaration) */
static int core_frame(lua_State *L)
{
    lua_Debug ar;
    if (!lua_getstack(L, (int)luaL_checkinteger(L, 1), &ar)) return 0;
    lua_getinfo(L, "fl", &ar);
    lua_pushinteger(L, ar.currentline);
    return 2;
}

/* clean_path(p [, relative]) -> true when p is spelled as R.norm_path
 * would spell it (no "//", no "/." anywhere, not "." at the start nor "/"
 * at the end; relative: not "/" at the start either): one call where the
 * loader asks for every path a recipe claims */
static int core_clean_path(lua_State *L)
{
    size_t n;
    const char *p = luaL_checklstring(L, 1, &n);
    int rel = lua_toboolean(L, 2);
    lua_pushboolean(L, n > 0 && p[0] != '.' && p[n - 1] != '/' && !(rel && p[0] == '/')
                       && !memmem(p, n, "//", 2) && !memmem(p, n, "/.", 2));
    return 1;
}

/* map(n) -> a new table with room for n keys (lua_createtable): a map of
 * one key a step (the loader's check that no two steps own one path) is
 * filled without being rehashed at each power of 2 on the way */
static int core_map(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    lua_createtable(L, 0, n < 0 ? 0 : n > (1 << 26) ? 1 << 26 : (int)n);
    return 1;
}

static int core_getpid(lua_State *L) { lua_pushinteger(L, getpid()); return 1; }

/* cwd() -> the working folder | nil, message */
static int core_cwd(lua_State *L)
{
    char *p = getcwd(NULL, 0);
    if (!p) return luaL_fileresult(L, 0, "getcwd");
    lua_pushstring(L, p);
    free(p);
    return 1;
}

static const luaL_Reg core_funcs[] = {
    { "clean_path", core_clean_path },
    { "cwd", core_cwd },
    { "deadline", core_deadline },
    { "duration", core_duration },
    { "exposed", core_exposed },
    { "gc_settle", core_gc_settle },
    { "frame", core_frame },
    { "getpid", core_getpid },
    { "guard", core_guard },
    { "interrupt_on_stdin_eof", core_interrupt_on_stdin_eof },
    { "interrupted", core_interrupted },
    { "isatty", core_isatty },
    { "map", core_map },
    { "mkdirs", core_mkdirs },
    { "now", core_now },
    { "read_file", core_read_file },
    { "shield", core_shield },
    { "shielded", core_shielded },
    { "size", core_size },
    { "sleep", core_sleep },
    { "sync_written", core_sync_written },
    { "term_width", core_term_width },
    { "time", core_time },
    { "timed_out", core_timed_out },
    { "unsynced", core_unsynced },
    { "write_atomic", core_write_atomic },
    { NULL, NULL }
};

/* core.EXIT: the exit codes of core.h, the one definition C and Lua share
 * (ok, failed, usage, pending, interrupted) */
static void push_exit_codes(lua_State *L)
{
    static const struct { const char *name; int code; } codes[] = {
        { "ok", EXIT_OK }, { "failed", EXIT_FAILED }, { "usage", EXIT_USAGE },
        { "pending", EXIT_PENDING }, { "interrupted", EXIT_INTERRUPTED },
    };
    lua_createtable(L, 0, (int)(sizeof codes / sizeof codes[0]));
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        lua_pushinteger(L, codes[i].code);
        lua_setfield(L, -2, codes[i].name);
    }
}

int luaopen_provision_core(lua_State *L)
{
    STACK_ENTER(L);
    luaL_newmetatable(L, "provision.guard");    /* mt */
    lua_pushcfunction(L, guard_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, core_funcs);                 /* _core */
    provision_open_statedir(L);
    provision_open_options(L);
    provision_open_report(L);
    provision_open_diff(L);
    lua_pushstring(L, PROVISION_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, LUA_RELEASE);   /* "Lua 5.4.4": _VERSION has no patch level */
    lua_setfield(L, -2, "lua_release");
    push_exit_codes(L);                         /* _core EXIT */
    lua_setfield(L, -2, "EXIT");
    STACK_LEAVE(L, 1);
    return 1;
}
