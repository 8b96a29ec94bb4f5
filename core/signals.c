/* signals.c: SIGINT and SIGTERM ask the run to stop. The handler only sets a
 * flag and a Lua hook (as lua.c's laction does); the hook raises "interrupted"
 * at the next Lua instruction, and again while recipe code catches it (see
 * may_raise); C code that blocks polls provision_interrupted().
 * A second signal while the first is being handled kills the process, and
 * the process group of the program it was running (proc.c); one that comes
 * within 100 ms of the first is the same request delivered twice, not a
 * second press: `timeout` sends its signal to the child and then to the
 * child's process group, and a shell's `kill` of a job may do the same. */
#include <stdlib.h>
#include <string.h>
#include "core.h"
#include "signals.h"

static volatile sig_atomic_t interrupted;
static double interrupted_at;   /* provision_now() of the first signal */
static volatile sig_atomic_t child_pgid;   /* see signals.h */

void provision_signals_child(pid_t pgid) { child_pgid = (sig_atomic_t)pgid; }
static lua_State *signal_L;
static const char *lua_dir;   /* PROVISION_LUA_DIR: the Lua half read from there */

/* --timeout: a deadline for the current step. Blocking C code sees it as
 * an interruption (provision_interrupted). */
static double deadline;

/* What is chunk source src: recipe code, or one of provision's own files
 * (the runner's, or a library's)? */
enum { RECIPE, LIBRARY, RUNS_CODE, SERVICE };
static int chunk_kind(const char *src)
{
    static const struct { const char *name; int kind; } files[] = {
        { "run", RUNS_CODE }, { "cli", RUNS_CODE }, { "dsl", RUNS_CODE },
        { "report", SERVICE }, { "state", SERVICE },
    };
    if (src[0] != '@') return RECIPE;
    src++;
    size_t dl;
    if (strncmp(src, "lua/provision/", 14) == 0) src += 14;
    else if (lua_dir && (dl = strlen(lua_dir)) > 0 && strncmp(src, lua_dir, dl) == 0
             && strncmp(src + dl, "/provision/", 11) == 0) src += dl + 11;
    else return RECIPE;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t n = strlen(files[i].name);
        if (strncmp(src, files[i].name, n) == 0 && strcmp(src + n, ".lua") == 0) return files[i].kind;
    }
    return LIBRARY;
}

/* raised in this step already (provision_set_deadline starts a step) */
static int raised;

/* May the hook raise here? Not in the runner's own code, which must go on
 * to record and report (it checks core.interrupted() itself), nor in what
 * its report and state code calls: the nearest frame of the runner's files
 * decides. Recipe code may catch the error with pcall and go on, so it is
 * raised there again and again; provision's library code is not raised
 * twice in a step, as its cleanup (a <close> handler, a pcall that undoes)
 * must run. */
static int may_raise(lua_State *L)
{
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "S", &ar)) return 1;
        int kind = chunk_kind(ar.source);
        if (level == 0 && kind == LIBRARY && raised) return 0;
        if (kind == RECIPE || kind == LIBRARY) continue;
        return level > 0 && kind == RUNS_CODE;
    }
    return 1;   /* no runner (a bare state) */
}

/* One hook for both: armed by a signal or a deadline, it stays armed until
 * the runner lifts the deadline; an interruption is never lifted. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    const char *why = interrupted ? "interrupted"
                    : provision_timed_out() ? "timed out (--timeout)" : NULL;
    if (!why) return;
    /* from now on at every instruction: the first one after a pcall that
     * caught the error raises it again, outside that pcall (raised later,
     * it would most likely land inside the next pcall and be caught) */
    if (lua_gethookcount(L) != 1 || lua_gethookmask(L) != LUA_MASKCOUNT)
        lua_sethook(L, stop_hook, LUA_MASKCOUNT, 1);
    if (may_raise(L)) {
        raised = 1;
        luaL_error(L, "%s", why);
    }
}

static void on_signal(int sig)
{
    if (interrupted) {   /* second time: give up at once */
        if (provision_now() - interrupted_at < 0.1) return;   /* the same one */
        pid_t pg = (pid_t)child_pgid;
        if (pg > 0) kill(-pg, SIGKILL);   /* not left behind, orphaned */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted_at = provision_now();   /* clock_gettime: async-signal-safe */
    interrupted = sig;
    if (signal_L)
        lua_sethook(signal_L, stop_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void provision_signals_install(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    lua_dir = getenv("PROVISION_LUA_DIR");
    signal_L = L;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void provision_set_deadline(lua_State *L, double at)
{
    deadline = at;
    raised = 0;                /* a step starts, or ends */
    if (interrupted) return;   /* the hook stays as it is: armed */
    if (at > 0) lua_sethook(L, stop_hook, LUA_MASKCOUNT, 10000);
    else lua_sethook(L, NULL, 0, 0);
}

int provision_timed_out(void) { return deadline > 0 && provision_now() > deadline; }

int provision_interrupted(void) { return interrupted != 0 || provision_timed_out(); }
int provision_signal_number(void) { return interrupted; }
